//! The postmortem job's timers: the ticket was opened (an outbox follow-up),
//! the poll of ticket states, one ticket's check, and the weekly digest.

use super::label;
use crate::chat::Reply;
use crate::chat::mrkdwn::escape;
use crate::config::Config;
use crate::forge::{Forge, IssueState};
use crate::ids::{ChannelId, MessageTs};
use crate::outbox::{MessageRef, SlackEffect, Target};
use crate::scheduler::{HandlerError, Recurrence, ScheduleDef, TimerHandler};
use crate::store::StoreError;
use crate::store::postmortems::{self, Postmortem, PostmortemStatus};
use crate::store::timeline::{self, TimelineEntry};
use crate::store::timers::{NewTimer, Queue, Timer};
use crate::work::Work;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The follow-up of "open the ticket".
pub const OPENED: &str = "postmortem.opened";
/// One ticket's state check; re-armed while the ticket is open.
pub const CHECK: &str = "postmortem.check";
/// The digest of open postmortems.
pub const DIGEST: &str = "postmortem.digest";

/// The job's timer handlers, using `forges` by name.
pub fn handlers(
    config: &Config,
    forges: HashMap<String, Arc<dyn Forge>>,
) -> Vec<Arc<dyn TimerHandler>> {
    let digest_channel = config
        .postmortems
        .digest
        .channel
        .clone()
        .unwrap_or_else(|| config.team.ops_channel.clone());
    vec![
        Arc::new(Opened {
            poll: config.postmortems.poll.as_chrono(),
        }),
        Arc::new(Check {
            forges,
            poll: config.postmortems.poll.as_chrono(),
        }),
        Arc::new(Digest {
            channel: digest_channel,
        }),
    ]
}

/// The job's recurring schedule: the digest.
pub fn schedules(config: &Config) -> Vec<ScheduleDef> {
    // Checked when the configuration was loaded.
    Recurrence::parse(&config.postmortems.digest.cron, config.team.timezone)
        .map(|recurrence| ScheduleDef {
            name: "postmortem:digest".into(),
            recurrence,
            kind: DIGEST.into(),
            payload: json!({}),
        })
        .into_iter()
        .collect()
}

/// Arms the next check of an open ticket, `after` from now. Where webhooks
/// cannot reach us, this is how a close is noticed; the chain stops when the
/// ticket is closed and starts again when it is reopened.
async fn arm_check(work: &mut Work, id: i64, after: chrono::Duration) -> Result<(), StoreError> {
    let due = work.now() + after;
    work.arm(NewTimer {
        queue: Queue::Timers,
        kind: CHECK.into(),
        key: format!("postmortem:{id}:check:{}", due.timestamp_millis()),
        group: Some(format!("postmortem:{id}:checks")),
        lane: None,
        payload: json!({ "id": id }),
        due_at: due,
    })
    .await?;
    Ok(())
}

fn thread_of(pm: &Postmortem) -> Target {
    Target::Channel {
        channel: ChannelId::from(pm.channel.as_str()),
        thread: pm
            .thread_ts
            .as_deref()
            .map(|ts| MessageRef::Ts(MessageTs::from(ts))),
    }
}

fn link(pm: &Postmortem) -> String {
    match (&pm.issue_url, pm.issue_number) {
        (Some(url), Some(number)) => format!("<{}|{}#{number}>", escape(url), escape(&pm.repo)),
        _ => escape(&pm.repo),
    }
}

fn postmortem_id(timer: &Timer) -> Result<i64, HandlerError> {
    timer.payload["id"]
        .as_i64()
        .ok_or_else(|| HandlerError::Permanent(format!("{}: no postmortem id", timer.key)))
}

