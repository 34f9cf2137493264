//! The support sections of the configuration: each customer's tier, hours,
//! SLA, escalation policy and staff; `support:` (first line, the intake
//! window, urgent keywords, holiday calendars, incidents); and
//! `escalation_policies:`. Checked when the file is loaded, each problem
//! naming its field.

use super::business_time::{self, BusinessHours, SlaClock};
use crate::config::{Config, CustomerConfig, HumanDuration};
use crate::ids::{ChannelId, TeamId, UserId, UsergroupId};
use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A customer's support tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum Tier {
    /// SLA clocks run only in the customer's business hours.
    #[default]
    #[serde(rename = "business-hours")]
    BusinessHours,
    /// SLA clocks run around the clock.
    #[serde(rename = "24x7")]
    AroundTheClock,
}

/// `business_hours:` of a customer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursConfig {
    /// Working days, e.g. `Mon-Fri`.
    #[serde(default = "default_days")]
    pub days: String,
    /// Opening time, local (`08:00`).
    #[serde(default = "default_from")]
    pub from: String,
    /// Closing time, local (`18:00`).
    #[serde(default = "default_to")]
    pub to: String,
    /// The zone (default: the customer's, else the team's).
    #[serde(default, deserialize_with = "optional_tz")]
    pub timezone: Option<chrono_tz::Tz>,
    /// Named calendars from `support.calendars` (`[de]`), and/or dates.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
}

impl Default for BusinessHoursConfig {
    fn default() -> Self {
        Self {
            days: default_days(),
            from: default_from(),
            to: default_to(),
            timezone: None,
            holidays: Vec::new(),
        }
    }
}

fn default_days() -> String {
    "Mon-Fri".into()
}
fn default_from() -> String {
    "09:00".into()
}
fn default_to() -> String {
    "17:00".into()
}

/// A holiday entry: a date, or the name of a calendar in `support.calendars`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holiday {
    /// One closed date.
    Date(NaiveDate),
    /// Every date of a named calendar.
    Calendar(String),
}

impl<'de> Deserialize<'de> for Holiday {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
            Ok(date) => Ok(Holiday::Date(date)),
            Err(_)
                if text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Ok(Holiday::Calendar(text))
            }
            Err(_) => Err(serde::de::Error::custom(format!(
                "`{text}` is neither a date (2026-12-25) nor a calendar name from support.calendars"
            ))),
        }
    }
}

/// `sla:` of a customer.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaConfig {
    /// Until the first answer from staff.
    pub first_response: HumanDuration,
    /// Until the request is resolved.
    #[serde(default)]
    pub resolution: Option<HumanDuration>,
}

/// How staff are told apart from the customer in a Slack Connect channel.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffConfig {
    /// Our workspaces (default: `team.slack_team_id`).
    #[serde(default)]
    pub teams: Vec<TeamId>,
    /// Members of these user groups are staff whatever their workspace says.
    #[serde(default)]
    pub usergroups: Vec<UsergroupId>,
}

/// Whom a page or a first-line mention reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Notify {
    /// One person (`U0ANNA` or `user:U0ANNA`).
    User(UserId),
    /// Every member of a Slack user group (`usergroup:S0SRE`).
    Usergroup(UsergroupId),
    /// Whoever is on call for a rotation at that moment (`rotation:ops-duty`).
    Rotation(String),
    /// A post in a channel (`channel:C0SRE`).
    Channel(ChannelId),
}

impl fmt::Display for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notify::User(u) => write!(f, "user:{u}"),
            Notify::Usergroup(g) => write!(f, "usergroup:{g}"),
            Notify::Rotation(r) => write!(f, "rotation:{r}"),
            Notify::Channel(c) => write!(f, "channel:{c}"),
        }
    }
}

/// Why a notify target could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not someone to notify: write U0ANNA (or user:U0ANNA), usergroup:S0SRE, rotation:ops-duty or channel:C0SRE"
)]
pub struct NotifyError(String);

fn slack_id(text: &str, first: &[char]) -> bool {
    text.len() > 1
        && text.starts_with(first)
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl std::str::FromStr for Notify {
    type Err = NotifyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || NotifyError(text.to_string());
        let text = text.trim();
        let (kind, value) = text.split_once(':').unwrap_or(("user", text));
        match kind {
            "user" if slack_id(value, &['U', 'W']) => Ok(Notify::User(UserId::from(value))),
            "usergroup" if slack_id(value, &['S']) => {
                Ok(Notify::Usergroup(UsergroupId::from(value)))
            }
            "channel" if slack_id(value, &['C', 'G']) => {
                Ok(Notify::Channel(ChannelId::from(value)))
            }
            "rotation" if !value.is_empty() => Ok(Notify::Rotation(value.to_string())),
            _ => Err(err()),
        }
    }
}

