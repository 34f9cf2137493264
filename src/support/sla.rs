//! SLA clocks as durable timers: for each target (first response,
//! resolution) a nudge to first line at `support.nudge_at` of the target and
//! a breach at the target, both counted on the customer's [`SlaClock`]
//! (business time, or wall time for 24x7). A breach escalates through the
//! customer's policy. The first staff reply cancels the first-response group;
//! resolving cancels both.

use super::business_time::SlaClock;
use super::config::{SlaConfig, first_line};
use super::escalation::Started;
use super::{Desk, SupportError, Timers, mention};
use crate::chat::Reply;
use crate::config::Config;
use crate::outbox::SlackEffect;
use crate::scheduler::{HandlerError, TimerHandler};
use crate::store::support::{self as db, Request, RequestStatus};
use crate::store::timeline::{self, TimelineEntry, thread_subject};
use crate::store::timers::{NewTimer, Queue, Timer};
use crate::work::Work;
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::Arc;

/// The timer kind.
pub const KIND: &str = "support.sla";

/// The group of a request's first-response timers.
pub fn first_response_group(id: i64) -> String {
    format!("request:{id}:first_response")
}

fn resolution_group(id: i64) -> String {
    format!("request:{id}:resolution")
}

fn fraction(duration: Duration, fraction: f64) -> Duration {
    let ms = duration.num_milliseconds() as f64 * fraction;
    Duration::milliseconds(ms.round() as i64)
}

fn timer(id: i64, group: String, what: &str, key_suffix: &str, due: DateTime<Utc>) -> NewTimer {
    NewTimer {
        queue: Queue::Timers,
        kind: KIND.into(),
        key: format!("{group}:{what}{key_suffix}"),
        group: Some(group),
        lane: None,
        payload: json!({ "request": id, "what": what }),
        due_at: due,
    }
}

/// Arms a new request's clocks.
pub async fn arm(
    work: &mut Work,
    config: &Config,
    clock: &SlaClock,
    request: &Request,
    sla: &SlaConfig,
) -> Result<(), SupportError> {
    let start = request.opened_at;
    let target = sla.first_response.as_chrono();
    let group = first_response_group(request.id);
    let nudge = clock.add(start, fraction(target, config.support.nudge_at));
    work.arm(timer(
        request.id,
        group.clone(),
        "first_response_nudge",
        "",
        nudge,
    ))
    .await?;
    work.arm(timer(
        request.id,
        group,
        "first_response_breach",
        "",
        clock.add(start, target),
    ))
    .await?;
    arm_resolution(work, config, clock, request.id, sla, start).await
}

/// Arms (or, after a reopen, re-arms) the resolution clock from `start`.
pub async fn arm_resolution(
    work: &mut Work,
    config: &Config,
    clock: &SlaClock,
    id: i64,
    sla: &SlaConfig,
    start: DateTime<Utc>,
) -> Result<(), SupportError> {
    let Some(target) = sla.resolution.map(|r| r.as_chrono()) else {
        return Ok(());
    };
    let suffix = format!(":{}", start.timestamp_millis());
    let nudge = clock.add(start, fraction(target, config.support.nudge_at));
    work.arm(timer(
        id,
        resolution_group(id),
        "resolution_nudge",
        &suffix,
        nudge,
    ))
    .await?;
    work.arm(timer(
        id,
        resolution_group(id),
        "resolution_breach",
        &suffix,
        clock.add(start, target),
    ))
    .await?;
    Ok(())
}

/// Cancels every clock of a request.
pub async fn cancel_all(work: &mut Work, id: i64) -> Result<(), SupportError> {
    work.cancel_group(&first_response_group(id)).await?;
    work.cancel_group(&resolution_group(id)).await?;
    Ok(())
}

async fn fire(work: &mut Work, desk: &Desk<'_>, id: i64, what: &str) -> Result<(), SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    let Some(request) = db::request(tx.conn(), id).await? else {
        return Ok(());
    };
    let first = what.starts_with("first_response");
    if request.status != RequestStatus::Open || (first && request.first_response_at.is_some()) {
        return Ok(());
    }
    let config = desk.config();
    let Some(customer) = config.customers.get(&request.tenant) else {
        return Ok(());
    };
    let target = if first {
        "first response"
    } else {
        "resolution"
    };
    let who = match &request.claimed_by {
        Some(user) => mention(user),
        None => {
            desk.mentions(work, &first_line(config, customer), now)
                .await?
        }
    };
    let due = if first {
        request.first_response_due
    } else {
        request.resolution_due
    };
    let zone = customer.timezone.unwrap_or(config.team.timezone);
    let data = json!({
        "id": id,
        "title": super::requests::title(desk, &request),
        "target": target,
        "who": who,
        "due": due.map(|d| super::slack_date(d, zone)),
        "link": super::thread_link(config, &request.channel, &request.thread_ts),
    });
    let subject = thread_subject(request.channel.as_str(), request.thread_ts.as_str());
    if what.ends_with("nudge") {
        let text = desk.render("request_nudge", &data)?;
        work.effect(
            &format!("request:{id}:{what}:{}", now.timestamp_millis()),
            &SlackEffect::Post {
                to: super::requests::under_card(desk, &request),
                reply: Reply::text(text).in_channel(),
            },
        )
        .await?;
        let tx = work.tx().await?;
        timeline::append(
            tx.conn(),
            &subject,
            &TimelineEntry {
                at: now,
                kind: "nudged".into(),
                actor: None,
                text: format!("First line nudged: {target} due soon"),
            },
        )
        .await?;
        return Ok(());
    }
    let tx = work.tx().await?;
    db::set_breached(tx.conn(), id, now).await?;
    timeline::append(
        tx.conn(),
        &subject,
        &TimelineEntry {
            at: now,
            kind: "breached".into(),
            actor: None,
            text: format!("SLA breached: no {target} in time"),
        },
    )
    .await?;
    let started = super::requests::escalate(
        work,
        desk,
        &request,
        &format!("{target} SLA breached"),
        None,
        false,
    )
    .await?;
    let mut data = data;
    data["escalated"] = json!(!matches!(started, Started::NoPolicy));
    let text = desk.render("request_breach", &data)?;
    work.effect(
        &format!("request:{id}:{what}:{}", now.timestamp_millis()),
        &SlackEffect::Post {
            to: super::requests::under_card(desk, &request),
            reply: Reply::text(text).in_channel(),
        },
    )
    .await?;
    Ok(())
}

/// Fires a request's nudges and breaches.
pub(super) struct SlaTimer(pub(super) Arc<Timers>);

impl TimerHandler for SlaTimer {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let (Some(id), Some(what)) = (
                timer.payload["request"].as_i64(),
                timer.payload["what"].as_str(),
            ) else {
                return Err(HandlerError::Permanent(format!(
                    "{}: unreadable payload",
                    timer.key
                )));
            };
            let env = self.0.dispatcher.env();
            let desk = Desk::new(&env);
            fire(work, &desk, id, what).await?;
            Ok(())
        })
    }
}
