//! Slack effects — posts, updates, reactions, modals — and the sink that
//! delivers them through the [`Chat`] side within Slack's rate limits.
//!
//! Every post carries its outbox key as the `block_id` of its first block.
//! When a post's fate is in doubt (its worker died after sending, or Slack
//! timed out), the sink first looks for a message with that marker in the
//! channel, thread or DM, and records it instead of posting again: channel,
//! thread and DM posts happen exactly once. Ephemeral messages and
//! `response_url` answers cannot be looked up; after a crash they may be shown
//! twice, to the one person they are for. Updates and reactions are idempotent.

use super::{Delivery, Effect, Sink};
use crate::chat::slack::limits::SlackLimits;
use crate::chat::{Chat, ChatError, Destination, Modal, Outgoing, Posted, Reply};
use crate::ids::{ChannelId, MessageTs, UserId};
use crate::store::Store;
use crate::store::outbox::OutboxItem;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// A message the effect refers to: known by its `ts`, or the post recorded
/// earlier under an outbox key (its `ts` is known once that post is delivered).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRef {
    /// A message whose `ts` we know.
    Ts(MessageTs),
    /// The message posted by the outbox item with this key.
    Posted(String),
}

/// Where a post goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A channel, or a thread in it.
    Channel {
        /// The channel.
        channel: ChannelId,
        /// The thread to reply in.
        thread: Option<MessageRef>,
    },
    /// Visible to one person in a channel.
    Ephemeral {
        /// The channel.
        channel: ChannelId,
        /// The person.
        user: UserId,
        /// The thread, if any.
        thread: Option<MessageRef>,
    },
    /// A direct message.
    Direct {
        /// The person.
        user: UserId,
    },
    /// A slash command's or button's `response_url`.
    ResponseUrl {
        /// The URL.
        url: String,
        /// Only the person who acted sees it.
        ephemeral: bool,
    },
}

/// One thing to do in Slack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SlackEffect {
    /// Post a message.
    Post {
        /// Where.
        to: Target,
        /// What.
        reply: Reply,
    },
    /// Replace an earlier message (a status card).
    Update {
        /// Its channel.
        channel: ChannelId,
        /// The message.
        message: MessageRef,
        /// The new content.
        reply: Reply,
    },
    /// Add a reaction to a message.
    React {
        /// Its channel.
        channel: ChannelId,
        /// The message.
        message: MessageRef,
        /// Emoji name without colons.
        name: String,
    },
    /// Open a modal (within three seconds of the click or command).
    OpenModal {
        /// From the click or command.
        trigger_id: String,
        /// The form.
        modal: Modal,
    },
}

impl Effect for SlackEffect {
    const SINK: &'static str = "slack";

    fn lane(&self) -> String {
        match self {
            SlackEffect::Post { to, .. } => match to {
                Target::Channel { channel, .. } | Target::Ephemeral { channel, .. } => {
                    format!("slack:{channel}")
                }
                Target::Direct { user } => format!("slack:dm:{user}"),
                Target::ResponseUrl { url, .. } => {
                    format!("slack:url:{}", &crate::chat::post_marker(url)[3..19])
                }
            },
            SlackEffect::Update { channel, .. } | SlackEffect::React { channel, .. } => {
                format!("slack:{channel}")
            }
            SlackEffect::OpenModal { trigger_id, .. } => format!("slack:modal:{trigger_id}"),
        }
    }
}

/// Delivers [`SlackEffect`]s.
pub struct SlackSink {
    chat: Arc<dyn Chat>,
    limits: Option<Arc<SlackLimits>>,
    store: Store,
}

/// A referenced message that is not posted yet is waited for this long.
const REFERENCE_WAIT: Duration = Duration::from_secs(1);

impl SlackSink {
    /// A sink over `chat`, within `limits` when given (the console has none).
    pub fn new(chat: Arc<dyn Chat>, limits: Option<Arc<SlackLimits>>, store: Store) -> Self {
        Self {
            chat,
            limits,
            store,
        }
    }