impl Serialize for Notify {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Notify {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One level of an escalation policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Who is paged at this level.
    pub notify: Vec<Notify>,
    /// How long to wait for an acknowledgement before the next level.
    pub after: HumanDurationSerde,
}

/// A [`HumanDuration`] that also serialises (policies are snapshotted into
/// the escalation as JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDurationSerde(pub HumanDuration);

impl<'de> Deserialize<'de> for HumanDurationSerde {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HumanDuration::deserialize(d).map(HumanDurationSerde)
    }
}

impl Serialize for HumanDurationSerde {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// An escalation policy: levels paged in order until someone acknowledges,
/// the whole list `repeat` more times.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    /// The levels, first paged first.
    pub levels: Vec<Level>,
    /// How many more times the levels are paged after the last one timed out.
    #[serde(default)]
    pub repeat: u32,
}

/// How alerts become incidents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    /// Alert severities that open an incident and page.
    pub severities: Vec<String>,
    /// The policy an incident starts (default `support.escalation`).
    pub escalation: Option<String>,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        Self {
            severities: vec!["critical".into(), "page".into()],
            escalation: None,
        }
    }
}

/// `support:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupportConfig {
    /// Where first line hears of new requests, nudges and breaches (default:
    /// `team.ops_channel`).
    pub channel: Option<ChannelId>,
    /// Who is on first line (default: members of the `support` role's groups).
    pub first_line: Vec<Notify>,
    /// Messages of the same customer within this long join their open request.
    pub join_window: HumanDuration,
    /// The first-line nudge, as a fraction of the SLA target (0.5 = halfway).
    pub nudge_at: f64,
    /// Words that make a request urgent (case-insensitive, whole words).
    pub urgent_keywords: Vec<String>,
    /// The policy urgent requests page (default: the customer's).
    pub urgent_escalation: Option<String>,
    /// The policy for customers that name none.
    pub escalation: Option<String>,
    /// Named holiday lists (`de: [2026-12-25, …]`).
    pub calendars: BTreeMap<String, Vec<NaiveDate>>,
    /// Alertmanager alerts that page.
    pub incidents: IncidentsConfig,
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            channel: None,
            first_line: Vec::new(),
            join_window: HumanDuration::from_secs(600),
            nudge_at: 0.5,
            urgent_keywords: Vec::new(),
            urgent_escalation: None,
            escalation: None,
            calendars: BTreeMap::new(),
            incidents: IncidentsConfig::default(),
        }
    }
}

