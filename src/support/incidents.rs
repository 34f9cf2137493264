//! Incidents from Alertmanager: a firing alert whose severity is listed in
//! `support.incidents.severities` opens an incident for its alert group (or
//! joins the group's open one) and starts the incidents' escalation policy;
//! when every alert of the incident has resolved, the incident resolves and
//! its escalation stops. Alerts arrive already parsed by the catalog
//! (`catalog::alertmanager`); nothing is parsed twice.

use super::escalation::{self, About};
use super::{Desk, SupportError, incident_label, mention};
use crate::catalog::alertmanager::Delivery;
use crate::chat::Reply;
use crate::chat::mrkdwn::escape;
use crate::ids::UserId;
use crate::outbox::{SlackEffect, Target};
use crate::store::support::{self as db, EscalationStatus, Incident};
use crate::store::timeline::{self, TimelineEntry};
use crate::work::Work;

/// The timeline subject of an incident.
pub fn subject(id: i64) -> String {
    format!("incident:{id}")
}

/// One line saying what an incident is (trusted mrkdwn: values escaped).
pub fn title(incident: &Incident) -> String {
    format!(
        "Incident {}: {} ({})",
        incident_label(incident.id),
        escape(&incident.title),
        escape(&incident.severity)
    )
}

async fn note(
    work: &mut Work,
    id: i64,
    kind: &str,
    actor: Option<&UserId>,
    text: String,
) -> Result<(), SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    timeline::append(
        tx.conn(),
        &subject(id),
        &TimelineEntry {
            at: now,
            kind: kind.into(),
            actor: actor.map(ToString::to_string),
            text,
        },
    )
    .await?;
    Ok(())
}

/// Opens, joins and resolves incidents for one Alertmanager delivery;
/// returns how many incidents were opened.
pub async fn record(
    work: &mut Work,
    desk: &Desk<'_>,
    delivery: &Delivery,
) -> Result<usize, SupportError> {
    let config = desk.config();
    let paging = &config.support.incidents.severities;
    let now = work.now();
    let mut opened = 0;
    for alert in &delivery.alerts {
        let group = if delivery.group_key.is_empty() {
            alert.key.as_str()
        } else {
            delivery.group_key.as_str()
        };
        if alert.firing {
            if !paging
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&alert.severity))
            {
                continue;
            }
            let tx = work.tx().await?;
            let (incident, created) =
                db::open_incident(tx.conn(), group, &alert.summary, &alert.severity, now).await?;
            let (changed, _) =
                db::record_incident_alert(tx.conn(), incident.id, &alert.key, &alert.name, true)
                    .await?;
            if created {
                opened += 1;
                note(
                    work,
                    incident.id,
                    "opened",
                    None,
                    format!(
                        "Incident opened by alert {} ({})",
                        alert.name, alert.severity
                    ),
                )
                .await?;
                let policy = config
                    .support
                    .incidents
                    .escalation
                    .as_deref()
                    .or(config.support.escalation.as_deref());
                let about = About {
                    subject: subject(incident.id),
                    request_id: None,
                    incident_id: Some(incident.id),
                    title: title(&incident),
                };
                let reason = format!("{} is firing", alert.name);
                if let escalation::Started::NoPolicy =
                    escalation::start(work, desk, &about, policy, &reason, None).await?
                {
                    tracing::error!(
                        incident = incident.id,
                        "no escalation policy for incidents: set support.incidents.escalation"
                    );
                }
            } else if changed {
                note(
                    work,
                    incident.id,
                    "alert",
                    None,
                    format!("Alert {} joined ({})", alert.name, alert.summary),
                )
                .await?;
            }
        } else {
            let tx = work.tx().await?;
            let Some(incident) = db::incident_of_alert(tx.conn(), group, &alert.key).await? else {
                continue;
            };
            let (changed, firing) =
                db::record_incident_alert(tx.conn(), incident.id, &alert.key, &alert.name, false)
                    .await?;
            if changed {
                note(
                    work,
                    incident.id,
                    "alert resolved",
                    None,
                    format!("Alert {} resolved", alert.name),
                )
                .await?;
            }
            if firing == 0 {
                resolve(work, desk, incident.id, None, "every alert resolved").await?;
            }
        }
    }
    Ok(opened)
}

/// Resolves an open incident and stops its escalation; false when it was
/// not open.
pub async fn resolve(
    work: &mut Work,
    desk: &Desk<'_>,
    id: i64,
    by: Option<&UserId>,
    why: &str,
) -> Result<bool, SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    let Some(incident) = db::incident(&mut *tx.conn(), id).await? else {
        return Ok(false);
    };
    if !db::resolve_incident(tx.conn(), id, now).await? {
        return Ok(false);
    }
    if let Some(running) = db::active_escalation(tx.conn(), None, Some(id)).await? {
        escalation::stop(work, desk, running.id, EscalationStatus::Resolved, by).await?;
    }
    note(
        work,
        id,
        "resolved",
        by,
        format!("Incident resolved: {why}"),
    )
    .await?;
    let text = desk.render(
        "incident_resolved",
        &serde_json::json!({ "title": title(&incident), "why": why, "by": by.map(mention) }),
    )?;
    work.effect(
        &format!("incident:{id}:resolved"),
        &SlackEffect::Post {
            to: Target::Channel {
                channel: desk.config().team.ops_channel.clone(),
                thread: None,
            },
            reply: Reply::text(text).in_channel(),
        },
    )
    .await?;
    Ok(true)
}
