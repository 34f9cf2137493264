//! A small, honest fake of GitHub's REST API: the calls Watchkeeper's forge
//! makes, served under `/api/v3` like GitHub Enterprise (so the base-URL
//! handling is exercised too), with repositories that really hold commits,
//! branches and files, and issues and pull requests sharing one numbering.
//!
//! Answers are GitHub's own recorded responses used as templates with their
//! fields overwritten (as `shared/fixtures/README.md` suggests):
//! `real/github/issue_create_201.json` (issues), `issue_add_labels_200.json`
//! (labels), `pull_request_create_201.json` (pull requests, without the
//! `full` media type's `body_html`/`body_text`), `git_ref_create_201.json`
//! (refs), `contents_get_file_json.json` and `contents_put_create_201.json`
//! (contents: base64 wrapped every 60 characters; PUT is 201 on create, 200
//! on update, 409 when `sha` is stale, 422 when it is missing),
//! `error_422_reference_already_exists.json` and
//! `error_422_validation_failed.json` (422s), `issues_list_paginated_page1_link_header.json`
//! (a `Link` header pointing at `/repositories/{id}/issues`); the repository
//! and comment objects come from `github/webhooks/*` (same shape as the REST
//! API's). App installation endpoints follow GitHub's REST reference
//! ("Get a repository installation for the authenticated app", "Create an
//! installation access token for an app"): they take the App's RS256 JWT,
//! which the fake verifies with the App's public key.
//!
//! Every call needs `Authorization: Bearer|token <token>` (401 `Bad
//! credentials` otherwise) and is recorded; the next calls of a route can be
//! made to fail ([`FakeGitHub::fail`]) with a status, a rate limit or a
//! connection dropped after the call was carried out.

#![allow(dead_code)]

use super::fixture;
use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// A failure to return instead of the normal answer.
#[derive(Clone, Debug)]
pub enum Failure {
    /// A bare status with GitHub's error body (e.g. 500, 502, 503).
    Status(u16),
    /// The primary rate limit: 403, `x-ratelimit-remaining: 0`, reset in `reset_in` s.
    RateLimited { reset_in: u64 },
    /// A secondary rate limit: 403 with `retry-after: secs`.
    SecondaryRateLimit { retry_after: u64 },
    /// The call is carried out, then the connection drops in the middle of
    /// the answer (its status and headers arrive, its body breaks off): the
    /// caller cannot tell whether it happened.
    Disconnect,
}

/// One recorded call.
#[derive(Clone, Debug)]
pub struct Call {
    /// `GET`, `POST`…
    pub method: String,
    /// The route, e.g. `POST /repos/{owner}/{repo}/issues`.
    pub route: String,
    /// The path and query as sent.
    pub uri: String,
}

#[derive(Clone, Debug)]
struct Commit {
    tree: BTreeMap<String, String>,
    parents: Vec<String>,
    message: String,
}

#[derive(Clone, Debug)]
struct Pull {
    head: String,
    base: String,
    merged: bool,
    merged_at: Option<String>,
}

#[derive(Clone, Debug)]
struct IssueRec {
    number: u64,
    title: String,
    body: Option<String>,
    state: String,
    labels: Vec<String>,
    assignees: Vec<String>,
    comments: Vec<String>,
    created_at: String,
    closed_at: Option<String>,
    pull: Option<Pull>,
    reviewers: Vec<String>,
    auto_merge: bool,
}

#[derive(Clone, Debug)]
struct Repo {
    id: u64,
    full_name: String,
    default_branch: String,
    refs: BTreeMap<String, String>,
    commits: HashMap<String, Commit>,
    issues: Vec<IssueRec>,
}

impl Repo {
    fn branch_head(&self, branch: &str) -> Option<&String> {
        self.refs.get(&format!("refs/heads/{branch}"))
    }

    fn file(&self, branch: &str, path: &str) -> Option<&String> {
        let head = self.branch_head(branch)?;
        self.commits.get(head)?.tree.get(path)
    }

    fn is_ancestor(&self, ancestor: &str, of: &str) -> bool {
        let mut todo = vec![of.to_string()];
        while let Some(sha) = todo.pop() {
            if sha == ancestor {
                return true;
            }
            if let Some(commit) = self.commits.get(&sha) {
                todo.extend(commit.parents.iter().cloned());
            }
        }
        false
    }

    fn commit(
        &mut self,
        parent: Option<&str>,
        tree: BTreeMap<String, String>,
        message: &str,
    ) -> String {
        let mut hasher = Sha256::new();
        hasher.update(parent.unwrap_or("root"));
        for (path, content) in &tree {
            hasher.update(path);
            hasher.update(blob_sha(content));
        }
        hasher.update(message);
        hasher.update(self.commits.len().to_le_bytes());
        let sha = hex40(&hasher.finalize());
        self.commits.insert(
            sha.clone(),
            Commit {
                tree,
                parents: parent.map(|p| vec![p.to_string()]).unwrap_or_default(),
                message: message.to_string(),
            },
        );
        sha
    }

    fn issue(&self, number: u64) -> Option<&IssueRec> {
        self.issues.iter().find(|i| i.number == number)
    }
}

fn hex40(digest: &[u8]) -> String {
    hex::encode(digest)[..40].to_string()
}

/// An opaque blob id, stable for a content (what PUT's `sha` must match).
fn blob_sha(content: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("blob {}\0", content.len()));
    hasher.update(content);
    hex40(&hasher.finalize())
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

struct App {
    app_id: u64,
    public_key: Vec<u8>,
    installation_id: u64,
}

#[derive(Default)]
struct World {
    calls: Vec<Call>,
    failures: HashMap<String, VecDeque<Failure>>,
    repos: HashMap<String, Repo>,
    tokens: Vec<String>,
    app: Option<App>,
    next_repo_id: u64,
}

