//! Support intake: customer threads become requests with SLA clocks,
//! unanswered or urgent work escalates through policies that page people
//! until someone acknowledges, and paging alerts open incidents.
//!
//! Everything here decides inside a [`Work`]: state, timers (SLA nudges and
//! breaches, escalation steps) and effects (replies, pages) commit together.
//! Nothing talks to Slack; nothing reads another job's tables. Who is on call
//! for a rotation comes from the on-call job's roster.

pub mod business_time;
pub mod config;
pub mod escalation;
pub mod handoff;
pub mod incidents;
pub mod requests;
mod sla;
pub mod verbs;

use crate::auth::UsergroupDirectory;
use crate::chat::mrkdwn::escape;
use crate::config::Config;
use crate::dispatch::templates::TemplateError;
use crate::dispatch::{Dispatcher, Env};
use crate::ids::{ChannelId, MessageTs, UserId};
use crate::oncall::RosterError;
use crate::scheduler::{HandlerError, TimerHandler};
use crate::store::StoreError;
use crate::work::Work;
use chrono::{DateTime, Utc};
use config::Notify;
use std::sync::Arc;

pub use requests::Intake;

/// Why a support decision could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A wording template failed.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl From<SupportError> for HandlerError {
    fn from(err: SupportError) -> Self {
        match err {
            SupportError::Store(err) => HandlerError::Store(err),
            SupportError::Template(err) => HandlerError::Permanent(err.to_string()),
        }
    }
}

/// Templates the job renders (`commands/_support.yaml`), checked at start.
pub const TEMPLATES: &[&str] = &[
    "request_ack",
    "request_joined",
    "request_card",
    "request_nudge",
    "request_breach",
    "request_resolved",
    "request_reopened",
    "request_withdrawn",
    "request_urgent",
    "incident_resolved",
    "page_card",
    "page_dm",
    "page_level",
    "page_nobody",
    "page_ended",
    "page_exhausted",
];

/// What the job's decisions need besides the [`Work`]: the configuration,
/// wording and user groups as they are now.
pub struct Desk<'a> {
    /// Configuration, templates, authoriser.
    pub env: &'a Env,
}

impl<'a> Desk<'a> {
    /// The desk over `env`.
    pub fn new(env: &'a Env) -> Self {
        Self { env }
    }

    fn directory(&self) -> &UsergroupDirectory {
        self.env.authorizer.directory()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.env.config
    }

    /// Renders `support.<name>`.
    pub fn render<T: serde::Serialize>(
        &self,
        name: &str,
        data: &T,
    ) -> Result<String, TemplateError> {
        self.env
            .manifest
            .templates()
            .render(&format!("support.{name}"), data)
    }

    /// Who is on call for `rotation` at `at` (the on-call job's roster,
    /// overrides and swaps included); empty when nobody is.
    pub async fn on_call(
        &self,
        work: &mut Work,
        rotation: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<UserId>, SupportError> {
        match crate::oncall::on_call(work, self.config(), rotation, at).await {
            Ok(people) => Ok(people),
            Err(RosterError::Store(err)) => Err(err.into()),
            Err(err @ RosterError::UnknownRotation(_)) => {
                // `watchkeeper check` refuses such policies; a reload may not have.
                tracing::error!(error = %err, "escalation names an unknown rotation");
                Ok(Vec::new())
            }
        }
    }

    /// The people a target names at `at` (a channel names nobody).
    pub async fn people(
        &self,
        work: &mut Work,
        target: &Notify,
        at: DateTime<Utc>,
    ) -> Result<Vec<UserId>, SupportError> {
        Ok(match target {
            Notify::User(user) => vec![user.clone()],
            Notify::Usergroup(group) => self.directory().members(group),
            Notify::Rotation(rotation) => self.on_call(work, rotation, at).await?,
            Notify::Channel(_) => Vec::new(),
        })
    }

    /// Targets as Slack mentions (trusted mrkdwn built here), joined; a
    /// rotation is named by whoever is on call at `at`.
    pub async fn mentions(
        &self,
        work: &mut Work,
        targets: &[Notify],
        at: DateTime<Utc>,
    ) -> Result<String, SupportError> {
        let mut parts: Vec<String> = Vec::new();
        for target in targets {
            match target {
                Notify::User(user) => parts.push(mention(user)),
                Notify::Usergroup(group) => parts.push(format!("<!subteam^{group}>")),
                Notify::Channel(channel) => parts.push(format!("<#{channel}>")),
                Notify::Rotation(rotation) => {
                    let people = self.on_call(work, rotation, at).await?;
                    if people.is_empty() {
                        parts.push(format!("{} (nobody on call)", escape(rotation)));
                    } else {
                        parts.extend(people.iter().map(mention));
                    }
                }
            }
        }
        Ok(if parts.is_empty() {
            "our support team".into()
        } else {
            parts.join(", ")
        })
    }
}

/// `<@U…>`.
pub fn mention(user: &UserId) -> String {
    format!("<@{user}>")
}

/// A moment as a Slack date token, so every reader sees it in their own
/// zone; the fallback (for clients that cannot) is in `zone`.
pub fn slack_date(at: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} at {{time}}|{}>",
        at.timestamp(),
        at.with_timezone(&zone).format("%a %d %b %H:%M %Z")
    )
}

/// How a request is shown: `#12`.
pub fn request_label(id: i64) -> String {
    format!("#{id}")
}

/// How an incident is shown: `INC-3`.
pub fn incident_label(id: i64) -> String {
    format!("INC-{id}")
}

/// Reads `#12`, `12` or `R12` as a request number.
pub fn parse_request_label(text: &str) -> Option<i64> {
    let digits = text
        .trim()
        .trim_start_matches('#')
        .trim_start_matches(['R', 'r']);
    (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// A link to a thread in the workspace.
pub fn thread_link(config: &Config, channel: &ChannelId, ts: &MessageTs) -> String {
    crate::postmortem::permalink(&config.team.slack_url, channel, ts)
}

/// The job's timer handlers, reading the configuration and wording from
/// `dispatcher` at each firing (a reload applies to what fires next).
pub fn handlers(dispatcher: Dispatcher) -> Vec<Arc<dyn TimerHandler>> {
    let shared = Arc::new(Timers { dispatcher });
    vec![
        Arc::new(sla::SlaTimer(shared.clone())),
        Arc::new(escalation::StepTimer(shared)),
        Arc::new(requests::CardPosted),
    ]
}

/// What the timer handlers hold.
struct Timers {
    dispatcher: Dispatcher,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_read_back() {
        assert_eq!(parse_request_label("#12"), Some(12));
        assert_eq!(parse_request_label("R7"), Some(7));
        assert_eq!(parse_request_label("42"), Some(42));
        assert_eq!(parse_request_label("#"), None);
        assert_eq!(parse_request_label("#1a"), None);
        assert_eq!(request_label(3), "#3");
    }

    #[test]
    fn dates_are_slack_tokens_with_a_local_fallback() {
        let at = DateTime::parse_from_rfc3339("2026-03-02T08:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            slack_date(at, chrono_tz::Europe::Berlin),
            "<!date^1772440200^{date_short_pretty} at {time}|Mon 02 Mar 09:30 CET>"
        );
    }
}
