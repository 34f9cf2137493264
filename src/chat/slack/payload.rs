//! Slack's inbound payloads as typed values: Events API envelopes, slash-command
//! forms and interactivity payloads (over HTTP or inside Socket Mode envelopes).
//!
//! Parsing is lenient about fields we do not use and strict about the ones we
//! do: a payload missing what we need is a [`PayloadError`] with a short reason,
//! never a panic. Shapes follow the captures in `shared/fixtures/`.

use serde::Deserialize;
use serde_json::Value;

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    /// The body is not the JSON or form encoding expected.
    #[error("body is not valid {0}")]
    Encoding(&'static str),
    /// A field we need is missing or of the wrong type.
    #[error("{0}")]
    Shape(String),
}

/// The longest reason given for a refused payload, in characters.
const MAX_REASON: usize = 300;

/// A parser's reason for refusing a payload, fit for a log line and a 400:
/// serde quotes the offending value as sent, so control characters become
/// spaces and a long value is cut.
pub fn reason_of(err: &impl std::fmt::Display) -> String {
    let text = err.to_string().replace(char::is_control, " ");
    if text.chars().count() <= MAX_REASON {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_REASON).collect();
    cut.push('…');
    cut
}

fn shape<E: std::fmt::Display>(err: E) -> PayloadError {
    PayloadError::Shape(reason_of(&err))
}

/// A body posted to `/slack/events` (or an `events_api` Socket Mode payload).
#[derive(Debug, Clone, PartialEq)]
pub enum EventsBody {
    /// Slack checking the endpoint; answer with the challenge.
    UrlVerification {
        /// Echo this back.
        challenge: String,
    },
    /// Slack stopped sending events for a minute because we were slow.
    AppRateLimited,
    /// One event.
    Callback(EventCallback),
    /// An envelope type we do not handle.
    Other(String),
}

/// An `event_callback` envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct EventCallback {
    /// Unique per event; Slack's retries carry the same id.
    pub event_id: String,
    /// The workspace the event was delivered for.
    pub team_id: Option<String>,
    /// The event itself.
    pub event: Event,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
    event_id: Option<String>,
    team_id: Option<String>,
    event: Option<Value>,
}

/// The inner events we act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A message posted, edited or deleted.
    Message(MessagePayload),
    /// A reaction added or removed.
    Reaction(ReactionPayload),
    /// Anything else (app_mention, member_joined_channel, …): acknowledged, not acted on.
    Ignored(String),
}

/// What the message event says, flattened over its subtypes.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagePayload {
    /// The channel.
    pub channel: String,
    /// Author; absent for classic bot messages.
    pub user: Option<String>,
    /// Author's workspace (`user_team`, else `team`), when given.
    pub user_team: Option<String>,
    /// The message's ts (for edits and deletions, the original message's).
    pub ts: String,
    /// The thread it is in.
    pub thread_ts: Option<String>,
    /// Text (empty when deleted).
    pub text: String,
    /// Posted, edited or deleted.
    pub change: crate::chat::MessageChange,
    /// Sent by a bot or an app.
    pub from_bot: bool,
}

/// A reaction event.
#[derive(Debug, Clone, PartialEq)]
pub struct ReactionPayload {
    /// Who reacted.
    pub user: String,
    /// Emoji name.
    pub reaction: String,
    /// Channel of the message reacted to.
    pub channel: String,
    /// The message reacted to.
    pub item_ts: String,
    /// Added or removed.
    pub added: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMessage {
    subtype: Option<String>,
    channel: Option<String>,
    user: Option<String>,
    user_team: Option<String>,
    team: Option<String>,
    bot_id: Option<String>,
    ts: Option<String>,
    thread_ts: Option<String>,
    text: Option<String>,
    deleted_ts: Option<String>,
    message: Option<Box<RawMessage>>,
    previous_message: Option<Box<RawMessage>>,
}

#[derive(Deserialize)]
struct RawReaction {
    user: String,
    reaction: String,
    item: RawReactionItem,
}

#[derive(Deserialize)]
struct RawReactionItem {
    channel: Option<String>,
    ts: Option<String>,
}

/// Parses a body posted to `/slack/events`.
pub fn parse_events(body: &[u8]) -> Result<EventsBody, PayloadError> {
    let envelope: RawEnvelope = serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            PayloadError::Encoding("JSON")
        } else {
            shape(e)
        }
    })?;
    events_from_envelope(envelope)
}

