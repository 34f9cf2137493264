//! The real `watchkeeper` binary as a child process: a generated
//! configuration, the environment pointing at in-test fakes, `/readyz`
//! awaited, SIGKILL, a restart on the same database and port (so the new
//! process takes back what the killed one had claimed), and its stderr shown
//! when something goes wrong.

#![allow(dead_code)]

use super::{BOT_TOKEN, GITHUB_SECRET, GITHUB_TOKEN, SECRET, example_config};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take before the drill fails (a debug build on a busy
/// 2-core machine, migrations on a fresh database included).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// What a process is started with.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    /// The configuration file.
    pub config: PathBuf,
    /// `WATCHKEEPER_DATABASE_URL`.
    pub database_url: String,
    /// `SLACK_API_URL` (a fake Slack).
    pub slack_api_url: String,
    /// `GITHUB_API_URL`, if any.
    pub github_api_url: Option<String>,
    /// The port to listen on (kept across restarts: the replica's identity).
    pub port: u16,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

/// Writes `extra` appended to the example configuration (or, when it starts
/// with `team:`, instead of it) into `dir`; returns its path.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let text = if extra.starts_with("team:") {
        extra.to_string()
    } else {
        format!("{}\n{extra}\n", example_config())
    };
    let path = dir.join("watchkeeper.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One running (or killed) `watchkeeper serve`.
pub struct WkProcess {
    /// How it was started.
    pub spec: ProcessSpec,
    /// `http://127.0.0.1:port`.
    pub base: String,
    child: Option<Child>,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
    /// How many times it was (re)started.
    pub starts: usize,
}

impl WkProcess {
    /// Starts the binary and waits until `/readyz` says ready.
    pub async fn start(spec: ProcessSpec) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let mut process = Self {
            base: format!("http://127.0.0.1:{}", spec.port),
            log: log_dir.path().join("stderr.log"),
            spec,
            child: None,
            _log_dir: log_dir,
            starts: 0,
        };
        process.launch().await;
        process
    }

    fn spawn_child(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let spec = &self.spec;
        let mut command = Command::new(env!("CARGO_BIN_EXE_watchkeeper"));
        command
            .arg("--config")
            .arg(&spec.config)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOSTNAME", "drill")
            .env("WATCHKEEPER_DATABASE_URL", &spec.database_url)
            .env("WATCHKEEPER_LISTEN", format!("127.0.0.1:{}", spec.port))
            .env("SLACK_SIGNING_SECRET", SECRET)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_API_URL", &spec.slack_api_url)
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
            .env(
                "RUST_LOG",
                std::env::var("WK_DRILL_LOG").unwrap_or_else(|_| "info".into()),
            )
            .current_dir(self.log.parent().unwrap_or(Path::new("/tmp")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some(url) = &spec.github_api_url {
            command.env("GITHUB_API_URL", url);
        }
        for (name, value) in &spec.env {
            command.env(name, value);
        }
        self.child = Some(command.spawn().expect("the watchkeeper binary starts"));
        self.starts += 1;
    }

    async fn launch(&mut self) {
        self.spawn_child();
        let started = Instant::now();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "watchkeeper exited during start ({status}):\n{}",
                    self.stderr_tail(60)
                );
            }
            if let Ok(response) = client.get(format!("{}/readyz", self.base)).send().await
                && response.status() == 200
            {
                return;
            }
            if started.elapsed() > START_DEADLINE {
                panic!(
                    "watchkeeper not ready after {START_DEADLINE:?}:\n{}",
                    self.stderr_tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the process dies on the spot, writing nothing more.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// Starts it again on the same database, port and configuration.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }

    /// Whether the process is still running (not crashed).
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything it wrote to stderr, across restarts.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = self.stderr();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Resident memory in KiB (Linux `/proc`), while it runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Asserts it never panicked (across all its runs).
    pub fn assert_no_panic(&self) {
        let log = self.stderr();
        assert!(
            !log.contains("panicked at"),
            "watchkeeper panicked:\n{}",
            self.stderr_tail(80)
        );
    }
}

impl Drop for WkProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Signs and POSTs Slack requests to a process (any number of them).
#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
}

impl Default for SlackClient {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }
}

/// What a signed request got back.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status (0: no answer at all).
    pub status: u16,
    /// Body.
    pub body: String,
    /// How long it took.
    pub took: Duration,
}

impl SlackClient {
    /// POSTs `body` to `base + path`, signed now, with extra headers.
    pub async fn post(
        &self,
        base: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
        headers: &[(&str, String)],
    ) -> Answer {
        use watchkeeper::chat::slack::SigningSecret;
        let ts = chrono::Utc::now().timestamp().to_string();
        let signature = SigningSecret::new(SECRET).sign(&ts, body);
        let mut request = self
            .http
            .post(format!("{base}{path}"))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let started = Instant::now();
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                Answer {
                    status,
                    body,
                    took: started.elapsed(),
                }
            }
            Err(err) => Answer {
                status: 0,
                body: err.to_string(),
                took: started.elapsed(),
            },
        }
    }

    /// An Events API delivery; `retry` adds Slack's redelivery headers.
    pub async fn event(&self, base: &str, body: &serde_json::Value, retry: Option<u32>) -> Answer {
        let mut headers = Vec::new();
        if let Some(n) = retry {
            headers.push(("x-slack-retry-num", n.to_string()));
            headers.push(("x-slack-retry-reason", "http_timeout".to_string()));
        }
        self.post(
            base,
            "/slack/events",
            "application/json",
            body.to_string().as_bytes(),
            &headers,
        )
        .await
    }

    /// `/wk <text>` as `user` of `team` in `channel`, answered on `response_url`.
    pub async fn command(
        &self,
        base: &str,
        user: &str,
        team: &str,
        channel: &str,
        text: &str,
        response_url: &str,
    ) -> Answer {
        let body = super::slack_events::command_form(user, team, channel, text, response_url);
        self.post(
            base,
            "/slack/commands",
            "application/x-www-form-urlencoded",
            body.as_bytes(),
            &[],
        )
        .await
    }
}

/// Polls `check` (every 100 ms) until it is true or `limit` passes; returns
/// whether it became true. Real-process drills wait on real I/O this way.
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
