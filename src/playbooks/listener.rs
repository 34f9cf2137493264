//! The job's buttons and form: Approve / Reject on an approval card, and the
//! request form `/wk run` opens when parameters are missing.
//!
//! A click carries only the run's id; the run is reloaded and the clicker
//! authorised again here. Approvals are counted per distinct approver; the
//! requester's own Approve is refused with a reason (and audited by the
//! dispatcher, like every refusal). When the last approval needed arrives
//! the run moves to `approved` and its first step is armed, in the same
//! transaction as the approval.

use super::runs::{self, STEP};
use super::{cards, verbs};
use crate::chat::{Inbound, InboundKind, Reply};
use crate::dispatch::{CommandError, Env, Listener};
use crate::ids::TenantId;
use crate::store::audit::Outcome;
use crate::store::playbook_runs::{self, RunStatus};
use crate::store::timers::{NewTimer, Queue};
use crate::work::Work;
use futures::future::BoxFuture;
use serde_json::json;

/// Handles `playbook.*` clicks and submissions.
pub struct PlaybookListener;

impl Listener for PlaybookListener {
    fn prefixes(&self) -> &'static [&'static str] {
        &["playbook."]
    }

    fn handle<'a>(
        &'a self,
        inbound: &'a Inbound,
        env: &'a Env,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<Option<Reply>, CommandError>> {
        Box::pin(async move {
            match &inbound.kind {
                InboundKind::BlockAction(action) => {
                    let id: i64 = action.value.parse().map_err(|_| {
                        CommandError::Usage("That button does not name a run.".into())
                    })?;
                    let approve = match action.action_id.as_str() {
                        cards::APPROVE => true,
                        cards::REJECT => false,
                        other => {
                            return Err(CommandError::Usage(format!(
                                "Unknown playbook action `{other}`."
                            )));
                        }
                    };
                    decide(env, inbound, work, id, approve).await.map(Some)
                }
                InboundKind::ViewSubmission(view) if view.callback_id == verbs::FORM => {
                    let name = view
                        .private_metadata
                        .rsplit('|')
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let given = view
                        .values
                        .iter()
                        .filter(|(_, v)| !v.trim().is_empty())
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    verbs::ask(env, inbound, work, &name, given, None)
                        .await
                        .map(Some)
                }
                _ => Ok(None),
            }
        })
    }
}

/// Records one person's approval or rejection of run `id`.
async fn decide(
    env: &Env,
    inbound: &Inbound,
    work: &mut Work,
    id: i64,
    approve: bool,
) -> Result<Reply, CommandError> {
    let internal = CommandError::internal::<crate::store::StoreError>;
    let templates = env.manifest.templates();
    let Some(mut run) = runs::load(work, id).await.map_err(internal)? else {
        return Err(CommandError::NotFound(format!(
            "There is no {}.",
            cards::label(id)
        )));
    };
    let playbook = env.playbooks.get(&run.playbook);
    let actor = &inbound.actor;
    let me = actor.user.as_str();
    let own = run.requested_by == me && run.trigger == "person";
    if own && approve {
        return Err(CommandError::Denied(format!(
            "You requested {}; someone else must approve it (two-person rule).",
            cards::label(id)
        )));
    }
    if !own {
        let Some(playbook) = &playbook else {
            return Err(CommandError::Conflict(format!(
                "The playbook `{}` of {} no longer exists; it cannot be approved.",
                run.playbook,
                cards::label(id)
            )));
        };
        let tenant = run.tenant.as_deref().map(TenantId::from);
        env.authorizer
            .admits(actor, &inbound.place, &playbook.approvers, tenant.as_ref())
            .map_err(|denied| {
                CommandError::Denied(format!(
                    "You may not decide on {}: {denied}.",
                    cards::label(id)
                ))
            })?;
    }
    // Who may decide is checked first: someone who may not learns nothing
    // of the run's state.
    if run.status != RunStatus::AwaitingApproval {
        return Err(CommandError::Conflict(format!(
            "{} is {}; there is nothing to decide any more.",
            cards::label(id),
            run.status.label()
        )));
    }
    let now = work.now();
    let decision = if approve { "approve" } else { "reject" };
    let tx = work.tx().await.map_err(internal)?;
    if !playbook_runs::decide(tx.conn(), id, me, decision, now)
        .await
        .map_err(internal)?
    {
        return Err(CommandError::Conflict(format!(
            "You have already decided on {}; each person counts once.",
            cards::label(id)
        )));
    }
    let team = actor.team.as_ref().map(ToString::to_string);
    runs::audit(
        work,
        &run,
        me,
        team.as_deref(),
        &actor.role_names(),
        decision,
        Outcome::Ok,
        None,
    )
    .await
    .map_err(internal)?;
    let group = runs::group(id);
    if !approve {
        let (outcome, template) = if own {
            (
                "withdrawn by the requester".to_string(),
                "playbook.withdrawn",
            )
        } else {
            (format!("rejected by {me}"), "playbook.rejected")
        };
        if runs::conclude(
            work,
            templates,
            &mut run,
            &[RunStatus::AwaitingApproval],
            RunStatus::Rejected,
            &outcome,
            playbook.as_deref(),
            "rejected",
            if own {
                "decided_withdrawn"
            } else {
                "decided_rejected"
            },
            json!({ "by": format!("<@{}>", crate::chat::mrkdwn::escape(me)) }),
        )
        .await
        .map_err(internal)?
        {
            work.cancel_group(&group).await.map_err(internal)?;
        }
        let text = templates
            .render(template, &json!({ "id": id }))
            .map_err(CommandError::internal)?;
        return Ok(Reply::text(text));
    }
    let decisions = {
        let tx = work.tx().await.map_err(internal)?;
        playbook_runs::decisions(tx.conn(), id)
            .await
            .map_err(internal)?
    };
    let count = decisions
        .iter()
        .filter(|d| d.decision == "approve" && d.approver != run.requested_by)
        .count();
    let needed = usize::try_from(run.approvals_needed).unwrap_or(1);
    let started = count >= needed
        && runs::transition(
            work,
            &mut run,
            &[RunStatus::AwaitingApproval],
            RunStatus::Approved,
            None,
        )
        .await
        .map_err(internal)?;
    if started {
        work.cancel_group(&group).await.map_err(internal)?;
        work.arm(NewTimer {
            queue: Queue::Timers,
            kind: STEP.into(),
            key: format!("playbook-run:{id}:start"),
            group: None,
            lane: None,
            payload: json!({ "id": id }),
            due_at: now,
        })
        .await
        .map_err(internal)?;
        let approvers: Vec<String> = decisions
            .iter()
            .filter(|d| d.decision == "approve")
            .map(|d| format!("<@{}>", crate::chat::mrkdwn::escape(&d.approver)))
            .collect();
        let text = cards::words(
            templates,
            "decided_approved",
            &json!({ "label": cards::label(id), "approvers": approvers.join(", ") }),
        );
        runs::say(work, &run, "approved", Reply::text(text))
            .await
            .map_err(internal)?;
    }
    runs::update_cards(work, templates, &run, playbook.as_deref())
        .await
        .map_err(internal)?;
    let text = templates
        .render(
            "playbook.approved",
            &json!({ "id": id, "count": count, "needed": needed, "started": started }),
        )
        .map_err(CommandError::internal)?;
    Ok(Reply::text(text))
}
