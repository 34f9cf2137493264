//! Slack payloads for support-intake tests, built from captured fixtures
//! (`../shared/fixtures`) with only ids, text and times replaced, so every
//! other field keeps the shape Slack sends — including Slack Connect's
//! `user_team` / `source_team` for a customer from another workspace.

use super::{TestApp, fixture};
use serde_json::{Value, json};

/// The form Slack posts to `/slack/commands` for `/wk <text>` typed by `user`
/// of workspace `team` in `channel`, answering later at `response_url`.
pub fn command_form(
    user: &str,
    team: &str,
    channel: &str,
    text: &str,
    response_url: &str,
) -> String {
    serde_urlencoded::to_string([
        ("token", "legacy"),
        ("team_id", team),
        ("team_domain", "example"),
        ("channel_id", channel),
        ("channel_name", "support"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", "/wk"),
        ("text", text),
        ("api_app_id", "A0WATCH"),
        ("response_url", response_url),
        ("trigger_id", "1.2.3"),
    ])
    .unwrap()
}

fn unique_event_id() -> String {
    format!("Ev{:012X}", rand::random::<u64>() & 0xFFFF_FFFF_FFFF)
}

/// A message `ts` at virtual time `app.clock` plus a counter (strings, as Slack sends).
pub fn ts_now(app: &TestApp, n: u32) -> String {
    format!("{}.{:06}", app.clock.now().timestamp(), n)
}

/// A message by `user` of workspace `team` in `channel` (a thread reply when
/// `thread` is given), from the Slack Connect thread-reply capture.
pub fn message(
    channel: &str,
    user: &str,
    team: &str,
    ts: &str,
    thread: Option<&str>,
    text: &str,
) -> Value {
    let mut body: Value = serde_json::from_str(&fixture(
        "real/slack/events/message_thread_reply_user_team_source_team.json",
    ))
    .unwrap();
    body["event_id"] = json!(unique_event_id());
    let event = &mut body["event"];
    event["user"] = json!(user);
    event["user_team"] = json!(team);
    event["team"] = json!(team);
    event["source_team"] = json!(team);
    event["channel"] = json!(channel);
    event["ts"] = json!(ts);
    event["event_ts"] = json!(ts);
    event["text"] = json!(text);
    match thread {
        Some(thread) => event["thread_ts"] = json!(thread),
        None => {
            let map = event.as_object_mut().unwrap();
            map.remove("thread_ts");
            map.remove("parent_user_id");
        }
    }
    body
}

/// An edit of message `ts` (the `message_changed` capture: the inner
/// message carries no ts, the previous one does).
pub fn edited(channel: &str, user: &str, team: &str, ts: &str, text: &str, now_ts: &str) -> Value {
    let event: Value = serde_json::from_str(&fixture("real/slack/events/message_changed.json"))
        .map(|b: Value| b["event"].clone())
        .unwrap();
    let mut event = event;
    event["channel"] = json!(channel);
    event["ts"] = json!(now_ts);
    event["event_ts"] = json!(now_ts);
    event["message"]["user"] = json!(user);
    event["message"]["team"] = json!(team);
    event["message"]["text"] = json!(text);
    event["previous_message"]["user"] = json!(user);
    event["previous_message"]["team"] = json!(team);
    event["previous_message"]["ts"] = json!(ts);
    json!({ "type": "event_callback", "team_id": "T0STAFF", "event_id": unique_event_id(), "event": event })
}

/// The deletion of message `ts` (Slack's `message_deleted` schema sample).
pub fn deleted(channel: &str, user: &str, team: &str, ts: &str) -> Value {
    let mut body: Value = serde_json::from_str(&fixture(
        "slack/schema-samples/events/MessageDeletedPayload.json",
    ))
    .unwrap();
    body["type"] = json!("event_callback");
    body["event_id"] = json!(unique_event_id());
    let event = &mut body["event"];
    event["channel"] = json!(channel);
    event["deleted_ts"] = json!(ts);
    event["ts"] = json!(ts);
    event["previous_message"]["user"] = json!(user);
    event["previous_message"]["team"] = json!(team);
    event["previous_message"]["ts"] = json!(ts);
    event["previous_message"]["thread_ts"] = json!("");
    body
}

/// A reaction by `user` on message `ts` (the Slack Connect capture: no team named).
pub fn reaction(channel: &str, user: &str, ts: &str, name: &str) -> Value {
    let mut body: Value = serde_json::from_str(&fixture(
        "real/slack/events/reaction_added_shared_channel_other_org.json",
    ))
    .unwrap();
    body["event_id"] = json!(unique_event_id());
    body["event"]["user"] = json!(user);
    body["event"]["reaction"] = json!(name);
    body["event"]["item"]["channel"] = json!(channel);
    body["event"]["item"]["ts"] = json!(ts);
    body
}

/// Another org's bot posting in a shared channel (the captured payload).
pub fn bot_message(channel: &str, ts: &str, text: &str) -> Value {
    let mut body: Value = serde_json::from_str(&fixture(
        "real/slack/events/message_from_other_org_bot_in_shared_channel.json",
    ))
    .unwrap();
    body["event_id"] = json!(unique_event_id());
    body["event"]["channel"] = json!(channel);
    body["event"]["ts"] = json!(ts);
    body["event"]["text"] = json!(text);
    body
}

impl TestApp {
    /// Posts an events body and runs the inbox, timers and outbox.
    pub async fn deliver(&self, body: &Value) {
        let response = self.event(body).await;
        assert_eq!(response.status(), 200, "event accepted");
        self.settle().await;
    }
}
