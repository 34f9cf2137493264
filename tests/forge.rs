//! Forges end to end: `GitHubForge` against a fake GitHub REST API
//! (`support::fake_github`), `GitForge` against real repositories in a
//! temporary folder (checked with the `git` CLI), and the outbox's
//! `ForgeSink` finding an in-doubt issue instead of opening it twice.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::fake_github::{Failure, FakeGitHub};
use support::monday_morning;
use watchkeeper::clock::Clock;
use watchkeeper::forge::{
    FileChange, Forge, ForgeError, GitForge, GitHubAuth, GitHubForge, IssueState, NewIssue,
    NewPullRequest, PullState,
};
use watchkeeper::outbox::forge::{ForgeEffect, ForgeSink, issue_marker};
use watchkeeper::outbox::{Delivery, Effect, Sink};
use watchkeeper::store::outbox::OutboxItem;

const TOKEN: &str = "ghp_test_token";
const REPO: &str = "acme-platform/postmortems";

async fn github() -> (FakeGitHub, GitHubForge) {
    let fake = FakeGitHub::start(TOKEN).await;
    fake.create_repo(REPO, "main");
    let forge = GitHubForge::new(&fake.api_url, GitHubAuth::Token(TOKEN.into())).unwrap();
    (fake, forge)
}

fn issue(title: &str) -> NewIssue {
    NewIssue {
        title: title.into(),
        body: "## Summary\n\nThe database fell over.".into(),
        labels: vec!["postmortem".into()],
        assignees: vec!["anna".into()],
    }
}

fn postmortem_pr(branch: &str) -> NewPullRequest {
    NewPullRequest {
        branch: branch.into(),
        base: None,
        title: "Postmortem: database outage".into(),
        body: "Adds the postmortem of 2 March.".into(),
        files: vec![
            FileChange {
                path: "postmortems/2026-03-02-database.md".into(),
                content: "# Database outage\n\nWhat happened.\n".into(),
            },
            FileChange {
                path: "README.md".into(),
                content: "# Postmortems\n\n- 2026-03-02 database outage\n".into(),
            },
        ],
        labels: vec!["postmortem".into()],
        ..NewPullRequest::default()
    }
}

// ---------------------------------------------------------------- GitHub

#[tokio::test]
async fn github_issue_is_opened_and_its_state_read_back() {
    let (fake, forge) = github().await;
    assert_eq!(forge.kind(), "github");
    let opened = forge
        .open_issue(REPO, &issue("Database outage"))
        .await
        .unwrap();
    assert_eq!(opened.number, 1);
    assert_eq!(
        opened.url,
        format!("{}/{REPO}/issues/1", fake.web_url),
        "html_url, not the API url"
    );
    let stored = fake.issue(REPO, 1).unwrap();
    assert_eq!(stored["title"], "Database outage");
    assert_eq!(stored["labels"][0]["name"], "postmortem");
    assert_eq!(stored["assignees"][0]["login"], "anna");
    assert_eq!(forge.issue_state(REPO, 1).await.unwrap(), IssueState::Open);
    fake.close_issue(REPO, 1);
    assert_eq!(
        forge.issue_state(REPO, 1).await.unwrap(),
        IssueState::Closed
    );
    let missing = forge.issue_state(REPO, 99).await.unwrap_err();
    assert!(matches!(missing, ForgeError::NotFound(_)), "{missing:?}");
    assert!(missing.is_permanent());
    let other = forge
        .issue_state("acme-platform/nope", 1)
        .await
        .unwrap_err();
    assert!(matches!(other, ForgeError::NotFound(_)), "{other:?}");
}

