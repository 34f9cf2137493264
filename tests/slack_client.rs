//! The Slack side going out: the Web API client (through slack-morphism) against
//! the fake Slack, and Socket Mode against a fake Socket Mode server fed with
//! the real frames in `shared/fixtures/real/slack/socket_mode`.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::fake_slack::{Failure, FakeSlack};
use support::socket_server::{fake_socket_server, socket_mode_app};
use support::{BOT_TOKEN, Db, TestApp, fixture, fixtures_in};
use watchkeeper::chat::slack::SlackWebChat;
use watchkeeper::chat::{Block, Button, Chat, ChatError, Destination, Outgoing, Reply};
use watchkeeper::ids::{ChannelId, MessageTs, UserId};

fn card() -> Reply {
    Reply::text("*Request #7* is open").with_block(Block::Actions(vec![Button {
        label: "Resolve".into(),
        action_id: "request.resolve".into(),
        value: "7".into(),
        style: None,
    }]))
}

#[tokio::test]
async fn replies_reach_slack_with_their_blocks() {
    let slack = FakeSlack::start(BOT_TOKEN).await;
    let chat = SlackWebChat::new(&slack.api_url, BOT_TOKEN).unwrap();

    let posted = chat
        .send(Outgoing {
            key: None,
            to: Destination::Channel {
                channel: ChannelId::from("C0ACME"),
                thread: Some(MessageTs::from("1700000000.000100")),
            },
            reply: card(),
        })
        .await
        .unwrap();
    let ts = posted
        .ts
        .clone()
        .expect("chat.postMessage returns the message ts");
    let call = &slack.calls_to("chat.postMessage")[0];
    assert_eq!(call.body["channel"], "C0ACME");
    assert_eq!(call.body["thread_ts"], "1700000000.000100");
    assert_eq!(
        call.body["blocks"][1]["elements"][0]["action_id"],
        "request.resolve"
    );
    assert_eq!(call.body["blocks"][1]["elements"][0]["value"], "7");

    // The status card is later updated in place, by the ts recorded from the first post.
    chat.send(Outgoing {
        key: None,
        to: Destination::Update {
            channel: ChannelId::from("C0ACME"),
            ts: ts.clone(),
        },
        reply: Reply::text("*Request #7* is resolved"),
    })
    .await
    .unwrap();
    let update = &slack.calls_to("chat.update")[0];
    assert_eq!(update.body["ts"], ts.as_str());

    chat.send(Outgoing {
        key: None,
        to: Destination::Direct {
            user: UserId::from("U0ANNA"),
        },
        reply: Reply::text("You are paged"),
    })
    .await
    .unwrap();
    assert_eq!(slack.calls_to("conversations.open").len(), 1);
    assert_eq!(
        slack.calls_to("chat.postMessage")[1].body["channel"],
        "D0ANNA"
    );
    // The DM channel is remembered: a second page asks Slack for it no more.
    assert!(chat.knows_dm(&UserId::from("U0ANNA")));
    chat.send(Outgoing {
        key: None,
        to: Destination::Direct {
            user: UserId::from("U0ANNA"),
        },
        reply: Reply::text("You are paged again"),
    })
    .await
    .unwrap();
    assert_eq!(slack.calls_to("conversations.open").len(), 1);
    assert_eq!(
        slack.calls_to("chat.postMessage")[2].body["channel"],
        "D0ANNA"
    );

    chat.send(Outgoing {
        key: None,
        to: Destination::ResponseUrl {
            url: format!("{}/abc", slack.response_base),
            ephemeral: true,
        },
        reply: Reply::text("later answer"),
    })
    .await
    .unwrap();
    assert_eq!(
        slack.calls_to("response_url")[0].body["text"],
        "later answer"
    );
}

