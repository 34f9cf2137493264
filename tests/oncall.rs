//! On-call end to end: the roster other jobs ask (layers, overrides, read in
//! the asker's transaction) on SQLite and PostgreSQL.

mod support;

use chrono::{DateTime, Duration, Utc};
use support::{Db, TestApp, monday_morning};
use watchkeeper::ids::UserId;
use watchkeeper::store::oncall::{NewOverride, insert_override};
use watchkeeper::work::Work;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn users(names: &[&str]) -> Vec<UserId> {
    names.iter().map(|n| UserId::from(*n)).collect()
}

async fn the_roster_applies_layers_and_overrides_inside_the_askers_work(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    let env = app.server.dispatcher().env();
    let config = &env.config;
    let on = |at: &str| utc(at);
    // Follow-the-sun: EMEA from 07:00 Berlin (06:00 UTC), AMER (higher) from
    // 12:00 New York (17:00 UTC) until 02:00 New York (07:00 UTC).
    let sre = |at| {
        let config = config.clone();
        let mut work = Work::new(app.server.store().clone(), app.clock.now());
        async move {
            watchkeeper::oncall::on_call(&mut work, &config, "sre-follow-the-sun", at)
                .await
                .unwrap()
        }
    };
    assert_eq!(sre(on("2026-03-02T10:00:00Z")).await.len(), 1);
    let emea = sre(on("2026-03-02T10:00:00Z")).await;
    assert!(
        emea == users(&["U0DANA"]) || emea == users(&["U0EVA"]),
        "{emea:?}"
    );
    let amer = sre(on("2026-03-02T18:00:00Z")).await;
    assert!(
        amer == users(&["U0FRED"]) || amer == users(&["U0GINA"]),
        "{amer:?}"
    );
    assert_eq!(
        sre(on("2026-03-03T06:30:00Z")).await,
        amer,
        "AMER wins the overlap"
    );

    let mut work = Work::new(app.server.store().clone(), app.clock.now());
    // The example: ops-duty weekly from Monday 2026-01-05 09:00 Berlin, Anna
    // first; 2026-03-02 is eight weeks on: Chen's week (09:00 CET = 08:00 UTC).
    assert_eq!(
        watchkeeper::oncall::on_call(&mut work, config, "ops-duty", on("2026-03-02T08:00:00Z"))
            .await
            .unwrap(),
        users(&["U0CHEN"])
    );
    assert_eq!(
        watchkeeper::oncall::on_call(&mut work, config, "ops-duty", on("2026-03-02T07:59:00Z"))
            .await
            .unwrap(),
        users(&["U0BEN"])
    );
    // An override recorded in this work is seen by the same work at once.
    let tx = work.tx().await.unwrap();
    insert_override(
        tx.conn(),
        &NewOverride {
            rotation: "ops-duty".into(),
            user: "U0ANNA".into(),
            start: on("2026-03-03T17:00:00Z"),
            end: on("2026-03-04T07:00:00Z"),
            created_by: "U0CHEN".into(),
            swap_id: None,
        },
        app.clock.now(),
    )
    .await
    .unwrap();
    let night = on("2026-03-03T23:00:00Z");
    assert_eq!(
        watchkeeper::oncall::on_call(&mut work, config, "ops-duty", night)
            .await
            .unwrap(),
        users(&["U0ANNA"])
    );
    assert_eq!(
        watchkeeper::oncall::on_call(&mut work, config, "ops-duty", night + Duration::hours(8))
            .await
            .unwrap(),
        users(&["U0CHEN"]),
        "back to the rotation when the override ends"
    );
    let unknown = watchkeeper::oncall::on_call(&mut work, config, "nope", night).await;
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("no rotation `nope`")
    );
    work.commit().await.unwrap();
    app.stop().await;
}

on_both_backends!(the_roster_applies_layers_and_overrides_inside_the_askers_work);

fn text(reply: &serde_json::Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_string()
}

/// Messages in `channel` (a `D…` id for a DM) that contain `needle`.
fn posts(app: &TestApp, channel: &str, needle: &str) -> Vec<(DateTime<Utc>, String)> {
    app.slack
        .messages_in(channel)
        .into_iter()
        .filter(|m| m.text.contains(needle))
        .map(|m| {
            let secs: i64 = m.ts.split('.').next().unwrap().parse().unwrap();
            (DateTime::from_timestamp(secs, 0).unwrap(), m.text)
        })
        .collect()
}

