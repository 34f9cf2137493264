//! Business time: when a customer's support hours are open, and what "30
//! minutes of business time from now" is, in the customer's IANA zone with
//! its holidays, across DST changes. Pure functions; no clock, no store.
//!
//! The rule: a working day (one of `days`, not a holiday) is open from `from`
//! to `to` local time. Adding business time walks those windows forward and
//! spends the duration only while open; the result is always inside a
//! window (its closing instant included). A local opening or closing time
//! that a spring-forward change skips is taken at the instant the clocks jump
//! (the scheduler's rule); one that occurs twice is taken the first time. A
//! 24x7 tier counts wall time.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::BTreeSet;

/// How far ahead a search for open hours looks before giving up (a
/// configuration whose every day is a holiday counts wall time instead).
const HORIZON_DAYS: i64 = 3 * 366;

/// Why a business-hours description could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    /// The days are not a list or range of weekdays.
    #[error("`{0}` is not a list of days: write Mon-Fri, or Mon,Tue,Thu")]
    Days(String),
    /// A time is not `HH:MM`.
    #[error("`{0}` is not a time of day: write HH:MM, e.g. 08:00")]
    Time(String),
    /// Closing is not after opening.
    #[error(
        "closing time {to} must be after opening time {from} (overnight hours are not supported; use the 24x7 tier)"
    )]
    Order {
        /// Opening.
        from: String,
        /// Closing.
        to: String,
    },
}

/// A customer's support hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    days: [bool; 7],
    open: NaiveTime,
    close: NaiveTime,
    tz: Tz,
    holidays: BTreeSet<NaiveDate>,
}

/// Reads `Mon-Fri`, `Mon,Wed,Fri`, `Sun-Thu` into Monday-first flags.
pub fn parse_days(text: &str) -> Result<[bool; 7], HoursError> {
    let err = || HoursError::Days(text.to_string());
    let day = |name: &str| -> Result<usize, HoursError> {
        let name = name.trim().to_ascii_lowercase();
        let index = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .position(|d| name.starts_with(d) && name.len() >= 3)
            .ok_or_else(err)?;
        Ok(index)
    };
    let mut days = [false; 7];
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (start, end) = (day(a)?, day(b)?);
                let mut d = start;
                loop {
                    days[d] = true;
                    if d == end {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(part)?] = true,
        }
    }
    if days.iter().any(|d| *d) {
        Ok(days)
    } else {
        Err(err())
    }
}

/// Reads `HH:MM`.
pub fn parse_time(text: &str) -> Result<NaiveTime, HoursError> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| HoursError::Time(text.to_string()))
}

/// The instant a local wall time names: the first of two, or the moment the
/// clocks jump when it is skipped.
fn instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.to_utc()),
        LocalResult::Ambiguous(first, _) => Some(first.to_utc()),
        LocalResult::None => (1..=24 * 60).find_map(|minutes| {
            match tz.from_local_datetime(&(naive + Duration::minutes(minutes))) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    // The first valid minute after the gap is the jump; the
                    // jump itself is that minute's start.
                    Some(t.to_utc())
                }
                LocalResult::None => None,
            }
        }),
    }
}

impl BusinessHours {
    /// Hours open on `days` from `open` to `close` in `tz`, closed on `holidays`.
    pub fn new(
        days: [bool; 7],
        open: NaiveTime,
        close: NaiveTime,
        tz: Tz,
        holidays: BTreeSet<NaiveDate>,
    ) -> Result<Self, HoursError> {
        if close <= open {
            return Err(HoursError::Order {
                from: open.format("%H:%M").to_string(),
                to: close.format("%H:%M").to_string(),
            });
        }
        Ok(Self {
            days,
            open,
            close,
            tz,
            holidays,
        })
    }

    /// The zone the hours are kept in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The open window of local date `date`, if it is a working day.
    fn window(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let weekday = date.weekday().num_days_from_monday() as usize;
        if !self.days[weekday] || self.holidays.contains(&date) {
            return None;
        }
        let open = instant(self.tz, date, self.open)?;
        let close = instant(self.tz, date, self.close)?;
        (close > open).then_some((open, close))
    }

    /// The windows from the local day containing `at` onward.
    fn windows_from(
        &self,
        at: DateTime<Utc>,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let first = at.with_timezone(&self.tz).date_naive();
        (0..HORIZON_DAYS).filter_map(move |offset| self.window(first + Duration::days(offset)))
    }

