//! Clicks and form submissions as Slack sends them to `/slack/interactivity`:
//! the recorded payloads in `../shared/fixtures/real/slack/interactive/`
//! (`block_actions_ephemeral_message_button.json`,
//! `view_submission_plain_text_input.json`) with their user, channel and
//! action fields overwritten, form-encoded as `payload=…` and signed.

use super::{TestApp, fixture};
use serde_json::{Value, json};

impl TestApp {
    /// `user` of `team` clicks the button `action_id` carrying `value` on the
    /// message `message_ts` in `channel` (a `D…` id for a DM); the click is
    /// acknowledged with 200. The reply goes to the click's response URL
    /// (`click-<user>` on the fake Slack).
    pub async fn click(
        &self,
        user: &str,
        team: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) {
        let mut payload: Value = serde_json::from_str(&fixture(
            "real/slack/interactive/block_actions_ephemeral_message_button.json",
        ))
        .unwrap();
        payload["user"] =
            json!({ "id": user, "username": "someone", "name": "someone", "team_id": team });
        payload["team"] = json!({ "id": team, "domain": "example" });
        payload["container"] = json!({ "type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": false });
        payload["channel"] = json!({ "id": channel, "name": "channel" });
        // Slack's trigger ids are unique per click (the inbox de-duplicates by them).
        payload["trigger_id"] = json!(format!(
            "{}.{}.trigger",
            rand::random::<u32>(),
            rand::random::<u64>()
        ));
        payload["response_url"] = json!(format!("{}/click-{user}", self.slack.response_base));
        payload["actions"][0]["action_id"] = json!(action_id);
        payload["actions"][0]["value"] = json!(value);
        assert_eq!(self.interact(&payload).await, 200, "click acknowledged");
    }

    /// What `user` was told after their clicks (their response URL), in order.
    pub fn told(&self, user: &str) -> Vec<String> {
        self.slack
            .calls_to("response_url")
            .into_iter()
            .filter(|c| c.body["_response_id"] == format!("click-{user}"))
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Like [`TestApp::click`], then runs what follows (inbox, timers, outbox).
    pub async fn press(
        &self,
        user: &str,
        team: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) {
        self.click(user, team, channel, message_ts, action_id, value)
            .await;
        self.settle().await;
    }

    /// `user` of `team` submits the form `callback_id` with `values`
    /// (input id → text); returns the HTTP status.
    pub async fn submit_form(
        &self,
        user: &str,
        team: &str,
        callback_id: &str,
        private_metadata: &str,
        values: &[(&str, &str)],
    ) -> u16 {
        let mut payload: Value = serde_json::from_str(&fixture(
            "real/slack/interactive/view_submission_plain_text_input.json",
        ))
        .unwrap();
        payload["user"]["id"] = json!(user);
        payload["user"]["team_id"] = json!(team);
        payload["team"]["id"] = json!(team);
        payload["trigger_id"] = json!(format!("{:016x}.trigger", rand::random::<u64>()));
        payload["view"]["callback_id"] = json!(callback_id);
        payload["view"]["private_metadata"] = json!(private_metadata);
        let mut state = serde_json::Map::new();
        for (id, text) in values {
            state.insert(
                id.to_string(),
                json!({ id.to_string(): { "type": "plain_text_input", "value": text } }),
            );
        }
        payload["view"]["state"]["values"] = Value::Object(state);
        self.interact(&payload).await
    }

    async fn interact(&self, payload: &Value) -> u16 {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.post_signed(
            "/slack/interactivity",
            "application/x-www-form-urlencoded",
            body.as_bytes(),
        )
        .await
        .status()
        .as_u16()
    }
}
