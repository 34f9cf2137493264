//! `/healthz` (the process is up), `/readyz` (store reachable, migrations
//! applied, not draining; then one line per watched Kubernetes cluster,
//! which never decides readiness) and `/metrics`.

use super::HttpState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::sync::atomic::Ordering;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if !state.ready.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: starting or draining\n".to_string(),
        );
    }
    if !state.store.is_ready().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: database unreachable or migrations pending\n".to_string(),
        );
    }
    let mut body = String::from("ready\n");
    for line in state.clusters.lines() {
        body.push_str(&line);
        body.push('\n');
    }
    (StatusCode::OK, body)
}

pub async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
