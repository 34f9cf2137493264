//! The embedded forge: plain git repositories under a local folder.
//!
//! Repository `acme-platform/postmortems` is the folder
//! `<root>/acme-platform/postmortems` (root `var/forge/` by default), created
//! with `git init` and an initial commit on first use. Its *default branch* is
//! the branch checked out there (`main` for the repositories made here).
//!
//! - An issue is a Markdown file `issues/<number>-<slug>.md` on the default
//!   branch: a YAML front matter (`number`, `title`, `state: open|closed`,
//!   `labels`, `assignees`, `created`) then the body, committed on creation.
//!   A person closes it by editing `state: closed` and committing; its state
//!   is read from the default branch's last commit.
//! - A pull request is a branch carrying the files, committed without touching
//!   the working tree (through a temporary index), plus a record
//!   `pulls/<number>-<branch-slug>.md` on the default branch (`state: open`,
//!   its `branch`, `base` and `head` commit). It is merged once its branch (or
//!   recorded head) is an ancestor of its base (`git merge-base
//!   --is-ancestor`), closed when a person sets `state: closed`.
//!
//! git runs as a child process (`tokio::process`, never a shell), with every
//! name checked first (`check_repo`, `check_branch`, `check_path`), options
//! and operands kept apart, discovery fenced to the repository's folder, and
//! one operation at a time per repository.

use super::{
    Forge, ForgeError, IssueRef, IssueState, NewIssue, NewPullRequest, PullRef, PullState,
    check_branch, check_pull_request, check_repo, slug,
};
use crate::clock::Clock;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// Where the embedded forge keeps its repositories unless configured otherwise.
pub const DEFAULT_ROOT: &str = "var/forge";

/// The embedded git forge.
pub struct GitForge {
    root: PathBuf,
    clock: Clock,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Files a repository starts with when it is first used (`with_seed`).
    seeds: HashMap<String, Vec<(String, String)>>,
    /// Where a repository's pull-request branches are pushed (`with_remote`).
    remotes: HashMap<String, String>,
}

/// An issue file's front matter.
#[derive(Serialize, Deserialize)]
struct IssueFront {
    number: u64,
    title: String,
    state: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    assignees: Vec<String>,
    #[serde(default)]
    created: String,
}

/// A pull request record's front matter.
#[derive(Serialize, Deserialize)]
struct PullFront {
    number: u64,
    title: String,
    branch: String,
    base: String,
    head: String,
    state: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reviewers: Vec<String>,
    #[serde(default)]
    created: String,
}

/// What a git command printed.
struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// One repository's folder, and how to run git in it.
struct Repo {
    dir: PathBuf,
    /// Fences repository discovery: git never looks above the repository.
    ceiling: PathBuf,
}

