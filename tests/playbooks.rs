//! Playbooks end to end, through the HTTP router with the fake Slack: a
//! request in Slack, its dry run (the exact diff) in the thread, approval
//! cards with Approve / Reject, the two-person rule and the rest of the
//! approval matrix, expiry on the scheduler, and the change landing as a
//! commit in a real git repository (the embedded forge) or as a pull request
//! on a fake GitHub — exactly once across a crash.

mod support;

use chrono::Duration;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use support::fake_github::FakeGitHub;
use support::fake_slack::Message;
use support::{Db, GITHUB_TOKEN, TestApp, example_config, monday_morning, repo_path};
use watchkeeper::faults::{FaultPlan, FaultPoint, Faults};

const STAFF: &str = "T0STAFF";

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The example configuration with its playbooks, seed repository and git
/// forge in `dir`, plus `extra` playbooks in `dir/extra`.
fn config(dir: &Path, extra: &[(&str, &str)], tail: &str) -> String {
    let extra_dir = dir.join("extra");
    std::fs::create_dir_all(&extra_dir).unwrap();
    for (name, text) in extra {
        std::fs::write(extra_dir.join(name), text).unwrap();
    }
    let text = example_config()
        .replace(
            "paths: [../playbooks]",
            &format!(
                "paths: [{}, {}]",
                repo_path("playbooks").display(),
                extra_dir.display()
            ),
        )
        .replace(
            "from: gitops",
            &format!("from: {}", repo_path("examples/gitops").display()),
        );
    format!(
        "{text}\nforges:\n  git:\n    path: {}\n{tail}",
        dir.join("forge").display()
    )
}

struct Playground {
    app: TestApp,
    dir: tempfile::TempDir,
}

impl Playground {
    async fn start(
        db: Db,
        extra: &[(&str, &str)],
        tail: &str,
        faults: Option<Arc<dyn Faults>>,
    ) -> Option<Self> {
        Self::start_edited(db, extra, tail, faults, |text| text).await
    }

    /// Like `start`, with the configuration text edited first.
    async fn start_edited(
        db: Db,
        extra: &[(&str, &str)],
        tail: &str,
        faults: Option<Arc<dyn Faults>>,
        edit: impl FnOnce(String) -> String,
    ) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let text = edit(config(dir.path(), extra, tail));
        let app = TestApp::spawn_virtual_with(
            db,
            monday_morning(),
            &format!("team:{}", &text[text.find("team:").unwrap() + 5..]),
            faults,
        )
        .await?;
        Some(Self { app, dir })
    }

    fn gitops(&self) -> std::path::PathBuf {
        self.dir.path().join("forge/platform/gitops")
    }
}

fn text_of(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_string()
}

/// Every message in `channel`, oldest first.
fn posts(app: &TestApp, channel: &str) -> Vec<Message> {
    app.slack.messages_in(channel)
}

/// The card with buttons for run `id` in `channel`.
fn card(app: &TestApp, channel: &str, id: i64) -> Message {
    posts(app, channel)
        .into_iter()
        .find(|m| {
            m.blocks
                .to_string()
                .contains(&format!("Playbook run #{id}:"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no card for run #{id} in {channel}: {:#?}",
                posts(app, channel)
            )
        })
}

fn buttons(message: &Message) -> Vec<String> {
    message
        .blocks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["text"]["text"].as_str().map(str::to_string))
        .collect()
}

async fn click(
    app: &TestApp,
    user: &str,
    team: &str,
    channel: &str,
    card: &Message,
    action: &str,
    id: i64,
) {
    app.click(user, team, channel, &card.ts, action, &id.to_string())
        .await;
    drain(app).await;
}

/// Runs what is due, and lets Slack's per-channel rate limit pass.
async fn drain(app: &TestApp) {
    app.settle().await;
    app.advance(Duration::seconds(20)).await;
}

/// The thread of run `id`'s first message in `channel`.
fn thread(app: &TestApp, channel: &str) -> Vec<String> {
    let all = posts(app, channel);
    let Some(root) = all.iter().find(|m| m.text.contains("*Playbook run #")) else {
        return Vec::new();
    };
    all.iter()
        .filter(|m| m.thread_ts.as_deref() == Some(root.ts.as_str()))
        .map(|m| m.blocks.to_string())
        .collect()
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String, String)> {
    app.server.dispatcher().audit().flush().await;
    let mut entries = app.server.store().recent_audit(500).await.unwrap();
    entries.reverse();
    entries
        .into_iter()
        .map(|e| (e.actor_user, e.action, e.outcome))
        .collect()
}