struct Templates {
    issue: Value,
    label: Value,
    pull: Value,
    reference: Value,
    content: Value,
    put: Value,
    repo: Value,
    comment: Value,
    error_422_ref: Value,
    error_422_validation: Value,
}

fn response_body(file: &str) -> Value {
    let value: Value = serde_json::from_str(&fixture(file)).unwrap();
    value["response"]["body"].clone()
}

impl Templates {
    fn load() -> Self {
        let webhook = |file: &str| -> Value {
            serde_json::from_str(&fixture(&format!("github/webhooks/{file}"))).unwrap()
        };
        let mut pull = response_body("real/github/pull_request_create_201.json");
        if let Some(object) = pull.as_object_mut() {
            object.remove("body_html");
            object.remove("body_text");
        }
        Self {
            issue: response_body("real/github/issue_create_201.json"),
            label: response_body("real/github/issue_add_labels_200.json")[0].clone(),
            pull,
            reference: response_body("real/github/git_ref_create_201.json"),
            content: response_body("real/github/contents_get_file_json.json"),
            put: response_body("real/github/contents_put_create_201.json"),
            repo: webhook("issues_opened_webhook_event.json")["repository"].clone(),
            comment: webhook("issue_comment_created_webhook_event.json")["comment"].clone(),
            error_422_ref: response_body("real/github/error_422_reference_already_exists.json"),
            error_422_validation: response_body("real/github/error_422_validation_failed.json"),
        }
    }
}

/// The fake; cheap to clone.
#[derive(Clone)]
pub struct FakeGitHub {
    /// The API base URL, for `GITHUB_API_URL` (`http://127.0.0.1:port/api/v3`).
    pub api_url: String,
    /// Where `html_url`s point (`http://127.0.0.1:port`).
    pub web_url: String,
    world: Arc<Mutex<World>>,
    templates: Arc<Templates>,
}

impl FakeGitHub {
    /// Starts the fake on a random port, accepting `token`.
    pub async fn start(token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = Self {
            api_url: format!("http://{addr}/api/v3"),
            web_url: format!("http://{addr}"),
            world: Arc::new(Mutex::new(World {
                tokens: vec![token.to_string()],
                next_repo_id: 515_435_940,
                ..World::default()
            })),
            templates: Arc::new(Templates::load()),
        };
        let routes = Router::new()
            .route("/repos/{owner}/{repo}", get(get_repo))
            .route("/repositories/{id}/issues", get(list_issues_by_id))
            .route(
                "/repos/{owner}/{repo}/issues",
                get(list_issues).post(create_issue),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}",
                get(get_issue).patch(update_issue),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/labels",
                post(add_labels),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                post(add_comment),
            )
            .route("/repos/{owner}/{repo}/git/ref/{*reference}", get(get_ref))
            .route("/repos/{owner}/{repo}/git/refs", post(create_ref))
            .route(
                "/repos/{owner}/{repo}/contents/{*path}",
                get(get_contents).put(put_contents),
            )
            .route(
                "/repos/{owner}/{repo}/pulls",
                get(list_pulls).post(create_pull),
            )
            .route("/repos/{owner}/{repo}/pulls/{number}", get(get_pull))
            .route(
                "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
                post(request_reviewers),
            )
            .route("/repos/{owner}/{repo}/installation", get(get_installation))
            .route(
                "/app/installations/{id}/access_tokens",
                post(create_installation_token),
            )
            .route_layer(middleware::from_fn_with_state(fake.clone(), gate));
        // GitHub Enterprise serves GraphQL beside the REST API, at /api/graphql.
        let graphql = Router::new()
            .route("/api/graphql", post(graphql))
            .route_layer(middleware::from_fn_with_state(fake.clone(), gate));
        let app = Router::new()
            .nest("/api/v3", routes)
            .merge(graphql)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    /// Creates repository `full_name` with a README on `default_branch`.
    pub fn create_repo(&self, full_name: &str, default_branch: &str) {
        let mut world = self.world();
        world.next_repo_id += 1;
        let mut repo = Repo {
            id: world.next_repo_id,
            full_name: full_name.to_string(),
            default_branch: default_branch.to_string(),
            refs: BTreeMap::new(),
            commits: HashMap::new(),
            issues: Vec::new(),
        };
        let tree = BTreeMap::from([("README.md".to_string(), format!("# {full_name}\n"))]);
        let sha = repo.commit(None, tree, "Initial commit");
        repo.refs
            .insert(format!("refs/heads/{default_branch}"), sha);
        world.repos.insert(full_name.to_string(), repo);
    }

    /// Commits `content` to `path` on `branch` of `repo` (as a person would).
    pub fn put_file(&self, repo: &str, branch: &str, path: &str, content: &str) {
        let mut world = self.world();
        let repo = world.repos.get_mut(repo).unwrap();
        let head = repo.branch_head(branch).cloned().unwrap();
        let mut tree = repo.commits[&head].tree.clone();
        tree.insert(path.to_string(), content.to_string());
        let sha = repo.commit(Some(&head), tree, &format!("Add {path}"));
        repo.refs.insert(format!("refs/heads/{branch}"), sha);
    }

    /// The reviewers requested on pull request `number`, and whether
    /// auto-merge is on.
    pub fn review_state(&self, repo: &str, number: u64) -> (Vec<String>, bool) {
        let world = self.world();
        let issue = world.repos[repo].issue(number).unwrap();
        (issue.reviewers.clone(), issue.auto_merge)
    }

    /// Accepts GitHub App `app_id`, whose private key has `public_key` (DER
    /// RSAPublicKey); its installation tokens are then accepted too.
    pub fn enable_app(&self, app_id: u64, public_key: Vec<u8>) {
        self.world().app = Some(App {
            app_id,
            public_key,
            installation_id: 4_242_424,
        });
    }

