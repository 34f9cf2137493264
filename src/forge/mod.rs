//! Forges: where issues and pull requests live.
//!
//! One small interface, [`Forge`] — open an issue, open a pull request, ask
//! for the state of either — with two implementations:
//!
//! - [`GitHubForge`] (`github`): GitHub or GitHub Enterprise through octocrab,
//!   with a personal/installation token or as a GitHub App;
//! - [`GitForge`] (`git`): the embedded default, plain git repositories under
//!   a local folder (`var/forge/`), so `watchkeeper console` users see a real
//!   artefact — a Markdown file in a commit — without any account.
//!
//! Forges are only called by the outbox (`outbox::forge`): a job records "open
//! this issue" with its decision, and the effect is delivered, retried and
//! de-duplicated from there. `webhook` verifies and parses what GitHub sends
//! back (issue closed, pull request merged).
//!
//! Names that reach a forge — repositories, branches, file paths — are checked
//! here, once, by [`check_repo`], [`check_branch`] and [`check_path`], before
//! they become a URL or a git argument.

pub mod git;
pub mod github;
pub mod webhook;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use git::GitForge;
pub use github::{GitHubAuth, GitHubForge};

/// A forge: issues and pull requests in repositories named `owner/name`.
///
/// Every method is safe to call concurrently; creations are idempotent where
/// the forge allows it (a pull request per branch), and [`Forge::find_issue`]
/// lets the caller make issue creation idempotent too.
pub trait Forge: Send + Sync {
    /// `github` or `git`.
    fn kind(&self) -> &'static str;

    /// Opens an issue in `repo`.
    fn open_issue<'a>(
        &'a self,
        repo: &'a str,
        issue: &'a NewIssue,
    ) -> BoxFuture<'a, Result<IssueRef, ForgeError>>;

    /// Whether issue `number` of `repo` is open or closed.
    fn issue_state<'a>(
        &'a self,
        repo: &'a str,
        number: u64,
    ) -> BoxFuture<'a, Result<IssueState, ForgeError>>;

    /// An issue of `repo` whose body contains `marker`, if there is one: how a
    /// caller that died after creating an issue, but before recording it,
    /// finds it again instead of opening a duplicate.
    fn find_issue<'a>(
        &'a self,
        repo: &'a str,
        marker: &'a str,
    ) -> BoxFuture<'a, Result<Option<IssueRef>, ForgeError>>;

    /// Creates branch `pr.branch` from `pr.base` (or the default branch),
    /// commits `pr.files` on it and opens a pull request. Running it again
    /// with the same branch returns the pull request opened the first time.
    fn open_pull_request<'a>(
        &'a self,
        repo: &'a str,
        pr: &'a NewPullRequest,
    ) -> BoxFuture<'a, Result<PullRef, ForgeError>>;

    /// The content of `path` on `branch` (the default branch when `None`) of
    /// `repo`; `None` when there is no such file.
    fn read_file<'a>(
        &'a self,
        repo: &'a str,
        branch: Option<&'a str>,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ForgeError>>;

    /// Whether pull request `number` of `repo` is open, merged or closed.
    fn pull_state<'a>(
        &'a self,
        repo: &'a str,
        number: u64,
    ) -> BoxFuture<'a, Result<PullState, ForgeError>>;
}

/// An issue to open.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIssue {
    /// Its title (one line).
    pub title: String,
    /// Its body, in Markdown.
    pub body: String,
    /// Labels to put on it.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Forge logins to assign it to.
    #[serde(default)]
    pub assignees: Vec<String>,
}

/// An issue that exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueRef {
    /// Its number in the repository.
    pub number: u64,
    /// Where a person can read it (`https://…` or `file://…`).
    pub url: String,
}

/// Whether an issue is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    /// Open.
    Open,
    /// Closed (done or not planned).
    Closed,
}

/// One file of a pull request: its full new content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// Path inside the repository, `/`-separated (`postmortems/2026-03-02-db.md`).
    pub path: String,
    /// The file's new content (created or replaced).
    pub content: String,
}

