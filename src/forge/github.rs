//! GitHub (and GitHub Enterprise) through octocrab.
//!
//! The API base URL is configurable (`GITHUB_API_URL`: `https://api.github.com`,
//! `https://ghe.example.com/api/v3`, or a test's fake). Authentication is a
//! token (personal or installation) or a GitHub App: its id and private key
//! make a short JWT, exchanged for an installation token of the repository's
//! owner, cached until shortly before it expires (see `app`).
//!
//! octocrab's own retries are off: the outbox retries, with backoff and
//! `Retry-After`, and knows which calls may have taken effect. GitHub's
//! answers are sorted into [`ForgeError`]s here: 401 → unauthorized; 403/429
//! with `retry-after` or `x-ratelimit-remaining: 0` → rate limited until the
//! reset; other 403 → forbidden; 404 → not found; 422 → invalid, with
//! GitHub's message; 5xx and network failures → transient.

mod app;

use super::{
    Forge, ForgeError, IssueRef, IssueState, NewIssue, NewPullRequest, PullRef, PullState,
    check_pull_request, check_repo,
};
use base64::Engine;
use futures::future::BoxFuture;
use octocrab::Octocrab;
use octocrab::models::issues::Issue;
use octocrab::models::pulls::PullRequest;
use octocrab::params::repos::Reference;
use octocrab::params::{Direction, State};
use std::time::Duration;

/// GitHub's public API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// Issues looked through by [`Forge::find_issue`]: the newest 1,000.
const FIND_PAGES: u32 = 10;

/// How GitHub knows us.
#[derive(Clone)]
pub enum GitHubAuth {
    /// A personal access token or an installation token (`GITHUB_TOKEN`).
    Token(String),
    /// A GitHub App: installation tokens are made from its private key.
    App {
        /// The App's id.
        app_id: u64,
        /// Its private key, PEM (`BEGIN RSA PRIVATE KEY` or `BEGIN PRIVATE KEY`).
        private_key_pem: String,
    },
}

impl std::fmt::Debug for GitHubAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitHubAuth::Token(_) => f.write_str("GitHubAuth::Token(…)"),
            GitHubAuth::App { app_id, .. } => write!(f, "GitHubAuth::App({app_id}, …)"),
        }
    }
}

enum Clients {
    Token(Octocrab, String),
    App(Box<app::Installations>),
}

/// The GitHub forge.
pub struct GitHubForge {
    clients: Clients,
    graphql_base: String,
}

/// The base of GitHub's GraphQL endpoint (`{base}/graphql`) for a REST base
/// URL: `https://api.github.com` → itself; Enterprise `https://HOST/api/v3`
/// → `https://HOST/api`.
fn graphql_base(api_url: &str) -> String {
    let base = api_url.trim_end_matches('/');
    base.strip_suffix("/v3").unwrap_or(base).to_string()
}

/// Timeouts of one call: connecting, and each read or write.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// An octocrab client for `api_url`, sending `token` as a bearer token.
fn client(api_url: &str, token: &str) -> Result<Octocrab, ForgeError> {
    // octocrab puts the token in a header and panics on one that cannot be.
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ForgeError::Unauthorized);
    }
    Octocrab::builder()
        .set_connect_timeout(Some(CONNECT_TIMEOUT))
        .set_read_timeout(Some(IO_TIMEOUT))
        .set_write_timeout(Some(IO_TIMEOUT))
        .personal_token(token.to_string())
        .base_uri(api_url)
        .map_err(|_| ForgeError::Invalid(format!("`{api_url}` is not a usable GitHub API URL")))?
        .build()
        .map_err(|err| ForgeError::Transient(format!("could not set up the HTTP client: {err}")))
}