    /// Makes the next calls of `route` (e.g. `POST /repos/{owner}/{repo}/issues`) fail, in order.
    pub fn fail(&self, route: &str, failures: impl IntoIterator<Item = Failure>) {
        self.world()
            .failures
            .entry(route.to_string())
            .or_default()
            .extend(failures);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.world().calls.clone()
    }

    /// How many calls `route` had.
    pub fn count(&self, route: &str) -> usize {
        self.world()
            .calls
            .iter()
            .filter(|c| c.route == route)
            .count()
    }

    /// Issue or pull request `number` as GitHub would show it.
    pub fn issue(&self, repo: &str, number: u64) -> Option<Value> {
        let world = self.world();
        let repo = world.repos.get(repo)?;
        Some(self.issue_json(repo, repo.issue(number)?))
    }

    /// How many issues (pull requests excluded) `repo` has.
    pub fn issue_count(&self, repo: &str) -> usize {
        self.world().repos[repo]
            .issues
            .iter()
            .filter(|i| i.pull.is_none())
            .count()
    }

    /// How many pull requests `repo` has.
    pub fn pull_count(&self, repo: &str) -> usize {
        self.world().repos[repo]
            .issues
            .iter()
            .filter(|i| i.pull.is_some())
            .count()
    }

    /// Opens issues directly (as people would), e.g. to fill pages.
    pub fn seed_issues(&self, repo: &str, titles: &[&str]) {
        let mut world = self.world();
        let repo = world.repos.get_mut(repo).unwrap();
        for title in titles {
            let number = repo.issues.len() as u64 + 1;
            repo.issues
                .push(new_issue(number, title, None, vec![], vec![]));
        }
    }

    /// Closes issue `number` (as a person would).
    pub fn close_issue(&self, repo: &str, number: u64) {
        let mut world = self.world();
        let issue = world
            .repos
            .get_mut(repo)
            .unwrap()
            .issues
            .iter_mut()
            .find(|i| i.number == number)
            .unwrap();
        issue.state = "closed".into();
        issue.closed_at = Some(now());
    }

    /// The content of `path` on `branch`.
    pub fn file(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        self.world().repos.get(repo)?.file(branch, path).cloned()
    }

    /// The commit messages on `branch`, newest first.
    pub fn log(&self, repo: &str, branch: &str) -> Vec<String> {
        let world = self.world();
        let repo = &world.repos[repo];
        let mut out = Vec::new();
        let mut at = repo.branch_head(branch).cloned();
        while let Some(sha) = at {
            let commit = &repo.commits[&sha];
            out.push(commit.message.clone());
            at = commit.parents.first().cloned();
        }
        out
    }

    /// Merges pull request `number` (fast-forward or merge commit) as a person would.
    pub fn merge_pull(&self, repo: &str, number: u64) {
        let mut world = self.world();
        let repo = world.repos.get_mut(repo).unwrap();
        let pull = repo.issue(number).and_then(|i| i.pull.clone()).unwrap();
        let head = repo.branch_head(&pull.head).cloned().unwrap();
        let base = repo.branch_head(&pull.base).cloned().unwrap();
        let merged = if repo.is_ancestor(&base, &head) {
            head
        } else {
            let mut tree = repo.commits[&base].tree.clone();
            tree.extend(repo.commits[&head].tree.clone());
            let sha = repo.commit(Some(&base), tree, &format!("Merge pull request #{number}"));
            repo.commits.get_mut(&sha).unwrap().parents.push(head);
            sha
        };
        repo.refs
            .insert(format!("refs/heads/{}", pull.base), merged);
        let issue = repo.issues.iter_mut().find(|i| i.number == number).unwrap();
        issue.state = "closed".into();
        issue.closed_at = Some(now());
        let pull = issue.pull.as_mut().unwrap();
        pull.merged = true;
        pull.merged_at = Some(now());
    }

    fn repo_json(&self, repo: &Repo) -> Value {
        let (owner, name) = repo.full_name.split_once('/').unwrap();
        let mut v = self.templates.repo.clone();
        v["id"] = json!(repo.id);
        v["name"] = json!(name);
        v["full_name"] = json!(repo.full_name);
        v["owner"]["login"] = json!(owner);
        v["html_url"] = json!(format!("{}/{}", self.web_url, repo.full_name));
        v["url"] = json!(format!("{}/repos/{}", self.api_url, repo.full_name));
        v["default_branch"] = json!(repo.default_branch);
        v
    }

    fn label_json(&self, repo: &Repo, name: &str, index: usize) -> Value {
        let mut v = self.templates.label.clone();
        v["id"] = json!(4_341_276_760_u64 + index as u64);
        v["name"] = json!(name);
        v["url"] = json!(format!(
            "{}/repos/{}/labels/{name}",
            self.api_url, repo.full_name
        ));
        v
    }

    fn user_json(&self, login: &str) -> Value {
        let mut v = self.templates.issue["user"].clone();
        v["login"] = json!(login);
        v
    }