    fn permit(&self, method: &str, channel: Option<&ChannelId>) -> Result<(), Delivery> {
        match &self.limits {
            Some(limits) => limits
                .check(method, channel.map(ChannelId::as_str))
                .map_err(|(limit, after)| Delivery::Wait {
                    limit: limit.label(),
                    after,
                }),
            None => Ok(()),
        }
    }

    /// The `ts` of a referenced message, or what to do until it is known.
    async fn resolve(&self, message: &MessageRef) -> Result<MessageTs, Delivery> {
        self.resolve_with_channel(message).await.map(|(ts, _)| ts)
    }

    /// The `ts` of a referenced message and, for one the outbox posted, the
    /// channel Slack put it in (a DM's `D…` id, known only once posted).
    async fn resolve_with_channel(
        &self,
        message: &MessageRef,
    ) -> Result<(MessageTs, Option<ChannelId>), Delivery> {
        let key = match message {
            MessageRef::Ts(ts) => return Ok((ts.clone(), None)),
            MessageRef::Posted(key) => key,
        };
        let retry = |e: crate::store::StoreError| Delivery::Retry {
            after: None,
            in_doubt: false,
            reason: e.to_string(),
        };
        let never_posted = || {
            Delivery::Failed(format!(
                "the message it refers to (`{key}`) was never posted"
            ))
        };
        match self.store.outbox_state(key).await.map_err(retry)? {
            Some(state) if state.status == "delivered" => {
                let result = state.result.as_ref();
                let channel = result
                    .and_then(|r| r.get("channel"))
                    .and_then(Value::as_str)
                    .filter(|c| !c.is_empty())
                    .map(ChannelId::from);
                result
                    .and_then(|r| r.get("ts"))
                    .and_then(Value::as_str)
                    .map(|ts| (MessageTs::from(ts), channel))
                    .ok_or_else(|| Delivery::Failed(format!("the message `{key}` has no ts")))
            }
            Some(state) if state.status == "pending" || state.status == "sending" => {
                Err(Delivery::Wait {
                    limit: "reference",
                    after: REFERENCE_WAIT,
                })
            }
            Some(_) => Err(never_posted()),
            // Posted before the retention period: housekeeping deleted the row.
            None => self
                .store
                .posted_message(key)
                .await
                .map_err(retry)?
                .map(|(channel, ts)| {
                    (
                        MessageTs::from(ts.as_str()),
                        Some(ChannelId::from(channel.as_str())),
                    )
                })
                .ok_or_else(never_posted),
        }
    }

    async fn resolve_thread(
        &self,
        thread: &Option<MessageRef>,
    ) -> Result<Option<MessageTs>, Delivery> {
        match thread {
            Some(message) => self.resolve(message).await.map(Some),
            None => Ok(None),
        }
    }

    async fn post(&self, item: &OutboxItem, to: &Target, reply: &Reply) -> Delivery {
        let destination = match to {
            Target::Channel { channel, thread } => match self.resolve_thread(thread).await {
                Ok(thread) => Destination::Channel {
                    channel: channel.clone(),
                    thread,
                },
                Err(delivery) => return delivery,
            },
            Target::Ephemeral {
                channel,
                user,
                thread,
            } => match self.resolve_thread(thread).await {
                Ok(thread) => Destination::Ephemeral {
                    channel: channel.clone(),
                    user: user.clone(),
                    thread,
                },
                Err(delivery) => return delivery,
            },
            Target::Direct { user } => Destination::Direct { user: user.clone() },
            Target::ResponseUrl { url, ephemeral } => Destination::ResponseUrl {
                url: url.clone(),
                ephemeral: *ephemeral,
            },
        };
        let findable = matches!(
            destination,
            Destination::Channel { .. } | Destination::Direct { .. }
        );
        let permit = match &destination {
            Destination::Channel { channel, .. } => self.permit("chat.postMessage", Some(channel)),
            Destination::Ephemeral { channel, .. } => {
                self.permit("chat.postEphemeral", Some(channel))
            }
            Destination::Direct { user } if self.chat.knows_dm(user) => {
                self.permit("chat.postMessage", None)
            }
            Destination::Direct { .. } => self
                .permit("conversations.open", None)
                .and_then(|()| self.permit("chat.postMessage", None)),
            _ => Ok(()),
        };
        if let Err(wait) = permit {
            return wait;
        }
        if item.in_doubt && findable {
            if let Err(wait) = self.permit("conversations.history", None) {
                return wait;
            }
            match self
                .chat
                .find_posted(&destination, &item.key, item.created_at)
                .await
            {
                Ok(Some(posted)) => {
                    tracing::info!(
                        key = item.key,
                        "in-doubt post was already in Slack; not posting again"
                    );
                    return Delivery::Done(posted_json(&posted));
                }
                Ok(None) => {}
                Err(err) => return failure(err, true),
            }
        }
        let message = Outgoing {
            to: destination,
            reply: reply.clone(),
            key: Some(item.key.clone()),
        };
        match self.chat.send(message).await {
            Ok(posted) => Delivery::Done(posted_json(&posted)),
            Err(err) => failure(err, findable),
        }
    }
}