async fn a_chart_bump_is_approved_by_someone_else_and_committed(db: Db) {
    let Some(pg) = Playground::start(db, &[], "", None).await else {
        return;
    };
    let app = &pg.app;
    let reply = app
        .command("U0ANNA", STAFF, "C0OPS", "run bump-chart version=2.4.0")
        .await;
    assert!(text_of(&reply).contains("Requested *run #1*"), "{reply}");
    drain(app).await;

    // The dry run shows the exact change before anyone approves.
    let dry_run = thread(app, "C0OPS").join("\n");
    assert!(dry_run.contains("Dry run of run #1"), "{dry_run}");
    assert!(
        dry_run.contains("-      version: 2.3.1   # bumped by the bump-chart playbook"),
        "{dry_run}"
    );
    assert!(
        dry_run.contains("+      version: 2.4.0   # bumped by the bump-chart playbook"),
        "{dry_run}"
    );
    let before = git(&pg.gitops(), &["log", "--all", "--oneline"]);
    assert_eq!(
        before.lines().count(),
        2,
        "nothing committed before approval: {before}"
    );
    let card = card(app, "C0OPS", 1);
    assert_eq!(buttons(&card), ["Approve", "Reject"]);
    // The approvers (the sre group, not the requester) get the card by DM.
    for dm in ["D0DANA", "D0EVA", "D0LEAD"] {
        assert_eq!(
            buttons(&self::card(app, dm, 1)),
            ["Approve", "Reject"],
            "{dm}"
        );
    }
    assert!(posts(app, "D0ANNA").is_empty(), "not to the requester");

    // The requester cannot approve their own run, whatever their role.
    click(app, "U0ANNA", STAFF, "C0OPS", &card, "playbook.approve", 1).await;
    assert!(
        app.told("U0ANNA")
            .concat()
            .contains("someone else must approve it"),
        "{:?}",
        app.told("U0ANNA")
    );
    // Support without the sre role may not.
    click(app, "U0TOM", STAFF, "C0OPS", &card, "playbook.approve", 1).await;
    assert!(
        app.told("U0TOM")
            .concat()
            .contains("You may not decide on run #1"),
        "{:?}",
        app.told("U0TOM")
    );
    // A customer of another tenant may not (from their own channel either).
    click(
        app,
        "U9GLX",
        "T9GLOBEX",
        "C0GLOBEX",
        &card,
        "playbook.approve",
        1,
    )
    .await;
    assert!(
        app.told("U9GLX").concat().contains(":no_entry:"),
        "{:?}",
        app.told("U9GLX")
    );
    assert_eq!(
        git(&pg.gitops(), &["log", "--all", "--oneline"]),
        before,
        "still nothing"
    );
    let audit = audit_actions(app).await;
    assert!(
        audit.contains(&(
            "U0ANNA".into(),
            "action:playbook.approve".into(),
            "denied".into()
        )),
        "the requester's click is audited: {audit:?}"
    );

    // An SRE approves: the run starts, the change is committed on its branch.
    click(app, "U0DANA", STAFF, "C0OPS", &card, "playbook.approve", 1).await;
    assert!(
        app.told("U0DANA").concat().contains("it runs now"),
        "{:?}",
        app.told("U0DANA")
    );
    let repo = pg.gitops();
    let log = git(&repo, &["log", "--all", "--format=%s"]);
    assert!(
        log.contains("Bump checkout-api to 2.4.0 (Watchkeeper run 1)"),
        "{log}"
    );
    let path = "clusters/acme-prod/apps/checkout-api/helmrelease.yaml";
    let changed = git(
        &repo,
        &["show", &format!("watchkeeper/bump-checkout-api-1:{path}")],
    );
    assert!(
        changed.contains("      version: 2.4.0   # bumped by the bump-chart playbook\n"),
        "{changed}"
    );
    assert!(
        changed.starts_with("# ACME checkout API"),
        "comments kept: {changed}"
    );
    let main = git(&repo, &["show", &format!("main:{path}")]);
    assert!(
        main.contains("version: 2.3.1"),
        "main untouched until merged: {main}"
    );
    let pull = git(
        &repo,
        &["show", "main:pulls/1-watchkeeper-bump-checkout-api-1.md"],
    );
    assert!(pull.contains("approved by Slack user U0DANA"), "{pull}");

    let thread = thread(app, "C0OPS").join("\n");
    assert!(thread.contains("Pull request for run #1"), "{thread}");
    assert!(thread.contains("run #1 succeeded"), "{thread}");
    let card = self::card(app, "C0OPS", 1);
    assert!(
        buttons(&card).is_empty(),
        "buttons replaced in place: {:?}",
        card.blocks
    );
    assert!(
        card.blocks.to_string().contains("Done. Approved by"),
        "{}",
        card.blocks
    );

    // Late clicks change nothing.
    click(app, "U0EVA", STAFF, "C0OPS", &card, "playbook.approve", 1).await;
    assert!(
        app.told("U0EVA").concat().contains("nothing to decide"),
        "{:?}",
        app.told("U0EVA")
    );
    assert_eq!(git(&repo, &["log", "--all", "--format=%s"]), log);

    // History, the component's changes and the audit trail.
    let runs = app.command("U0ANNA", STAFF, "C0OPS", "runs mine").await;
    assert!(
        text_of(&runs).contains("*run #1* bump-chart — succeeded"),
        "{runs}"
    );
    let changes = app
        .command("U0ANNA", STAFF, "C0OPS", "changes acme-checkout-api")
        .await;
    assert!(
        text_of(&changes).contains("Playbook bump-chart (run #1) opened a pull request"),
        "{changes}"
    );
    let audit = audit_actions(app).await;
    let steps: Vec<&str> = audit
        .iter()
        .filter(|(_, action, _)| action.starts_with("playbook."))
        .map(|(_, action, _)| action.as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "playbook.requested",
            "playbook.planned",
            "playbook.approve",
            "playbook.approved",
            "playbook.running",
            "playbook.step.1",
            "playbook.step.2",
            "playbook.succeeded",
        ],
        "{audit:?}"
    );
    pg.app.stop().await;
}

async fn two_distinct_approvers_are_needed_and_counted_once(db: Db) {
    let Some(pg) = Playground::start(db, &[], "", None).await else {
        return;
    };
    let app = &pg.app;
    let reply = app
        .command(
            "U0BEN",
            STAFF,
            "C0OPS",
            "run scale-node-pool cluster=acme-prod nodes=6",
        )
        .await;
    assert!(text_of(&reply).contains("*run #1*"), "{reply}");
    app.settle().await;
    let card = card(app, "C0OPS", 1);
    click(app, "U0DANA", STAFF, "C0OPS", &card, "playbook.approve", 1).await;
    assert!(
        app.told("U0DANA").concat().contains("(1 of 2)"),
        "{:?}",
        app.told("U0DANA")
    );
    let card = self::card(app, "C0OPS", 1);
    assert!(
        card.blocks
            .to_string()
            .contains("Awaiting approval: 1 of 2 (<@U0DANA>)"),
        "{}",
        card.blocks
    );
    click(app, "U0DANA", STAFF, "C0OPS", &card, "playbook.approve", 1).await;
    assert!(
        app.told("U0DANA")
            .concat()
            .contains("each person counts once"),
        "{:?}",
        app.told("U0DANA")
    );
    assert!(
        !pg.gitops().join(".git/refs/heads/watchkeeper").exists(),
        "not yet"
    );
    click(app, "U0EVA", STAFF, "C0OPS", &card, "playbook.approve", 1).await;
    let node_pool = git(
        &pg.gitops(),
        &[
            "show",
            "watchkeeper/scale-acme-prod-general-1:clusters/acme-prod/node-pools/general.yaml",
        ],
    );
    assert!(
        node_pool.contains("  replicas: 6          # scaled by the scale-node-pool playbook"),
        "an integer, in place: {node_pool}"
    );
    pg.app.stop().await;
}