    fn issue_json(&self, repo: &Repo, issue: &IssueRec) -> Value {
        let api = format!("{}/repos/{}", self.api_url, repo.full_name);
        let n = issue.number;
        let mut v = self.templates.issue.clone();
        v["url"] = json!(format!("{api}/issues/{n}"));
        v["repository_url"] = json!(api);
        v["labels_url"] = json!(format!("{api}/issues/{n}/labels{{/name}}"));
        v["comments_url"] = json!(format!("{api}/issues/{n}/comments"));
        v["events_url"] = json!(format!("{api}/issues/{n}/events"));
        v["html_url"] = json!(format!("{}/{}/issues/{n}", self.web_url, repo.full_name));
        v["id"] = json!(1_310_000_000 + n);
        v["number"] = json!(n);
        v["title"] = json!(issue.title);
        v["body"] = json!(issue.body);
        v["state"] = json!(issue.state);
        v["labels"] = json!(
            issue
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| self.label_json(repo, l, i))
                .collect::<Vec<_>>()
        );
        let assignees: Vec<Value> = issue.assignees.iter().map(|a| self.user_json(a)).collect();
        v["assignee"] = assignees.first().cloned().unwrap_or(Value::Null);
        v["assignees"] = json!(assignees);
        v["comments"] = json!(issue.comments.len());
        v["created_at"] = json!(issue.created_at);
        v["updated_at"] = json!(issue.created_at);
        v["closed_at"] = json!(issue.closed_at);
        if let Some(pull) = &issue.pull {
            let html = format!("{}/{}/pull/{n}", self.web_url, repo.full_name);
            v["pull_request"] = json!({
                "url": format!("{api}/pulls/{n}"),
                "html_url": html,
                "diff_url": format!("{html}.diff"),
                "patch_url": format!("{html}.patch"),
                "merged_at": pull.merged_at,
            });
            v["html_url"] = json!(html);
        }
        v
    }

    fn branch_json(&self, repo: &Repo, branch: &str) -> Value {
        let owner = repo.full_name.split_once('/').unwrap().0;
        let mut v = self.templates.pull["head"].clone();
        v["label"] = json!(format!("{owner}:{branch}"));
        v["ref"] = json!(branch);
        v["sha"] = json!(repo.branch_head(branch).cloned().unwrap_or_default());
        v["user"]["login"] = json!(owner);
        v["repo"] = self.repo_json(repo);
        v
    }

    fn pull_json(&self, repo: &Repo, issue: &IssueRec) -> Value {
        let pull = issue.pull.as_ref().unwrap();
        let api = format!("{}/repos/{}", self.api_url, repo.full_name);
        let n = issue.number;
        let html = format!("{}/{}/pull/{n}", self.web_url, repo.full_name);
        let mut v = self.templates.pull.clone();
        v["url"] = json!(format!("{api}/pulls/{n}"));
        v["id"] = json!(770_020_527 + n);
        v["html_url"] = json!(html);
        v["diff_url"] = json!(format!("{html}.diff"));
        v["patch_url"] = json!(format!("{html}.patch"));
        v["issue_url"] = json!(format!("{api}/issues/{n}"));
        v["number"] = json!(n);
        v["state"] = json!(issue.state);
        v["title"] = json!(issue.title);
        v["body"] = json!(issue.body);
        v["created_at"] = json!(issue.created_at);
        v["updated_at"] = json!(issue.created_at);
        v["closed_at"] = json!(issue.closed_at);
        v["merged_at"] = json!(pull.merged_at);
        v["merged"] = json!(pull.merged);
        v["mergeable"] = Value::Null;
        v["labels"] = json!(
            issue
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| self.label_json(repo, l, i))
                .collect::<Vec<_>>()
        );
        v["head"] = self.branch_json(repo, &pull.head);
        v["base"] = self.branch_json(repo, &pull.base);
        v["node_id"] = json!(format!("PR_kwFake{}_{n}", repo.id));
        v["requested_reviewers"] = json!(
            issue
                .reviewers
                .iter()
                .map(|r| self.user_json(r))
                .collect::<Vec<_>>()
        );
        v["auto_merge"] = if issue.auto_merge {
            json!({ "merge_method": "merge", "enabled_by": self.user_json("watchkeeper[bot]") })
        } else {
            Value::Null
        };
        v
    }

    fn ref_json(&self, repo: &Repo, name: &str, sha: &str) -> Value {
        let api = format!("{}/repos/{}", self.api_url, repo.full_name);
        let mut v = self.templates.reference.clone();
        v["ref"] = json!(name);
        v["node_id"] = json!(format!("REF_{}", URL_SAFE_NO_PAD.encode(name)));
        v["url"] = json!(format!("{api}/git/{name}"));
        v["object"] =
            json!({ "sha": sha, "type": "commit", "url": format!("{api}/git/commits/{sha}") });
        v
    }

    fn content_json(&self, repo: &Repo, branch: &str, path: &str, content: Option<&str>) -> Value {
        let api = format!("{}/repos/{}", self.api_url, repo.full_name);
        let html = format!("{}/{}/blob/{branch}/{path}", self.web_url, repo.full_name);
        let mut v = self.templates.content.clone();
        let name = path.rsplit('/').next().unwrap_or(path);
        v["name"] = json!(name);
        v["path"] = json!(path);
        v["html_url"] = json!(html);
        v["url"] = json!(format!("{api}/contents/{path}?ref={branch}"));
        match content {
            Some(content) => {
                let sha = blob_sha(content);
                v["sha"] = json!(sha);
                v["size"] = json!(content.len());
                v["type"] = json!("file");
                v["git_url"] = json!(format!("{api}/git/blobs/{sha}"));
                v["download_url"] = json!(format!("{}/raw/{branch}/{path}", self.web_url));
                v["content"] = json!(wrap_base64(content));
                v["encoding"] = json!("base64");
                v["_links"] = json!({ "self": v["url"], "git": v["git_url"], "html": html });
            }
            None => {
                v["sha"] = json!(blob_sha(path));
                v["size"] = json!(0);
                v["type"] = json!("dir");
                v["download_url"] = Value::Null;
                if let Some(object) = v.as_object_mut() {
                    object.remove("content");
                    object.remove("encoding");
                }
            }
        }
        v
    }
}

/// Base64 the way the contents API sends it: a line break every 60 characters, and at the end.
fn wrap_base64(content: &str) -> String {
    let encoded = STANDARD.encode(content);
    let mut out = String::new();
    for chunk in encoded.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out
}