fn dm(user: &str) -> String {
    format!("D{}", user.trim_start_matches('U'))
}

async fn who(app: &TestApp, rotation: &str, at: DateTime<Utc>) -> Vec<UserId> {
    let env = app.server.dispatcher().env();
    let mut work = Work::new(app.server.store().clone(), app.clock.now());
    watchkeeper::oncall::on_call(&mut work, &env.config, rotation, at)
        .await
        .unwrap()
}

async fn staff_see_who_is_on_call_now_next_and_their_own_shifts(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    let reply = app.command("U0SAM", "T0STAFF", "C0OPS", "oncall").await;
    let shown = text(&reply);
    assert!(shown.contains("*ops-duty* (Europe/Berlin)"), "{shown}");
    assert!(shown.contains("Now: <@U0CHEN> until <!date^"), "{shown}");
    assert!(shown.contains("Next: <@U0ANNA>"), "{shown}");
    assert!(shown.contains("*sre-follow-the-sun*"), "{shown}");
    // Anna's next shift: Monday 2026-03-09 09:00 Berlin = 08:00 UTC.
    let mine = text(&app.command("U0ANNA", "T0STAFF", "C0OPS", "oncall me").await);
    let anna_next = utc("2026-03-09T08:00:00Z").timestamp();
    assert!(mine.contains(&format!("<!date^{anna_next}^")), "{mine}");
    let lead = text(&app.command("U0LEAD", "T0STAFF", "C0OPS", "oncall me").await);
    assert!(lead.contains("You have no shifts"), "{lead}");
    // A customer in their Slack Connect channel may not look.
    let customer = text(&app.command("U9EXT", "T9ACME", "C0ACME", "oncall").await);
    assert!(customer.contains(":no_entry:"), "{customer}");
    let typo = text(
        &app.command("U0SAM", "T0STAFF", "C0OPS", "oncall opsduty")
            .await,
    );
    assert!(
        typo.contains("is not a rotation") && typo.contains("Usage"),
        "{typo}"
    );
    app.stop().await;
}

async fn an_override_moves_shifts_tells_exactly_who_moved_and_hands_off(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    let command = "oncall override <@U0ANNA|anna> tomorrow 18:00 8h ops-duty";
    let denied = text(&app.command("U0SAM", "T0STAFF", "C0OPS", command).await);
    assert!(denied.contains(":no_entry:"), "support may not: {denied}");
    let reply = app.command("U0CHEN", "T0STAFF", "C0OPS", command).await;
    assert_eq!(reply["response_type"], "in_channel", "{reply}");
    let done = text(&reply);
    // Tomorrow 18:00 Berlin is 17:00 UTC; 8 h later is 01:00 UTC.
    let (from, until) = (utc("2026-03-03T17:00:00Z"), utc("2026-03-04T01:00:00Z"));
    assert!(done.contains("Override #1: <@U0ANNA>"), "{done}");
    assert!(
        done.contains(&format!("<!date^{}^", from.timestamp())),
        "{done}"
    );
    assert!(
        done.contains(&format!("<!date^{}^", until.timestamp())),
        "{done}"
    );
    app.settle().await;
    assert_eq!(posts(&app, &dm("U0ANNA"), "shifts changed").len(), 1);
    let chen = posts(&app, &dm("U0CHEN"), "shifts changed");
    assert_eq!(chen.len(), 1);
    let lost = format!(
        "No longer yours:\n• <!date^{}^{{date_short_pretty}} {{time}}|2026-03-03 17:00 UTC> – <!date^{}^",
        from.timestamp(),
        until.timestamp()
    );
    assert!(
        chen[0].1.contains(&lost) && !chen[0].1.contains("Now yours"),
        "only the override's hours: {chen:?}"
    );
    assert!(
        posts(&app, &dm("U0BEN"), "shifts changed").is_empty(),
        "Ben did not move"
    );
    assert_eq!(who(&app, "ops-duty", from).await, users(&["U0ANNA"]));
    assert_eq!(who(&app, "ops-duty", until).await, users(&["U0CHEN"]));
    let listed = text(
        &app.command("U0SAM", "T0STAFF", "C0OPS", "oncall ops-duty")
            .await,
    );
    assert!(listed.contains("Override #1: <@U0ANNA>"), "{listed}");

    // The hand-offs happen at the override's edges, in the channel and by DM.
    app.advance(from - app.clock.now()).await;
    let handoffs = posts(&app, "C0OPS", "ops-duty hand-off");
    assert_eq!(handoffs.len(), 1, "{handoffs:?}");
    assert_eq!(handoffs[0].0, from);
    assert!(
        handoffs[0].1.contains("<@U0CHEN> → <@U0ANNA>"),
        "{handoffs:?}"
    );
    assert_eq!(posts(&app, &dm("U0ANNA"), "ops-duty hand-off").len(), 1);
    assert_eq!(posts(&app, &dm("U0CHEN"), "ops-duty hand-off").len(), 1);
    app.advance(Duration::hours(9)).await;
    let handoffs = posts(&app, "C0OPS", "ops-duty hand-off");
    assert_eq!(handoffs.len(), 2);
    assert_eq!(handoffs[1].0, until);
    assert!(
        handoffs[1].1.contains("<@U0ANNA> → <@U0CHEN>"),
        "{handoffs:?}"
    );

    // A second override; Ben (not its author, nor covering) may not cancel it; Anna may.
    let next_week = "oncall override <@U0ANNA> 2026-03-17 09:00 2026-03-17 21:00";
    let second = text(&app.command("U0BEN", "T0STAFF", "C0OPS", next_week).await);
    assert!(second.contains("Override #2"), "{second}");
    let refused = text(
        &app.command("U0CHEN", "T0STAFF", "C0OPS", "oncall cancel 2")
            .await,
    );
    assert!(refused.contains(":no_entry:"), "{refused}");
    let cancelled = text(
        &app.command("U0ANNA", "T0STAFF", "C0OPS", "oncall cancel 2")
            .await,
    );
    assert!(cancelled.contains("Override #2"), "{cancelled}");
    app.settle().await;
    assert_eq!(
        posts(&app, &dm("U0ANNA"), "shifts changed").len(),
        3,
        "told of the override, of the second one and of its cancellation"
    );
    assert_eq!(
        who(&app, "ops-duty", utc("2026-03-17T12:00:00Z")).await,
        users(&["U0BEN"])
    );
    let gone = text(
        &app.command("U0ANNA", "T0STAFF", "C0OPS", "oncall cancel 2")
            .await,
    );
    assert!(gone.contains("no override #2"), "{gone}");
    app.stop().await;
}

