//! Escalations: a policy's levels paged in order until someone acknowledges.
//!
//! Starting one snapshots the policy into the row (a reload never changes a
//! running escalation), posts a card with Acknowledge / Resolve buttons in the
//! ops channel and pages the first level: a DM to each person it names (users,
//! a user group's members, a rotation's current on-call) and a post in each
//! channel it names. Each level arms a `support.escalation` timer in the
//! group `escalation:<id>`; when it fires unacknowledged, the next level is
//! paged (after the last, the whole policy again, `repeat` times). A level
//! that names nobody is announced loudly and skipped at once.
//!
//! Acknowledging (or resolving) ends the escalation in one transaction: the
//! row is compare-and-set, the timer group is cancelled (a cancelled timer
//! never fires) and pages still waiting in the outbox are withdrawn, so
//! nobody is paged after the acknowledgement. Everything lands on the
//! subject's timeline.

use super::config::{EscalationPolicy, Notify};
use super::{Desk, SupportError, Timers, incident_label, mention, request_label, slack_date};
use crate::auth::Role;
use crate::chat::{Block, Button, ButtonStyle, Inbound, Reply};
use crate::dispatch::CommandError;
use crate::ids::{ChannelId, UserId};
use crate::outbox::{MessageRef, SlackEffect, Target};
use crate::scheduler::{HandlerError, TimerHandler};
use crate::store::support::{self as db, Escalation, EscalationStatus, NewEscalation};
use crate::store::timeline::{self, TimelineEntry};
use crate::store::timers::{NewTimer, Queue, Timer};
use crate::work::Work;
use futures::future::BoxFuture;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The timer kind of "this level was not acknowledged in time".
pub const STEP: &str = "support.escalation";
/// The Acknowledge button.
pub const ACK: &str = "page.ack";
/// The Resolve button.
pub const RESOLVE: &str = "page.resolve";

/// What an escalation is about, for its messages.
#[derive(Clone, Debug)]
pub struct About {
    /// The timeline subject.
    pub subject: String,
    /// The request, if it is one.
    pub request_id: Option<i64>,
    /// The incident, if it is one.
    pub incident_id: Option<i64>,
    /// One line saying what it is (trusted mrkdwn: values escaped).
    pub title: String,
}

/// What [`start`] did.
#[derive(Debug)]
pub enum Started {
    /// A new escalation, its first level paged.
    New(Escalation),
    /// One was already running for the subject; it goes on.
    Running(Escalation),
    /// The policy named does not exist (or none was named).
    NoPolicy,
}

fn card_key(id: i64) -> String {
    format!("page:{id}:card")
}

fn timeline_entry(
    at: chrono::DateTime<chrono::Utc>,
    kind: &str,
    actor: Option<&UserId>,
    text: String,
) -> TimelineEntry {
    TimelineEntry {
        at,
        kind: kind.into(),
        actor: actor.map(ToString::to_string),
        text,
    }
}

/// Starts `policy` for `about` (unless an escalation already runs for it).
pub async fn start(
    work: &mut Work,
    desk: &Desk<'_>,
    about: &About,
    policy: Option<&str>,
    reason: &str,
    by: Option<&UserId>,
) -> Result<Started, SupportError> {
    let tx = work.tx().await?;
    if let Some(running) =
        db::active_escalation(tx.conn(), about.request_id, about.incident_id).await?
    {
        return Ok(Started::Running(running));
    }
    let Some((name, definition)) =
        policy.and_then(|name| desk.config().escalation_policies.get_key_value(name))
    else {
        return Ok(Started::NoPolicy);
    };
    let now = work.now();
    let snapshot = serde_json::to_string(definition).unwrap_or_default();
    let tx = work.tx().await?;
    let escalation = db::insert_escalation(
        tx.conn(),
        &NewEscalation {
            subject: about.subject.clone(),
            request_id: about.request_id,
            incident_id: about.incident_id,
            policy: name.clone(),
            snapshot,
            reason: reason.to_string(),
            started_by: by.cloned(),
        },
        now,
    )
    .await?;
    timeline::append(
        tx.conn(),
        &about.subject,
        &timeline_entry(
            now,
            "escalated",
            by,
            format!("Escalated through policy {name}: {reason}"),
        ),
    )
    .await?;
    let card = card(desk, &escalation, about, definition, None)?;
    work.effect(
        &card_key(escalation.id),
        &SlackEffect::Post {
            to: ops(desk),
            reply: card,
        },
    )
    .await?;
    page_level(work, desk, &escalation, about, definition, 0, 0).await?;
    Ok(Started::New(escalation))
}