#[tokio::test]
async fn github_find_issue_pages_through_issues_and_skips_pull_requests() {
    let (fake, forge) = github().await;
    let marker = "<!-- watchkeeper:postmortem:42 -->";
    let mut marked = issue("Database outage");
    marked.body = format!("{}\n\n{marker}\n", marked.body);
    let opened = forge.open_issue(REPO, &marked).await.unwrap();
    // 150 newer issues push it to the second page of 100.
    let titles: Vec<String> = (0..150).map(|i| format!("noise {i}")).collect();
    fake.seed_issues(REPO, &titles.iter().map(String::as_str).collect::<Vec<_>>());
    let found = forge.find_issue(REPO, marker).await.unwrap();
    assert_eq!(found, Some(opened));
    assert!(
        fake.count("GET /repositories/{id}/issues") >= 1,
        "followed the Link header: {:?}",
        fake.calls().iter().map(|c| &c.uri).collect::<Vec<_>>()
    );
    assert_eq!(
        forge
            .find_issue(REPO, "<!-- watchkeeper:other -->")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn github_pull_request_creates_branch_commits_files_and_opens_once() {
    let (fake, forge) = github().await;
    let pr = postmortem_pr("watchkeeper/postmortem-42");
    let opened = forge.open_pull_request(REPO, &pr).await.unwrap();
    assert_eq!(opened.branch, "watchkeeper/postmortem-42");
    assert_eq!(opened.url, format!("{}/{REPO}/pull/1", fake.web_url));
    for file in &pr.files {
        assert_eq!(
            fake.file(REPO, &pr.branch, &file.path).as_deref(),
            Some(file.content.as_str()),
            "{} committed on the branch",
            file.path
        );
    }
    assert_eq!(
        fake.file(REPO, "main", "README.md").as_deref(),
        Some("# acme-platform/postmortems\n"),
        "main untouched"
    );
    let log = fake.log(REPO, &pr.branch);
    assert_eq!(log.len(), 3, "initial commit + one per file: {log:?}");
    assert!(log[..2].iter().all(|m| m == &pr.title));
    let stored = fake.issue(REPO, opened.number).unwrap();
    assert_eq!(stored["labels"][0]["name"], "postmortem");
    assert_eq!(
        forge.pull_state(REPO, opened.number).await.unwrap(),
        PullState::Open
    );

    // Again with the same branch: the same pull request, nothing new.
    let again = forge.open_pull_request(REPO, &pr).await.unwrap();
    assert_eq!(again, opened);
    assert_eq!(fake.pull_count(REPO), 1);
    assert_eq!(fake.count("POST /repos/{owner}/{repo}/pulls"), 1);
    assert_eq!(fake.log(REPO, &pr.branch).len(), 3);

    fake.merge_pull(REPO, opened.number);
    assert_eq!(
        forge.pull_state(REPO, opened.number).await.unwrap(),
        PullState::Merged
    );
    assert_eq!(
        fake.file(REPO, "main", "postmortems/2026-03-02-database.md")
            .as_deref(),
        Some("# Database outage\n\nWhat happened.\n")
    );
}

#[tokio::test]
async fn github_pull_request_resumes_where_a_failed_attempt_stopped() {
    let (fake, forge) = github().await;
    let pr = postmortem_pr("watchkeeper/postmortem-7");
    fake.fail("POST /repos/{owner}/{repo}/pulls", [Failure::Status(502)]);
    let err = forge.open_pull_request(REPO, &pr).await.unwrap_err();
    assert!(matches!(err, ForgeError::Transient(_)), "{err:?}");
    assert!(!err.is_permanent());
    assert_eq!(fake.pull_count(REPO), 0);
    assert_eq!(
        fake.log(REPO, &pr.branch).len(),
        3,
        "branch and files exist"
    );

    let opened = forge.open_pull_request(REPO, &pr).await.unwrap();
    assert_eq!(opened.number, 1);
    assert_eq!(fake.pull_count(REPO), 1);
    assert_eq!(
        fake.count("PUT /repos/{owner}/{repo}/contents/{*path}"),
        2,
        "unchanged files are not committed again"
    );
    assert_eq!(fake.count("POST /repos/{owner}/{repo}/git/refs"), 1);

    // A branch whose files already match its base has nothing to merge.
    let mut empty = pr.clone();
    empty.branch = "watchkeeper/nothing".into();
    empty.files = vec![FileChange {
        path: "README.md".into(),
        content: "# acme-platform/postmortems\n".into(),
    }];
    let err = forge.open_pull_request(REPO, &empty).await.unwrap_err();
    assert!(
        matches!(err, ForgeError::Invalid(ref m) if m.contains("No commits between")),
        "{err:?}"
    );
}

/// The connection drops after GitHub carried the call out (the branch is
/// created, a file committed, the pull request opened) and its answer is
/// lost: each is a transient error, and the next attempt finds what exists
/// instead of making it twice.
#[tokio::test]
async fn github_pull_request_survives_connections_dropped_after_each_step() {
    let (fake, forge) = github().await;
    let pr = postmortem_pr("watchkeeper/postmortem-8");
    let steps = [
        "POST /repos/{owner}/{repo}/git/refs",
        "PUT /repos/{owner}/{repo}/contents/{*path}",
        "POST /repos/{owner}/{repo}/pulls",
    ];
    for route in steps {
        fake.fail(route, [Failure::Disconnect]);
        let err = forge.open_pull_request(REPO, &pr).await.unwrap_err();
        assert!(matches!(err, ForgeError::Transient(_)), "{route}: {err:?}");
    }
    let opened = forge.open_pull_request(REPO, &pr).await.unwrap();
    assert_eq!(fake.pull_count(REPO), 1, "one pull request");
    assert_eq!(opened.number, 1);
    assert_eq!(
        fake.log(REPO, &pr.branch).len(),
        3,
        "one commit per file, on one branch"
    );
    assert_eq!(
        fake.count("POST /repos/{owner}/{repo}/git/refs"),
        1,
        "the branch is found, not created again"
    );
}

#[tokio::test]
async fn github_bad_token_is_unauthorized_with_a_clear_message() {
    let (_fake, _) = github().await;
    let forge = GitHubForge::new(&_fake.api_url, GitHubAuth::Token("ghp_wrong".into())).unwrap();
    let err = forge.open_issue(REPO, &issue("x")).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized), "{err:?}");
    assert!(err.is_permanent());
    assert_eq!(
        err.to_string(),
        "the forge refused our credentials (bad or expired token): check GITHUB_TOKEN or the GitHub App settings"
    );
    assert!(matches!(
        GitHubForge::new(&_fake.api_url, GitHubAuth::Token("  ".into())),
        Err(ForgeError::Unauthorized)
    ));
    assert!(matches!(
        GitHubForge::new(&_fake.api_url, GitHubAuth::Token("line\nbreak".into())),
        Err(ForgeError::Unauthorized)
    ));
}