fn optional_tz<'de, D: Deserializer<'de>>(d: D) -> Result<Option<chrono_tz::Tz>, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{name}` is not an IANA time zone: write one like Europe/Berlin or America/New_York"
        ))
    })
}

/// The channel where first line is told about requests.
pub fn support_channel(config: &Config) -> ChannelId {
    config
        .support
        .channel
        .clone()
        .unwrap_or_else(|| config.team.ops_channel.clone())
}

/// Who is on first line for a customer.
pub fn first_line(config: &Config, customer: &CustomerConfig) -> Vec<Notify> {
    if !customer.first_line.is_empty() {
        return customer.first_line.clone();
    }
    if !config.support.first_line.is_empty() {
        return config.support.first_line.clone();
    }
    config
        .roles
        .get(&crate::auth::Role::Support)
        .map(|members| {
            members
                .usergroups
                .iter()
                .cloned()
                .map(Notify::Usergroup)
                .chain(members.users.iter().cloned().map(Notify::User))
                .collect()
        })
        .unwrap_or_default()
}

/// The escalation policy a customer's requests use, by name.
pub fn policy_name<'a>(config: &'a Config, customer: &'a CustomerConfig) -> Option<&'a str> {
    customer
        .escalation
        .as_deref()
        .or(config.support.escalation.as_deref())
}

/// The customer's SLA clock: business hours (with holidays) or wall time.
pub fn sla_clock(config: &Config, customer: &CustomerConfig) -> Result<SlaClock, String> {
    if customer.tier == Tier::AroundTheClock {
        return Ok(SlaClock::Wall);
    }
    let hours = customer.business_hours.clone().unwrap_or_default();
    let days = business_time::parse_days(&hours.days).map_err(|e| e.to_string())?;
    let open = business_time::parse_time(&hours.from).map_err(|e| e.to_string())?;
    let close = business_time::parse_time(&hours.to).map_err(|e| e.to_string())?;
    let tz = hours
        .timezone
        .or(customer.timezone)
        .unwrap_or(config.team.timezone);
    let mut holidays = BTreeSet::new();
    for holiday in &hours.holidays {
        match holiday {
            Holiday::Date(date) => {
                holidays.insert(*date);
            }
            Holiday::Calendar(name) => {
                let dates = config.support.calendars.get(name).ok_or_else(|| {
                    format!("holiday calendar `{name}` is not defined under support.calendars")
                })?;
                holidays.extend(dates.iter().copied());
            }
        }
    }
    BusinessHours::new(days, open, close, tz, holidays)
        .map(SlaClock::Business)
        .map_err(|e| e.to_string())
}

/// True when `text` contains one of the urgent keywords as whole words.
pub fn is_urgent(keywords: &[String], text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    keywords.iter().any(|keyword| {
        let wanted: Vec<String> = keyword
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        !wanted.is_empty() && words.windows(wanted.len()).any(|w| w == wanted.as_slice())
    })
}

/// Checks the support sections; `(field, message)` for the first problem.
pub fn check(config: &Config) -> Result<(), (String, String)> {
    let support = &config.support;
    if !(support.nudge_at > 0.0 && support.nudge_at < 1.0) {
        return Err((
            "support.nudge_at".into(),
            "must be a fraction between 0 and 1, e.g. 0.5 for halfway to the target".into(),
        ));
    }
    for (name, policy) in &config.escalation_policies {
        let field = format!("escalation_policies.{name}");
        if policy.levels.is_empty() {
            return Err((
                format!("{field}.levels"),
                "needs at least one level: { notify: [rotation:ops-duty], after: 15m }".into(),
            ));
        }
        for (i, level) in policy.levels.iter().enumerate() {
            if level.notify.is_empty() {
                return Err((
                    format!("{field}.levels[{i}].notify"),
                    "names nobody: list users, usergroup:S…, rotation:… or channel:C…".into(),
                ));
            }
            for target in &level.notify {
                if let Notify::Rotation(rotation) = target
                    && !config.rotations.contains_key(rotation)
                {
                    return Err((
                        format!("{field}.levels[{i}].notify"),
                        format!("`rotation:{rotation}` names no rotation under rotations"),
                    ));
                }
            }
            if level.after.0.as_chrono() < chrono::Duration::minutes(1) {
                return Err((
                    format!("{field}.levels[{i}].after"),
                    "must be at least 1m (people need time to acknowledge)".into(),
                ));
            }
        }
        if policy.repeat > 10 {
            return Err((
                format!("{field}.repeat"),
                "at most 10 (a page nobody answers ten times needs a person, not more pages)"
                    .into(),
            ));
        }
    }
    let known = |name: &Option<String>, field: &str| -> Result<(), (String, String)> {
        match name {
            Some(name) if !config.escalation_policies.contains_key(name) => Err((
                field.to_string(),
                format!("`{name}` is not one of escalation_policies"),
            )),
            _ => Ok(()),
        }
    };
    known(&support.escalation, "support.escalation")?;
    known(&support.urgent_escalation, "support.urgent_escalation")?;
    known(
        &support.incidents.escalation,
        "support.incidents.escalation",
    )?;
    for (tenant, customer) in &config.customers {
        for target in customer.first_line.iter().chain(&support.first_line) {
            if let Notify::Rotation(rotation) = target
                && !config.rotations.contains_key(rotation)
            {
                return Err((
                    format!("customers.{tenant}.first_line"),
                    format!("`rotation:{rotation}` names no rotation under rotations"),
                ));
            }
        }
        known(
            &customer.escalation,
            &format!("customers.{tenant}.escalation"),
        )?;
        sla_clock(config, customer)
            .map_err(|message| (format!("customers.{tenant}.business_hours"), message))?;
        if customer.tier == Tier::AroundTheClock && customer.business_hours.is_some() {
            return Err((
                format!("customers.{tenant}.business_hours"),
                "a 24x7 customer has no business hours: remove them or use tier: business-hours"
                    .into(),
            ));
        }
        if let Some(sla) = &customer.sla
            && sla.first_response.as_chrono() < chrono::Duration::minutes(1)
        {
            return Err((
                format!("customers.{tenant}.sla.first_response"),
                "must be at least 1m".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_every_way_the_docs_show() {
        assert_eq!(
            "U0ANNA".parse::<Notify>().unwrap(),
            Notify::User("U0ANNA".into())
        );
        assert_eq!(
            "rotation:ops-duty".parse::<Notify>().unwrap(),
            Notify::Rotation("ops-duty".into())
        );
        assert_eq!(
            "usergroup:S0SRE".parse::<Notify>().unwrap(),
            Notify::Usergroup("S0SRE".into())
        );
        assert_eq!(
            "channel:C0SRE".parse::<Notify>().unwrap(),
            Notify::Channel("C0SRE".into())
        );
        for bad in ["anna", "usergroup:U0ANNA", "channel:", "pager:x"] {
            assert!(bad.parse::<Notify>().is_err(), "{bad}");
        }
    }

    #[test]
    fn urgent_keywords_match_whole_words() {
        let keywords = vec!["outage".to_string(), "is down".to_string()];
        assert!(is_urgent(&keywords, "We have an OUTAGE in prod!"));
        assert!(is_urgent(&keywords, "checkout is down since 9"));
        assert!(!is_urgent(&keywords, "no outages so far"));
        assert!(!is_urgent(&keywords, "this down is soft"));
    }
}