fn ops(desk: &Desk<'_>) -> Target {
    Target::Channel {
        channel: desk.config().team.ops_channel.clone(),
        thread: None,
    }
}

fn under_card(desk: &Desk<'_>, id: i64) -> Target {
    Target::Channel {
        channel: desk.config().team.ops_channel.clone(),
        thread: Some(MessageRef::Posted(card_key(id))),
    }
}

fn buttons(id: i64) -> Block {
    Block::Actions(vec![
        Button {
            label: "Acknowledge".into(),
            action_id: ACK.into(),
            value: id.to_string(),
            style: Some(ButtonStyle::Primary),
        },
        Button {
            label: "Resolve".into(),
            action_id: RESOLVE.into(),
            value: id.to_string(),
            style: None,
        },
    ])
}

/// The ops-channel card: what it is, where it stands, and (while it runs)
/// the buttons. `ended` says how it ended.
fn card(
    desk: &Desk<'_>,
    escalation: &Escalation,
    about: &About,
    policy: &EscalationPolicy,
    ended: Option<(&str, Option<&UserId>)>,
) -> Result<Reply, SupportError> {
    let zone = desk.config().team.timezone;
    let text = desk.render(
        "page_card",
        &json!({
            "id": escalation.id,
            "title": about.title,
            "reason": escalation.reason,
            "policy": escalation.policy,
            "level": escalation.level + 1,
            "levels": policy.levels.len(),
            "round": escalation.round + 1,
            "rounds": policy.repeat + 1,
            "started": slack_date(escalation.started_at, zone),
            "ended": ended.map(|(how, _)| how),
            "by": ended.and_then(|(_, by)| by).map(mention),
        }),
    )?;
    let mut reply = Reply::text(text).in_channel();
    if ended.is_none() {
        reply = reply.with_block(buttons(escalation.id));
    }
    Ok(reply)
}

/// The level after (`round`, `level`), if the policy has one.
fn next(policy: &EscalationPolicy, round: i64, level: i64) -> Option<(i64, i64)> {
    let levels = i64::try_from(policy.levels.len()).unwrap_or(0);
    if level + 1 < levels {
        Some((round, level + 1))
    } else if round < i64::from(policy.repeat) {
        Some((round + 1, 0))
    } else {
        None
    }
}