fn new_issue(
    number: u64,
    title: &str,
    body: Option<String>,
    labels: Vec<String>,
    assignees: Vec<String>,
) -> IssueRec {
    IssueRec {
        number,
        title: title.to_string(),
        body,
        state: "open".into(),
        labels,
        assignees,
        comments: Vec::new(),
        created_at: now(),
        closed_at: None,
        pull: None,
        reviewers: Vec::new(),
        auto_merge: false,
    }
}

fn github_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn not_found(docs: &str) -> Response {
    github_json(
        StatusCode::NOT_FOUND,
        json!({ "message": "Not Found", "documentation_url": format!("https://docs.github.com/rest/{docs}") }),
    )
}

fn validation_failed(errors: Value, docs: &str) -> Response {
    github_json(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "message": "Validation Failed",
            "errors": errors,
            "documentation_url": format!("https://docs.github.com/rest/{docs}"),
        }),
    )
}

fn failure_response(failure: Failure) -> Response {
    let reset = chrono::Utc::now().timestamp();
    match failure {
        Failure::Status(status) => github_json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({ "message": "Server Error" }),
        ),
        Failure::RateLimited { reset_in } => {
            let mut response = github_json(
                StatusCode::FORBIDDEN,
                json!({
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                }),
            );
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", "5000".parse().unwrap());
            headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
            headers.insert("x-ratelimit-used", "5000".parse().unwrap());
            headers.insert("x-ratelimit-resource", "core".parse().unwrap());
            headers.insert(
                "x-ratelimit-reset",
                (reset + reset_in as i64).to_string().parse().unwrap(),
            );
            response
        }
        Failure::Disconnect => broken_off(github_json(StatusCode::OK, json!({}))),
        Failure::SecondaryRateLimit { retry_after } => {
            let mut response = github_json(
                StatusCode::FORBIDDEN,
                json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
                }),
            );
            response
                .headers_mut()
                .insert("retry-after", retry_after.to_string().parse().unwrap());
            response
        }
    }
}

fn bad_credentials() -> Response {
    github_json(
        StatusCode::UNAUTHORIZED,
        json!({ "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest" }),
    )
}

/// Records the call, returns an injected failure, and checks credentials:
/// App routes take the App's JWT, every other route a known token.
async fn gate(
    State(fake): State<FakeGitHub>,
    matched: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let route = format!(
        "{} {}",
        request.method(),
        matched.as_str().trim_start_matches("/api/v3")
    );
    let credential = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::to_string);
    let app_route = route.ends_with("/installation") || route.starts_with("POST /app/");
    let mut disconnect = false;
    {
        let mut world = fake.world();
        world.calls.push(Call {
            method: request.method().to_string(),
            route: route.clone(),
            uri: request.uri().to_string(),
        });
        match world.failures.get_mut(&route).and_then(VecDeque::pop_front) {
            Some(Failure::Disconnect) => disconnect = true,
            Some(failure) => return failure_response(failure),
            None => {}
        }
        let Some(credential) = credential else {
            return github_json(
                StatusCode::UNAUTHORIZED,
                json!({ "message": "Requires authentication", "documentation_url": "https://docs.github.com/rest" }),
            );
        };
        let allowed = if app_route {
            world
                .app
                .as_ref()
                .is_some_and(|app| verify_jwt(app, &credential))
        } else {
            world.tokens.contains(&credential)
        };
        if !allowed {
            return bad_credentials();
        }
    }
    let response = next.run(request).await;
    if disconnect {
        return broken_off(response);
    }
    response
}

/// `response` with its body cut off after the headers, as when the
/// connection drops mid-answer.
fn broken_off(response: Response) -> Response {
    let (parts, _) = response.into_parts();
    let body = futures::stream::once(async {
        Err::<axum::body::Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ))
    });
    Response::from_parts(parts, axum::body::Body::from_stream(body))
}

/// Verifies an App's RS256 JWT: signature, issuer and lifetime.
fn verify_jwt(app: &App, jwt: &str) -> bool {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return false;
    };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &app.public_key,
    );
    if key
        .verify(format!("{header}.{claims}").as_bytes(), &signature)
        .is_err()
    {
        return false;
    }
    let Some(claims) = URL_SAFE_NO_PAD
        .decode(claims)
        .ok()
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
    else {
        return false;
    };
    let now = chrono::Utc::now().timestamp();
    let iss_ok = claims["iss"].as_str() == Some(app.app_id.to_string().as_str())
        || claims["iss"].as_u64() == Some(app.app_id);
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let iat = claims["iat"].as_i64().unwrap_or(i64::MAX);
    iss_ok && exp > now && iat <= now && exp - iat <= 600
}

fn with_repo<T>(
    fake: &FakeGitHub,
    owner: &str,
    repo: &str,
    f: impl FnOnce(&mut Repo) -> T,
) -> Option<T> {
    let mut world = fake.world();
    world.repos.get_mut(&format!("{owner}/{repo}")).map(f)
}

async fn get_repo(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    match with_repo(&fake, &owner, &repo, |r| fake.repo_json(r)) {
        Some(v) => github_json(StatusCode::OK, v),
        None => not_found("repos/repos#get-a-repository"),
    }
}

