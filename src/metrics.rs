//! Prometheus metrics, served as text on `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route, e.g. `/slack/commands`.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Labels of a route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The matched route.
    pub route: String,
}

/// Labels of an inbound Slack event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// `accepted`, `duplicate`, `ignored`.
    pub outcome: String,
}

/// Labels of a scheduler queue.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `timers` or `inbox`.
    pub queue: String,
}

/// Labels of a fired timer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TimerLabels {
    /// The handler kind.
    pub kind: String,
    /// `done`, `retried`, `failed`.
    pub outcome: String,
}

/// Labels of an outbox delivery attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The sink, e.g. `slack`.
    pub sink: String,
    /// `delivered`, `retried`, `failed`.
    pub outcome: String,
}

/// Labels of a rate-limit wait.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The method or `channel`.
    pub limit: String,
}

/// Labels of a watched Kubernetes cluster.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// The cluster's name in `catalog.clusters`.
    pub cluster: String,
}

/// Every metric the service exports; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Requests by route and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Request duration by route, in seconds.
    pub http_duration: Family<RouteLabels, Histogram>,
    /// Slack events by outcome.
    pub slack_events: Family<EventLabels, Counter>,
    /// Now minus the due time of the oldest row waiting, per queue.
    pub scheduler_lag: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    /// How late timers fired, in seconds.
    pub timer_lateness: Histogram,
    /// Timers fired, by kind and outcome.
    pub timers_fired: Family<TimerLabels, Counter>,
    /// Effects waiting for delivery.
    pub outbox_backlog: Gauge,
    /// Age of the oldest effect waiting, in seconds.
    pub outbox_oldest_age: Gauge<f64, AtomicU64>,
    /// Delivery attempts by sink and outcome.
    pub outbox_deliveries: Family<DeliveryLabels, Counter>,
    /// Deliveries held back by our own rate limits, by limit.
    pub rate_limit_waits: Family<LimitLabels, Counter>,
    /// 1 while this replica holds a cluster's lease (watches it).
    pub kube_watched: Family<ClusterLabels, Gauge>,
    /// 1 while this replica's watches of a cluster are connected and listed.
    pub kube_connected: Family<ClusterLabels, Gauge>,
    /// Watch errors per cluster (connection failures, refusals, expired versions).
    pub kube_watch_errors: Family<ClusterLabels, Counter>,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("watchkeeper");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        let slack_events = Family::<EventLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request duration by route",
            http_duration.clone(),
        );
        registry.register(
            "slack_events",
            "Slack events received, by outcome",
            slack_events.clone(),
        );
        let scheduler_lag = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "scheduler_lag_seconds",
            "Now minus the due time of the oldest row waiting, per queue",
            scheduler_lag.clone(),
        );
        let timer_lateness = Histogram::new(exponential_buckets(0.001, 2.0, 20));
        registry.register(
            "timer_lateness_seconds",
            "How late timers fired after their due time",
            timer_lateness.clone(),
        );
        let timers_fired = Family::<TimerLabels, Counter>::default();
        registry.register(
            "timers_fired",
            "Timers fired, by kind and outcome",
            timers_fired.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "Effects waiting for delivery",
            outbox_backlog.clone(),
        );
        let outbox_oldest_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest effect waiting for delivery",
            outbox_oldest_age.clone(),
        );
        let outbox_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "outbox_deliveries",
            "Delivery attempts, by sink and outcome",
            outbox_deliveries.clone(),
        );
        let rate_limit_waits = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limit_waits",
            "Deliveries held back by our own Slack rate limits, by limit",
            rate_limit_waits.clone(),
        );
        let kube_watched = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "kube_cluster_watched",
            "1 while this replica holds the cluster's lease and watches it",
            kube_watched.clone(),
        );
        let kube_connected = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "kube_cluster_connected",
            "1 while this replica's watches of the cluster are connected and listed",
            kube_connected.clone(),
        );
        let kube_watch_errors = Family::<ClusterLabels, Counter>::default();
        registry.register(
            "kube_watch_errors",
            "Kubernetes watch errors, by cluster",
            kube_watch_errors.clone(),
        );
        Self {
            registry: Arc::new(registry),
            http_requests,
            http_duration,
            slack_events,
            scheduler_lag,
            timer_lateness,
            timers_fired,
            outbox_backlog,
            outbox_oldest_age,
            outbox_deliveries,
            rate_limit_waits,
            kube_watched,
            kube_connected,
            kube_watch_errors,
        }
    }
}

impl Metrics {
    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "cannot encode metrics");
        }
        out
    }

    /// Counts a Slack event outcome.
    pub fn event(&self, outcome: &str) {
        self.slack_events
            .get_or_create(&EventLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts a fired timer and how late it was.
    pub fn timer_fired(&self, kind: &str, outcome: &str, lateness_secs: f64) {
        self.timers_fired
            .get_or_create(&TimerLabels {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.timer_lateness.observe(lateness_secs);
    }

    /// Counts a delivery attempt.
    pub fn delivery(&self, sink: &str, outcome: &str) {
        self.outbox_deliveries
            .get_or_create(&DeliveryLabels {
                sink: sink.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts a wait for one of our own rate limits.
    pub fn rate_limit_wait(&self, limit: &str) {
        self.rate_limit_waits
            .get_or_create(&LimitLabels {
                limit: limit.to_string(),
            })
            .inc();
    }
}
