//! Recent changes per component (rollouts, alerts, playbook PRs, health
//! transitions), newest kept, oldest dropped beyond a fixed capacity.

use super::health::{Rag, Transition};
use super::model::ComponentId;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};

/// What caused a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A rollout (deployment, image change).
    Rollout,
    /// An alert fired or resolved.
    Alert,
    /// A playbook pull request or run.
    Playbook,
    /// A rolled-up health transition.
    Health,
    /// Anything else.
    Other,
}

/// One change to a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What caused it.
    pub kind: ChangeKind,
    /// What happened, for people.
    pub text: String,
}

impl Change {
    /// For a health transition, the colours before and after (read back from
    /// the text [`ChangeLog::record_transitions`] writes).
    pub fn transition(&self) -> Option<(Rag, Rag)> {
        if self.kind != ChangeKind::Health {
            return None;
        }
        let (colours, _) = self.text.split_once(": ")?;
        let (from, to) = colours.split_once(" → ")?;
        Some((from.parse().ok()?, to.parse().ok()?))
    }
}

/// Default number of changes kept per component.
pub const DEFAULT_CAPACITY: usize = 50;

/// A ring buffer of recent changes per component.
#[derive(Clone, Debug)]
pub struct ChangeLog {
    capacity: usize,
    by_component: HashMap<ComponentId, VecDeque<Change>>,
}

impl Default for ChangeLog {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl ChangeLog {
    /// Keeps up to `capacity` changes per component (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            by_component: HashMap::new(),
        }
    }

    /// Records a change; the oldest goes when the component's buffer is full.
    /// Changes are kept in time order even when recorded out of order.
    pub fn record(&mut self, id: &ComponentId, change: Change) {
        let ring = self.by_component.entry(id.clone()).or_default();
        let at = ring.partition_point(|c| c.at <= change.at);
        ring.insert(at, change);
        while ring.len() > self.capacity {
            ring.pop_front();
        }
    }

    /// Records health transitions as `Health` changes ("amber → red: …").
    pub fn record_transitions(&mut self, transitions: &[Transition]) {
        for t in transitions {
            let text = format!("{} → {}: {}", t.from, t.to, t.reason);
            self.record(
                &t.id,
                Change {
                    at: t.at,
                    kind: ChangeKind::Health,
                    text,
                },
            );
        }
    }

    /// The changes of `id` at or after `t`, oldest first.
    pub fn since(&self, id: &ComponentId, t: DateTime<Utc>) -> Vec<&Change> {
        self.by_component
            .get(id)
            .map(|ring| ring.iter().filter(|c| c.at >= t).collect())
            .unwrap_or_default()
    }

    /// The `n` most recent changes of `id`, newest first.
    pub fn recent(&self, id: &ComponentId, n: usize) -> Vec<&Change> {
        self.by_component
            .get(id)
            .map(|ring| ring.iter().rev().take(n).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::minutes(minutes)
    }

    #[test]
    fn keeps_the_newest_in_order() {
        let id = ComponentId::parse("api").unwrap();
        let mut log = ChangeLog::new(3);
        for m in [1, 5, 3, 4, 2] {
            log.record(
                &id,
                Change {
                    at: at(m),
                    kind: ChangeKind::Rollout,
                    text: format!("v{m}"),
                },
            );
        }
        let texts: Vec<_> = log
            .since(&id, at(0))
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        assert_eq!(texts, ["v3", "v4", "v5"]);
        assert_eq!(log.since(&id, at(4)).len(), 2);
        assert_eq!(log.recent(&id, 1)[0].text, "v5");
        assert!(
            log.since(&ComponentId::parse("other").unwrap(), at(0))
                .is_empty()
        );
    }

    #[test]
    fn transitions_become_health_changes() {
        let id = ComponentId::parse("api").unwrap();
        let mut log = ChangeLog::default();
        log.record_transitions(&[Transition {
            id: id.clone(),
            from: Rag::Green,
            to: Rag::Red,
            at: at(1),
            reason: "critical dependency db is red".into(),
        }]);
        let change = log.recent(&id, 5)[0];
        assert_eq!(change.kind, ChangeKind::Health);
        assert_eq!(change.text, "green → red: critical dependency db is red");
        assert_eq!(change.transition(), Some((Rag::Green, Rag::Red)));
    }
}
