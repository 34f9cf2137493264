//! A small, honest fake of the Slack Web API: the handful of methods Watchkeeper
//! calls, answering with the response shapes in `shared/fixtures/real/slack/web_api`
//! (`chat.postMessage.ok.json`, `chat.update.ok.json`, `reactions.add.ok.json`,
//! `views.open.ok.json`, `conversations.open`, `usergroups.users.list`,
//! `apps.connections.open`) and `shared/fixtures/slack/schema-samples/web-api`
//! (`conversations.replies.json`), checking the bot token, keeping the messages
//! it was sent so `conversations.history` / `.replies` can return them, and
//! failing the way Slack fails:
//!
//! - on demand: `429` with `Retry-After` (`captured/ratelimited_429_with_headers.json`),
//!   `{"ok":false,"error":…}` (`captured/*error*.json`) or a bare 5xx;
//! - by itself, when rate limits are enforced ([`FakeSlack::enforce_limits`]):
//!   Slack's documented tiers per method (Tier 1: 1/min, Tier 2: 20/min, Tier 3:
//!   50/min, Tier 4: 100/min) and `chat.postMessage` at one message per second
//!   per channel with a burst of 3 and 300 per minute per workspace, measured on
//!   the test's clock. Every call is recorded.

#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use watchkeeper::clock::Clock;

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    /// e.g. `chat.postMessage`, or `response_url` for a response URL.
    pub method: String,
    /// The request's parameters (JSON body, form or query), as JSON.
    pub body: Value,
    /// When it arrived (real time: for Retry-After checks on real processes).
    pub at: std::time::Instant,
}

