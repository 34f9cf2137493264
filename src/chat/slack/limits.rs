//! Slack's Web API rate limits, kept on our side so Slack never has to say 429.
//!
//! Every method has a tier (Slack's documentation: Tier 1 is 1+ per minute,
//! Tier 2 20+, Tier 3 50+, Tier 4 100+; `chat.postMessage` is special: about one
//! message per second per channel with short bursts, and a few hundred per
//! minute per workspace). The numbers can be overridden in config
//! (`slack.rate_limits`). Limiters run on the business [`Clock`], so tests drive
//! them with virtual time; a check never waits, it says how long to wait, and
//! the outbox schedules the retry — nothing on the HTTP path ever blocks here.

use crate::clock::Clock;
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Deserializer};
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// A number of calls per period, written `50/min`, `1/s`, `300/min`, `20/h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed per period.
    pub count: NonZeroU32,
    /// The period.
    pub per: Duration,
}

/// Why a rate could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a rate: write calls per period, e.g. 50/min, 1/s or 20/h")]
pub struct RateError(String);

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = || RateError(input.to_string());
        let (count, unit) = input.trim().split_once('/').ok_or_else(err)?;
        let count: u32 = count.trim().parse().map_err(|_| err())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(err()),
        };
        Ok(Self {
            count: NonZeroU32::new(count).ok_or_else(err)?,
            per,
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn rate(text: &str) -> Rate {
    // Only called on the literals below, which are valid.
    text.parse().unwrap_or(Rate {
        count: NonZeroU32::MIN,
        per: Duration::from_secs(60),
    })
}

/// The limits, as configured under `slack.rate_limits`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Tier 1 methods (`apps.connections.open`).
    pub tier1: Rate,
    /// Tier 2 methods (`usergroups.users.list`).
    pub tier2: Rate,
    /// Tier 3 methods (`chat.update`, `conversations.*`, `reactions.add`).
    pub tier3: Rate,
    /// Tier 4 methods (`chat.postEphemeral`, `views.open`).
    pub tier4: Rate,
    /// `chat.postMessage` across the workspace.
    pub post_message: Rate,
    /// `chat.postMessage` per channel.
    pub per_channel: Rate,
    /// Messages one channel may take at once before the per-channel rate applies.
    pub channel_burst: NonZeroU32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            tier1: rate("1/min"),
            tier2: rate("20/min"),
            tier3: rate("50/min"),
            tier4: rate("100/min"),
            post_message: rate("300/min"),
            per_channel: rate("1/s"),
            channel_burst: NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// Which limit a call is subject to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// A method tier (or `chat.postMessage`'s workspace limit).
    Method(&'static str),
    /// One channel's messages.
    Channel,
}

impl Limit {
    /// A label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Method(method) => method,
            Limit::Channel => "channel",
        }
    }
}

/// The Web API methods Watchkeeper calls, with their tier (0 = `chat.postMessage`).
const METHODS: &[(&str, u8)] = &[
    ("chat.postMessage", 0),
    ("chat.postEphemeral", 4),
    ("chat.update", 3),
    ("conversations.open", 3),
    ("conversations.history", 3),
    ("conversations.replies", 3),
    ("reactions.add", 3),
    ("views.open", 4),
    ("usergroups.users.list", 2),
    ("apps.connections.open", 1),
];

/// Adapts the business clock to governor's clock interface.
#[derive(Clone, Debug)]
struct BusinessClock(Clock);

impl GovernorClock for BusinessClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let now = self.0.now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, BusinessClock, NoOpMiddleware<Duration>>;
type Keyed =
    RateLimiter<String, HashMapStateStore<String>, BusinessClock, NoOpMiddleware<Duration>>;

fn quota(rate: Rate, burst: NonZeroU32) -> Quota {
    let period = rate.per / rate.count.get();
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(rate.count))
        .allow_burst(burst)
}

/// The limiters; cheap to share behind an `Arc`.
pub struct SlackLimits {
    clock: BusinessClock,
    methods: HashMap<&'static str, Direct>,
    channels: Keyed,
}

impl SlackLimits {
    /// Builds the limiters on `clock`.
    pub fn new(config: &RateLimitConfig, clock: Clock) -> Self {
        let clock = BusinessClock(clock);
        let methods = METHODS
            .iter()
            .map(|(method, tier)| {
                let rate = match tier {
                    0 => config.post_message,
                    1 => config.tier1,
                    2 => config.tier2,
                    3 => config.tier3,
                    _ => config.tier4,
                };
                (
                    *method,
                    RateLimiter::direct_with_clock(quota(rate, rate.count), clock.clone()),
                )
            })
            .collect();
        let channels = RateLimiter::hashmap_with_clock(
            quota(config.per_channel, config.channel_burst),
            clock.clone(),
        );
        Self {
            clock,
            methods,
            channels,
        }
    }

    /// Takes a permit for one call of `method` (to `channel`, for posts), or says
    /// which limit is exhausted and how long until it allows the call.
    pub fn check(&self, method: &str, channel: Option<&str>) -> Result<(), (Limit, Duration)> {
        let now = self.clock.now();
        if method == "chat.postMessage"
            && let Some(channel) = channel
            && let Err(not_until) = self.channels.check_key(&channel.to_string())
        {
            return Err((Limit::Channel, not_until.wait_time_from(now)));
        }
        if let Some((name, limiter)) = self.methods.get_key_value(method)
            && let Err(not_until) = limiter.check()
        {
            return Err((Limit::Method(name), not_until.wait_time_from(now)));
        }
        Ok(())
    }

    /// Forgets channels that have been quiet long enough to be back at full burst.
    pub fn forget_idle_channels(&self) {
        self.channels.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rates_read_as_written() {
        assert_eq!("50/min".parse::<Rate>().unwrap().to_string(), "50/min");
        assert_eq!("1/s".parse::<Rate>().unwrap().per, Duration::from_secs(1));
        for bad in ["", "5", "0/s", "x/min", "5/fortnight"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn one_channel_gets_its_burst_then_one_message_a_second() {
        let clock = Clock::virtual_at(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
        let limits = SlackLimits::new(&RateLimitConfig::default(), clock.clone());
        for _ in 0..3 {
            assert_eq!(limits.check("chat.postMessage", Some("C1")), Ok(()));
        }
        let (limit, wait) = limits.check("chat.postMessage", Some("C1")).unwrap_err();
        assert_eq!(limit, Limit::Channel);
        assert_eq!(wait, Duration::from_secs(1));
        // Another channel is not held up by the first.
        assert_eq!(limits.check("chat.postMessage", Some("C2")), Ok(()));
        clock.advance(chrono::Duration::seconds(1));
        assert_eq!(limits.check("chat.postMessage", Some("C1")), Ok(()));
    }

    #[test]
    fn a_tier_allows_its_count_per_minute() {
        let clock = Clock::virtual_at(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
        let limits = SlackLimits::new(&RateLimitConfig::default(), clock.clone());
        for _ in 0..50 {
            assert_eq!(limits.check("chat.update", Some("C1")), Ok(()));
        }
        let (limit, wait) = limits.check("chat.update", Some("C1")).unwrap_err();
        assert_eq!(limit, Limit::Method("chat.update"));
        assert_eq!(wait, Duration::from_millis(1200));
    }
}
