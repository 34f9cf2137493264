//! The integration-test harness: the real router on a random port, a fresh
//! SQLite or PostgreSQL database, and a fake Slack Web API. Requests are
//! signed the way Slack signs them and sent over real HTTP.

#![allow(dead_code)]

pub mod checks;
pub mod fake_github;
pub mod fake_kube;
pub mod fake_slack;
pub mod interactions;
pub mod month_sim;
pub mod mutate;
pub mod private_pg;
pub mod process;
pub mod slack_events;
pub mod socket_server;

use fake_slack::FakeSlack;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use watchkeeper::app::{Runtime, Server, Settings};
use watchkeeper::chat::slack::SigningSecret;
use watchkeeper::clock::Clock;
use watchkeeper::faults::Faults;

/// The signing secret of the test app.
pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The bot token the fake Slack accepts.
pub const BOT_TOKEN: &str = "xoxb-test-token";
/// Our workspace in the example config.
pub const STAFF_TEAM: &str = "T0STAFF";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// The PostgreSQL server tests use: `WATCHKEEPER_TEST_POSTGRES_URL`, else the
/// local default. `None` (test skipped) only outside CI; in CI a missing
/// PostgreSQL fails the test.
pub async fn postgres_admin_url() -> Option<String> {
    let url = std::env::var("WATCHKEEPER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    sqlx::any::install_default_drivers();
    let connected = {
        use sqlx::Connection;
        sqlx::AnyConnection::connect(&url).await
    };
    match connected {
        Ok(_) => Some(url),
        Err(err) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is required in CI but {url} is unreachable: {err}");
            }
            eprintln!(
                "skipping PostgreSQL test: {url} is unreachable ({err}); set WATCHKEEPER_TEST_POSTGRES_URL"
            );
            None
        }
    }
}

/// A fresh, empty database for one test.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// Creates one; `None` when PostgreSQL is wanted but absent outside CI.
    pub async fn create(db: Db) -> Option<Self> {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path: PathBuf = dir.path().join("wk.db");
                Some(Self {
                    url: format!("sqlite://{}", path.display()),
                    admin: None,
                    _dir: Some(dir),
                })
            }
            Db::Postgres => {
                use sqlx::{Connection, Executor};
                let admin = postgres_admin_url().await?;
                let name = format!("wk_test_{:016x}", rand::random::<u64>());
                let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Some(Self {
                    url: format!("{base}/{name}"),
                    admin: Some((admin, name)),
                    _dir: None,
                })
            }
        }
    }

    /// Does what PostgreSQL's autovacuum does in production, where it visits
    /// every minute of real time (it is off on the CI database, and a
    /// simulated month passes in minutes): vacuums and analyses the queue
    /// tables. Nothing on SQLite.
    pub async fn vacuum(&self) {
        use sqlx::{Connection, Executor};
        if self.admin.is_some() {
            let mut conn = sqlx::AnyConnection::connect(&self.url).await.unwrap();
            conn.execute("VACUUM (ANALYZE) timers, outbox")
                .await
                .unwrap();
        }
    }

    /// Drops a PostgreSQL test database.
    pub async fn drop_db(self) {
        use sqlx::{Connection, Executor};
        if let Some((admin, name)) = &self.admin
            && let Ok(mut conn) = sqlx::AnyConnection::connect(admin).await
        {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}

/// The real service, a fake Slack and a client that signs like Slack.
pub struct TestApp {
    /// The running service.
    pub server: Server,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The fake Slack Web API.
    pub slack: FakeSlack,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Business time.
    pub clock: Clock,
    /// The settings it was started with (to start a replica or a successor).
    pub settings: Settings,
    db: Arc<TestDb>,
    config_dir: Option<Arc<tempfile::TempDir>>,
}

/// A moment to start virtual clocks at: Monday 2026-03-02 09:00 UTC.
pub fn monday_morning() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .to_utc()
}

/// The GitHub token the fake GitHub accepts.
pub const GITHUB_TOKEN: &str = "ghp_testtoken";

