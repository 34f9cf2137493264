//! Faults end to end, with the real binary (#9.2): `watchkeeper serve` runs as
//! a child process against a fake Slack, and each drill breaks something —
//! Slack redelivers every event, Slack's API rate-limits, fails and hangs,
//! PostgreSQL goes away, the process is SIGKILLed — then checks, from the
//! database and the fake, that nothing was lost (every event became a
//! request, every effect was delivered), nothing was doubled (one Slack
//! message per intended post, found by its marker) and the bot recovered on
//! its own.
//!
//! Short form (CI): `cargo test --test faults`. Full form (the counts and the
//! 30 s outage of the issue): `WK_FAULTS_FULL=1 cargo test --release --test
//! faults -- --include-ignored`.

mod support;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::fake_github::{Failure as GhFailure, FakeGitHub};
use support::fake_slack::{Failure, FakeSlack};
use support::private_pg::PrivatePg;
use support::process::{ProcessSpec, SlackClient, WkProcess, free_port, wait_until};
use support::{BOT_TOKEN, Db, TestDb, example_config, fixture};

fn full() -> bool {
    std::env::var_os("WK_FAULTS_FULL").is_some()
}

/// The example configuration with the Slack timeout and channel limits of a drill.
fn drill_config(dir: &std::path::Path, timeout: &str) -> PathBuf {
    let text = example_config()
        .replace("  timeout: 10s ", &format!("  timeout: {timeout} "))
        .replace("per_channel: 1/s", "per_channel: 100/s")
        .replace("channel_burst: 3", "channel_burst: 100")
        .replace("# post_message: 300/min", "post_message: 6000/min")
        .replace("# tier3: 50/min", "tier3: 6000/min");
    assert!(text.contains(&format!("timeout: {timeout} ")));
    let path = dir.join("watchkeeper.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spec(config: &std::path::Path, url: &str, slack: &FakeSlack) -> ProcessSpec {
    ProcessSpec {
        config: config.to_path_buf(),
        database_url: url.to_string(),
        slack_api_url: slack.api_url.clone(),
        github_api_url: None,
        port: free_port(),
        env: Vec::new(),
    }
}

/// A Globex customer's new thread (Globex is 24x7: every message opens a
/// request at once), from the Slack Connect capture; one user per request so
/// none joins another.
fn customer_message(n: usize, run: u64) -> (String, Value) {
    customer_says(n, run, "our ingress drops requests")
}

/// Like [`customer_message`], saying `text`.
fn customer_says(n: usize, run: u64, text: &str) -> (String, Value) {
    let mut body: Value = serde_json::from_str(&fixture(
        "real/slack/events/message_thread_reply_user_team_source_team.json",
    ))
    .unwrap();
    let ts = format!("{}.{:06}", chrono::Utc::now().timestamp(), n);
    body["event_id"] = json!(format!("EvDRILL{run:x}N{n:05}"));
    let event = &mut body["event"];
    event["user"] = json!(format!("U9C{run:x}{n:05}"));
    for field in ["user_team", "team", "source_team"] {
        event[field] = json!("T0GLOBEX");
    }
    event["channel"] = json!("C0GLOBEX");
    event["ts"] = json!(ts);
    event["event_ts"] = json!(ts);
    event["text"] = json!(format!("drill request {n}: {text}"));
    let map = event.as_object_mut().unwrap();
    map.remove("thread_ts");
    map.remove("parent_user_id");
    (ts, body)
}

async fn connect(url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url).await.unwrap()
}

async fn count(url: &str, sql: &str) -> i64 {
    use sqlx::Row;
    let mut conn = connect(url).await;
    let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
    row.try_get::<i64, _>(0).unwrap()
}

/// Whether the database can be read and everything started is finished:
/// no inbox row and no effect left to handle.
async fn settled(url: &str) -> bool {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let Ok(mut conn) = sqlx::AnyConnection::connect(url).await else {
        return false;
    };
    let open: Result<(i64,), _> = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM timers WHERE queue = 'inbox' AND status IN ('pending', 'running')) \
              + (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending'))",
    )
    .fetch_one(&mut conn)
    .await;
    open.is_ok_and(|(n,)| n == 0)
}

