//! Support intake end to end: signed Slack events (Slack Connect shapes from
//! the captured fixtures) through the HTTP router, the real inbox, timers
//! and outbox on a virtual clock, and the fake Slack Web API — on SQLite and
//! PostgreSQL.

mod support;

use chrono::{DateTime, Duration, Utc};
use support::slack_events::{bot_message, deleted, edited, message, reaction};
use support::{Db, TestApp, fixture};
use watchkeeper::store::support::{self as db, RequestStatus};
use watchkeeper::store::timeline::thread_subject;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn ts(at: DateTime<Utc>, n: u32) -> String {
    format!("{}.{:06}", at.timestamp(), n)
}

fn in_thread(app: &TestApp, channel: &str, thread: &str) -> Vec<String> {
    app.slack
        .messages_in(channel)
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(thread))
        .map(|m| m.text)
        .collect()
}

/// Direct messages sent, as (user channel, text).
/// Pages sent by DM (hand-off and shift-reminder DMs of the rotations are not pages).
fn dms(app: &TestApp) -> Vec<(String, String)> {
    app.slack
        .messages()
        .into_iter()
        .filter(|m| m.channel.starts_with('D') && m.text.contains("You are paged"))
        .map(|m| (m.channel, m.text))
        .collect()
}

async fn request(app: &TestApp, id: i64) -> db::Request {
    db::request(app.server.store().pool(), id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("request {id}"))
}

fn text_of(reply: &serde_json::Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_string()
}

async fn db_postmortem(app: &TestApp) -> String {
    app.server
        .store()
        .postmortem(1)
        .await
        .unwrap()
        .expect("postmortem")
        .subject
}

/// Monday 2026-03-02 10:00 Berlin: ACME's support hours are open.
const MONDAY_OPEN: &str = "2026-03-02T09:00:00Z";

