//! The Slack app manifest, derived from `commands/`: the `/wk` slash command
//! with its usage hint, the bot scopes the verbs need, event subscriptions and
//! interactivity, for an HTTP install (request URLs) or Socket Mode.

use crate::dispatch::Manifest;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Scopes every install needs, whatever the verbs.
const BASE_SCOPES: &[&str] = &[
    "commands",
    "chat:write",
    "im:write",
    "users:read",
    "usergroups:read",
    "channels:history",
    "groups:history",
    "reactions:read",
];

/// Events the bot subscribes to.
const BOT_EVENTS: &[&str] = &[
    "message.channels",
    "message.groups",
    "message.im",
    "reaction_added",
    "reaction_removed",
    "member_joined_channel",
];

/// How Slack reaches the bot.
pub enum Delivery {
    /// HTTP request URLs under this public base URL.
    Http(String),
    /// Socket Mode (no public URL).
    SocketMode,
}

/// Builds the manifest as a JSON value (printed as YAML by the CLI).
pub fn build(manifest: &Manifest, app_name: &str, delivery: &Delivery) -> Value {
    let mut scopes: BTreeSet<String> = BASE_SCOPES.iter().map(|s| s.to_string()).collect();
    for spec in manifest.commands() {
        scopes.extend(spec.scopes.iter().cloned());
    }
    let verbs: Vec<&str> = manifest.commands().map(|c| c.verb.as_str()).collect();
    let url = |path: &str| match delivery {
        Delivery::Http(base) => Some(format!("{}{path}", base.trim_end_matches('/'))),
        Delivery::SocketMode => None,
    };
    let mut command = json!({
        "command": "/wk",
        "description": "Watchkeeper: support requests, status, on-call, postmortems, playbooks",
        "usage_hint": format!("[{}]", verbs.join(" | ")),
        "should_escape": true,
    });
    let mut events = json!({ "bot_events": BOT_EVENTS });
    let mut interactivity = json!({ "is_enabled": true });
    if let Some(commands_url) = url("/slack/commands") {
        command["url"] = json!(commands_url);
        events["request_url"] = json!(url("/slack/events"));
        interactivity["request_url"] = json!(url("/slack/interactivity"));
    }
    json!({
        "_metadata": { "major_version": 1, "minor_version": 1 },
        "display_information": {
            "name": app_name,
            "description": "Support intake, status, on-call and approval-gated playbooks for platform teams",
        },
        "features": {
            "bot_user": { "display_name": app_name.to_lowercase(), "always_online": true },
            "slash_commands": [command],
        },
        "oauth_config": { "scopes": { "bot": scopes } },
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": false,
            "socket_mode_enabled": matches!(delivery, Delivery::SocketMode),
            "token_rotation_enabled": false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_lists_every_verb_and_the_request_urls() {
        let manifest = Manifest::embedded().unwrap();
        let app = build(
            &manifest,
            "Watchkeeper",
            &Delivery::Http("https://wk.example.com/".into()),
        );
        let command = &app["features"]["slash_commands"][0];
        assert_eq!(command["url"], "https://wk.example.com/slack/commands");
        assert!(command["usage_hint"].as_str().unwrap().contains("whoami"));
        assert_eq!(
            app["settings"]["event_subscriptions"]["request_url"],
            "https://wk.example.com/slack/events"
        );
        let socket = build(&manifest, "Watchkeeper", &Delivery::SocketMode);
        assert_eq!(socket["settings"]["socket_mode_enabled"], true);
        assert!(socket["features"]["slash_commands"][0].get("url").is_none());
    }
}
