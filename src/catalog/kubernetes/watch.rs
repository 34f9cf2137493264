//! One cluster's watch task: a kube-rs watcher per scope (kind × namespace),
//! their events through the cluster's [`ClusterView`] into
//! `catalog::observe`, in order.
//!
//! Failures never end the task and never panic: kube's watcher re-watches
//! from the last resourceVersion when a stream ends, relists after
//! `410 Gone`, and backs off between failed attempts; a transport failure
//! marks the cluster unreachable (an amber input on the cluster's component
//! and the status board) until `GET /version` answers again; a refused list
//! (RBAC) marks it partly watched until that kind lists; a store error or a
//! client that cannot be set up restarts the task after a backoff, with a
//! fresh view and a full relist. Every error is logged with the cluster's
//! name.

use super::config::{self, ClusterConfig, Mapping};
use super::judge::{self, Kind, Sighting};
use super::status::{State, StatusBoard};
use super::view::{ClusterView, Mapper, Scope, Step, cluster_prefix};
use crate::catalog::model::ComponentId;
use crate::catalog::observe;
use crate::catalog::service::CatalogService;
use crate::clock::Clock;
use crate::store::{Store, StoreError};
use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch as signal;

/// What every cluster's task shares.
pub struct Context {
    /// The live catalog (mapping and the health log's view).
    pub catalog: Arc<CatalogService>,
    /// The store observations are recorded in.
    pub store: Store,
    /// Business time (observation times).
    pub clock: Clock,
    /// How long a health change must last before it is announced.
    pub debounce: chrono::Duration,
    /// What is connected.
    pub board: StatusBoard,
}

/// How the supervisor steers a task.
pub struct Control {
    /// Becomes true when the task must end.
    pub stop: signal::Receiver<bool>,
    /// Changes when the catalog was reloaded (objects are mapped again).
    pub resync: signal::Receiver<u64>,
}

/// Reconnection delays: 250 ms doubling to 30 s, ±20 % jitter, back to the
/// start after anything succeeds.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

const FIRST_DELAY: Duration = Duration::from_millis(250);
const LONGEST_DELAY: Duration = Duration::from_secs(30);

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_DELAY }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(LONGEST_DELAY);
        Some(delay.mul_f64(rand::random_range(0.8..1.2)))
    }
}

impl kube::runtime::utils::Backoff for Backoff {
    fn reset(&mut self) {
        self.next = FIRST_DELAY;
    }
}

/// Why a task restarts.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Connect(#[from] config::ConnectError),
    #[error("cannot record what the cluster says: {0}")]
    Store(#[from] StoreError),
}

type Item = (Scope, Result<Event<Sighting>, watcher::Error>);

fn convert<K>(event: Event<K>, judge: impl Fn(&K) -> Sighting) -> Event<Sighting> {
    match event {
        Event::Apply(k) => Event::Apply(judge(&k)),
        Event::Delete(k) => Event::Delete(judge(&k)),
        Event::Init => Event::Init,
        Event::InitApply(k) => Event::InitApply(judge(&k)),
        Event::InitDone => Event::InitDone,
    }
}

fn typed<K>(
    api: Api<K>,
    scope: Scope,
    mapping: Mapping,
    judge: fn(&K, &Mapping) -> Sighting,
) -> BoxStream<'static, Item>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, watcher::Config::default())
        .backoff(Backoff::default())
        .map(move |result| {
            (
                scope.clone(),
                result.map(|event| convert(event, |k| judge(k, &mapping))),
            )
        })
        .boxed()
}

fn api<K>(client: &Client, scope: &Scope) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match &scope.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn stream(client: &Client, scope: Scope, mapping: Mapping) -> BoxStream<'static, Item> {
    match scope.kind {
        Kind::Deployment => typed(
            api::<Deployment>(client, &scope),
            scope,
            mapping,
            judge::deployment,
        ),
        Kind::StatefulSet => typed(
            api::<StatefulSet>(client, &scope),
            scope,
            mapping,
            judge::stateful_set,
        ),
        Kind::DaemonSet => typed(
            api::<DaemonSet>(client, &scope),
            scope,
            mapping,
            judge::daemon_set,
        ),
        Kind::Pod => typed(api::<Pod>(client, &scope), scope, mapping, judge::pod),
        Kind::Node => typed(
            Api::<Node>::all(client.clone()),
            scope,
            mapping,
            judge::node,
        ),
    }
}

/// The innermost cause of an error, which is the one that says what happened.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// How a watch error is taken.
enum Trouble {
    /// The resourceVersion expired: kube relists; nothing is wrong.
    Expired,
    /// The API server refused to list this kind (RBAC, a bad request).
    Refused(String),
    /// The API server cannot be reached or talked to.
    Unreachable(String),
}

