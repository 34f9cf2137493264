//! Ingress: what happens to a verified Slack payload, whichever way it came
//! (HTTP or Socket Mode).
//!
//! Events and interactions go into the inbox — a durable queue in the store,
//! de-duplicated by Slack's `event_id` (or the interaction's `trigger_id`) and
//! run in order per channel — and are acknowledged at once; the inbox worker
//! runs them through the dispatcher inside one transaction with everything
//! they cause, so an event is handled exactly once even if the process dies.
//! Slash commands are answered inline when quick, else acknowledged and
//! answered later on their `response_url` through the outbox. Nothing here
//! waits on Slack's API while Slack waits for us.

use crate::chat::slack::inbound;
use crate::chat::slack::payload::{CommandPayload, EventsBody, Interaction};
use crate::chat::{Inbound, InboundKind, Reply, Visibility};
use crate::clock::Clock;
use crate::dispatch::{CommandError, Dispatcher};
use crate::metrics::Metrics;
use crate::outbox::{MessageRef, SlackEffect, Target};
use crate::scheduler::{HandlerError, TimerHandler};
use crate::store::timers::{NewTimer, Queue, Timer};
use crate::store::{Store, StoreError};
use crate::work::Work;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::time::Duration;

/// How long a slash command may take before we acknowledge and answer later
/// (Slack gives up after 3 s).
pub const COMMAND_DEADLINE: Duration = Duration::from_millis(2_500);

/// How long recording an event or a click may take before Slack is told to
/// retry (it waits 3 s, then redelivers).
pub const ENQUEUE_DEADLINE: Duration = Duration::from_millis(2_000);

/// How long a late command reply keeps trying to reach the outbox while the
/// database is away (a `response_url` is good for 30 minutes).
const LATE_REPLY_PATIENCE: Duration = Duration::from_secs(25 * 60);

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
    clock: Clock,
    metrics: Metrics,
}

/// The inbox row for an inbound: keyed for de-duplication, laned by channel.
pub fn inbox_timer(key: String, inbound: &Inbound, now: DateTime<Utc>) -> NewTimer {
    NewTimer {
        queue: Queue::Inbox,
        kind: InboxHandler::KIND.to_string(),
        key,
        group: None,
        lane: Some(format!("channel:{}", inbound.place.channel)),
        payload: serde_json::to_value(inbound).unwrap_or_default(),
        due_at: now,
    }
}

impl Ingress {
    /// The ingress in front of `dispatcher`.
    pub fn new(dispatcher: Dispatcher, store: Store, clock: Clock, metrics: Metrics) -> Self {
        Self {
            dispatcher,
            store,
            clock,
            metrics,
        }
    }