impl GitHubForge {
    /// A forge talking to `api_url` (e.g. [`DEFAULT_API_URL`]) as `auth`.
    pub fn new(api_url: &str, auth: GitHubAuth) -> Result<Self, ForgeError> {
        let clients = match auth {
            GitHubAuth::Token(token) => {
                Clients::Token(client(api_url, token.trim())?, token.trim().to_string())
            }
            GitHubAuth::App {
                app_id,
                private_key_pem,
            } => Clients::App(Box::new(app::Installations::new(
                api_url,
                app_id,
                &private_key_pem,
            )?)),
        };
        Ok(Self {
            clients,
            graphql_base: graphql_base(api_url),
        })
    }

    /// The client for `owner`'s repositories.
    async fn crab(&self, owner: &str, name: &str) -> Result<Octocrab, ForgeError> {
        match &self.clients {
            Clients::Token(crab, _) => Ok(crab.clone()),
            Clients::App(installations) => installations.client(owner, name).await,
        }
    }

    /// A client of the GraphQL endpoint for `owner`'s repositories.
    async fn graphql_client(&self, owner: &str, name: &str) -> Result<Octocrab, ForgeError> {
        let token = match &self.clients {
            Clients::Token(_, token) => token.clone(),
            Clients::App(installations) => installations.credentials(owner, name).await?.1,
        };
        client(&self.graphql_base, &token)
    }

    async fn open_issue_(&self, repo: &str, issue: &NewIssue) -> Result<IssueRef, ForgeError> {
        let (owner, name) = check_repo(repo)?;
        let crab = self.crab(owner, name).await?;
        let handler = crab.issues(owner, name);
        let mut create = handler.create(issue.title.clone()).body(issue.body.clone());
        if !issue.labels.is_empty() {
            create = create.labels(issue.labels.clone());
        }
        if !issue.assignees.is_empty() {
            create = create.assignees(issue.assignees.clone());
        }
        let created = create
            .send()
            .await
            .map_err(|e| github_error(e, &format!("repository {repo}")))?;
        Ok(issue_ref(&created))
    }

    async fn issue_state_(&self, repo: &str, number: u64) -> Result<IssueState, ForgeError> {
        let (owner, name) = check_repo(repo)?;
        let crab = self.crab(owner, name).await?;
        let issue = crab
            .issues(owner, name)
            .get(number)
            .await
            .map_err(|e| github_error(e, &format!("issue #{number} of {repo}")))?;
        Ok(match issue.state {
            octocrab::models::IssueState::Open => IssueState::Open,
            _ => IssueState::Closed,
        })
    }

    async fn find_issue_(&self, repo: &str, marker: &str) -> Result<Option<IssueRef>, ForgeError> {
        let (owner, name) = check_repo(repo)?;
        let crab = self.crab(owner, name).await?;
        let context = format!("repository {repo}");
        let mut page = crab
            .issues(owner, name)
            .list()
            .state(State::All)
            .sort(octocrab::params::issues::Sort::Created)
            .direction(Direction::Descending)
            .per_page(100u8)
            .send()
            .await
            .map_err(|e| github_error(e, &context))?;
        for _ in 0..FIND_PAGES {
            let found = page.items.iter().find(|issue| {
                issue.pull_request.is_none()
                    && issue.body.as_deref().is_some_and(|b| b.contains(marker))
            });
            if let Some(issue) = found {
                return Ok(Some(issue_ref(issue)));
            }
            match crab
                .get_page::<Issue>(&page.next)
                .await
                .map_err(|e| github_error(e, &context))?
            {
                Some(next) => page = next,
                None => break,
            }
        }
        Ok(None)
    }

    /// The pull request whose head is `owner:branch`, in any state.
    async fn existing_pull(
        crab: &Octocrab,
        owner: &str,
        name: &str,
        branch: &str,
    ) -> Result<Option<PullRequest>, ForgeError> {
        let page = crab
            .pulls(owner, name)
            .list()
            .state(State::All)
            .head(format!("{owner}:{branch}"))
            .per_page(10u8)
            .send()
            .await
            .map_err(|e| github_error(e, &format!("repository {owner}/{name}")))?;
        Ok(page.items.into_iter().next())
    }