/// A pull request to open.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPullRequest {
    /// The branch to create (or reuse) for it; one pull request per branch.
    pub branch: String,
    /// The branch to merge into; the repository's default branch when `None`.
    #[serde(default)]
    pub base: Option<String>,
    /// Its title; also the commit message unless `commit_message` says otherwise.
    pub title: String,
    /// The commit message, when it differs from the title.
    #[serde(default)]
    pub commit_message: Option<String>,
    /// Its description, in Markdown.
    pub body: String,
    /// The files it creates or changes.
    #[serde(default)]
    pub files: Vec<FileChange>,
    /// Labels to put on it.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Forge logins asked to review it.
    #[serde(default)]
    pub reviewers: Vec<String>,
    /// Merge it by itself once its required checks pass (GitHub's
    /// auto-merge; the git forge, which has no checks, merges at once).
    #[serde(default)]
    pub auto_merge: bool,
}

/// A pull request that exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRef {
    /// Its number in the repository.
    pub number: u64,
    /// Where a person can read it.
    pub url: String,
    /// Its branch.
    pub branch: String,
    /// What did not go as asked, for people (auto-merge refused by the repository).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Where a pull request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullState {
    /// Open: not merged, not closed.
    Open,
    /// Merged into its base.
    Merged,
    /// Closed without merging.
    Closed,
}

/// Why a forge call failed; each message is one sentence for a person.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The repository, issue, pull request or branch does not exist (or the
    /// credentials cannot see it).
    #[error("{0} was not found on the forge (or its credentials cannot see it)")]
    NotFound(String),
    /// The credentials were refused.
    #[error(
        "the forge refused our credentials (bad or expired token): check GITHUB_TOKEN or the GitHub App settings"
    )]
    Unauthorized,
    /// The credentials are valid but may not do this.
    #[error("the forge's credentials are not allowed to do this: {0}")]
    Forbidden(String),
    /// Too many calls; try again after `retry_after` when known.
    #[error("the forge is rate limiting us{}", retry_text(retry_after))]
    RateLimited {
        /// How long the forge asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The request was refused as invalid (GitHub's 422, or a name we refuse).
    #[error("the forge refused the request: {0}")]
    Invalid(String),
    /// A failure a later attempt may not meet (5xx, network).
    #[error("the forge is unavailable for now ({0}); the call will be retried")]
    Transient(String),
    /// A git command failed.
    #[error("git failed: {0}")]
    Git(String),
    /// Reading or writing the local repository failed.
    #[error("could not read or write the local repository: {0}")]
    Io(#[from] std::io::Error),
}

fn retry_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!("; retry in {} s", wait.as_secs().max(1)),
        None => String::new(),
    }
}

impl ForgeError {
    /// True when repeating the same call cannot succeed without a person
    /// changing something (credentials, permissions, names, the repository).
    pub fn is_permanent(&self) -> bool {
        match self {
            ForgeError::NotFound(_)
            | ForgeError::Unauthorized
            | ForgeError::Forbidden(_)
            | ForgeError::Invalid(_) => true,
            // A local repository a person can repair (a stale lock, a branch
            // left checked out): worth trying again later.
            ForgeError::RateLimited { .. }
            | ForgeError::Transient(_)
            | ForgeError::Git(_)
            | ForgeError::Io(_) => false,
        }
    }
}

/// True for a name segment made only of the characters every forge and
/// file system accept: ASCII letters, digits, `.`, `_` and `-`; never starting
/// with `-` (no options), never `.`, `..` or `.git` (no escape, no reaching
/// into git's own files). `.github` and the like are fine.
fn plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('-')
        && segment != "."
        && segment != ".."
        && !segment.eq_ignore_ascii_case(".git")
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A branch name segment: a plain segment that git also accepts (no leading `.`).
fn branch_segment(segment: &str) -> bool {
    plain_segment(segment) && !segment.starts_with('.')
}

/// Splits a repository name `owner/name` into its two parts, refusing anything else.
pub fn check_repo(repo: &str) -> Result<(&str, &str), ForgeError> {
    match repo.split_once('/') {
        Some((owner, name)) if plain_segment(owner) && plain_segment(name) => Ok((owner, name)),
        _ => Err(ForgeError::Invalid(format!(
            "`{repo}` is not a repository name of the form owner/name (letters, digits, `.`, `_`, `-`)"
        ))),
    }
}

