//! Button clicks as Slack sends them (`block_actions`, shaped like
//! `real/slack/interactive/block_actions_ephemeral_message_button.json`),
//! signed and posted to `/slack/interactivity`.

use super::TestApp;
use serde_json::json;

impl TestApp {
    /// `user` of `team` clicks the button `action_id` carrying `value` on the
    /// message `message_ts` in `channel` (a `D…` id for a DM).
    pub async fn click(
        &self,
        user: &str,
        team: &str,
        channel: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) {
        let payload = json!({
            "type": "block_actions",
            "user": { "id": user, "username": "someone", "name": "someone", "team_id": team },
            "api_app_id": "A0WATCH",
            "token": "verification_token",
            "container": { "type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": false },
            // Slack's trigger ids are unique per click (the inbox de-duplicates by them).
            "trigger_id": format!("{}.{}.trigger", rand::random::<u32>(), rand::random::<u64>()),
            "team": { "id": team, "domain": "example" },
            "channel": { "id": channel, "name": "directmessage" },
            "response_url": format!("{}/click-{user}", self.slack.response_base),
            "actions": [{
                "action_id": action_id,
                "block_id": "b",
                "text": { "type": "plain_text", "text": "Button", "emoji": true },
                "value": value,
                "type": "button",
                "action_ts": "1596530385.194939"
            }]
        });
        let form = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let response = self
            .post_signed(
                "/slack/interactivity",
                "application/x-www-form-urlencoded",
                form.as_bytes(),
            )
            .await;
        assert_eq!(response.status(), 200, "click acknowledged");
    }
}