async fn a_customer_thread_is_answered_claimed_and_resolved(db: Db) {
    let start = at(MONDAY_OPEN);
    let Some(app) = TestApp::spawn_virtual(db, start).await else {
        return;
    };
    let root = ts(start, 100);
    app.deliver(&message(
        "C0ACME",
        "U9EXT",
        "T0ACME",
        &root,
        None,
        "Checkout returns 502 for some users",
    ))
    .await;
    let acks = in_thread(&app, "C0ACME", &root);
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert!(acks[0].contains("request *#1*"), "{}", acks[0]);
    // Due 30 business minutes later, as a Slack date token every reader sees in their zone.
    let due = (start + Duration::minutes(30)).timestamp();
    assert!(acks[0].contains(&format!("<!date^{due}^")), "{}", acks[0]);
    assert!(
        acks[0].contains("<!subteam^S0SUPPORT>"),
        "first line named: {}",
        acks[0]
    );
    let card = app.slack.messages_in("C0OPS");
    assert_eq!(card.len(), 1, "one card for first line");
    assert!(
        card[0].blocks.to_string().contains("request.claim"),
        "{}",
        card[0].blocks
    );

    // Another org's bot and a customer's ✅ change nothing.
    app.deliver(&bot_message("C0ACME", &ts(start, 200), "deploy finished"))
        .await;
    app.deliver(&reaction("C0ACME", "U9EXT", &root, "white_check_mark"))
        .await;
    assert_eq!(request(&app, 1).await.status, RequestStatus::Open);
    assert!(
        db::request(app.server.store().pool(), 2)
            .await
            .unwrap()
            .is_none(),
        "a bot message never opens a request"
    );

    // The same customer's next message within the window joins request #1.
    app.advance(Duration::minutes(2)).await;
    let second = ts(app.clock.now(), 300);
    app.deliver(&message(
        "C0ACME",
        "U9EXT",
        "T0ACME",
        &second,
        None,
        "Also the cart page",
    ))
    .await;
    assert!(
        in_thread(&app, "C0ACME", &second)
            .iter()
            .any(|t| t.contains("Added to your open request")),
        "joined"
    );
    assert!(
        db::request(app.server.store().pool(), 2)
            .await
            .unwrap()
            .is_none()
    );

    // The first staff reply in the thread stops the clock: no nudge, no breach.
    app.advance(Duration::minutes(3)).await;
    let reply = ts(app.clock.now(), 400);
    app.deliver(&message(
        "C0ACME",
        "U0SAM",
        "T0STAFF",
        &reply,
        Some(&root),
        "Looking into it",
    ))
    .await;
    let answered = request(&app, 1).await;
    assert_eq!(
        answered.first_response_by.as_ref().map(|u| u.as_str()),
        Some("U0SAM")
    );
    app.advance(Duration::hours(3)).await;
    let ops: Vec<String> = app
        .slack
        .messages_in("C0OPS")
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert!(
        ops.iter()
            .all(|t| !t.contains("needs a first response") && !t.contains("breached")),
        "{ops:?}"
    );
    assert!(dms(&app).is_empty(), "nobody paged");

    // Staff 👀 claims (a reaction names no workspace: the staff group decides), ✅ resolves.
    app.deliver(&reaction("C0ACME", "U0TOM", &root, "eyes"))
        .await;
    assert_eq!(
        request(&app, 1)
            .await
            .claimed_by
            .as_ref()
            .map(|u| u.as_str()),
        Some("U0TOM")
    );
    app.deliver(&reaction("C0ACME", "U0TOM", &root, "white_check_mark"))
        .await;
    let resolved = request(&app, 1).await;
    assert_eq!(resolved.status, RequestStatus::Resolved);
    assert!(
        in_thread(&app, "C0ACME", &root)
            .iter()
            .any(|t| t.contains("resolved by <@U0TOM>")),
        "the customer is told"
    );
    let timeline = app
        .server
        .store()
        .timeline(&thread_subject("C0ACME", &root))
        .await
        .unwrap();
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "opened",
            "customer message",
            "first response",
            "claimed",
            "resolved"
        ],
        "who did what, in order"
    );

    // The customer may reopen; a postmortem can be opened by request number.
    let reopened = app.command("U9EXT", "T0ACME", "C0ACME", "reopen #1").await;
    assert!(text_of(&reopened).contains("open again"), "{reopened}");
    assert_eq!(request(&app, 1).await.status, RequestStatus::Open);
    let denied = app.command("U9EXT", "T0ACME", "C0ACME", "resolve #1").await;
    assert!(text_of(&denied).contains(":no_entry:"), "{denied}");
    let pm = app
        .command("U0SAM", "T0STAFF", "C0OPS", "postmortem #1 Checkout errors")
        .await;
    assert!(text_of(&pm).contains("PM-1"), "{pm}");
    assert_eq!(
        db_postmortem(&app).await,
        format!("thread:C0ACME:{root}"),
        "the postmortem is the request's thread"
    );
    app.stop().await;
}

/// Saturday 2026-03-07 02:00 UTC: Globex is 24x7.
const SATURDAY_NIGHT: &str = "2026-03-07T02:00:00Z";

