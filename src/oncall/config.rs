//! The `rotations:` section: who takes turns, how long a shift lasts, when
//! it is handed off and in which time zone, layered where one team covers
//! part of the day over another.
//!
//! A rotation is written either flat (one layer: `members`, `shift`,
//! `handoff`, `timezone`) or with `layers:`. Everything the types cannot say
//! is checked by [`check`], which names the field that is wrong.

use crate::config::HumanDuration;
use crate::ids::{ChannelId, UserId};
use chrono::{NaiveDate, NaiveTime, Timelike, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// Every rotation, by name (`ops-duty`).
pub type Rotations = BTreeMap<String, RotationConfig>;

/// One rotation as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    /// IANA zone of its hand-offs and restrictions (default: the team's);
    /// layers may name their own.
    #[serde(default, deserialize_with = "crate::config::deserialize_optional_tz")]
    pub timezone: Option<Tz>,
    /// A flat rotation's hand-off: `Mon 09:00` (weekly shifts) or `09:00`.
    #[serde(default)]
    pub handoff: Option<Handoff>,
    /// A flat rotation's shift length: `1w`, `1d`, `12h`.
    #[serde(default)]
    pub shift: Option<HumanDuration>,
    /// A flat rotation's members, in turn order (Slack user ids).
    #[serde(default)]
    pub members: Vec<UserId>,
    /// A flat rotation's on-call windows (default: around the clock).
    #[serde(default, deserialize_with = "windows")]
    pub restrict: Vec<Window>,
    /// The day the first member's first shift starts (default 2024-01-01).
    #[serde(default)]
    pub start: Option<NaiveDate>,
    /// Layers, when several teams share the rotation.
    #[serde(default)]
    pub layers: Vec<LayerConfig>,
    /// Where hand-offs and empty-shift warnings are posted (default: the
    /// team's ops channel).
    #[serde(default)]
    pub channel: Option<ChannelId>,
    /// How long before a shift starts its engineer is reminded (and an empty
    /// shift announced): default a day and an hour.
    #[serde(default = "default_reminders")]
    pub reminders: Vec<HumanDuration>,
}

/// One layer of a rotation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    /// Its name, e.g. `emea`.
    pub name: String,
    /// Its zone (default: the rotation's, else the team's).
    #[serde(default, deserialize_with = "crate::config::deserialize_optional_tz")]
    pub timezone: Option<Tz>,
    /// Its hand-off (default: the start of its first `restrict` window).
    #[serde(default)]
    pub handoff: Option<Handoff>,
    /// Its shift length.
    pub shift: HumanDuration,
    /// Its members, in turn order.
    pub members: Vec<UserId>,
    /// When it is on call (default: around the clock).
    #[serde(default, deserialize_with = "windows")]
    pub restrict: Vec<Window>,
    /// Where layers overlap the higher priority wins (default: its position,
    /// so a later layer wins over an earlier one).
    #[serde(default)]
    pub priority: Option<i64>,
    /// The day its first member's first shift starts (default: the rotation's).
    #[serde(default)]
    pub start: Option<NaiveDate>,
}

fn default_reminders() -> Vec<HumanDuration> {
    vec![
        HumanDuration::from_secs(86_400),
        HumanDuration::from_secs(3_600),
    ]
}

/// A hand-off moment: a local time, on a weekday for weekly shifts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handoff {
    /// The weekday (for shifts of whole weeks).
    pub weekday: Option<Weekday>,
    /// The local time.
    pub time: NaiveTime,
}

/// Why a hand-off, window or time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(String);

/// Reads `09:00` or `9:30` (and `24:00` when `allow_24` is set) as minutes
/// after midnight.
fn minutes_of(text: &str, allow_24: bool) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 {
        return None;
    }
    match h {
        0..=23 => Some(h * 60 + m),
        24 if allow_24 && m == 0 => Some(1440),
        _ => None,
    }
}

/// Reads a weekday: `Mon`, `monday`.
pub fn weekday_of(text: &str) -> Option<Weekday> {
    let lower = text.to_ascii_lowercase();
    let day = match lower.get(..3)? {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    };
    let full = day_name(day).to_ascii_lowercase();
    (lower.len() == 3 || full == lower).then_some(day)
}

fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

