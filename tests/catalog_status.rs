//! Status from the catalog, end to end through the HTTP router: an
//! Alertmanager delivery (a real captured payload, its component label set)
//! turns a component red and its dependents amber or red, `/wk status` says
//! which alert and which dependency, a resolve clears it, customers only ever
//! see their own tenant's components, and a second replica agrees.

mod support;

use chrono::Duration;
use serde_json::Value;
use std::sync::atomic::Ordering;
use support::{Db, TestApp, monday_morning, repo_path};

/// The captured Alertmanager 0.21 delivery, about `service` at `severity`.
fn alert(service: &str, severity: &str, status: &str) -> String {
    let path = repo_path(
        "../shared/fixtures/real/alertmanager/v4_firing_demoalert_captured_am0.21_raw.json",
    );
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    payload["status"] = status.into();
    let alert = &mut payload["alerts"][0];
    alert["status"] = status.into();
    alert["labels"]["service"] = service.into();
    alert["labels"]["severity"] = severity.into();
    alert["labels"]["alertname"] = "PostgresDown".into();
    alert["annotations"]["summary"] = "primary unreachable for 5 minutes".into();
    payload.to_string()
}

async fn deliver(app: &TestApp, body: String) -> (u16, Value) {
    let response = app.alertmanager(body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn text(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_string()
}

async fn an_alert_rolls_up_to_what_depends_on_it_and_customers_see_only_theirs(db: Db) {
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), "# catalog", None).await
    else {
        return;
    };
    let staff = |text: &'static str| app.command("U0ANNA", "T0STAFF", "C0OPS", text);

    let quiet = staff("status acme-orders-db").await;
    assert!(text(&quiet).contains("is *unknown*"), "{quiet}");

    let (status, body) = deliver(&app, alert("acme-orders-db", "critical", "firing")).await;
    assert_eq!((status, body["matched"].as_u64()), (200, Some(1)), "{body}");

    let db_status = staff("status acme-orders-db").await;
    let db_text = text(&db_status);
    assert!(
        db_text.contains(":red_circle:") && db_text.contains("is *red*"),
        "{db_text}"
    );
    assert!(db_text.contains("PostgresDown"), "which alert: {db_text}");
    assert!(db_text.contains("primary unreachable"), "{db_text}");
    assert!(
        db_text.contains("runbooks.example.com/postgres"),
        "links: {db_text}"
    );

    // A critical edge makes the checkout red; the web shop depends on it normally.
    let checkout = text(&staff("status acme-checkout-api").await);
    assert!(checkout.contains("is *red*"), "{checkout}");
    assert!(
        checkout.contains("critical dependency acme-orders-db is red"),
        "{checkout}"
    );
    let shop = text(&staff("status acme-shop-web").await);
    assert!(shop.contains("is *amber*"), "{shop}");

    // The customer's own summary, worst first; another customer sees none of it.
    let acme = text(&app.command("U9EXT", "T9ACME", "C0ACME", "status").await);
    assert!(acme.contains("acme-orders-db"), "{acme}");
    assert!(!acme.contains("globex"), "{acme}");
    let first = acme.lines().nth(1).unwrap_or_default();
    assert!(first.contains(":red_circle:"), "worst first: {acme}");
    let globex = text(
        &app.command("U9GLX", "T9GLOBEX", "C0GLOBEX", "status acme-orders-db")
            .await,
    );
    assert!(globex.contains("no component `acme-orders-db`"), "{globex}");
    assert!(
        !globex.contains("Did you mean"),
        "no other tenant in suggestions: {globex}"
    );
    let near = text(
        &app.command("U9GLX", "T9GLOBEX", "C0GLOBEX", "status globex-portl")
            .await,
    );
    assert!(
        near.contains("`globex-portal`"),
        "suggests their own: {near}"
    );
    assert!(!near.contains("acme"), "{near}");

    // Staff outside a customer channel see what needs attention.
    let ops = text(&staff("status").await);
    assert!(
        ops.contains("need attention") && ops.contains("acme-orders-db"),
        "{ops}"
    );
    assert!(
        !ops.contains("globex-portal"),
        "green or unknown ones are left out: {ops}"
    );

    // Another replica agrees (it replays the same events from the store).
    let other = app.replica(None).await;
    let there = text(
        &other
            .command("U0ANNA", "T0STAFF", "C0OPS", "status acme-checkout-api")
            .await,
    );
    assert!(there.contains("is *red*"), "{there}");

    // Resolved: the colour goes, the change stays in the history.
    let (status, _) = deliver(&app, alert("acme-orders-db", "critical", "resolved")).await;
    assert_eq!(status, 200);
    let after = text(&staff("status acme-checkout-api").await);
    assert!(!after.contains("is *red*"), "{after}");
    let changes = text(&staff("changes acme-orders-db 1d").await);
    assert!(changes.contains("PostgresDown"), "{changes}");
    assert!(
        changes.contains("<!date^"),
        "times in the reader's zone: {changes}"
    );

    // Unknown components and garbage.
    let (status, body) = deliver(&app, alert("no-such-service", "warning", "firing")).await;
    assert_eq!(
        (status, body["unmatched"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    let (status, _) = deliver(&app, "{\"version\":\"4\"".into()).await;
    assert_eq!(status, 400);
    other.stop_keeping_db().await;
    app.stop().await;
}

async fn a_declared_http_check_turns_its_component_red_and_green_again(db: Db) {
    let (url, healthy) = support::checks::health_endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("edge.yaml");
    std::fs::write(
        &catalog,
        format!(
            "components:\n  - id: edge-api\n    tenants: [acme]\n    checks:\n      - {{ url: '{url}', interval: 30s, timeout: 2s, body_contains: ok }}\n"
        ),
    )
    .unwrap();
    let config = support::checks::config_with_catalog(&catalog);
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), &config, None).await else {
        return;
    };
    let status = || app.command("U0ANNA", "T0STAFF", "C0OPS", "status edge-api");

    app.settle().await;
    let up = text(&status().await);
    assert!(up.contains("is *green*") && up.contains("HTTP 200"), "{up}");

    healthy.store(false, Ordering::SeqCst);
    app.advance(Duration::seconds(30)).await;
    let down = text(&status().await);
    assert!(down.contains("is *red*"), "{down}");
    assert!(down.contains("HTTP 503, expected 200"), "{down}");

    healthy.store(true, Ordering::SeqCst);
    app.advance(Duration::seconds(30)).await;
    app.advance(Duration::minutes(5)).await;
    let again = text(&status().await);
    assert!(again.contains("is *green*"), "{again}");
    // Only changes are recorded: up, down, up — not one row per run.
    let events = app
        .server
        .store()
        .health_events_after(0, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    app.stop().await;
}

async fn a_subscribed_channel_hears_each_lasting_change_once_and_red_again_hourly(db: Db) {
    let example = support::example_config();
    let config = example[example.find("team:").unwrap()..].replace(
        "  run_checks: false",
        "  run_checks: false\n  notify:\n    - { channel: C0ACMEOPS, components: [acme-checkout-api] }\n  debounce: 2m\n  repeat: 1h",
    );
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), &config, None).await else {
        return;
    };
    let notices = || -> Vec<String> {
        app.slack
            .messages_in("C0ACMEOPS")
            .into_iter()
            .map(|m| m.text)
            .collect()
    };
    // A flap shorter than the debounce says nothing.
    deliver(&app, alert("acme-orders-db", "critical", "firing")).await;
    app.advance(Duration::minutes(1)).await;
    deliver(&app, alert("acme-orders-db", "critical", "resolved")).await;
    app.advance(Duration::minutes(5)).await;
    assert!(notices().is_empty(), "{:?}", notices());

    // A lasting one is announced once, with its cause.
    deliver(&app, alert("acme-orders-db", "critical", "firing")).await;
    app.advance(Duration::minutes(3)).await;
    let said = notices();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("`acme-checkout-api`") && said[0].contains("is now *red*"),
        "{said:?}"
    );
    assert!(
        said[0].contains("critical dependency acme-orders-db is red"),
        "{said:?}"
    );

    // Red again every hour while it lasts; then the recovery, and silence.
    app.advance(Duration::hours(1)).await;
    let said = notices();
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[1].contains("is still *red*"), "{said:?}");
    deliver(&app, alert("acme-orders-db", "critical", "resolved")).await;
    app.advance(Duration::minutes(3)).await;
    let said = notices();
    assert_eq!(said.len(), 3, "{said:?}");
    assert!(said[2].contains("(was red)"), "{said:?}");
    app.advance(Duration::hours(3)).await;
    assert_eq!(notices().len(), 3, "no repeats once it is no longer red");
    app.stop().await;
}

