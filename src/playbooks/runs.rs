//! The moves of a run's state machine that people and triggers cause, each
//! recorded in the caller's `Work` with its audit entry, its timers and the
//! messages it implies: requesting a run (from a person, a schedule or an
//! alert — all the same way, all waiting for the same approvals), deciding
//! on it (approve, reject), and the shared helpers the timers use.

use super::Playbook;
use super::cards;
use super::params::Params;
use crate::chat::Reply;
use crate::dispatch::templates::Templates;
use crate::ids::{ChannelId, MessageTs, TenantId};
use crate::outbox::{MessageRef, SlackEffect, Target};
use crate::store::StoreError;
use crate::store::audit::{self, AuditEntry, Outcome};
use crate::store::playbook_runs::{self, NewRun, Run, RunStatus};
use crate::store::timers::{NewTimer, Queue};
use crate::work::Work;
use serde_json::json;
use std::sync::Arc;

/// Prepares the dry run (timer kind).
pub const PLAN: &str = "playbook.plan";
/// Expires an unapproved request (timer kind).
pub const EXPIRE: &str = "playbook.expire";
/// Carries out the next action (timer kind and effect follow-up).
pub const STEP: &str = "playbook.step";

/// The actor recorded for what Watchkeeper does by itself.
pub const SYSTEM: &str = "watchkeeper";

/// A request for a run.
pub struct Request {
    /// The playbook.
    pub playbook: Arc<Playbook>,
    /// Its parameters, checked.
    pub params: Params,
    /// Who asks: a Slack user id, or [`SYSTEM`] for schedules and alerts.
    pub requested_by: String,
    /// Their workspace, for the audit log.
    pub team: Option<String>,
    /// Their roles, for the audit log.
    pub roles: String,
    /// `person`, `schedule:<name>`, `alert:<name>`.
    pub trigger: String,
    /// The customer it is for.
    pub tenant: Option<TenantId>,
    /// Where it is requested.
    pub channel: ChannelId,
    /// The thread it is requested in.
    pub thread: Option<MessageTs>,
}

/// The outbox key of a run's first message (its thread), when it started one.
pub fn root_key(id: i64) -> String {
    format!("playbook-run:{id}:root")
}

/// The group of a run's timers.
pub fn group(id: i64) -> String {
    format!("playbook-run:{id}")
}

/// Where a run's messages go: the thread it was requested in, or the thread
/// of its first message.
pub fn thread(run: &Run) -> Target {
    Target::Channel {
        channel: ChannelId::from(run.channel.as_str()),
        thread: Some(match &run.thread_ts {
            Some(ts) => MessageRef::Ts(MessageTs::from(ts.as_str())),
            None => MessageRef::Posted(root_key(run.id)),
        }),
    }
}

/// Posts `reply` in the run's thread under key `playbook-run:<id>:<what>`.
pub async fn say(work: &mut Work, run: &Run, what: &str, reply: Reply) -> Result<(), StoreError> {
    work.effect(
        &format!("playbook-run:{}:{what}", run.id),
        &SlackEffect::Post {
            to: thread(run),
            reply: reply.in_channel(),
        },
    )
    .await?;
    Ok(())
}

/// Appends an audit entry about `run` inside the work's transaction.
#[allow(clippy::too_many_arguments)]
pub async fn audit(
    work: &mut Work,
    run: &Run,
    actor: &str,
    team: Option<&str>,
    roles: &str,
    action: &str,
    outcome: Outcome,
    reason: Option<String>,
) -> Result<(), StoreError> {
    let entry = AuditEntry {
        at: work.now(),
        actor_user: actor.to_string(),
        actor_team: team.map(str::to_string),
        roles: roles.to_string(),
        tenant: run.tenant.clone(),
        channel: Some(run.channel.clone()),
        action: format!("playbook.{action}"),
        detail: format!("run {} of {}", run.id, run.playbook),
        outcome: outcome.as_str().to_string(),
        reason,
    };
    let tx = work.tx().await?;
    audit::append(tx.conn(), &entry).await
}

/// Audits a step Watchkeeper took by itself.
pub async fn audit_system(
    work: &mut Work,
    run: &Run,
    action: &str,
    outcome: Outcome,
    reason: Option<String>,
) -> Result<(), StoreError> {
    audit(work, run, SYSTEM, None, "system", action, outcome, reason).await
}

/// Loads a run inside the work's transaction.
pub async fn load(work: &mut Work, id: i64) -> Result<Option<Run>, StoreError> {
    let tx = work.tx().await?;
    playbook_runs::get(tx.conn(), id).await
}

