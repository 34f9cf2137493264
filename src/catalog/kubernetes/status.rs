//! What is connected: each configured cluster's state on this replica, for
//! `/readyz`'s report and the `watchkeeper_kube_*` metrics. A cluster's
//! state never decides readiness: the bot serves whether or not a customer's
//! API server answers.

use crate::clock::Clock;
use crate::metrics::{ClusterLabels, Metrics};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// A cluster's state on this replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Another replica holds the lease (named, when known).
    Standby(Option<String>),
    /// This replica holds the lease and is listing.
    Connecting,
    /// Every watch has listed; events flow.
    Watching,
    /// Some kinds cannot be listed (RBAC, a refused request).
    Refused(String),
    /// The API server cannot be reached (or the client cannot be set up).
    Unreachable(String),
    /// The watch stopped on a problem of ours (the store) and restarts.
    Restarting(String),
}

/// A state and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The state.
    pub state: State,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// The clusters' states; cheap to clone.
#[derive(Clone)]
pub struct StatusBoard {
    states: Arc<Mutex<BTreeMap<String, ClusterStatus>>>,
    metrics: Metrics,
    clock: Clock,
}

impl StatusBoard {
    /// An empty board.
    pub fn new(metrics: Metrics, clock: Clock) -> Self {
        Self {
            states: Arc::default(),
            metrics,
            clock,
        }
    }

    fn labels(cluster: &str) -> ClusterLabels {
        ClusterLabels {
            cluster: cluster.to_string(),
        }
    }

    /// Sets `cluster`'s state (its `since` moves only when the state does).
    pub fn set(&self, cluster: &str, state: State) {
        let labels = Self::labels(cluster);
        self.metrics
            .kube_watched
            .get_or_create(&labels)
            .set(i64::from(!matches!(state, State::Standby(_))));
        self.metrics
            .kube_connected
            .get_or_create(&labels)
            .set(i64::from(state == State::Watching));
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if states.get(cluster).is_none_or(|s| s.state != state) {
            states.insert(
                cluster.to_string(),
                ClusterStatus {
                    state,
                    since: self.clock.now(),
                },
            );
        }
    }

    /// Counts a watch error of `cluster`.
    pub fn error(&self, cluster: &str) {
        self.metrics
            .kube_watch_errors
            .get_or_create(&Self::labels(cluster))
            .inc();
    }

    /// Forgets a cluster that is no longer configured.
    pub fn remove(&self, cluster: &str) {
        let labels = Self::labels(cluster);
        self.metrics.kube_watched.remove(&labels);
        self.metrics.kube_connected.remove(&labels);
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(cluster);
    }

    /// One line per cluster, for `/readyz`.
    pub fn lines(&self) -> Vec<String> {
        let states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        states
            .iter()
            .map(|(name, status)| {
                let since = status.since.format("%Y-%m-%d %H:%M:%S UTC");
                match &status.state {
                    State::Standby(Some(holder)) => {
                        format!("cluster {name}: watched by replica {holder}")
                    }
                    State::Standby(None) => format!("cluster {name}: waiting for its lease"),
                    State::Connecting => format!("cluster {name}: connecting since {since}"),
                    State::Watching => format!("cluster {name}: watching since {since}"),
                    State::Refused(why) => {
                        format!("cluster {name}: partly watched since {since}: {why}")
                    }
                    State::Unreachable(why) => {
                        format!("cluster {name}: unreachable since {since}: {why}")
                    }
                    State::Restarting(why) => {
                        format!("cluster {name}: restarting its watch since {since}: {why}")
                    }
                }
            })
            .collect()
    }
}
