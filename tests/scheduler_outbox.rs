//! The scheduler and the outbox, end to end on a virtual clock: timers fire in
//! order and once, cancelled ones never; a crash at any step still delivers
//! exactly once; Slack's 429s and 500s are retried, its refusals reported;
//! a burst drains at Slack's rate without a single 429; two replicas share the
//! work without doubling it; schedules keep local time across DST.

mod support;

use chrono::{DateTime, Duration, Timelike, Utc};
use std::sync::Arc;
use support::fake_slack::{Failure, FakeSlack};
use support::{BOT_TOKEN, Db, TestApp, monday_morning};
use watchkeeper::chat::slack::SlackWebChat;
use watchkeeper::chat::{Chat, Destination, Outgoing, Reply, post_marker};
use watchkeeper::faults::{FaultPlan, FaultPoint};
use watchkeeper::ids::ChannelId;
use watchkeeper::outbox::{MessageRef, SlackEffect, Target};
use watchkeeper::scheduler::builtin::Notify;
use watchkeeper::work::Work;

fn post(channel: &str, text: &str) -> SlackEffect {
    SlackEffect::Post {
        to: Target::Channel {
            channel: ChannelId::from(channel),
            thread: None,
        },
        reply: Reply::text(text).in_channel(),
    }
}

/// Arms a `notify` timer posting `text` to `channel` at `due`.
async fn arm(app: &TestApp, key: &str, due: DateTime<Utc>, channel: &str, text: &str) {
    let mut work = Work::new(app.server.store().clone(), app.clock.now());
    assert!(
        work.arm(Notify::timer(key, due, post(channel, text)))
            .await
            .unwrap()
    );
    work.commit().await.unwrap();
}

async fn cancel(app: &TestApp, key: &str) -> bool {
    let mut work = Work::new(app.server.store().clone(), app.clock.now());
    let cancelled = work.cancel(key).await.unwrap();
    work.commit().await.unwrap();
    cancelled
}

/// How many messages in Slack carry the marker of the post made by timer `key`.
fn posts_of(slack: &FakeSlack, key: &str) -> usize {
    let marker = post_marker(&format!("{key}:post"));
    slack
        .messages()
        .iter()
        .filter(|m| m.marker() == Some(marker.as_str()))
        .count()
}

fn texts(slack: &FakeSlack, channel: &str) -> Vec<String> {
    slack
        .messages_in(channel)
        .into_iter()
        .map(|m| m.text)
        .collect()
}

async fn timers_fire_in_order_at_their_time_and_cancelled_ones_never(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    let t0 = app.clock.now();
    arm(&app, "t:a", t0 + Duration::minutes(10), "C0OPS", "ten").await;
    arm(&app, "t:b", t0 + Duration::minutes(5), "C0OPS", "five").await;
    arm(&app, "t:c", t0 + Duration::minutes(20), "C0OPS", "twenty").await;
    arm(&app, "t:d", t0 + Duration::minutes(15), "C0OPS", "fifteen").await;
    assert!(cancel(&app, "t:d").await);

    app.advance(Duration::minutes(7)).await;
    assert_eq!(texts(&app.slack, "C0OPS"), ["five"]);
    app.advance(Duration::minutes(30)).await;
    assert_eq!(texts(&app.slack, "C0OPS"), ["five", "ten", "twenty"]);
    for (key, minutes) in [("t:a", 10), ("t:b", 5), ("t:c", 20)] {
        let state = app.server.store().timer_state(key).await.unwrap().unwrap();
        assert_eq!(state.status, "done");
        assert_eq!(state.attempts, 1);
        assert_eq!(
            state.finished_at,
            Some(t0 + Duration::minutes(minutes)),
            "{key} fired on time"
        );
    }
    let cancelled = app
        .server
        .store()
        .timer_state("t:d")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.status, "cancelled");
    assert!(
        !cancel(&app, "t:a").await,
        "a fired timer cannot be cancelled"
    );
    app.stop().await;
}