async fn an_unapproved_request_expires_and_its_buttons_go(db: Db) {
    let Some(pg) = Playground::start(db, &[], "", None).await else {
        return;
    };
    let app = &pg.app;
    app.command("U0ANNA", STAFF, "C0OPS", "run bump-chart version=2.5.0")
        .await;
    app.settle().await;
    app.advance(Duration::hours(3)).await;
    assert_eq!(
        buttons(&card(app, "C0OPS", 1)),
        ["Approve", "Reject"],
        "still open after 3 h"
    );
    app.advance(Duration::hours(1)).await;
    let card = card(app, "C0OPS", 1);
    assert!(buttons(&card).is_empty(), "{}", card.blocks);
    assert!(
        card.blocks.to_string().contains("Expired"),
        "{}",
        card.blocks
    );
    assert!(thread(app, "C0OPS").join("\n").contains("run #1 expired"));
    click(app, "U0DANA", STAFF, "C0OPS", &card, "playbook.approve", 1).await;
    assert!(
        app.told("U0DANA").concat().contains("is expired"),
        "{:?}",
        app.told("U0DANA")
    );
    let branches = git(&pg.gitops(), &["branch", "--list"]);
    assert_eq!(branches.trim(), "* main", "nothing ran: {branches}");
    let audit = audit_actions(app).await;
    assert!(
        audit.contains(&(
            "watchkeeper".into(),
            "playbook.expired".into(),
            "rejected".into()
        )),
        "{audit:?}"
    );
    pg.app.stop().await;
}

/// A run approved after the retention period (here nine days, for a
/// playbook whose approval waits two weeks): its cards and thread are named
/// by the outbox rows that posted them, which housekeeping has deleted by
/// then; the bot remembers where they went, so the cards still change.
async fn a_run_approved_after_the_retention_period_still_updates_its_cards(db: Db) {
    let slow = std::fs::read_to_string(repo_path("playbooks/bump-chart.yaml"))
        .unwrap()
        .replace("name: bump-chart", "name: bump-chart-slowly")
        .replace("expires: 4h", "expires: 14d");
    let Some(pg) = Playground::start(db, &[("slow.yaml", slow.as_str())], "", None).await else {
        return;
    };
    let app = &pg.app;
    app.command(
        "U0ANNA",
        STAFF,
        "C0OPS",
        "run bump-chart-slowly version=2.4.0",
    )
    .await;
    drain(app).await;
    app.advance(Duration::days(9)).await;
    let card = card(app, "C0OPS", 1);
    assert_eq!(buttons(&card), ["Approve", "Reject"], "still open");
    click(app, "U0DANA", STAFF, "C0OPS", &card, "playbook.approve", 1).await;
    drain(app).await;
    let failures: Vec<_> = posts(app, "C0OPS")
        .into_iter()
        .filter(|m| m.text.contains("could not deliver"))
        .map(|m| m.text)
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    for channel in ["C0OPS", "D0DANA", "D0EVA"] {
        let card = self::card(app, channel, 1);
        assert!(buttons(&card).is_empty(), "{channel}: {}", card.blocks);
    }
    assert!(
        thread(app, "C0OPS").join("\n").contains("run #1"),
        "the run's thread goes on under its first message"
    );
    pg.app.stop().await;
}

async fn customers_see_and_request_only_their_own_playbooks(db: Db) {
    let Some(pg) = Playground::start(db, &[], "", None).await else {
        return;
    };
    let app = &pg.app;
    let acme = app.command("U9EXT", "T9ACME", "C0ACME", "playbooks").await;
    let listed = text_of(&acme);
    assert!(
        listed.contains("bump-chart") && listed.contains("restart-workload"),
        "{listed}"
    );
    assert!(!listed.contains("scale-node-pool"), "staff only: {listed}");
    let globex = app
        .command("U9GLX", "T9GLOBEX", "C0GLOBEX", "playbooks")
        .await;
    assert!(
        text_of(&globex).contains("no playbook you may request"),
        "{globex}"
    );
    let denied = app
        .command(
            "U9EXT",
            "T9ACME",
            "C0ACME",
            "run scale-node-pool cluster=acme-prod nodes=2",
        )
        .await;
    assert!(text_of(&denied).contains(":no_entry:"), "{denied}");
    let other = app
        .command(
            "U9EXT",
            "T9ACME",
            "C0ACME",
            "run restart-workload component=globex-portal namespace=x deployment=y",
        )
        .await;
    assert!(
        text_of(&other).contains("not a component you can see"),
        "{other}"
    );
    // For one component: only what applies to it.
    let for_checkout = app
        .command("U0ANNA", STAFF, "C0OPS", "playbooks acme-checkout-api")
        .await;
    let listed = text_of(&for_checkout);
    assert!(
        listed.contains("bump-chart") && !listed.contains("scale-node-pool"),
        "{listed}"
    );
    pg.app.stop().await;
}