/// What is unfinished, for failure messages: runs not succeeded, effects
/// not delivered, timers not done.
async fn unfinished(url: &str) -> String {
    use sqlx::Row;
    let mut conn = connect(url).await;
    let mut out = String::new();
    for sql in [
        "SELECT id || ' ' || status || ' step ' || step FROM playbook_runs WHERE status <> 'succeeded'",
        "SELECT idem_key || ' ' || status || ' attempts ' || attempts || ' ' || COALESCE(last_error, '') FROM outbox WHERE status <> 'delivered'",
        "SELECT idem_key || ' ' || kind || ' ' || status || ' attempts ' || attempts FROM timers WHERE status NOT IN ('done', 'cancelled') AND queue = 'timers'",
    ] {
        if let Ok(rows) = sqlx::query(sql).fetch_all(&mut conn).await {
            for row in rows.iter().take(20) {
                out.push_str(&row.try_get::<String, _>(0).unwrap_or_default());
                out.push('\n');
            }
        }
    }
    out
}

/// Nothing lost, nothing doubled: every effect was delivered, and each post
/// to a channel, thread or DM is in Slack exactly once (by its marker).
/// Returns how many posts were checked.
async fn assert_exactly_once(url: &str, slack: &FakeSlack) -> usize {
    use sqlx::Row;
    let mut conn = connect(url).await;
    let rows = sqlx::query("SELECT idem_key, status, payload, last_error FROM outbox")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut by_marker: HashMap<String, usize> = HashMap::new();
    for message in slack.messages() {
        if let Some(marker) = message.posted_marker {
            *by_marker.entry(marker).or_default() += 1;
        }
    }
    let mut posts = 0;
    for row in rows {
        let key: String = row.get(0);
        let status: String = row.get(1);
        let payload: String = row.get(2);
        let error: Option<String> = row.get(3);
        assert_eq!(
            status, "delivered",
            "effect `{key}` ended {status}: {error:?}"
        );
        let payload: Value = serde_json::from_str(&payload).unwrap();
        let findable = payload["op"] == "post"
            && matches!(payload["to"]["kind"].as_str(), Some("channel" | "direct"));
        if findable {
            let marker = watchkeeper::chat::post_marker(&key);
            assert_eq!(
                by_marker.get(&marker).copied().unwrap_or(0),
                1,
                "post `{key}` is in Slack once"
            );
            posts += 1;
        }
    }
    let doubled: Vec<_> = by_marker.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "messages posted twice: {doubled:?}");
    posts
}

/// One request per event and one answer in its thread.
async fn assert_one_request_each(url: &str, slack: &FakeSlack, roots: &[String]) {
    assert_requests(url, slack, roots, 1).await;
}

/// One request per thread and `per_thread` answers in each (an urgent
/// request also says it is paging).
async fn assert_requests(url: &str, slack: &FakeSlack, roots: &[String], per_thread: usize) {
    let requests = count(url, "SELECT COUNT(*) FROM requests").await;
    assert_eq!(
        requests,
        roots.len() as i64,
        "one request per customer thread"
    );
    let messages = slack.messages_in("C0GLOBEX");
    for root in roots {
        let answers: Vec<&str> = messages
            .iter()
            .filter(|m| m.thread_ts.as_deref() == Some(root.as_str()))
            .map(|m| m.text.as_str())
            .collect();
        assert_eq!(
            answers.len(),
            per_thread,
            "answers in thread {root}: {answers:?}"
        );
    }
    let cards = slack
        .messages_in("C0OPS")
        .into_iter()
        .filter(|m| m.blocks.to_string().contains("request.claim"))
        .count();
    assert_eq!(cards, roots.len(), "one first-line card per request");
}