impl Call {
    /// The marker of the message it posts (the `block_id` of its first block).
    pub fn marker(&self) -> Option<String> {
        let blocks = match self.body.get("blocks") {
            Some(Value::String(s)) => serde_json::from_str(s).ok()?,
            Some(other) => other.clone(),
            None => return None,
        };
        blocks
            .get(0)
            .and_then(|b| b.get("block_id"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// A failure to return instead of a normal answer.
#[derive(Clone, Debug)]
pub enum Failure {
    /// HTTP 429 with `Retry-After: secs` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited(u64),
    /// HTTP 200 with `{"ok":false,"error":code}`.
    Error(&'static str),
    /// A bare HTTP status (e.g. 500, 503).
    Status(u16),
    /// The call takes effect as usual, but its answer is held this long (a
    /// Slack that is slow to answer: longer than the client's timeout, the
    /// client cannot know whether it took effect).
    Slow(std::time::Duration),
}

/// A message the fake was sent.
#[derive(Clone, Debug)]
pub struct Message {
    /// Its channel (a `D…` id for DMs).
    pub channel: String,
    /// Its ts.
    pub ts: String,
    /// The thread it is in.
    pub thread_ts: Option<String>,
    /// Its text.
    pub text: String,
    /// Its blocks as sent (or as last updated).
    pub blocks: Value,
    /// The marker it was posted with (an update may replace its blocks).
    pub posted_marker: Option<String>,
}

impl Message {
    /// The `block_id` of its first block (the outbox's marker).
    pub fn marker(&self) -> Option<&str> {
        self.blocks
            .get(0)
            .and_then(|b| b.get("block_id"))
            .and_then(Value::as_str)
    }
}

/// Generic cell rate algorithm: `burst` calls at once, then one per `interval_ms`.
#[derive(Clone, Debug)]
struct Bucket {
    interval_ms: i64,
    burst: i64,
    tat: i64,
}

impl Bucket {
    fn new(count: i64, period_ms: i64, burst: i64) -> Self {
        Self {
            interval_ms: period_ms / count,
            burst,
            tat: i64::MIN,
        }
    }

    /// Takes a permit at `now_ms`, or says how many ms until one is free.
    fn take(&mut self, now_ms: i64) -> Result<(), i64> {
        let tat = self.tat.max(now_ms) + self.interval_ms;
        let allowed_at = tat - self.burst * self.interval_ms;
        if allowed_at > now_ms {
            return Err(allowed_at - now_ms);
        }
        self.tat = tat;
        Ok(())
    }
}

fn tier_of(method: &str) -> Option<(i64, i64)> {
    // (calls, per ms) — Slack's documented tiers.
    let tier = match method {
        "apps.connections.open" => 1,
        "usergroups.users.list" => 2,
        "chat.update"
        | "conversations.open"
        | "conversations.history"
        | "conversations.replies"
        | "reactions.add" => 3,
        "chat.postEphemeral" | "views.open" => 4,
        "chat.postMessage" => return Some((300, 60_000)),
        _ => return None,
    };
    Some(match tier {
        1 => (1, 60_000),
        2 => (20, 60_000),
        3 => (50, 60_000),
        _ => (100, 60_000),
    })
}

struct Limits {
    clock: Clock,
    buckets: HashMap<String, Bucket>,
}

impl Limits {
    fn check(&mut self, method: &str, channel: Option<&str>) -> Result<(), i64> {
        let now = self.clock.now().timestamp_millis();
        if method == "chat.postMessage"
            && let Some(channel) = channel
        {
            self.buckets
                .entry(format!("channel:{channel}"))
                .or_insert_with(|| Bucket::new(1, 1000, 3))
                .take(now)?;
        }
        if let Some((count, period)) = tier_of(method) {
            self.buckets
                .entry(format!("method:{method}"))
                .or_insert_with(|| Bucket::new(count, period, count))
                .take(now)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct State_ {
    calls: Vec<Call>,
    failures: HashMap<String, VecDeque<Failure>>,
    next_ts: u64,
    socket_url: Option<String>,
    usergroups: HashMap<String, Vec<String>>,
    messages: Vec<Message>,
    reactions: Vec<(String, String, String)>,
    views: Vec<Value>,
    limits: Option<Limits>,
    rate_limited: u64,
    clock: Option<Clock>,
}

/// The fake; cheap to clone.
#[derive(Clone)]
pub struct FakeSlack {
    /// The Web API base URL, for `SLACK_API_URL`.
    pub api_url: String,
    /// Base for response URLs: `{response_base}/{id}`.
    pub response_base: String,
    token: String,
    state: Arc<Mutex<State_>>,
}

impl FakeSlack {
    /// Starts the fake on a random port, accepting `token` as the bot token.
    pub async fn start(token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = Self {
            api_url: format!("http://{addr}/api"),
            response_base: format!("http://{addr}/response"),
            token: token.to_string(),
            state: Arc::new(Mutex::new(State_ {
                next_ts: 100,
                ..State_::default()
            })),
        };
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/response/{id}", post(response_url))
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    /// Stamps messages (their `ts`) with `clock`'s time instead of the system's.
    pub fn use_clock(&self, clock: Clock) {
        self.state.lock().unwrap().clock = Some(clock);
    }

    /// Enforces Slack's rate limits, measured on `clock`.
    pub fn enforce_limits(&self, clock: Clock) {
        self.state.lock().unwrap().limits = Some(Limits {
            clock,
            buckets: HashMap::new(),
        });
    }

    /// How many calls were answered 429 because a limit was exceeded.
    pub fn rate_limited(&self) -> u64 {
        self.state.lock().unwrap().rate_limited
    }

    /// Makes the next calls of `method` fail, in order.
    pub fn fail(&self, method: &str, failures: impl IntoIterator<Item = Failure>) {
        let mut state = self.state.lock().unwrap();
        state
            .failures
            .entry(method.to_string())
            .or_default()
            .extend(failures);
    }

    /// Withdraws the failures of `method` not yet served; returns how many.
    pub fn stop_failing(&self, method: &str) -> usize {
        let mut state = self.state.lock().unwrap();
        state.failures.remove(method).map_or(0, |f| f.len())
    }

    /// Where `apps.connections.open` sends Socket Mode clients.
    pub fn set_socket_url(&self, url: &str) {
        self.state.lock().unwrap().socket_url = Some(url.to_string());
    }

    /// Members returned by `usergroups.users.list`.
    pub fn set_usergroup(&self, group: &str, users: &[&str]) {
        self.state.lock().unwrap().usergroups.insert(
            group.to_string(),
            users.iter().map(|u| u.to_string()).collect(),
        );
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls of one method.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Every message posted so far, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Messages posted to one channel.
    pub fn messages_in(&self, channel: &str) -> Vec<Message> {
        let state = self.state.lock().unwrap();
        state
            .messages
            .iter()
            .filter(|m| m.channel == channel)
            .cloned()
            .collect()
    }

    /// Reactions added: (channel, ts, name).
    pub fn reactions(&self) -> Vec<(String, String, String)> {
        self.state.lock().unwrap().reactions.clone()
    }

    /// Views opened.
    pub fn views(&self) -> Vec<Value> {
        self.state.lock().unwrap().views.clone()
    }

    fn record(&self, method: &str, body: Value) -> Option<Failure> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(Call {
            method: method.to_string(),
            body,
            at: std::time::Instant::now(),
        });
        state.failures.get_mut(method).and_then(VecDeque::pop_front)
    }

    /// A message ts as Slack makes them: the time in seconds, and a sequence
    /// that keeps messages of the same second apart.
    fn next_ts(&self) -> String {
        let mut state = self.state.lock().unwrap();
        state.next_ts += 1;
        let sequence = state.next_ts % 1_000_000;
        let now = match &state.clock {
            Some(clock) => clock.now(),
            None => chrono::Utc::now(),
        };
        format!("{}.{sequence:06}", now.timestamp())
    }

    /// Checks the limits; returns the seconds to wait when one is exceeded.
    fn over_limit(&self, method: &str, channel: Option<&str>) -> Option<u64> {
        let mut state = self.state.lock().unwrap();
        let limits = state.limits.as_mut()?;
        match limits.check(method, channel) {
            Ok(()) => None,
            Err(wait_ms) => {
                state.rate_limited += 1;
                Some(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1))
            }
        }
    }
}

fn params(headers: &HeaderMap, query: &HashMap<String, String>, body: &[u8]) -> Value {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let mut map: HashMap<String, String> = query.clone();
    if let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(body) {
        map.extend(form);
    }
    json!(map)
}

fn failure_response(failure: Failure) -> Response {
    match failure {
        Failure::RateLimited(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::RETRY_AFTER, secs.to_string()),
                (
                    header::CONTENT_TYPE,
                    "application/json; charset=utf-8".to_string(),
                ),
            ],
            json!({"ok": false, "error": "ratelimited"}).to_string(),
        )
            .into_response(),
        Failure::Error(code) => slack_json(json!({
            "ok": false,
            "error": code,
            "warning": "missing_charset",
            "response_metadata": { "warnings": ["missing_charset"] }
        })),
        Failure::Slow(_) => StatusCode::OK.into_response(),
        Failure::Status(status) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "upstream failure",
        )
            .into_response(),
    }
}

fn slack_json(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

fn str_param<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn message_json(m: &Message) -> Value {
    let mut value = json!({
        "type": "message",
        "subtype": "bot_message",
        "text": m.text,
        "ts": m.ts,
        "bot_id": "B0WATCH",
        "app_id": "A0WATCH",
        "blocks": m.blocks,
    });
    if let Some(thread) = &m.thread_ts {
        value["thread_ts"] = json!(thread);
    }
    value
}

/// One page of messages, with Slack's cursor pagination.
fn page(messages: Vec<Value>, body: &Value) -> Response {
    let limit: usize = str_param(body, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let offset: usize = str_param(body, "cursor")
        .and_then(|c| c.strip_prefix("off:"))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let total = messages.len();
    let page: Vec<Value> = messages.into_iter().skip(offset).take(limit).collect();
    let next = if offset + limit < total {
        format!("off:{}", offset + limit)
    } else {
        String::new()
    };
    slack_json(json!({
        "ok": true,
        "messages": page,
        "has_more": !next.is_empty(),
        "response_metadata": { "next_cursor": next },
    }))
}

fn ts_value(ts: &str) -> f64 {
    ts.parse().unwrap_or(0.0)
}

async fn api(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = params(&headers, &query, &body);
    match fake.record(&method, body.clone()) {
        Some(Failure::Slow(delay)) => {
            let response = answer(&fake, &method, &headers, &body);
            tokio::time::sleep(delay).await;
            response
        }
        Some(failure) => failure_response(failure),
        None => answer(&fake, &method, &headers, &body),
    }
}

fn answer(fake: &FakeSlack, method: &str, headers: &HeaderMap, body: &Value) -> Response {
    let method = method.to_string();
    let body = body.clone();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = auth.strip_prefix("Bearer ") else {
        return slack_json(json!({"ok": false, "error": "not_authed"}));
    };
    let app_level = method == "apps.connections.open";
    if (!app_level && token != fake.token) || (app_level && !token.starts_with("xapp-")) {
        return slack_json(json!({"ok": false, "error": "invalid_auth"}));
    }
    if let Some(secs) = fake.over_limit(&method, str_param(&body, "channel")) {
        return failure_response(Failure::RateLimited(secs));
    }
    let text = body.get("text").cloned().unwrap_or(Value::Null);
    match method.as_str() {
        "chat.postMessage" => {
            let Some(channel) = str_param(&body, "channel").map(str::to_string) else {
                return slack_json(json!({"ok": false, "error": "channel_not_found"}));
            };
            let ts = fake.next_ts();
            let blocks = match body.get("blocks") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
                Some(other) => other.clone(),
                None => Value::Null,
            };
            let posted_marker = blocks
                .get(0)
                .and_then(|b| b.get("block_id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            fake.state.lock().unwrap().messages.push(Message {
                posted_marker,
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts: str_param(&body, "thread_ts").map(str::to_string),
                text: text.as_str().unwrap_or_default().to_string(),
                blocks,
            });
            slack_json(json!({
                "ok": true,
                "channel": channel,
                "ts": ts,
                "message": { "type": "message", "subtype": "bot_message", "text": text, "ts": ts, "bot_id": "B0WATCH" }
            }))
        }
        "chat.postEphemeral" => slack_json(json!({ "ok": true, "message_ts": fake.next_ts() })),
        "chat.update" => {
            // Like Slack: only a message that exists can be updated.
            let channel = str_param(&body, "channel").unwrap_or_default();
            let ts = str_param(&body, "ts").unwrap_or_default();
            let mut state = fake.state.lock().unwrap();
            let Some(message) = state
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
            else {
                return slack_json(json!({ "ok": false, "error": "message_not_found" }));
            };
            message.text = text.as_str().unwrap_or_default().to_string();
            match body.get("blocks") {
                Some(Value::String(s)) => {
                    message.blocks = serde_json::from_str(s).unwrap_or(Value::Null)
                }
                Some(other) => message.blocks = other.clone(),
                None => {}
            }
            slack_json(json!({
                "ok": true,
                "channel": channel,
                "ts": ts,
                "text": text,
                "message": { "text": text, "user": "U0WATCH" }
            }))
        }
        "reactions.add" => {
            let reaction = (
                str_param(&body, "channel").unwrap_or_default().to_string(),
                str_param(&body, "timestamp")
                    .unwrap_or_default()
                    .to_string(),
                str_param(&body, "name").unwrap_or_default().to_string(),
            );
            let mut state = fake.state.lock().unwrap();
            if state.reactions.contains(&reaction) {
                return slack_json(json!({ "ok": false, "error": "already_reacted" }));
            }
            state.reactions.push(reaction);
            slack_json(json!({ "ok": true }))
        }
        "conversations.history" => {
            let channel = str_param(&body, "channel").unwrap_or_default();
            let oldest = str_param(&body, "oldest").map(ts_value).unwrap_or(0.0);
            let mut messages: Vec<Value> = fake
                .state
                .lock()
                .unwrap()
                .messages
                .iter()
                .filter(|m| m.channel == channel && m.thread_ts.is_none())
                .filter(|m| ts_value(&m.ts) > oldest)
                .map(message_json)
                .collect();
            messages.reverse(); // newest first, as Slack returns them
            page(messages, &body)
        }
        "conversations.replies" => {
            let channel = str_param(&body, "channel").unwrap_or_default();
            let thread = str_param(&body, "ts").unwrap_or_default();
            let oldest = str_param(&body, "oldest").map(ts_value).unwrap_or(0.0);
            let messages: Vec<Value> = fake
                .state
                .lock()
                .unwrap()
                .messages
                .iter()
                .filter(|m| m.channel == channel)
                .filter(|m| m.ts == thread || m.thread_ts.as_deref() == Some(thread))
                .filter(|m| ts_value(&m.ts) > oldest || m.ts == thread)
                .map(message_json)
                .collect();
            page(messages, &body)
        }
        "conversations.open" => {
            let user = body
                .pointer("/users/0")
                .and_then(Value::as_str)
                .or_else(|| body.get("users").and_then(Value::as_str))
                .unwrap_or("U0")
                .to_string();
            slack_json(
                json!({ "ok": true, "channel": { "id": format!("D{}", user.trim_start_matches('U')) } }),
            )
        }
        "usergroups.users.list" => {
            let group = body.get("usergroup").and_then(Value::as_str).unwrap_or("");
            let users = fake.state.lock().unwrap().usergroups.get(group).cloned();
            match users {
                Some(users) => slack_json(json!({ "ok": true, "users": users })),
                None => slack_json(json!({ "ok": false, "error": "no_such_subteam" })),
            }
        }
        "apps.connections.open" => match fake.state.lock().unwrap().socket_url.clone() {
            Some(url) => slack_json(json!({ "ok": true, "url": url })),
            None => slack_json(json!({ "ok": false, "error": "not_allowed_token_type" })),
        },
        "views.open" => {
            let view = match body.get("view") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
                Some(other) => other.clone(),
                None => Value::Null,
            };
            fake.state.lock().unwrap().views.push(view.clone());
            slack_json(
                json!({ "ok": true, "view": { "id": "V0FAKE", "type": "modal", "callback_id": view.get("callback_id").cloned().unwrap_or(Value::Null) } }),
            )
        }
        _ => slack_json(json!({ "ok": false, "error": "unknown_method" })),
    }
}

async fn response_url(
    State(fake): State<FakeSlack>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    value["_response_id"] = json!(id);
    if let Some(failure) = fake.record("response_url", value) {
        return failure_response(failure);
    }
    (StatusCode::OK, "ok").into_response()
}
