//! Rotation maths: who is on call when, as pure functions of the
//! configuration, the overrides and an instant. Nothing here reads the store
//! or the clock.
//!
//! A layer's shifts start at its hand-off's local wall-clock time, `shift`
//! apart in local time (`anchor + k × shift`), so a weekly Monday 09:00
//! hand-off stays at 09:00 local across DST. A local time a clock change skips
//! starts the shift at the instant the clocks jump; one that occurs twice
//! starts it at its first occurrence (the scheduler's rule,
//! [`crate::scheduler::local_instant`]). Shift `k` belongs to
//! `members[k mod n]`, counted from the first hand-off on or after `start`.
//!
//! A layer is on call only inside its `restrict` windows. Where layers
//! overlap, the highest priority wins; an override replaces whatever the
//! layers say for its window, the newest override winning where overrides
//! overlap. A confirmed swap is two overrides.

use super::config::{Handoff, LayerConfig, RotationConfig, Window, layers_of};
use crate::config::Config;
use crate::ids::{ChannelId, UserId};
use crate::scheduler::local_instant;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// The day member order is counted from when a rotation does not say.
const DEFAULT_START: (i32, u32, u32) = (2024, 1, 1);

/// How far ahead a change of who is on call is looked for.
const LOOK_AHEAD_DAYS: i64 = 400;

/// An override: `user` is on call for the rotation during `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Override {
    /// Its number; a higher one is newer and wins where overrides overlap.
    pub id: i64,
    /// Who covers.
    pub user: UserId,
    /// From.
    pub start: DateTime<Utc>,
    /// Until (exclusive).
    pub end: DateTime<Utc>,
}

/// One shift of a layer, before restrictions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shift {
    /// Its number from the anchor (`members[index mod n]` holds it).
    pub index: i64,
    /// From.
    pub start: DateTime<Utc>,
    /// Until (exclusive).
    pub end: DateTime<Utc>,
    /// Who holds it.
    pub user: UserId,
}

/// A stretch of time with the same people on call (none: nobody is).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// From.
    pub start: DateTime<Utc>,
    /// Until (exclusive).
    pub end: DateTime<Utc>,
    /// Who is on call; empty when nobody is.
    pub users: Vec<UserId>,
    /// The layer that decided, or `None` for an override or nobody.
    pub layer: Option<String>,
}

/// One compiled layer.
#[derive(Clone, Debug)]
pub struct Layer {
    /// Its name.
    pub name: String,
    /// Its zone.
    pub tz: Tz,
    /// The local start of shift 0.
    anchor: NaiveDateTime,
    /// Its length, in local wall-clock time.
    shift: Duration,
    /// Members in turn order.
    pub members: Vec<UserId>,
    windows: Vec<Window>,
    /// Higher wins.
    pub priority: i64,
}

/// One compiled rotation.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// Its name.
    pub name: String,
    /// Where its hand-offs go.
    pub channel: ChannelId,
    /// Reminder lead times, longest first.
    pub reminders: Vec<Duration>,
    /// The zone people think of it in (its first layer's).
    pub tz: Tz,
    /// Layers, highest priority first.
    pub layers: Vec<Layer>,
}

impl Layer {
    /// Compiles a layer as [`layers_of`] gives it.
    pub fn new(config: &LayerConfig, team_tz: Tz) -> Self {
        let tz = config.timezone.unwrap_or(team_tz);
        let handoff = config.handoff.unwrap_or_else(|| {
            let from = config.restrict.first().map(|w| w.from).unwrap_or(0);
            Handoff {
                weekday: None,
                time: NaiveTime::from_hms_opt(from / 60, from % 60, 0).unwrap_or_default(),
            }
        });
        let (y, m, d) = DEFAULT_START;
        let mut date = config
            .start
            .or_else(|| NaiveDate::from_ymd_opt(y, m, d))
            .unwrap_or_default();
        if let Some(day) = handoff.weekday {
            while date.weekday() != day {
                date = date.succ_opt().unwrap_or(date);
            }
        }
        Self {
            name: config.name.clone(),
            tz,
            anchor: date.and_time(handoff.time),
            shift: config.shift.as_chrono(),
            members: config.members.clone(),
            windows: config.restrict.clone(),
            priority: config.priority.unwrap_or(1),
        }
    }

    /// The instant shift `k` starts.
    fn boundary(&self, k: i64) -> DateTime<Utc> {
        let local = self
            .shift
            .checked_mul(i32::try_from(k).unwrap_or(i32::MAX))
            .and_then(|offset| self.anchor.checked_add_signed(offset))
            .unwrap_or(self.anchor);
        local_instant(self.tz, local).unwrap_or_default()
    }