/// The GitHub webhook secret the tests sign with.
pub const GITHUB_SECRET: &str = "github-webhook-secret";

/// The settings of a test app on `db` talking to `slack`.
pub fn settings(db: &TestDb, slack: &FakeSlack) -> Settings {
    Settings {
        config: Some(repo_path("examples/watchkeeper.yaml")),
        database_url: db.url.clone(),
        listen: "127.0.0.1:0".into(),
        signing_secret: Some(SECRET.into()),
        bot_token: Some(BOT_TOKEN.into()),
        app_token: None,
        slack_api_url: slack.api_url.clone(),
        github_token: Some(GITHUB_TOKEN.into()),
        github_api_url: None,
        github_webhook_secret: Some(GITHUB_SECRET.into()),
        github_app_key: None,
        alertmanager_token: None,
    }
}

impl TestApp {
    /// Starts the service on `db` with the example configuration, the system
    /// clock and background workers.
    pub async fn spawn(db: Db) -> Option<Self> {
        Self::spawn_with(db, |_| {}).await
    }

    /// Starts the service after letting the test adjust the settings.
    pub async fn spawn_with(db: Db, adjust: impl FnOnce(&mut Settings)) -> Option<Self> {
        let slack = FakeSlack::start(BOT_TOKEN).await;
        Self::spawn_with_slack(db, slack, adjust).await
    }

    /// Starts the service against a fake Slack the test has already set up.
    pub async fn spawn_with_slack(
        db: Db,
        slack: FakeSlack,
        adjust: impl FnOnce(&mut Settings),
    ) -> Option<Self> {
        let db = Arc::new(TestDb::create(db).await?);
        let mut settings = settings(&db, &slack);
        adjust(&mut settings);
        Some(Self::start(db, slack, settings, Runtime::production()).await)
    }

    /// Starts the service on a virtual clock at `start`, its workers driven by
    /// the test ([`TestApp::settle`], [`TestApp::advance`]).
    pub async fn spawn_virtual(db: Db, start: chrono::DateTime<chrono::Utc>) -> Option<Self> {
        Self::spawn_virtual_with(db, start, "", None).await
    }

    /// Like [`TestApp::spawn_virtual`], with `extra` YAML appended to the example
    /// configuration (or, when it starts with `team:`, replacing it) and
    /// optional crash points.
    pub async fn spawn_virtual_with(
        db: Db,
        start: chrono::DateTime<chrono::Utc>,
        extra: &str,
        faults: Option<Arc<dyn Faults>>,
    ) -> Option<Self> {
        let slack = FakeSlack::start(BOT_TOKEN).await;
        let db = Arc::new(TestDb::create(db).await?);
        let mut settings = settings(&db, &slack);
        let config_dir = if extra.is_empty() {
            None
        } else {
            let dir = tempfile::tempdir().unwrap();
            // A full configuration replaces the example; anything else is
            // appended to it.
            let text = if extra.starts_with("team:") {
                extra.to_string()
            } else {
                format!("{}\n{extra}\n", example_config())
            };
            let path = dir.path().join("watchkeeper.yaml");
            std::fs::write(&path, text).unwrap();
            settings.config = Some(path);
            Some(Arc::new(dir))
        };
        let mut app = Self::start(
            db,
            slack,
            settings,
            virtual_runtime(Clock::virtual_at(start), faults),
        )
        .await;
        app.config_dir = config_dir;
        Some(app)
    }

    /// Starts a service on `db` with `settings` and `runtime`.
    pub async fn start(
        db: Arc<TestDb>,
        slack: FakeSlack,
        settings: Settings,
        runtime: Runtime,
    ) -> Self {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
        let clock = runtime.clock.clone();
        slack.use_clock(clock.clone());
        let server = Server::start_with(&settings, runtime)
            .await
            .expect("service starts");
        let base = format!("http://{}", server.addr);
        Self {
            server,
            base,
            slack,
            http: reqwest::Client::new(),
            clock,
            settings,
            db,
            config_dir: None,
        }
    }

