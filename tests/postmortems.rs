//! Postmortems end to end: `/wk postmortem` in Slack opens a ticket with the
//! recorded timeline on the embedded git forge (a real repository) or GitHub
//! (a fake of its REST API through octocrab), the link lands in the thread, a
//! second call returns the same ticket, closing the ticket is noticed by the
//! poll or a signed webhook, and the weekly digest lists what is open.

mod support;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::fake_github::FakeGitHub;
use support::{Db, GITHUB_SECRET, GITHUB_TOKEN, TestApp, monday_morning};
use watchkeeper::forge::webhook;
use watchkeeper::store::timeline::{TimelineEntry, thread_subject};

const THREAD: &str = "1772442000.000100"; // Monday 2026-03-02 09:00 UTC
const LINK: &str = "https://acme.slack.com/archives/C0ACME/p1772442000000100";

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=Anna", "-c", "user.email=anna@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// What support intake (#5) records for a thread.
async fn record_thread(app: &TestApp) {
    let subject = thread_subject("C0ACME", THREAD);
    let at = |minutes: i64| monday_morning() + Duration::minutes(minutes);
    for (minutes, kind, actor, text) in [
        (
            0,
            "opened",
            "U9EXT",
            "Request opened: payments are failing](https://evil.example) <script>alert(1)</script> @everyone\n# boom",
        ),
        (4, "claimed", "U0SAM", "Claimed by support"),
        (20, "escalated", "U0SAM", "Escalated to ops-duty"),
        (75, "resolved", "U0ANNA", "Resolved: database failed over"),
    ] {
        app.server
            .store()
            .append_timeline(
                &subject,
                &TimelineEntry {
                    at: at(minutes),
                    kind: kind.into(),
                    actor: Some(actor.into()),
                    text: text.into(),
                },
            )
            .await
            .unwrap();
    }
}

fn thread_posts(app: &TestApp) -> Vec<String> {
    app.slack
        .messages_in("C0ACME")
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(THREAD))
        .map(|m| m.text)
        .collect()
}

fn text_of(reply: &serde_json::Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_string()
}

async fn a_thread_becomes_a_committed_postmortem_tracked_until_closed(db: Db) {
    let forge_root = tempfile::tempdir().unwrap();
    let extra = format!(
        "forges:\n  git:\n    path: {}\npostmortems:\n  repository: platform/postmortems\n  poll: 1h\n  logins:\n    U0ANNA: anna-gh\n",
        forge_root.path().display()
    );
    let start = monday_morning() + Duration::hours(2);
    let Some(app) = TestApp::spawn_virtual_with(db, start, &extra, None).await else {
        return;
    };
    record_thread(&app).await;

    // A customer may not open one.
    let denied = app
        .command("U9EXT", "T9ACME", "C0ACME", &format!("postmortem {LINK}"))
        .await;
    assert!(text_of(&denied).contains(":no_entry:"), "{denied}");

    let reply = app
        .command(
            "U0SAM",
            "T0STAFF",
            "C0ACME",
            &format!("postmortem {LINK} Payments outage sev=sev2 owner=<@U0ANNA|anna>"),
        )
        .await;
    assert!(
        text_of(&reply).contains("Opening postmortem *PM-1*"),
        "{reply}"
    );
    app.settle().await;

    // The ticket is a Markdown file committed to a real repository.
    let repo = forge_root.path().join("platform/postmortems");
    let log = git(&repo, &["log", "--format=%s", "--name-only"]);
    let file = log
        .lines()
        .find(|l| l.starts_with("issues/1-"))
        .unwrap_or_else(|| panic!("{log}"))
        .to_string();
    let body = git(&repo, &["show", &format!("HEAD:{file}")]);
    assert!(body.contains("PM-1: Payments outage"), "{body}");
    assert!(body.contains("ACME Corp"), "{body}");
    assert!(body.contains("SEV2"), "{body}");
    assert!(
        body.contains("anna-gh (Slack U0ANNA)"),
        "owner by forge login: {body}"
    );
    assert!(
        body.contains("| 2026-03-02 09:04 | 2026-03-02 10:04 |"),
        "UTC and Berlin time: {body}"
    );
    assert!(body.contains("1 h 15 min"), "impact window: {body}");
    assert!(
        body.contains("https://slack.com/archives/C0ACME/p1772442000000100"),
        "link back to the thread: {body}"
    );
    assert!(!body.contains("<script>"), "HTML neutralised: {body}");
    assert!(
        body.contains("failing\\](https://evil.example)"),
        "no injected link: {body}"
    );
    assert!(!body.contains("@everyone"), "no mention: {body}");
    assert!(!body.contains("\n# boom"), "no injected heading: {body}");

    // The link is posted in the thread.
    let posts = thread_posts(&app);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].contains("PM-1") && posts[0].contains("file://"),
        "{posts:?}"
    );

    // Asking again gives the same ticket.
    let again = app
        .command("U0ANNA", "T0STAFF", "C0ACME", &format!("postmortem {LINK}"))
        .await;
    assert!(
        text_of(&again).contains("already has postmortem *PM-1*"),
        "{again}"
    );
    app.settle().await;
    let issues = git(&repo, &["ls-tree", "--name-only", "HEAD", "issues/"]);
    assert_eq!(issues.lines().count(), 1, "{issues}");

    let list = app
        .command("U0ANNA", "T0STAFF", "C0OPS", "postmortems")
        .await;
    assert!(text_of(&list).contains("*PM-1*"), "{list}");

    // Monday's digest lists it with its age and owner.
    let next_monday: DateTime<Utc> = "2026-03-09T08:00:00Z".parse().unwrap();
    app.advance(next_monday - app.clock.now()).await;
    // (The ops channel also hears the ops-duty hand-off at that moment.)
    let digest: Vec<String> = app
        .slack
        .messages_in("C0OPS")
        .into_iter()
        .map(|m| m.text)
        .filter(|text| text.contains("postmortem"))
        .collect();
    assert_eq!(digest.len(), 1, "{digest:?}");
    assert!(digest[0].contains("1 open postmortem"), "{digest:?}");
    assert!(
        digest[0].contains("6 days old") && digest[0].contains("<@U0ANNA>"),
        "{digest:?}"
    );

    // Someone closes the ticket in git; the poll notices and says so once.
    git(&repo, &["reset", "--hard", "-q"]);
    let path = repo.join(&file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("state: open", "state: closed", 1)).unwrap();
    git(&repo, &["commit", "-q", "-am", "Close PM-1"]);
    app.advance(Duration::hours(1)).await;
    let posts = thread_posts(&app);
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts[1].contains("was closed"), "{posts:?}");
    app.advance(Duration::hours(1)).await;
    assert_eq!(thread_posts(&app).len(), 2, "announced once");
    let list = app
        .command("U0ANNA", "T0STAFF", "C0OPS", "postmortems")
        .await;
    assert!(text_of(&list).contains("No postmortems open"), "{list}");
    let timeline = app
        .server
        .store()
        .timeline(&thread_subject("C0ACME", THREAD))
        .await
        .unwrap();
    assert!(
        timeline.iter().any(|e| e.kind == "postmortem closed"),
        "{timeline:?}"
    );
    app.stop().await;
}

