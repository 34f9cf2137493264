//! Recurring schedules: a cron expression evaluated in an IANA time zone.
//!
//! Expressions are standard five-field cron — `minute hour day-of-month month
//! day-of-week`, with `0` or `7` for Sunday and names (`MON`) allowed — or
//! `@hourly`, `@daily`, `@weekly`, `@monthly`. They are matched against local
//! wall-clock time in the schedule's zone, so a `0 9 * * MON` hand-off in
//! Europe/Berlin stays at 09:00 local on both sides of a clock change.
//!
//! Clock changes, the documented rule:
//! - a local time that does not exist (spring forward, e.g. 02:30 when clocks
//!   jump from 02:00 to 03:00) fires once, at the instant the clocks jump
//!   (03:00 local); several skipped occurrences collapse into that one firing;
//! - a local time that occurs twice (fall back) fires once, at its first
//!   occurrence (the earlier instant).

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Recurrence {
    expression: String,
    schedule: cron::Schedule,
    tz: Tz,
}

/// Why an expression could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{expression}` is not a schedule ({reason}): write five cron fields, minute hour day month weekday, e.g. \"0 9 * * MON\", or @daily"
)]
pub struct RecurrenceError {
    /// The expression as written.
    pub expression: String,
    /// What the parser said.
    pub reason: String,
}

const WEEKDAYS: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// Turns numeric weekdays of standard cron (0–7, Sunday = 0 or 7) into names,
/// which the `cron` crate reads unambiguously (its own numbers start at Sunday = 1).
fn weekday_names(field: &str) -> Result<String, String> {
    let name = |part: &str| -> Result<String, String> {
        match part.parse::<usize>() {
            Ok(n) => WEEKDAYS
                .get(n)
                .map(|d| d.to_string())
                .ok_or_else(|| format!("weekday {n} is not between 0 and 7")),
            Err(_) => Ok(part.to_string()),
        }
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let range = match range.split_once('-') {
            Some((a, b)) => format!("{}-{}", name(a)?, name(b)?),
            None if range == "*" => range.to_string(),
            None => name(range)?,
        };
        items.push(match step {
            Some(step) => format!("{range}/{step}"),
            None => range,
        });
    }
    Ok(items.join(","))
}

