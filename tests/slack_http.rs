//! Slack over HTTP, end to end: signed requests to the real router, with the
//! real payloads from `shared/fixtures`, on SQLite and PostgreSQL.

mod support;

use serde_json::{Value, json};
use support::{Db, STAFF_TEAM, TestApp, fixture, fixtures_in};

fn reply_text(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_string()
}

async fn help_lists_only_what_the_caller_may_run(db: Db) {
    let Some(app) = TestApp::spawn(db).await else {
        return;
    };

    let lead = app.command("U0LEAD", STAFF_TEAM, "C0OPS", "help").await;
    assert_eq!(lead["response_type"], "ephemeral");
    let text = reply_text(&lead);
    assert!(text.contains("/wk help"), "{text}");
    assert!(text.contains("/wk whoami"), "{text}");
    assert_eq!(lead["blocks"][0]["type"], "section");

    // A Slack Connect user in ACME's channel is ACME's customer and nothing more.
    let who = app.command("U9EXT", "T0ACME", "C0ACME", "whoami").await;
    let text = reply_text(&who);
    assert!(text.contains("guest from another workspace"), "{text}");
    assert!(text.contains("Roles here: *customer*"), "{text}");
    assert!(text.contains("ACME Corp"), "{text}");

    // An unknown verb gets the closest one the caller may run.
    let typo = app.command("U0ANNA", STAFF_TEAM, "C0OPS", "whoamj").await;
    assert!(
        reply_text(&typo).contains("Did you mean `/wk whoami`?"),
        "{typo}"
    );

    // Every command is audited, with the resolved roles and tenant.
    app.server.dispatcher().audit().flush().await;
    let audit = app.server.store().recent_audit(10).await.unwrap();
    assert_eq!(audit.len(), 3);
    let whoami = audit.iter().find(|e| e.action == "command:whoami").unwrap();
    assert_eq!(whoami.actor_user, "U9EXT");
    assert_eq!(whoami.roles, "customer");
    assert_eq!(whoami.tenant.as_deref(), Some("acme"));
    assert_eq!(whoami.outcome, "ok");
    let typo = audit.iter().find(|e| e.action == "command:whoamj").unwrap();
    assert_eq!(typo.outcome, "rejected");
    app.stop().await;
}

async fn redelivered_events_are_handled_once(db: Db) {
    let Some(app) = TestApp::spawn(db).await else {
        return;
    };
    let body = fixture("real/slack/events/message_plain_channel.json");
    for retry in 0..3 {
        let ts = chrono::Utc::now().timestamp().to_string();
        let signature = watchkeeper::chat::slack::SigningSecret::new(support::SECRET)
            .sign(&ts, body.as_bytes());
        let mut request = app
            .http
            .post(format!("{}/slack/events", app.base))
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body.clone());
        if retry > 0 {
            request = request
                .header("x-slack-retry-num", retry.to_string())
                .header("x-slack-retry-reason", "http_timeout");
        }
        assert_eq!(request.send().await.unwrap().status(), 200);
    }
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("watchkeeper_slack_events_total{outcome=\"accepted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("watchkeeper_slack_events_total{outcome=\"duplicate\"} 2"),
        "{metrics}"
    );
    app.stop().await;
}

on_both_backends!(
    help_lists_only_what_the_caller_may_run,
    redelivered_events_are_handled_once
);