async fn a_swap_happens_only_when_both_engineers_confirm(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    // Anna's next week (from 2026-03-09) for Ben's (from 2026-03-16).
    let proposed = text(
        &app.command("U0ANNA", "T0STAFF", "C0OPS", "oncall swap <@U0BEN>")
            .await,
    );
    assert!(proposed.contains("Swap #1 proposed"), "{proposed}");
    app.settle().await;
    let asks: Vec<_> = ["U0ANNA", "U0BEN"]
        .iter()
        .map(|u| {
            let messages = app.slack.messages_in(&dm(u));
            let ask = messages
                .iter()
                .find(|m| m.text.contains("Swap #1 on *ops-duty*"))
                .unwrap_or_else(|| panic!("{u} was asked: {messages:?}"))
                .clone();
            let buttons = ask.blocks.to_string();
            assert!(buttons.contains("oncall.swap.confirm"), "{buttons}");
            ask
        })
        .collect();
    let click = |user: &'static str, action: &'static str, ts: String| {
        let app = &app;
        async move {
            app.click(user, "T0STAFF", &dm(user), &ts, action, "1")
                .await;
            app.settle().await;
            app.slack
                .calls_to("response_url")
                .last()
                .map(|c| c.body["text"].as_str().unwrap_or_default().to_string())
                .unwrap_or_default()
        }
    };
    let intruder = click("U0CHEN", "oncall.swap.confirm", asks[0].ts.clone()).await;
    assert!(
        intruder.contains("Only the two engineers of swap #1"),
        "{intruder}"
    );
    let waiting = click("U0BEN", "oncall.swap.confirm", asks[1].ts.clone()).await;
    assert!(waiting.contains("waiting for <@U0ANNA>"), "{waiting}");
    assert_eq!(
        who(&app, "ops-duty", utc("2026-03-10T12:00:00Z")).await,
        users(&["U0ANNA"]),
        "not before both"
    );
    let done = click("U0ANNA", "oncall.swap.confirm", asks[0].ts.clone()).await;
    assert!(done.contains("Swap #1 on *ops-duty* is done"), "{done}");
    assert_eq!(
        who(&app, "ops-duty", utc("2026-03-10T12:00:00Z")).await,
        users(&["U0BEN"])
    );
    assert_eq!(
        who(&app, "ops-duty", utc("2026-03-17T12:00:00Z")).await,
        users(&["U0ANNA"])
    );
    for user in ["U0ANNA", "U0BEN"] {
        let moved = posts(&app, &dm(user), "shifts changed");
        assert_eq!(moved.len(), 1, "{user}: {moved:?}");
        assert!(moved[0].1.contains("swap #1"), "{moved:?}");
    }
    assert!(posts(&app, &dm("U0CHEN"), "shifts changed").is_empty());
    let again = click("U0BEN", "oncall.swap.confirm", asks[1].ts.clone()).await;
    assert!(again.contains("already done"), "{again}");

    // A declined swap changes nothing.
    let second = text(
        &app.command("U0CHEN", "T0STAFF", "C0OPS", "oncall swap <@U0ANNA>")
            .await,
    );
    assert!(second.contains("Swap #2 proposed"), "{second}");
    app.settle().await;
    app.click(
        "U0ANNA",
        "T0STAFF",
        &dm("U0ANNA"),
        "1.2",
        "oncall.swap.decline",
        "2",
    )
    .await;
    app.settle().await;
    assert!(posts(&app, &dm("U0CHEN"), "Swap #2 on *ops-duty* was declined").len() == 1);
    assert_eq!(
        who(&app, "ops-duty", utc("2026-03-24T12:00:00Z")).await,
        users(&["U0CHEN"])
    );
    app.stop().await;
}

