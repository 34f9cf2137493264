//! The catalog's part of a shift hand-off: what is red now (first, marked
//! for attention, with its main reason and since when), then the notable
//! changes during the shift — rollouts and health transitions to or from
//! amber or red — newest first. A component's first report (unknown → green)
//! is not notable. Hand-offs go to staff, so every tenant's components count.

use super::changes::{Change, ChangeKind, ChangeLog};
use super::health::{HealthBook, Rag};
use super::model::Component;
use super::service::CatalogService;
use crate::oncall::handoff::{HandoffItem, HandoffSection, HandoffSectionData, ShiftChange};
use crate::store::StoreError;
use crate::work::Work;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::Arc;

/// How many changes are listed; the rest are counted.
pub const MAX_CHANGES: usize = 15;

/// The catalog's hand-off section.
pub struct CatalogHandoff {
    catalog: Arc<CatalogService>,
}

impl CatalogHandoff {
    /// A section over the live catalog.
    pub fn new(catalog: Arc<CatalogService>) -> Self {
        Self { catalog }
    }
}

impl HandoffSection for CatalogHandoff {
    fn name(&self) -> &'static str {
        "changes"
    }

    fn collect<'a>(
        &'a self,
        work: &'a mut Work,
        change: &'a ShiftChange,
    ) -> BoxFuture<'a, Result<Option<HandoffSectionData>, StoreError>> {
        Box::pin(async move {
            self.catalog.sync(work.store()).await?;
            Ok(self
                .catalog
                .view(|book, changes| summarise(book, changes, change.shift_started, change.at)))
        })
    }
}

