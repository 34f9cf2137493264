//! `POST /slack/events`, `/slack/commands`, `/slack/interactivity`.
//!
//! Order matters: the signature is verified over the raw bytes before anything
//! is parsed; a bad or missing signature is a 401, a malformed payload a 400
//! with a short reason, and everything else is acknowledged within Slack's 3 s.

use super::HttpState;
use crate::chat::slack::payload::{self, PayloadError};
use crate::ingress::EventAck;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::Instrument;

/// Refuses requests whose signature does not verify.
fn verify(state: &HttpState, headers: &HeaderMap, body: &[u8]) -> Result<(), Refused> {
    let Some(secret) = &state.signing_secret else {
        tracing::warn!("SLACK_SIGNING_SECRET is not set: refusing a Slack request");
        return Err(Refused("signing secret not configured".into()));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    secret
        .verify(
            header("x-slack-request-timestamp"),
            header("x-slack-signature"),
            body,
            now,
        )
        .map_err(|err| {
            tracing::warn!(reason = %err, "refused a Slack request");
            Refused(err.to_string())
        })
}

/// A request refused before parsing: always a 401 with the reason.
struct Refused(String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (StatusCode::UNAUTHORIZED, format!("{}\n", self.0)).into_response()
    }
}

fn bad_request(err: PayloadError) -> Response {
    tracing::warn!(reason = %err, "malformed Slack payload");
    (
        StatusCode::BAD_REQUEST,
        format!("malformed payload: {err}\n"),
    )
        .into_response()
}

pub async fn events(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = verify(&state, &headers, &body) {
        return refused.into_response();
    }
    let parsed = match payload::parse_events(&body) {
        Ok(parsed) => parsed,
        Err(err) => return bad_request(err),
    };
    if let Some(retry) = headers
        .get("x-slack-retry-num")
        .and_then(|v| v.to_str().ok())
    {
        tracing::debug!(retry, "Slack redelivery");
    }
    match state.ingress.event(parsed).await {
        Ok(EventAck::Challenge(challenge)) => {
            Json(json!({ "challenge": challenge })).into_response()
        }
        Ok(EventAck::Accepted | EventAck::Duplicate) => StatusCode::OK.into_response(),
        Err(err) => {
            // Slack will redeliver; nothing was recorded.
            tracing::error!(error = %err, "could not record an event");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable, retry\n",
            )
                .into_response()
        }
    }
}

pub async fn commands(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = verify(&state, &headers, &body) {
        return refused.into_response();
    }
    let command = match payload::parse_command_form(&body) {
        Ok(command) => command,
        Err(err) => return bad_request(err),
    };
    let span =
        tracing::info_span!("command", user = %command.user_id, channel = %command.channel_id);
    let reply = state.ingress.command(command).instrument(span).await;
    Json(reply.response_json()).into_response()
}

pub async fn interactivity(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = verify(&state, &headers, &body) {
        return refused.into_response();
    }
    match payload::parse_interaction_form(&body) {
        Ok(interaction) => match state.ingress.interaction(interaction).await {
            Ok(()) => StatusCode::OK.into_response(),
            Err(err) => {
                tracing::error!(error = %err, "could not record an interaction");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store unavailable, retry\n",
                )
                    .into_response()
            }
        },
        Err(err) => bad_request(err),
    }
}