    /// Creates `branch` at `base`'s head unless it exists.
    async fn ensure_branch(
        crab: &Octocrab,
        owner: &str,
        name: &str,
        branch: &str,
        base: &str,
    ) -> Result<(), ForgeError> {
        let repos = crab.repos(owner, name);
        match repos.get_ref(&Reference::Branch(branch.to_string())).await {
            Ok(_) => return Ok(()),
            Err(err) => match github_error(err, &format!("branch {branch}")) {
                ForgeError::NotFound(_) => {}
                other => return Err(other),
            },
        }
        let base_ref = repos
            .get_ref(&Reference::Branch(base.to_string()))
            .await
            .map_err(|e| github_error(e, &format!("base branch {base} of {owner}/{name}")))?;
        let sha = match base_ref.object {
            octocrab::models::repos::Object::Commit { sha, .. } => sha,
            _ => {
                return Err(ForgeError::Invalid(format!(
                    "the base branch `{base}` does not point at a commit"
                )));
            }
        };
        match repos
            .create_ref(&Reference::Branch(branch.to_string()), sha)
            .await
        {
            Ok(_) => Ok(()),
            // Someone (an earlier attempt) created it meanwhile.
            Err(err) => match github_error(err, &format!("branch {branch}")) {
                ForgeError::Invalid(message) if message.contains("already exists") => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Writes `content` to `path` on `branch`, unless it is already there.
    async fn put_file(
        crab: &Octocrab,
        owner: &str,
        name: &str,
        branch: &str,
        path: &str,
        content: &str,
        message: &str,
    ) -> Result<(), ForgeError> {
        let repos = crab.repos(owner, name);
        let current = match repos.get_content().path(path).r#ref(branch).send().await {
            Ok(mut items) => items.take_items().into_iter().find(|c| c.path == path),
            Err(err) => match github_error(err, &format!("{path} on {branch}")) {
                ForgeError::NotFound(_) => None,
                other => return Err(other),
            },
        };
        let context = format!("{path} on branch {branch} of {owner}/{name}");
        match current {
            None => {
                repos
                    .create_file(path, message, content)
                    .branch(branch)
                    .send()
                    .await
                    .map_err(|e| github_error(e, &context))?;
            }
            Some(existing) => {
                if existing.r#type != "file" {
                    return Err(ForgeError::Invalid(format!(
                        "`{path}` is a {} on branch `{branch}`, not a file",
                        existing.r#type
                    )));
                }
                if decode_content(existing.content.as_deref()).as_deref() == Some(content) {
                    return Ok(());
                }
                repos
                    .update_file(path, message, content, existing.sha)
                    .branch(branch)
                    .send()
                    .await
                    .map_err(|e| github_error(e, &context))?;
            }
        }
        Ok(())
    }

    async fn open_pull_request_(
        &self,
        repo: &str,
        pr: &NewPullRequest,
    ) -> Result<PullRef, ForgeError> {
        let (owner, name) = check_repo(repo)?;
        check_pull_request(pr)?;
        let crab = self.crab(owner, name).await?;
        let pull = match Self::existing_pull(&crab, owner, name, &pr.branch).await? {
            Some(existing) => existing,
            None => self.create_pull(&crab, owner, name, pr).await?,
        };
        // Also after an attempt that died half-way: each of these is idempotent.
        let what = format!("pull request #{} of {repo}", pull.number);
        if !pr.labels.is_empty() {
            crab.issues(owner, name)
                .add_labels(pull.number, &pr.labels)
                .await
                .map_err(|e| github_error(e, &what))?;
        }
        if !pr.reviewers.is_empty() {
            // The answer is the pull request; only success matters.
            let route = format!(
                "/repos/{owner}/{name}/pulls/{}/requested_reviewers",
                pull.number
            );
            crab.post::<_, serde_json::Value>(
                route,
                Some(&serde_json::json!({ "reviewers": pr.reviewers })),
            )
            .await
            .map_err(|e| github_error(e, &what))?;
        }
        let mut opened = pull_ref(&pull, &pr.branch);
        if pr.auto_merge
            && pull.auto_merge.is_none()
            && let Err(note) = self.enable_auto_merge(owner, name, &pull).await
        {
            opened.notes.push(note);
        }
        Ok(opened)
    }

    /// Creates the branch, writes the files and opens the pull request.
    async fn create_pull(
        &self,
        crab: &Octocrab,
        owner: &str,
        name: &str,
        pr: &NewPullRequest,
    ) -> Result<PullRequest, ForgeError> {
        let repo = format!("{owner}/{name}");
        let crab = crab.clone();
        let base = match &pr.base {
            Some(base) => base.clone(),
            None => crab
                .repos(owner, name)
                .get()
                .await
                .map_err(|e| github_error(e, &format!("repository {repo}")))?
                .default_branch
                .unwrap_or_else(|| "main".to_string()),
        };
        if base == pr.branch {
            return Err(ForgeError::Invalid(format!(
                "a pull request cannot merge the default branch `{base}` into itself"
            )));
        }
        Self::ensure_branch(&crab, owner, name, &pr.branch, &base).await?;
        let message = pr.commit_message.as_deref().unwrap_or(&pr.title);
        for file in &pr.files {
            Self::put_file(
                &crab,
                owner,
                name,
                &pr.branch,
                &file.path,
                &file.content,
                message,
            )
            .await?;
        }
        let created = crab
            .pulls(owner, name)
            .create(pr.title.clone(), pr.branch.clone(), base)
            .body(pr.body.clone())
            .send()
            .await;
        let pull = match created {
            Ok(pull) => pull,
            Err(err) => match github_error(err, &format!("repository {repo}")) {
                // Opened by an earlier attempt whose answer was lost.
                ForgeError::Invalid(message) if message.contains("already exists") => {
                    Self::existing_pull(&crab, owner, name, &pr.branch)
                        .await?
                        .ok_or(ForgeError::Invalid(message))?
                }
                other => return Err(other),
            },
        };
        Ok(pull)
    }

    /// Turns on GitHub's auto-merge (GraphQL `enablePullRequestAutoMerge`):
    /// GitHub merges once required checks and reviews pass. A repository
    /// that does not allow it leaves the pull request open; the reason is
    /// returned for the person who asked.
    async fn enable_auto_merge(
        &self,
        owner: &str,
        name: &str,
        pull: &PullRequest,
    ) -> Result<(), String> {
        let Some(node_id) = pull.node_id.as_deref() else {
            return Err("GitHub gave no node id for the pull request; auto-merge is off".into());
        };
        let query = serde_json::json!({
            "query": "mutation($id: ID!) { enablePullRequestAutoMerge(input: { pullRequestId: $id }) { pullRequest { number autoMergeRequest { enabledAt } } } }",
            "variables": { "id": node_id },
        });
        let crab = self
            .graphql_client(owner, name)
            .await
            .map_err(|e| format!("auto-merge could not be turned on: {e}"))?;
        let answer: serde_json::Value = crab.post("/graphql", Some(&query)).await.map_err(|e| {
            format!(
                "auto-merge could not be turned on: {}",
                github_error(e, "the GraphQL API")
            )
        })?;
        match answer["errors"].as_array().and_then(|e| e.first()) {
            Some(error) => Err(format!(
                "auto-merge could not be turned on: {}",
                error["message"]
                    .as_str()
                    .unwrap_or("GitHub did not say why")
            )),
            None => Ok(()),
        }
    }

    async fn read_file_(
        &self,
        repo: &str,
        branch: Option<&str>,
        path: &str,
    ) -> Result<Option<String>, ForgeError> {
        let (owner, name) = check_repo(repo)?;
        super::check_path(path)?;
        let crab = self.crab(owner, name).await?;
        let repos = crab.repos(owner, name);
        let mut request = repos.get_content().path(path);
        if let Some(branch) = branch {
            super::check_branch(branch)?;
            request = request.r#ref(branch);
        }
        match request.send().await {
            Ok(mut items) => {
                let Some(item) = items.take_items().into_iter().find(|c| c.path == path) else {
                    return Err(ForgeError::Invalid(format!(
                        "`{path}` is a folder in {repo}, not a file"
                    )));
                };
                decode_content(item.content.as_deref())
                    .map(Some)
                    .ok_or_else(|| {
                        ForgeError::Invalid(format!("`{path}` in {repo} is not a text file"))
                    })
            }
            Err(err) => match github_error(err, &format!("{path} in {repo}")) {
                ForgeError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn pull_state_(&self, repo: &str, number: u64) -> Result<PullState, ForgeError> {
        let (owner, name) = check_repo(repo)?;
        let crab = self.crab(owner, name).await?;
        let pull = crab
            .pulls(owner, name)
            .get(number)
            .await
            .map_err(|e| github_error(e, &format!("pull request #{number} of {repo}")))?;
        Ok(if pull.merged == Some(true) || pull.merged_at.is_some() {
            PullState::Merged
        } else if matches!(pull.state, Some(octocrab::models::IssueState::Open)) {
            PullState::Open
        } else {
            PullState::Closed
        })
    }
}

impl Forge for GitHubForge {
    fn kind(&self) -> &'static str {
        "github"
    }

    fn open_issue<'a>(
        &'a self,
        repo: &'a str,
        issue: &'a NewIssue,
    ) -> BoxFuture<'a, Result<IssueRef, ForgeError>> {
        Box::pin(self.open_issue_(repo, issue))
    }

    fn issue_state<'a>(
        &'a self,
        repo: &'a str,
        number: u64,
    ) -> BoxFuture<'a, Result<IssueState, ForgeError>> {
        Box::pin(self.issue_state_(repo, number))
    }

    fn find_issue<'a>(
        &'a self,
        repo: &'a str,
        marker: &'a str,
    ) -> BoxFuture<'a, Result<Option<IssueRef>, ForgeError>> {
        Box::pin(self.find_issue_(repo, marker))
    }

    fn open_pull_request<'a>(
        &'a self,
        repo: &'a str,
        pr: &'a NewPullRequest,
    ) -> BoxFuture<'a, Result<PullRef, ForgeError>> {
        Box::pin(self.open_pull_request_(repo, pr))
    }

    fn read_file<'a>(
        &'a self,
        repo: &'a str,
        branch: Option<&'a str>,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ForgeError>> {
        Box::pin(self.read_file_(repo, branch, path))
    }

    fn pull_state<'a>(
        &'a self,
        repo: &'a str,
        number: u64,
    ) -> BoxFuture<'a, Result<PullState, ForgeError>> {
        Box::pin(self.pull_state_(repo, number))
    }
}