impl Repo {
    /// Runs `git <args>` in the repository; `stdin` is written to its input,
    /// `index` replaces the index file.
    async fn run(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        index: Option<&Path>,
    ) -> Result<Output, ForgeError> {
        let mut command = tokio::process::Command::new("git");
        command
            .args([
                "-c",
                "user.name=Watchkeeper",
                "-c",
                "user.email=watchkeeper@localhost",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.quotepath=false",
            ])
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_CEILING_DIRECTORIES", &self.ceiling)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(index) = index {
            command.env("GIT_INDEX_FILE", index);
        }
        let mut child = command
            .spawn()
            .map_err(|e| ForgeError::Git(format!("could not start git (is it installed?): {e}")))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).await?;
            drop(pipe);
        }
        let output = child.wait_with_output().await?;
        Ok(Output {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Runs git and returns its output, trimmed; failing is an error.
    async fn git(&self, args: &[&str]) -> Result<String, ForgeError> {
        self.git_with(args, None, None).await
    }

    async fn git_with(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        index: Option<&Path>,
    ) -> Result<String, ForgeError> {
        let output = self.run(args, stdin, index).await?;
        if output.ok {
            Ok(output.stdout.trim().to_string())
        } else {
            let reason = output.stderr.trim();
            Err(ForgeError::Git(format!(
                "`git {}` in {} failed: {}",
                args.first().copied().unwrap_or_default(),
                self.dir.display(),
                if reason.is_empty() {
                    "no reason given"
                } else {
                    reason
                }
            )))
        }
    }

    /// The commit `rev` names, if it names one.
    async fn commit_of(&self, rev: &str) -> Result<Option<String>, ForgeError> {
        let spec = format!("{rev}^{{commit}}");
        let output = self
            .run(&["rev-parse", "--verify", "--quiet", &spec], None, None)
            .await?;
        Ok(output.ok.then(|| output.stdout.trim().to_string()))
    }

    /// True when `ancestor` is reachable from `descendant`.
    async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, ForgeError> {
        let output = self
            .run(
                &["merge-base", "--is-ancestor", ancestor, descendant],
                None,
                None,
            )
            .await?;
        Ok(output.ok)
    }

    /// The branch checked out: the repository's default branch.
    async fn default_branch(&self) -> Result<String, ForgeError> {
        let output = self
            .run(&["symbolic-ref", "--quiet", "--short", "HEAD"], None, None)
            .await?;
        let branch = output.stdout.trim();
        if !output.ok || check_branch(branch).is_err() {
            return Err(ForgeError::Git(format!(
                "the repository {} has no branch checked out; check out its default branch",
                self.dir.display()
            )));
        }
        Ok(branch.to_string())
    }

    /// `(number, file name)` of the records in `folder` on `branch`.
    async fn records(&self, branch: &str, folder: &str) -> Result<Vec<(u64, String)>, ForgeError> {
        let listing = self
            .git(&[
                "ls-tree",
                "--name-only",
                &format!("refs/heads/{branch}"),
                "--",
                &format!("{folder}/"),
            ])
            .await?;
        Ok(listing
            .lines()
            .filter_map(|line| {
                let file = line.strip_prefix(folder)?.strip_prefix('/')?;
                let (number, _) = file.split_once('-')?;
                Some((number.parse().ok()?, file.to_string()))
            })
            .collect())
    }

    /// The record of `number` in `folder` on `branch`: its file name and text.
    async fn record(
        &self,
        branch: &str,
        folder: &str,
        number: u64,
        what: &str,
    ) -> Result<(String, String), ForgeError> {
        let file = self
            .records(branch, folder)
            .await?
            .into_iter()
            .find(|(n, _)| *n == number)
            .map(|(_, file)| file)
            .ok_or_else(|| ForgeError::NotFound(what.to_string()))?;
        let text = self
            .git(&["show", &format!("refs/heads/{branch}:{folder}/{file}")])
            .await?;
        Ok((file, text))
    }

    /// Writes `text` to `path` in the working tree and commits only that file.
    async fn commit_file(&self, path: &str, text: &str, message: &str) -> Result<(), ForgeError> {
        let full = self.dir.join(path);
        if let Some(parent) = full.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&full, text).await?;
        let committed = async {
            self.git(&["add", "--", path]).await?;
            self.git(&[
                "commit",
                "--quiet",
                &format!("--message={message}"),
                "--",
                path,
            ])
            .await
        }
        .await;
        if committed.is_err() {
            // Leave the tree as it was: unstage and remove the new file.
            let _ = self
                .run(&["reset", "--quiet", "--", path], None, None)
                .await;
            let _ = tokio::fs::remove_file(&full).await;
        }
        committed.map(|_| ())
    }
}

impl GitForge {
    /// A forge keeping its repositories under `root` (e.g. [`DEFAULT_ROOT`]),
    /// stamping `created` with `clock`'s time.
    pub fn new(root: impl AsRef<Path>, clock: Clock) -> Result<Self, ForgeError> {
        let root = std::path::absolute(root.as_ref())?;
        Ok(Self {
            root,
            clock,
            locks: Mutex::new(HashMap::new()),
            seeds: HashMap::new(),
            remotes: HashMap::new(),
        })
    }

    /// Pull-request branches of `repo` are also pushed to `url` (a remote
    /// repository: `ssh://`, `https://`, `git@host:path` or a local path).
    pub fn with_remote(mut self, repo: &str, url: &str) -> Result<Self, ForgeError> {
        check_repo(repo)?;
        check_remote(url)?;
        self.remotes.insert(repo.to_string(), url.to_string());
        Ok(self)
    }

    /// Repository `repo` starts with `files` (path, content) the first time
    /// it is used — after its initial commit, in a commit of their own. An
    /// existing repository is never touched.
    pub fn with_seed(
        mut self,
        repo: &str,
        files: Vec<(String, String)>,
    ) -> Result<Self, ForgeError> {
        check_repo(repo)?;
        for (path, _) in &files {
            super::check_path(path)?;
        }
        self.seeds.insert(repo.to_string(), files);
        Ok(self)
    }

