//! Ingress: what happens to a verified Slack payload, whichever way it came
//! (HTTP or Socket Mode). Events are de-duplicated and queued, and answered at
//! once; commands are answered inline when quick, else acknowledged and
//! answered later on their `response_url`; buttons and modals are queued.
//!
//! The queue keeps inputs of one channel in order and runs channels
//! concurrently. Nothing here waits on Slack's API while Slack waits for us.

use crate::chat::slack::inbound;
use crate::chat::slack::payload::{CommandPayload, EventsBody, Interaction};
use crate::chat::{Chat, Destination, Inbound, InboundKind, Outgoing, Reply};
use crate::clock::Clock;
use crate::dispatch::{Dispatcher, Outcome};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a slash command may take before we acknowledge and answer later
/// (Slack gives up after 3 s).
pub const COMMAND_DEADLINE: Duration = Duration::from_millis(2_500);

/// Workers in the per-channel queue.
const WORKERS: usize = 8;

/// What to answer Slack for an events body.
#[derive(Debug, PartialEq, Eq)]
pub enum EventAck {
    /// Echo the challenge.
    Challenge(String),
    /// Taken (or deliberately ignored).
    Accepted,
    /// Seen before: a redelivery.
    Duplicate,
}

/// The shared ingress; cheap to clone.
#[derive(Clone)]
pub struct Ingress {
    dispatcher: Dispatcher,
    store: Store,
    chat: Arc<dyn Chat>,
    clock: Clock,
    metrics: Metrics,
    queue: Arc<Vec<mpsc::UnboundedSender<Inbound>>>,
}

impl Ingress {
    /// Starts the queue workers.
    pub fn start(
        dispatcher: Dispatcher,
        store: Store,
        chat: Arc<dyn Chat>,
        clock: Clock,
        metrics: Metrics,
    ) -> Self {
        let mut queue = Vec::with_capacity(WORKERS);
        for _ in 0..WORKERS {
            let (tx, mut rx) = mpsc::unbounded_channel::<Inbound>();
            let dispatcher = dispatcher.clone();
            let chat = chat.clone();
            tokio::spawn(async move {
                while let Some(inbound) = rx.recv().await {
                    let outcome = dispatcher.handle(inbound.clone()).await;
                    deliver(chat.as_ref(), &inbound, outcome).await;
                }
            });
            queue.push(tx);
        }
        Self {
            dispatcher,
            store,
            chat,
            clock,
            metrics,
            queue: Arc::new(queue),
        }
    }

    /// The dispatcher behind this ingress.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    fn enqueue(&self, inbound: Inbound) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        inbound.place.channel.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % WORKERS as u64).unwrap_or(0);
        if self.queue[index].send(inbound).is_err() {
            tracing::error!("inbound queue worker has stopped");
        }
    }

    /// Handles an Events API body.
    pub async fn event(&self, body: EventsBody) -> Result<EventAck, StoreError> {
        match body {
            EventsBody::UrlVerification { challenge } => Ok(EventAck::Challenge(challenge)),
            EventsBody::AppRateLimited => {
                tracing::warn!("Slack reports app_rate_limited: events were dropped for a minute");
                self.metrics.event("rate_limited");
                Ok(EventAck::Accepted)
            }
            EventsBody::Other(kind) => {
                tracing::debug!(kind, "ignoring events envelope");
                self.metrics.event("ignored");
                Ok(EventAck::Accepted)
            }
            EventsBody::Callback(callback) => {
                if !self
                    .store
                    .first_delivery(&callback.event_id, self.clock.now())
                    .await?
                {
                    tracing::debug!(event_id = callback.event_id, "duplicate event");
                    self.metrics.event("duplicate");
                    return Ok(EventAck::Duplicate);
                }
                match inbound::from_event(&self.dispatcher.env().authorizer, callback.event) {
                    Some(inbound) => {
                        self.metrics.event("accepted");
                        self.enqueue(inbound);
                    }
                    None => self.metrics.event("ignored"),
                }
                Ok(EventAck::Accepted)
            }
        }
    }

    /// Handles a slash command: the reply if it is ready within the deadline,
    /// else an acknowledgement, with the answer following on the `response_url`.
    pub async fn command(&self, payload: CommandPayload) -> Reply {
        let inbound = inbound::from_command(&self.dispatcher.env().authorizer, payload);
        let verb = match &inbound.kind {
            InboundKind::Command(c) => c.text.split_whitespace().next().unwrap_or("help").to_string(),
            _ => String::new(),
        };
        let dispatcher = self.dispatcher.clone();
        let for_task = inbound.clone();
        let mut task = tokio::spawn(async move { dispatcher.handle(for_task).await });
        match tokio::time::timeout(COMMAND_DEADLINE, &mut task).await {
            Ok(Ok(outcome)) => {
                let reply = outcome.reply.clone().unwrap_or_default();
                deliver(
                    self.chat.as_ref(),
                    &inbound,
                    Outcome {
                        reply: None,
                        effects: outcome.effects,
                    },
                )
                .await;
                reply
            }
            Ok(Err(join)) => {
                tracing::error!(error = %join, "command handler panicked");
                Reply::text("Something went wrong on our side; please try again in a minute.")
            }
            Err(_) => {
                let chat = self.chat.clone();
                tokio::spawn(async move {
                    match task.await {
                        Ok(outcome) => deliver(chat.as_ref(), &inbound, outcome).await,
                        Err(join) => tracing::error!(error = %join, "command handler panicked"),
                    }
                });
                let text = self
                    .dispatcher
                    .env()
                    .manifest
                    .templates()
                    .render("common.working", &serde_json::json!({ "verb": verb }))
                    .unwrap_or_else(|_| "Working on it…".to_string());
                Reply::text(text)
            }
        }
    }

    /// Handles a button click or modal submission.
    pub fn interaction(&self, interaction: Interaction) {
        let auth = &self.dispatcher.env().authorizer;
        let inbound = match interaction {
            Interaction::BlockAction(action) => inbound::from_block_action(auth, action),
            Interaction::ViewSubmission(view) => inbound::from_view_submission(auth, view),
            Interaction::Ignored(kind) => {
                tracing::debug!(kind, "ignoring interaction");
                return;
            }
        };
        self.enqueue(inbound);
    }
}

/// Where the reply to an input goes when it is not answered inline.
fn reply_destination(inbound: &Inbound, visibility: crate::chat::Visibility) -> Destination {
    let response_url = match &inbound.kind {
        InboundKind::Command(c) => c.response_url.clone(),
        InboundKind::BlockAction(a) => a.response_url.clone(),
        _ => None,
    };
    let ephemeral = visibility == crate::chat::Visibility::Ephemeral;
    match response_url {
        Some(url) => Destination::ResponseUrl { url, ephemeral },
        None if ephemeral => Destination::Ephemeral {
            channel: inbound.place.channel.clone(),
            user: inbound.actor.user.clone(),
            thread: inbound.place.thread.clone(),
        },
        None => Destination::Channel {
            channel: inbound.place.channel.clone(),
            thread: inbound.place.thread.clone(),
        },
    }
}

/// Sends an outcome's reply and effects through the chat side.
pub async fn deliver(chat: &dyn Chat, inbound: &Inbound, outcome: Outcome) {
    let mut messages = Vec::new();
    if let Some(reply) = outcome.reply {
        messages.push(Outgoing {
            to: reply_destination(inbound, reply.visibility),
            reply,
        });
    }
    messages.extend(outcome.effects);
    for message in messages {
        if let Err(err) = chat.send(message).await {
            tracing::warn!(error = %err, "could not deliver a message");
        }
    }
}