/// Records a request: the run, its audit entry, its first message and the
/// timer that prepares its dry run. Returns the run.
pub async fn request(
    work: &mut Work,
    templates: &Templates,
    request: Request,
) -> Result<Run, StoreError> {
    let now = work.now();
    let params: serde_json::Map<String, serde_json::Value> = request
        .params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.text())))
        .collect();
    let new = NewRun {
        playbook: request.playbook.name().to_string(),
        title: request.playbook.spec.title.clone(),
        params: serde_json::Value::Object(params),
        requested_by: request.requested_by.clone(),
        trigger: request.trigger.clone(),
        tenant: request.tenant.as_ref().map(ToString::to_string),
        channel: request.channel.to_string(),
        thread_ts: request.thread.as_ref().map(ToString::to_string),
        approvals_needed: i64::from(request.playbook.approvals),
    };
    let tx = work.tx().await?;
    let id = playbook_runs::insert(tx.conn(), &new, now).await?;
    let Some(run) = playbook_runs::get(tx.conn(), id).await? else {
        return Err(StoreError::Query(sqlx::Error::RowNotFound));
    };
    audit(
        work,
        &run,
        &request.requested_by,
        request.team.as_deref(),
        &request.roles,
        "requested",
        Outcome::Ok,
        Some(format!("{} with {}", request.trigger, run.params)),
    )
    .await?;
    let text = cards::words(
        templates,
        "requested",
        &json!({
            "label": cards::label(id),
            "title": run.title,
            "requester": cards::requester(&run),
            "params": cards::params_line(&run),
            "needed": run.approvals_needed,
            "by_person": run.trigger == "person",
        }),
    );
    let target = match &run.thread_ts {
        Some(_) => thread(&run),
        None => Target::Channel {
            channel: ChannelId::from(run.channel.as_str()),
            thread: None,
        },
    };
    work.effect(
        &root_key(id),
        &SlackEffect::Post {
            to: target,
            reply: Reply::text(text).in_channel(),
        },
    )
    .await?;
    work.arm(NewTimer {
        queue: Queue::Timers,
        kind: PLAN.into(),
        key: format!("playbook-run:{id}:plan"),
        group: Some(group(id)),
        lane: None,
        payload: json!({ "id": id }),
        due_at: now,
    })
    .await?;
    Ok(run)
}

/// Who may approve, in words.
pub fn approvers_text(playbook: Option<&Playbook>) -> String {
    let Some(playbook) = playbook else {
        return "the approvers of the playbook".into();
    };
    let people = &playbook.approvers;
    let mut parts: Vec<String> = people.roles.iter().map(|r| r.name().to_string()).collect();
    parts.extend(people.usergroups.iter().map(|g| format!("<!subteam^{g}>")));
    parts.extend(people.users.iter().map(|u| format!("<@{u}>")));
    if parts.is_empty() {
        "admins".into()
    } else {
        parts.join(", ")
    }
}

/// Updates every approval card of `run` in place, as it now stands.
pub async fn update_cards(
    work: &mut Work,
    templates: &Templates,
    run: &Run,
    playbook: Option<&Playbook>,
) -> Result<(), StoreError> {
    let decisions = {
        let tx = work.tx().await?;
        playbook_runs::decisions(tx.conn(), run.id).await?
    };
    let reply = cards::card(templates, run, &decisions, &approvers_text(playbook));
    for card in &run.cards {
        work.effect(
            &format!(
                "{}:update:{}:{}",
                card.key,
                run.status.as_str(),
                decisions.len()
            ),
            &SlackEffect::Update {
                channel: ChannelId::from(card.channel.as_str()),
                message: MessageRef::Posted(card.key.clone()),
                reply: reply.clone(),
            },
        )
        .await?;
    }
    Ok(())
}

/// Moves `run` to `to` from one of `from`, with its audit entry; false when
/// someone else moved it first. The run passed in is updated.
pub async fn transition(
    work: &mut Work,
    run: &mut Run,
    from: &[RunStatus],
    to: RunStatus,
    outcome: Option<&str>,
) -> Result<bool, StoreError> {
    let now = work.now();
    let tx = work.tx().await?;
    if !playbook_runs::transition(tx.conn(), run.id, from, to, outcome, now).await? {
        return Ok(false);
    }
    run.status = to;
    if let Some(outcome) = outcome {
        run.outcome = Some(outcome.to_string());
    }
    let result = match to {
        RunStatus::Failed => Outcome::Failed,
        RunStatus::Rejected | RunStatus::Expired => Outcome::Rejected,
        _ => Outcome::Ok,
    };
    audit_system(work, run, to.as_str(), result, outcome.map(str::to_string)).await?;
    Ok(true)
}

/// Ends `run` (from one of `from`, into the final state `to`) with its
/// outcome: the transition and its audit entry, the cards updated in place,
/// and the template `template` (rendered with `data` and the run's `label`)
/// in the thread under `what`. False when someone else moved the run first (nothing is
/// recorded then).
#[allow(clippy::too_many_arguments)]
pub async fn conclude(
    work: &mut Work,
    templates: &Templates,
    run: &mut Run,
    from: &[RunStatus],
    to: RunStatus,
    outcome: &str,
    playbook: Option<&Playbook>,
    what: &str,
    template: &str,
    mut data: serde_json::Value,
) -> Result<bool, StoreError> {
    if !transition(work, run, from, to, Some(outcome)).await? {
        return Ok(false);
    }
    update_cards(work, templates, run, playbook).await?;
    data["label"] = json!(cards::label(run.id));
    let text = cards::words(templates, template, &data);
    say(work, run, what, Reply::text(text)).await?;
    Ok(true)
}

/// Records that step `step` of a running `run` is done (compare-and-set,
/// audited); false when it was recorded before.
pub async fn advance(work: &mut Work, run: &mut Run, step: i64) -> Result<bool, StoreError> {
    let now = work.now();
    let tx = work.tx().await?;
    if !playbook_runs::advance_step(tx.conn(), run.id, step, now).await? {
        return Ok(false);
    }
    run.step = step + 1;
    audit_system(work, run, &format!("step.{}", step + 1), Outcome::Ok, None).await?;
    Ok(true)
}