/// Drill 1: Slack redelivers every event three times (same `event_id`, with
/// `x-slack-retry-num`), to both of two replicas, at once: one request, one
/// answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_make_one_request_and_one_answer() {
    let Some(db) = TestDb::create(Db::Postgres).await else {
        return;
    };
    let slack = FakeSlack::start(BOT_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let config = drill_config(dir.path(), "10s");
    let a = WkProcess::start(spec(&config, &db.url, &slack)).await;
    let b = WkProcess::start(spec(&config, &db.url, &slack)).await;
    let client = SlackClient::default();
    let events = if full() { 100 } else { 12 };
    let started = Instant::now();
    let mut roots = Vec::new();
    let mut slowest = Duration::ZERO;
    for n in 0..events {
        let (root, body) = customer_message(n, rand::random::<u32>() as u64);
        roots.push(root);
        // The delivery and its three retries, alternating replicas, all at once.
        let answers = futures::future::join_all((0..4u32).map(|attempt| {
            let base = if attempt % 2 == 0 { &a.base } else { &b.base };
            client.event(base, &body, (attempt > 0).then_some(attempt))
        }))
        .await;
        for answer in answers {
            assert_eq!(answer.status, 200, "{answer:?}");
            slowest = slowest.max(answer.took);
        }
    }
    assert!(
        wait_until(Duration::from_secs(60), || settled(&db.url)).await,
        "work left: {}\n{}",
        a.stderr_tail(30),
        b.stderr_tail(30)
    );
    assert_one_request_each(&db.url, &slack, &roots).await;
    let posts = assert_exactly_once(&db.url, &slack).await;
    let inbox = count(
        &db.url,
        "SELECT COUNT(*) FROM timers WHERE idem_key LIKE 'slack:event:%'",
    )
    .await;
    assert_eq!(inbox, events as i64, "one inbox row per event_id");
    a.assert_no_panic();
    b.assert_no_panic();
    eprintln!(
        "FIGURES redelivery: {events} events x 4 deliveries over 2 replicas, {posts} posts checked once each, slowest ack {slowest:?}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop((a, b));
    db.drop_db().await;
}

/// Drill 2: Slack's API answers 429 with `Retry-After`, 500 and 503, and holds
/// answers longer than the client's timeout (the post went through; the bot
/// cannot know): every message delivered exactly once, `Retry-After` honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_api_failures_and_timeouts_deliver_each_message_once() {
    let db = TestDb::create(Db::Sqlite).await.unwrap();
    let slack = FakeSlack::start(BOT_TOKEN).await;
    let rounds = if full() { 4 } else { 1 };
    // The first post hangs for 30 s (the post went through); the client gives
    // up after 1 s and finds it, long before Slack would have answered.
    let mut failures = vec![Failure::Slow(Duration::from_secs(30))];
    for _ in 0..rounds {
        failures.extend([
            Failure::RateLimited(2),
            Failure::Status(500),
            Failure::Slow(Duration::from_millis(2500)),
            Failure::Status(503),
        ]);
    }
    slack.fail("chat.postMessage", failures.clone());
    slack.fail(
        "conversations.history",
        [Failure::Status(500), Failure::RateLimited(1)],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = drill_config(dir.path(), "1s");
    let process = WkProcess::start(spec(&config, &db.url, &slack)).await;
    let client = SlackClient::default();
    let events = failures.len();
    let started = Instant::now();
    let mut roots = Vec::new();
    let run = rand::random::<u32>() as u64;
    for n in 0..events {
        let (root, body) = customer_message(n, run);
        roots.push(root);
        let answer = client.event(&process.base, &body, None).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    assert!(
        wait_until(Duration::from_secs(20), || async {
            !slack.calls_to("chat.postMessage").is_empty()
        })
        .await
    );
    let hung = slack.calls_to("chat.postMessage")[0].clone();
    let hung_marker = hung.marker().expect("a marked post");
    let delivered = wait_until(Duration::from_secs(20), || async {
        use sqlx::Row;
        let mut conn = connect(&db.url).await;
        let rows = sqlx::query("SELECT idem_key FROM outbox WHERE status = 'delivered'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        rows.iter()
            .any(|r| watchkeeper::chat::post_marker(&r.get::<String, _>(0)) == hung_marker)
    })
    .await;
    assert!(
        delivered,
        "a post whose answer hangs is recorded within seconds, not when Slack answers:\n{}",
        process.stderr_tail(40)
    );
    let hung_recorded = hung.at.elapsed();
    // Failures hit whatever is sent next: one lane may meet several in a
    // row and back off 2, 4, 8… s.
    let patience = Duration::from_secs(if full() { 400 } else { 120 });
    assert!(
        wait_until(patience, || settled(&db.url)).await,
        "work left:\n{}\n{}",
        unfinished(&db.url).await,
        process.stderr_tail(20)
    );
    assert_one_request_each(&db.url, &slack, &roots).await;
    let posts = assert_exactly_once(&db.url, &slack).await;
    // Retry-After: the post that was answered 429 came back no sooner.
    let calls = slack.calls_to("chat.postMessage");
    let limited = &calls[1];
    let marker = limited.marker().expect("a marked post");
    let again = calls[2..]
        .iter()
        .find(|c| c.marker().as_deref() == Some(marker.as_str()))
        .expect("the rate-limited post was retried");
    let waited = again.at - limited.at;
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After: 2 honoured, came back after {waited:?}"
    );
    let lookups = slack.calls_to("conversations.history").len()
        + slack.calls_to("conversations.replies").len();
    assert!(
        lookups > 0,
        "timed-out posts were looked up before re-sending"
    );
    process.assert_no_panic();
    eprintln!(
        "FIGURES slack-failures: {events} requests, {} injected failures, {} postMessage calls, {lookups} in-doubt look-ups, hung post recorded after {hung_recorded:?}, {posts} posts once each, {:.1} s",
        failures.len() + 2,
        calls.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Drill 4: PostgreSQL stops (5 s in CI, 30 s in the full form) while posts
/// are in flight, then restarts. During the outage `/readyz` says not ready
/// and Slack hears a quick retry-able status; afterwards everything queued
/// completes once, without waiting for leases, and the process never died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_survived_without_loss_or_doubles() {
    let Some(pg) = PrivatePg::start() else {
        return;
    };
    let url = pg.url();
    let slack = FakeSlack::start(BOT_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let config = drill_config(dir.path(), "10s");
    let mut process = WkProcess::start(spec(&config, &url, &slack)).await;
    let client = SlackClient::default();
    let run = rand::random::<u32>() as u64;
    let before = if full() { 20 } else { 4 };
    let during = if full() { 20 } else { 4 };
    let outage = Duration::from_secs(if full() { 30 } else { 5 });
    let mut roots = Vec::new();
    // Posts answered slowly, so they are in flight when the database stops.
    slack.fail(
        "chat.postMessage",
        (0..before).map(|_| Failure::Slow(Duration::from_secs(3))),
    );
    for n in 0..before {
        let (root, body) = customer_message(n, run);
        roots.push(root);
        assert_eq!(client.event(&process.base, &body, None).await.status, 200);
    }
    assert!(
        wait_until(Duration::from_secs(20), || async {
            !slack.calls_to("chat.postMessage").is_empty()
        })
        .await
    );
    pg.stop();
    let down = Instant::now();
    // Only the posts in flight now are slow; the rest would pace the
    // recovery by their 3 s each (one at a time per channel).
    let unserved = slack.stop_failing("chat.postMessage");
    assert!(unserved < before, "some posts were in flight");
    // Slack keeps delivering: each gets an answer within its 3 s.
    let mut refused = Vec::new();
    let mut slowest = Duration::ZERO;
    for n in before..before + during {
        let (root, body) = customer_message(n, run);
        roots.push(root);
        let answer = client.event(&process.base, &body, None).await;
        slowest = slowest.max(answer.took);
        assert!(answer.took < Duration::from_secs(3), "{answer:?}");
        assert!(
            answer.status == 200 || answer.status == 503,
            "a retry-able answer: {answer:?}"
        );
        if answer.status != 200 {
            refused.push(body);
        }
    }
    let ready = reqwest::get(format!("{}/readyz", process.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "not ready while the database is away");
    let remaining = outage.saturating_sub(down.elapsed());
    tokio::time::sleep(remaining).await;
    assert!(process.alive(), "no crash:\n{}", process.stderr_tail(40));
    pg.start_again();
    let up = Instant::now();
    // Slack redelivers what it was told to retry.
    for body in &refused {
        let answer = client.event(&process.base, body, Some(1)).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    assert!(
        wait_until(Duration::from_secs(60), || settled(&url)).await,
        "work left:\n{}",
        process.stderr_tail(40)
    );
    let recovery = up.elapsed();
    assert!(
        wait_until(Duration::from_secs(5), || async {
            reqwest::get(format!("{}/readyz", process.base))
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await
    );
    assert_one_request_each(&url, &slack, &roots).await;
    let posts = assert_exactly_once(&url, &slack).await;
    // Claims of failed steps were given back at once, not after the 2 min lease.
    assert!(
        recovery < Duration::from_secs(60),
        "recovered in {recovery:?}"
    );
    assert!(process.alive());
    process.assert_no_panic();
    let starts = process.starts;
    process.kill();
    // How fast the backlog went out once the database was back: the posts
    // after the restart and the span of the busiest channel's.
    let mut after: HashMap<String, Vec<Instant>> = HashMap::new();
    for call in slack.calls_to("chat.postMessage") {
        if call.at >= up {
            let channel = call.body["channel"].as_str().unwrap_or_default();
            after.entry(channel.to_string()).or_default().push(call.at);
        }
    }
    let busiest = after
        .values()
        .max_by_key(|v| v.len())
        .cloned()
        .unwrap_or_default();
    let span = match (busiest.first(), busiest.last()) {
        (Some(first), Some(last)) => last.duration_since(*first),
        _ => Duration::ZERO,
    };
    eprintln!(
        "FIGURES pg-outage: {:?} outage, {} requests ({} refused with 503 and redelivered), slowest answer during the outage {slowest:?}, all done {:.1} s after restart, {} posts after the restart (the busiest channel's {} within {:.1} s), {posts} posts once each, {starts} process start(s)",
        outage,
        roots.len(),
        refused.len(),
        recovery.as_secs_f64(),
        after.values().map(Vec::len).sum::<usize>(),
        busiest.len(),
        span.as_secs_f64()
    );
}

/// Drill 5 (inbox and outbox): the process is SIGKILLed at seeded random
/// moments while customers write in and the bot answers; it is restarted
/// after each kill on the same database and port. Every event becomes one
/// request with one answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_intake_loses_and_doubles_nothing() {
    let db = TestDb::create(Db::Sqlite).await.unwrap();
    let slack = FakeSlack::start(BOT_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let config = drill_config(dir.path(), "10s");
    let mut process = WkProcess::start(spec(&config, &db.url, &slack)).await;
    let client = SlackClient::default();
    let run = rand::random::<u32>() as u64;
    let (events, kills) = if full() { (200, 40) } else { (30, 5) };
    let mut rng = SplitMix(0x5eed_0009);
    // Kill after these events (sorted, distinct), a few ms after the last send.
    let mut schedule: Vec<usize> = (0..kills).map(|_| 1 + rng.below(events - 1)).collect();
    schedule.sort_unstable();
    schedule.dedup();
    let started = Instant::now();
    let mut roots = Vec::new();
    let mut pending: Vec<Value> = Vec::new();
    let mut killed = 0;
    for n in 0..events {
        let (root, body) = customer_message(n, run);
        roots.push(root);
        pending.push(body);
        // Slack redelivers until it hears 200.
        while let Some(body) = pending.pop() {
            let answer = client.event(&process.base, &body, None).await;
            if answer.status != 200 {
                pending.push(body);
                process.restart().await;
            }
        }
        if schedule.contains(&n) {
            tokio::time::sleep(Duration::from_millis(rng.below(40) as u64)).await;
            process.kill();
            killed += 1;
            process.restart().await;
        }
    }
    assert!(
        wait_until(Duration::from_secs(90), || settled(&db.url)).await,
        "work left:\n{}",
        process.stderr_tail(40)
    );
    assert_one_request_each(&db.url, &slack, &roots).await;
    let posts = assert_exactly_once(&db.url, &slack).await;
    process.assert_no_panic();
    eprintln!(
        "FIGURES sigkill-intake: {events} requests, {killed} SIGKILLs, {} starts, {posts} posts once each, {:.1} s",
        process.starts,
        started.elapsed().as_secs_f64()
    );
}

/// Drill 5 (escalations): customers report outages (urgent: the `drill`
/// policy pages at once), and the process is SIGKILLed at seeded random
/// moments — while the requests arrive and while the level timers (1 min, the
/// shortest a policy allows) fire — and restarted each time. Every escalation
/// pages each level exactly once and ends exhausted; nothing is doubled.
/// CI: 100 escalations, one level; full: 1,000, two levels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_escalations_pages_each_level_once() {
    let db = TestDb::create(Db::Sqlite).await.unwrap();
    let slack = FakeSlack::start(BOT_TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (escalations, levels, kills) = if full() {
        (1000, 2, 60)
    } else {
        (
            std::env::var("WK_FAULTS_ESCALATIONS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(100),
            1,
            12,
        )
    };
    let people = ["U0ANNA", "U0BEN"];
    let mut policy = String::from("escalation_policies:\n  drill:\n    repeat: 0\n    levels:\n");
    for person in &people[..levels] {
        policy.push_str(&format!("      - {{ notify: [{person}], after: 1m }}\n"));
    }
    let config = drill_config(dir.path(), "10s");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("escalation_policies:\n", &policy)
        .replace("urgent_escalation: standard", "urgent_escalation: drill");
    std::fs::write(&config, text).unwrap();
    let mut process = WkProcess::start(spec(&config, &db.url, &slack)).await;
    let client = SlackClient::default();
    let run = rand::random::<u32>() as u64;
    let mut rng = SplitMix(0x5eed_e5ca);
    let started = Instant::now();
    let mut killed = 0;
    // Kills while the outages are reported.
    let arrival_kills = kills / 3;
    let mut schedule: Vec<usize> = (0..arrival_kills)
        .map(|_| 1 + rng.below(escalations - 1))
        .collect();
    schedule.sort_unstable();
    let mut roots = Vec::new();
    for n in 0..escalations {
        let (root, body) = customer_says(n, run, "production outage, checkout is down");
        roots.push(root);
        loop {
            let answer = client.event(&process.base, &body, None).await;
            if answer.status == 200 {
                break;
            }
            process.restart().await;
        }
        if schedule.contains(&n) {
            tokio::time::sleep(Duration::from_millis(rng.below(40) as u64)).await;
            killed += 1;
            process.restart().await;
        }
    }
    // Kills while the levels fire, until every escalation has ended.
    // Each escalation posts about seven messages; a kill costs a restart.
    let limit = Duration::from_secs(60 * (levels as u64) + 240 + escalations as u64);
    let all_ended = "SELECT COUNT(*) FROM escalations WHERE status = 'exhausted'";
    loop {
        let ended = settled(&db.url).await && count(&db.url, all_ended).await == escalations as i64;
        if ended {
            break;
        }
        if started.elapsed() > limit {
            panic!(
                "escalations not finished after {limit:?}:\n{}\n{}",
                unfinished(&db.url).await,
                process.stderr_tail(20)
            );
        }
        if killed < kills {
            tokio::time::sleep(Duration::from_millis(2000 + rng.below(6000) as u64)).await;
            killed += 1;
            process.restart().await;
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let wall = started.elapsed();
    assert_eq!(
        count(&db.url, "SELECT COUNT(*) FROM escalations").await,
        escalations as i64,
        "one escalation per urgent request"
    );
    for person in &people[..levels] {
        let dm = format!("D{}", person.trim_start_matches('U'));
        let pages = slack.messages_in(&dm).len();
        assert_eq!(pages, escalations, "{person} paged once per escalation");
    }
    let exhausted_notices = count(
        &db.url,
        "SELECT COUNT(*) FROM outbox WHERE idem_key LIKE 'page:%:exhausted' AND status = 'delivered'",
    )
    .await;
    assert_eq!(exhausted_notices, escalations as i64);
    assert_requests(&db.url, &slack, &roots, 2).await;
    let posts = assert_exactly_once(&db.url, &slack).await;
    process.assert_no_panic();
    eprintln!(
        "FIGURES sigkill-escalations: {escalations} escalations x {levels} level(s), {killed} SIGKILLs, {} starts, {posts} posts once each, {} pages, {:.1} s",
        process.starts,
        escalations * levels,
        wall.as_secs_f64()
    );
}

/// A click on `action_id` (value `value`) on message `ts` in `channel` by
/// `user` of our workspace, from the recorded block_actions payload.
fn click_payload(
    user: &str,
    channel: &str,
    ts: &str,
    action_id: &str,
    value: &str,
    response: &str,
) -> Vec<u8> {
    let mut payload: Value = serde_json::from_str(&fixture(
        "real/slack/interactive/block_actions_ephemeral_message_button.json",
    ))
    .unwrap();
    payload["user"] =
        json!({ "id": user, "username": "someone", "name": "someone", "team_id": "T0STAFF" });
    payload["team"] = json!({ "id": "T0STAFF", "domain": "example" });
    payload["container"] = json!({ "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false });
    payload["channel"] = json!({ "id": channel, "name": "channel" });
    payload["trigger_id"] = json!(format!(
        "{}.{}.trigger",
        rand::random::<u32>(),
        rand::random::<u64>()
    ));
    payload["response_url"] = json!(response);
    payload["actions"][0]["action_id"] = json!(action_id);
    payload["actions"][0]["value"] = json!(value);
    serde_urlencoded::to_string([("payload", payload.to_string())])
        .unwrap()
        .into_bytes()
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Drill 5 (playbook runs): runs of a chart bump that needs two approvers
/// are requested with `/wk run`, approved by two distinct people with signed
/// clicks, and committed by the git forge, while the process is SIGKILLed at
/// seeded random moments and restarted. Every run succeeds with exactly one
/// commit on its own branch; main is untouched; nothing is posted twice.
/// CI: 20 runs; full: 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_playbook_runs_commits_each_run_once() {
    playbook_drill(false).await;
}

/// Drill 3: the same runs against GitHub (the fake), whose API fails in the
/// middle of opening pull requests — the branch is created, then a contents
/// update or the pull request itself answers 500/502, or the connection drops
/// after GitHub created the branch, the file or the pull request — while the process is
/// also SIGKILLed: each run resumes, reuses its branch, and opens exactly
/// one pull request. CI: 10 runs; full: 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_failing_mid_pull_request_opens_one_per_run() {
    playbook_drill(true).await;
}

const PULLS: &str = "POST /repos/{owner}/{repo}/pulls";
const CONTENTS: &str = "PUT /repos/{owner}/{repo}/contents/{*path}";
const REFS: &str = "POST /repos/{owner}/{repo}/git/refs";

async fn playbook_drill(on_github: bool) {
    let db = TestDb::create(Db::Sqlite).await.unwrap();
    let slack = FakeSlack::start(BOT_TOKEN).await;
    slack.set_usergroup("S0SRE", &["U0DANA", "U0EVA", "U0FRED", "U0GINA", "U0LEAD"]);
    slack.set_usergroup("S0ONCALL", &["U0ANNA", "U0BEN", "U0CHEN"]);
    slack.set_usergroup("S0SUPPORT", &["U0SAM", "U0TOM", "U0ANNA"]);
    let dir = tempfile::tempdir().unwrap();
    let (runs, kills) = match (on_github, full()) {
        (false, true) => (200, 40),
        (false, false) => (20, 6),
        (true, true) => (100, 10),
        (true, false) => (10, 3),
    };
    let repo_name = "platform/gitops";
    let helmrelease = "clusters/acme-prod/apps/checkout-api/helmrelease.yaml";
    let github = if on_github {
        let github = FakeGitHub::start(support::GITHUB_TOKEN).await;
        github.create_repo(repo_name, "main");
        github.put_file(
            repo_name,
            "main",
            helmrelease,
            &std::fs::read_to_string(support::repo_path(&format!(
                "examples/gitops/{helmrelease}"
            )))
            .unwrap(),
        );
        // More failures are injected as runs are approved, so they spread
        // over the runs (forge effects share one lane: a run's backoff holds
        // the runs behind it).
        github.fail(PULLS, [GhFailure::Status(500)]);
        github.fail(CONTENTS, [GhFailure::Status(500)]);
        Some(github)
    } else {
        None
    };
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    let playbook = std::fs::read_to_string(support::repo_path("playbooks/bump-chart.yaml"))
        .unwrap()
        .replace("name: bump-chart", "name: bump-chart-drill")
        .replace("  approvals: 1", "  approvals: 2")
        .replace("  roles: [sre, oncall, customer]", "  roles: [sre, oncall]");
    let playbook = if on_github {
        playbook.replace(
            "      repository: platform/gitops",
            "      forge: github\n      repository: platform/gitops",
        )
    } else {
        playbook
    };
    std::fs::write(extra.join("drill.yaml"), playbook).unwrap();
    let config = drill_config(dir.path(), "10s");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "paths: [../playbooks]",
            &format!("paths: [{}]", extra.display()),
        )
        .replace(
            "from: gitops",
            &format!("from: {}", support::repo_path("examples/gitops").display()),
        );
    let forge = dir.path().join("forge");
    let github_section = match &github {
        Some(github) => format!("  github:\n    api_url: {}\n", github.api_url),
        None => String::new(),
    };
    std::fs::write(
        &config,
        format!(
            "{text}\nforges:\n  git:\n    path: {}\n{github_section}",
            forge.display()
        ),
    )
    .unwrap();
    let mut process_spec = spec(&config, &db.url, &slack);
    process_spec.github_api_url = github.as_ref().map(|g| g.api_url.clone());
    let mut process = WkProcess::start(process_spec).await;
    let client = SlackClient::default();
    let mut rng = SplitMix(0x5eed_9b00);
    let started = Instant::now();
    let mut killed = 0;
    let response = format!("{}/drill", slack.response_base);
    // Each step of a run (request, approval 1, approval 2) may be followed by a kill.
    let chance = kills * 1000 / (runs * 3);
    let mut injected = if on_github { 2 } else { 0 };
    for id in 1..=runs {
        if let Some(github) = &github {
            if id % 3 == 0 {
                github.fail(
                    PULLS,
                    [GhFailure::Status(if id % 2 == 0 { 500 } else { 502 })],
                );
                injected += 1;
            }
            if id % 4 == 0 {
                github.fail(CONTENTS, [GhFailure::Status(500)]);
                injected += 1;
            }
            // The connection drops after GitHub did the work: the branch,
            // the file or the pull request exists, its answer is lost.
            for (every, at, route) in [(4, 2, REFS), (5, 0, PULLS), (7, 0, CONTENTS)] {
                if id % every == at {
                    github.fail(route, [GhFailure::Disconnect]);
                    injected += 1;
                }
            }
        }
        let answer = client
            .command(
                &process.base,
                "U0ANNA",
                "T0STAFF",
                "C0OPS",
                &format!("run bump-chart-drill version=2.{id}.0"),
                &response,
            )
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        if rng.below(1000) < chance && killed < kills {
            killed += 1;
            process.restart().await;
        }
        let marker = format!("Playbook run #{id}:");
        let mut card = None;
        assert!(
            wait_until(Duration::from_secs(60), || {
                card = slack
                    .messages_in("C0OPS")
                    .into_iter()
                    .find(|m| m.blocks.to_string().contains(&marker));
                let found = card.is_some();
                async move { found }
            })
            .await,
            "no approval card for run {id}:\n{}",
            process.stderr_tail(40)
        );
        let card = card.unwrap();
        for approver in ["U0DANA", "U0EVA"] {
            let body = click_payload(
                approver,
                "C0OPS",
                &card.ts,
                "playbook.approve",
                &id.to_string(),
                &response,
            );
            loop {
                let answer = client
                    .post(
                        &process.base,
                        "/slack/interactivity",
                        "application/x-www-form-urlencoded",
                        &body,
                        &[],
                    )
                    .await;
                if answer.status == 200 {
                    break;
                }
                process.restart().await;
            }
            if rng.below(1000) < chance && killed < kills {
                tokio::time::sleep(Duration::from_millis(rng.below(50) as u64)).await;
                killed += 1;
                process.restart().await;
            }
        }
        if on_github {
            // One run at a time, so each meets only its own injected failures.
            let done = format!(
                "SELECT COUNT(*) FROM playbook_runs WHERE id = {id} AND status = 'succeeded'"
            );
            let finished = wait_until(Duration::from_secs(60), || async {
                count(&db.url, &done).await == 1
            })
            .await;
            assert!(
                finished,
                "run {id} unfinished:\n{}\n{}",
                unfinished(&db.url).await,
                process.stderr_tail(20)
            );
        }
    }
    let all_done = "SELECT COUNT(*) FROM playbook_runs WHERE status = 'succeeded'";
    let done = wait_until(Duration::from_secs(180), || async {
        settled(&db.url).await && count(&db.url, all_done).await == runs as i64
    })
    .await;
    assert!(
        done,
        "runs left:\n{}\n{}",
        unfinished(&db.url).await,
        process.stderr_tail(20)
    );
    let wall = started.elapsed();
    assert_eq!(
        count(&db.url, "SELECT COUNT(*) FROM playbook_runs").await,
        runs as i64
    );
    let posts = assert_exactly_once(&db.url, &slack).await;
    process.assert_no_panic();
    if let Some(github) = &github {
        assert_eq!(
            github.pull_count(repo_name),
            runs,
            "one pull request per run"
        );
        let main = github.log(repo_name, "main").len();
        for id in 1..=runs {
            let branch = format!("watchkeeper/bump-checkout-api-{id}");
            let log = github.log(repo_name, &branch);
            assert_eq!(log.len(), main + 1, "one commit on {branch}: {log:?}");
            assert_eq!(
                log[0],
                format!("Bump checkout-api to 2.{id}.0 (Watchkeeper run {id})")
            );
        }
        assert_eq!(github.log(repo_name, "main").len(), main, "main untouched");
        let links = count(
            &db.url,
            "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%Pull request for run #%'",
        )
        .await;
        eprintln!(
            "FIGURES github-mid-pr: {runs} runs x 2 approvals, {} injected GitHub failures, {killed} SIGKILLs, {} starts, {} pulls calls, {} pull requests (one per run), {links} link posts, {posts} posts once each, {:.1} s",
            injected,
            process.starts,
            github.count(PULLS),
            github.pull_count(repo_name),
            wall.as_secs_f64()
        );
        return;
    }
    let repo = forge.join("platform/gitops");
    for id in 1..=runs {
        let branch = format!("watchkeeper/bump-checkout-api-{id}");
        let commits = git(&repo, &["rev-list", "--count", &format!("main..{branch}")]);
        assert_eq!(commits.trim(), "1", "one commit for run {id}");
        let file = git(
            &repo,
            &[
                "show",
                &format!("{branch}:clusters/acme-prod/apps/checkout-api/helmrelease.yaml"),
            ],
        );
        assert!(
            file.contains(&format!("version: 2.{id}.0")),
            "run {id} committed its change"
        );
    }
    // A git-forge pull request is its branch plus one record on main.
    let records = git(&repo, &["ls-tree", "--name-only", "main", "pulls/"]);
    assert_eq!(
        records.lines().count(),
        runs,
        "one pull request record per run: {records}"
    );
    let main_log = git(&repo, &["rev-list", "--count", "main"]);
    assert_eq!(
        main_log.trim(),
        (runs + 2).to_string(),
        "main: the seed, then one record commit per run"
    );
    let seeded = std::fs::read_to_string(support::repo_path(&format!(
        "examples/gitops/{helmrelease}"
    )))
    .unwrap();
    assert_eq!(
        git(&repo, &["show", &format!("main:{helmrelease}")]),
        seeded,
        "main's manifests untouched"
    );
    eprintln!(
        "FIGURES sigkill-playbooks: {runs} runs x 2 approvals, {killed} SIGKILLs, {} starts, {runs} branches with one commit each, {runs} pull request records, main has {} commit(s), {posts} posts once each, {:.1} s",
        process.starts,
        main_log.trim(),
        wall.as_secs_f64()
    );
}

/// A small seeded generator (SplitMix64): the kill schedule is the same on
/// every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