fn posted_json(posted: &Posted) -> Value {
    json!({ "channel": posted.channel, "ts": posted.ts })
}

/// Sorts a chat failure into what the outbox should do.
fn failure(err: ChatError, ambiguous: bool) -> Delivery {
    match err {
        ChatError::RateLimited { retry_after } => Delivery::Retry {
            after: Some(retry_after.unwrap_or(Duration::from_secs(30))),
            in_doubt: false,
            reason: "Slack answered 429 (rate limited)".into(),
        },
        ChatError::Permanent { code } => Delivery::Failed(code),
        ChatError::Transient(reason) => Delivery::Retry {
            after: None,
            in_doubt: ambiguous,
            reason,
        },
    }
}

impl Sink for SlackSink {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let effect: SlackEffect = match serde_json::from_value(item.payload.clone()) {
                Ok(effect) => effect,
                Err(err) => return Delivery::Failed(format!("unreadable Slack effect: {err}")),
            };
            match &effect {
                SlackEffect::Post { to, reply } => self.post(item, to, reply).await,
                SlackEffect::Update {
                    channel,
                    message,
                    reply,
                } => {
                    // A posted message is updated where Slack put it (a DM
                    // card's channel is known only from its post).
                    let (ts, posted_in) = match self.resolve_with_channel(message).await {
                        Ok(found) => found,
                        Err(delivery) => return delivery,
                    };
                    let channel = posted_in.as_ref().unwrap_or(channel);
                    if let Err(wait) = self.permit("chat.update", Some(channel)) {
                        return wait;
                    }
                    let message = Outgoing {
                        to: Destination::Update {
                            channel: channel.clone(),
                            ts,
                        },
                        reply: reply.clone(),
                        key: None,
                    };
                    match self.chat.send(message).await {
                        Ok(posted) => Delivery::Done(posted_json(&posted)),
                        Err(err) => failure(err, false),
                    }
                }
                SlackEffect::React {
                    channel,
                    message,
                    name,
                } => {
                    let ts = match self.resolve(message).await {
                        Ok(ts) => ts,
                        Err(delivery) => return delivery,
                    };
                    if let Err(wait) = self.permit("reactions.add", Some(channel)) {
                        return wait;
                    }
                    match self.chat.react(channel, &ts, name).await {
                        Ok(()) => Delivery::Done(json!({ "channel": channel, "ts": ts })),
                        Err(err) => failure(err, false),
                    }
                }
                SlackEffect::OpenModal { trigger_id, modal } => {
                    if let Err(wait) = self.permit("views.open", None) {
                        return wait;
                    }
                    match self.chat.open_modal(trigger_id, modal).await {
                        Ok(()) => Delivery::Done(json!({ "opened": modal.callback_id })),
                        Err(err) => failure(err, false),
                    }
                }
            }
        })
    }
}