fn issue_ref(issue: &Issue) -> IssueRef {
    IssueRef {
        number: issue.number,
        url: issue.html_url.to_string(),
    }
}

fn pull_ref(pull: &PullRequest, branch: &str) -> PullRef {
    PullRef {
        number: pull.number,
        url: pull
            .html_url
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        branch: branch.to_string(),
        notes: Vec::new(),
    }
}

/// A file's content from the contents API: base64 with line breaks.
fn decode_content(content: Option<&str>) -> Option<String> {
    let packed: String = content?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(packed)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A header's value as text.
fn header<'h>(headers: Option<&'h http::HeaderMap>, name: &str) -> Option<&'h str> {
    headers?.get(name)?.to_str().ok().map(str::trim)
}

/// How long GitHub asks us to wait, from `retry-after` (seconds) or, when the
/// quota is spent (`x-ratelimit-remaining: 0`), `x-ratelimit-reset` (epoch
/// seconds) against `now`. `None` when the answer is not a rate limit.
pub fn rate_limit_wait(
    headers: Option<&http::HeaderMap>,
    now_epoch: i64,
) -> Option<Option<Duration>> {
    if let Some(secs) = header(headers, "retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Some(Duration::from_secs(secs)));
    }
    if header(headers, "x-ratelimit-remaining") == Some("0") {
        let wait = header(headers, "x-ratelimit-reset")
            .and_then(|v| v.parse::<i64>().ok())
            .map(|reset| Duration::from_secs(u64::try_from(reset - now_epoch).unwrap_or(0).max(1)));
        return Some(wait);
    }
    None
}