/// Parses an `events_api` payload taken out of a Socket Mode envelope.
pub fn parse_events_value(value: Value) -> Result<EventsBody, PayloadError> {
    let envelope: RawEnvelope = serde_json::from_value(value).map_err(shape)?;
    events_from_envelope(envelope)
}

fn events_from_envelope(envelope: RawEnvelope) -> Result<EventsBody, PayloadError> {
    match envelope.kind.as_str() {
        "url_verification" => Ok(EventsBody::UrlVerification {
            challenge: envelope
                .challenge
                .ok_or_else(|| PayloadError::Shape("url_verification without challenge".into()))?,
        }),
        "app_rate_limited" => Ok(EventsBody::AppRateLimited),
        "event_callback" => {
            let event_id = envelope
                .event_id
                .ok_or_else(|| PayloadError::Shape("event_callback without event_id".into()))?;
            let event = envelope
                .event
                .ok_or_else(|| PayloadError::Shape("event_callback without event".into()))?;
            Ok(EventsBody::Callback(EventCallback {
                event_id,
                team_id: envelope.team_id,
                event: parse_event(event)?,
            }))
        }
        other => Ok(EventsBody::Other(other.to_string())),
    }
}

/// Parses an inner event by its `type`.
pub fn parse_event(event: Value) -> Result<Event, PayloadError> {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| PayloadError::Shape("event without type".into()))?
        .to_string();
    match kind.as_str() {
        "message" => {
            let raw: RawMessage = serde_json::from_value(event).map_err(shape)?;
            Ok(message(raw).map_or_else(|| Event::Ignored("message".into()), Event::Message))
        }
        "reaction_added" | "reaction_removed" => {
            let raw: RawReaction = serde_json::from_value(event).map_err(shape)?;
            let (Some(channel), Some(item_ts)) = (id(raw.item.channel), id(raw.item.ts)) else {
                // Reactions on files have no channel/ts: nothing of ours.
                return Ok(Event::Ignored(kind));
            };
            let Some(user) = id(Some(raw.user)) else {
                return Ok(Event::Ignored(kind));
            };
            Ok(Event::Reaction(ReactionPayload {
                user,
                reaction: raw.reaction,
                channel,
                item_ts,
                added: kind == "reaction_added",
            }))
        }
        _ => Ok(Event::Ignored(kind)),
    }
}

/// An id as Slack sends it, with `""` (as in Slack's blanked schema samples) read as absent.
fn id(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn message(mut raw: RawMessage) -> Option<MessagePayload> {
    use crate::chat::MessageChange;
    let channel = id(raw.channel.take())?;
    raw.user = id(raw.user);
    raw.ts = id(raw.ts);
    raw.thread_ts = id(raw.thread_ts);
    raw.bot_id = id(raw.bot_id);
    raw.user_team = id(raw.user_team);
    raw.team = id(raw.team);
    raw.subtype = id(raw.subtype);
    match raw.subtype.as_deref() {
        None
        | Some("thread_broadcast")
        | Some("file_share")
        | Some("bot_message")
        | Some("me_message") => Some(MessagePayload {
            channel,
            from_bot: raw.bot_id.is_some() || raw.subtype.as_deref() == Some("bot_message"),
            user: raw.user,
            user_team: raw.user_team.or(raw.team),
            ts: raw.ts?,
            thread_ts: raw.thread_ts,
            text: raw.text.unwrap_or_default(),
            change: MessageChange::Posted,
        }),
        Some("message_changed") => {
            let new = raw.message?;
            let previous = raw.previous_message;
            let ts =
                id(new.ts.clone()).or_else(|| previous.as_ref().and_then(|p| id(p.ts.clone())))?;
            Some(MessagePayload {
                channel,
                from_bot: id(new.bot_id.clone()).is_some(),
                user: id(new.user.clone()),
                user_team: id(new.user_team.clone()).or(id(new.team.clone())),
                ts,
                thread_ts: id(new.thread_ts.clone()),
                text: new.text.clone().unwrap_or_default(),
                change: MessageChange::Edited,
            })
        }
        Some("message_deleted") => {
            let previous = raw.previous_message;
            let ts =
                id(raw.deleted_ts).or_else(|| previous.as_ref().and_then(|p| id(p.ts.clone())))?;
            Some(MessagePayload {
                channel,
                from_bot: previous
                    .as_ref()
                    .is_some_and(|p| id(p.bot_id.clone()).is_some()),
                user: previous.as_ref().and_then(|p| id(p.user.clone())),
                user_team: previous
                    .as_ref()
                    .and_then(|p| id(p.user_team.clone()).or(id(p.team.clone()))),
                ts,
                thread_ts: previous.and_then(|p| id(p.thread_ts)),
                text: String::new(),
                change: MessageChange::Deleted,
            })
        }
        // channel_join, message_replied, etc.: not a conversation message.
        Some(_) => None,
    }
}

/// A slash command, from a form body or a Socket Mode payload.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CommandPayload {
    /// The invoking user.
    pub user_id: String,
    /// The workspace Slack says the command came from.
    pub team_id: Option<String>,
    /// The user's own workspace, when Slack sends it (Slack Connect).
    #[serde(default)]
    pub user_team: Option<String>,
    /// The channel.
    pub channel_id: String,
    /// The command, e.g. `/wk`.
    pub command: String,
    /// Everything after the command.
    #[serde(default)]
    pub text: String,
    /// For delayed replies.
    #[serde(default)]
    pub response_url: Option<String>,
    /// For opening modals.
    #[serde(default)]
    pub trigger_id: Option<String>,
}