#[tokio::test]
async fn unsigned_forged_stale_and_oversized_requests_are_refused() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let body = b"command=%2Fwk&text=help&user_id=U0LEAD&channel_id=C0OPS&team_id=T0STAFF";
    let url = format!("{}/slack/commands", app.base);

    let unsigned = app
        .http
        .post(&url)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    let now = chrono::Utc::now().timestamp();
    let forged =
        watchkeeper::chat::slack::SigningSecret::new("not-the-secret").sign(&now.to_string(), body);
    let response = app
        .http
        .post(&url)
        .header("x-slack-request-timestamp", now.to_string())
        .header("x-slack-signature", forged)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let old = (now - 301).to_string();
    let stale = watchkeeper::chat::slack::SigningSecret::new(support::SECRET).sign(&old, body);
    let response = app
        .http
        .post(&url)
        .header("x-slack-request-timestamp", old)
        .header("x-slack-signature", stale)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let huge = vec![b'a'; 1024 * 1024 + 1];
    let response = app
        .post_signed("/slack/events", "application/json", &huge)
        .await;
    assert_eq!(response.status(), 413);

    // Nothing refused reached the dispatcher.
    app.server.dispatcher().audit().flush().await;
    assert!(
        app.server
            .store()
            .recent_audit(10)
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

#[tokio::test]
async fn url_verification_is_answered_and_malformed_payloads_get_400() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let verification = fixture("real/slack/events/url_verification.json");
    let response = app
        .post_signed("/slack/events", "application/json", verification.as_bytes())
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );

    for (path, body) in [
        ("/slack/events", "{not json"),
        ("/slack/events", r#"{"type":"event_callback"}"#),
        ("/slack/commands", "text=help"),
        ("/slack/interactivity", "payload=%7Bnope"),
        ("/slack/interactivity", "nothing=here"),
    ] {
        let response = app
            .post_signed(path, "application/x-www-form-urlencoded", body.as_bytes())
            .await;
        assert_eq!(response.status(), 400, "{path} {body}");
        let reason = response.text().await.unwrap();
        assert!(reason.starts_with("malformed payload: "), "{reason}");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_real_slack_payload_is_accepted() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let mut sent = 0;
    for folder in ["real/slack/events", "slack/schema-samples/events"] {
        for (name, body) in fixtures_in(folder, "json") {
            let mut value: Value = serde_json::from_str(&body).unwrap();
            if folder.ends_with("events") && name.starts_with("inner/") {
                // Bare inner events from Slack's docs: wrap them as Slack does.
                value = json!({ "type": "event_callback", "event_id": format!("Ev{sent}"), "team_id": "T0STAFF", "event": value });
            }
            let response = app.event(&value).await;
            assert_eq!(response.status(), 200, "{folder}/{name}");
            sent += 1;
        }
    }
    for (name, body) in fixtures_in("real/slack/commands", "txt") {
        let response = app
            .post_signed(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                body.as_bytes(),
            )
            .await;
        assert_eq!(response.status(), 200, "{name}");
        let reply: Value = response.json().await.unwrap();
        assert!(reply["text"].as_str().is_some(), "{name}: {reply}");
        sent += 1;
    }
    for folder in ["real/slack/interactive", "slack/schema-samples/app-backend"] {
        for (name, body) in fixtures_in(folder, "json") {
            if name.starts_with("SlashCommand") {
                continue;
            }
            let form = serde_urlencoded::to_string([("payload", body.as_str())]).unwrap();
            let response = app
                .post_signed(
                    "/slack/interactivity",
                    "application/x-www-form-urlencoded",
                    form.as_bytes(),
                )
                .await;
            // Blanked samples carry no user id: refused as malformed, never a 5xx.
            let status = response.status().as_u16();
            assert!(
                status == 200 || (status == 400 && folder.contains("schema")),
                "{folder}/{name}: {status}"
            );
            sent += 1;
        }
    }
    let raw = fixture("real/slack/interactive/shortcut_global_form_encoded.txt");
    let response = app
        .post_signed(
            "/slack/interactivity",
            "application/x-www-form-urlencoded",
            raw.as_bytes(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(sent > 40, "sent {sent} fixtures");
    // The service is still healthy after all of it.
    assert_eq!(app.get("/healthz").await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn operations_endpoints_report_health_readiness_and_metrics() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    assert_eq!(app.get("/healthz").await, (200, "ok\n".to_string()));
    assert_eq!(app.get("/readyz").await, (200, "ready\n".to_string()));
    app.command("U0LEAD", STAFF_TEAM, "C0OPS", "help").await;
    let (status, metrics) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            "watchkeeper_http_requests_total{route=\"/slack/commands\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("watchkeeper_http_request_duration_seconds_bucket"));
    app.stop().await;
}