async fn a_configuration_change_tells_the_people_whose_shifts_moved(db: Db) {
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), "", None).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchkeeper.yaml");
    // Anna and Ben change places in the order; Chen's weeks stay.
    let changed = support::example_config().replace(
        "members: [U0ANNA, U0BEN, U0CHEN]",
        "members: [U0BEN, U0ANNA, U0CHEN]",
    );
    std::fs::write(&path, changed).unwrap();
    let mut settings = app.settings.clone();
    settings.config = Some(path);
    app.server.reload(&settings).await.unwrap();
    app.server.replan_oncall().await.unwrap();
    app.settle().await;
    for user in ["U0ANNA", "U0BEN"] {
        let moved = posts(&app, &dm(user), "shifts changed");
        assert_eq!(moved.len(), 1, "{user}: {moved:?}");
        assert!(moved[0].1.contains("a configuration change"), "{moved:?}");
    }
    assert!(posts(&app, &dm("U0CHEN"), "shifts changed").is_empty());
    // Asked again, nothing has moved since.
    app.server.replan_oncall().await.unwrap();
    app.settle().await;
    assert_eq!(posts(&app, &dm("U0ANNA"), "shifts changed").len(), 1);
    app.stop().await;
}

on_both_backends!(
    staff_see_who_is_on_call_now_next_and_their_own_shifts,
    an_override_moves_shifts_tells_exactly_who_moved_and_hands_off,
    a_swap_happens_only_when_both_engineers_confirm,
    a_configuration_change_tells_the_people_whose_shifts_moved,
);

fn run_binary(args: &[&str], db: &str, stdin: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchkeeper"))
        .args(args)
        .env("WATCHKEEPER_DATABASE_URL", db)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_console_shows_the_rotations_and_a_week_of_hand_offs() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/wk.db", dir.path().display());
    let out = run_binary(
        &["console"],
        &db,
        ":as U0SAM\n:in C0OPS\n/wk oncall\n:advance 7d\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("*ops-duty* (Europe/Berlin)"), "{stdout}");
    assert!(stdout.contains("• Now: @U0"), "{stdout}");
    assert_eq!(
        stdout.matches("wk [#C0OPS]").count(),
        1,
        "one weekly hand-off in the ops channel: {stdout}"
    );
    assert!(stdout.contains("*ops-duty hand-off* at "), "{stdout}");
    assert!(
        stdout.contains("Reminder: your *ops-duty* shift starts"),
        "{stdout}"
    );
}

#[test]
fn check_refuses_a_rotation_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchkeeper.yaml");
    std::fs::write(
        &path,
        support::example_config()
            .replace("members: [U0ANNA, U0BEN, U0CHEN]", "members: [U0ANNA, ben]"),
    )
    .unwrap();
    let db = format!("sqlite://{}/wk.db", dir.path().display());
    let out = run_binary(&["check", "--config", path.to_str().unwrap()], &db, "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("rotations.ops-duty.members: `ben` is not a Slack user id"),
        "{stderr}"
    );
}
