//! How a run looks in Slack: its approval card (updated in place as the run
//! moves), and the dry run — every file's diff and every request — posted
//! before anyone approves. Layout here, values escaped; nothing is sent from
//! here (the callers record effects).

use super::plan::{Plan, Step};
use super::render;
use crate::chat::mrkdwn::escape;
use crate::chat::{Block, Button, ButtonStyle, Reply};
use crate::dispatch::templates::Templates;
use crate::store::playbook_runs::{Decision, Run, RunStatus};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// Button action ids.
pub const APPROVE: &str = "playbook.approve";
/// Button action ids.
pub const REJECT: &str = "playbook.reject";

/// Longest diff shown per file (the pull request shows all of it).
const DIFF_LIMIT: usize = 2600;

/// `run #7`.
pub fn label(id: i64) -> String {
    format!("run #{id}")
}

/// The parameters as `key=value`, escaped.
pub fn params_line(run: &Run) -> String {
    let pairs: Vec<String> = run
        .params
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("`{}={}`", escape(k), escape(v.as_str().unwrap_or_default())))
        .collect();
    if pairs.is_empty() {
        "no parameters".into()
    } else {
        pairs.join(" ")
    }
}

/// Who asked, as Slack shows it.
pub fn requester(run: &Run) -> String {
    match run.trigger.as_str() {
        "person" => format!("<@{}>", escape(&run.requested_by)),
        other => format!("Watchkeeper ({})", escape(other)),
    }
}