async fn missing_values_open_a_form_whose_submission_requests_the_run(db: Db) {
    let Some(pg) = Playground::start(db, &[], "", None).await else {
        return;
    };
    let app = &pg.app;
    let reply = app
        .command("U0BEN", STAFF, "C0OPS", "run scale-node-pool")
        .await;
    assert!(text_of(&reply).contains("Opening a form"), "{reply}");
    app.settle().await;
    let views = app.slack.views();
    assert_eq!(views.len(), 1, "{views:?}");
    let view = &views[0];
    assert_eq!(view["callback_id"], "playbook.run");
    let metadata = view["private_metadata"].as_str().unwrap().to_string();
    // A bad value is refused with the reason; nothing is recorded.
    app.submit_form(
        "U0BEN",
        STAFF,
        "playbook.run",
        &metadata,
        &[("cluster", "acme-prod"), ("nodes", "500")],
    )
    .await;
    app.settle().await;
    assert!(app.server.store().playbook_run(1).await.unwrap().is_none());
    app.submit_form(
        "U0BEN",
        STAFF,
        "playbook.run",
        &metadata,
        &[("cluster", "acme-prod"), ("nodes", "5")],
    )
    .await;
    app.settle().await;
    let run = app
        .server
        .store()
        .playbook_run(1)
        .await
        .unwrap()
        .expect("requested");
    assert_eq!(run.params["nodes"], "5");
    assert_eq!(run.requested_by, "U0BEN");
    pg.app.stop().await;
}

/// A playbook whose parameters reach paths and templates with no pattern:
/// what must stop them is Watchkeeper, not the author.
const LOOSE: &str = r#"
name: write-note
title: Write a note
parameters:
  - { name: name, type: string, required: true }
  - { name: text, type: string, required: true }
requesters: { roles: [oncall] }
secrets: [WK_TEST_NOTE_TOKEN]
actions:
  - gitops:
      repository: platform/gitops
      branch: "notes/{{params.name}}-{{run.id}}"
      files:
        - path: "notes/{{params.name}}.yaml"
          template: |
            note: {{params.text}}
            by: {{run.requested_by}}
      pull_request: { title: "Note {{params.name}}" }
"#;

async fn values_cannot_escape_paths_or_alter_yaml(db: Db) {
    let Some(pg) = Playground::start(db, &[("write-note.yaml", LOOSE)], "", None).await else {
        return;
    };
    let app = &pg.app;
    let outcome = |id: i64| {
        let store = app.server.store().clone();
        async move { store.playbook_run(id).await.unwrap().unwrap() }
    };
    for (n, args) in [
        (1, "name=../../etc/passwd text=x"),
        (2, "name=/etc/passwd text=x"),
        (3, "name=ok text={kind:Secret}"),
        (4, "name=ok text=\"a, b: [c]\""),
    ] {
        let reply = app
            .command("U0BEN", STAFF, "C0OPS", &format!("run write-note {args}"))
            .await;
        assert!(
            text_of(&reply).contains(&format!("*run #{n}*")),
            "{args}: {reply}"
        );
        app.settle().await;
        let run = outcome(n).await;
        assert_eq!(run.status.as_str(), "failed", "{args}: {run:?}");
        let why = run.outcome.unwrap_or_default();
        assert!(why.contains("the dry run failed"), "{args}: {why}");
    }
    // A value with a line break never gets that far.
    let reply = app
        .command(
            "U0BEN",
            STAFF,
            "C0OPS",
            "run write-note name=ok text=\"a\nkind: Secret\"",
        )
        .await;
    assert!(text_of(&reply).contains("one line"), "{reply}");
    // A repository or base branch from a parameter is refused by check.
    let bad = LOOSE.replace(
        "repository: platform/gitops",
        "repository: \"{{params.name}}/gitops\"",
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), &bad).unwrap();
    let text = config(dir.path(), &[("bad.yaml", &bad)], "");
    std::fs::write(dir.path().join("watchkeeper.yaml"), text).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_watchkeeper"))
        .arg("--config")
        .arg(dir.path().join("watchkeeper.yaml"))
        .arg("check")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success());
    assert!(
        stderr.contains("bad.yaml:11: the repository is never a template"),
        "{stderr}"
    );
    let branches = git(&pg.gitops(), &["branch", "--list"]);
    assert_eq!(branches.trim(), "* main", "{branches}");
    pg.app.stop().await;
}

