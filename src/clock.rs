//! The one clock all business time comes from: the system clock in production,
//! a virtual clock in tests and in the console that only moves when told.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// A shared clock handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Source>);

#[derive(Debug)]
enum Source {
    System,
    Virtual(Mutex<DateTime<Utc>>),
}

impl Clock {
    /// The real clock.
    pub fn system() -> Self {
        Self(Arc::new(Source::System))
    }

    /// A clock frozen at `start` that moves only with [`Clock::advance`] or [`Clock::set`].
    pub fn virtual_at(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Source::Virtual(Mutex::new(start))))
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match &*self.0 {
            Source::System => Utc::now(),
            Source::Virtual(at) => *at.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// True for a virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(&*self.0, Source::Virtual(_))
    }

    /// Moves a virtual clock forward; returns the new time. A system clock is not moved.
    pub fn advance(&self, by: chrono::Duration) -> DateTime<Utc> {
        match &*self.0 {
            Source::System => Utc::now(),
            Source::Virtual(at) => {
                let mut at = at.lock().unwrap_or_else(|p| p.into_inner());
                *at += by;
                *at
            }
        }
    }

    /// Sets a virtual clock to `to` (never backwards).
    pub fn set(&self, to: DateTime<Utc>) {
        if let Source::Virtual(at) = &*self.0 {
            let mut at = at.lock().unwrap_or_else(|p| p.into_inner());
            if to > *at {
                *at = to;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_virtual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-03-29T00:30:00Z")
            .unwrap()
            .to_utc();
        let clock = Clock::virtual_at(start);
        assert_eq!(clock.now(), start);
        clock.advance(chrono::Duration::hours(2));
        assert_eq!(clock.now(), start + chrono::Duration::hours(2));
        clock.set(start);
        assert_eq!(clock.now(), start + chrono::Duration::hours(2));
    }
}