fn list_page(fake: &FakeGitHub, repo: &Repo, query: &HashMap<String, String>) -> Response {
    let state = query.get("state").map(String::as_str).unwrap_or("open");
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut issues: Vec<&IssueRec> = repo
        .issues
        .iter()
        .filter(|i| state == "all" || i.state == state)
        .collect();
    // Newest first unless asked otherwise (GitHub's default: created, desc).
    if query.get("direction").map(String::as_str) != Some("asc") {
        issues.reverse();
    }
    let total = issues.len();
    let items: Vec<Value> = issues
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|i| fake.issue_json(repo, i))
        .collect();
    let last = total.div_ceil(per_page).max(1);
    let mut response = github_json(StatusCode::OK, json!(items));
    if page < last {
        let mut params: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.sort();
        let link = |n: usize| {
            let mut params = params.clone();
            params.push(("page".into(), n.to_string()));
            format!(
                "{}/repositories/{}/issues?{}",
                fake.api_url,
                repo.id,
                serde_urlencoded::to_string(&params).unwrap()
            )
        };
        let value = format!(
            "<{}>; rel=\"next\", <{}>; rel=\"last\"",
            link(page + 1),
            link(last)
        );
        response
            .headers_mut()
            .insert(header::LINK, value.parse().unwrap());
    }
    response
}

async fn list_issues(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    with_repo(&fake, &owner, &repo, |r| list_page(&fake, r, &query))
        .unwrap_or_else(|| not_found("issues/issues#list-repository-issues"))
}

async fn list_issues_by_id(
    State(fake): State<FakeGitHub>,
    Path(id): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let world = fake.world();
    match world.repos.values().find(|r| r.id == id) {
        Some(repo) => list_page(&fake, repo, &query),
        None => not_found("issues/issues#list-repository-issues"),
    }
}

async fn create_issue(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let Some(title) = body["title"].as_str().filter(|t| !t.is_empty()) else {
        return validation_failed(
            json!([{ "resource": "Issue", "code": "missing_field", "field": "title" }]),
            "issues/issues#create-an-issue",
        );
    };
    let strings = |key: &str| -> Vec<String> {
        body[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let labels = strings("labels");
    let assignees = strings("assignees");
    let body_text = body["body"].as_str().map(str::to_string);
    with_repo(&fake, &owner, &repo, |r| {
        let number = r.issues.len() as u64 + 1;
        let issue = new_issue(number, title, body_text, labels, assignees);
        let json = fake.issue_json(r, &issue);
        r.issues.push(issue);
        github_json(StatusCode::CREATED, json)
    })
    .unwrap_or_else(|| not_found("issues/issues#create-an-issue"))
}

async fn get_issue(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    with_repo(&fake, &owner, &repo, |r| {
        r.issue(number)
            .map(|i| github_json(StatusCode::OK, fake.issue_json(r, i)))
    })
    .flatten()
    .unwrap_or_else(|| not_found("issues/issues#get-an-issue"))
}

async fn update_issue(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    with_repo(&fake, &owner, &repo, |r| {
        let issue = r.issues.iter_mut().find(|i| i.number == number)?;
        if let Some(state) = body["state"].as_str() {
            issue.state = state.to_string();
            issue.closed_at = (state == "closed").then(now);
        }
        if let Some(title) = body["title"].as_str() {
            issue.title = title.to_string();
        }
        let issue = issue.clone();
        Some(github_json(StatusCode::OK, fake.issue_json(r, &issue)))
    })
    .flatten()
    .unwrap_or_else(|| not_found("issues/issues#update-an-issue"))
}

async fn add_labels(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let labels: Vec<String> = body["labels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    with_repo(&fake, &owner, &repo, |r| {
        let issue = r.issues.iter_mut().find(|i| i.number == number)?;
        for label in labels {
            if !issue.labels.contains(&label) {
                issue.labels.push(label);
            }
        }
        let all = issue.labels.clone();
        let json: Vec<Value> = all
            .iter()
            .enumerate()
            .map(|(i, l)| fake.label_json(r, l, i))
            .collect();
        Some(github_json(StatusCode::OK, json!(json)))
    })
    .flatten()
    .unwrap_or_else(|| not_found("issues/labels#add-labels-to-an-issue"))
}

async fn add_comment(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let text = body["body"].as_str().unwrap_or_default().to_string();
    with_repo(&fake, &owner, &repo, |r| {
        let issue = r.issues.iter_mut().find(|i| i.number == number)?;
        issue.comments.push(text.clone());
        let id = 1_400_000_000 + issue.comments.len() as u64;
        let api = format!("{}/repos/{}", fake.api_url, r.full_name);
        let mut v = fake.templates.comment.clone();
        v["id"] = json!(id);
        v["body"] = json!(text);
        v["url"] = json!(format!("{api}/issues/comments/{id}"));
        v["issue_url"] = json!(format!("{api}/issues/{number}"));
        v["html_url"] = json!(format!(
            "{}/{}/issues/{number}#issuecomment-{id}",
            fake.web_url, r.full_name
        ));
        Some(github_json(StatusCode::CREATED, v))
    })
    .flatten()
    .unwrap_or_else(|| not_found("issues/comments#create-an-issue-comment"))
}

async fn get_ref(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, reference)): Path<(String, String, String)>,
) -> Response {
    let name = format!("refs/{reference}");
    with_repo(&fake, &owner, &repo, |r| {
        let sha = r.refs.get(&name)?.clone();
        Some(github_json(StatusCode::OK, fake.ref_json(r, &name, &sha)))
    })
    .flatten()
    .unwrap_or_else(|| not_found("git/refs#get-a-reference"))
}

async fn create_ref(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let name = body["ref"].as_str().unwrap_or_default().to_string();
    let sha = body["sha"].as_str().unwrap_or_default().to_string();
    with_repo(&fake, &owner, &repo, |r| {
        if !name.starts_with("refs/") || name.matches('/').count() < 2 {
            return github_json(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "message": "Reference name is invalid", "documentation_url": "https://docs.github.com/rest/git/refs#create-a-reference" }),
            );
        }
        if r.refs.contains_key(&name) {
            return github_json(
                StatusCode::UNPROCESSABLE_ENTITY,
                fake.templates.error_422_ref.clone(),
            );
        }
        if !r.commits.contains_key(&sha) {
            return github_json(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "message": "Object does not exist", "documentation_url": "https://docs.github.com/rest/git/refs#create-a-reference" }),
            );
        }
        r.refs.insert(name.clone(), sha.clone());
        github_json(StatusCode::CREATED, fake.ref_json(r, &name, &sha))
    })
    .unwrap_or_else(|| not_found("git/refs#create-a-reference"))
}