    /// The folder of repository `repo` (`owner/name`).
    pub fn repo_path(&self, repo: &str) -> Result<PathBuf, ForgeError> {
        let (owner, name) = check_repo(repo)?;
        Ok(self.root.join(owner).join(name))
    }

    /// The lock serialising operations on `repo`.
    fn lock(&self, repo: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(repo.to_string()).or_default().clone()
    }

    /// The repository, created with an initial commit on first use.
    async fn open(&self, repo: &str) -> Result<Repo, ForgeError> {
        let (owner, _) = check_repo(repo)?;
        let dir = self.repo_path(repo)?;
        let git = Repo {
            ceiling: self.root.join(owner),
            dir,
        };
        if tokio::fs::metadata(git.dir.join(".git")).await.is_ok() {
            return Ok(git);
        }
        tokio::fs::create_dir_all(&git.dir).await?;
        git.git(&["init", "--quiet", "--initial-branch=main"])
            .await?;
        let readme = format!(
            "# {repo}\n\nIssues (`issues/`) and pull requests (`pulls/`) opened by Watchkeeper.\n\
             Close an issue by setting `state: closed` in its front matter and committing.\n"
        );
        git.commit_file("README.md", &readme, "Initial commit")
            .await?;
        if let Some(files) = self.seeds.get(repo).filter(|f| !f.is_empty()) {
            let mut add = vec!["add", "--"];
            for (path, text) in files {
                let full = git.dir.join(path);
                if let Some(parent) = full.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                tokio::fs::write(&full, text).await?;
                add.push(path.as_str());
            }
            git.git(&add).await?;
            git.git(&["commit", "--quiet", "--message=Seed example manifests"])
                .await?;
        }
        Ok(git)
    }

    fn file_url(dir: &Path, path: &str) -> String {
        format!("file://{}", dir.join(path).display())
    }

    async fn open_issue_(&self, repo: &str, issue: &NewIssue) -> Result<IssueRef, ForgeError> {
        check_repo(repo)?;
        let lock = self.lock(repo);
        let _guard = lock.lock().await;
        let git = self.open(repo).await?;
        let branch = git.default_branch().await?;
        let number = next_number(&git.records(&branch, "issues").await?);
        let front = IssueFront {
            number,
            title: one_line(&issue.title),
            state: "open".into(),
            labels: issue.labels.clone(),
            assignees: issue.assignees.clone(),
            created: self.clock.now().to_rfc3339(),
        };
        let path = format!("issues/{number}-{}.md", slug(&issue.title, "issue"));
        let text = document(&front, &issue.body)?;
        git.commit_file(
            &path,
            &text,
            &format!("Issue #{number}: {}", one_line(&issue.title)),
        )
        .await?;
        Ok(IssueRef {
            number,
            url: Self::file_url(&git.dir, &path),
        })
    }

    async fn issue_state_(&self, repo: &str, number: u64) -> Result<IssueState, ForgeError> {
        check_repo(repo)?;
        let lock = self.lock(repo);
        let _guard = lock.lock().await;
        let git = self.open(repo).await?;
        let branch = git.default_branch().await?;
        let what = format!("issue #{number} of {repo}");
        let (_, text) = git.record(&branch, "issues", number, &what).await?;
        let front: IssueFront = front_matter(&text, &what)?;
        parse_state(&front.state, &what)
    }

    async fn find_issue_(&self, repo: &str, marker: &str) -> Result<Option<IssueRef>, ForgeError> {
        check_repo(repo)?;
        if marker.trim().is_empty() || marker.contains(['\n', '\r', '\0']) {
            return Err(ForgeError::Invalid(
                "an issue marker must be one non-empty line".into(),
            ));
        }
        let lock = self.lock(repo);
        let _guard = lock.lock().await;
        let git = self.open(repo).await?;
        let branch = git.default_branch().await?;
        let rev = format!("refs/heads/{branch}");
        let output = git
            .run(
                &["grep", "-l", "-F", "-e", marker, &rev, "--", "issues/"],
                None,
                None,
            )
            .await?;
        // Exit 1 with no output: nothing matched.
        if !output.ok && !output.stderr.trim().is_empty() {
            return Err(ForgeError::Git(format!(
                "`git grep` failed: {}",
                output.stderr.trim()
            )));
        }
        let found = output
            .stdout
            .lines()
            .filter_map(|line| {
                let path = line.strip_prefix(&rev)?.strip_prefix(':')?;
                let file = path.strip_prefix("issues/")?;
                let number: u64 = file.split_once('-')?.0.parse().ok()?;
                Some((number, path.to_string()))
            })
            .min_by_key(|(number, _)| *number);
        Ok(found.map(|(number, path)| IssueRef {
            number,
            url: Self::file_url(&git.dir, &path),
        }))
    }