#[tokio::test]
async fn github_rate_limits_and_failures_are_sorted() {
    let (fake, forge) = github().await;
    let route = "POST /repos/{owner}/{repo}/issues";
    fake.fail(
        route,
        [
            Failure::RateLimited { reset_in: 120 },
            Failure::SecondaryRateLimit { retry_after: 30 },
            Failure::Status(503),
        ],
    );
    match forge.open_issue(REPO, &issue("x")).await.unwrap_err() {
        ForgeError::RateLimited {
            retry_after: Some(wait),
        } => assert!(
            (Duration::from_secs(100)..=Duration::from_secs(121)).contains(&wait),
            "{wait:?}"
        ),
        other => panic!("{other:?}"),
    }
    match forge.open_issue(REPO, &issue("x")).await.unwrap_err() {
        ForgeError::RateLimited { retry_after } => {
            assert_eq!(retry_after, Some(Duration::from_secs(30)))
        }
        other => panic!("{other:?}"),
    }
    let err = forge.open_issue(REPO, &issue("x")).await.unwrap_err();
    assert!(matches!(err, ForgeError::Transient(_)), "{err:?}");
    // GitHub's 422, with its message.
    let err = forge.open_issue(REPO, &issue("")).await.unwrap_err();
    match &err {
        ForgeError::Invalid(message) => {
            assert!(message.contains("Validation Failed"), "{message}");
            assert!(message.contains("title"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.issue_count(REPO), 0);
    // Names are checked before anything is sent.
    let calls = fake.calls().len();
    let err = forge.open_issue("../etc", &issue("x")).await.unwrap_err();
    assert!(matches!(err, ForgeError::Invalid(_)), "{err:?}");
    let mut hostile = postmortem_pr("-f");
    assert!(forge.open_pull_request(REPO, &hostile).await.is_err());
    hostile.branch = "ok".into();
    hostile.files[0].path = "../../etc/passwd".into();
    assert!(forge.open_pull_request(REPO, &hostile).await.is_err());
    assert_eq!(fake.calls().len(), calls);
}

/// A fresh RSA key (PKCS#1 PEM, as GitHub hands out) from the `openssl` CLI.
fn rsa_key() -> Option<String> {
    let output = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "2048"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8(output.stdout).unwrap())
}

fn public_key_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let pair = ring::signature::RsaKeyPair::from_der(&der).unwrap();
    use ring::signature::KeyPair;
    pair.public_key().as_ref().to_vec()
}

#[tokio::test]
async fn github_app_gets_an_installation_token_for_the_owner_and_reuses_it() {
    let Some(pem) = rsa_key() else {
        eprintln!("skipping: the openssl CLI is not available to make a test key");
        return;
    };
    let fake = FakeGitHub::start(TOKEN).await;
    fake.create_repo(REPO, "main");
    fake.enable_app(1234, public_key_der(&pem));
    let forge = GitHubForge::new(
        &fake.api_url,
        GitHubAuth::App {
            app_id: 1234,
            private_key_pem: pem.clone(),
        },
    )
    .unwrap();
    let opened = forge
        .open_issue(REPO, &issue("From the App"))
        .await
        .unwrap();
    assert_eq!(
        forge.issue_state(REPO, opened.number).await.unwrap(),
        IssueState::Open
    );
    assert_eq!(fake.count("GET /repos/{owner}/{repo}/installation"), 1);
    assert_eq!(
        fake.count("POST /app/installations/{id}/access_tokens"),
        1,
        "the token is cached"
    );

    // Another App's key is refused.
    let Some(other) = rsa_key() else { return };
    let forge = GitHubForge::new(
        &fake.api_url,
        GitHubAuth::App {
            app_id: 1234,
            private_key_pem: other,
        },
    )
    .unwrap();
    let err = forge.open_issue(REPO, &issue("x")).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized), "{err:?}");
    assert!(matches!(
        GitHubForge::new(
            &fake.api_url,
            GitHubAuth::App {
                app_id: 1,
                private_key_pem: "not a key".into()
            }
        ),
        Err(ForgeError::Invalid(_))
    ));
}

