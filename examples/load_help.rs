//! Load benchmark: signed `/wk help` slash commands through the real service.
//!
//! Starts `target/release/watchkeeper serve` (build it first) on a fresh SQLite
//! database, measures time to ready and idle RSS, then sends signed slash
//! commands over 16 keep-alive connections for 10 s and prints throughput and
//! latency percentiles.
//!
//! ```sh
//! cargo build --release && cargo run --release --example load_help
//! ```
//! Options (environment): `LOAD_SECONDS` (10), `LOAD_CONNECTIONS` (16).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use watchkeeper::chat::slack::SigningSecret;

const SECRET: &str = "load-test-secret";

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let seconds = env_or("LOAD_SECONDS", 10);
    let connections = env_or("LOAD_CONNECTIONS", 16) as usize;
    let root = env!("CARGO_MANIFEST_DIR");
    let binary = std::env::var("WATCHKEEPER_BIN")
        .unwrap_or_else(|_| format!("{root}/target/release/watchkeeper"));
    let dir = std::env::temp_dir().join(format!("wk-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");

    let started = Instant::now();
    let mut child = Command::new(&binary)
        .arg("serve")
        .current_dir(root)
        .env(
            "WATCHKEEPER_DATABASE_URL",
            format!("sqlite://{}/wk.db", dir.display()),
        )
        .env("WATCHKEEPER_LISTEN", format!("127.0.0.1:{port}"))
        .env("SLACK_SIGNING_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {binary} ({e}); run `cargo build --release` first")
        });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .unwrap();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            panic!("service not ready after 10 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ready_after = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = rss_kib(child.id());

    let body = "token=x&team_id=T0STAFF&team_domain=ops&channel_id=C0OPS&channel_name=ops\
                &user_id=U0LEAD&user_name=lead&command=%2Fwk&text=help&api_app_id=A0WK\
                &response_url=http%3A%2F%2F127.0.0.1%3A9%2Fnone&trigger_id=1.2.3";
    let secret = SigningSecret::new(SECRET);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let url = format!("{base}/slack/commands");
    let load_started = Instant::now();
    for _ in 0..connections {
        let client = client.clone();
        let stop = stop.clone();
        let url = url.clone();
        let secret = secret.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let mut signed_at = 0i64;
            let mut signature = String::new();
            while !stop.load(Ordering::Relaxed) {
                let now = chrono::Utc::now().timestamp();
                if now != signed_at {
                    signed_at = now;
                    signature = secret.sign(&now.to_string(), body.as_bytes());
                }
                let t = Instant::now();
                let ok = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-slack-request-timestamp", signed_at.to_string())
                    .header("x-slack-signature", &signature)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false);
                latencies.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await.unwrap();
        all.extend(latencies);
        errors += e;
    }
    let elapsed = load_started.elapsed();
    let loaded_rss = rss_kib(child.id());
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!("signed /wk help over {connections} connections for {seconds} s");
    println!("  requests:   {} ({} errors)", all.len(), errors);
    println!(
        "  throughput: {:.0} req/s",
        all.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency:    p50 {:?}  p99 {:?}  max {:?}",
        pct(0.50),
        pct(0.99),
        all[all.len() - 1]
    );
    println!("  ready in:   {ready_after:?}");
    println!(
        "  RSS:        idle {} MiB, after load {} MiB",
        idle_rss / 1024,
        loaded_rss / 1024
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
