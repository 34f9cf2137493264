//! Postmortems: from a thread to a ticket on a forge with the timeline
//! Watchkeeper recorded, tracked until the ticket is closed.
//!
//! `/wk postmortem` records the postmortem and, in the same transaction, the
//! effect "open this issue" (rendered from `templates/postmortem.md`) with a
//! follow-up: once the forge has created it, `postmortem.opened` records the
//! ticket and posts its link in the thread. A second call for the same thread
//! answers with the existing ticket. Tickets are followed by the GitHub
//! webhook (`http/github.rs`) and, where webhooks cannot reach us, by a poll on
//! the scheduler; a weekly digest lists what is still open.

pub mod config;
mod handlers;
pub mod render;
mod verbs;

pub use handlers::{apply_issue_state, handlers, schedules};
pub use verbs::{ListPostmortems, OpenPostmortem};

use crate::config::Config;
use crate::ids::{ChannelId, MessageTs, TenantId};
use crate::store::postmortems::Postmortem;
use crate::store::timeline::TimelineEntry;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// How a postmortem is shown: `PM-7`.
pub fn label(id: i64) -> String {
    format!("PM-{id}")
}

/// What the ticket template sees.
#[derive(Debug, Serialize)]
pub struct Ticket {
    id: String,
    title: String,
    customer: String,
    severity: String,
    owner: String,
    created_by: String,
    created_utc: String,
    zone: String,
    impact: Impact,
    thread_url: String,
    timeline: Vec<TicketEntry>,
    participants: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Impact {
    start_utc: String,
    start_local: String,
    end_utc: String,
    end_local: String,
    duration: Option<String>,
}

#[derive(Debug, Serialize)]
struct TicketEntry {
    utc: String,
    local: String,
    kind: String,
    actor: String,
    text: String,
}

/// The permalink of a Slack message: `{base}/archives/{channel}/p{ts without the dot}`.
pub fn permalink(base: &str, channel: &ChannelId, ts: &MessageTs) -> String {
    format!(
        "{}/archives/{channel}/p{}",
        base.trim_end_matches('/'),
        ts.as_str().replace('.', "")
    )
}

/// Reads a Slack message permalink back into its channel and thread: the
/// thread's own link, or a reply's (which names its thread in `thread_ts`).
pub fn parse_permalink(link: &str) -> Option<(ChannelId, MessageTs)> {
    let link = link.trim_matches(|c| c == '<' || c == '>');
    let link = link.split('|').next()?;
    let (_, rest) = link.split_once("/archives/")?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (channel, message) = path.split_once('/')?;
    let valid_channel =
        channel.len() > 1 && channel.chars().all(|c| c.is_ascii_alphanumeric()) && {
            let first = channel.chars().next()?;
            matches!(first, 'C' | 'G' | 'D')
        };
    if !valid_channel {
        return None;
    }
    let thread = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("thread_ts="))
        .map(str::to_string);
    let ts = match thread {
        Some(ts) => ts,
        None => {
            let digits = message.trim_end_matches('/').strip_prefix('p')?;
            if digits.len() <= 6 || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (secs, micros) = digits.split_at(digits.len() - 6);
            format!("{secs}.{micros}")
        }
    };
    let (secs, micros) = ts.split_once('.')?;
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    (numeric(secs) && numeric(micros))
        .then(|| (ChannelId::from(channel), MessageTs::from(ts.as_str())))
}

/// When a Slack message was posted, from its `ts`.
pub fn ts_time(ts: &MessageTs) -> Option<DateTime<Utc>> {
    let (secs, micros) = ts.as_str().split_once('.')?;
    DateTime::from_timestamp(
        secs.parse().ok()?,
        micros.parse::<u32>().ok()?.saturating_mul(1000),
    )
}

fn customer_zone(config: &Config, tenant: Option<&TenantId>) -> Tz {
    tenant
        .and_then(|t| config.customers.get(t))
        .and_then(|c| c.timezone)
        .unwrap_or(config.team.timezone)
}