    /// True while support hours are open at `at` (closing instant excluded).
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let date = at.with_timezone(&self.tz).date_naive();
        self.window(date)
            .is_some_and(|(open, close)| open <= at && at < close)
    }

    /// The instant `duration` of open hours after `start`. A zero duration
    /// is `start` itself.
    pub fn add(&self, start: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
        if duration <= Duration::zero() {
            return start;
        }
        let mut left = duration;
        for (open, close) in self.windows_from(start) {
            if close <= start {
                continue;
            }
            let from = open.max(start);
            let available = close - from;
            if left <= available {
                return from + left;
            }
            left -= available;
        }
        start + duration
    }

    /// Open time between `from` and `to` (zero when `to` is not later).
    pub fn elapsed(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        if to <= from {
            return total;
        }
        for (open, close) in self.windows_from(from) {
            if open >= to {
                break;
            }
            let start = open.max(from);
            let end = close.min(to);
            if end > start {
                total += end - start;
            }
        }
        total
    }

    /// When support hours next open at or after `at` (`at` itself while open).
    pub fn next_open(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.windows_from(at)
            .find(|(_, close)| *close > at)
            .map(|(open, _)| open.max(at))
            .unwrap_or(at)
    }
}

/// How an SLA's time is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlaClock {
    /// Around the clock (24x7 tiers).
    Wall,
    /// Only while the customer's support hours are open.
    Business(BusinessHours),
}

impl SlaClock {
    /// The instant `duration` of counted time after `start`.
    pub fn add(&self, start: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
        match self {
            SlaClock::Wall => start + duration,
            SlaClock::Business(hours) => hours.add(start, duration),
        }
    }

    /// Counted time between two instants.
    pub fn elapsed(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        match self {
            SlaClock::Wall => (to - from).max(Duration::zero()),
            SlaClock::Business(hours) => hours.elapsed(from, to),
        }
    }

