//! Prometheus metrics, served as text on `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

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
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("watchkeeper");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(duration_histogram as fn() -> Histogram);
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
        Self {
            registry: Arc::new(registry),
            http_requests,
            http_duration,
            slack_events,
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
}