    /// Commits `pr.files` on `pr.branch` (from its tip, or `base` when new)
    /// without touching the working tree; returns the branch's head.
    async fn commit_branch(
        &self,
        git: &Repo,
        pr: &NewPullRequest,
        base_head: &str,
    ) -> Result<String, ForgeError> {
        let branch_ref = format!("refs/heads/{}", pr.branch);
        let existing = git.commit_of(&branch_ref).await?;
        let parent = existing.clone().unwrap_or_else(|| base_head.to_string());
        let index = git
            .dir
            .join(".git")
            .join(format!("watchkeeper-{:016x}.index", rand::random::<u64>()));
        let result = async {
            git.git_with(&["read-tree", &parent], None, Some(&index))
                .await?;
            for file in &pr.files {
                let blob = git
                    .git_with(
                        &["hash-object", "-w", "--stdin"],
                        Some(file.content.as_bytes()),
                        None,
                    )
                    .await?;
                let info = format!("100644,{blob},{}", file.path);
                git.git_with(
                    &["update-index", "--add", "--cacheinfo", &info],
                    None,
                    Some(&index),
                )
                .await?;
            }
            let tree = git.git_with(&["write-tree"], None, Some(&index)).await?;
            let parent_tree = git
                .git(&["rev-parse", &format!("{parent}^{{tree}}")])
                .await?;
            if tree == parent_tree {
                return Ok(parent.clone());
            }
            let message = match &pr.commit_message {
                Some(message) if !message.trim().is_empty() => format!("{}\n", message.trim_end()),
                _ => format!("{}\n", one_line(&pr.title)),
            };
            let commit = git
                .git_with(
                    &["commit-tree", &tree, "-p", &parent, "-F", "-"],
                    Some(message.as_bytes()),
                    None,
                )
                .await?;
            // Moves the branch only if it is still where we found it.
            let old = existing.clone().unwrap_or_else(|| "0".repeat(parent.len()));
            git.git(&["update-ref", &branch_ref, &commit, &old]).await?;
            Ok(commit)
        }
        .await;
        let _ = tokio::fs::remove_file(&index).await;
        result
    }