    /// True while the clock is running.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        match self {
            SlaClock::Wall => true,
            SlaClock::Business(hours) => hours.is_open(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn hours(tz: Tz, holidays: &[&str]) -> BusinessHours {
        BusinessHours::new(
            parse_days("Mon-Fri").unwrap(),
            parse_time("08:00").unwrap(),
            parse_time("18:00").unwrap(),
            tz,
            holidays
                .iter()
                .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap())
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn days_read_like_an_operator_writes_them() {
        assert_eq!(
            parse_days("Mon-Fri").unwrap(),
            [true, true, true, true, true, false, false]
        );
        assert_eq!(
            parse_days("Sun-Tue").unwrap(),
            [true, true, false, false, false, false, true]
        );
        assert_eq!(
            parse_days("mon, wed,Friday").unwrap(),
            [true, false, true, false, true, false, false]
        );
        assert!(parse_days("Mo-Fr").is_err());
        assert!(parse_days("").is_err());
        assert!(parse_time("25:00").is_err());
        assert!(
            BusinessHours::new(
                [true; 7],
                parse_time("18:00").unwrap(),
                parse_time("08:00").unwrap(),
                chrono_tz::UTC,
                BTreeSet::new()
            )
            .is_err()
        );
    }

    #[test]
    fn friday_evening_answers_on_monday_morning() {
        let berlin = hours(chrono_tz::Europe::Berlin, &[]);
        // Friday 2026-03-06 17:45 Berlin (16:45 UTC) + 30 min → Monday 08:15 Berlin.
        let due = berlin.add(utc("2026-03-06T16:45:00Z"), Duration::minutes(30));
        assert_eq!(due, utc("2026-03-09T07:15:00Z"));
        // Saturday night counts nothing; Monday 08:00 opens.
        assert!(!berlin.is_open(utc("2026-03-07T23:00:00Z")));
        assert_eq!(
            berlin.next_open(utc("2026-03-07T23:00:00Z")),
            utc("2026-03-09T07:00:00Z")
        );
    }

    #[test]
    fn holidays_are_closed() {
        let berlin = hours(chrono_tz::Europe::Berlin, &["2026-04-03", "2026-04-06"]);
        // Thursday before Easter, 17:50 + 30 min: Good Friday and Easter Monday
        // are holidays, so Tuesday 08:20.
        let due = berlin.add(utc("2026-04-02T15:50:00Z"), Duration::minutes(30));
        assert_eq!(due, utc("2026-04-07T06:20:00Z"));
    }

    #[test]
    fn hours_follow_local_time_across_dst() {
        let berlin = hours(chrono_tz::Europe::Berlin, &[]);
        // Friday 2026-03-27 opens 07:00 UTC (CET); Monday 2026-03-30 opens at
        // 06:00 UTC (CEST).
        assert_eq!(
            berlin.add(utc("2026-03-27T16:59:00Z"), Duration::minutes(2)),
            utc("2026-03-30T06:01:00Z")
        );
        // A window opening at 02:30 on a spring-forward day opens when the
        // clocks jump (03:00 CEST = 01:00 UTC).
        let night = BusinessHours::new(
            [true; 7],
            parse_time("02:30").unwrap(),
            parse_time("04:00").unwrap(),
            chrono_tz::Europe::Berlin,
            BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(
            night.next_open(utc("2026-03-29T00:00:00Z")),
            utc("2026-03-29T01:00:00Z")
        );
    }

    #[test]
    fn wall_time_is_wall_time() {
        let start = utc("2026-03-28T23:00:00Z");
        assert_eq!(
            SlaClock::Wall.add(start, Duration::hours(4)),
            utc("2026-03-29T03:00:00Z")
        );
        assert_eq!(
            SlaClock::Wall.elapsed(start, utc("2026-03-29T03:00:00Z")),
            Duration::hours(4)
        );
    }

    fn zone() -> impl Strategy<Value = Tz> {
        prop_oneof![
            Just(chrono_tz::Europe::Berlin),
            Just(chrono_tz::America::New_York),
            Just(chrono_tz::Australia::Sydney),
            Just(chrono_tz::Asia::Kolkata),
            Just(chrono_tz::America::Sao_Paulo),
        ]
    }

    fn any_hours() -> impl Strategy<Value = BusinessHours> {
        (
            zone(),
            0u32..20,
            1u32..6,
            1u8..127,
            proptest::collection::btree_set(0i64..400, 0..20),
        )
            .prop_map(|(tz, open, length, days, holidays)| {
                let mut flags = [false; 7];
                for (i, flag) in flags.iter_mut().enumerate() {
                    *flag = days & (1 << i) != 0;
                }
                let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
                BusinessHours::new(
                    flags,
                    NaiveTime::from_hms_opt(open, 30, 0).unwrap_or_default(),
                    NaiveTime::from_hms_opt((open + length).min(23), 45, 0).unwrap_or_default(),
                    tz,
                    holidays
                        .into_iter()
                        .map(|d| base + Duration::days(d))
                        .collect(),
                )
                .unwrap_or_else(|e| panic!("{e}"))
            })
    }

    fn instant_in_2026() -> impl Strategy<Value = DateTime<Utc>> {
        (0i64..365 * 24 * 60).prop_map(|m| utc("2026-01-01T00:00:00Z") + Duration::minutes(m))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn adding_business_time_is_monotonic_and_lands_in_hours(
            hours in any_hours(),
            start in instant_in_2026(),
            a in 1i64..5000,
            b in 1i64..5000,
        ) {
            let (short, long) = (a.min(b), a.max(b));
            let early = hours.add(start, Duration::minutes(short));
            let late = hours.add(start, Duration::minutes(long));
            prop_assert!(early >= start);
            prop_assert!(early <= late, "{early} > {late}");
            // Inside open hours: open now, or exactly at a closing instant.
            for due in [early, late] {
                let inside = hours.is_open(due)
                    || hours.is_open(due - Duration::minutes(1));
                prop_assert!(inside, "{due} is outside hours");
            }
            // Exactly the asked amount of open time was spent.
            prop_assert_eq!(hours.elapsed(start, late), Duration::minutes(long));
            // Adding in two steps is adding once.
            let stepwise = hours.add(early, Duration::minutes(long - short));
            prop_assert_eq!(stepwise, late);
        }

        #[test]
        fn open_hours_begin_at_the_local_opening_time(
            hours in any_hours(),
            start in instant_in_2026(),
        ) {
            let open = hours.next_open(start);
            prop_assert!(open >= start);
            prop_assert!(hours.is_open(open));
            if open > start {
                let local = open.with_timezone(&hours.timezone()).time();
                // At the opening time, or at the jump when it was skipped.
                let jumped = !matches!(
                    hours.timezone().from_local_datetime(
                        &open.with_timezone(&hours.timezone()).date_naive().and_time(hours.open)
                    ),
                    LocalResult::Single(_) | LocalResult::Ambiguous(..)
                );
                prop_assert!(local == hours.open || jumped, "opened at {local}");
            }
        }
    }
}
