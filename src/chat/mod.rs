//! The transport-neutral chat model: what came in ([`Inbound`]), what goes out
//! ([`Reply`], [`Outgoing`]) and the [`Chat`] side that delivers it.
//!
//! Slack (HTTP, Socket Mode) and the console both turn their input into an
//! [`Inbound`] and hand it to the one dispatcher; nothing below this module
//! knows which transport a message came from.

pub mod console;
mod modal;
pub mod mrkdwn;
mod reply;
pub mod slack;

pub use modal::{InputKind, Modal, ModalInput};
pub use reply::{Block, Button, ButtonStyle, Reply, Visibility};

use crate::auth::{Actor, Place};
use crate::ids::{ChannelId, MessageTs, UserId};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One thing a person did, already parsed and attributed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Inbound {
    /// Who did it, with their roles and tenant.
    pub actor: Actor,
    /// Where: channel, thread, tenant.
    pub place: Place,
    /// What.
    pub kind: InboundKind,
}

/// The kinds of input the jobs react to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum InboundKind {
    /// `/wk <text>`.
    Command(SlashCommand),
    /// A message posted, edited or deleted.
    Message(MessageEvent),
    /// A reaction added or removed on a message.
    Reaction(ReactionEvent),
    /// A button clicked.
    BlockAction(BlockAction),
    /// A modal submitted.
    ViewSubmission(ViewSubmission),
}

/// A slash command invocation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SlashCommand {
    /// Everything after `/wk `.
    pub text: String,
    /// Where Slack accepts delayed replies for 30 minutes.
    pub response_url: Option<String>,
    /// Lets the bot open a modal for 3 seconds.
    pub trigger_id: Option<String>,
}

/// What happened to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageChange {
    /// Newly posted.
    Posted,
    /// Its text was edited.
    Edited,
    /// It was deleted.
    Deleted,
}

/// A message in a channel or thread.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageEvent {
    /// The message's own timestamp (its id).
    pub ts: MessageTs,
    /// Its text (empty for deletions).
    pub text: String,
    /// Posted, edited or deleted.
    pub change: MessageChange,
    /// Posted by a bot or an app, which never opens requests.
    pub from_bot: bool,
}

/// A reaction on a message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReactionEvent {
    /// Emoji name without colons, e.g. `eyes`.
    pub name: String,
    /// The message reacted to.
    pub item_ts: MessageTs,
    /// Added (true) or removed (false).
    pub added: bool,
}

/// A button click.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockAction {
    /// The button's `action_id`, naming what to do.
    pub action_id: String,
    /// The button's value: an id, never state.
    pub value: String,
    /// The message carrying the button.
    pub message_ts: Option<MessageTs>,
    /// Where Slack accepts a reply.
    pub response_url: Option<String>,
    /// Lets the bot open a modal.
    pub trigger_id: Option<String>,
}

/// A submitted modal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ViewSubmission {
    /// The view's `callback_id`, naming the form.
    pub callback_id: String,
    /// The view's `private_metadata`: an id, never state.
    pub private_metadata: String,
    /// Input values by `action_id` (selected option values for selects).
    pub values: BTreeMap<String, String>,
}

/// Where an outgoing message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A channel, optionally inside a thread.
    Channel {
        /// The channel.
        channel: ChannelId,
        /// The thread to reply in.
        thread: Option<MessageTs>,
    },
    /// Only one person sees it, in a channel (ephemeral).
    Ephemeral {
        /// The channel.
        channel: ChannelId,
        /// The one person who sees it.
        user: UserId,
        /// The thread, if any.
        thread: Option<MessageTs>,
    },
    /// A direct message to a person.
    Direct {
        /// The recipient.
        user: UserId,
    },
    /// A Slack `response_url` (slash command or button), valid for 30 minutes.
    ResponseUrl {
        /// The URL.
        url: String,
        /// Visible to the caller only.
        ephemeral: bool,
    },
    /// Replace an earlier message (a status card), by its recorded `ts`.
    Update {
        /// The channel of the message.
        channel: ChannelId,
        /// The message's `ts` as recorded from the first post.
        ts: MessageTs,
    },
}

/// A reply on its way to a destination.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Where it goes.
    pub to: Destination,
    /// What it says.
    pub reply: Reply,
    /// The outbox's idempotency key, carried in the message so that a post whose
    /// fate is in doubt can be found again ([`Chat::find_posted`]).
    pub key: Option<String>,
}

/// What the chat side reports after delivering a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    /// The channel it landed in, when known.
    pub channel: Option<ChannelId>,
    /// Its `ts`, for later updates, when known.
    pub ts: Option<MessageTs>,
}

/// Why a delivery failed, sorted by what the caller should do next.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Slack asked us to slow down; try again after this long.
    #[error("rate limited by Slack; retry after {retry_after:?}")]
    RateLimited {
        /// Slack's `Retry-After`, when it sent one.
        retry_after: Option<std::time::Duration>,
    },
    /// Retrying will not help (channel_not_found, not_in_channel, invalid_auth…).
    #[error("Slack refused the message: {code}")]
    Permanent {
        /// Slack's error code.
        code: String,
    },
    /// A network failure, a 5xx or a timeout: try again later.
    #[error("Slack could not be reached: {0}")]
    Transient(String),
}

/// The side that delivers replies: Slack's Web API or the console.
///
/// Only the outbox calls it: jobs record effects, they never talk to Slack.
pub trait Chat: Send + Sync {
    /// Delivers one message.
    fn send(&self, message: Outgoing) -> BoxFuture<'_, Result<Posted, ChatError>>;

    /// Adds a reaction to a message (already present counts as done).
    fn react<'a>(
        &'a self,
        channel: &'a ChannelId,
        ts: &'a MessageTs,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>>;

    /// Opens a modal for the person whose click or command gave `trigger_id`.
    fn open_modal<'a>(
        &'a self,
        trigger_id: &'a str,
        modal: &'a Modal,
    ) -> BoxFuture<'a, Result<(), ChatError>>;

    /// Looks for a message posted with `key` (see [`Outgoing::key`]) at `to`
    /// (a channel or thread, or a person's DM) since `since`: the check made
    /// before re-sending a post whose earlier attempt may have reached Slack.
    fn find_posted<'a>(
        &'a self,
        to: &'a Destination,
        key: &'a str,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<Posted>, ChatError>>;

    /// Whether a DM to `user` can be sent without asking Slack for the DM
    /// channel first (`conversations.open`), so no permit is needed for it.
    fn knows_dm(&self, _user: &UserId) -> bool {
        false
    }
}

/// The `block_id` a post with idempotency key `key` carries in its first block.
pub fn post_marker(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    format!("wk-{}", &hex::encode(digest)[..32])
}