/// Checks a branch name: `/`-separated plain segments, no `..`, no leading
/// `-`, not ending in `.lock`, at most 200 characters.
pub fn check_branch(branch: &str) -> Result<(), ForgeError> {
    let ok = branch.len() <= 200
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && branch.split('/').all(branch_segment);
    if ok {
        Ok(())
    } else {
        Err(ForgeError::Invalid(format!(
            "`{branch}` is not a usable branch name (letters, digits, `.`, `_`, `-` and `/` between parts)"
        )))
    }
}

/// Checks a file path inside a repository: relative, `/`-separated plain
/// segments (no `..`, no leading `-`, nothing under `.git`), at most 400
/// characters.
pub fn check_path(path: &str) -> Result<(), ForgeError> {
    if path.len() <= 400 && path.split('/').all(plain_segment) {
        Ok(())
    } else {
        Err(ForgeError::Invalid(format!(
            "`{path}` is not a usable file path (relative; letters, digits, `.`, `_`, `-` and `/` between parts)"
        )))
    }
}

/// Checks a pull request before anything is created: its branch, base and paths.
pub fn check_pull_request(pr: &NewPullRequest) -> Result<(), ForgeError> {
    check_branch(&pr.branch)?;
    if let Some(base) = &pr.base {
        check_branch(base)?;
        if base == &pr.branch {
            return Err(ForgeError::Invalid(format!(
                "a pull request cannot merge branch `{base}` into itself"
            )));
        }
    }
    if pr.files.is_empty() {
        return Err(ForgeError::Invalid(
            "a pull request needs at least one file".into(),
        ));
    }
    for file in &pr.files {
        check_path(&file.path)?;
    }
    Ok(())
}

/// A file-name-safe slug of a title: lowercase ASCII letters and digits
/// joined by single `-`, at most 50 characters, `fallback` when nothing is left.
pub fn slug(title: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            if out.len() >= 50 {
                break;
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        fallback.to_string()
    } else {
        out.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_are_owner_slash_name_and_nothing_else() {
        assert_eq!(
            check_repo("acme-platform/postmortems").unwrap(),
            ("acme-platform", "postmortems")
        );
        assert!(check_repo("octo.org/hello_world.rs").is_ok());
        assert!(check_repo("acme/.github").is_ok());
        for bad in [
            "",
            "acme",
            "acme/",
            "/etc",
            "../x",
            "acme/..",
            "acme/../etc",
            "a/b/c",
            "-rf/x",
            "acme/-x",
            "acme/.git",
            "acme/.GIT",
            "./x",
            "ac me/x",
            "acme/x?y",
        ] {
            assert!(check_repo(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn branches_and_paths_cannot_escape_or_become_options() {
        assert!(check_branch("watchkeeper/postmortem-42").is_ok());
        for bad in [
            "", "-f", "a..b", "../x", "/abs", "x/", "x//y", "x.lock", "a b", "x~1", "x^", ".hidden",
        ] {
            assert!(check_branch(bad).is_err(), "{bad} must be refused");
        }
        assert!(check_path("postmortems/2026-03-02-db.md").is_ok());
        assert!(check_path(".github/CODEOWNERS").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../../etc/passwd",
            "a/../../b",
            ".git/config",
            ".Git/config",
            "x/.git/hooks/pre-commit",
            "./x",
            "x/./y",
            "-rf",
            "a\\b",
            "a\nb",
        ] {
            assert!(check_path(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn slugs_are_plain() {
        assert_eq!(
            slug("Database outage: 2026-03-02!", "issue"),
            "database-outage-2026-03-02"
        );
        assert_eq!(slug("../../etc/passwd", "issue"), "etc-passwd");
        assert_eq!(slug("-rf", "issue"), "rf");
        assert_eq!(slug("💥", "issue"), "issue");
        assert!(slug(&"x".repeat(300), "issue").len() <= 50);
    }

    #[test]
    fn errors_say_whether_to_retry() {
        assert!(ForgeError::Unauthorized.is_permanent());
        assert!(ForgeError::Invalid("x".into()).is_permanent());
        assert!(!ForgeError::Transient("503".into()).is_permanent());
        let limited = ForgeError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        assert!(!limited.is_permanent());
        assert_eq!(
            limited.to_string(),
            "the forge is rate limiting us; retry in 30 s"
        );
    }
}
