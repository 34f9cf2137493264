//! The HTTP side: Slack's endpoints, GitHub's webhook, operations endpoints
//! and metrics.
//!
//! Handlers only verify, parse and hand over to [`Ingress`]; no business logic
//! lives here.

mod alertmanager;
mod github;
mod ops;
mod slack;

use crate::chat::slack::SigningSecret;
use crate::ingress::Ingress;
use crate::metrics::{HttpLabels, Metrics, RouteLabels};
use crate::store::Store;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Largest body accepted (Slack's payloads are far smaller).
pub const MAX_BODY: usize = 1024 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// Where verified payloads go.
    pub ingress: Ingress,
    /// Slack's signing secret; without it every Slack request is refused.
    pub signing_secret: Option<SigningSecret>,
    /// For readiness.
    pub store: Store,
    /// Metrics.
    pub metrics: Metrics,
    /// False while starting or draining.
    pub ready: Arc<AtomicBool>,
    /// `GITHUB_WEBHOOK_SECRET`; without it GitHub webhooks are refused.
    pub github_secret: Option<Arc<[u8]>>,
    /// Business time.
    pub clock: crate::clock::Clock,
    /// `ALERTMANAGER_TOKEN`: the bearer token Alertmanager must send.
    pub alertmanager_token: Option<String>,
    /// What Kubernetes clusters are connected (reported by `/readyz`).
    pub clusters: crate::catalog::kubernetes::StatusBoard,
}

/// Builds the router.
pub fn router(state: HttpState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/slack/events", post(slack::events))
        .route("/slack/commands", post(slack::commands))
        .route("/slack/interactivity", post(slack::interactivity))
        .route("/webhooks/github", post(github::webhook))
        .route("/webhooks/alertmanager", post(alertmanager::webhook))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(metrics, track))
        .with_state(state)
}

async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .http_duration
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}