    async fn open_pull_request_(
        &self,
        repo: &str,
        pr: &NewPullRequest,
    ) -> Result<PullRef, ForgeError> {
        check_repo(repo)?;
        check_pull_request(pr)?;
        let lock = self.lock(repo);
        let _guard = lock.lock().await;
        let git = self.open(repo).await?;
        let default = git.default_branch().await?;
        let base = pr.base.clone().unwrap_or_else(|| default.clone());
        if pr.branch == default || pr.branch == base {
            return Err(ForgeError::Invalid(format!(
                "a pull request needs its own branch, not `{}`",
                pr.branch
            )));
        }
        // One pull request per branch: an earlier attempt's record wins.
        let branch_slug = slug(&pr.branch, "branch");
        for (number, file) in git.records(&default, "pulls").await? {
            if !file.ends_with(&format!("-{branch_slug}.md")) {
                continue;
            }
            let path = format!("pulls/{file}");
            let text = git
                .git(&["show", &format!("refs/heads/{default}:{path}")])
                .await?;
            let front: PullFront = front_matter(&text, &path)?;
            if front.branch == pr.branch {
                return Ok(PullRef {
                    number,
                    url: Self::file_url(&git.dir, &path),
                    branch: pr.branch.clone(),
                    notes: Vec::new(),
                });
            }
        }
        let base_head = git
            .commit_of(&format!("refs/heads/{base}"))
            .await?
            .ok_or_else(|| ForgeError::NotFound(format!("branch `{base}` of {repo}")))?;
        let head = self.commit_branch(&git, pr, &base_head).await?;
        if let Some(url) = self.remotes.get(repo) {
            // Idempotent: the same commit again is "up to date".
            git.git(&[
                "push",
                "--quiet",
                "--",
                url,
                &format!("{head}:refs/heads/{}", pr.branch),
            ])
            .await?;
        }
        if git
            .is_ancestor(&head, &format!("refs/heads/{base}"))
            .await?
        {
            return Err(ForgeError::Invalid(format!(
                "branch `{}` has nothing to merge into `{base}`: the files already have this content",
                pr.branch
            )));
        }
        let number = next_number(&git.records(&default, "pulls").await?);
        let front = PullFront {
            number,
            title: one_line(&pr.title),
            branch: pr.branch.clone(),
            base,
            head,
            state: "open".into(),
            labels: pr.labels.clone(),
            reviewers: pr.reviewers.clone(),
            created: self.clock.now().to_rfc3339(),
        };
        let path = format!("pulls/{number}-{branch_slug}.md");
        git.commit_file(
            &path,
            &document(&front, &pr.body)?,
            &format!("Pull request #{number}: {}", one_line(&pr.title)),
        )
        .await?;
        let mut notes = Vec::new();
        if pr.auto_merge && front.base != default {
            notes.push(format!(
                "auto-merge on the git forge merges only into `{default}`; merge `{}` yourself",
                pr.branch
            ));
        }
        if pr.auto_merge && front.base == default {
            // No checks here: merge at once, in the checked-out default branch.
            let message = format!("Merge pull request #{number}: {}", one_line(&pr.title));
            let merged = git
                .git(&[
                    "merge",
                    "--no-ff",
                    "--quiet",
                    &format!("--message={message}"),
                    &format!("refs/heads/{}", pr.branch),
                ])
                .await;
            if let Err(err) = merged {
                let _ = git.run(&["merge", "--abort"], None, None).await;
                tracing::warn!(repo, branch = pr.branch, error = %err, "auto-merge failed; the pull request stays open");
                notes.push(format!(
                    "auto-merge failed ({err}); the pull request stays open"
                ));
            }
        }
        Ok(PullRef {
            number,
            url: Self::file_url(&git.dir, &path),
            branch: pr.branch.clone(),
            notes,
        })
    }

    async fn read_file_(
        &self,
        repo: &str,
        branch: Option<&str>,
        path: &str,
    ) -> Result<Option<String>, ForgeError> {
        check_repo(repo)?;
        super::check_path(path)?;
        let lock = self.lock(repo);
        let _guard = lock.lock().await;
        let git = self.open(repo).await?;
        let branch = match branch {
            Some(branch) => {
                check_branch(branch)?;
                branch.to_string()
            }
            None => git.default_branch().await?,
        };
        if git
            .commit_of(&format!("refs/heads/{branch}"))
            .await?
            .is_none()
        {
            return Err(ForgeError::NotFound(format!("branch `{branch}` of {repo}")));
        }
        let spec = format!("refs/heads/{branch}:{path}");
        let exists = git.run(&["cat-file", "-e", &spec], None, None).await?;
        if !exists.ok {
            return Ok(None);
        }
        let output = git.run(&["cat-file", "blob", &spec], None, None).await?;
        if !output.ok {
            return Err(ForgeError::Git(format!(
                "cannot read {path}: {}",
                output.stderr.trim()
            )));
        }
        Ok(Some(output.stdout))
    }

    async fn pull_state_(&self, repo: &str, number: u64) -> Result<PullState, ForgeError> {
        check_repo(repo)?;
        let lock = self.lock(repo);
        let _guard = lock.lock().await;
        let git = self.open(repo).await?;
        let default = git.default_branch().await?;
        let what = format!("pull request #{number} of {repo}");
        let (_, text) = git.record(&default, "pulls", number, &what).await?;
        let front: PullFront = front_matter(&text, &what)?;
        check_branch(&front.branch)?;
        check_branch(&front.base)?;
        // The branch's tip, or the recorded head once the branch is deleted.
        let tip = match git
            .commit_of(&format!("refs/heads/{}", front.branch))
            .await?
        {
            Some(tip) => Some(tip),
            None if front.head.bytes().all(|b| b.is_ascii_hexdigit()) && !front.head.is_empty() => {
                git.commit_of(&front.head).await?
            }
            None => None,
        };
        let base = format!("refs/heads/{}", front.base);
        if let Some(tip) = tip
            && git.commit_of(&base).await?.is_some()
            && git.is_ancestor(&tip, &base).await?
        {
            return Ok(PullState::Merged);
        }
        Ok(match parse_state(&front.state, &what)? {
            IssueState::Open => PullState::Open,
            IssueState::Closed => PullState::Closed,
        })
    }
}