/// Pages level `level` of round `round` (skipping levels that name nobody)
/// and arms its timeout; ends the escalation when nothing is left.
async fn page_level(
    work: &mut Work,
    desk: &Desk<'_>,
    escalation: &Escalation,
    about: &About,
    policy: &EscalationPolicy,
    mut round: i64,
    mut level: i64,
) -> Result<(), SupportError> {
    let now = work.now();
    let id = escalation.id;
    loop {
        let Some(step) = usize::try_from(level)
            .ok()
            .and_then(|l| policy.levels.get(l))
        else {
            return exhaust(work, desk, escalation, about, policy).await;
        };
        let mut people = BTreeSet::new();
        let mut channels: Vec<&ChannelId> = Vec::new();
        for target in &step.notify {
            match target {
                Notify::Channel(channel) => channels.push(channel),
                other => people.extend(desk.people(work, other, now).await?),
            }
        }
        let place = format!("r{round}:l{level}");
        let data = json!({
            "id": id,
            "title": about.title,
            "reason": escalation.reason,
            "level": level + 1,
            "levels": policy.levels.len(),
            "round": round + 1,
            "rounds": policy.repeat + 1,
            "targets": step.notify.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            "people": people.iter().map(mention).collect::<Vec<_>>().join(", "),
            "after": step.after.0.to_string(),
        });
        if people.is_empty() && channels.is_empty() {
            let text = desk.render("page_nobody", &data)?;
            work.effect(
                &format!("page:{id}:{place}:nobody"),
                &SlackEffect::Post {
                    to: ops(desk),
                    reply: Reply::text(text).in_channel(),
                },
            )
            .await?;
            let tx = work.tx().await?;
            timeline::append(
                tx.conn(),
                &about.subject,
                &timeline_entry(
                    now,
                    "page skipped",
                    None,
                    format!(
                        "Level {} names nobody on call ({}); escalating further at once",
                        level + 1,
                        data["targets"].as_str().unwrap_or_default()
                    ),
                ),
            )
            .await?;
            match next(policy, round, level) {
                Some((r, l)) => {
                    (round, level) = (r, l);
                    continue;
                }
                None => return exhaust(work, desk, escalation, about, policy).await,
            }
        }
        let dm = desk.render("page_dm", &data)?;
        for user in &people {
            work.effect(
                &format!("page:{id}:{place}:dm:{user}"),
                &SlackEffect::Post {
                    to: Target::Direct { user: user.clone() },
                    reply: Reply::text(dm.clone()).with_block(buttons(id)),
                },
            )
            .await?;
        }
        for channel in channels {
            work.effect(
                &format!("page:{id}:{place}:ch:{channel}"),
                &SlackEffect::Post {
                    to: Target::Channel {
                        channel: channel.clone(),
                        thread: None,
                    },
                    reply: Reply::text(dm.clone()).in_channel().with_block(buttons(id)),
                },
            )
            .await?;
        }
        let level_text = desk.render("page_level", &data)?;
        work.effect(
            &format!("page:{id}:{place}:level"),
            &SlackEffect::Post {
                to: under_card(desk, id),
                reply: Reply::text(level_text).in_channel(),
            },
        )
        .await?;
        let mut paged: BTreeSet<UserId> = escalation.paged.iter().cloned().collect();
        paged.extend(people.iter().cloned());
        let paged: Vec<UserId> = paged.into_iter().collect();
        let tx = work.tx().await?;
        db::record_paged(tx.conn(), id, round, level, &paged).await?;
        timeline::append(
            tx.conn(),
            &about.subject,
            &timeline_entry(
                now,
                "paged",
                None,
                format!(
                    "Level {} of {} (round {} of {}) paged: {}",
                    level + 1,
                    policy.levels.len(),
                    round + 1,
                    policy.repeat + 1,
                    people
                        .iter()
                        .map(ToString::to_string)
                        .chain(step.notify.iter().filter_map(|t| match t {
                            Notify::Channel(c) => Some(format!("channel {c}")),
                            _ => None,
                        }))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        )
        .await?;
        if round > 0 || level > 0 {
            let mut current = escalation.clone();
            (current.round, current.level, current.paged) = (round, level, paged);
            work.effect(
                &format!("page:{id}:card:{place}"),
                &SlackEffect::Update {
                    channel: desk.config().team.ops_channel.clone(),
                    message: MessageRef::Posted(card_key(id)),
                    reply: card(desk, &current, about, policy, None)?,
                },
            )
            .await?;
        }
        work.arm(NewTimer {
            queue: Queue::Timers,
            kind: STEP.into(),
            key: format!("escalation:{id}:{place}"),
            group: Some(format!("escalation:{id}")),
            lane: None,
            payload: json!({ "escalation": id, "round": round, "level": level }),
            due_at: now + step.after.0.as_chrono(),
        })
        .await?;
        return Ok(());
    }
}

/// Every level of every round was paged and nobody acknowledged.
async fn exhaust(
    work: &mut Work,
    desk: &Desk<'_>,
    escalation: &Escalation,
    about: &About,
    policy: &EscalationPolicy,
) -> Result<(), SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    if !db::end_escalation(
        tx.conn(),
        escalation.id,
        EscalationStatus::Exhausted,
        None,
        now,
    )
    .await?
    {
        return Ok(());
    }
    timeline::append(
        tx.conn(),
        &about.subject,
        &timeline_entry(
            now,
            "escalation exhausted",
            None,
            "Every level was paged and nobody acknowledged".into(),
        ),
    )
    .await?;
    let text = desk.render(
        "page_exhausted",
        &json!({ "id": escalation.id, "title": about.title, "policy": escalation.policy }),
    )?;
    work.effect(
        &format!("page:{}:exhausted", escalation.id),
        &SlackEffect::Post {
            to: ops(desk),
            reply: Reply::text(text).in_channel(),
        },
    )
    .await?;
    work.effect(
        &format!("page:{}:card:end", escalation.id),
        &SlackEffect::Update {
            channel: desk.config().team.ops_channel.clone(),
            message: MessageRef::Posted(card_key(escalation.id)),
            reply: card(desk, escalation, about, policy, Some(("exhausted", None)))?,
        },
    )
    .await?;
    Ok(())
}

/// Ends a running escalation as `status` (acknowledged or resolved, by
/// `by`): no timer of it fires and no page of it waiting in the outbox is
/// sent after this commits. `None` when it was not running.
pub async fn stop(
    work: &mut Work,
    desk: &Desk<'_>,
    id: i64,
    status: EscalationStatus,
    by: Option<&UserId>,
) -> Result<Option<Escalation>, SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    let Some(escalation) = db::escalation(&mut *tx.conn(), id).await? else {
        return Ok(None);
    };
    if !db::end_escalation(tx.conn(), id, status, by, now).await? {
        return Ok(None);
    }
    crate::store::outbox::withdraw_pending(tx.conn(), &format!("page:{id}:r"), now).await?;
    work.cancel_group(&format!("escalation:{id}")).await?;
    let about = about_of(work, desk, &escalation).await?;
    let how = match status {
        EscalationStatus::Acknowledged => "acknowledged",
        _ => "resolved",
    };
    let tx = work.tx().await?;
    timeline::append(
        tx.conn(),
        &escalation.subject,
        &timeline_entry(now, how, by, format!("Escalation {how}; paging stopped")),
    )
    .await?;
    let policy: EscalationPolicy =
        serde_json::from_str(&escalation.snapshot).unwrap_or(EscalationPolicy {
            levels: Vec::new(),
            repeat: 0,
        });
    work.effect(
        &format!("page:{id}:card:end"),
        &SlackEffect::Update {
            channel: desk.config().team.ops_channel.clone(),
            message: MessageRef::Posted(card_key(id)),
            reply: card(desk, &escalation, &about, &policy, Some((how, by)))?,
        },
    )
    .await?;
    let text = desk.render(
        "page_ended",
        &json!({ "id": id, "how": how, "by": by.map(mention), "title": about.title }),
    )?;
    work.effect(
        &format!("page:{id}:ended"),
        &SlackEffect::Post {
            to: under_card(desk, id),
            reply: Reply::text(text).in_channel(),
        },
    )
    .await?;
    Ok(Some(escalation))
}