/// Sorts an octocrab failure into a [`ForgeError`]; `what` names the thing
/// asked for, for "not found".
fn github_error(err: octocrab::Error, what: &str) -> ForgeError {
    match err {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let headers = source.headers.as_ref();
            let mut message = source.message.clone();
            for detail in source.errors.iter().flatten() {
                let text = detail
                    .get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        let field = |k: &str| detail.get(k).and_then(|v| v.as_str()).unwrap_or("?");
                        format!(
                            "{} {} is {}",
                            field("resource"),
                            field("field"),
                            field("code")
                        )
                    });
                message = format!("{message}; {text}");
            }
            match status {
                401 => ForgeError::Unauthorized,
                403 | 429 => {
                    let now = chrono::Utc::now().timestamp();
                    match rate_limit_wait(headers, now) {
                        Some(retry_after) => ForgeError::RateLimited { retry_after },
                        None if status == 429 || message.to_lowercase().contains("rate limit") => {
                            ForgeError::RateLimited { retry_after: None }
                        }
                        None => ForgeError::Forbidden(message),
                    }
                }
                404 => ForgeError::NotFound(what.to_string()),
                409 => ForgeError::Transient(format!("conflict on {what}: {message}")),
                500..=599 => ForgeError::Transient(format!("GitHub answered {status}: {message}")),
                _ => ForgeError::Invalid(format!("{message} (HTTP {status})")),
            }
        }
        octocrab::Error::Hyper { source, .. } => ForgeError::Transient(source.to_string()),
        octocrab::Error::Service { source, .. } => ForgeError::Transient(source.to_string()),
        octocrab::Error::Http { source, .. } => ForgeError::Transient(source.to_string()),
        octocrab::Error::Serde { source, .. } => {
            ForgeError::Transient(format!("unreadable answer from GitHub: {source}"))
        }
        octocrab::Error::Json { source, .. } => ForgeError::Transient(format!(
            "unreadable answer from GitHub at {}: {}",
            source.path(),
            source.inner()
        )),
        other => ForgeError::Transient(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_come_from_retry_after_or_the_reset_time() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(rate_limit_wait(Some(&headers), 1000), None);
        headers.insert("x-ratelimit-remaining", "12".parse().unwrap());
        headers.insert("x-ratelimit-reset", "1060".parse().unwrap());
        assert_eq!(rate_limit_wait(Some(&headers), 1000), None);
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        assert_eq!(
            rate_limit_wait(Some(&headers), 1000),
            Some(Some(Duration::from_secs(60)))
        );
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            rate_limit_wait(Some(&headers), 1000),
            Some(Some(Duration::from_secs(7)))
        );
    }

    #[test]
    fn contents_are_decoded_across_line_breaks() {
        // As in fixtures/real/github/contents_get_file_json.json.
        assert_eq!(
            decode_content(Some("dGVzdGluZw==\n")).as_deref(),
            Some("testing")
        );
        assert_eq!(decode_content(Some("not base64!")), None);
        assert_eq!(decode_content(None), None);
    }

    #[test]
    fn tokens_are_not_printed() {
        let auth = GitHubAuth::Token("ghp_secret".into());
        assert!(!format!("{auth:?}").contains("ghp_secret"));
    }
}