// ---------------------------------------------------------------- git

fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Person",
            "-c",
            "user.email=person@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn local(root: &Path) -> GitForge {
    GitForge::new(root, Clock::virtual_at(monday_morning())).unwrap()
}

#[tokio::test]
async fn git_issue_is_a_committed_markdown_file_closed_by_a_commit() {
    let root = tempfile::tempdir().unwrap();
    let forge = local(root.path());
    assert_eq!(forge.kind(), "git");
    let opened = forge
        .open_issue(REPO, &issue("Database outage"))
        .await
        .unwrap();
    assert_eq!(opened.number, 1);
    let dir = root.path().join(REPO);
    let file = dir.join("issues/1-database-outage.md");
    assert_eq!(opened.url, format!("file://{}", file.display()));
    assert_eq!(
        git(&dir, &["log", "--format=%s %an <%ae>"]),
        "Issue #1: Database outage Watchkeeper <watchkeeper@localhost>\nInitial commit Watchkeeper <watchkeeper@localhost>\n"
    );
    let shown = git(&dir, &["show", "HEAD:issues/1-database-outage.md"]);
    assert!(
        shown.starts_with("---\nnumber: 1\ntitle: Database outage\nstate: open\n"),
        "{shown}"
    );
    assert!(shown.contains("labels:\n- postmortem\n"), "{shown}");
    assert!(shown.contains("assignees:\n- anna\n"), "{shown}");
    assert!(
        shown.contains("created: 2026-03-02T09:00:00+00:00\n"),
        "{shown}"
    );
    assert!(
        shown.ends_with("---\n\n## Summary\n\nThe database fell over.\n"),
        "{shown}"
    );
    assert_eq!(
        git(&dir, &["status", "--porcelain"]),
        "",
        "nothing left uncommitted"
    );

    let second = forge
        .open_issue(REPO, &issue("Cache stampede"))
        .await
        .unwrap();
    assert_eq!(second.number, 2);
    assert_eq!(forge.issue_state(REPO, 1).await.unwrap(), IssueState::Open);

    // A person closes it: edit the front matter, commit.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("state: open", "state: closed")).unwrap();
    assert_eq!(
        forge.issue_state(REPO, 1).await.unwrap(),
        IssueState::Open,
        "not until it is committed"
    );
    git(&dir, &["commit", "-q", "-am", "Close #1"]);
    assert_eq!(
        forge.issue_state(REPO, 1).await.unwrap(),
        IssueState::Closed
    );
    assert_eq!(forge.issue_state(REPO, 2).await.unwrap(), IssueState::Open);
    assert!(matches!(
        forge.issue_state(REPO, 3).await,
        Err(ForgeError::NotFound(_))
    ));
}