fn classify(scope: &Scope, err: &watcher::Error) -> Trouble {
    match err {
        watcher::Error::WatchError(status) if status.code == 410 => Trouble::Expired,
        watcher::Error::InitialListFailed(kube::Error::Api(status)) => Trouble::Refused(format!(
            "cannot list {}s: {} ({})",
            scope.kind, status.message, status.code
        )),
        other => Trouble::Unreachable(root_cause(other)),
    }
}

/// Carries out one step of the recording path.
pub async fn perform(ctx: &Context, step: &Step) -> Result<(), StoreError> {
    match step {
        Step::Record(observation) => {
            observe::record(&ctx.catalog, &ctx.store, ctx.debounce, observation).await?;
        }
        Step::Forget(source) => observe::forget(&ctx.store, source).await?,
    }
    Ok(())
}

/// The mapper of `cluster` over the catalog as it is now.
fn mapper(catalog: &CatalogService, cluster: &ClusterConfig) -> Mapper {
    Mapper::new(catalog.view(|book, _| book.catalog().clone()), cluster)
}

/// Watches `cluster` until told to stop.
pub async fn run(ctx: Arc<Context>, cluster: ClusterConfig, mut control: Control) {
    let mut backoff = Backoff::default();
    loop {
        ctx.board.set(&cluster.name, State::Connecting);
        let started = tokio::time::Instant::now();
        let result = match config::connect(&cluster).await {
            Ok(client) => Task::new(&ctx, &cluster, client).run(&mut control).await,
            Err(err) => Err(Failure::Connect(err)),
        };
        let failure = match result {
            Ok(()) => return,
            Err(failure) => failure,
        };
        tracing::error!(cluster = %cluster.name, error = %failure, "cannot watch the cluster; trying again");
        if started.elapsed() > Duration::from_secs(60) {
            // It ran for a while: this is a new failure, not the same one again.
            kube::runtime::utils::Backoff::reset(&mut backoff);
        }
        ctx.board.error(&cluster.name);
        let state = match &failure {
            Failure::Connect(_) => State::Unreachable(failure.to_string()),
            Failure::Store(_) => State::Restarting(failure.to_string()),
        };
        ctx.board.set(&cluster.name, state);
        if let Failure::Connect(_) = &failure {
            // Say so on the cluster's component, if the store lets us.
            let view = ClusterView::new(&cluster.name, Vec::new());
            let mapper = mapper(&ctx.catalog, &cluster);
            for step in view.unreachable(&mapper, &failure.to_string(), ctx.clock.now()) {
                if let Err(err) = perform(&ctx, &step).await {
                    tracing::warn!(cluster = %cluster.name, error = %err, "cannot record that the cluster is unreachable");
                }
            }
        }
        let delay = backoff.next().unwrap_or(LONGEST_DELAY);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut control.stop) => return,
        }
    }
}

/// What woke a task up.
enum Wake {
    Stop,
    Resync,
    Probe,
    Item(Box<Item>),
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut signal::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// One connected run: streams, view, reachability.
struct Task<'a> {
    ctx: &'a Context,
    cluster: &'a ClusterConfig,
    client: Client,
    view: ClusterView,
    scopes: Vec<Scope>,
    listed: BTreeMap<Scope, bool>,
    refused: BTreeMap<Scope, String>,
    unreachable: Option<String>,
    probe: Backoff,
}

impl<'a> Task<'a> {
    fn new(ctx: &'a Context, cluster: &'a ClusterConfig, client: Client) -> Self {
        let scopes = Scope::all_for(cluster);
        Self {
            ctx,
            cluster,
            client,
            view: ClusterView::new(&cluster.name, scopes.clone()),
            listed: scopes.iter().map(|s| (s.clone(), false)).collect(),
            scopes,
            refused: BTreeMap::new(),
            unreachable: None,
            probe: Backoff::default(),
        }
    }

    fn mapper(&self) -> Mapper {
        mapper(&self.ctx.catalog, self.cluster)
    }

    /// What the health log holds for this cluster (synced first).
    async fn existing(&self) -> Result<Vec<(ComponentId, String)>, StoreError> {
        self.ctx.catalog.sync(&self.ctx.store).await?;
        let prefix = cluster_prefix(&self.cluster.name);
        Ok(self
            .ctx
            .catalog
            .view(|book, _| book.sources_with_prefix(&prefix)))
    }

    fn name(&self) -> &str {
        &self.cluster.name
    }