/// Records a ticket's state as the forge reports it (webhook or poll); says
/// so in the thread once per change. Returns whether anything changed.
pub async fn apply_issue_state(
    work: &mut Work,
    pm: &Postmortem,
    state: IssueState,
    via: &str,
    poll: chrono::Duration,
) -> Result<bool, StoreError> {
    let status = match state {
        IssueState::Open => PostmortemStatus::Open,
        IssueState::Closed => PostmortemStatus::Closed,
    };
    if pm.status == PostmortemStatus::Opening || pm.status == PostmortemStatus::Failed {
        return Ok(false);
    }
    let now = work.now();
    let tx = work.tx().await?;
    if !postmortems::set_status(tx.conn(), pm.id, status, now).await? {
        return Ok(false);
    }
    let (verb, emoji) = match status {
        PostmortemStatus::Closed => ("closed", ":white_check_mark:"),
        _ => ("reopened", ":arrows_counterclockwise:"),
    };
    let tx = match status {
        PostmortemStatus::Closed => {
            let group = format!("postmortem:{}:checks", pm.id);
            work.cancel_group(&group).await?;
            work.tx().await?
        }
        _ => {
            arm_check(work, pm.id, poll).await?;
            work.tx().await?
        }
    };
    timeline::append(
        tx.conn(),
        &pm.subject,
        &TimelineEntry {
            at: now,
            kind: format!("postmortem {verb}"),
            actor: None,
            text: format!("Postmortem {} ticket {verb} ({via})", label(pm.id)),
        },
    )
    .await?;
    let text = format!(
        "{emoji} Postmortem {} (*{}*) was {verb} on the forge: {}",
        label(pm.id),
        escape(&pm.title),
        link(pm)
    );
    work.effect(
        &format!("postmortem:{}:{verb}:{}", pm.id, now.timestamp_millis()),
        &SlackEffect::Post {
            to: thread_of(pm),
            reply: Reply::text(text).in_channel(),
        },
    )
    .await?;
    Ok(true)
}

/// The forge has created the ticket (or refused to).
struct Opened {
    poll: chrono::Duration,
}

impl TimerHandler for Opened {
    fn kind(&self) -> &'static str {
        OPENED
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let id = postmortem_id(timer)?;
            let now = work.now();
            let tx = work.tx().await?;
            let Some(mut pm) = postmortems::get(tx.conn(), id).await? else {
                return Ok(());
            };
            let delivered = timer.payload["outcome"] == "delivered";
            let number = timer.payload["result"]["number"].as_i64();
            let url = timer.payload["result"]["url"].as_str().map(str::to_string);
            let (entry, text) = match (delivered, number, url) {
                (true, Some(number), Some(url)) => {
                    postmortems::set_issue(tx.conn(), id, number, &url, now).await?;
                    pm.issue_number = Some(number);
                    pm.issue_url = Some(url);
                    (
                        format!("Postmortem {} opened as {}#{number}", label(id), pm.repo),
                        format!(
                            ":memo: Postmortem {} is open: {} — *{}*. Owner: {}. I will say here when it is closed.",
                            label(id),
                            link(&pm),
                            escape(&pm.title),
                            pm.owner
                                .as_deref()
                                .map(|u| format!("<@{}>", escape(u)))
                                .unwrap_or_else(|| "nobody yet".into()),
                        ),
                    )
                }
                _ => {
                    let error = timer.payload["error"]
                        .as_str()
                        .unwrap_or("the forge did not say why");
                    postmortems::set_status(tx.conn(), id, PostmortemStatus::Failed, now).await?;
                    (
                        format!("Postmortem {} could not be opened: {error}", label(id)),
                        format!(
                            ":warning: I could not open postmortem {} on {} `{}`: {}. Fix the forge settings, then run `/wk postmortem` here again to retry.",
                            label(id),
                            escape(&pm.forge),
                            escape(&pm.repo),
                            escape(error),
                        ),
                    )
                }
            };
            timeline::append(
                tx.conn(),
                &pm.subject,
                &TimelineEntry {
                    at: now,
                    kind: "postmortem".into(),
                    actor: None,
                    text: entry,
                },
            )
            .await?;
            if pm.issue_number.is_some() {
                arm_check(work, id, self.poll).await?;
            }
            work.effect(
                &format!("{}:posted", timer.key),
                &SlackEffect::Post {
                    to: thread_of(&pm),
                    reply: Reply::text(text).in_channel(),
                },
            )
            .await?;
            Ok(())
        })
    }
}