fn human_duration(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(0);
    match (minutes / 1440, (minutes % 1440) / 60, minutes % 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// Builds what the template sees: the postmortem, its timeline and the
/// participants, with times in UTC and the customer's zone.
pub fn ticket(config: &Config, pm: &Postmortem, timeline: &[TimelineEntry]) -> Ticket {
    let tenant = pm.tenant.as_deref().map(TenantId::from);
    let zone = customer_zone(config, tenant.as_ref());
    let utc = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let local = |t: DateTime<Utc>| t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string();
    let thread_time = pm
        .thread_ts
        .as_deref()
        .map(MessageTs::from)
        .and_then(|ts| ts_time(&ts));
    let start = thread_time
        .into_iter()
        .chain(timeline.first().map(|e| e.at))
        .min()
        .unwrap_or(pm.created_at);
    let resolved = timeline
        .iter()
        .rev()
        .find(|e| e.kind == "resolved")
        .map(|e| e.at);
    let (end_utc, end_local, duration) = match resolved {
        Some(end) => (utc(end), local(end), Some(human_duration(end - start))),
        None => ("ongoing".to_string(), "ongoing".to_string(), None),
    };
    let name_of = |user: &str| match config
        .postmortems
        .logins
        .get(&crate::ids::UserId::from(user))
    {
        Some(login) => format!("{login} (Slack {user})"),
        None => format!("Slack user {user}"),
    };
    let mut participants: Vec<String> = Vec::new();
    for user in std::iter::once(pm.created_by.as_str())
        .chain(pm.owner.as_deref())
        .chain(timeline.iter().filter_map(|e| e.actor.as_deref()))
    {
        let name = name_of(user);
        if !participants.contains(&name) {
            participants.push(name);
        }
    }
    let customer = tenant
        .as_ref()
        .map(|t| {
            config
                .customers
                .get(t)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| t.to_string())
        })
        .unwrap_or_else(|| "none (internal)".to_string());
    let thread_url = match &pm.thread_ts {
        Some(ts) => permalink(
            &config.team.slack_url,
            &ChannelId::from(pm.channel.as_str()),
            &MessageTs::from(ts.as_str()),
        ),
        None => format!("channel {}", pm.channel),
    };
    Ticket {
        id: label(pm.id),
        title: pm.title.clone(),
        customer,
        severity: pm.severity.clone(),
        owner: pm
            .owner
            .as_deref()
            .map(name_of)
            .unwrap_or_else(|| "unassigned".into()),
        created_by: name_of(&pm.created_by),
        created_utc: utc(pm.created_at),
        zone: zone.name().to_string(),
        impact: Impact {
            start_utc: utc(start),
            start_local: local(start),
            end_utc,
            end_local,
            duration,
        },
        thread_url,
        timeline: timeline
            .iter()
            .map(|e| TicketEntry {
                utc: utc(e.at),
                local: local(e.at),
                kind: e.kind.clone(),
                actor: e
                    .actor
                    .as_deref()
                    .map(name_of)
                    .unwrap_or_else(|| "Watchkeeper".into()),
                text: e.text.clone(),
            })
            .collect(),
        participants,
    }
}

/// A ticket with every field filled, to check templates against.
pub(crate) fn sample_ticket() -> Ticket {
    let line = |kind: &str| TicketEntry {
        utc: "2026-03-02 09:00".into(),
        local: "2026-03-02 10:00".into(),
        kind: kind.into(),
        actor: "Slack user U0ANNA".into(),
        text: "Request opened".into(),
    };
    Ticket {
        id: "PM-1".into(),
        title: "Sample".into(),
        customer: "ACME Corp".into(),
        severity: "SEV2".into(),
        owner: "Slack user U0ANNA".into(),
        created_by: "Slack user U0ANNA".into(),
        created_utc: "2026-03-02 09:00".into(),
        zone: "Europe/Berlin".into(),
        impact: Impact {
            start_utc: "2026-03-02 09:00".into(),
            start_local: "2026-03-02 10:00".into(),
            end_utc: "2026-03-02 10:00".into(),
            end_local: "2026-03-02 11:00".into(),
            duration: Some("1 h 0 min".into()),
        },
        thread_url: "https://slack.com/archives/C0ACME/p1772442000000100".into(),
        timeline: vec![line("opened"), line("resolved")],
        participants: vec!["Slack user U0ANNA".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permalinks_read_back() {
        let (channel, ts) =
            parse_permalink("https://acme.slack.com/archives/C0ACME/p1772442000000100").unwrap();
        assert_eq!(
            (channel.as_str(), ts.as_str()),
            ("C0ACME", "1772442000.000100")
        );
        let (_, ts) = parse_permalink(
            "<https://acme.slack.com/archives/C0ACME/p1772442999000200?thread_ts=1772442000.000100&cid=C0ACME>",
        )
        .unwrap();
        assert_eq!(
            ts.as_str(),
            "1772442000.000100",
            "a reply's link names its thread"
        );
        for bad in [
            "https://example.com/",
            "https://x/archives/../p1",
            "https://x/archives/C0A/pabc",
        ] {
            assert!(parse_permalink(bad).is_none(), "{bad}");
        }
        assert_eq!(
            permalink(
                "https://acme.slack.com/",
                &"C0ACME".into(),
                &"1772442000.000100".into()
            ),
            "https://acme.slack.com/archives/C0ACME/p1772442000000100"
        );
    }
}
