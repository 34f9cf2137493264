//! Moments as people type them in `/wk oncall`: `2026-03-07 09:00`,
//! `tomorrow 18:00`, `Fri 18:00`, `18:00`, `now`, and for an end also a
//! length (`8h`, `+2d`). They are read in the rotation's time zone (Slack
//! does not tell us the caller's without another API call) and shown back
//! with Slack date tokens, so everyone reads them in their own zone.

use crate::config::HumanDuration;
use crate::scheduler::local_instant;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

/// What to write, for error messages.
pub const FORMS: &str = "2026-03-07 09:00, tomorrow 18:00, Fri 18:00, 18:00 or now (an end may also be a length such as 8h)";

/// The years a moment may fall in: anything else is a typo, and years near
/// the ends of what dates can hold would overflow the arithmetic on them.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

fn in_range(date: NaiveDate) -> Option<NaiveDate> {
    YEARS.contains(&date.year()).then_some(date)
}

fn time_of(word: &str) -> Option<NaiveTime> {
    let (h, m) = word.split_once(':')?;
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

fn day_of(word: &str, today: NaiveDate) -> Option<NaiveDate> {
    match word.to_ascii_lowercase().as_str() {
        "today" => Some(today),
        "tomorrow" => today.succ_opt(),
        other => {
            if let Ok(date) = NaiveDate::parse_from_str(other, "%Y-%m-%d") {
                return in_range(date);
            }
            let day = super::config::weekday_of(other)?;
            let ahead =
                (7 + day.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
            today.checked_add_signed(Duration::days(i64::from(ahead)))
        }
    }
}

/// Reads one moment from the front of `words`; returns it and how many words
/// it took. `after` is what a bare time or a length counts from (now for a
/// start, the start for an end).
pub fn read(
    words: &[String],
    tz: Tz,
    after: DateTime<Utc>,
    allow_length: bool,
) -> Option<(DateTime<Utc>, usize)> {
    let first = words.first()?.as_str();
    let local_now = after.with_timezone(&tz).naive_local();
    let instant = |local: NaiveDateTime| local_instant(tz, local);
    if first.eq_ignore_ascii_case("now") {
        return Some((after, 1));
    }
    if allow_length && let Ok(length) = first.trim_start_matches('+').parse::<HumanDuration>() {
        return Some((after.checked_add_signed(length.as_chrono())?, 1));
    }
    if let Ok(local) = NaiveDateTime::parse_from_str(first, "%Y-%m-%dT%H:%M") {
        in_range(local.date())?;
        return Some((instant(local)?, 1));
    }
    if let Some(time) = time_of(first) {
        // A bare time: its next occurrence.
        let today = local_now.date().and_time(time);
        let at = instant(today)?;
        return Some(if at > after {
            (at, 1)
        } else {
            (instant(today.checked_add_signed(Duration::days(1))?)?, 1)
        });
    }
    let day = day_of(first, local_now.date())?;
    match words.get(1).and_then(|w| time_of(w)) {
        Some(time) => Some((instant(day.and_time(time))?, 2)),
        None => Some((instant(day.and_time(NaiveTime::MIN))?, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn moments_are_read_in_the_rotations_zone() {
        let berlin = chrono_tz::Europe::Berlin;
        // Wednesday 2026-03-04 10:00 UTC = 11:00 Berlin.
        let now = utc("2026-03-04T10:00:00Z");
        let at =
            |text: &str| read(&words(text), berlin, now, true).map(|(t, n)| (t.to_rfc3339(), n));
        assert_eq!(
            at("2026-03-07 09:00 x"),
            Some(("2026-03-07T08:00:00+00:00".into(), 2))
        );
        assert_eq!(
            at("2026-03-07T09:00"),
            Some(("2026-03-07T08:00:00+00:00".into(), 1))
        );
        assert_eq!(
            at("tomorrow 18:00"),
            Some(("2026-03-05T17:00:00+00:00".into(), 2))
        );
        assert_eq!(
            at("Fri 18:00"),
            Some(("2026-03-06T17:00:00+00:00".into(), 2))
        );
        assert_eq!(
            at("wed"),
            Some(("2026-03-03T23:00:00+00:00".into(), 1)),
            "today's midnight"
        );
        assert_eq!(at("12:00"), Some(("2026-03-04T11:00:00+00:00".into(), 1)));
        assert_eq!(
            at("09:00"),
            Some(("2026-03-05T08:00:00+00:00".into(), 1)),
            "tomorrow's"
        );
        assert_eq!(at("now"), Some((now.to_rfc3339(), 1)));
        assert_eq!(at("8h"), Some(("2026-03-04T18:00:00+00:00".into(), 1)));
        // After the clocks move, 09:00 Berlin is 07:00 UTC.
        assert_eq!(
            at("2026-03-30 09:00"),
            Some(("2026-03-30T07:00:00+00:00".into(), 2))
        );
        for bad in [
            "soon",
            "2026-13-01",
            "25:00",
            "",
            "262142-01-01",
            "+262142-01-01",
            "262142-12-31T09:00",
            "-262143-01-01",
            "1969-12-31",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        assert_eq!(
            read(&words("8h"), berlin, now, false),
            None,
            "a start is never a length"
        );
    }
}
