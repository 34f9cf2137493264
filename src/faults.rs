//! Crash points for tests and chaos drills: the scheduler and the outbox ask
//! at each step whether to "die" there, and if told so they stop handling that
//! item on the spot, writing nothing more — exactly what a killed process
//! leaves behind. Production runs with no plan and never stops anywhere.

use std::sync::Mutex;

/// A step where a worker can die.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// A timer was claimed; its handler has not run.
    TimerClaimed,
    /// A timer's handler ran; its transaction is not committed.
    TimerBeforeCommit,
    /// An outbox item was claimed; nothing was sent.
    OutboxClaimed,
    /// An outbox item was sent (Slack accepted it); the delivery is not recorded.
    OutboxSent,
}

/// Decides where a worker dies.
pub trait Faults: Send + Sync {
    /// True when the worker should die at `point` while handling `key`.
    fn crash_at(&self, point: FaultPoint, key: &str) -> bool;
}

/// One-shot crash points, each for keys containing a given text.
#[derive(Default)]
pub struct FaultPlan {
    triggers: Mutex<Vec<(FaultPoint, String)>>,
}

impl FaultPlan {
    /// Dies once at `point` for the first key containing `key_part`.
    pub fn crash_once(&self, point: FaultPoint, key_part: &str) {
        self.triggers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((point, key_part.to_string()));
    }

    /// Triggers not yet hit.
    pub fn pending(&self) -> usize {
        self.triggers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

impl Faults for FaultPlan {
    fn crash_at(&self, point: FaultPoint, key: &str) -> bool {
        let mut triggers = self.triggers.lock().unwrap_or_else(|p| p.into_inner());
        match triggers
            .iter()
            .position(|(p, part)| *p == point && key.contains(part.as_str()))
        {
            Some(index) => {
                triggers.remove(index);
                true
            }
            None => false,
        }
    }
}