async fn nobody_answers_so_it_escalates_until_acknowledged(db: Db) {
    let start = at(SATURDAY_NIGHT);
    let Some(app) = TestApp::spawn_virtual(db, start).await else {
        return;
    };
    let root = ts(start, 100);
    app.deliver(&message(
        "C0GLOBEX",
        "U9GLX",
        "T0GLOBEX",
        &root,
        None,
        "Our ingress drops requests",
    ))
    .await;
    // Halfway to the 15 min target: a nudge to first line (the ops-duty on-call).
    app.advance(Duration::minutes(8)).await;
    let ops: Vec<String> = app
        .slack
        .messages_in("C0OPS")
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert!(
        ops.iter().any(|t| t.contains("needs a first response")),
        "{ops:?}"
    );
    assert!(dms(&app).is_empty());

    // At the target the policy starts: level 1 pages ops-duty's on-call now.
    app.advance(Duration::minutes(7)).await;
    let paged = dms(&app);
    // ops-duty: weekly from Monday 2026-01-05 09:00 Berlin, Anna, Ben, Chen:
    // the week of 2026-03-02 is the ninth, Chen's.
    assert_eq!(
        paged.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["D0CHEN"],
        "{paged:?}"
    );
    assert!(paged[0].1.contains("level 1 of 2"), "{}", paged[0].1);
    let card = app
        .slack
        .messages_in("C0OPS")
        .into_iter()
        .find(|m| m.text.contains("*Escalation 1*"))
        .expect("escalation card");

    // A customer cannot acknowledge, even with a forged click.
    app.press("U9GLX", "T0GLOBEX", "C0OPS", &card.ts, "page.ack", "1")
        .await;
    // Level 2 after 15 min: the SRE rotation and group.
    app.advance(Duration::minutes(15)).await;
    let level_two = dms(&app).len();
    assert!(level_two > 1, "level 2 paged: {:?}", dms(&app));

    // Chen acknowledges from the DM: nothing is paged after that, ever.
    app.press("U0CHEN", "T0STAFF", "D0CHEN", &card.ts, "page.ack", "1")
        .await;
    let escalation = db::escalation(app.server.store().pool(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(escalation.status, db::EscalationStatus::Acknowledged);
    assert_eq!(
        escalation.acked_by.as_ref().map(|u| u.as_str()),
        Some("U0CHEN")
    );
    app.advance(Duration::hours(6)).await;
    assert_eq!(
        dms(&app).len(),
        level_two,
        "no page after the acknowledgement"
    );
    let updated = app.slack.messages_in("C0OPS");
    assert!(
        updated
            .iter()
            .any(|m| m.text.contains("acknowledged") && m.text.contains("<@U0CHEN>")),
        "the card says who acknowledged"
    );
    let kinds: Vec<String> = app
        .server
        .store()
        .timeline(&thread_subject("C0GLOBEX", &root))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        "opened",
        "nudged",
        "breached",
        "escalated",
        "paged",
        "acknowledged",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    app.stop().await;
}

async fn edits_make_urgent_and_deletions_withdraw(db: Db) {
    let start = at(MONDAY_OPEN);
    let Some(app) = TestApp::spawn_virtual(db, start).await else {
        return;
    };
    let first = ts(start, 100);
    app.deliver(&message(
        "C0ACME",
        "U9EXT",
        "T0ACME",
        &first,
        None,
        "Question about quotas",
    ))
    .await;
    app.advance(Duration::minutes(1)).await;
    app.deliver(&edited(
        "C0ACME",
        "U9EXT",
        "T0ACME",
        &first,
        "Production down: quotas exhausted",
        &ts(app.clock.now(), 1),
    ))
    .await;
    let urgent = request(&app, 1).await;
    assert!(urgent.urgent, "an urgent keyword in an edit pages at once");
    assert_eq!(urgent.text, "Production down: quotas exhausted");
    assert!(!dms(&app).is_empty(), "on-call paged at once");

    // Another customer's message, deleted before anyone answered: withdrawn,
    // and its clocks never fire.
    let other = ts(app.clock.now(), 200);
    app.deliver(&message(
        "C0ACME",
        "U9BOB",
        "T0ACME",
        &other,
        None,
        "Never mind",
    ))
    .await;
    app.deliver(&deleted("C0ACME", "U9BOB", "T0ACME", &other))
        .await;
    assert_eq!(request(&app, 2).await.status, RequestStatus::Withdrawn);
    let before = app.slack.messages().len();
    app.advance(Duration::hours(4)).await;
    let breaches: Vec<String> = app
        .slack
        .messages()
        .into_iter()
        .skip(before)
        .map(|m| m.text)
        .filter(|t| t.contains("Request #2") && (t.contains("breached") || t.contains("needs")))
        .collect();
    assert!(breaches.is_empty(), "{breaches:?}");
    app.stop().await;
}

async fn commands_list_escalate_and_resolve(db: Db) {
    let start = at(MONDAY_OPEN);
    let Some(app) = TestApp::spawn_virtual(db, start).await else {
        return;
    };
    let root = ts(start, 100);
    app.deliver(&message(
        "C0ACME",
        "U9EXT",
        "T0ACME",
        &root,
        None,
        "Please raise our node quota",
    ))
    .await;
    let listed = app
        .command("U0SAM", "T0STAFF", "C0OPS", "requests open")
        .await;
    assert!(
        text_of(&listed).contains("Please raise our node quota"),
        "{listed}"
    );
    let elsewhere = app
        .command("U9GLX", "T0GLOBEX", "C0GLOBEX", "requests")
        .await;
    assert!(
        !text_of(&elsewhere).contains("node quota"),
        "tenant isolation: {elsewhere}"
    );
    let bad = app
        .command("U0SAM", "T0STAFF", "C0OPS", "requests someday")
        .await;
    assert!(text_of(&bad).contains("open, mine or breaching"), "{bad}");

    let escalated = app
        .command(
            "U0SAM",
            "T0STAFF",
            "C0ACME",
            "escalate #1 customer blocked on a launch",
        )
        .await;
    assert!(
        text_of(&escalated).contains("Escalating request #1"),
        "{escalated}"
    );
    let again = app
        .command("U0SAM", "T0STAFF", "C0ACME", "escalate #1")
        .await;
    assert!(text_of(&again).contains("already escalating"), "{again}");
    app.settle().await;
    assert!(!dms(&app).is_empty());

    let missing = app.command("U0SAM", "T0STAFF", "C0OPS", "resolve").await;
    assert!(text_of(&missing).contains("say which request"), "{missing}");
    let resolved = app
        .command("U0SAM", "T0STAFF", "C0OPS", "resolve #1 quota raised")
        .await;
    assert!(text_of(&resolved).contains("resolved"), "{resolved}");
    let escalation = db::escalation(app.server.store().pool(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        escalation.status,
        db::EscalationStatus::Resolved,
        "resolving stops paging"
    );
    let twice = app.command("U0SAM", "T0STAFF", "C0OPS", "resolve #1").await;
    assert!(text_of(&twice).contains("already resolved"), "{twice}");
    app.stop().await;
}

async fn paging_alerts_open_an_incident_and_its_resolution_stops_paging(db: Db) {
    let start = at(SATURDAY_NIGHT);
    let Some(app) = TestApp::spawn_virtual(db, start).await else {
        return;
    };
    let post = |body: String| {
        let http = app.http.clone();
        let url = format!("{}/webhooks/alertmanager", app.base);
        async move {
            let response = http.post(url).body(body).send().await.unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    post(fixture(
        "real/alertmanager/v4_firing_endsat_in_future_tz_offset.json",
    ))
    .await;
    app.settle().await;
    let incident = db::incident(app.server.store().pool(), 1)
        .await
        .unwrap()
        .expect("incident");
    assert_eq!(incident.status, "open");
    assert!(
        app.slack
            .messages_in("C0OPS")
            .iter()
            .any(|m| m.text.contains("Incident INC-1")),
        "the card names the incident"
    );
    let paged = dms(&app).len();
    assert!(paged > 0);
    // Alertmanager repeats the firing group: the same incident.
    post(fixture(
        "real/alertmanager/v4_firing_endsat_in_future_tz_offset.json",
    ))
    .await;
    app.settle().await;
    assert!(
        db::incident(app.server.store().pool(), 2)
            .await
            .unwrap()
            .is_none()
    );
    // Resolved: the incident ends and nobody is paged any more.
    post(fixture("real/alertmanager/v4_resolved_tz_offset.json")).await;
    app.settle().await;
    let incident = db::incident(app.server.store().pool(), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(incident.status, "resolved");
    app.advance(Duration::hours(3)).await;
    assert_eq!(dms(&app).len(), paged, "no page after the resolution");
    app.stop().await;
}

on_both_backends!(
    a_customer_thread_is_answered_claimed_and_resolved,
    nobody_answers_so_it_escalates_until_acknowledged,
    edits_make_urgent_and_deletions_withdraw,
    commands_list_escalate_and_resolve,
    paging_alerts_open_an_incident_and_its_resolution_stops_paging,
);