#[tokio::test]
async fn git_find_issue_finds_the_marker() {
    let root = tempfile::tempdir().unwrap();
    let forge = local(root.path());
    let marker = issue_marker("postmortem:42:issue");
    let mut marked = issue("Database outage");
    marked.body = format!("{}\n\n{marker}\n", marked.body);
    forge.open_issue(REPO, &issue("Earlier")).await.unwrap();
    let opened = forge.open_issue(REPO, &marked).await.unwrap();
    assert_eq!(forge.find_issue(REPO, &marker).await.unwrap(), Some(opened));
    assert_eq!(
        forge
            .find_issue(REPO, &issue_marker("postmortem:43:issue"))
            .await
            .unwrap(),
        None
    );
    // A marker that looks like an option is searched for, not obeyed.
    assert_eq!(forge.find_issue(REPO, "--all-match").await.unwrap(), None);
    assert!(forge.find_issue(REPO, "").await.is_err());
}

#[tokio::test]
async fn git_pull_request_is_a_branch_and_a_record_and_merges() {
    let root = tempfile::tempdir().unwrap();
    let forge = local(root.path());
    let pr = postmortem_pr("watchkeeper/postmortem-42");
    let opened = forge.open_pull_request(REPO, &pr).await.unwrap();
    assert_eq!(opened.number, 1);
    let dir = root.path().join(REPO);
    let record = dir.join("pulls/1-watchkeeper-postmortem-42.md");
    assert_eq!(opened.url, format!("file://{}", record.display()));
    for file in &pr.files {
        assert_eq!(
            git(&dir, &["show", &format!("{}:{}", pr.branch, file.path)]),
            file.content
        );
    }
    assert_eq!(
        git(&dir, &["log", "--format=%s", &pr.branch]),
        "Postmortem: database outage\nInitial commit\n"
    );
    assert!(
        !dir.join("postmortems").exists(),
        "the working tree (main) is not touched by the branch"
    );
    let shown = git(&dir, &["show", "main:pulls/1-watchkeeper-postmortem-42.md"]);
    assert!(
        shown.contains("branch: watchkeeper/postmortem-42\n"),
        "{shown}"
    );
    assert!(shown.contains("base: main\n"), "{shown}");
    assert!(shown.contains("state: open\n"), "{shown}");
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    assert_eq!(forge.pull_state(REPO, 1).await.unwrap(), PullState::Open);

    // The same branch again: the same pull request, no new commit.
    let head = git(&dir, &["rev-parse", &pr.branch]);
    assert_eq!(forge.open_pull_request(REPO, &pr).await.unwrap(), opened);
    assert_eq!(git(&dir, &["rev-parse", &pr.branch]), head);
    assert_eq!(
        git(&dir, &["ls-tree", "--name-only", "main", "pulls/"])
            .lines()
            .count(),
        1
    );

    // A person merges it.
    git(&dir, &["merge", "-q", "--no-ff", "--no-edit", &pr.branch]);
    assert_eq!(forge.pull_state(REPO, 1).await.unwrap(), PullState::Merged);
    // Still merged after the branch is deleted.
    git(&dir, &["branch", "-q", "-d", &pr.branch]);
    assert_eq!(forge.pull_state(REPO, 1).await.unwrap(), PullState::Merged);

    // Another one, closed by a person without merging.
    let second = forge
        .open_pull_request(REPO, &postmortem_pr("watchkeeper/postmortem-43"))
        .await;
    // Its files are now on main already: nothing to merge.
    assert!(matches!(second, Err(ForgeError::Invalid(_))), "{second:?}");
    let mut third = postmortem_pr("watchkeeper/postmortem-44");
    third.files[0].content = "# Another outage\n".into();
    let third = forge.open_pull_request(REPO, &third).await.unwrap();
    assert_eq!(third.number, 2);
    let path = dir.join("pulls/2-watchkeeper-postmortem-44.md");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("state: open", "state: closed")).unwrap();
    git(&dir, &["commit", "-q", "-am", "Close pull request #2"]);
    assert_eq!(forge.pull_state(REPO, 2).await.unwrap(), PullState::Closed);
}