async fn a_timer_cancelled_while_claimed_never_fires(db: Db) {
    let plan = Arc::new(FaultPlan::default());
    plan.crash_once(FaultPoint::TimerClaimed, "escalate:42");
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), "", Some(plan.clone())).await
    else {
        return;
    };
    let due = app.clock.now() + Duration::minutes(15);
    arm(&app, "escalate:42:level-2", due, "C0OPS", "paging level 2").await;
    app.advance(Duration::minutes(15)).await;
    assert_eq!(plan.pending(), 0, "the worker died holding the claim");
    // The engineer acknowledges while the dead worker's claim is still held.
    assert!(cancel(&app, "escalate:42:level-2").await);
    let successor = app.replica(None).await;
    successor.advance(Duration::minutes(10)).await;
    assert!(
        texts(&app.slack, "C0OPS").is_empty(),
        "no page after the ack"
    );
    let state = app
        .server
        .store()
        .timer_state("escalate:42:level-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, "cancelled");
    successor.stop_keeping_db().await;
    app.stop().await;
}

async fn a_crash_at_any_step_still_delivers_exactly_once(db: Db) {
    for point in [
        FaultPoint::TimerClaimed,
        FaultPoint::TimerBeforeCommit,
        FaultPoint::OutboxClaimed,
        FaultPoint::OutboxSent,
    ] {
        let plan = Arc::new(FaultPlan::default());
        plan.crash_once(point, "page:7");
        let Some(app) =
            TestApp::spawn_virtual_with(db, monday_morning(), "", Some(plan.clone())).await
        else {
            return;
        };
        arm(
            &app,
            "page:7",
            app.clock.now() + Duration::minutes(1),
            "C0OPS",
            "Anna, you are paged",
        )
        .await;
        app.advance(Duration::minutes(1)).await;
        assert_eq!(plan.pending(), 0, "{point:?}: the crash happened");
        let before = posts_of(&app.slack, "page:7");
        assert_eq!(
            before,
            usize::from(point == FaultPoint::OutboxSent),
            "{point:?}: posted before the crash?"
        );

        // Another replica takes over once the dead one's lease has run out.
        let successor = app.replica(None).await;
        successor.advance(Duration::minutes(3)).await;
        assert_eq!(
            posts_of(&app.slack, "page:7"),
            1,
            "{point:?}: exactly one page"
        );
        if point == FaultPoint::OutboxSent {
            assert!(
                !app.slack.calls_to("conversations.history").is_empty(),
                "the in-doubt post was looked up before anything was re-sent"
            );
        }
        let state = successor
            .server
            .store()
            .outbox_state("page:7:post")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(state.status, "delivered", "{point:?}");
        assert!(
            state.result.unwrap()["ts"].is_string(),
            "{point:?}: ts recorded"
        );
        successor.advance(Duration::hours(1)).await;
        assert_eq!(
            posts_of(&app.slack, "page:7"),
            1,
            "{point:?}: and never again"
        );
        successor.stop_keeping_db().await;
        app.stop().await;
    }
}

async fn a_restarted_replica_takes_back_its_own_work_at_once(db: Db) {
    let plan = Arc::new(FaultPlan::default());
    plan.crash_once(FaultPoint::OutboxSent, "handoff:ops");
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), "", Some(plan.clone())).await
    else {
        return;
    };
    arm(
        &app,
        "handoff:ops",
        app.clock.now(),
        "C0OPS",
        "Shift hand-off",
    )
    .await;
    app.settle().await;
    assert_eq!(posts_of(&app.slack, "handoff:ops"), 1);
    let addr = app.server.addr;
    let mut settings = app.settings.clone();
    settings.listen = addr.to_string();
    let clock = app.clock.clone();
    let slack = app.slack.clone();
    // The process dies and comes back on the same address: same identity, so
    // it knows its claims are orphaned and does not wait for the lease.
    let old = app;
    let restarted = {
        let template = old.replica(None).await;
        old.stop_keeping_db().await;
        let restarted = template.successor(settings, None).await;
        template.stop_keeping_db().await;
        restarted
    };
    assert_eq!(restarted.clock.now(), clock.now(), "no time has passed");
    restarted.settle().await;
    let state = restarted
        .server
        .store()
        .outbox_state("handoff:ops:post")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, "delivered");
    assert_eq!(posts_of(&slack, "handoff:ops"), 1, "found, not re-posted");
    restarted.stop().await;
}