    /// The dispatcher behind this ingress.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Puts an inbound into the inbox; false when its key was seen before.
    /// A database that does not answer within [`ENQUEUE_DEADLINE`] is an
    /// error, so Slack hears a retry-able status within its 3 s.
    async fn enqueue(&self, key: String, inbound: &Inbound) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let timer = inbox_timer(key, inbound, now);
        let new = tokio::time::timeout(ENQUEUE_DEADLINE, self.store.insert_timer(&timer, now))
            .await
            .map_err(|_| StoreError::Timeout(ENQUEUE_DEADLINE))??;
        if new {
            self.store.wakers().wake(crate::store::Wake::Inbox);
        }
        Ok(new)
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
                let Some(inbound) =
                    inbound::from_event(&self.dispatcher.env().authorizer, callback.event)
                else {
                    self.metrics.event("ignored");
                    return Ok(EventAck::Accepted);
                };
                let key = format!("slack:event:{}", callback.event_id);
                if self.enqueue(key, &inbound).await? {
                    self.metrics.event("accepted");
                    Ok(EventAck::Accepted)
                } else {
                    tracing::debug!(event_id = callback.event_id, "duplicate event");
                    self.metrics.event("duplicate");
                    Ok(EventAck::Duplicate)
                }
            }
        }
    }

    /// Handles a slash command: the reply if it is ready within the deadline,
    /// else an acknowledgement, with the answer following on the `response_url`.
    pub async fn command(&self, payload: CommandPayload) -> Reply {
        let inbound = inbound::from_command(&self.dispatcher.env().authorizer, payload);
        let verb = match &inbound.kind {
            InboundKind::Command(c) => c
                .text
                .split_whitespace()
                .next()
                .unwrap_or("help")
                .to_string(),
            _ => String::new(),
        };
        let dispatcher = self.dispatcher.clone();
        let for_task = inbound.clone();
        let mut task = tokio::spawn(async move { dispatcher.command(&for_task).await });
        match tokio::time::timeout(COMMAND_DEADLINE, &mut task).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(join)) => {
                tracing::error!(error = %join, "command handler panicked");
                Reply::text("Something went wrong on our side; please try again in a minute.")
            }
            Err(_) => {
                let store = self.store.clone();
                let clock = self.clock.clone();
                tokio::spawn(async move {
                    let reply = match task.await {
                        Ok(reply) => reply,
                        Err(join) => {
                            tracing::error!(error = %join, "command handler panicked");
                            return;
                        }
                    };
                    let key = format!("late-reply:{:016x}", rand::random::<u64>());
                    let effect = SlackEffect::Post {
                        to: reply_target(&inbound, reply.visibility),
                        reply,
                    };
                    // The database may be away: keep trying (same key, so a
                    // commit whose answer was lost is not recorded twice).
                    let started = std::time::Instant::now();
                    loop {
                        let mut work = Work::new(store.clone(), clock.now());
                        let recorded = match work.effect(&key, &effect).await {
                            Ok(_) => work.commit().await,
                            Err(err) => Err(err),
                        };
                        match recorded {
                            Ok(()) => break,
                            Err(err) if started.elapsed() < LATE_REPLY_PATIENCE => {
                                tracing::warn!(error = %err, "cannot record a late command reply yet; retrying");
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                            Err(err) => {
                                tracing::error!(error = %err, "could not record a late command reply");
                                break;
                            }
                        }
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

    /// Handles a button click or modal submission: into the inbox.
    pub async fn interaction(&self, interaction: Interaction) -> Result<(), StoreError> {
        let auth = &self.dispatcher.env().authorizer;
        let (inbound, trigger) = match interaction {
            Interaction::BlockAction(action) => {
                let trigger = action.trigger_id.clone();
                (inbound::from_block_action(auth, action), trigger)
            }
            Interaction::ViewSubmission(view) => {
                let trigger = view.trigger_id.clone();
                (inbound::from_view_submission(auth, view), trigger)
            }
            Interaction::Ignored(kind) => {
                tracing::debug!(kind, "ignoring interaction");
                return Ok(());
            }
        };
        let key = match trigger {
            Some(trigger) => format!("slack:interaction:{trigger}"),
            None => format!("slack:interaction:{:016x}", rand::random::<u64>()),
        };
        if !self.enqueue(key, &inbound).await? {
            tracing::debug!("duplicate interaction");
        }
        Ok(())
    }
}

/// Where the reply to an input goes when it is not answered inline.
pub fn reply_target(inbound: &Inbound, visibility: Visibility) -> Target {
    let response_url = match &inbound.kind {
        InboundKind::Command(c) => c.response_url.clone(),
        InboundKind::BlockAction(a) => a.response_url.clone(),
        _ => None,
    };
    let ephemeral = visibility == Visibility::Ephemeral;
    let thread = inbound.place.thread.clone().map(MessageRef::Ts);
    match response_url {
        Some(url) => Target::ResponseUrl { url, ephemeral },
        None if ephemeral => Target::Ephemeral {
            channel: inbound.place.channel.clone(),
            user: inbound.actor.user.clone(),
            thread,
        },
        None => Target::Channel {
            channel: inbound.place.channel.clone(),
            thread,
        },
    }
}

/// Runs inbox rows: one inbound through the dispatcher, inside the row's
/// transaction, with its reply recorded for the outbox.
pub struct InboxHandler {
    dispatcher: Dispatcher,
}

impl InboxHandler {
    /// The kind of inbox rows.
    pub const KIND: &'static str = "slack.inbound";

    /// A handler in front of `dispatcher`.
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }
}

impl TimerHandler for InboxHandler {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let inbound: Inbound = serde_json::from_value(timer.payload.clone())
                .map_err(|e| HandlerError::Permanent(format!("unreadable inbox row: {e}")))?;
            match self.dispatcher.handle(&inbound, work).await {
                Ok(Some(reply)) => {
                    let effect = SlackEffect::Post {
                        to: reply_target(&inbound, reply.visibility),
                        reply,
                    };
                    work.effect(&format!("{}:reply", timer.key), &effect)
                        .await?;
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(CommandError::Internal(source)) => Err(HandlerError::Retry(source.to_string())),
                Err(other) => Err(HandlerError::Retry(other.to_string())),
            }
        })
    }
}