#[tokio::test]
async fn git_hostile_names_cannot_escape_the_repository_or_become_options() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("forge");
    let forge = local(&root);
    let a = forge
        .open_issue(REPO, &issue("../../etc/passwd"))
        .await
        .unwrap();
    let b = forge.open_issue(REPO, &issue("-rf")).await.unwrap();
    let c = forge
        .open_issue(REPO, &issue("--exec=touch /tmp/pwned\n---\nstate: closed"))
        .await
        .unwrap();
    let dir = root.join(REPO);
    assert!(a.url.ends_with("/issues/1-etc-passwd.md"), "{}", a.url);
    assert!(b.url.ends_with("/issues/2-rf.md"), "{}", b.url);
    assert!(
        c.url
            .ends_with("/issues/3-exec-touch-tmp-pwned-state-closed.md"),
        "{}",
        c.url
    );
    assert_eq!(forge.issue_state(REPO, 3).await.unwrap(), IssueState::Open);
    assert_eq!(
        git(&dir, &["log", "--format=%s", "-3"]),
        "Issue #3: --exec=touch /tmp/pwned --- state: closed\nIssue #2: -rf\nIssue #1: ../../etc/passwd\n"
    );

    for repo in [
        "../evil",
        "acme/../../evil",
        "/etc/x",
        "-rf/x",
        "acme/-rf",
        "acme/.git",
    ] {
        let err = forge.open_issue(repo, &issue("x")).await.unwrap_err();
        assert!(matches!(err, ForgeError::Invalid(_)), "{repo}: {err:?}");
    }
    for branch in [
        "-f",
        "--upload-pack=evil",
        "../x",
        "main..x",
        "x.lock",
        "a b",
    ] {
        let err = forge
            .open_pull_request(REPO, &postmortem_pr(branch))
            .await
            .unwrap_err();
        assert!(matches!(err, ForgeError::Invalid(_)), "{branch}: {err:?}");
    }
    for path in [
        "../outside.md",
        "/etc/passwd",
        ".git/hooks/post-commit",
        "-rf",
        "a/../../b",
    ] {
        let mut pr = postmortem_pr("watchkeeper/x");
        pr.files[0].path = path.into();
        let err = forge.open_pull_request(REPO, &pr).await.unwrap_err();
        assert!(matches!(err, ForgeError::Invalid(_)), "{path}: {err:?}");
    }
    let mut onto_main = postmortem_pr("main");
    onto_main.base = None;
    assert!(matches!(
        forge.open_pull_request(REPO, &onto_main).await,
        Err(ForgeError::Invalid(_))
    ));
    // Nothing was written outside the forge's root, nothing left in the tree.
    let mut outside: Vec<_> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    outside.sort();
    assert_eq!(outside, vec![std::ffi::OsString::from("forge")]);
    assert_eq!(
        std::fs::read_dir(&root).unwrap().count(),
        1,
        "only the one owner folder"
    );
    assert_eq!(git(&dir, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&dir, &["branch", "--format=%(refname:short)"]),
        "main\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_concurrent_calls_get_distinct_numbers() {
    let root = tempfile::tempdir().unwrap();
    let forge = Arc::new(local(root.path()));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let forge = forge.clone();
            tokio::spawn(async move {
                forge
                    .open_issue(REPO, &issue(&format!("Incident {i}")))
                    .await
                    .unwrap()
                    .number
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=8).collect::<Vec<u64>>());
    let dir = root.path().join(REPO);
    assert_eq!(git(&dir, &["log", "--format=%s"]).lines().count(), 9);
}