/// What an escalation is about, read back from its request or incident.
pub async fn about_of(
    work: &mut Work,
    desk: &Desk<'_>,
    escalation: &Escalation,
) -> Result<About, SupportError> {
    let tx = work.tx().await?;
    let title = if let Some(id) = escalation.request_id {
        match db::request(&mut *tx.conn(), id).await? {
            Some(request) => super::requests::title(desk, &request),
            None => format!("Request {}", request_label(id)),
        }
    } else if let Some(id) = escalation.incident_id {
        match db::incident(&mut *tx.conn(), id).await? {
            Some(incident) => super::incidents::title(&incident),
            None => format!("Incident {}", incident_label(id)),
        }
    } else {
        crate::chat::mrkdwn::escape(&escalation.subject)
    };
    Ok(About {
        subject: escalation.subject.clone(),
        request_id: escalation.request_id,
        incident_id: escalation.incident_id,
        title,
    })
}

/// May `inbound`'s actor acknowledge `escalation`? The people it paged, and
/// on-call engineers, SREs and admins.
fn may_acknowledge(inbound: &Inbound, escalation: &Escalation) -> bool {
    let actor = &inbound.actor;
    actor.is_staff()
        && (escalation.paged.contains(&actor.user)
            || actor.is_admin()
            || actor.roles.contains(&Role::Oncall)
            || actor.roles.contains(&Role::Sre))
}