impl FromStr for Handoff {
    type Err = FormatError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || {
            FormatError(format!(
                "`{text}` is not a hand-off time: write a local time such as \"09:00\", or a weekday and time such as \"Mon 09:00\""
            ))
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let (weekday, time) = match words.as_slice() {
            [time] => (None, *time),
            [day, time] => (Some(weekday_of(day).ok_or_else(err)?), *time),
            _ => return Err(err()),
        };
        let minutes = minutes_of(time, false).ok_or_else(err)?;
        let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).ok_or_else(err)?;
        Ok(Self { weekday, time })
    }
}

impl fmt::Display for Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(day) = self.weekday {
            write!(f, "{} ", &day_name(day)[..3])?;
        }
        write!(f, "{:02}:{:02}", self.time.hour(), self.time.minute())
    }
}

impl<'de> Deserialize<'de> for Handoff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// When a layer is on call: a daily window in local time, on some weekdays.
/// `to` may be past midnight (`20:00-08:00` ends the next morning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// The weekdays the window starts on (empty: every day).
    pub days: BTreeSet<u32>,
    /// Start, minutes after local midnight.
    pub from: u32,
    /// End, minutes after the start day's local midnight (at most two days).
    pub to: u32,
}

impl Window {
    /// True when the window starts on `day`.
    pub fn starts_on(&self, day: Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&day.num_days_from_monday())
    }
}

fn days_of(text: &str) -> Option<BTreeSet<u32>> {
    let mut days = BTreeSet::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (
                    weekday_of(a)?.num_days_from_monday(),
                    weekday_of(b)?.num_days_from_monday(),
                );
                let mut day = a;
                loop {
                    days.insert(day);
                    if day == b {
                        break;
                    }
                    day = (day + 1) % 7;
                }
            }
            None => {
                days.insert(weekday_of(part)?.num_days_from_monday());
            }
        }
    }
    Some(days)
}

impl FromStr for Window {
    type Err = FormatError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || {
            FormatError(format!(
                "`{text}` is not an on-call window: write local times such as \"08:00-20:00\", optionally after weekdays, e.g. \"Mon-Fri 08:00-18:00\" (an end before the start is the next day)"
            ))
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let (days, times) = match words.as_slice() {
            [times] => (BTreeSet::new(), *times),
            [days, times] => (days_of(days).ok_or_else(err)?, *times),
            _ => return Err(err()),
        };
        let (from, to) = times.split_once('-').ok_or_else(err)?;
        let from = minutes_of(from, false).ok_or_else(err)?;
        let mut to = minutes_of(to, true).ok_or_else(err)?;
        if to == from {
            return Err(err());
        }
        if to < from {
            to += 1440;
        }
        Ok(Self { days, from, to })
    }
}

fn windows<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Window>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let texts = match OneOrMany::deserialize(d)? {
        OneOrMany::One(text) => vec![text],
        OneOrMany::Many(texts) => texts,
    };
    texts
        .iter()
        .map(|t| t.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// A rotation's layers as written: the flat form is one layer named after
/// the rotation. Zones and hand-offs are filled in from the rotation and
/// `team_tz`; priorities from positions.
pub fn layers_of(name: &str, rotation: &RotationConfig) -> Vec<LayerConfig> {
    if rotation.layers.is_empty() {
        return vec![LayerConfig {
            name: name.to_string(),
            timezone: rotation.timezone,
            handoff: rotation.handoff,
            shift: rotation.shift.unwrap_or(HumanDuration::from_secs(604_800)),
            members: rotation.members.clone(),
            restrict: rotation.restrict.clone(),
            priority: Some(1),
            start: rotation.start,
        }];
    }
    rotation
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| LayerConfig {
            timezone: layer.timezone.or(rotation.timezone),
            start: layer.start.or(rotation.start),
            priority: Some(layer.priority.unwrap_or(i as i64 + 1)),
            ..layer.clone()
        })
        .collect()
}

/// A rotation's field that is wrong, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field's path, e.g. `rotations.ops-duty.layers[1].members`.
    pub field: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

