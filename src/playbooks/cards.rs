//! How a run looks in Slack: its approval card (updated in place as the run
//! moves), and the dry run — every file's diff and every request — posted
//! before anyone approves. Layout here, values escaped; nothing is sent from
//! here (the callers record effects).

use super::plan::{Plan, Step};
use super::render;
use crate::chat::mrkdwn::escape;
use crate::chat::{Block, Button, ButtonStyle, Reply};
use crate::store::playbook_runs::{Decision, Run, RunStatus};
use chrono::{DateTime, Utc};

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

/// The approval card for `run`, as it stands.
pub fn card(run: &Run, decisions: &[Decision], approvers: &str) -> Reply {
    let approved: Vec<String> = decisions
        .iter()
        .filter(|d| d.decision == "approve")
        .map(|d| format!("<@{}>", escape(&d.approver)))
        .collect();
    let status = match run.status {
        RunStatus::Requested => ":hourglass_flowing_sand: Preparing the dry run.".to_string(),
        RunStatus::AwaitingApproval => format!(
            ":raised_hand: Awaiting approval: {} of {}{}.",
            approved.len(),
            run.approvals_needed,
            if approved.is_empty() { String::new() } else { format!(" ({})", approved.join(", ")) }
        ),
        RunStatus::Approved | RunStatus::Running => {
            format!(":gear: Approved by {}; running.", approved.join(", "))
        }
        RunStatus::Succeeded => format!(":white_check_mark: Done. Approved by {}.", approved.join(", ")),
        RunStatus::Failed => format!(
            ":x: Failed: {}",
            escape(run.outcome.as_deref().unwrap_or("see the thread"))
        ),
        RunStatus::Rejected => {
            let by = decisions
                .iter()
                .find(|d| d.decision == "reject")
                .map(|d| format!("<@{}>", escape(&d.approver)))
                .unwrap_or_else(|| "an approver".into());
            format!(":no_entry: Rejected by {by}.")
        }
        RunStatus::Expired => ":alarm_clock: Expired: nobody approved it in time. Request it again if it is still needed.".into(),
    };
    let mut reply = Reply::text(format!(
        "Playbook {} ({}) — {}",
        label(run.id),
        escape(&run.playbook),
        status
    ));
    reply.blocks = vec![
        Block::Header(format!("Playbook {}: {}", label(run.id), run.title)),
        Block::Section(format!(
            "*{}* requested by {} with {}.",
            escape(&run.playbook),
            requester(run),
            params_line(run)
        )),
        Block::Section(status),
    ];
    if let Some(url) = &run.pr_url {
        reply.blocks.push(Block::Section(format!(
            "Pull request: <{}|{}>",
            escape(url),
            escape(url)
        )));
    }
    if run.status == RunStatus::AwaitingApproval {
        let expires = run.expires_at.map(when).unwrap_or_else(|| "never".into());
        reply.blocks.push(Block::Context(vec![format!(
            "Needs {} distinct approval(s) from {}; the requester cannot approve. Expires {}. The dry run is in the thread.",
            run.approvals_needed,
            escape(approvers),
            expires
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

fn code(text: &str, limit: usize) -> String {
    let mut shown: String = text.chars().take(limit).collect();
    if shown.len() < text.len() {
        shown.push_str("\n… (cut here; the pull request has all of it)");
    }
    format!("```\n{}\n```", escape(shown.trim_end()))
}

/// The dry run: what each step will do, exactly.
pub fn dry_run(run: &Run, plan: &Plan) -> Reply {
    let mut blocks = vec![Block::Section(format!(
        ":mag: *Dry run of {}* — nothing has changed yet. Once approved, exactly this happens:",
        label(run.id)
    ))];
    for (i, step) in plan.steps.iter().enumerate() {
        let n = i + 1;
        match step {
            Step::Gitops(g) => {
                blocks.push(Block::Section(format!(
                    "*{n}. Pull request* on {} `{}`: `{}` → `{}` — *{}*{}{}",
                    escape(&g.forge),
                    escape(&g.repo),
                    escape(&g.branch),
                    escape(g.base.as_deref().unwrap_or("default branch")),
                    escape(&g.title),
                    if g.reviewers.is_empty() {
                        String::new()
                    } else {
                        format!(", reviewers {}", escape(&g.reviewers.join(", ")))
                    },
                    if g.auto_merge {
                        ", merged automatically once checks pass"
                    } else {
                        ""
                    },
                )));
                for file in &g.files {
                    let diff = diff(&file.path, file.before.as_deref(), &file.after);
                    let body = if diff.is_empty() {
                        "(no change)".to_string()
                    } else {
                        code(&diff, DIFF_LIMIT)
                    };
                    blocks.push(Block::Section(format!("`{}`\n{body}", escape(&file.path))));
                }
            }
            Step::Kubernetes(k) => {
                let what = match (k.operation, k.replicas) {
                    (super::model::KubeOperation::Scale, Some(n)) => {
                        format!("scale to {n} replicas")
                    }
                    _ => "rollout restart (pods replaced one by one)".to_string(),
                };
                blocks.push(Block::Section(format!(
                    "*{n}. Kubernetes* `{}`: {what} of {} `{}/{}`",
                    escape(&k.cluster),
                    match k.kind {
                        super::model::WorkloadKind::Deployment => "deployment",
                        super::model::WorkloadKind::Statefulset => "statefulset",
                    },
                    escape(&k.namespace),
                    escape(&k.name)
                )));
            }
            Step::Http(h) => {
                let mut text = format!(
                    "*{n}. HTTP* `{} {}`",
                    escape(&h.method),
                    escape(&render::shown(&h.url))
                );
                for (name, value) in &h.headers {
                    text.push_str(&format!(
                        "\n`{}: {}`",
                        escape(name),
                        escape(&render::shown(value))
                    ));
                }
                if let Some(body) = &h.body {
                    text.push('\n');
                    text.push_str(&code(&render::shown(body), 1200));
                }
                let expected: Vec<String> = h.expect_status.iter().map(u16::to_string).collect();
                text.push_str(&format!(
                    "\nSucceeds on {}.",
                    if expected.is_empty() {
                        "any 2xx".to_string()
                    } else {
                        expected.join(", ")
                    }
                ));
                blocks.push(Block::Section(text));
            }
            Step::Notify(m) => {
                let to = match &m.channel {
                    Some(channel) => format!("<#{}>", escape(channel)),
                    None => "this thread".into(),
                };
                blocks.push(Block::Section(format!(
                    "*{n}. Message* to {to}: {}",
                    m.text
                )));
            }
        }
    }
    Reply {
        text: format!("Dry run of {}", label(run.id)),
        blocks,
        visibility: crate::chat::Visibility::InChannel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