/// A click on Acknowledge or Resolve (or `/wk ack`): reloads the escalation,
/// re-checks who may, and ends it. Returns the reply for the person.
pub async fn on_click(
    work: &mut Work,
    desk: &Desk<'_>,
    inbound: &Inbound,
    action: &str,
    value: &str,
) -> Result<Reply, CommandError> {
    let id: i64 = value
        .parse()
        .map_err(|_| CommandError::NotFound("That page is not one I know.".into()))?;
    let tx = work.tx().await.map_err(CommandError::internal)?;
    let escalation = db::escalation(tx.conn(), id)
        .await
        .map_err(CommandError::internal)?
        .ok_or_else(|| CommandError::NotFound(format!("Escalation {id} does not exist.")))?;
    let staff = inbound.actor.is_staff()
        && (may_acknowledge(inbound, &escalation) || inbound.actor.roles.contains(&Role::Support));
    let allowed = match action {
        ACK => may_acknowledge(inbound, &escalation),
        _ => staff,
    };
    if !allowed {
        return Err(CommandError::Denied(
            "Only the people paged, on-call engineers, SREs and admins may acknowledge this page."
                .into(),
        ));
    }
    if escalation.status != EscalationStatus::Active && action == ACK {
        let by = escalation
            .acked_by
            .as_ref()
            .map(|u| format!(" by {}", mention(u)))
            .unwrap_or_default();
        return Err(CommandError::Conflict(format!(
            "This page was already {}{by}.",
            escalation.status.as_str()
        )));
    }
    let by = inbound.actor.user.clone();
    if action == ACK {
        stop(work, desk, id, EscalationStatus::Acknowledged, Some(&by))
            .await
            .map_err(CommandError::internal)?;
        return Ok(Reply::text(format!(
            ":white_check_mark: You acknowledged escalation {id}; nobody else will be paged for it."
        )));
    }
    // Resolve: the request or incident itself, which ends the escalation.
    if let Some(request) = escalation.request_id {
        super::requests::resolve_by_id(work, desk, request, &by).await?;
    } else if let Some(incident) = escalation.incident_id {
        super::incidents::resolve(work, desk, incident, Some(&by), "resolved from Slack")
            .await
            .map_err(CommandError::internal)?;
    } else {
        stop(work, desk, id, EscalationStatus::Resolved, Some(&by))
            .await
            .map_err(CommandError::internal)?;
    }
    Ok(Reply::text(format!(
        ":white_check_mark: Resolved; escalation {id} stopped."
    )))
}

/// Fires when a level was not acknowledged in time: pages the next one.
pub(super) struct StepTimer(pub(super) Arc<Timers>);

impl TimerHandler for StepTimer {
    fn kind(&self) -> &'static str {
        STEP
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let payload = &timer.payload;
            let (Some(id), Some(round), Some(level)) = (
                payload["escalation"].as_i64(),
                payload["round"].as_i64(),
                payload["level"].as_i64(),
            ) else {
                return Err(HandlerError::Permanent(format!(
                    "{}: unreadable payload",
                    timer.key
                )));
            };
            let env = self.0.dispatcher.env();
            let desk = Desk::new(&env);
            let tx = work.tx().await?;
            let Some(escalation) = db::escalation(tx.conn(), id).await? else {
                return Ok(());
            };
            if escalation.status != EscalationStatus::Active
                || (escalation.round, escalation.level) != (round, level)
            {
                return Ok(());
            }
            let policy: EscalationPolicy = serde_json::from_str(&escalation.snapshot)
                .map_err(|e| HandlerError::Permanent(format!("escalation {id}: {e}")))?;
            let about = about_of(work, &desk, &escalation).await?;
            match next(&policy, round, level) {
                Some((round, level)) => {
                    page_level(work, &desk, &escalation, &about, &policy, round, level).await?
                }
                None => exhaust(work, &desk, &escalation, &about, &policy).await?,
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use crate::support::config::{HumanDurationSerde, Level};

    #[test]
    fn levels_repeat_then_end() {
        let level = || Level {
            notify: vec![Notify::User("U1".into())],
            after: HumanDurationSerde(HumanDuration::from_secs(900)),
        };
        let policy = EscalationPolicy {
            levels: vec![level(), level()],
            repeat: 1,
        };
        assert_eq!(next(&policy, 0, 0), Some((0, 1)));
        assert_eq!(next(&policy, 0, 1), Some((1, 0)));
        assert_eq!(next(&policy, 1, 1), None);
        let snapshot = serde_json::to_string(&policy).unwrap();
        let back: EscalationPolicy = serde_json::from_str(&snapshot).unwrap();
        assert_eq!(back, policy, "a snapshot reads back as the policy it was");
    }
}