impl Recurrence {
    /// Parses `expression` to be evaluated in `tz`.
    pub fn parse(expression: &str, tz: Tz) -> Result<Self, RecurrenceError> {
        let error = |reason: String| RecurrenceError {
            expression: expression.to_string(),
            reason,
        };
        let trimmed = expression.trim();
        let full = if trimmed.starts_with('@') {
            trimmed.to_string()
        } else {
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            let [minute, hour, day, month, weekday] = fields.as_slice() else {
                return Err(error(format!("{} fields", fields.len())));
            };
            format!(
                "0 {minute} {hour} {day} {month} {}",
                weekday_names(weekday).map_err(error)?
            )
        };
        let schedule = cron::Schedule::from_str(&full).map_err(|e| {
            // `cron` draws the expression with a caret over several lines; the
            // reason is the last one.
            let text = e.to_string();
            let reason = text.lines().rev().map(str::trim).find(|l| !l.is_empty());
            error(
                reason
                    .unwrap_or("unreadable")
                    .trim_end_matches('.')
                    .to_string(),
            )
        })?;
        Ok(Self {
            expression: trimmed.to_string(),
            schedule,
            tz,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone it is evaluated in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Walk local wall-clock times (as if they were UTC) from a little before
        // `after`'s local time, so occurrences in a repeated hour are not missed,
        // and map each to a real instant by the documented rule.
        let local = after.with_timezone(&self.tz).naive_local() - Duration::hours(3);
        let start = Utc.from_utc_datetime(&local);
        self.schedule
            .after(&start)
            .take(10_000)
            .filter_map(|candidate| self.instant(candidate.naive_utc()))
            .find(|instant| *instant > after)
    }

    /// The real instant of a local wall-clock time in this zone.
    fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        local_instant(self.tz, local)
    }
}

/// The real instant of a local wall-clock time in `tz`, by the documented
/// rule: a time skipped by spring forward is the instant the clocks jump; a
/// time that occurs twice is its first occurrence. Rotations use it too, so
/// schedules and shift hand-offs follow one DST rule.
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => Some(first.min(second).with_timezone(&Utc)),
        LocalResult::None => (1..=240).find_map(|minutes| {
            tz.from_local_datetime(&(local + Duration::minutes(minutes)))
                .earliest()
                .map(|at| at.with_timezone(&Utc))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn occurrences(rec: &Recurrence, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from;
        for _ in 0..n {
            at = rec.next_after(at).unwrap();
            out.push(at);
        }
        out
    }

    #[test]
    fn a_daily_nine_oclock_stays_at_nine_local_for_a_whole_year() {
        for zone in [chrono_tz::Europe::Berlin, chrono_tz::America::New_York] {
            let rec = Recurrence::parse("0 9 * * *", zone).unwrap();
            let all = occurrences(&rec, utc("2026-01-01T00:00:00Z"), 365);
            for at in &all {
                let local = at.with_timezone(&zone);
                assert_eq!((local.hour(), local.minute()), (9, 0), "{zone}: {local}");
            }
            let days: Vec<_> = all
                .iter()
                .map(|a| a.with_timezone(&zone).date_naive())
                .collect();
            assert!(
                days.windows(2).all(|w| (w[1] - w[0]).num_days() == 1),
                "{zone}: one a day"
            );
            // The UTC gap between consecutive firings is 23 h or 25 h twice a year.
            let gaps: Vec<i64> = all.windows(2).map(|w| (w[1] - w[0]).num_hours()).collect();
            assert_eq!(gaps.iter().filter(|g| **g == 23).count(), 1, "{zone}");
            assert_eq!(gaps.iter().filter(|g| **g == 25).count(), 1, "{zone}");
        }
    }

    #[test]
    fn a_time_skipped_by_spring_forward_fires_when_the_clocks_jump() {
        let berlin = chrono_tz::Europe::Berlin;
        let rec = Recurrence::parse("30 2 * * *", berlin).unwrap();
        // 2026-03-29: clocks go from 02:00 CET straight to 03:00 CEST (01:00 UTC).
        let at = rec.next_after(utc("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(at, utc("2026-03-29T01:00:00Z"));
        let next = rec.next_after(at).unwrap();
        assert_eq!(next.with_timezone(&berlin).hour(), 2);
        assert_eq!(next.with_timezone(&berlin).day(), 30);
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_once_at_its_first_occurrence() {
        let berlin = chrono_tz::Europe::Berlin;
        let rec = Recurrence::parse("30 2 * * *", berlin).unwrap();
        // 2026-10-25: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
        let at = rec.next_after(utc("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(at, utc("2026-10-25T00:30:00Z"));
        let next = rec.next_after(at).unwrap();
        assert_eq!(
            next,
            utc("2026-10-26T01:30:00Z"),
            "not again at 01:30 UTC the same night"
        );
    }

    #[test]
    fn weekdays_are_read_as_standard_cron() {
        let berlin = chrono_tz::Europe::Berlin;
        let monday = Recurrence::parse("0 9 * * 1", berlin).unwrap();
        let named = Recurrence::parse("0 9 * * MON", berlin).unwrap();
        let from = utc("2026-11-23T12:00:00Z"); // a Monday
        let at = monday.next_after(from).unwrap();
        assert_eq!(at.with_timezone(&berlin).weekday(), chrono::Weekday::Mon);
        assert_eq!(Some(at), named.next_after(from));
        let sunday = Recurrence::parse("0 9 * * 0,7", berlin).unwrap();
        assert_eq!(
            sunday
                .next_after(from)
                .unwrap()
                .with_timezone(&berlin)
                .weekday(),
            chrono::Weekday::Sun
        );
        let weekdays = Recurrence::parse("0 9 * * 1-5", berlin).unwrap();
        let days: Vec<_> = occurrences(&weekdays, from, 5)
            .iter()
            .map(|a| a.with_timezone(&berlin).weekday())
            .collect();
        assert!(!days.contains(&chrono::Weekday::Sat) && !days.contains(&chrono::Weekday::Sun));
        assert!(Recurrence::parse("@weekly", berlin).is_ok());
    }

    #[test]
    fn nonsense_says_what_to_write() {
        let berlin = chrono_tz::Europe::Berlin;
        for bad in ["", "0 9 * *", "0 25 * * *", "0 9 * * 8", "every monday"] {
            let err = Recurrence::parse(bad, berlin).unwrap_err().to_string();
            assert!(err.contains("0 9 * * MON"), "{bad}: {err}");
        }
    }
}