// ---------------------------------------------------------------- the sink

fn item(key: &str, effect: &ForgeEffect, attempts: i64, in_doubt: bool) -> OutboxItem {
    OutboxItem {
        id: 1,
        key: key.into(),
        lane: effect.lane(),
        sink: ForgeEffect::SINK.into(),
        payload: serde_json::to_value(effect).unwrap(),
        attempts,
        in_doubt,
        created_at: monday_morning(),
    }
}

fn done(delivery: Delivery) -> serde_json::Value {
    match delivery {
        Delivery::Done(value) => value,
        other => panic!("not delivered: {other:?}"),
    }
}

#[tokio::test]
async fn sink_in_doubt_returns_the_existing_issue_instead_of_a_duplicate() {
    let (fake, github) = github().await;
    let root = tempfile::tempdir().unwrap();
    let forges: HashMap<String, Arc<dyn Forge>> = HashMap::from([
        ("github".to_string(), Arc::new(github) as Arc<dyn Forge>),
        (
            "local".to_string(),
            Arc::new(local(root.path())) as Arc<dyn Forge>,
        ),
    ]);
    let sink = ForgeSink::new(forges);
    for forge in ["github", "local"] {
        let effect = ForgeEffect::OpenIssue {
            forge: forge.into(),
            repo: REPO.into(),
            issue: issue("Database outage"),
        };
        let key = "postmortem:42:issue";
        let first = done(sink.deliver(&item(key, &effect, 1, false)).await);
        assert_eq!(first["number"], 1, "{forge}");
        // The worker died before recording it: the next attempt is in doubt.
        let again = done(sink.deliver(&item(key, &effect, 2, true)).await);
        assert_eq!(again, first, "{forge}");
        // A different effect in doubt that never happened is opened.
        let other = done(
            sink.deliver(&item("postmortem:43:issue", &effect, 2, true))
                .await,
        );
        assert_eq!(other["number"], 2, "{forge}");
    }
    assert_eq!(fake.issue_count(REPO), 2);
    assert_eq!(fake.count("POST /repos/{owner}/{repo}/issues"), 2);
    let body = fake.issue(REPO, 1).unwrap()["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        body.ends_with("\n\n<!-- watchkeeper:postmortem:42:issue -->\n"),
        "{body}"
    );
    let dir = root.path().join(REPO);
    assert_eq!(
        std::fs::read_dir(dir.join("issues")).unwrap().count(),
        2,
        "no duplicate file"
    );

    // Pull requests are idempotent by branch, in doubt or not.
    let effect = ForgeEffect::OpenPullRequest {
        forge: "github".into(),
        repo: REPO.into(),
        pr: postmortem_pr("watchkeeper/postmortem-42"),
    };
    let first = done(sink.deliver(&item("pm:42:pr", &effect, 1, false)).await);
    let again = done(sink.deliver(&item("pm:42:pr", &effect, 2, true)).await);
    assert_eq!(first, again);
    assert_eq!(first["branch"], "watchkeeper/postmortem-42");
    assert_eq!(fake.pull_count(REPO), 1);
}

