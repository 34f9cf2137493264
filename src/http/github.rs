//! `POST /webhooks/github`: GitHub tells us an issue was closed or reopened.
//!
//! The signature (`X-Hub-Signature-256`, HMAC-SHA256 of the raw body with
//! `GITHUB_WEBHOOK_SECRET`) is verified before anything is parsed; without a
//! secret the endpoint refuses everything. Deliveries are idempotent: a state
//! change is recorded (and announced) once, however often GitHub redelivers.

use super::HttpState;
use crate::forge::webhook::{self, WebhookEvent};
use crate::work::Work;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

fn answer(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// Handles one delivery.
pub async fn webhook(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &state.github_secret else {
        tracing::warn!("GitHub webhook refused: GITHUB_WEBHOOK_SECRET is not set");
        return answer(StatusCode::UNAUTHORIZED, "webhooks are not configured here");
    };
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if let Err(err) = webhook::verify_signature(secret, &body, signature) {
        tracing::warn!(error = %err, "GitHub webhook refused");
        return answer(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parsed = match webhook::parse_event(event, &body) {
        Ok(parsed) => parsed,
        Err(err) => {
            tracing::warn!(event, error = %err, "GitHub webhook payload refused");
            return answer(StatusCode::BAD_REQUEST, &err.to_string());
        }
    };
    let WebhookEvent::Issue {
        repo,
        number,
        state: issue_state,
        ..
    } = parsed
    else {
        return answer(StatusCode::OK, "ignored");
    };
    let store = state.store.clone();
    let postmortem = match store
        .postmortem_by_issue("github", &repo, i64::try_from(number).unwrap_or(-1))
        .await
    {
        Ok(Some(pm)) => pm,
        Ok(None) => return answer(StatusCode::OK, "not a postmortem we track"),
        Err(err) => {
            tracing::error!(error = %err, "cannot look up the postmortem of a GitHub issue");
            return answer(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let mut work = Work::new(store, state.clock.now());
    let poll = state
        .ingress
        .dispatcher()
        .env()
        .config
        .postmortems
        .poll
        .as_chrono();
    let applied =
        crate::postmortem::apply_issue_state(&mut work, &postmortem, issue_state, "webhook", poll)
            .await;
    let committed = match applied {
        Ok(changed) => work.commit().await.map(|()| changed),
        Err(err) => Err(err),
    };
    match committed {
        Ok(true) => answer(StatusCode::OK, "recorded"),
        Ok(false) => answer(StatusCode::OK, "no change"),
        Err(err) => {
            tracing::error!(error = %err, "cannot record a GitHub issue's state");
            answer(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}