async fn a_github_pull_request_is_opened_once_across_a_crash(db: Db) {
    let github = FakeGitHub::start(GITHUB_TOKEN).await;
    let repo = "platform/gitops";
    github.create_repo(repo, "main");
    let path = "clusters/acme-prod/apps/checkout-api/helmrelease.yaml";
    github.put_file(
        repo,
        "main",
        path,
        &std::fs::read_to_string(repo_path(&format!("examples/gitops/{path}"))).unwrap(),
    );
    let plan = Arc::new(FaultPlan::default());
    // Dies after GitHub created the pull request, before recording it; and
    // once before committing the step that follows it.
    plan.crash_once(FaultPoint::OutboxSent, "playbook-run:1:step:0");
    plan.crash_once(FaultPoint::TimerBeforeCommit, "playbook-run:1:step:0:then");
    let reviewed = std::fs::read_to_string(repo_path("playbooks/bump-chart.yaml"))
        .unwrap()
        .replace("name: bump-chart", "name: bump-chart-reviewed")
        .replace(
            "labels: [watchkeeper, chart-bump]",
            "labels: [watchkeeper, chart-bump]\n        reviewers: [dana-gh]",
        )
        .replace(
            "      pull_request:",
            "      auto_merge: true\n      pull_request:",
        )
        .replace(
            "      repository: platform/gitops",
            "      forge: github\n      repository: platform/gitops",
        );
    let tail = format!("  github:\n    api_url: {}\n", github.api_url);
    let Some(pg) = Playground::start(
        db,
        &[("reviewed.yaml", &reviewed)],
        &tail,
        Some(plan.clone()),
    )
    .await
    else {
        return;
    };
    let app = &pg.app;
    app.command(
        "U0ANNA",
        STAFF,
        "C0OPS",
        "run bump-chart-reviewed version=2.4.1",
    )
    .await;
    app.settle().await;
    let dry_run = thread(app, "C0OPS").join("\n");
    assert!(
        dry_run.contains("+      version: 2.4.1"),
        "the diff is against GitHub's file: {dry_run}"
    );
    click(
        app,
        "U0DANA",
        STAFF,
        "C0OPS",
        &card(app, "C0OPS", 1),
        "playbook.approve",
        1,
    )
    .await;
    assert_eq!(plan.pending(), 1, "died after the pull request was created");
    assert_eq!(github.pull_count(repo), 1);

    // The process is gone; another replica takes over once the lease runs out.
    let successor = app.replica(Some(plan.clone())).await;
    successor.advance(Duration::minutes(3)).await;
    assert_eq!(
        plan.pending(),
        0,
        "the follow-up of the pull request died before committing"
    );
    let run = successor
        .server
        .store()
        .playbook_run(1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (run.status.as_str(), run.step),
        ("running", 0),
        "nothing recorded: {run:?}"
    );
    successor.advance(Duration::minutes(3)).await;
    assert_eq!(github.pull_count(repo), 1, "one pull request, not two");
    let pull = github.issue(repo, 1).unwrap();
    let labels: Vec<&str> = pull["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(labels, ["watchkeeper", "chart-bump"]);
    assert_eq!(
        github.review_state(repo, 1),
        (vec!["dana-gh".to_string()], true),
        "reviewers and auto-merge"
    );
    assert!(
        github
            .file(repo, "watchkeeper/bump-checkout-api-1", path)
            .unwrap()
            .contains("version: 2.4.1   #")
    );
    assert_eq!(
        github.log(repo, "watchkeeper/bump-checkout-api-1")[0],
        "Bump checkout-api to 2.4.1 (Watchkeeper run 1)"
    );
    assert_eq!(github.log(repo, "main").len(), 2, "main untouched");
    let run = successor
        .server
        .store()
        .playbook_run(1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    let links: Vec<String> = thread(&successor, "C0OPS")
        .into_iter()
        .filter(|m| m.contains("Pull request for run #1"))
        .collect();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(
        links[0].contains(&format!("{}/platform/gitops/pull/1", github.web_url)),
        "{links:?}"
    );
    successor.stop_keeping_db().await;
    pg.app.stop().await;
}

on_both_backends!(
    a_chart_bump_is_approved_by_someone_else_and_committed,
    two_distinct_approvers_are_needed_and_counted_once,
    an_unapproved_request_expires_and_its_buttons_go,
    a_run_approved_after_the_retention_period_still_updates_its_cards,
    customers_see_and_request_only_their_own_playbooks,
    missing_values_open_a_form_whose_submission_requests_the_run,
    values_cannot_escape_paths_or_alter_yaml,
    a_github_pull_request_is_opened_once_across_a_crash,
);

/// A PKI-like endpoint: records what it received; answers 202, or 500 with
/// the credentials it was sent echoed back (as a careless server might).
async fn pki() -> (String, Arc<std::sync::Mutex<Vec<(String, String, String)>>>) {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::{HeaderMap, StatusCode};
    type Seen = Arc<std::sync::Mutex<Vec<(String, String, String)>>>;
    async fn renew(
        State(seen): State<Seen>,
        UrlPath(name): UrlPath<String>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, String) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        seen.lock()
            .unwrap()
            .push((name.clone(), auth.clone(), body));
        if name == "broken" {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot renew with {auth}"),
            )
        } else {
            (StatusCode::ACCEPTED, "{\"status\":\"renewing\"}".into())
        }
    }
    let seen: Seen = Arc::default();
    let router = axum::Router::new()
        .route("/renew/{name}", axum::routing::post(renew))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), seen)
}

const TOKEN: &str = "pki-token-7f3a9c";

fn renew_playbook(base: &str) -> String {
    format!(
        r#"
name: renew
title: Renew a certificate
parameters:
  - {{ name: name, type: string, required: true, pattern: '[a-z-]+' }}
requesters: {{ roles: [oncall] }}
secrets: [WK_TEST_PKI_TOKEN]
actions:
  - http:
      url: "{base}/renew/{{{{params.name}}}}"
      headers: {{ Authorization: "Bearer {{{{secrets.WK_TEST_PKI_TOKEN}}}}" }}
      body: '{{"certificate": "{{{{params.name}}}}", "run": {{{{run.id}}}}}}'
      expect_status: [202]
  - notify: {{ text: "Renewing {{{{params.name}}}}." }}
"#
    )
}