#[tokio::test]
async fn sink_sorts_failures_into_retries_and_refusals() {
    let (fake, github) = github().await;
    let sink = ForgeSink::new(HashMap::from([(
        "github".to_string(),
        Arc::new(github) as Arc<dyn Forge>,
    )]));
    let effect = |forge: &str| ForgeEffect::OpenIssue {
        forge: forge.into(),
        repo: REPO.into(),
        issue: issue("x"),
    };
    fake.fail(
        "POST /repos/{owner}/{repo}/issues",
        [
            Failure::SecondaryRateLimit { retry_after: 45 },
            Failure::Status(500),
        ],
    );
    match sink.deliver(&item("k", &effect("github"), 1, false)).await {
        Delivery::Retry {
            after, in_doubt, ..
        } => {
            assert_eq!(after, Some(Duration::from_secs(45)));
            assert!(!in_doubt);
        }
        other => panic!("{other:?}"),
    }
    match sink.deliver(&item("k", &effect("github"), 2, false)).await {
        Delivery::Retry {
            after, in_doubt, ..
        } => {
            assert_eq!(after, None, "the outbox's backoff");
            assert!(in_doubt, "a 500 may have created it");
        }
        other => panic!("{other:?}"),
    }
    match sink.deliver(&item("k", &effect("gitlab"), 1, false)).await {
        Delivery::Failed(reason) => assert!(reason.contains("gitlab"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let bad = ForgeSink::new(HashMap::from([(
        "github".to_string(),
        Arc::new(GitHubForge::new(&fake.api_url, GitHubAuth::Token("nope".into())).unwrap())
            as Arc<dyn Forge>,
    )]));
    match bad.deliver(&item("k", &effect("github"), 1, false)).await {
        Delivery::Failed(reason) => assert!(reason.contains("credentials"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// Through the real outbox on SQLite: the worker dies right after GitHub
/// accepted the issue; after the lease its successor finds the issue by its
/// marker and records it, so the issue exists once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_crash_after_opening_an_issue_still_opens_it_once() {
    use watchkeeper::faults::{FaultPlan, FaultPoint};
    use watchkeeper::metrics::Metrics;
    use watchkeeper::outbox::Outbox;
    use watchkeeper::store::Store;
    use watchkeeper::work::Work;

    let (fake, github) = github().await;
    let github: Arc<dyn Forge> = Arc::new(github);
    let sink = || -> Arc<dyn Sink> {
        Arc::new(ForgeSink::new(HashMap::from([(
            "github".to_string(),
            github.clone(),
        )])))
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("wk.db").display()))
        .await
        .unwrap();
    let clock = Clock::virtual_at(monday_morning());
    let lease = chrono::Duration::seconds(60);
    let plan = Arc::new(FaultPlan::default());
    plan.crash_once(FaultPoint::OutboxSent, "postmortem:42");
    let outbox = |instance: &str, faults: Option<Arc<FaultPlan>>| {
        Outbox::builder(
            store.clone(),
            clock.clone(),
            instance,
            lease,
            Metrics::default(),
        )
        .sink::<ForgeEffect>(sink())
        .faults(faults.map(|f| f as Arc<dyn watchkeeper::faults::Faults>))
        .build()
    };

    let effect = ForgeEffect::OpenIssue {
        forge: "github".into(),
        repo: REPO.into(),
        issue: issue("Database outage"),
    };
    let mut work = Work::new(store.clone(), clock.now());
    assert!(work.effect("postmortem:42:issue", &effect).await.unwrap());
    work.commit().await.unwrap();

    let dying = outbox("replica-a", Some(plan.clone()));
    assert_eq!(dying.drain().await.unwrap(), 1);
    assert_eq!(plan.pending(), 0, "it died after sending");
    assert_eq!(fake.issue_count(REPO), 1);
    let state = store
        .outbox_state("postmortem:42:issue")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, "sending", "not recorded: in doubt");

    clock.advance(lease + chrono::Duration::seconds(1));
    let successor = outbox("replica-b", None);
    assert_eq!(successor.drain().await.unwrap(), 1);
    let state = store
        .outbox_state("postmortem:42:issue")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, "delivered");
    let result = state.result.unwrap();
    assert_eq!(result["number"], 1);
    assert_eq!(result["url"], format!("{}/{REPO}/issues/1", fake.web_url));
    assert_eq!(fake.issue_count(REPO), 1, "not opened twice");
    assert_eq!(fake.count("POST /repos/{owner}/{repo}/issues"), 1);
    store.close().await;
}