    /// Another replica (or the successor of this one after a crash) on the
    /// same database, fake Slack and clock, with its own `runtime` faults.
    pub async fn replica(&self, faults: Option<Arc<dyn Faults>>) -> Self {
        self.successor(self.settings.clone(), faults).await
    }

    /// A service on the same database, fake Slack, clock and configuration,
    /// started with `settings` (e.g. listening where a stopped one listened).
    pub async fn successor(&self, settings: Settings, faults: Option<Arc<dyn Faults>>) -> Self {
        let mut app = Self::start(
            self.db.clone(),
            self.slack.clone(),
            settings,
            virtual_runtime(self.clock.clone(), faults),
        )
        .await;
        app.config_dir = self.config_dir.clone();
        app
    }

    /// Runs everything due now (inbox, timers, outbox) until nothing is left.
    pub async fn settle(&self) -> usize {
        self.server
            .workers()
            .settle()
            .await
            .expect("workers settle")
    }

    /// Moves the virtual clock forward, firing what falls due on the way.
    pub async fn advance(&self, by: chrono::Duration) -> usize {
        let target = self.clock.now() + by;
        self.server
            .workers()
            .advance_to(target)
            .await
            .expect("workers advance")
    }

    /// The database it runs on.
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    /// Stops the service and drops its database (when no replica still uses it).
    pub async fn stop(self) {
        self.server.shutdown().await;
        if let Ok(db) = Arc::try_unwrap(self.db) {
            db.drop_db().await;
        }
    }

    /// Stops the service, keeping the database for a successor.
    pub async fn stop_keeping_db(self) {
        self.server.shutdown().await;
    }

    /// POSTs a body signed with the app's secret at the current time.
    pub async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> reqwest::Response {
        let ts = chrono::Utc::now().timestamp().to_string();
        let signature = SigningSecret::new(SECRET).sign(&ts, body);
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Runs `/wk <text>` as `user` of `team` in `channel`; returns Slack's JSON reply.
    pub async fn command(&self, user: &str, team: &str, channel: &str, text: &str) -> Value {
        let body = slack_events::command_form(
            user,
            team,
            channel,
            text,
            &format!("{}/cmd", self.slack.response_base),
        );
        let response = self
            .post_signed(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                body.as_bytes(),
            )
            .await;
        assert_eq!(response.status(), 200, "slash command answered");
        response.json().await.unwrap()
    }

    /// POSTs a JSON events body.
    pub async fn event(&self, body: &Value) -> reqwest::Response {
        self.post_signed(
            "/slack/events",
            "application/json",
            body.to_string().as_bytes(),
        )
        .await
    }

    /// POSTs an Alertmanager webhook delivery (no bearer token).
    pub async fn alertmanager(&self, body: String) -> reqwest::Response {
        self.http
            .post(format!("{}/webhooks/alertmanager", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// GETs a path; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

/// A virtual-clock runtime whose workers the test drives.
pub fn virtual_runtime(clock: Clock, faults: Option<Arc<dyn Faults>>) -> Runtime {
    Runtime {
        clock,
        background_workers: false,
        faults,
        handoff_sections: Vec::new(),
    }
}

/// The example configuration, ready to be written anywhere: its catalog path
/// (relative to `examples/`) made absolute.
pub fn example_config() -> String {
    std::fs::read_to_string(repo_path("examples/watchkeeper.yaml"))
        .unwrap()
        .replace(
            "paths: [../catalog]",
            &format!("paths: [{}]", repo_path("catalog").display()),
        )
}

/// A path inside the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A fixture from `../shared/fixtures`.
pub fn fixture(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file with `extension` under a fixtures folder, sorted.
pub fn fixtures_in(folder: &str, extension: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(folder);
    let mut files: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(&dir).unwrap().display().to_string(), text)
        })
        .collect();
    files.sort();
    files
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Runs a scenario on SQLite and on PostgreSQL as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::support::Db::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(super::support::Db::Postgres).await;
                }
            }
        )*
    };
}