async fn a_watcher_observation_is_recorded_once_and_a_rollout_joins_the_history(db: Db) {
    use watchkeeper::catalog::health::Rag;
    use watchkeeper::catalog::observe::{Observation, Rollout, record};
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    let catalog = app.server.dispatcher().env().catalog.clone();
    let store = app.server.store().clone();
    let debounce = chrono::Duration::minutes(2);
    let seen = |rag: Option<Rag>, reason: &str, change: Option<&str>| Observation {
        component: "acme-prod".into(),
        source: "kube:acme-prod:node/worker-1".into(),
        rag,
        reason: reason.into(),
        rollout: change.map(|text| Rollout {
            revision: text.rsplit(' ').next().unwrap_or_default().to_string(),
            text: text.to_string(),
            new_object: true,
        }),
        at: app.clock.now(),
    };
    let not_ready = seen(Some(Rag::Red), "node worker-1 is NotReady", None);
    assert!(
        record(&catalog, &store, debounce, &not_ready)
            .await
            .unwrap()
    );
    assert!(
        !record(&catalog, &store, debounce, &not_ready)
            .await
            .unwrap(),
        "the same observation again writes nothing"
    );
    let red = text(
        &app.command("U0ANNA", "T0STAFF", "C0OPS", "status acme-prod")
            .await,
    );
    assert!(
        red.contains("is *red*") && red.contains("NotReady"),
        "{red}"
    );
    let rollout = seen(
        Some(Rag::Red),
        "node worker-1 is NotReady",
        Some("rollout of ingress-nginx 1.11.2"),
    );
    assert!(record(&catalog, &store, debounce, &rollout).await.unwrap());
    assert!(
        !record(&catalog, &store, debounce, &rollout).await.unwrap(),
        "the same revision again is not a second rollout"
    );
    let gone = seen(None, "node worker-1 is gone", None);
    assert!(record(&catalog, &store, debounce, &gone).await.unwrap());
    let after = text(
        &app.command("U0ANNA", "T0STAFF", "C0OPS", "status acme-prod")
            .await,
    );
    assert!(!after.contains("is *red*"), "{after}");
    let history = text(
        &app.command("U0ANNA", "T0STAFF", "C0OPS", "changes acme-prod")
            .await,
    );
    assert!(
        history.contains("rollout of ingress-nginx 1.11.2"),
        "{history}"
    );
    let unknown = Observation {
        component: "not-in-the-catalog".into(),
        ..not_ready.clone()
    };
    assert!(!record(&catalog, &store, debounce, &unknown).await.unwrap());
    app.stop().await;
}

on_both_backends!(
    a_watcher_observation_is_recorded_once_and_a_rollout_joins_the_history,
    a_subscribed_channel_hears_each_lasting_change_once_and_red_again_hourly,
    an_alert_rolls_up_to_what_depends_on_it_and_customers_see_only_theirs,
    a_declared_http_check_turns_its_component_red_and_green_again,
);