/// A span of time for people, to the minute (`1h30m`, `2d3h`), in the
/// configuration's own notation (`HumanDuration`).
pub fn span(d: chrono::Duration) -> String {
    match d.num_minutes() {
        m if m < 1 => "under a minute".into(),
        m => crate::config::HumanDuration::from_secs(m * 60).to_string(),
    }
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The wording templates this job renders (`commands/_playbook.yaml`,
/// `playbook.<name>`), checked at start.
pub const TEMPLATES: &[&str] = &[
    "approved",
    "rejected",
    "withdrawn",
    "requested",
    "dry_run_failed",
    "decided_approved",
    "decided_rejected",
    "decided_withdrawn",
    "expired",
    "pull_request",
    "drift",
    "step_failed",
    "succeeded",
    "trigger_refused",
    "card_header",
    "card_summary",
    "card_notification",
    "card_pull_request",
    "card_needs",
    "status_requested",
    "status_awaiting_approval",
    "status_running",
    "status_succeeded",
    "status_failed",
    "status_rejected",
    "status_expired",
    "dry_run",
    "dry_run_notification",
    "step_gitops",
    "step_file",
    "step_kubernetes",
    "step_http",
    "step_notify",
];

/// Renders `playbook.<name>`. Every name is checked to exist at start; a
/// template an operator broke (a value it names that the job does not give)
/// is logged, and the message says so instead of being lost.
pub fn words(templates: &Templates, name: &str, data: &Value) -> String {
    templates
        .render(&format!("playbook.{name}"), data)
        .unwrap_or_else(|err| {
            tracing::error!(%err, "a playbook message template failed");
            format!("(the message template playbook.{name} failed; see the log)")
        })
}

/// `<@U1>, <@U2>`: the people who decided `decision`.
fn deciders(decisions: &[Decision], decision: &str) -> String {
    decisions
        .iter()
        .filter(|d| d.decision == decision)
        .map(|d| format!("<@{}>", escape(&d.approver)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The approval card for `run`, as it stands.
pub fn card(templates: &Templates, run: &Run, decisions: &[Decision], approvers: &str) -> Reply {
    let approved = deciders(decisions, "approve");
    let count = decisions.iter().filter(|d| d.decision == "approve").count();
    let status_name = match run.status {
        RunStatus::Approved => "running",
        other => other.as_str(),
    };
    let rejected_by = match deciders(decisions, "reject") {
        by if by.is_empty() => "an approver".to_string(),
        by => by,
    };
    let status = words(
        templates,
        &format!("status_{status_name}"),
        &json!({
            "count": count,
            "needed": run.approvals_needed,
            "approvers": approved,
            "outcome": run.outcome.as_deref().unwrap_or("see the thread"),
            "by": rejected_by,
        }),
    );
    let label = label(run.id);
    let mut reply = Reply::text(words(
        templates,
        "card_notification",
        &json!({ "label": label, "playbook": run.playbook, "status": status }),
    ));
    reply.blocks = vec![
        Block::Header(words(
            templates,
            "card_header",
            &json!({ "label": label, "title": run.title }),
        )),
        Block::Section(words(
            templates,
            "card_summary",
            &json!({
                "playbook": run.playbook,
                "requester": requester(run),
                "params": params_line(run),
            }),
        )),
        Block::Section(status),
    ];
    if let Some(url) = &run.pr_url {
        reply.blocks.push(Block::Section(words(
            templates,
            "card_pull_request",
            &json!({ "url": url }),
        )));
    }
    if run.status == RunStatus::AwaitingApproval {
        let expires = run.expires_at.map(when).unwrap_or_else(|| "never".into());
        reply.blocks.push(Block::Context(vec![words(
            templates,
            "card_needs",
            &json!({
                "needed": run.approvals_needed,
                "approvers": escape(approvers),
                "expires": expires,
            }),
        )]));
        reply.blocks.push(Block::Actions(vec![
            Button {
                label: "Approve".into(),
                action_id: APPROVE.into(),
                value: run.id.to_string(),
                style: Some(ButtonStyle::Primary),
            },
            Button {
                label: "Reject".into(),
                action_id: REJECT.into(),
                value: run.id.to_string(),
                style: Some(ButtonStyle::Danger),
            },
        ]));
    }
    reply.in_channel()
}

/// A unified diff of one file, `before` → `after`.
pub fn diff(path: &str, before: Option<&str>, after: &str) -> String {
    let old = before.unwrap_or_default();
    let text = similar::TextDiff::from_lines(old, after);
    let header_old = if before.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".to_string()
    };
    text.unified_diff()
        .context_radius(3)
        .header(&header_old, &format!("b/{path}"))
        .to_string()
}

/// A code block of `text` (escaped), cut at `limit` characters.
fn code(text: &str, limit: usize) -> String {
    let mut shown: String = text.chars().take(limit).collect();
    if shown.len() < text.len() {
        shown.push_str("\n… (cut here; the pull request has all of it)");
    }
    format!("```\n{}\n```", escape(shown.trim_end()))
}

/// The dry run: what each step will do, exactly.
pub fn dry_run(templates: &Templates, run: &Run, plan: &Plan) -> Reply {
    let label = label(run.id);
    let mut blocks = vec![Block::Section(words(
        templates,
        "dry_run",
        &json!({ "label": label }),
    ))];
    for (i, step) in plan.steps.iter().enumerate() {
        let n = i + 1;
        match step {
            Step::Gitops(g) => {
                blocks.push(Block::Section(words(
                    templates,
                    "step_gitops",
                    &json!({
                        "n": n,
                        "forge": g.forge,
                        "repo": g.repo,
                        "branch": g.branch,
                        "base": g.base.as_deref().unwrap_or("default branch"),
                        "title": g.title,
                        "reviewers": g.reviewers.join(", "),
                        "auto_merge": g.auto_merge,
                    }),
                )));
                for file in &g.files {
                    let diff = diff(&file.path, file.before.as_deref(), &file.after);
                    blocks.push(Block::Section(words(
                        templates,
                        "step_file",
                        &json!({
                            "path": file.path,
                            "changed": !diff.is_empty(),
                            "diff": code(&diff, DIFF_LIMIT),
                        }),
                    )));
                }
            }
            Step::Kubernetes(k) => {
                let scale = k.operation == super::model::KubeOperation::Scale;
                blocks.push(Block::Section(words(
                    templates,
                    "step_kubernetes",
                    &json!({
                        "n": n,
                        "cluster": k.cluster,
                        "scale": scale && k.replicas.is_some(),
                        "replicas": k.replicas.unwrap_or_default(),
                        "kind": match k.kind {
                            super::model::WorkloadKind::Deployment => "deployment",
                            super::model::WorkloadKind::Statefulset => "statefulset",
                        },
                        "namespace": k.namespace,
                        "name": k.name,
                    }),
                )));
            }
            Step::Http(h) => {
                let headers: Vec<String> = h
                    .headers
                    .iter()
                    .map(|(name, value)| format!("{name}: {}", render::shown(value)))
                    .collect();
                let expected: Vec<String> = h.expect_status.iter().map(u16::to_string).collect();
                blocks.push(Block::Section(words(
                    templates,
                    "step_http",
                    &json!({
                        "n": n,
                        "method": h.method,
                        "url": render::shown(&h.url),
                        "headers": headers,
                        "body": h.body.as_ref().map(|b| code(&render::shown(b), 1200)).unwrap_or_default(),
                        "expect": expected.join(", "),
                    }),
                )));
            }
            Step::Notify(m) => {
                let to = match &m.channel {
                    Some(channel) => format!("<#{}>", escape(channel)),
                    None => "this thread".into(),
                };
                blocks.push(Block::Section(words(
                    templates,
                    "step_notify",
                    &json!({ "n": n, "to": to, "text": m.text }),
                )));
            }
        }
    }
    Reply {
        text: words(
            templates,
            "dry_run_notification",
            &json!({ "label": label }),
        ),
        blocks,
        visibility: crate::chat::Visibility::InChannel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Manifest;

    fn run(status: RunStatus) -> Run {
        Run {
            id: 7,
            playbook: "bump-chart".into(),
            title: "Bump a chart <&>".into(),
            params: json!({ "version": "1.2.3" }),
            plan: None,
            status,
            step: 0,
            requested_by: "U0ANNA".into(),
            trigger: "person".into(),
            tenant: None,
            channel: "C0OPS".into(),
            thread_ts: None,
            approvals_needed: 2,
            expires_at: Some(Utc::now()),
            outcome: Some("step 1 failed".into()),
            pr_url: Some("https://github.example/p/1".into()),
            cards: Vec::new(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn all_text(reply: &Reply) -> String {
        format!("{} {:?}", reply.text, reply.blocks)
    }

    #[test]
    fn every_state_and_every_step_renders_through_the_shipped_wording() {
        let manifest = Manifest::embedded().unwrap();
        let templates = manifest.templates();
        let decisions = vec![Decision {
            approver: "U0BEN".into(),
            decision: "approve".into(),
            at: Utc::now(),
        }];
        for status in [
            RunStatus::Requested,
            RunStatus::AwaitingApproval,
            RunStatus::Approved,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Rejected,
            RunStatus::Expired,
        ] {
            let text = all_text(&card(templates, &run(status), &decisions, "sre"));
            assert!(!text.contains("failed; see the log"), "{status:?}: {text}");
            assert!(text.contains("run #7"), "{status:?}: {text}");
        }
        let awaiting = all_text(&card(
            templates,
            &run(RunStatus::AwaitingApproval),
            &decisions,
            "sre",
        ));
        assert!(awaiting.contains("1 of 2 (<@U0BEN>)"), "{awaiting}");
        let plan: Plan = serde_json::from_value(json!({ "steps": [
            { "action": "gitops", "forge": "git", "repo": "platform/gitops", "base": null,
              "branch": "wk/7", "commit_message": "m", "title": "Bump", "body": "b",
              "labels": [], "reviewers": ["anna"], "auto_merge": true,
              "files": [{ "path": "a.yaml", "before": "x: 1\n", "after": "x: 2\n" }] },
            { "action": "kubernetes", "cluster": "prod", "namespace": "shop", "kind": "deployment",
              "name": "web", "operation": "scale", "replicas": 0 },
            { "action": "http", "method": "POST", "url": "https://x.example/hook",
              "headers": { "X-A": "1" }, "body": "{}", "expect_status": [] },
            { "action": "notify", "channel": null, "text": "done" }
        ]}))
        .unwrap();
        let dry = all_text(&dry_run(templates, &run(RunStatus::Requested), &plan));
        assert!(!dry.contains("failed; see the log"), "{dry}");
        for expected in [
            "Dry run of run #7",
            "reviewers anna, merged automatically",
            "+x: 2",
            "scale to 0 replicas",
            "`X-A: 1`",
            "any 2xx",
            "to this thread: done",
        ] {
            assert!(dry.contains(expected), "{expected} in {dry}");
        }
    }

    #[test]
    fn diffs_are_unified() {
        let out = diff("a.yaml", Some("x: 1\ny: 2\n"), "x: 1\ny: 3\n");
        assert!(out.contains("--- a/a.yaml\n+++ b/a.yaml\n"), "{out}");
        assert!(out.contains("-y: 2\n+y: 3\n"), "{out}");
        let new = diff("b.yaml", None, "z: 1\n");
        assert!(
            new.contains("--- /dev/null") && new.contains("+z: 1"),
            "{new}"
        );
    }
}