/// Parses a slash-command form body (`application/x-www-form-urlencoded`).
pub fn parse_command_form(body: &[u8]) -> Result<CommandPayload, PayloadError> {
    let command: CommandPayload =
        serde_urlencoded::from_bytes(body).map_err(|e| shape(format!("slash command: {e}")))?;
    command.checked()
}

/// Parses a slash command from a Socket Mode payload.
pub fn parse_command_value(value: Value) -> Result<CommandPayload, PayloadError> {
    let command: CommandPayload =
        serde_json::from_value(value).map_err(|e| shape(format!("slash command: {e}")))?;
    command.checked()
}

impl CommandPayload {
    /// Refuses a command without a user or channel: it could not be answered or authorised.
    fn checked(mut self) -> Result<Self, PayloadError> {
        if self.user_id.trim().is_empty() || self.channel_id.trim().is_empty() {
            return Err(PayloadError::Shape(
                "slash command without user_id or channel_id".into(),
            ));
        }
        self.team_id = id(self.team_id);
        self.user_team = id(self.user_team);
        self.response_url = id(self.response_url);
        self.trigger_id = id(self.trigger_id);
        Ok(self)
    }
}

/// An interactivity payload we act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Interaction {
    /// A button click.
    BlockAction(BlockActionPayload),
    /// A modal submission.
    ViewSubmission(ViewSubmissionPayload),
    /// Shortcuts, view_closed, suggestions…: acknowledged, not acted on.
    Ignored(String),
}

/// A button click.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockActionPayload {
    /// Who clicked.
    pub user: String,
    /// Their workspace.
    pub user_team: Option<String>,
    /// The channel of the message with the button (none in App Home).
    pub channel: Option<String>,
    /// The message with the button.
    pub message_ts: Option<String>,
    /// The thread of that message.
    pub thread_ts: Option<String>,
    /// The first action's id.
    pub action_id: String,
    /// The first action's value.
    pub value: String,
    /// For replies.
    pub response_url: Option<String>,
    /// For modals.
    pub trigger_id: Option<String>,
}

