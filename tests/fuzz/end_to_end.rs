//! Mangled, forged and random requests against the running router: never a
//! 5xx or a dropped connection (what a panic in a handler looks like from
//! outside), forged always 401, nothing written for a refused request, and
//! the server still answers `/healthz` after the storm.

use super::support::mutate::{Executions, Mutator};
use super::support::{self, Db, GITHUB_SECRET, SECRET, TestApp, TestDb, fixtures_in};
use super::{command_seeds, events_seeds, interaction_form, interaction_seeds, json_seeds, scaled};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use rand::Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use watchkeeper::chat::slack::SigningSecret;

const AM_TOKEN: &str = "am-fuzz-token";

async fn spawn() -> TestApp {
    let slack = support::fake_slack::FakeSlack::start(support::BOT_TOKEN).await;
    let db = Arc::new(TestDb::create(Db::Sqlite).await.unwrap());
    let mut settings = support::settings(&db, &slack);
    settings.alertmanager_token = Some(AM_TOKEN.into());
    TestApp::start(
        db,
        slack,
        settings,
        support::virtual_runtime(
            watchkeeper::clock::Clock::virtual_at(support::monday_morning()),
            None,
        ),
    )
    .await
}

/// Rows per table: what "nothing was written" is checked against.
async fn row_counts(url: &str) -> BTreeMap<String, i64> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect();
    let mut counts = BTreeMap::new();
    for table in tables {
        let row = sqlx::query(&format!("SELECT COUNT(*) FROM \"{table}\""))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        counts.insert(table, row.get::<i64, _>(0));
    }
    counts
}

/// One request as sent: where, which headers, what body.
#[derive(Debug)]
struct Request {
    path: &'static str,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Request {
    async fn send(&self, app: &TestApp) -> u16 {
        let mut request = app
            .http
            .post(format!("{}{}", app.base, self.path))
            .header("content-type", self.content_type)
            .body(self.body.clone());
        for (name, value) in &self.headers {
            request = request.header(*name, value.as_str());
        }
        match request.send().await {
            Ok(response) => response.status().as_u16(),
            Err(err) => panic!(
                "{} dropped the connection (a panic?): {err}; request {:?}",
                self.path,
                String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
            ),
        }
    }
}

/// Bodies for every endpoint, mutated from the captures.
struct Corpus {
    events: Vec<Value>,
    commands: Vec<String>,
    interactions: Vec<Value>,
    alerts: Vec<Value>,
    github: Vec<(String, Value)>,
}

impl Corpus {
    fn load() -> Self {
        Self {
            events: events_seeds(),
            commands: command_seeds(),
            interactions: interaction_seeds(),
            alerts: json_seeds(&["alertmanager", "real/alertmanager"]),
            github: fixtures_in("github/webhooks", "json")
                .into_iter()
                .map(|(name, text)| {
                    let event = if name.starts_with("issues") {
                        "issues"
                    } else if name.starts_with("pull_request") {
                        "pull_request"
                    } else {
                        "ping"
                    };
                    (event.to_string(), serde_json::from_str(&text).unwrap())
                })
                .collect(),
        }
    }