    /// The number of the shift in effect at `at`.
    fn index_at(&self, at: DateTime<Utc>) -> i64 {
        let local = at.with_timezone(&self.tz).naive_local();
        let minutes = self.shift.num_minutes().max(1);
        let mut k = (local - self.anchor).num_minutes().div_euclid(minutes);
        while self.boundary(k) > at {
            k -= 1;
        }
        while self.boundary(k + 1) <= at {
            k += 1;
        }
        k
    }

    fn member(&self, k: i64) -> UserId {
        let n = i64::try_from(self.members.len()).unwrap_or(1).max(1);
        usize::try_from(k.rem_euclid(n))
            .ok()
            .and_then(|i| self.members.get(i))
            .cloned()
            .unwrap_or_else(|| UserId::from(""))
    }

    /// The shifts overlapping `[from, to)`, in order (restrictions not applied).
    pub fn shifts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Shift> {
        let mut out = Vec::new();
        let mut k = self.index_at(from);
        let mut start = self.boundary(k);
        while start < to {
            let end = self.boundary(k + 1);
            if end > start {
                out.push(Shift {
                    index: k,
                    start,
                    end,
                    user: self.member(k),
                });
            }
            k += 1;
            start = end;
        }
        out
    }

    /// The parts of `[from, to)` inside the layer's windows, merged.
    fn on_windows(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.windows.is_empty() {
            return vec![(from, to)];
        }
        let first = from.with_timezone(&self.tz).date_naive() - Duration::days(2);
        let last = to.with_timezone(&self.tz).date_naive() + Duration::days(1);
        let mut spans = Vec::new();
        let mut date = first;
        while date <= last {
            for window in self.windows.iter().filter(|w| w.starts_on(date.weekday())) {
                let at = |minutes: u32| {
                    local_instant(
                        self.tz,
                        date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minutes)),
                    )
                };
                if let (Some(start), Some(end)) = (at(window.from), at(window.to)) {
                    let (start, end) = (start.max(from), end.min(to));
                    if start < end {
                        spans.push((start, end));
                    }
                }
            }
            date += Duration::days(1);
        }
        spans.sort();
        let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// Who this layer has on call during `[from, to)`: its shifts cut to its
    /// windows, in order.
    pub fn segments(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Segment> {
        let windows = self.on_windows(from, to);
        let mut out = Vec::new();
        for shift in self.shifts(from, to) {
            for (ws, we) in &windows {
                let (start, end) = (shift.start.max(*ws).max(from), shift.end.min(*we).min(to));
                if start < end {
                    out.push(Segment {
                        start,
                        end,
                        users: vec![shift.user.clone()],
                        layer: Some(self.name.clone()),
                    });
                }
            }
        }
        out
    }
}

impl Rotation {
    /// Compiles rotation `name`; `team_tz` and `ops_channel` fill what it leaves out.
    pub fn new(name: &str, config: &RotationConfig, team_tz: Tz, ops_channel: &ChannelId) -> Self {
        let mut layers: Vec<Layer> = layers_of(name, config)
            .iter()
            .map(|l| Layer::new(l, team_tz))
            .collect();
        let tz = layers.first().map(|l| l.tz).unwrap_or(team_tz);
        layers.sort_by_key(|l| std::cmp::Reverse(l.priority));
        let mut reminders: Vec<Duration> = config.reminders.iter().map(|r| r.as_chrono()).collect();
        reminders.sort_by_key(|r| std::cmp::Reverse(*r));
        reminders.dedup();
        Self {
            name: name.to_string(),
            channel: config
                .channel
                .clone()
                .unwrap_or_else(|| ops_channel.clone()),
            reminders,
            tz,
            layers,
        }
    }

    /// Rotation `name` of `config`, if it has one.
    pub fn from_config(config: &Config, name: &str) -> Option<Self> {
        let rotation = config.rotations.get(name)?;
        Some(Self::new(
            name,
            rotation,
            config.team.timezone,
            &config.team.ops_channel,
        ))
    }

    /// Every rotation of `config`, by name.
    pub fn all(config: &Config) -> Vec<Self> {
        config
            .rotations
            .keys()
            .filter_map(|name| Self::from_config(config, name))
            .collect()
    }