/// A modal submission.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewSubmissionPayload {
    /// Who submitted.
    pub user: String,
    /// Their workspace.
    pub user_team: Option<String>,
    /// The form.
    pub callback_id: String,
    /// The id the bot put there when it opened the modal.
    pub private_metadata: String,
    /// Unique per submission; de-duplicates redeliveries.
    pub trigger_id: Option<String>,
    /// Input values by action id.
    pub values: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: String,
    user: Option<RawUser>,
    channel: Option<RawId>,
    container: Option<RawContainer>,
    message: Option<RawMessageRef>,
    #[serde(default)]
    actions: Vec<RawAction>,
    response_url: Option<String>,
    trigger_id: Option<String>,
    view: Option<RawView>,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawContainer {
    channel_id: Option<String>,
    message_ts: Option<String>,
    thread_ts: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMessageRef {
    ts: Option<String>,
    thread_ts: Option<String>,
}

#[derive(Deserialize)]
struct RawAction {
    action_id: String,
    value: Option<String>,
    selected_option: Option<RawOption>,
}

#[derive(Deserialize)]
struct RawOption {
    value: String,
}

#[derive(Deserialize)]
struct RawView {
    callback_id: Option<String>,
    #[serde(default)]
    private_metadata: String,
    state: Option<RawState>,
}

#[derive(Deserialize)]
struct RawState {
    #[serde(default)]
    values: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Value>>,
}

/// Parses an interactivity form body (`payload=<json>`).
pub fn parse_interaction_form(body: &[u8]) -> Result<Interaction, PayloadError> {
    #[derive(Deserialize)]
    struct Form {
        payload: String,
    }
    let form: Form = serde_urlencoded::from_bytes(body)
        .map_err(|_| PayloadError::Shape("interactivity body without payload=".into()))?;
    let value: Value = serde_json::from_str(&form.payload)
        .map_err(|_| PayloadError::Encoding("JSON in payload="))?;
    parse_interaction_value(value)
}

/// Parses an interactivity payload (HTTP `payload=` or Socket Mode `interactive`).
pub fn parse_interaction_value(value: Value) -> Result<Interaction, PayloadError> {
    let raw: RawInteraction = serde_json::from_value(value).map_err(shape)?;
    let user = raw
        .user
        .filter(|u| !u.id.trim().is_empty())
        .ok_or_else(|| PayloadError::Shape("interaction without a user id".into()));
    match raw.kind.as_str() {
        "block_actions" => {
            let user = user?;
            let action = raw
                .actions
                .into_iter()
                .next()
                .ok_or_else(|| PayloadError::Shape("block_actions without actions".into()))?;
            let container = raw.container.unwrap_or_default();
            let message = raw.message.unwrap_or_default();
            Ok(Interaction::BlockAction(BlockActionPayload {
                user: user.id,
                user_team: id(user.team_id),
                channel: id(raw.channel.map(|c| c.id)).or(id(container.channel_id)),
                message_ts: id(container.message_ts).or(id(message.ts)),
                thread_ts: id(container.thread_ts).or(id(message.thread_ts)),
                value: action
                    .value
                    .or(action.selected_option.map(|o| o.value))
                    .unwrap_or_default(),
                action_id: action.action_id,
                response_url: raw.response_url,
                trigger_id: raw.trigger_id,
            }))
        }
        "view_submission" => {
            let user = user?;
            let view = raw
                .view
                .ok_or_else(|| PayloadError::Shape("view_submission without view".into()))?;
            let mut values = std::collections::BTreeMap::new();
            for inputs in view
                .state
                .map(|s| s.values)
                .unwrap_or_default()
                .into_values()
            {
                for (action_id, input) in inputs {
                    if let Some(value) = input_value(&input) {
                        values.insert(action_id, value);
                    }
                }
            }
            Ok(Interaction::ViewSubmission(ViewSubmissionPayload {
                user: user.id,
                user_team: id(user.team_id),
                callback_id: view.callback_id.unwrap_or_default(),
                private_metadata: view.private_metadata,
                trigger_id: id(raw.trigger_id),
                values,
            }))
        }
        other => Ok(Interaction::Ignored(other.to_string())),
    }
}

/// The value of one input element of a submitted view, whatever its type.
fn input_value(input: &Value) -> Option<String> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    if let Some(v) = input.get("value").and_then(text) {
        return Some(v);
    }
    if let Some(v) = input.pointer("/selected_option/value").and_then(text) {
        return Some(v);
    }
    for key in [
        "selected_user",
        "selected_channel",
        "selected_conversation",
        "selected_date",
        "selected_time",
    ] {
        if let Some(v) = input.get(key).and_then(text) {
            return Some(v);
        }
    }
    for key in [
        "selected_users",
        "selected_channels",
        "selected_conversations",
    ] {
        if let Some(list) = input.get(key).and_then(Value::as_array) {
            let items: Vec<String> = list.iter().filter_map(text).collect();
            return Some(items.join(","));
        }
    }
    if let Some(list) = input.get("selected_options").and_then(Value::as_array) {
        let items: Vec<String> = list
            .iter()
            .filter_map(|o| o.get("value").and_then(text))
            .collect();
        return Some(items.join(","));
    }
    None
}