impl Forge for GitForge {
    fn kind(&self) -> &'static str {
        "git"
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

/// Checks a remote's address: no option, no shell, no control characters.
pub fn check_remote(url: &str) -> Result<(), ForgeError> {
    let scheme_ok = ["ssh://", "https://", "http://", "file://", "git://"]
        .iter()
        .any(|s| url.starts_with(s))
        || url.starts_with('/')
        || (url.contains('@') && url.contains(':'));
    if !scheme_ok
        || url.starts_with('-')
        || url.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ForgeError::Invalid(format!(
            "`{url}` is not a git remote: write ssh://…, https://…, git@host:path or an absolute path"
        )));
    }
    Ok(())
}

/// One past the highest number in use.
fn next_number(records: &[(u64, String)]) -> u64 {
    records.iter().map(|(n, _)| *n).max().unwrap_or(0) + 1
}

/// A title on one line, without control characters.
fn one_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let line = line.trim();
    if line.is_empty() {
        "(untitled)".to_string()
    } else {
        line.to_string()
    }
}

/// A Markdown document: YAML front matter, then the body.
fn document<T: Serialize>(front: &T, body: &str) -> Result<String, ForgeError> {
    let yaml = serde_yaml::to_string(front)
        .map_err(|e| ForgeError::Invalid(format!("could not write the front matter: {e}")))?;
    Ok(format!("---\n{yaml}---\n\n{}\n", body.trim_end()))
}

/// The front matter of a document.
fn front_matter<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, ForgeError> {
    let malformed = |why: String| {
        ForgeError::Git(format!(
            "the file of {what} has no readable front matter ({why}); fix it and commit"
        ))
    };
    let text = text.replace("\r\n", "\n");
    let rest = text
        .strip_prefix("---\n")
        .ok_or_else(|| malformed("it must start with a `---` line".into()))?;
    let end = rest
        .find("\n---")
        .ok_or_else(|| malformed("no closing `---` line".into()))?;
    serde_yaml::from_str(&rest[..end]).map_err(|e| malformed(e.to_string()))
}

fn parse_state(state: &str, what: &str) -> Result<IssueState, ForgeError> {
    match state.trim().to_ascii_lowercase().as_str() {
        "open" => Ok(IssueState::Open),
        "closed" => Ok(IssueState::Closed),
        other => Err(ForgeError::Git(format!(
            "{what} has state `{other}`; it must be `open` or `closed`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_through_their_front_matter() {
        let front = IssueFront {
            number: 7,
            title: "state: closed\n---\n".into(),
            state: "open".into(),
            labels: vec!["postmortem".into()],
            assignees: vec![],
            created: "2026-03-02T09:00:00+00:00".into(),
        };
        let text = document(&front, "Body\n---\nstate: closed\n").unwrap();
        let read: IssueFront = front_matter(&text, "issue #7").unwrap();
        assert_eq!(read.state, "open");
        assert_eq!(read.title, "state: closed\n---\n");
        assert_eq!(read.number, 7);
        assert!(front_matter::<IssueFront>("no front matter", "x").is_err());
    }

    #[test]
    fn remotes_are_addresses_not_options() {
        for ok in [
            "ssh://git@example.com/platform/gitops.git",
            "git@example.com:platform/gitops.git",
            "/srv/git/gitops.git",
            "https://example.com/x.git",
        ] {
            assert!(check_remote(ok).is_ok(), "{ok}");
        }
        for bad in [
            "--upload-pack=touch /tmp/x",
            "ext::sh -c id",
            "gitops",
            "ssh://x y",
            "",
        ] {
            assert!(check_remote(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn titles_become_one_line() {
        assert_eq!(one_line("a\nb\tc"), "a b c");
        assert_eq!(one_line("\n"), "(untitled)");
    }
}