    /// Every configured member, in order of first appearance.
    pub fn members(&self) -> Vec<UserId> {
        let mut out: Vec<UserId> = Vec::new();
        for user in self.layers.iter().flat_map(|l| &l.members) {
            if !out.contains(user) {
                out.push(user.clone());
            }
        }
        out
    }

    /// Who is on call during `[from, to)`, layers and `overrides` applied:
    /// consecutive segments covering it exactly, a change of people between
    /// each (segments with nobody included).
    pub fn segments(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        overrides: &[Override],
    ) -> Vec<Segment> {
        if from >= to {
            return Vec::new();
        }
        let layers: Vec<Vec<Segment>> = self.layers.iter().map(|l| l.segments(from, to)).collect();
        let overrides: Vec<&Override> = overrides
            .iter()
            .filter(|o| o.start < to && o.end > from && o.start < o.end)
            .collect();
        let mut cuts: Vec<DateTime<Utc>> = vec![from, to];
        for segment in layers.iter().flatten() {
            cuts.extend([segment.start, segment.end]);
        }
        for o in &overrides {
            cuts.extend([o.start.max(from), o.end.min(to)]);
        }
        cuts.sort();
        cuts.dedup();
        let mut cursors = vec![0usize; layers.len()];
        let mut out: Vec<Segment> = Vec::new();
        for pair in cuts.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            let chosen = overrides
                .iter()
                .filter(|o| o.start <= start && o.end >= end)
                .max_by_key(|o| o.id)
                .map(|o| (vec![o.user.clone()], None))
                .or_else(|| {
                    layers
                        .iter()
                        .zip(cursors.iter_mut())
                        .find_map(|(segments, cursor)| {
                            while segments.get(*cursor).is_some_and(|s| s.end <= start) {
                                *cursor += 1;
                            }
                            segments
                                .get(*cursor)
                                .filter(|s| s.start <= start)
                                .map(|s| (s.users.clone(), s.layer.clone()))
                        })
                });
            let (users, layer) = chosen.unwrap_or_default();
            match out.last_mut() {
                Some(last) if last.users == users => last.end = end,
                _ => out.push(Segment {
                    start,
                    end,
                    users,
                    layer,
                }),
            }
        }
        out
    }

    /// Who is on call at `at`; empty when nobody is.
    pub fn on_call_at(&self, at: DateTime<Utc>, overrides: &[Override]) -> Vec<UserId> {
        self.segments(at, at + Duration::milliseconds(1), overrides)
            .into_iter()
            .next()
            .map(|s| s.users)
            .unwrap_or_default()
    }

    /// The segment in effect at `at`, from its real start to its real end
    /// (each looked for up to 400 days away).
    pub fn segment_at(&self, at: DateTime<Utc>, overrides: &[Override]) -> Segment {
        let mut found = None;
        for days in [8, 64, LOOK_AHEAD_DAYS] {
            let span = Duration::days(days);
            let (from, to) = (at - span, at + span);
            let segment = self
                .segments(from, to, overrides)
                .into_iter()
                .find(|s| s.start <= at && at < s.end);
            if let Some(segment) = segment {
                let complete = segment.start > from && segment.end < to;
                found = Some(segment);
                if complete {
                    break;
                }
            }
        }
        found.unwrap_or(Segment {
            start: at,
            end: at,
            users: Vec::new(),
            layer: None,
        })
    }

    /// The first moment after `after` at which the people on call change.
    pub fn next_change(
        &self,
        after: DateTime<Utc>,
        overrides: &[Override],
    ) -> Option<DateTime<Utc>> {
        for days in [8, 64, LOOK_AHEAD_DAYS] {
            let until = after + Duration::days(days);
            let segments = self.segments(after, until, overrides);
            if let Some(first) = segments.first()
                && first.end < until
            {
                return Some(first.end);
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "roster_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use chrono::{TimeZone, Timelike};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn config(rotations: &str) -> Config {
        let text = format!(
            "team: {{ name: T, slack_team_id: T0STAFF, timezone: Europe/Berlin, ops_channel: C0OPS }}\nrotations:\n{rotations}"
        );
        parse("test.yaml", &text).unwrap()
    }

    fn users(names: &[&str]) -> Vec<UserId> {
        names.iter().map(|n| UserId::from(*n)).collect()
    }

    #[test]
    fn a_weekly_rotation_hands_off_monday_nine_berlin_on_both_sides_of_dst() {
        let config = config(
            "  ops-duty: { timezone: Europe/Berlin, handoff: \"Mon 09:00\", shift: 1w, start: 2026-03-02, members: [U0ANNA, U0BEN, U0CHEN] }\n",
        );
        let rotation = Rotation::from_config(&config, "ops-duty").unwrap();
        // Monday 2026-03-02 09:00 CET is 08:00 UTC: Anna's first shift.
        assert_eq!(
            rotation.on_call_at(utc("2026-03-02T08:00:00Z"), &[]),
            users(&["U0ANNA"])
        );
        assert_eq!(
            rotation.on_call_at(utc("2026-03-02T07:59:59Z"), &[]),
            users(&["U0CHEN"])
        );
        // After the clocks move (29 March), 09:00 CEST is 07:00 UTC.
        assert_eq!(
            rotation.on_call_at(utc("2026-03-30T06:59:00Z"), &[]),
            users(&["U0ANNA"])
        );
        assert_eq!(
            rotation.on_call_at(utc("2026-03-30T07:00:00Z"), &[]),
            users(&["U0BEN"])
        );
        assert_eq!(
            rotation.next_change(utc("2026-03-24T12:00:00Z"), &[]),
            Some(utc("2026-03-30T07:00:00Z")),
            "a shift across the change is an hour shorter in UTC"
        );
    }

    #[test]
    fn a_higher_layer_wins_where_layers_overlap_and_restrictions_leave_gaps() {
        let config = config(
            "  sre:\n    layers:\n      - { name: emea, timezone: Europe/Berlin, restrict: \"08:00-20:00\", shift: 1d, start: 2026-03-02, members: [U0DANA, U0EVA] }\n      - { name: amer, timezone: America/New_York, restrict: \"08:00-20:00\", shift: 1d, start: 2026-03-02, members: [U0FRED, U0GINA] }\n",
        );
        let rotation = Rotation::from_config(&config, "sre").unwrap();
        let day = |h: u32| Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap();
        // 07:00 UTC = 08:00 Berlin: EMEA's Dana; 13:00 UTC = 08:00 New York: AMER's Fred wins.
        assert_eq!(rotation.on_call_at(day(6), &[]), Vec::<UserId>::new());
        assert_eq!(rotation.on_call_at(day(7), &[]), users(&["U0DANA"]));
        assert_eq!(rotation.on_call_at(day(12), &[]), users(&["U0DANA"]));
        assert_eq!(rotation.on_call_at(day(13), &[]), users(&["U0FRED"]));
        assert_eq!(rotation.on_call_at(day(19), &[]), users(&["U0FRED"]));
        // 20:00 New York is 01:00 UTC: nobody until Berlin's 08:00.
        assert_eq!(
            rotation.on_call_at(utc("2026-03-03T01:00:00Z"), &[]),
            Vec::<UserId>::new()
        );
        assert_eq!(
            rotation.on_call_at(utc("2026-03-03T07:00:00Z"), &[]),
            users(&["U0EVA"])
        );
        let segments = rotation.segments(day(0), day(0) + Duration::days(1), &[]);
        let changes: Vec<u32> = segments.iter().map(|s| s.start.hour()).collect();
        assert_eq!(changes, vec![0, 1, 7, 13], "{segments:?}");
    }

    #[test]
    fn the_newest_override_wins() {
        let config = config(
            "  ops-duty: { handoff: \"09:00\", shift: 1d, start: 2026-03-02, members: [U0ANNA, U0BEN] }\n",
        );
        let rotation = Rotation::from_config(&config, "ops-duty").unwrap();
        let overrides = vec![
            Override {
                id: 1,
                user: "U0CHEN".into(),
                start: utc("2026-03-02T10:00:00Z"),
                end: utc("2026-03-02T14:00:00Z"),
            },
            Override {
                id: 2,
                user: "U0DANA".into(),
                start: utc("2026-03-02T12:00:00Z"),
                end: utc("2026-03-02T13:00:00Z"),
            },
        ];
        let at = |t: &str| rotation.on_call_at(utc(t), &overrides);
        assert_eq!(at("2026-03-02T09:59:00Z"), users(&["U0ANNA"]));
        assert_eq!(at("2026-03-02T10:00:00Z"), users(&["U0CHEN"]));
        assert_eq!(at("2026-03-02T12:30:00Z"), users(&["U0DANA"]));
        assert_eq!(at("2026-03-02T13:00:00Z"), users(&["U0CHEN"]));
        assert_eq!(at("2026-03-02T14:00:00Z"), users(&["U0ANNA"]));
        assert_eq!(
            rotation.next_change(utc("2026-03-02T09:00:00Z"), &overrides),
            Some(utc("2026-03-02T10:00:00Z"))
        );
    }
}