    /// A mutated body for one of the five endpoints.
    fn body(&self, m: &mut Mutator) -> (&'static str, &'static str, Vec<u8>, String) {
        match m.rng().random_range(0..5) {
            0 => {
                let seed = m.pick(&self.events).clone();
                let body = if m.rng().random_bool(0.3) {
                    m.json(&seed).to_string().into_bytes()
                } else {
                    m.json_bytes(&seed)
                };
                ("/slack/events", "application/json", body, String::new())
            }
            1 => {
                let seed = m.pick(&self.commands).clone();
                let body = m.form(&seed);
                (
                    "/slack/commands",
                    "application/x-www-form-urlencoded",
                    body,
                    String::new(),
                )
            }
            2 => {
                let seed = m.pick(&self.interactions).clone();
                let json = String::from_utf8_lossy(&m.json_bytes(&seed)).into_owned();
                let body = if m.rng().random_bool(0.3) {
                    m.form(&interaction_form(&seed.to_string()))
                } else {
                    interaction_form(&json).into_bytes()
                };
                (
                    "/slack/interactivity",
                    "application/x-www-form-urlencoded",
                    body,
                    String::new(),
                )
            }
            3 => {
                let seed = m.pick(&self.alerts).clone();
                (
                    "/webhooks/alertmanager",
                    "application/json",
                    m.json_bytes(&seed),
                    String::new(),
                )
            }
            _ => {
                let (event, seed) = m.pick(&self.github).clone();
                (
                    "/webhooks/github",
                    "application/json",
                    m.json_bytes(&seed),
                    event,
                )
            }
        }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The headers a genuine sender would attach to `body` for `path`.
fn genuine(path: &str, body: &[u8], event: &str) -> Vec<(&'static str, String)> {
    match path {
        "/webhooks/alertmanager" => vec![("authorization", format!("Bearer {AM_TOKEN}"))],
        "/webhooks/github" => vec![
            (
                "x-hub-signature-256",
                watchkeeper::forge::webhook::sign(GITHUB_SECRET.as_bytes(), body),
            ),
            ("x-github-event", event.to_string()),
        ],
        _ => {
            let ts = now().to_string();
            let signature = SigningSecret::new(SECRET).sign(&ts, body);
            vec![
                ("x-slack-request-timestamp", ts),
                ("x-slack-signature", signature),
            ]
        }
    }
}

/// The same request with its credentials forged one way or another.
fn forged(path: &str, body: &[u8], event: &str, m: &mut Mutator) -> Vec<(&'static str, String)> {
    let way = m.rng().random_range(0..6);
    match path {
        "/webhooks/alertmanager" => match way {
            0 => Vec::new(),
            1 => vec![("authorization", format!("Bearer {AM_TOKEN}x"))],
            2 => vec![("authorization", AM_TOKEN.to_string())],
            3 => vec![("authorization", "Bearer ".to_string())],
            _ => vec![(
                "authorization",
                format!(
                    "Bearer {}",
                    &AM_TOKEN[..m.rng().random_range(0..AM_TOKEN.len())]
                ),
            )],
        },
        "/webhooks/github" => {
            let genuine = watchkeeper::forge::webhook::sign(GITHUB_SECRET.as_bytes(), body);
            let signature = match way {
                0 => None,
                1 => Some(watchkeeper::forge::webhook::sign(b"not the secret", body)),
                2 => Some(genuine.replace("sha256=", "sha1=")),
                3 => Some(watchkeeper::forge::webhook::sign(
                    GITHUB_SECRET.as_bytes(),
                    &[body, b" "].concat(),
                )),
                _ => Some(
                    String::from_utf8_lossy(&m.bytes(genuine.as_bytes()))
                        .replace(|c: char| c.is_control() || !c.is_ascii(), "")
                        .to_string(),
                ),
            };
            let mut headers = vec![("x-github-event", event.to_string())];
            if let Some(signature) = signature.filter(|s| *s != genuine) {
                headers.push(("x-hub-signature-256", signature));
            }
            headers
        }
        _ => {
            let secret = SigningSecret::new(SECRET);
            let fresh = now().to_string();
            let (ts, signature) = match way {
                0 => (None, None),
                1 => (
                    Some(fresh.clone()),
                    Some(SigningSecret::new("other").sign(&fresh, body)),
                ),
                2 => {
                    // Stale: signed correctly, six minutes ago.
                    let old = (now() - 360).to_string();
                    (Some(old.clone()), Some(secret.sign(&old, body)))
                }
                3 => {
                    let huge = m
                        .pick(&[
                            "9223372036854775807",
                            "-9223372036854775808",
                            "99999999999999999999",
                            "-1",
                            "0x10",
                            "",
                        ])
                        .to_string();
                    (Some(huge.clone()), Some(secret.sign(&huge, body)))
                }
                4 => (
                    Some(fresh.clone()),
                    Some(secret.sign(&fresh, &[body, b"x"].concat())),
                ),
                _ => (
                    Some(fresh.clone()),
                    Some(secret.sign(&fresh, body).replace("v0=", "v1=")),
                ),
            };
            let mut headers = Vec::new();
            headers.extend(ts.map(|t| ("x-slack-request-timestamp", t)));
            headers.extend(signature.map(|s| ("x-slack-signature", s)));
            headers
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_requests_are_refused_and_mangled_ones_never_break_the_server() {
    let app = spawn().await;
    let corpus = Corpus::load();
    let rounds = scaled(150, 20);

    // Forged: every one refused with a 401, nothing written.
    let before = row_counts(&app.settings.database_url).await;
    let forged_runs = Executions::new("e2e forged requests");
    for seed in 0..u64::from(rounds) {
        let mut m = Mutator::new(seed);
        let (path, content_type, body, event) = corpus.body(&mut m);
        let headers = forged(path, &body, &event, &mut m);
        let request = Request {
            path,
            content_type,
            headers,
            body,
        };
        let status = request.send(&app).await;
        forged_runs.tick();
        assert_eq!(status, 401, "forged request not refused: {request:?}");
    }
    drop(forged_runs);
    app.settle().await;
    assert_eq!(
        row_counts(&app.settings.database_url).await,
        before,
        "a refused request wrote something"
    );

    // Signed but unreadable: a 400, nothing written.
    for (path, content_type) in [
        ("/slack/events", "application/json"),
        ("/slack/commands", "application/x-www-form-urlencoded"),
        ("/slack/interactivity", "application/x-www-form-urlencoded"),
    ] {
        for body in [
            &b"{"[..],
            b"\xff\xfe",
            b"payload=%7B",
            super::deep_json(100_000).as_bytes(),
        ] {
            let request = Request {
                path,
                content_type,
                headers: genuine(path, body, ""),
                body: body.to_vec(),
            };
            assert_eq!(request.send(&app).await, 400, "{request:?}");
        }
    }
    let oversized = vec![b'a'; watchkeeper::http::MAX_BODY + 1];
    let request = Request {
        path: "/slack/events",
        content_type: "application/json",
        headers: genuine("/slack/events", &oversized, ""),
        body: oversized,
    };
    assert_eq!(request.send(&app).await, 413);
    assert_eq!(
        row_counts(&app.settings.database_url).await,
        before,
        "an unreadable request wrote something"
    );

    // Genuine credentials, mangled bodies: read or refused, never a 5xx.
    let mut statuses: BTreeMap<(&str, u16), u32> = BTreeMap::new();
    let signed = Executions::new("e2e signed mangled requests");
    for seed in 0..u64::from(rounds) {
        let mut m = Mutator::new(seed ^ 0x5eed);
        let (path, content_type, body, event) = corpus.body(&mut m);
        let request = Request {
            path,
            content_type,
            headers: genuine(path, &body, &event),
            body,
        };
        let status = request.send(&app).await;
        signed.tick();
        assert!(status < 500, "{status} for {request:?}");
        *statuses.entry((path, status)).or_default() += 1;
    }
    drop(signed);
    eprintln!("signed mangled requests by endpoint and status: {statuses:?}");
    // What the mangled events and clicks queued runs through the workers.
    app.settle().await;
    assert_eq!(app.get("/healthz").await, (200, "ok\n".to_string()));
    app.stop().await;
}

/// Random `/wk` lines, as staff and as a customer, in the ops channel, a
/// customer's channel and a DM: every one answered with a reply (every verb
/// parser, moments and durations included), none a dropped connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_wk_command_lines_are_always_answered() {
    let app = spawn().await;
    let verbs: Vec<String> = std::fs::read_dir(support::repo_path("commands"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (!name.starts_with('_')).then(|| name.trim_end_matches(".yaml").to_string())
        })
        .collect();
    let mut runner = TestRunner::deterministic();
    let texts = super::wk_text();
    let callers = [
        ("U0LEAD", "T0STAFF", "C0OPS"),
        ("U0ANNA", "T0STAFF", "C0ACME"),
        ("U0SAM", "T0STAFF", "D0SAM"),
        ("U0CUST", "T0ACME", "C0ACME"),
    ];
    let answered = Executions::new("e2e /wk command lines");
    for n in 0..scaled(120, 20) {
        let mut m = Mutator::new(u64::from(n));
        let rest = texts.new_tree(&mut runner).unwrap().current();
        let verb = m.pick(&verbs).clone();
        let sub = m
            .pick(&[
                "",
                "override <@U0BEN|ben>",
                "me",
                "cancel",
                "swap <@U0BEN>",
                "open",
                "all",
                "acme",
            ])
            .to_string();
        let text = format!("{verb} {sub} {rest}");
        let (user, team, channel) = *m.pick(&callers);
        let reply = app.command(user, team, channel, &text).await;
        answered.tick();
        assert!(
            reply["text"].as_str().is_some_and(|t| !t.is_empty()),
            "no reply to /wk {text}: {reply}"
        );
    }
    drop(answered);
    app.settle().await;
    assert_eq!(app.get("/healthz").await, (200, "ok\n".to_string()));
    app.stop().await;
}

/// The earlier attempt's finding: a moment in year 262142 (beyond chrono's
/// range once a zone or a day is added) panicked the command; it is refused
/// with the forms a moment may take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_at_the_edge_of_the_calendar_is_refused_in_a_sentence() {
    let app = spawn().await;
    for text in [
        "oncall override <@U0BEN> 262142-12-31 23:59 8h",
        "oncall override <@U0BEN> 262142-12-31T23:59 8h",
        "oncall override <@U0BEN> +262142-12-31 23:59 8h",
        "oncall override <@U0BEN> +262142-12-31T23:59 8h",
        "oncall override <@U0BEN> tomorrow 18:00 262142-12-31 23:59",
        "oncall override <@U0BEN> now 9999999999999999s",
        "oncall override <@U0BEN> -262143-01-01 00:00 1h",
    ] {
        let reply = app.command("U0LEAD", "T0STAFF", "C0OPS", text).await;
        let said = reply["text"].as_str().unwrap_or_default().to_string();
        assert!(
            said.contains("is not a time") || said.contains("longer than 100 years"),
            "/wk {text}: {said}"
        );
    }
    app.stop().await;
}

/// Mangled Socket Mode frames down a real WebSocket to the running client:
/// every envelope that names itself is acknowledged, garbage is skipped, and
/// the connection survives to acknowledge the genuine frame sent last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mangled_socket_mode_frames_never_stop_the_client() {
    use support::socket_server::fake_socket_server;
    let seeds = json_seeds(&["real/slack/socket_mode"]);
    let hello = support::fixture("real/slack/socket_mode/hello.json");
    let mut frames = vec![hello];
    let mut expected: Vec<String> = Vec::new();
    let count = scaled(150, 40);
    for seed in 0..u64::from(count) {
        let mut m = Mutator::new(seed);
        let base = m.pick(&seeds).clone();
        let mut frame = if m.rng().random_bool(0.5) {
            m.json(&base)
        } else {
            base
        };
        // A fresh id, so each acknowledgement can be told apart.
        let id = format!("fuzz-{seed}");
        if frame["envelope_id"].is_string() {
            frame["envelope_id"] = Value::String(id.clone());
        }
        let kind = frame["type"].as_str().unwrap_or_default().to_string();
        if kind == "disconnect" {
            continue; // A genuine request to reconnect, not garbage.
        }
        let text = if m.rng().random_bool(0.3) {
            String::from_utf8_lossy(&m.bytes(frame.to_string().as_bytes())).into_owned()
        } else {
            frame.to_string()
        };
        // What the client must acknowledge: an envelope with an id, whose
        // type is not hello, as the frame actually sent reads.
        if let Ok(sent) = serde_json::from_str::<Value>(&text)
            && sent["envelope_id"].as_str() == Some(id.as_str())
            && sent["type"].is_string()
            && sent["type"] != "hello"
            && sent["type"] != "disconnect"
        {
            expected.push(id);
        }
        if serde_json::from_str::<Value>(&text).is_ok_and(|v| v["type"] == "disconnect") {
            continue;
        }
        frames.push(text);
    }
    let mut last: Value = serde_json::from_str(&support::fixture(
        "real/slack/socket_mode/events_api_message.json",
    ))
    .unwrap();
    last["envelope_id"] = Value::String("the-last-one".into());
    frames.push(last.to_string());
    expected.push("the-last-one".into());
    assert!(
        expected.len() * 3 > count as usize,
        "most frames name an envelope"
    );
    let sent = frames.len();
    let (url, mut acks) = fake_socket_server(frames).await;
    let app = support::socket_server::socket_mode_app(&url).await;
    let executions = Executions::new("e2e socket mode frames");
    let mut seen = std::collections::BTreeSet::new();
    let mut connections = 0;
    while !seen.contains("the-last-one") {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(20), acks.recv())
            .await
            .expect("the Socket Mode client keeps acknowledging")
            .unwrap();
        if frame.get("_connected").is_some() {
            connections += 1;
            continue;
        }
        if let Some(id) = frame["envelope_id"].as_str() {
            seen.insert(id.to_string());
        }
    }
    for _ in 0..sent {
        executions.tick();
    }
    drop(executions);
    assert_eq!(connections, 1, "the client reconnected: a frame broke it");
    let missing: Vec<_> = expected.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "not acknowledged: {missing:?}");
    assert_eq!(app.get("/healthz").await, (200, "ok\n".to_string()));
    app.stop().await;
}