async fn a_replica_that_shuts_down_gives_its_work_back_at_once(db: Db) {
    let plan = Arc::new(FaultPlan::default());
    plan.crash_once(FaultPoint::OutboxClaimed, "handoff:drain");
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), "", Some(plan.clone())).await
    else {
        return;
    };
    arm(
        &app,
        "handoff:drain",
        app.clock.now(),
        "C0OPS",
        "Shift hand-off",
    )
    .await;
    app.settle().await;
    assert_eq!(plan.pending(), 0, "the delivery was cut off while claimed");
    assert_eq!(posts_of(&app.slack, "handoff:drain"), 0);
    let other = app.replica(None).await;
    other.settle().await;
    assert_eq!(
        posts_of(&app.slack, "handoff:drain"),
        0,
        "still claimed by a live replica"
    );
    // SIGTERM: the stopping replica releases its claim; no lease to wait for.
    app.stop_keeping_db().await;
    other.settle().await;
    assert_eq!(posts_of(&other.slack, "handoff:drain"), 1);
    other.stop().await;
}

async fn a_status_card_is_updated_in_place_and_answered_in_its_thread(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    // The card, its update and a reply in its thread are decided together;
    // the update and the reply target the ts Slack gives the first post.
    app.slack.fail("chat.postMessage", [Failure::Status(500)]);
    let mut work = Work::new(app.server.store().clone(), app.clock.now());
    work.effect("card:42", &post("C0ACME", "Request 42: open"))
        .await
        .unwrap();
    work.effect(
        "card:42:claimed",
        &SlackEffect::Update {
            channel: ChannelId::from("C0ACME"),
            message: MessageRef::Posted("card:42".into()),
            reply: Reply::text("Request 42: claimed by Sam"),
        },
    )
    .await
    .unwrap();
    work.effect(
        "card:42:reply",
        &SlackEffect::Post {
            to: Target::Channel {
                channel: ChannelId::from("C0ACME"),
                thread: Some(MessageRef::Posted("card:42".into())),
            },
            reply: Reply::text("Sam is looking at it").in_channel(),
        },
    )
    .await
    .unwrap();
    work.commit().await.unwrap();
    app.advance(Duration::minutes(1)).await;
    let messages = app.slack.messages_in("C0ACME");
    assert_eq!(messages.len(), 2, "{messages:?}");
    let card = &messages[0];
    assert_eq!(card.text, "Request 42: claimed by Sam", "updated in place");
    assert_eq!(messages[1].thread_ts.as_deref(), Some(card.ts.as_str()));
    let updates = app.slack.calls_to("chat.update");
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].body["ts"], card.ts.as_str());
    app.stop().await;
}

async fn slack_429_and_500_are_retried_and_delivered_once(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    app.slack.fail(
        "chat.postMessage",
        [Failure::RateLimited(30), Failure::Status(500)],
    );
    arm(&app, "digest:1", app.clock.now(), "C0OPS", "Weekly digest").await;
    app.settle().await;
    assert_eq!(app.slack.calls_to("chat.postMessage").len(), 1);
    app.advance(Duration::seconds(29)).await;
    assert_eq!(
        app.slack.calls_to("chat.postMessage").len(),
        1,
        "Retry-After is honoured"
    );
    app.advance(Duration::seconds(1)).await;
    assert_eq!(
        app.slack.calls_to("chat.postMessage").len(),
        2,
        "retried after 30 s"
    );
    assert_eq!(
        posts_of(&app.slack, "digest:1"),
        0,
        "the 500 posted nothing"
    );
    app.advance(Duration::seconds(10)).await;
    assert_eq!(
        posts_of(&app.slack, "digest:1"),
        1,
        "delivered after backoff"
    );
    assert_eq!(app.slack.calls_to("chat.postMessage").len(), 3);
    app.advance(Duration::hours(1)).await;
    assert_eq!(posts_of(&app.slack, "digest:1"), 1, "once");
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics
            .contains("watchkeeper_outbox_deliveries_total{sink=\"slack\",outcome=\"retried\"} 2"),
        "{metrics}"
    );
    app.stop().await;
}

