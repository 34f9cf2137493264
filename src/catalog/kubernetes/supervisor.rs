//! Which clusters this replica watches.
//!
//! Several replicas run in production; each cluster is watched by one of
//! them at a time, the holder of its row in `cluster_leases`. Every
//! [`ClusterWatchers::tick`] (a quarter of `workers.lease`, in the
//! background) renews the leases this replica holds, takes over those that
//! expired (their holder died), starts a watch task for each lease gained and
//! stops the task of each lease lost. A replica stopping gives its leases
//! back, so another takes over at its next tick. Should two replicas ever
//! watch one cluster at once (a lease lost while its holder was paused), the
//! health log still agrees with the cluster (observations are recorded only
//! when they change what is said) and a rollout is still recorded once (its
//! revision is compared-and-set).
//!
//! [`ClusterWatchers::configure`] follows the configuration (at start and on
//! SIGHUP): watches of removed or changed clusters stop, new ones start,
//! running ones map their objects again over the reloaded catalog; inputs of
//! a cluster nobody configures and nobody holds any more are withdrawn.

use super::config::ClusterConfig;
use super::status::{State, StatusBoard};
use super::view;
use super::watch::{self, Context, Control};
use crate::catalog::model::ComponentId;
use crate::store::StoreError;
use crate::store::watch as leases;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch as signal};
use tokio::task::JoinHandle;

struct Running {
    config: ClusterConfig,
    stop: signal::Sender<bool>,
    resync: signal::Sender<u64>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Clusters {
    configured: Vec<ClusterConfig>,
    running: BTreeMap<String, Running>,
}

/// The cluster watches of this replica; cheap to clone.
#[derive(Clone)]
pub struct ClusterWatchers {
    ctx: Arc<Context>,
    instance: String,
    lease: chrono::Duration,
    clusters: Arc<Mutex<Clusters>>,
}

impl ClusterWatchers {
    /// Watches for replica `instance`, holding each lease for `lease`.
    pub fn new(ctx: Context, instance: &str, lease: chrono::Duration) -> Self {
        Self {
            ctx: Arc::new(ctx),
            instance: instance.to_string(),
            lease,
            clusters: Arc::default(),
        }
    }

    /// What is connected.
    pub fn board(&self) -> &StatusBoard {
        &self.ctx.board
    }

    /// Follows `clusters` (paths already resolved): stops what is gone or
    /// changed, re-maps what runs, then ticks.
    pub async fn configure(&self, clusters: Vec<ClusterConfig>) -> Result<(), StoreError> {
        {
            let mut state = self.clusters.lock().await;
            let stale: Vec<String> = state
                .running
                .iter()
                .filter(|(_, r)| !clusters.contains(&r.config))
                .map(|(name, _)| name.clone())
                .collect();
            for name in stale {
                if let Some(running) = state.running.remove(&name) {
                    self.halt(running).await?;
                }
            }
            for old in &state.configured {
                if !clusters.iter().any(|c| c.name == old.name) {
                    self.ctx.board.remove(&old.name);
                }
            }
            for running in state.running.values() {
                running.resync.send_modify(|generation| *generation += 1);
            }
            state.configured = clusters;
        }
        self.tick().await
    }

    /// Renews or takes leases, starts and stops watches accordingly, and
    /// withdraws what clusters nobody watches left behind.
    pub async fn tick(&self) -> Result<(), StoreError> {
        let mut state = self.clusters.lock().await;
        let now = self.ctx.clock.now();
        let pool = self.ctx.store.pool();
        for cluster in state.configured.clone() {
            let held =
                leases::claim_lease(pool, &cluster.name, &self.instance, now, now + self.lease)
                    .await?;
            match (held, state.running.contains_key(&cluster.name)) {
                (true, false) => {
                    tracing::info!(cluster = %cluster.name, instance = %self.instance, "watching the cluster");
                    let running = self.start(cluster.clone());
                    state.running.insert(cluster.name.clone(), running);
                }
                (false, running) => {
                    if running && let Some(lost) = state.running.remove(&cluster.name) {
                        tracing::warn!(cluster = %cluster.name, "another replica took the cluster over");
                        self.halt(lost).await?;
                    }
                    let holder = leases::lease_holder(pool, &cluster.name)
                        .await?
                        .map(|(holder, _)| holder);
                    self.ctx.board.set(&cluster.name, State::Standby(holder));
                }
                (true, true) => {}
            }
        }
        let configured: BTreeSet<String> =
            state.configured.iter().map(|c| c.name.clone()).collect();
        drop(state);
        self.withdraw_orphans(&configured).await
    }

    fn start(&self, cluster: ClusterConfig) -> Running {
        let (stop, stop_rx) = signal::channel(false);
        let (resync, resync_rx) = signal::channel(0);
        let task = tokio::spawn(watch::run(
            self.ctx.clone(),
            cluster.clone(),
            Control {
                stop: stop_rx,
                resync: resync_rx,
            },
        ));
        Running {
            config: cluster,
            stop,
            resync,
            task,
        }
    }

    /// Stops a watch (waiting for the step in progress) and gives its lease back.
    async fn halt(&self, mut running: Running) -> Result<(), StoreError> {
        let _ = running.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(5), &mut running.task)
            .await
            .is_err()
        {
            running.task.abort();
        }
        leases::release_lease(self.ctx.store.pool(), &running.config.name, &self.instance).await
    }

    /// Inputs of clusters this replica does not configure and no replica
    /// holds a live lease on are withdrawn (a cluster removed from the
    /// configuration; an older replica still watching it keeps its lease
    /// until it stops).
    async fn withdraw_orphans(&self, configured: &BTreeSet<String>) -> Result<(), StoreError> {
        let mut orphans: BTreeMap<String, Vec<(ComponentId, String)>> = BTreeMap::new();
        for (component, source) in self
            .ctx
            .catalog
            .view(|book, _| book.sources_with_prefix("kube:"))
        {
            let Some(cluster) = source
                .strip_prefix("kube:")
                .and_then(|rest| rest.split(':').next())
            else {
                continue;
            };
            if !configured.contains(cluster) {
                orphans
                    .entry(cluster.to_string())
                    .or_default()
                    .push((component, source.clone()));
            }
        }
        let now = self.ctx.clock.now();
        for (cluster, inputs) in orphans {
            let held = leases::lease_holder(self.ctx.store.pool(), &cluster)
                .await?
                .is_some_and(|(_, until)| until > now);
            if held {
                continue;
            }
            tracing::info!(%cluster, inputs = inputs.len(), "withdrawing what a cluster no longer watched said");
            for step in view::withdraw_all(&inputs, now) {
                watch::perform(&self.ctx, &step).await?;
            }
        }
        Ok(())
    }

    /// Ticks every quarter lease until `shutdown`.
    pub fn spawn(&self, mut shutdown: signal::Receiver<bool>) -> JoinHandle<()> {
        let this = self.clone();
        let every = (self.lease / 4)
            .to_std()
            .unwrap_or(Duration::from_secs(30))
            .max(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                if let Err(err) = this.tick().await {
                    tracing::warn!(error = %err, "cannot renew the cluster leases; trying again");
                }
            }
        })
    }

    /// Stops every watch and gives the leases back.
    pub async fn stop(&self) {
        let running = std::mem::take(&mut self.clusters.lock().await.running);
        for (name, running) in running {
            if let Err(err) = self.halt(running).await {
                tracing::warn!(cluster = %name, error = %err, "cannot give the cluster's lease back; another replica takes it when it expires");
            }
        }
    }
}