/// Asks the forge whether one ticket is still open.
struct Check {
    forges: HashMap<String, Arc<dyn Forge>>,
    poll: chrono::Duration,
}

impl TimerHandler for Check {
    fn kind(&self) -> &'static str {
        CHECK
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let id = postmortem_id(timer)?;
            let Some(pm) = work.store().postmortem(id).await? else {
                return Ok(());
            };
            let (Some(number), PostmortemStatus::Open) = (pm.issue_number, pm.status) else {
                return Ok(());
            };
            let Some(forge) = self.forges.get(&pm.forge) else {
                return Err(HandlerError::Permanent(format!(
                    "postmortem {} is on forge `{}`, which is not configured",
                    label(id),
                    pm.forge
                )));
            };
            let state = match forge
                .issue_state(&pm.repo, u64::try_from(number).unwrap_or_default())
                .await
            {
                Ok(state) => state,
                Err(err) if err.is_permanent() => {
                    tracing::warn!(postmortem = id, error = %err, "cannot read the ticket's state; checking again later");
                    arm_check(work, id, self.poll).await?;
                    return Ok(());
                }
                Err(err) => return Err(HandlerError::Retry(err.to_string())),
            };
            if !apply_issue_state(work, &pm, state, "poll", self.poll).await? {
                arm_check(work, id, self.poll).await?;
            }
            Ok(())
        })
    }
}

/// Open postmortems, for `/wk postmortems` and the digest.
pub fn list_items(list: &[Postmortem], now: DateTime<Utc>) -> Vec<Value> {
    list.iter()
        .map(|pm| {
            let days = (now - pm.created_at).num_days();
            json!({
                "id": label(pm.id),
                "title": pm.title,
                "severity": pm.severity,
                "status": pm.status,
                "owner": pm.owner,
                "age": match days {
                    0 => "opened today".to_string(),
                    1 => "1 day old".to_string(),
                    n => format!("{n} days old"),
                },
                "url": pm.issue_url,
                "repo": pm.repo,
                "number": pm.issue_number,
            })
        })
        .collect()
}

/// Posts the open postmortems, oldest first, with age and owner.
struct Digest {
    channel: ChannelId,
}

impl TimerHandler for Digest {
    fn kind(&self) -> &'static str {
        DIGEST
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let open = work
                .store()
                .postmortems(&[PostmortemStatus::Opening, PostmortemStatus::Open], None)
                .await?;
            let now = work.now();
            if open.is_empty() {
                return Ok(());
            }
            let text = {
                let mut text = format!(
                    ":memo: *{} open postmortem{}*, oldest first:",
                    open.len(),
                    if open.len() == 1 { "" } else { "s" }
                );
                for (pm, item) in open.iter().zip(list_items(&open, now)) {
                    text.push_str(&format!(
                        "\n• {} {} — *{}* ({}), {}, owner {}",
                        label(pm.id),
                        link(pm),
                        escape(&pm.title),
                        escape(&pm.severity),
                        item["age"].as_str().unwrap_or_default(),
                        pm.owner
                            .as_deref()
                            .map(|u| format!("<@{}>", escape(u)))
                            .unwrap_or_else(|| "nobody".into()),
                    ));
                }
                text
            };
            let occurrence = timer.payload["occurrence"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| timer.due_at.to_rfc3339());
            work.effect(
                &format!("postmortem:digest:{occurrence}"),
                &SlackEffect::Post {
                    to: Target::Channel {
                        channel: self.channel.clone(),
                        thread: None,
                    },
                    reply: Reply::text(text).in_channel(),
                },
            )
            .await?;
            Ok(())
        })
    }
}