fn notable(change: &Change) -> bool {
    match change.kind {
        ChangeKind::Rollout | ChangeKind::Playbook => true,
        ChangeKind::Health => change
            .transition()
            .is_some_and(|(from, to)| from.max(to) >= Rag::Amber),
        ChangeKind::Alert | ChangeKind::Other => false,
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%a %H:%M UTC").to_string()
}

fn link(component: &Component) -> Option<String> {
    component
        .links
        .runbook
        .clone()
        .or_else(|| component.links.dashboard.clone())
}

/// The section for a shift from `from` to `to`; `None` when nothing is red
/// and nothing notable changed.
pub fn summarise(
    book: &HealthBook,
    changes: &ChangeLog,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<HandoffSectionData> {
    let catalog = book.catalog();
    let mut items = Vec::new();
    for component in catalog.iter() {
        if book.rag(&component.id) != Some(Rag::Red) {
            continue;
        }
        let reason = book
            .rolled(&component.id)
            .and_then(|h| h.reasons.first().map(ToString::to_string))
            .unwrap_or_default();
        let since = changes
            .recent(&component.id, usize::MAX)
            .into_iter()
            .find(|c| c.transition().is_some_and(|(_, to)| to == Rag::Red))
            .map(|c| format!(" since {}", time(c.at)))
            .unwrap_or_default();
        items.push(HandoffItem {
            text: format!(
                "{} ({}) is red{since}: {reason}",
                component.title, component.id
            ),
            link: link(component),
            attention: true,
        });
    }
    let mut during: Vec<(&Component, &Change)> = catalog
        .iter()
        .flat_map(|component| {
            changes
                .since(&component.id, from)
                .into_iter()
                .filter(|c| c.at <= to && notable(c))
                .map(move |c| (component, c))
        })
        .collect();
    during.sort_by(|a, b| b.1.at.cmp(&a.1.at).then_with(|| a.0.id.cmp(&b.0.id)));
    let more = during.len().saturating_sub(MAX_CHANGES);
    for (component, change) in during.into_iter().take(MAX_CHANGES) {
        items.push(HandoffItem {
            text: format!("{} {}: {}", time(change.at), component.id, change.text),
            link: link(component),
            attention: false,
        });
    }
    if more > 0 {
        items.push(HandoffItem {
            text: format!("and {more} more changes: /wk changes <component> lists them"),
            link: None,
            attention: false,
        });
    }
    (!items.is_empty()).then(|| HandoffSectionData {
        title: "Catalog: red now, and what changed during the shift".into(),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::graph::Catalog;
    use crate::catalog::health::Input;
    use crate::catalog::model::{ComponentId, Edge};
    use chrono::Duration;

    fn id(s: &str) -> ComponentId {
        ComponentId::parse(s).unwrap()
    }

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .to_utc()
            + Duration::hours(hours)
    }

    fn input(rag: Rag, reason: &str, hours: i64) -> Input {
        Input {
            source: "kube:acme-prod:deployment/shop/checkout".into(),
            rag,
            reason: reason.into(),
            since: at(hours),
        }
    }

    /// A book and change log the way the service keeps them: inputs set at
    /// their times, transitions recorded as changes.
    fn world() -> (HealthBook, ChangeLog) {
        let mut api = Component::new(id("checkout-api"));
        api.title = "Checkout API".into();
        api.links.runbook = Some("https://runbooks.example.com/checkout".into());
        api.depends_on = vec![Edge {
            target: id("orders-db"),
            critical: true,
        }];
        let db = Component::new(id("orders-db"));
        let quiet = Component::new(id("quiet"));
        let catalog = Arc::new(Catalog::build(vec![api, db, quiet]).unwrap());
        let mut book = HealthBook::new(catalog);
        let mut log = ChangeLog::default();
        let set = |book: &mut HealthBook, log: &mut ChangeLog, c: &str, i: Input| {
            let t = book.set_input(&id(c), i).unwrap();
            log.record_transitions(&t);
        };
        // Before the shift: everything reports in green.
        set(
            &mut book,
            &mut log,
            "orders-db",
            input(Rag::Green, "1 of 1 ready", -30),
        );
        set(&mut book, &mut log, "quiet", input(Rag::Green, "fine", -30));
        // During it: a rollout, the database goes red and takes the API with it.
        log.record(
            &id("checkout-api"),
            Change {
                at: at(2),
                kind: ChangeKind::Rollout,
                text: "deployment shop/checkout rolled out revision 5".into(),
            },
        );
        set(
            &mut book,
            &mut log,
            "orders-db",
            input(Rag::Red, "none ready (0 of 1 ready)", 3),
        );
        // A first report during the shift is not notable.
        set(
            &mut book,
            &mut log,
            "quiet",
            input(Rag::Green, "still fine", 4),
        );
        (book, log)
    }

    #[test]
    fn red_first_then_changes_newest_first() {
        let (book, log) = world();
        let section = summarise(&book, &log, at(0), at(8)).unwrap();
        let texts: Vec<(&str, bool)> = section
            .items
            .iter()
            .map(|i| (i.text.as_str(), i.attention))
            .collect();
        assert_eq!(
            texts,
            [
                (
                    "Checkout API (checkout-api) is red since Mon 12:00 UTC: critical dependency orders-db is red",
                    true
                ),
                (
                    "orders-db (orders-db) is red since Mon 12:00 UTC: kube:acme-prod:deployment/shop/checkout (red): none ready (0 of 1 ready)",
                    true
                ),
                (
                    "Mon 12:00 UTC checkout-api: green → red: critical dependency orders-db is red",
                    false
                ),
                (
                    "Mon 12:00 UTC orders-db: green → red: kube:acme-prod:deployment/shop/checkout (red): none ready (0 of 1 ready)",
                    false
                ),
                (
                    "Mon 11:00 UTC checkout-api: deployment shop/checkout rolled out revision 5",
                    false
                ),
            ]
        );
        assert_eq!(
            section.items[0].link.as_deref(),
            Some("https://runbooks.example.com/checkout")
        );
    }

    #[test]
    fn a_quiet_shift_says_nothing_and_long_ones_are_counted() {
        let (mut book, mut log) = world();
        let t = book
            .set_input(&id("orders-db"), input(Rag::Green, "1 of 1 ready", 6))
            .unwrap();
        log.record_transitions(&t);
        assert_eq!(
            summarise(&book, &log, at(7), at(8)),
            None,
            "nothing red now, nothing notable during the shift"
        );
        for n in 0..MAX_CHANGES + 3 {
            log.record(
                &id("quiet"),
                Change {
                    at: at(5) + Duration::minutes(n as i64),
                    kind: ChangeKind::Rollout,
                    text: format!("rollout {n}"),
                },
            );
        }
        let section = summarise(&book, &log, at(0), at(8)).unwrap();
        assert!(
            section.items.iter().all(|i| !i.attention),
            "nothing red now"
        );
        assert_eq!(section.items.len(), MAX_CHANGES + 1);
        assert_eq!(
            section.items.last().unwrap().text,
            "and 8 more changes: /wk changes <component> lists them"
        );
    }
}
