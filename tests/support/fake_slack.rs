//! A small, honest fake of the Slack Web API: the handful of methods Watchkeeper
//! calls, answering with the response shapes in `shared/fixtures/real/slack/web_api`
//! (`chat.postMessage.ok.json`, `chat.update.ok.json`, `conversations.open`,
//! `usergroups.users.list`, `apps.connections.open`), checking the bot token,
//! and failing on demand the way Slack fails: `429` with `Retry-After`
//! (`captured/ratelimited_429_with_headers.json`), `{"ok":false,"error":…}`
//! (`captured/*error*.json`) or a bare 5xx. Every call is recorded.

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

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    /// e.g. `chat.postMessage`, or `response_url` for a response URL.
    pub method: String,
    /// The request's parameters (JSON body, form or query), as JSON.
    pub body: Value,
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
}

#[derive(Default)]
struct State_ {
    calls: Vec<Call>,
    failures: HashMap<String, VecDeque<Failure>>,
    next_ts: u64,
    socket_url: Option<String>,
    usergroups: HashMap<String, Vec<String>>,
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
                next_ts: 1_700_000_000_000_100,
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

    /// Makes the next calls of `method` fail, in order.
    pub fn fail(&self, method: &str, failures: impl IntoIterator<Item = Failure>) {
        let mut state = self.state.lock().unwrap();
        state
            .failures
            .entry(method.to_string())
            .or_default()
            .extend(failures);
    }

    /// Where `apps.connections.open` sends Socket Mode clients.
    pub fn set_socket_url(&self, url: &str) {
        self.state.lock().unwrap().socket_url = Some(url.to_string());
    }

    /// Members returned by `usergroups.users.list`.
    pub fn set_usergroup(&self, group: &str, users: &[&str]) {
        self.state
            .lock()
            .unwrap()
            .usergroups
            .insert(group.to_string(), users.iter().map(|u| u.to_string()).collect());
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

    fn record(&self, method: &str, body: Value) -> Option<Failure> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(Call {
            method: method.to_string(),
            body,
        });
        state.failures.get_mut(method).and_then(VecDeque::pop_front)
    }

    fn next_ts(&self) -> String {
        let mut state = self.state.lock().unwrap();
        state.next_ts += 1;
        let ts = state.next_ts;
        format!("{}.{:06}", ts / 1_000_000, ts % 1_000_000)
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
                (header::CONTENT_TYPE, "application/json; charset=utf-8".to_string()),
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

async fn api(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = params(&headers, &query, &body);
    if let Some(failure) = fake.record(&method, body.clone()) {
        return failure_response(failure);
    }
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
    let text = body.get("text").cloned().unwrap_or(Value::Null);
    match method.as_str() {
        "chat.postMessage" => {
            let channel = body.get("channel").cloned().unwrap_or(Value::Null);
            let ts = fake.next_ts();
            slack_json(json!({
                "ok": true,
                "channel": channel,
                "ts": ts,
                "message": { "type": "message", "subtype": "bot_message", "text": text, "ts": ts, "bot_id": "B0WATCH" }
            }))
        }
        "chat.postEphemeral" => slack_json(json!({ "ok": true, "message_ts": fake.next_ts() })),
        "chat.update" => slack_json(json!({
            "ok": true,
            "channel": body.get("channel").cloned().unwrap_or(Value::Null),
            "ts": body.get("ts").cloned().unwrap_or(Value::Null),
            "text": text,
            "message": { "text": text, "user": "U0WATCH" }
        })),
        "conversations.open" => {
            let user = body
                .pointer("/users/0")
                .and_then(Value::as_str)
                .or_else(|| body.get("users").and_then(Value::as_str))
                .unwrap_or("U0")
                .to_string();
            slack_json(json!({ "ok": true, "channel": { "id": format!("D{}", user.trim_start_matches('U')) } }))
        }
        "usergroups.users.list" => {
            let group = body.get("usergroup").and_then(Value::as_str).unwrap_or("");
            let users = fake
                .state
                .lock()
                .unwrap()
                .usergroups
                .get(group)
                .cloned();
            match users {
                Some(users) => slack_json(json!({ "ok": true, "users": users })),
                None => slack_json(json!({ "ok": false, "error": "no_such_subteam" })),
            }
        }
        "apps.connections.open" => match fake.state.lock().unwrap().socket_url.clone() {
            Some(url) => slack_json(json!({ "ok": true, "url": url })),
            None => slack_json(json!({ "ok": false, "error": "not_allowed_token_type" })),
        },
        "views.open" => slack_json(json!({ "ok": true, "view": { "id": "V0FAKE", "type": "modal" } })),
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
