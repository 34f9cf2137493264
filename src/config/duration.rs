//! Human durations in config and commands: `90s`, `15m`, `2h`, `1d`, `1w`, `1h30m`.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::str::FromStr;

/// A non-negative duration written the way operators write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(chrono::Duration);

/// The longest duration accepted: 5200 weeks (just under 100 years). Anything
/// longer is a typo, and would carry instants past what dates can hold.
pub const MAX_SECS: i64 = 5200 * 604_800;

/// Why a duration could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// Not of the form `1h30m`.
    #[error(
        "`{0}` is not a duration: write a number followed by s, m, h, d or w, e.g. 30m or 1h30m"
    )]
    Form(String),
    /// Longer than [`MAX_SECS`].
    #[error("`{0}` is longer than 100 years: write at most 5200w")]
    TooLong(String),
}

impl HumanDuration {
    /// The duration as chrono's type.
    pub fn as_chrono(self) -> chrono::Duration {
        self.0
    }

    /// The duration as std's type (durations are never negative).
    pub fn as_std(self) -> std::time::Duration {
        self.0.to_std().unwrap_or_default()
    }

    /// From whole seconds (at most [`MAX_SECS`]).
    pub fn from_secs(secs: i64) -> Self {
        Self(chrono::Duration::seconds(secs.clamp(0, MAX_SECS)))
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim();
        let err = || DurationError::Form(input.to_string());
        let too_long = || DurationError::TooLong(input.to_string());
        if text.is_empty() {
            return Err(err());
        }
        let mut total: i64 = 0;
        let mut number = String::new();
        for ch in text.chars() {
            if ch.is_ascii_digit() {
                number.push(ch);
                continue;
            }
            let value: i64 = number.parse().map_err(|_| err())?;
            number.clear();
            let unit = match ch {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(err()),
            };
            total = value
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .filter(|&v| v <= MAX_SECS)
                .ok_or_else(too_long)?;
        }
        if !number.is_empty() {
            return Err(err());
        }
        Ok(Self(chrono::Duration::seconds(total)))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.0.num_seconds();
        if secs == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("w", 604_800),
            ("d", 86_400),
            ("h", 3_600),
            ("m", 60),
            ("s", 1),
        ] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_operators_write() {
        let d: HumanDuration = "1h30m".parse().unwrap();
        assert_eq!(d.as_chrono().num_minutes(), 90);
        assert_eq!("2d".parse::<HumanDuration>().unwrap().to_string(), "2d");
        assert_eq!("90s".parse::<HumanDuration>().unwrap().to_string(), "1m30s");
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "10", "m", "5x", "-5m", "99999999999999999999w"] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
        }
        assert_eq!(
            "5201w".parse::<HumanDuration>().unwrap_err().to_string(),
            "`5201w` is longer than 100 years: write at most 5200w"
        );
        assert!("5200w".parse::<HumanDuration>().is_ok());
    }
}