/// A GitHub `issues` delivery for issue `number` of `repo`, from GitHub's own
/// payload (fixtures), signed with `secret`.
async fn deliver_issue_event(
    app: &TestApp,
    repo: &str,
    number: u64,
    action: &str,
    secret: &str,
) -> (u16, String) {
    let fixture =
        support::repo_path("../shared/fixtures/github/webhooks/issues_opened_webhook_event.json");
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    event["action"] = action.into();
    event["issue"]["number"] = number.into();
    event["issue"]["state"] = if action == "closed" { "closed" } else { "open" }.into();
    event["repository"]["full_name"] = repo.into();
    let body = event.to_string();
    let response = app
        .http
        .post(format!("{}/webhooks/github", app.base))
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header(
            "x-hub-signature-256",
            webhook::sign(secret.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn a_github_ticket_follows_its_issue_through_signed_webhooks(db: Db) {
    let github = FakeGitHub::start(GITHUB_TOKEN).await;
    github.create_repo("acme-platform/postmortems", "main");
    let extra = format!(
        "forges:\n  github:\n    api_url: {}\npostmortems:\n  forge: github\n  repository: acme-platform/postmortems\n  labels: [postmortem, customer-impact]\n  logins:\n    U0ANNA: anna-gh\n",
        github.api_url
    );
    let start = monday_morning() + Duration::hours(2);
    let Some(app) = TestApp::spawn_virtual_with(db, start, &extra, None).await else {
        return;
    };
    record_thread(&app).await;
    let reply = app
        .command(
            "U0ANNA",
            "T0STAFF",
            "C0ACME",
            &format!("postmortem {LINK} Payments outage sev=SEV1"),
        )
        .await;
    assert!(text_of(&reply).contains("*PM-1*"), "{reply}");
    app.settle().await;

    let issue = github
        .issue("acme-platform/postmortems", 1)
        .expect("issue opened");
    assert_eq!(issue["title"], "PM-1: Payments outage");
    let labels: Vec<&str> = issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(labels, ["postmortem", "customer-impact", "sev1"]);
    let body = issue["body"].as_str().unwrap();
    assert!(body.contains("Resolved: database failed over"), "{body}");
    assert!(
        body.contains("<!-- watchkeeper:postmortem:1:issue -->"),
        "{body}"
    );
    let posts = thread_posts(&app);
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].contains(&format!(
            "{}/acme-platform/postmortems/issues/1",
            github.web_url
        )),
        "{posts:?}"
    );

    // A forged delivery changes nothing.
    let (status, _) = deliver_issue_event(
        &app,
        "acme-platform/postmortems",
        1,
        "closed",
        "not-the-secret",
    )
    .await;
    assert_eq!(status, 401);
    app.settle().await;
    assert_eq!(thread_posts(&app).len(), 1);

    // The real one closes it, once, however often GitHub redelivers.
    for expected in ["recorded", "no change"] {
        let (status, body) = deliver_issue_event(
            &app,
            "acme-platform/postmortems",
            1,
            "closed",
            GITHUB_SECRET,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(expected), "{body}");
    }
    app.settle().await;
    let posts = thread_posts(&app);
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(posts[1].contains("was closed"), "{posts:?}");

    // Reopened on GitHub: open again.
    let (status, _) = deliver_issue_event(
        &app,
        "acme-platform/postmortems",
        1,
        "reopened",
        GITHUB_SECRET,
    )
    .await;
    assert_eq!(status, 200);
    app.settle().await;
    assert!(thread_posts(&app)[2].contains("was reopened"));
    let list = app
        .command("U0ANNA", "T0STAFF", "C0OPS", "postmortems mine")
        .await;
    assert!(text_of(&list).contains("*PM-1*"), "{list}");

    // Issues that are not postmortems are acknowledged and ignored.
    let (status, body) =
        deliver_issue_event(&app, "acme-platform/other", 7, "closed", GITHUB_SECRET).await;
    assert_eq!(
        (status, body.contains("not a postmortem")),
        (200, true),
        "{body}"
    );
    app.stop().await;
}

on_both_backends!(
    a_thread_becomes_a_committed_postmortem_tracked_until_closed,
    a_github_ticket_follows_its_issue_through_signed_webhooks,
);