    async fn run(mut self, control: &mut Control) -> Result<(), Failure> {
        let mut streams: SelectAll<BoxStream<'static, Item>> = futures::stream::select_all(
            self.scopes
                .iter()
                .map(|scope| stream(&self.client, scope.clone(), self.cluster.mapping.clone())),
        );
        let mut probe_at: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let wake = tokio::select! {
                _ = stopped(&mut control.stop) => Wake::Stop,
                changed = control.resync.changed() => match changed {
                    Ok(()) => Wake::Resync,
                    Err(_) => Wake::Stop,
                },
                _ = async {
                    match probe_at.as_mut() {
                        Some(sleep) => sleep.as_mut().await,
                        None => std::future::pending().await,
                    }
                }, if probe_at.is_some() => Wake::Probe,
                item = streams.next() => match item {
                    Some(item) => Wake::Item(Box::new(item)),
                    None => Wake::Stop,
                },
            };
            let now = self.ctx.clock.now();
            let steps = match wake {
                Wake::Stop => return Ok(()),
                Wake::Resync => {
                    let existing = self.existing().await?;
                    self.view.resync(&self.mapper(), &existing, now)
                }
                Wake::Probe => {
                    probe_at = None;
                    match self.client.apiserver_version().await {
                        Ok(_) => self.reached(now).await?,
                        Err(err) => {
                            tracing::debug!(cluster = %self.name(), error = %root_cause(&err), "the API server still does not answer");
                            probe_at = Some(Box::pin(tokio::time::sleep(
                                self.probe.next().unwrap_or(LONGEST_DELAY),
                            )));
                            Vec::new()
                        }
                    }
                }
                Wake::Item(item) => match *item {
                    (scope, Ok(event)) => self.event(&scope, event, now).await?,
                    (scope, Err(err)) => {
                        let (steps, probe) = self.trouble(&scope, &err, now);
                        if probe && probe_at.is_none() {
                            probe_at = Some(Box::pin(tokio::time::sleep(
                                self.probe.next().unwrap_or(LONGEST_DELAY),
                            )));
                        }
                        steps
                    }
                },
            };
            for step in &steps {
                perform(self.ctx, step).await?;
            }
        }
    }

    async fn event(
        &mut self,
        scope: &Scope,
        event: Event<Sighting>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Step>, StoreError> {
        let mapper = self.mapper();
        Ok(match event {
            Event::Init => {
                self.view.init(scope);
                Vec::new()
            }
            Event::InitApply(s) => self.view.apply(&mapper, s, false, now),
            Event::Apply(s) => self.view.apply(&mapper, s, true, now),
            Event::Delete(s) => self.view.delete(&mapper, &s, now),
            Event::InitDone => {
                let existing = self.existing().await?;
                let mut steps = self.view.init_done(&mapper, scope, &existing, now);
                self.listed.insert(scope.clone(), true);
                if self.refused.remove(scope).is_some() {
                    tracing::info!(cluster = %self.name(), kind = %scope.kind, "listed again");
                }
                self.unreachable = None;
                steps.extend(self.settle(&mapper, &existing, now));
                steps
            }
        })
    }

    /// The API answered again after a transport failure.
    async fn reached(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Step>, StoreError> {
        if self.unreachable.take().is_some() {
            tracing::info!(cluster = %self.name(), "the API server answers again");
        }
        self.probe = Backoff::default();
        let existing = self.existing().await?;
        Ok(self.settle(&self.mapper(), &existing, now))
    }

    /// Sets the board and the API input from what is known now.
    fn settle(
        &mut self,
        mapper: &Mapper,
        existing: &[(ComponentId, String)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<Step> {
        if let Some(why) = &self.unreachable {
            self.ctx
                .board
                .set(self.name(), State::Unreachable(why.clone()));
            return self.view.unreachable(mapper, why, now);
        }
        if let Some(why) = self.refused.values().next() {
            self.ctx.board.set(self.name(), State::Refused(why.clone()));
            return self.view.unreachable(mapper, why, now);
        }
        if self.listed.values().all(|listed| *listed) {
            self.ctx.board.set(self.name(), State::Watching);
        } else {
            self.ctx.board.set(self.name(), State::Connecting);
        }
        self.view.reachable(existing, now)
    }

    /// A watch error: logged, counted, shown; returns the steps and whether
    /// reachability must be probed.
    fn trouble(
        &mut self,
        scope: &Scope,
        err: &watcher::Error,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (Vec<Step>, bool) {
        self.ctx.board.error(self.name());
        let mapper = self.mapper();
        match classify(scope, err) {
            Trouble::Expired => {
                tracing::info!(cluster = %self.name(), kind = %scope.kind, "resourceVersion expired (410 Gone); listing again");
                (Vec::new(), false)
            }
            Trouble::Refused(why) => {
                if self.refused.insert(scope.clone(), why.clone()).is_none() {
                    tracing::warn!(cluster = %self.name(), kind = %scope.kind, error = %why, "the API server refuses to list");
                }
                (self.settle(&mapper, &[], now), false)
            }
            Trouble::Unreachable(why) => {
                if self.unreachable.is_none() {
                    tracing::warn!(cluster = %self.name(), kind = %scope.kind, error = %why, "the API server cannot be reached; watches retry with backoff");
                } else {
                    tracing::debug!(cluster = %self.name(), kind = %scope.kind, error = %why, "still unreachable");
                }
                self.unreachable = Some(why);
                (self.settle(&mapper, &[], now), true)
            }
        }
    }
}
