//! Socket Mode: Slack pushes the same payloads over a WebSocket instead of HTTP.
//!
//! Each envelope is acknowledged at once (with the reply for slash commands)
//! and its payload goes through the same parsers and [`Ingress`] as HTTP.
//! The connection is renewed when Slack asks (`disconnect`) or drops it.

use super::payload;
use super::web::SlackWebChat;
use crate::ingress::Ingress;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    envelope_id: Option<String>,
    payload: Option<Value>,
    reason: Option<String>,
}

/// Runs Socket Mode until `shutdown` turns true, reconnecting with backoff.
pub async fn run(
    web: SlackWebChat,
    app_token: String,
    ingress: Ingress,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    while !*shutdown.borrow() {
        match connect_once(&web, &app_token, &ingress, &mut shutdown).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?backoff, "Socket Mode connection failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// One connection: returns `Ok` when Slack asks us to reconnect or we shut down.
async fn connect_once(
    web: &SlackWebChat,
    app_token: &str,
    ingress: &Ingress,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let url = web
        .open_socket_mode(app_token)
        .await
        .map_err(|e| e.to_string())?;
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("Socket Mode connected");
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = shutdown.changed() => {
                let _ = socket.close(None).await;
                return Ok(());
            }
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => return Ok(()),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.to_string()),
        };
        let envelope: Envelope = match serde_json::from_str(text.as_str()) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(error = %err, "malformed Socket Mode frame");
                continue;
            }
        };
        match envelope.kind.as_str() {
            "hello" => tracing::debug!("Socket Mode hello"),
            "disconnect" => {
                tracing::info!(reason = ?envelope.reason, "Slack asked to reconnect");
                let _ = socket.close(None).await;
                return Ok(());
            }
            _ => {
                let ack = handle(ingress, envelope).await;
                if let Some(ack) = ack {
                    socket
                        .send(Message::Text(ack.to_string().into()))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }
}

/// Handles one envelope; returns the acknowledgement to send.
async fn handle(ingress: &Ingress, envelope: Envelope) -> Option<Value> {
    let id = envelope.envelope_id?;
    let Some(body) = envelope.payload else {
        return Some(json!({ "envelope_id": id }));
    };
    match envelope.kind.as_str() {
        "events_api" => match payload::parse_events_value(body) {
            Ok(events) => {
                if let Err(err) = ingress.event(events).await {
                    // Not acknowledged: Slack will redeliver.
                    tracing::error!(error = %err, "could not record an event");
                    return None;
                }
            }
            Err(err) => tracing::warn!(reason = %err, "malformed events_api payload"),
        },
        "slash_commands" => match payload::parse_command_value(body) {
            Ok(command) => {
                let reply = ingress.command(command).await;
                return Some(json!({ "envelope_id": id, "payload": reply.response_json() }));
            }
            Err(err) => tracing::warn!(reason = %err, "malformed slash_commands payload"),
        },
        "interactive" => match payload::parse_interaction_value(body) {
            Ok(interaction) => {
                if let Err(err) = ingress.interaction(interaction).await {
                    tracing::error!(error = %err, "could not record an interaction");
                    return None;
                }
            }
            Err(err) => tracing::warn!(reason = %err, "malformed interactive payload"),
        },
        other => tracing::debug!(kind = other, "ignoring Socket Mode envelope"),
    }
    Some(json!({ "envelope_id": id }))
}