fn is_user_id(user: &UserId) -> bool {
    let id = user.as_str();
    id.len() > 2
        && id.starts_with(['U', 'W'])
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Checks what the types cannot: members, shifts and hand-offs that fit
/// together, unique layer names and priorities, sensible reminders.
pub fn check(rotations: &Rotations) -> Result<(), Problem> {
    for (name, rotation) in rotations {
        let at = |field: &str| format!("rotations.{name}.{field}");
        let problem = |field: String, message: String| Err(Problem { field, message });
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return problem(
                format!("rotations.{name}"),
                "a rotation's name is letters, digits, - and _ (it is typed in /wk oncall)".into(),
            );
        }
        let flat = rotation.shift.is_some()
            || rotation.handoff.is_some()
            || !rotation.members.is_empty()
            || !rotation.restrict.is_empty();
        if rotation.layers.is_empty() && rotation.members.is_empty() {
            return problem(
                at("members"),
                "expected at least one Slack user id, e.g. [U0ANNA, U0BEN], or layers".into(),
            );
        }
        if !rotation.layers.is_empty() && flat {
            return problem(
                at("layers"),
                "write either members, shift, handoff and restrict, or layers, not both".into(),
            );
        }
        if rotation.layers.is_empty() && rotation.handoff.is_none() && rotation.restrict.is_empty()
        {
            return problem(
                at("handoff"),
                "expected the hand-off time, e.g. \"Mon 09:00\" for weekly shifts or \"09:00\""
                    .into(),
            );
        }
        if rotation.layers.is_empty() && rotation.shift.is_none() {
            return problem(
                at("shift"),
                "expected the shift length, e.g. 1w, 1d or 12h".into(),
            );
        }
        for (i, lead) in rotation.reminders.iter().enumerate() {
            if lead.as_chrono() < chrono::Duration::minutes(1)
                || lead.as_chrono() > chrono::Duration::days(14)
            {
                return problem(
                    format!("rotations.{name}.reminders[{i}]"),
                    format!(
                        "{lead} is not a reminder lead time: write between 1m and 2w, e.g. 1d or 1h"
                    ),
                );
            }
        }
        let mut names = BTreeSet::new();
        let mut priorities = BTreeSet::new();
        let layers = layers_of(name, rotation);
        for (i, layer) in layers.iter().enumerate() {
            let field = |f: &str| {
                if rotation.layers.is_empty() {
                    at(f)
                } else {
                    format!("rotations.{name}.layers[{i}].{f}")
                }
            };
            if !names.insert(layer.name.as_str()) {
                return problem(
                    field("name"),
                    format!(
                        "`{}` is used twice; give each layer its own name",
                        layer.name
                    ),
                );
            }
            if let Some(p) = layer.priority
                && !priorities.insert(p)
            {
                return problem(
                    field("priority"),
                    format!(
                        "priority {p} is used by another layer; the higher number wins where layers overlap, so each needs its own"
                    ),
                );
            }
            if layer.members.is_empty() {
                return problem(
                    field("members"),
                    "expected at least one Slack user id, e.g. [U0ANNA, U0BEN]".into(),
                );
            }
            if let Some(bad) = layer.members.iter().find(|u| !is_user_id(u)) {
                return problem(
                    field("members"),
                    format!("`{bad}` is not a Slack user id (they look like U0ANNA or W0123)"),
                );
            }
            let shift = layer.shift.as_chrono();
            let minutes = shift.num_minutes();
            let whole_days = minutes > 0 && minutes % 1440 == 0;
            if minutes < 60 || shift.num_seconds() % 60 != 0 || !(whole_days || 1440 % minutes == 0)
            {
                return problem(
                    field("shift"),
                    format!(
                        "{} cannot keep hand-offs at the same local time: write whole days or weeks (1d, 1w, 2w) or a part of a day that divides it (12h, 8h, 6h, 4h, 1h)",
                        layer.shift
                    ),
                );
            }
            match layer.handoff {
                Some(Handoff {
                    weekday: Some(_), ..
                }) if minutes % (7 * 1440) != 0 => {
                    return problem(
                        field("handoff"),
                        format!(
                            "a weekday hand-off needs shifts of whole weeks, not {}; write \"09:00\" for daily hand-offs",
                            layer.shift
                        ),
                    );
                }
                None if layer.restrict.is_empty() => {
                    return problem(
                        field("handoff"),
                        "expected the hand-off time, e.g. \"09:00\" (it defaults to the start of the first restrict window)".into(),
                    );
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoffs_and_windows_read_what_operators_write() {
        let h: Handoff = "Mon 09:00".parse().unwrap();
        assert_eq!(h.weekday, Some(Weekday::Mon));
        assert_eq!(h.to_string(), "Mon 09:00");
        assert_eq!("9:30".parse::<Handoff>().unwrap().to_string(), "09:30");
        for bad in ["25:00", "Mon", "Funday 09:00", "09:60", "9", "Mon 09:00 x"] {
            let err = bad.parse::<Handoff>().unwrap_err().to_string();
            assert!(err.contains("Mon 09:00"), "{bad}: {err}");
        }
        let w: Window = "Mon-Fri 08:00-18:00".parse().unwrap();
        assert_eq!(w.days, BTreeSet::from([0, 1, 2, 3, 4]));
        assert_eq!((w.from, w.to), (480, 1080));
        let night: Window = "Fri-Mon 20:00-08:00".parse().unwrap();
        assert_eq!(night.days, BTreeSet::from([4, 5, 6, 0]));
        assert_eq!(night.to, 1440 + 480, "ends the next morning");
        assert_eq!("00:00-24:00".parse::<Window>().unwrap().to, 1440);
        for bad in ["08:00", "08:00-08:00", "Xyz 08:00-10:00", "8-10"] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }

    fn problem(rotations: &str) -> String {
        let text = format!(
            "team: {{ name: T, slack_team_id: T0STAFF, timezone: Europe/Berlin, ops_channel: C0OPS }}\nrotations:\n{rotations}"
        );
        crate::config::parse("cfg.yaml", &text)
            .map(|_| "accepted".to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn check_names_the_file_the_field_and_the_problem() {
        let cases = [
            (
                "  ops: { timezone: Mars/Base, handoff: \"09:00\", shift: 1d, members: [U0ANNA] }\n",
                "Mars/Base",
            ),
            (
                "  ops: { handoff: \"Mon 9h\", shift: 1w, members: [U0ANNA] }\n",
                "is not a hand-off time",
            ),
            (
                "  ops: { handoff: \"09:00\", shift: 1d, members: [] }\n",
                "cfg.yaml:3: rotations.ops.members: expected at least one",
            ),
            (
                "  ops: { handoff: \"09:00\", shift: 1d, members: [anna] }\n",
                "cfg.yaml:3: rotations.ops.members: `anna` is not a Slack user id",
            ),
            (
                "  ops: { handoff: \"Mon 09:00\", shift: 1d, members: [U0ANNA] }\n",
                "rotations.ops.handoff: a weekday hand-off needs shifts of whole weeks",
            ),
            (
                "  ops: { handoff: \"09:00\", shift: 5h, members: [U0ANNA] }\n",
                "rotations.ops.shift: 5h cannot keep hand-offs",
            ),
            (
                "  ops:\n    layers:\n      - { name: a, restrict: \"08:00-20:00\", shift: 1d, members: [U0A1] }\n      - { name: a, handoff: \"09:00\", shift: 1d, members: [U0B1] }\n",
                "rotations.ops.layers[1].name: `a` is used twice",
            ),
            (
                "  ops:\n    layers:\n      - { name: a, shift: 1d, members: [U0A1] }\n",
                "rotations.ops.layers[0].handoff: expected the hand-off time",
            ),
            (
                "  ops: { handoff: \"09:00\", shift: 1d, members: [U0ANNA], restrict: \"8-20\" }\n",
                "is not an on-call window",
            ),
            (
                "  ops: { handoff: \"09:00\", shift: 1d, members: [U0ANNA], reminders: [0s] }\n",
                "rotations.ops.reminders[0]",
            ),
        ];
        for (yaml, expected) in cases {
            let err = problem(yaml);
            assert!(err.contains(expected), "{yaml}\n→ {err}");
            // `file:line: field: problem`, the line of the rotation (or deeper).
            let line = err
                .strip_prefix("cfg.yaml:")
                .and_then(|r| r.split(':').next());
            assert!(
                line.is_some_and(|l| l.parse::<usize>().is_ok_and(|l| l >= 3)),
                "{err}"
            );
        }
        assert_eq!(
            problem("  ops: { handoff: \"Mon 09:00\", shift: 2w, members: [U0ANNA, W0BEN] }\n"),
            "accepted"
        );
    }
}
