//! Property tests of the rotation maths over a year of shifts in several
//! time zones: shifts tile time (no gaps, no overlaps within a layer), start
//! at the configured local time (or when the clocks jump over it), go to the
//! members in turn, stay inside restrictions, and the highest layer or newest
//! override wins.

use super::*;
use crate::config::HumanDuration;
use chrono::{LocalResult, TimeZone, Timelike};
use proptest::prelude::*;
use std::collections::BTreeSet;

const ZONES: [Tz; 5] = [
    chrono_tz::Europe::Berlin,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Sydney,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Australia::Lord_Howe, // half-hour DST
];

const SHIFT_MINUTES: [i64; 11] = [60, 120, 180, 240, 360, 480, 720, 1440, 2880, 10080, 20160];

fn year() -> (DateTime<Utc>, DateTime<Utc>) {
    (
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
    )
}

fn members(n: usize, tag: &str) -> Vec<UserId> {
    (0..n).map(|i| UserId::new(format!("U{tag}{i}"))).collect()
}

#[derive(Clone, Debug)]
struct LayerCase {
    zone: usize,
    shift: usize,
    handoff_minute: u32,
    weekday: u32,
    members: usize,
    start_offset_days: i64,
    windows: Vec<(u32, u32, u32)>,
}

fn layer_case(restricted: bool) -> impl Strategy<Value = LayerCase> {
    let windows = if restricted {
        prop::collection::vec((0u32..1440, 30u32..1440, 0u32..8), 1..3).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (
        0..ZONES.len(),
        0..SHIFT_MINUTES.len(),
        0u32..1440,
        0u32..7,
        1usize..6,
        -800i64..800,
        windows,
    )
        .prop_map(
            |(zone, shift, handoff_minute, weekday, members, start_offset_days, windows)| {
                LayerCase {
                    zone,
                    shift,
                    handoff_minute,
                    weekday,
                    members,
                    start_offset_days,
                    windows,
                }
            },
        )
}

impl LayerCase {
    fn config(&self, name: &str, priority: i64) -> LayerConfig {
        let minutes = SHIFT_MINUTES[self.shift];
        let weekday = (minutes % 10080 == 0)
            .then(|| chrono::Weekday::try_from(u8::try_from(self.weekday).unwrap()).unwrap());
        LayerConfig {
            name: name.into(),
            timezone: Some(ZONES[self.zone]),
            handoff: Some(Handoff {
                weekday,
                time: NaiveTime::from_hms_opt(
                    self.handoff_minute / 60,
                    self.handoff_minute % 60,
                    0,
                )
                .unwrap(),
            }),
            shift: HumanDuration::from_secs(minutes * 60),
            members: members(self.members, name),
            restrict: self
                .windows
                .iter()
                .map(|&(from, length, day)| Window {
                    // day 7: every day; otherwise one weekday.
                    days: if day == 7 {
                        BTreeSet::new()
                    } else {
                        BTreeSet::from([day])
                    },
                    from,
                    to: from + length,
                })
                .collect(),
            priority: Some(priority),
            start: NaiveDate::from_ymd_opt(2026, 1, 1)
                .map(|d| d + Duration::days(self.start_offset_days)),
        }
    }
}

/// True when the clocks of `tz` change within `margin` of `at`.
fn near_transition(tz: Tz, at: DateTime<Utc>, margin: Duration) -> bool {
    use chrono::Offset;
    let offset = |t: DateTime<Utc>| t.with_timezone(&tz).offset().fix();
    offset(at - margin) != offset(at + margin)
}

/// Whether `at` is inside one of `windows` by reading the local clock: an
/// independent reading of the restriction rule.
fn inside(windows: &[Window], tz: Tz, at: DateTime<Utc>) -> bool {
    let local = at.with_timezone(&tz).naive_local();
    let minute = local.hour() * 60 + local.minute();
    windows.iter().any(|w| {
        let today = w.starts_on(local.weekday()) && minute >= w.from && minute < w.to.min(1440);
        let yesterday = local
            .date()
            .pred_opt()
            .is_some_and(|d| w.starts_on(d.weekday()));
        let spill = w.to > 1440 && yesterday && minute < w.to - 1440;
        today || spill
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_years_shifts_tile_time_start_at_the_local_handoff_and_take_turns(case in layer_case(false)) {
        let config = case.config("primary", 1);
        let layer = Layer::new(&config, chrono_tz::UTC);
        let tz = layer.tz;
        let (from, to) = year();
        let shifts = layer.shifts(from, to);
        prop_assert!(!shifts.is_empty());
        prop_assert!(shifts[0].start <= from && shifts[shifts.len() - 1].end >= to);
        let minutes = SHIFT_MINUTES[case.shift];
        for pair in shifts.windows(2) {
            prop_assert_eq!(pair[0].end, pair[1].start, "no gap, no overlap");
            prop_assert!(pair[0].index < pair[1].index);
        }
        for shift in &shifts {
            prop_assert!(shift.start < shift.end);
            let n = i64::try_from(case.members).unwrap();
            let expected_user = &config.members[usize::try_from(shift.index.rem_euclid(n)).unwrap()];
            prop_assert_eq!(&shift.user, expected_user, "members take turns");
            // The configured local time of this shift's start, read independently.
            let day_minute = (i64::from(case.handoff_minute) + shift.index * minutes).rem_euclid(1440);
            let expected = (u32::try_from(day_minute / 60).unwrap(), u32::try_from(day_minute % 60).unwrap());
            let local = shift.start.with_timezone(&tz);
            let wall = local.naive_local();
            let expected_wall = wall.date().and_hms_opt(expected.0, expected.1, 0).unwrap();
            match tz.from_local_datetime(&expected_wall) {
                LocalResult::Single(at) => prop_assert_eq!(at.to_utc(), shift.start, "at {}", expected_wall),
                LocalResult::Ambiguous(first, _) => prop_assert_eq!(first.to_utc(), shift.start, "first of a repeated {}", expected_wall),
                LocalResult::None => {
                    // Skipped by spring forward: the shift starts as the clocks jump.
                    prop_assert!(near_transition(tz, shift.start, Duration::seconds(1)));
                    prop_assert!(tz.from_local_datetime(&(wall - Duration::seconds(1))).single().is_none() || wall.time() != expected_wall.time());
                }
            }
            if let Some(day) = config.handoff.and_then(|h| h.weekday)
                && !near_transition(tz, shift.start, Duration::hours(3))
            {
                prop_assert_eq!(local.weekday(), day);
            }
        }
    }

    #[test]
    fn a_restricted_layer_is_on_call_only_inside_its_windows(
        case in layer_case(true),
        probes in prop::collection::vec(0i64..525_600, 200),
    ) {
        let config = case.config("day", 1);
        let layer = Layer::new(&config, chrono_tz::UTC);
        let (from, to) = year();
        let segments = layer.segments(from, to);
        for pair in segments.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start, "no overlap within a layer");
        }
        let shifts = layer.shifts(from, to);
        for minute in probes {
            let at = from + Duration::minutes(minute);
            if near_transition(layer.tz, at, Duration::hours(26)) {
                continue; // a window edge may sit in a skipped or repeated hour
            }
            let on = segments.iter().find(|s| s.start <= at && at < s.end);
            let expected = inside(&config.restrict, layer.tz, at);
            prop_assert_eq!(on.is_some(), expected, "at {} local {}", at, at.with_timezone(&layer.tz));
            if let Some(segment) = on {
                let shift = shifts.iter().find(|s| s.start <= at && at < s.end).unwrap();
                prop_assert_eq!(&segment.users, &vec![shift.user.clone()], "the shift's member");
            }
        }
    }

    #[test]
    fn the_highest_layer_wins_and_the_newest_override_beats_layers(
        cases in prop::collection::vec(layer_case(true), 1..4),
        raw_overrides in prop::collection::vec((0i64..525_600, 30i64..20_000, 0usize..3), 0..6),
        probes in prop::collection::vec(0i64..525_600, 200),
    ) {
        let (from, to) = year();
        let mut configs: Vec<LayerConfig> = cases
            .iter()
            .enumerate()
            .map(|(i, c)| c.config(&format!("L{i}"), i64::try_from(i).unwrap() + 1))
            .collect();
        // A 24/7 base layer under the restricted ones.
        let mut base = cases[0].config("base", 0);
        base.restrict.clear();
        configs.insert(0, base);
        let rotation_config = RotationConfig {
            timezone: None,
            handoff: None,
            shift: None,
            members: Vec::new(),
            restrict: Vec::new(),
            start: None,
            layers: configs.clone(),
            channel: None,
            reminders: Vec::new(),
        };
        let rotation = Rotation::new("r", &rotation_config, chrono_tz::UTC, &"C0OPS".into());
        let overrides: Vec<Override> = raw_overrides
            .iter()
            .enumerate()
            .map(|(i, &(start, length, who))| Override {
                id: i64::try_from(i).unwrap() + 1,
                user: UserId::new(format!("UOVR{who}")),
                start: from + Duration::minutes(start),
                end: from + Duration::minutes(start + length),
            })
            .collect();
        let segments = rotation.segments(from, to, &overrides);
        prop_assert_eq!(segments[0].start, from);
        prop_assert_eq!(segments[segments.len() - 1].end, to);
        for pair in segments.windows(2) {
            prop_assert_eq!(pair[0].end, pair[1].start, "the roster covers the year");
            prop_assert!(pair[0].users != pair[1].users, "a segment ends only when people change");
        }
        let layers: Vec<Layer> = configs.iter().map(|c| Layer::new(c, chrono_tz::UTC)).collect();
        for minute in probes {
            let at = from + Duration::minutes(minute);
            let expected = overrides
                .iter()
                .filter(|o| o.start <= at && at < o.end)
                .max_by_key(|o| o.id)
                .map(|o| vec![o.user.clone()])
                .or_else(|| {
                    let mut by_priority: Vec<&Layer> = layers.iter().collect();
                    by_priority.sort_by_key(|l| std::cmp::Reverse(l.priority));
                    by_priority.iter().find_map(|l| {
                        l.segments(at, at + Duration::milliseconds(1)).first().map(|s| s.users.clone())
                    })
                })
                .unwrap_or_default();
            prop_assert_eq!(rotation.on_call_at(at, &overrides), expected.clone(), "at {}", at);
            let segment = segments.iter().find(|s| s.start <= at && at < s.end).unwrap();
            prop_assert_eq!(&segment.users, &expected);
        }
    }
}