async fn get_contents(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    with_repo(&fake, &owner, &repo, |r| {
        let branch = query
            .get("ref")
            .cloned()
            .unwrap_or_else(|| r.default_branch.clone());
        let head = r.branch_head(&branch)?;
        let tree = &r.commits[head].tree;
        if let Some(content) = tree.get(&path) {
            return Some(github_json(
                StatusCode::OK,
                fake.content_json(r, &branch, &path, Some(content)),
            ));
        }
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let mut entries: Vec<Value> = Vec::new();
        let mut seen = Vec::new();
        for (file, content) in tree.iter().filter(|(f, _)| f.starts_with(&prefix)) {
            let rest = &file[prefix.len()..];
            match rest.split_once('/') {
                Some((dir, _)) if !seen.contains(&dir.to_string()) => {
                    seen.push(dir.to_string());
                    entries.push(fake.content_json(r, &branch, &format!("{prefix}{dir}"), None));
                }
                Some(_) => {}
                None => {
                    let mut entry = fake.content_json(r, &branch, file, Some(content));
                    if let Some(object) = entry.as_object_mut() {
                        object.remove("content");
                        object.remove("encoding");
                    }
                    entries.push(entry);
                }
            }
        }
        (!entries.is_empty()).then(|| github_json(StatusCode::OK, json!(entries)))
    })
    .flatten()
    .unwrap_or_else(|| not_found("repos/contents#get-repository-content"))
}

async fn put_contents(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let docs = "https://docs.github.com/rest/repos/contents#create-or-update-file-contents";
    let message = body["message"].as_str().unwrap_or_default().to_string();
    let packed: String = body["content"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let Some(content) = STANDARD
        .decode(packed)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return validation_failed(
            json!([{ "resource": "Content", "code": "invalid", "field": "content" }]),
            "repos/contents#create-or-update-file-contents",
        );
    };
    let sha = body["sha"].as_str().map(str::to_string);
    with_repo(&fake, &owner, &repo, |r| {
        let branch = body["branch"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| r.default_branch.clone());
        let Some(head) = r.branch_head(&branch).cloned() else {
            return github_json(
                StatusCode::NOT_FOUND,
                json!({ "message": format!("Branch {branch} not found"), "documentation_url": docs }),
            );
        };
        let mut tree = r.commits[&head].tree.clone();
        let status = match (tree.get(&path), &sha) {
            (Some(_), None) => {
                return github_json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "message": "Invalid request.\n\n\"sha\" wasn't supplied.", "documentation_url": docs }),
                );
            }
            (Some(existing), Some(sha)) if &blob_sha(existing) != sha => {
                return github_json(
                    StatusCode::CONFLICT,
                    json!({ "message": format!("{path} does not match {sha}"), "documentation_url": docs }),
                );
            }
            (Some(_), Some(_)) => StatusCode::OK,
            (None, _) => StatusCode::CREATED,
        };
        tree.insert(path.clone(), content.clone());
        let tree_sha = hex40(&Sha256::digest(format!("{tree:?}")));
        let commit = r.commit(Some(&head), tree, &message);
        r.refs.insert(format!("refs/heads/{branch}"), commit.clone());
        let mut v = fake.templates.put.clone();
        let mut file = fake.content_json(r, &branch, &path, Some(&content));
        if let Some(object) = file.as_object_mut() {
            object.remove("content");
            object.remove("encoding");
        }
        v["content"] = file;
        let api = format!("{}/repos/{}", fake.api_url, r.full_name);
        v["commit"]["sha"] = json!(commit);
        v["commit"]["url"] = json!(format!("{api}/git/commits/{commit}"));
        v["commit"]["html_url"] = json!(format!("{}/{}/commit/{commit}", fake.web_url, r.full_name));
        v["commit"]["message"] = json!(message);
        v["commit"]["tree"]["sha"] = json!(tree_sha);
        v["commit"]["parents"] = json!([{ "sha": head, "url": format!("{api}/git/commits/{head}") }]);
        github_json(status, v)
    })
    .unwrap_or_else(|| not_found("repos/contents#create-or-update-file-contents"))
}

async fn create_pull(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let docs = "pulls/pulls#create-a-pull-request";
    let title = body["title"].as_str().unwrap_or_default().to_string();
    let head_spec = body["head"].as_str().unwrap_or_default().to_string();
    let head = head_spec
        .split_once(':')
        .map(|(_, b)| b.to_string())
        .unwrap_or_else(|| head_spec.clone());
    let base = body["base"].as_str().unwrap_or_default().to_string();
    let text = body["body"].as_str().map(str::to_string);
    let owner_ = owner.clone();
    with_repo(&fake, &owner, &repo, |r| {
        let Some(head_sha) = r.branch_head(&head).cloned() else {
            return validation_failed(
                json!([{ "resource": "PullRequest", "field": "head", "code": "invalid" }]),
                docs,
            );
        };
        let Some(base_sha) = r.branch_head(&base).cloned() else {
            return validation_failed(
                json!([{ "resource": "PullRequest", "field": "base", "code": "invalid" }]),
                docs,
            );
        };
        let open = r.issues.iter().any(|i| {
            i.state == "open"
                && i.pull.as_ref().is_some_and(|p| p.head == head && p.base == base)
        });
        if open {
            return validation_failed(
                json!([{ "resource": "PullRequest", "code": "custom", "message": format!("A pull request already exists for {owner_}:{head}.") }]),
                docs,
            );
        }
        if r.is_ancestor(&head_sha, &base_sha) {
            return validation_failed(
                json!([{ "resource": "PullRequest", "code": "custom", "message": format!("No commits between {base} and {head}") }]),
                docs,
            );
        }
        let number = r.issues.len() as u64 + 1;
        let mut issue = new_issue(number, &title, text, vec![], vec![]);
        issue.pull = Some(Pull {
            head: head.clone(),
            base: base.clone(),
            merged: false,
            merged_at: None,
        });
        let json = fake.pull_json(r, &issue);
        r.issues.push(issue);
        github_json(StatusCode::CREATED, json)
    })
    .unwrap_or_else(|| not_found(docs))
}