async fn permanent_failures_stop_and_are_reported_to_the_ops_channel(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    app.slack
        .fail("chat.postMessage", [Failure::Error("channel_not_found")]);
    arm(&app, "notice:gone", app.clock.now(), "C0GONE", "Hello?").await;
    app.advance(Duration::hours(2)).await;
    let posts_to_gone = app
        .slack
        .calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["channel"] == "C0GONE")
        .count();
    assert_eq!(posts_to_gone, 1, "no retry after channel_not_found");
    let state = app
        .server
        .store()
        .outbox_state("notice:gone:post")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, "failed");
    assert_eq!(state.last_error.as_deref(), Some("channel_not_found"));
    let ops = texts(&app.slack, "C0OPS");
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert!(ops[0].contains("channel_not_found"), "{ops:?}");
    assert!(ops[0].contains("C0GONE"), "{ops:?}");
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics
            .contains("watchkeeper_outbox_deliveries_total{sink=\"slack\",outcome=\"failed\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

async fn two_replicas_fire_each_timer_once(db: Db) {
    let Some(a) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    let b = a.replica(None).await;
    let due = a.clock.now() + Duration::minutes(1);
    for n in 0..300 {
        arm(
            &a,
            &format!("many:{n}"),
            due,
            &format!("C0CH{}", n % 10),
            &format!("message {n}"),
        )
        .await;
    }
    a.clock.set(due);
    // Both replicas work at every due moment for the next minute.
    let end = due + Duration::minutes(1);
    let mut handled = (0, 0);
    loop {
        let (x, y) = tokio::join!(a.server.workers().settle(), b.server.workers().settle());
        handled.0 += x.unwrap();
        handled.1 += y.unwrap();
        match a.server.workers().next_due().await.unwrap() {
            Some(next) if next <= end => a.clock.set(next),
            _ => break,
        }
    }
    let messages = a.slack.messages();
    assert_eq!(messages.len(), 300);
    for n in 0..300 {
        assert_eq!(
            posts_of(&a.slack, &format!("many:{n}")),
            1,
            "message {n} once"
        );
    }
    assert!(
        handled.0 > 0 && handled.1 > 0,
        "both replicas took a share of the work: {handled:?}"
    );
    b.stop_keeping_db().await;
    a.stop().await;
}

const DAILY: &str = r#"
announcements:
  - name: daily-berlin
    cron: "0 9 * * *"
    timezone: Europe/Berlin
    channel: C0BERLIN
    text: "Guten Morgen"
  - name: daily-new-york
    cron: "0 9 * * *"
    timezone: America/New_York
    channel: C0NEWYORK
    text: "Good morning"
"#;

async fn a_daily_nine_oclock_stays_at_nine_local_through_a_year_of_dst(db: Db) {
    let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let Some(app) = TestApp::spawn_virtual_with(db, start, DAILY, None).await else {
        return;
    };
    app.advance(Duration::days(365)).await;
    for (name, zone, channel) in [
        ("daily-berlin", chrono_tz::Europe::Berlin, "C0BERLIN"),
        ("daily-new-york", chrono_tz::America::New_York, "C0NEWYORK"),
    ] {
        // Finished timers older than the retention are purged, so the posts
        // themselves are the record: their ts is the virtual time they were sent.
        let posts = app.slack.messages_in(channel);
        assert_eq!(posts.len(), 365, "{name}: one a day");
        let mut days = std::collections::BTreeSet::new();
        for post in &posts {
            let secs: i64 = post.ts.split('.').next().unwrap().parse().unwrap();
            let at = DateTime::from_timestamp(secs, 0)
                .unwrap()
                .with_timezone(&zone);
            assert_eq!((at.hour(), at.minute()), (9, 0), "{name}: posted at {at}");
            days.insert(at.date_naive());
        }
        assert_eq!(days.len(), 365, "{name}: on 365 different days");
    }
    app.stop().await;
}

async fn work_due_while_the_bot_was_down_runs_late_once(db: Db) {
    let weekly = r#"
announcements:
  - name: standup
    cron: "30 9 * * *"
    channel: C0OPS
    text: "Stand-up in the ops room"
"#;
    // Monday 08:00 Berlin.
    let start = DateTime::parse_from_rfc3339("2026-03-02T07:00:00Z")
        .unwrap()
        .to_utc();
    let Some(app) = TestApp::spawn_virtual_with(db, start, weekly, None).await else {
        return;
    };
    arm(
        &app,
        "sla:9",
        start + Duration::hours(1),
        "C0OPS",
        "SLA check for request 9",
    )
    .await;
    let clock = app.clock.clone();
    let template = app.replica(None).await;
    app.stop_keeping_db().await;
    // Down until Thursday noon: three stand-ups and the SLA check were missed.
    clock.advance(Duration::days(3) + Duration::hours(4));
    let back = template.successor(template.settings.clone(), None).await;
    template.stop_keeping_db().await;
    back.settle().await;
    let mut ops = texts(&back.slack, "C0OPS");
    ops.sort();
    // The example's ops-duty rotation changed hands on Monday 09:00 Berlin too.
    let handoff = ops.remove(0);
    assert!(handoff.contains("*ops-duty hand-off*"), "{handoff}");
    assert_eq!(
        ops,
        ["SLA check for request 9", "Stand-up in the ops room"],
        "each missed thing once, late"
    );
    let standups = back
        .server
        .store()
        .timers_in_group("schedule:announcement:standup")
        .await
        .unwrap();
    assert_eq!(standups.len(), 1, "missed occurrences are coalesced");
    back.advance(Duration::days(1)).await;
    assert_eq!(texts(&back.slack, "C0OPS").len(), 4, "then daily again");
    back.stop().await;
}

on_both_backends!(
    timers_fire_in_order_at_their_time_and_cancelled_ones_never,
    a_timer_cancelled_while_claimed_never_fires,
    a_crash_at_any_step_still_delivers_exactly_once,
    a_restarted_replica_takes_back_its_own_work_at_once,
    a_replica_that_shuts_down_gives_its_work_back_at_once,
    a_status_card_is_updated_in_place_and_answered_in_its_thread,
    slack_429_and_500_are_retried_and_delivered_once,
    permanent_failures_stop_and_are_reported_to_the_ops_channel,
    two_replicas_fire_each_timer_once,
    a_daily_nine_oclock_stays_at_nine_local_through_a_year_of_dst,
    work_due_while_the_bot_was_down_runs_late_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_notifications_drains_at_slacks_rate_without_a_429() {
    let app = TestApp::spawn_virtual(Db::Sqlite, monday_morning())
        .await
        .unwrap();
    app.slack.enforce_limits(app.clock.clone());

    // The fake really enforces: ten posts at once to one channel, without our
    // limits, get 429s.
    let raw = SlackWebChat::new(&app.slack.api_url, BOT_TOKEN).unwrap();
    for _ in 0..10 {
        let _ = raw
            .send(Outgoing {
                to: Destination::Channel {
                    channel: ChannelId::from("C0FLOOD"),
                    thread: None,
                },
                reply: Reply::text("flood"),
                key: None,
            })
            .await;
    }
    let refused_raw = app.slack.rate_limited();
    assert!(refused_raw >= 7, "the fake refused {refused_raw} of 10");

    app.clock.advance(Duration::minutes(5));
    let sent_before = app.slack.messages().len();
    let t0 = app.clock.now();
    for n in 0..1000 {
        arm(
            &app,
            &format!("burst:{n}"),
            t0,
            &format!("C0T{:02}", n % 40),
            "Alert storm",
        )
        .await;
    }
    app.advance(Duration::seconds(60)).await;
    let after_a_minute = app.slack.messages().len() - sent_before;
    // 300 per minute per workspace, as a burst, then 5 a second.
    assert!(
        (550..=600).contains(&after_a_minute),
        "delivered {after_a_minute} in the first minute"
    );
    app.advance(Duration::minutes(5)).await;
    assert_eq!(app.slack.messages().len() - sent_before, 1000);
    assert_eq!(
        app.slack.rate_limited(),
        refused_raw,
        "not one 429 for the outbox"
    );
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("watchkeeper_rate_limit_waits_total{limit=\"chat.postMessage\"}"),
        "{metrics}"
    );
    app.stop().await;
}
