//! Scheduler benchmark, in real time: how late do timers fire, and how many
//! does one worker complete per second?
//!
//! For SQLite (a fresh file) and PostgreSQL (a fresh database on
//! `WATCHKEEPER_TEST_POSTGRES_URL`, skipped when unset):
//! 1. *Lateness*: 10,000 `notify` timers are armed due evenly over 10 s; one
//!    worker runs the production loop (claim with a lease, fire, record the
//!    effect in the outbox, commit) and the lateness of each firing (recorded
//!    firing time − due time) is reported as p50/p99/max. Target: p99 ≤ 1 s.
//! 2. *Throughput*: 10,000 timers already due; one worker drains them.
//!
//! ```sh
//! WATCHKEEPER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release --example timers_bench
//! ```
//! Options (environment): `BENCH_TIMERS` (10000), `BENCH_SPREAD_SECONDS` (10).

mod common;

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use watchkeeper::chat::Reply;
use watchkeeper::clock::Clock;
use watchkeeper::ids::ChannelId;
use watchkeeper::metrics::Metrics;
use watchkeeper::outbox::{SlackEffect, Target};
use watchkeeper::scheduler::Scheduler;
use watchkeeper::scheduler::builtin::Notify;
use watchkeeper::store::timers::Queue;
use watchkeeper::store::{Store, Wake};
use watchkeeper::work::Work;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn effect(n: u64) -> SlackEffect {
    SlackEffect::Post {
        to: Target::Channel {
            channel: ChannelId::from(format!("C0BENCH{}", n % 50).as_str()),
            thread: None,
        },
        reply: Reply::text(format!("reminder {n}")).in_channel(),
    }
}

/// Arms `count` timers, due evenly from `first` over `spread`, 500 per transaction.
async fn arm(store: &Store, prefix: &str, count: u64, first: DateTime<Utc>, spread: Duration) {
    let step = spread.as_secs_f64() / count as f64;
    let mut n = 0;
    while n < count {
        let mut work = Work::new(store.clone(), Utc::now());
        for _ in 0..500.min(count - n) {
            let offset = chrono::Duration::microseconds((step * n as f64 * 1e6) as i64);
            work.arm(Notify::timer(
                &format!("{prefix}:{n}"),
                first + offset,
                effect(n),
            ))
            .await
            .expect("arm a timer");
            n += 1;
        }
        work.commit().await.expect("commit armed timers");
    }
}

/// The production worker loop for the timers queue, until `count` have fired.
async fn work_until_done(store: &Store, scheduler: &Scheduler, count: usize) {
    let mut done = 0;
    while done < count {
        let claimed = scheduler
            .run_due(Queue::Timers)
            .await
            .expect("run due timers");
        done += claimed;
        if claimed > 0 {
            continue;
        }
        let idle = match store.next_timer_due(Queue::Timers).await.expect("next due") {
            Some(at) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::from_millis(1))
                .clamp(Duration::from_millis(1), Duration::from_secs(1)),
            None => Duration::from_secs(1),
        };
        tokio::select! {
            _ = store.wakers().get(Wake::Timers).notified() => {}
            _ = tokio::time::sleep(idle) => {}
        }
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn lateness_ms(store: &Store, prefix: &str) -> Vec<i64> {
    let mut late: Vec<i64> = sqlx::query_scalar(
        "SELECT finished_at - due_at FROM timers WHERE idem_key LIKE $1 AND status = 'done'",
    )
    .bind(format!("{prefix}:%"))
    .fetch_all(store.pool())
    .await
    .expect("read firing times");
    late.sort_unstable();
    late
}

async fn bench(label: &str, url: &str, count: u64, spread: Duration) {
    let store = Store::open(url).await.expect("open the store");
    let scheduler = Scheduler::new(
        store.clone(),
        Clock::system(),
        "bench:1",
        chrono::Duration::minutes(2),
        Metrics::default(),
        vec![Arc::new(Notify)],
        None,
    );

    // 1. Lateness: armed ahead, due over the spread.
    let armed = Instant::now();
    let first = Utc::now() + chrono::Duration::seconds(20);
    arm(&store, "late", count, first, spread).await;
    let arm_secs = armed.elapsed().as_secs_f64();
    let wait = (first - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait.saturating_sub(Duration::from_millis(50))).await;
    work_until_done(&store, &scheduler, count as usize).await;
    let late = lateness_ms(&store, "late").await;
    assert_eq!(late.len() as u64, count, "every timer fired once");

    // 2. Throughput: a backlog of due timers.
    arm(&store, "due", count, Utc::now(), Duration::ZERO).await;
    let started = Instant::now();
    work_until_done(&store, &scheduler, count as usize).await;
    let drain = started.elapsed().as_secs_f64();
    let effects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(store.pool())
        .await
        .expect("count effects");
    assert_eq!(effects as u64, 2 * count, "one effect per timer");

    println!(
        "{label:<10} {count} timers over {:.0} s: lateness p50 {} ms, p99 {} ms, max {} ms (target p99 <= 1000 ms) | armed at {:.0}/s | one worker drains {:.0} timers/s",
        spread.as_secs_f64(),
        percentile(&late, 50.0),
        percentile(&late, 99.0),
        late.last().copied().unwrap_or(0),
        count as f64 / arm_secs,
        count as f64 / drain,
    );
    store.close().await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let count = env_or("BENCH_TIMERS", 10_000);
    let spread = Duration::from_secs(env_or("BENCH_SPREAD_SECONDS", 10));

    let dir = std::env::temp_dir().join(format!("wk-timers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sqlite = format!("sqlite://{}/bench.db", dir.display());
    bench("sqlite", &sqlite, count, spread).await;
    let _ = std::fs::remove_dir_all(&dir);

    common::on_fresh_postgres("wk_timers_bench", |url| async move {
        bench("postgres", &url, count, spread).await;
    })
    .await;
}