#[tokio::test]
async fn slack_failures_are_sorted_into_wait_give_up_and_retry() {
    let slack = FakeSlack::start(BOT_TOKEN).await;
    let chat = SlackWebChat::new(&slack.api_url, BOT_TOKEN).unwrap();
    slack.fail(
        "chat.postMessage",
        [
            Failure::RateLimited(3),
            Failure::Error("channel_not_found"),
            Failure::Error("not_in_channel"),
            Failure::Status(503),
            Failure::Error("internal_error"),
        ],
    );
    let send = || {
        chat.send(Outgoing {
            key: None,
            to: Destination::Channel {
                channel: ChannelId::from("C0GONE"),
                thread: None,
            },
            reply: Reply::text("hi"),
        })
    };
    match send().await {
        Err(ChatError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("expected rate limit, got {other:?}"),
    }
    assert!(
        matches!(send().await, Err(ChatError::Permanent { code }) if code == "channel_not_found")
    );
    assert!(matches!(send().await, Err(ChatError::Permanent { code }) if code == "not_in_channel"));
    assert!(matches!(send().await, Err(ChatError::Transient(_))));
    assert!(matches!(send().await, Err(ChatError::Transient(_))));
    assert!(send().await.is_ok());

    let wrong = SlackWebChat::new(&slack.api_url, "xoxb-wrong").unwrap();
    let result = wrong
        .send(Outgoing {
            key: None,
            to: Destination::Channel {
                channel: ChannelId::from("C0OPS"),
                thread: None,
            },
            reply: Reply::text("hi"),
        })
        .await;
    assert!(matches!(result, Err(ChatError::Permanent { code }) if code == "invalid_auth"));
}

#[tokio::test]
async fn socket_mode_feeds_the_same_dispatcher_and_acknowledges_every_envelope() {
    let mut frames = vec![fixture("real/slack/socket_mode/hello.json")];
    let envelopes: Vec<(String, String)> = fixtures_in("real/slack/socket_mode", "json")
        .into_iter()
        .filter(|(name, _)| !name.starts_with("hello") && !name.starts_with("disconnect"))
        .collect();
    let mut expected_ids = Vec::new();
    for (_, body) in &envelopes {
        let value: Value = serde_json::from_str(body).unwrap();
        let id = value["envelope_id"].as_str().unwrap().to_string();
        if !expected_ids.contains(&id) {
            expected_ids.push(id);
        }
        frames.push(body.clone());
    }
    frames.push(fixture("real/slack/socket_mode/disconnect_warning.json"));
    let (url, mut acks) = fake_socket_server(frames).await;

    let app = socket_mode_app(&url).await;

    let mut seen = Vec::new();
    let mut connections = 0;
    let mut slash_reply = None;
    while connections < 2 || seen.len() < expected_ids.len() {
        let frame = tokio::time::timeout(Duration::from_secs(10), acks.recv())
            .await
            .expect("Socket Mode client keeps acknowledging")
            .unwrap();
        if frame.get("_connected").is_some() {
            connections += 1;
            continue;
        }
        let id = frame["envelope_id"].as_str().unwrap().to_string();
        if let Some(payload) = frame.get("payload") {
            slash_reply = Some(payload.clone());
        }
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    for id in &expected_ids {
        assert!(seen.contains(id), "envelope {id} acknowledged");
    }
    // The slash command was answered in its acknowledgement, as Slack allows.
    let reply = slash_reply.expect("slash command answered in the ack");
    assert!(
        reply["text"].as_str().unwrap().contains("/wk help"),
        "{reply}"
    );
    // After `disconnect`, the client opened a fresh connection.
    assert!(app.slack.calls_to("apps.connections.open").len() >= 2);
    app.stop().await;
}

#[tokio::test]
async fn user_group_membership_is_read_from_slack() {
    let slack = FakeSlack::start(BOT_TOKEN).await;
    // In Slack, U0NEWBIE joined the support group; the config's offline list does not know.
    slack.set_usergroup("S0SUPPORT", &["U0NEWBIE"]);
    slack.set_usergroup("S0SRE", &["U0DANA"]);
    slack.set_usergroup("S0ONCALL", &["U0ANNA"]);
    let app = TestApp::spawn_with_slack(Db::Sqlite, slack, |_| {})
        .await
        .unwrap();
    let mut roles = String::new();
    for _ in 0..200 {
        let reply = app.command("U0NEWBIE", "T0STAFF", "C0OPS", "whoami").await;
        roles = reply["text"].as_str().unwrap().to_string();
        if roles.contains("Roles here: *support*") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(roles.contains("Roles here: *support*"), "{roles}");
    // And U0SAM, a member only in the stale offline list, lost the role.
    let reply = app.command("U0SAM", "T0STAFF", "C0OPS", "whoami").await;
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("Roles here: *none*"),
        "{reply}"
    );
    app.stop().await;
}