async fn http_actions_use_secrets_that_are_never_shown(db: Db) {
    // The one place the secret exists: the environment.
    // SAFETY: set once, before any thread of this test reads it; every test
    // of this binary sets the same value.
    unsafe { std::env::set_var("WK_TEST_PKI_TOKEN", TOKEN) };
    let (base, seen) = pki().await;
    let Some(pg) = Playground::start(db, &[("renew.yaml", &renew_playbook(&base))], "", None).await
    else {
        return;
    };
    let app = &pg.app;
    for (id, name) in [(1, "ingress"), (2, "broken")] {
        app.command("U0BEN", STAFF, "C0OPS", &format!("run renew name={name}"))
            .await;
        drain(app).await;
        click(
            app,
            "U0DANA",
            STAFF,
            "C0OPS",
            &card(app, "C0OPS", id),
            "playbook.approve",
            id,
        )
        .await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, "ingress");
    assert_eq!(
        seen[0].1,
        format!("Bearer {TOKEN}"),
        "the endpoint got the real secret"
    );
    assert_eq!(seen[0].2, r#"{"certificate": "ingress", "run": 1}"#);
    let ok = app.server.store().playbook_run(1).await.unwrap().unwrap();
    assert_eq!(ok.status.as_str(), "succeeded", "{ok:?}");
    let failed = app.server.store().playbook_run(2).await.unwrap().unwrap();
    assert_eq!(failed.status.as_str(), "failed");
    let why = failed.outcome.unwrap_or_default();
    assert!(
        why.contains("answered 500: cannot renew with Bearer [redacted]"),
        "{why}"
    );

    // The dry run names the secret; nothing anyone can read holds its value.
    let everything: String = app
        .slack
        .messages()
        .iter()
        .map(|m| format!("{} {}\n", m.text, m.blocks))
        .collect();
    assert!(
        everything.contains("Authorization: Bearer [secret WK_TEST_PKI_TOKEN]"),
        "{everything}"
    );
    assert!(
        everything.contains("[redacted]"),
        "the failure is reported: {everything}"
    );
    assert!(!everything.contains(TOKEN), "a secret reached Slack");
    let audit = format!("{:?}", app.server.store().recent_audit(500).await.unwrap());
    assert!(!audit.contains(TOKEN), "a secret reached the audit log");
    let runs = format!(
        "{:?}",
        app.server
            .store()
            .playbook_runs(&Default::default())
            .await
            .unwrap()
    );
    assert!(!runs.contains(TOKEN), "a secret reached the runs table");
    pg.app.stop().await;
}

on_both_backends!(http_actions_use_secrets_that_are_never_shown);

/// A nightly capacity check that scales the pool back: requested by a
/// schedule, it still needs a person's approval.
const NIGHTLY: &str = r#"
name: nightly-scale-down
title: Scale the general pool down for the night
requesters: { roles: [sre] }
schedules:
  - { name: evening, cron: "0 20 * * *", parameters: {} }
actions:
  - gitops:
      repository: platform/gitops
      files:
        - path: clusters/acme-prod/node-pools/general.yaml
          set: [{ at: spec.replicas, value: "2" }]
      pull_request: { title: "Night capacity for acme-prod" }
"#;

/// Drains a stuck queue when its alert fires (after approval).
const QUEUE_STUCK: &str = r#"
name: drain-queue
title: Drain a stuck queue
parameters:
  - { name: namespace, type: string, required: true, pattern: '[a-z-]+' }
  - { name: queue, type: string, required: true, pattern: '[a-z-]+' }
requesters: { roles: [oncall] }
alerts:
  - alertname: QueueStuck
    parameters: { namespace: "{{labels.namespace}}", queue: "{{labels.queue}}" }
actions:
  - notify: { text: "Draining {{params.queue}} in {{params.namespace}}." }
"#;

async fn schedules_and_alerts_request_runs_that_wait_for_approval(db: Db) {
    let Some(pg) = Playground::start(
        db,
        &[("nightly.yaml", NIGHTLY), ("queue.yaml", QUEUE_STUCK)],
        "",
        None,
    )
    .await
    else {
        return;
    };
    let app = &pg.app;
    // 20:00 in Berlin is 19:00 UTC; the clock starts at 09:00 UTC.
    app.advance(Duration::hours(10)).await;
    drain(app).await;
    let run = app
        .server
        .store()
        .playbook_run(1)
        .await
        .unwrap()
        .expect("requested by the schedule");
    assert_eq!(
        (run.requested_by.as_str(), run.trigger.as_str()),
        ("watchkeeper", "schedule:evening")
    );
    let plan_timer = app
        .server
        .store()
        .timer_state("playbook-run:1:plan")
        .await
        .unwrap();
    assert_eq!(run.status.as_str(), "awaiting_approval", "{plan_timer:?}");
    app.advance(Duration::hours(1)).await;
    assert_eq!(
        git(&pg.gitops(), &["branch", "--list"]).trim(),
        "* main",
        "not without approval"
    );

    // An alert requests the restart; Alertmanager repeating it requests nothing more.
    let mut delivery: Value = serde_json::from_str(&support::fixture(
        "real/alertmanager/v4_firing_demoalert_captured_am0.21_raw.json",
    ))
    .unwrap();
    delivery["alerts"][0]["labels"] = serde_json::json!({
        "alertname": "QueueStuck", "namespace": "orders", "queue": "acme-orders", "severity": "critical"
    });
    for _ in 0..2 {
        let response = app.alertmanager(delivery.to_string()).await;
        assert_eq!(response.status(), 200);
        drain(app).await;
    }
    let runs = app
        .server
        .store()
        .playbook_runs(&Default::default())
        .await
        .unwrap();
    let alerted: Vec<_> = runs
        .iter()
        .filter(|r| r.trigger == "alert:QueueStuck")
        .collect();
    assert_eq!(alerted.len(), 1, "{runs:?}");
    assert_eq!(alerted[0].playbook, "drain-queue");
    let plan_timer = app
        .server
        .store()
        .timer_state(&format!("playbook-run:{}:plan", alerted[0].id))
        .await
        .unwrap();
    assert_eq!(
        alerted[0].status.as_str(),
        "awaiting_approval",
        "{plan_timer:?}"
    );
    assert_eq!(alerted[0].params["queue"], "acme-orders");
    let card = card(app, "C0OPS", alerted[0].id);
    assert!(
        card.blocks
            .to_string()
            .contains("Watchkeeper (alert:QueueStuck)"),
        "{}",
        card.blocks
    );
    assert_eq!(buttons(&card), ["Approve", "Reject"]);
    // Anyone allowed may approve: the requester is Watchkeeper, not a person.
    click(
        app,
        "U0DANA",
        STAFF,
        "C0OPS",
        &self::card(app, "C0OPS", 1),
        "playbook.approve",
        1,
    )
    .await;
    let branch = git(&pg.gitops(), &["branch", "--list"]);
    assert!(
        branch.contains("watchkeeper/nightly-scale-down-1"),
        "{branch}"
    );
    pg.app.stop().await;
}

on_both_backends!(schedules_and_alerts_request_runs_that_wait_for_approval);

const SCALE_DEPLOYMENT: &str = r#"
name: scale-deployment
title: Scale a deployment
parameters:
  - { name: deployment, type: string, required: true, pattern: '[a-z0-9-]+' }
  - { name: replicas, type: integer, required: true, min: 0, max: 20 }
requesters: { roles: [oncall] }
approval: { roles: [sre] }
actions:
  - kubernetes:
      cluster: acme-prod
      kind: deployment
      namespace: checkout
      name: "{{params.deployment}}"
      operation: scale
      replicas: "{{params.replicas}}"
"#;

async fn kubernetes_actions_restart_and_scale_through_the_api(db: Db) {
    let kube = support::fake_kube::FakeKube::start().await;
    let mut deployment = support::fake_kube::fixture_json("deployment_healthy_rolled_out.json");
    deployment["metadata"]["name"] = "checkout-api".into();
    deployment["metadata"]["namespace"] = "checkout".into();
    kube.put_json(deployment);
    let kubeconfig_dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(kubeconfig_dir.path(), "acme-prod");
    let clusters = format!(
        "\ncatalog:\n  clusters:\n    - {{ name: acme-prod, kubeconfig: '{}', tenant: acme }}\n",
        kubeconfig.display()
    );
    let Some(pg) =
        Playground::start_edited(db, &[("scale.yaml", SCALE_DEPLOYMENT)], "", None, |text| {
            text.replacen("\ncatalog:\n", &clusters, 1)
        })
        .await
    else {
        return;
    };
    let app = &pg.app;
    let object = || {
        kube.object("apps/v1", "Deployment", "checkout", "checkout-api")
            .unwrap()
    };

    // A customer asks for a restart of their checkout; on-call approves.
    let reply = app
        .command("U9EXT", "T9ACME", "C0ACME", "run restart-workload component=acme-checkout-api namespace=checkout deployment=checkout-api")
        .await;
    assert!(text_of(&reply).contains("*run #1*"), "{reply}");
    drain(app).await;
    let dry_run = thread(app, "C0ACME").join("\n");
    assert!(
        dry_run.contains(
            "rollout restart (pods replaced one by one) of deployment `checkout/checkout-api`"
        ),
        "{dry_run}"
    );
    assert!(
        object()["spec"]["template"]["metadata"]["annotations"].is_null(),
        "not before approval"
    );
    click(
        app,
        "U0BEN",
        STAFF,
        "C0OPS",
        &card(app, "C0OPS", 1),
        "playbook.approve",
        1,
    )
    .await;
    let stamped = object()["spec"]["template"]["metadata"]["annotations"].clone();
    assert_eq!(
        stamped["kubectl.kubernetes.io/restartedAt"], "2026-03-02T09:00:20Z",
        "{stamped}"
    );
    assert_eq!(stamped["watchkeeper.dev/playbook-run"], "1");
    let run = app.server.store().playbook_run(1).await.unwrap().unwrap();
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    assert!(
        thread(app, "C0ACME")
            .join("\n")
            .contains("watch `/wk status acme-checkout-api`")
    );

    // Scale, through the scale subresource.
    app.command(
        "U0BEN",
        STAFF,
        "C0OPS",
        "run scale-deployment deployment=checkout-api replicas=5",
    )
    .await;
    drain(app).await;
    click(
        app,
        "U0DANA",
        STAFF,
        "C0OPS",
        &card(app, "C0OPS", 2),
        "playbook.approve",
        2,
    )
    .await;
    assert_eq!(object()["spec"]["replicas"], 5);
    let requests = kube.requests();
    assert!(
        requests.iter().any(|r| r
            .starts_with("PATCH /apis/apps/v1/namespaces/checkout/deployments/checkout-api/scale")),
        "{requests:#?}"
    );
    // A workload that is not there fails the run with the reason.
    app.command(
        "U0BEN",
        STAFF,
        "C0OPS",
        "run scale-deployment deployment=nothing replicas=1",
    )
    .await;
    drain(app).await;
    click(
        app,
        "U0DANA",
        STAFF,
        "C0OPS",
        &card(app, "C0OPS", 3),
        "playbook.approve",
        3,
    )
    .await;
    let run = app.server.store().playbook_run(3).await.unwrap().unwrap();
    assert_eq!(run.status.as_str(), "failed");
    assert!(
        run.outcome
            .unwrap_or_default()
            .contains("deployment checkout/nothing in acme-prod does not exist")
    );
    pg.app.stop().await;
}

on_both_backends!(kubernetes_actions_restart_and_scale_through_the_api);

/// Polls `probe` until it says done (the Kubernetes watch is real I/O), for
/// up to ten seconds.
async fn eventually<F, Fut>(what: &str, mut probe: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (bool, String)>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (done, seen) = probe().await;
        if done {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {what}; last saw:\n{seen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

async fn playbooks_are_read_from_playbook_resources(db: Db) {
    use watchkeeper::playbooks::model::{PlaybookResource, PlaybookSpec};
    let kube = support::fake_kube::FakeKube::start().await;
    kube.register::<PlaybookResource>();
    let spec = |name: &str| -> PlaybookSpec {
        let text = std::fs::read_to_string(repo_path("playbooks/bump-chart.yaml")).unwrap();
        serde_yaml::from_str(&text.replace("name: bump-chart", &format!("name: {name}"))).unwrap()
    };
    let object = |name: &str, spec: PlaybookSpec| {
        let mut object = PlaybookResource::new(name, spec);
        object.metadata.namespace = Some("platform".into());
        object
    };
    kube.put(&object("cluster-bump", spec("cluster-bump")));
    let mut broken = spec("broken-bump");
    broken.approval.approvals = Some(0);
    kube.put(&object("broken-bump", broken));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path(), "acme-prod");
    let clusters = format!(
        "\ncatalog:\n  clusters:\n    - {{ name: acme-prod, kubeconfig: '{}', tenant: acme }}\n",
        kubeconfig.display()
    );
    let Some(pg) = Playground::start_edited(db, &[], "", None, |text| {
        text.replacen("\ncatalog:\n", &clusters, 1).replace(
            "  # resources_from: acme-prod",
            "  resources_from: acme-prod",
        )
    })
    .await
    else {
        return;
    };
    let app = &pg.app;
    let list = || async {
        let text = text_of(&app.command("U0ANNA", STAFF, "C0OPS", "playbooks").await);
        (text.contains("cluster-bump"), text)
    };
    let listed = eventually("listed the Playbook resource", list).await;
    assert!(listed.contains("bump-chart"), "files too: {listed}");
    assert!(
        !listed.contains("broken-bump"),
        "an invalid resource is left out: {listed}"
    );
    let reply = app
        .command("U0ANNA", STAFF, "C0OPS", "run cluster-bump version=3.0.0")
        .await;
    assert!(
        text_of(&reply).contains("*run #1* of *cluster-bump*"),
        "{reply}"
    );
    kube.delete::<PlaybookResource>(Some("platform"), "cluster-bump");
    eventually("dropped the deleted resource", || async {
        let text = text_of(&app.command("U0ANNA", STAFF, "C0OPS", "playbooks").await);
        (!text.contains("cluster-bump"), text)
    })
    .await;
    pg.app.stop().await;
}

on_both_backends!(playbooks_are_read_from_playbook_resources);

async fn a_file_changed_since_the_dry_run_stops_the_run(db: Db) {
    let Some(pg) = Playground::start(db, &[], "", None).await else {
        return;
    };
    let app = &pg.app;
    app.command("U0ANNA", STAFF, "C0OPS", "run bump-chart version=2.4.0")
        .await;
    drain(app).await;
    // Someone changes the file on main after the dry run was posted.
    let repo = pg.gitops();
    let path = "clusters/acme-prod/apps/checkout-api/helmrelease.yaml";
    let text = std::fs::read_to_string(repo.join(path)).unwrap();
    std::fs::write(
        repo.join(path),
        text.replace("replicaCount: 3", "replicaCount: 6"),
    )
    .unwrap();
    git(
        &repo,
        &[
            "-c",
            "user.name=Eva",
            "-c",
            "user.email=eva@example.com",
            "commit",
            "-qam",
            "More replicas",
        ],
    );
    click(
        app,
        "U0DANA",
        STAFF,
        "C0OPS",
        &card(app, "C0OPS", 1),
        "playbook.approve",
        1,
    )
    .await;
    let run = app.server.store().playbook_run(1).await.unwrap().unwrap();
    assert_eq!(run.status.as_str(), "failed", "{run:?}");
    assert!(
        run.outcome
            .unwrap_or_default()
            .contains(&format!("{path} changed since the dry run")),
    );
    assert!(
        thread(app, "C0OPS")
            .join("\n")
            .contains("Request the run again")
    );
    let branches = git(&repo, &["branch", "--list"]);
    assert_eq!(
        branches.trim(),
        "* main",
        "no pull request over the newer file: {branches}"
    );
    pg.app.stop().await;
}

on_both_backends!(a_file_changed_since_the_dry_run_stops_the_run);

async fn a_crash_while_preparing_or_posting_is_resumed_once(db: Db) {
    let plan = Arc::new(FaultPlan::default());
    // Dies before the dry run's transaction commits, then after Slack took
    // the approval card but before that was recorded.
    plan.crash_once(FaultPoint::TimerBeforeCommit, "playbook-run:1:plan");
    plan.crash_once(FaultPoint::OutboxSent, "playbook-run:1:card:ops");
    let Some(pg) = Playground::start(db, &[], "", Some(plan.clone())).await else {
        return;
    };
    let app = &pg.app;
    app.command("U0ANNA", STAFF, "C0OPS", "run bump-chart version=2.4.0")
        .await;
    drain(app).await;
    assert_eq!(plan.pending(), 1, "the dry run's first attempt died");
    // Another replica takes the timer over when its lease runs out; it posts
    // the card and dies before recording it; its lease runs out too.
    let successor = app.replica(Some(plan.clone())).await;
    successor.advance(Duration::minutes(3)).await;
    assert_eq!(
        plan.pending(),
        0,
        "the card's post died after Slack took it"
    );
    successor.advance(Duration::minutes(3)).await;
    let run = successor
        .server
        .store()
        .playbook_run(1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status.as_str(), "awaiting_approval", "{run:?}");
    let cards: Vec<Message> = posts(&successor, "C0OPS")
        .into_iter()
        .filter(|m| m.blocks.to_string().contains("Playbook run #1:"))
        .collect();
    assert_eq!(cards.len(), 1, "one card, found again after the crash");
    let dry_runs = thread(&successor, "C0OPS")
        .into_iter()
        .filter(|m| m.contains("Dry run of run #1"))
        .count();
    assert_eq!(dry_runs, 1);
    click(
        &successor,
        "U0DANA",
        STAFF,
        "C0OPS",
        &cards[0],
        "playbook.approve",
        1,
    )
    .await;
    let run = successor
        .server
        .store()
        .playbook_run(1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    successor.stop_keeping_db().await;
    pg.app.stop().await;
}

on_both_backends!(a_crash_while_preparing_or_posting_is_resumed_once);

async fn the_git_forge_pushes_the_branch_to_a_remote(db: Db) {
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("gitops.git");
    git(
        remote.path(),
        &["init", "--quiet", "--bare", bare.to_str().unwrap()],
    );
    let tail = format!("    remotes:\n      platform/gitops: {}\n", bare.display());
    let Some(pg) = Playground::start(db, &[], &tail, None).await else {
        return;
    };
    let app = &pg.app;
    app.command("U0ANNA", STAFF, "C0OPS", "run bump-chart version=2.4.0")
        .await;
    drain(app).await;
    click(
        app,
        "U0DANA",
        STAFF,
        "C0OPS",
        &card(app, "C0OPS", 1),
        "playbook.approve",
        1,
    )
    .await;
    let pushed = git(
        &bare,
        &[
            "log",
            "--format=%s",
            "-1",
            "watchkeeper/bump-checkout-api-1",
        ],
    );
    assert_eq!(
        pushed.trim(),
        "Bump checkout-api to 2.4.0 (Watchkeeper run 1)"
    );
    let run = app.server.store().playbook_run(1).await.unwrap().unwrap();
    assert_eq!(run.status.as_str(), "succeeded", "{run:?}");
    pg.app.stop().await;
}

on_both_backends!(the_git_forge_pushes_the_branch_to_a_remote);