async fn list_pulls(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state = query.get("state").cloned().unwrap_or_else(|| "open".into());
    let head = query.get("head").cloned();
    with_repo(&fake, &owner, &repo, |r| {
        let pulls: Vec<Value> = r
            .issues
            .iter()
            .rev()
            .filter(|i| i.pull.is_some())
            .filter(|i| state == "all" || i.state == state)
            .filter(|i| match &head {
                // `owner:branch`; GitHub ignores a head without the owner.
                Some(h) => h.split_once(':').is_some_and(|(o, b)| {
                    o == owner && i.pull.as_ref().is_some_and(|p| p.head == b)
                }),
                None => true,
            })
            .map(|i| fake.pull_json(r, i))
            .collect();
        github_json(StatusCode::OK, json!(pulls))
    })
    .unwrap_or_else(|| not_found("pulls/pulls#list-pull-requests"))
}

async fn get_pull(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
) -> Response {
    with_repo(&fake, &owner, &repo, |r| {
        let issue = r.issue(number).filter(|i| i.pull.is_some())?;
        Some(github_json(StatusCode::OK, fake.pull_json(r, issue)))
    })
    .flatten()
    .unwrap_or_else(|| not_found("pulls/pulls#get-a-pull-request"))
}

async fn get_installation(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    let world = fake.world();
    let (Some(app), true) = (
        &world.app,
        world.repos.contains_key(&format!("{owner}/{repo}")),
    ) else {
        return not_found("apps/apps#get-a-repository-installation-for-the-authenticated-app");
    };
    github_json(
        StatusCode::OK,
        json!({
            "id": app.installation_id,
            "account": { "login": owner, "id": 1, "type": "Organization" },
            "app_id": app.app_id,
            "target_type": "Organization",
            "repository_selection": "all",
            "access_tokens_url": format!("{}/app/installations/{}/access_tokens", fake.api_url, app.installation_id),
            "permissions": { "issues": "write", "contents": "write", "pull_requests": "write" },
            "events": ["issues", "pull_request"],
        }),
    )
}

async fn create_installation_token(
    State(fake): State<FakeGitHub>,
    Path(id): Path<u64>,
    _headers: HeaderMap,
) -> Response {
    let mut world = fake.world();
    if world.app.as_ref().map(|a| a.installation_id) != Some(id) {
        return not_found("apps/apps#create-an-installation-access-token-for-an-app");
    }
    let token = format!("ghs_fake{:032x}", rand::random::<u128>());
    world.tokens.push(token.clone());
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    github_json(
        StatusCode::CREATED,
        json!({
            "token": token,
            "expires_at": expires,
            "permissions": { "issues": "write", "contents": "write", "pull_requests": "write" },
            "repository_selection": "all",
        }),
    )
}

/// "Request reviewers for a pull request": 201 with the pull request.
async fn request_reviewers(
    State(fake): State<FakeGitHub>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Json(body): Json<Value>,
) -> Response {
    let reviewers: Vec<String> = body["reviewers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    with_repo(&fake, &owner, &repo, |r| {
        let issue = r
            .issues
            .iter_mut()
            .find(|i| i.number == number && i.pull.is_some())?;
        for reviewer in reviewers {
            if !issue.reviewers.contains(&reviewer) {
                issue.reviewers.push(reviewer);
            }
        }
        let issue = r.issue(number)?.clone();
        Some(github_json(StatusCode::CREATED, fake.pull_json(r, &issue)))
    })
    .flatten()
    .unwrap_or_else(|| not_found("pulls/review-requests#request-reviewers-for-a-pull-request"))
}

/// GraphQL, only `enablePullRequestAutoMerge(input: { pullRequestId })`; as
/// GitHub does, errors come back with status 200 in `errors`.
async fn graphql(State(fake): State<FakeGitHub>, Json(body): Json<Value>) -> Response {
    let query = body["query"].as_str().unwrap_or_default();
    if !query.contains("enablePullRequestAutoMerge") {
        return github_json(
            StatusCode::OK,
            json!({ "errors": [{ "message": "this fake answers enablePullRequestAutoMerge only" }] }),
        );
    }
    let id = body["variables"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut world = fake.world();
    for repo in world.repos.values_mut() {
        let prefix = format!("PR_kwFake{}_", repo.id);
        let Some(number) = id.strip_prefix(&prefix).and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        if let Some(issue) = repo.issues.iter_mut().find(|i| i.number == number) {
            issue.auto_merge = true;
            return github_json(
                StatusCode::OK,
                json!({ "data": { "enablePullRequestAutoMerge": { "pullRequest": { "number": number, "autoMergeRequest": { "enabledAt": now() } } } } }),
            );
        }
    }
    github_json(
        StatusCode::OK,
        json!({ "data": null, "errors": [{ "type": "NOT_FOUND", "path": ["enablePullRequestAutoMerge"], "message": format!("Could not resolve to a node with the global id of '{id}'") }] }),
    )
}
