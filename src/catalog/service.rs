//! The live catalog of one replica: the graph, every component's health and
//! its recent changes.
//!
//! Health inputs are written to the store's `health_events` log (by whichever
//! replica received the alert or ran the check) and every replica replays
//! the log into its own [`HealthBook`] before it answers, so all replicas
//! agree. The graph itself comes from the catalog files and is swapped on
//! reload, keeping the inputs.

use super::alertmanager;
use super::changes::{Change, ChangeKind, ChangeLog};
use super::graph::Catalog;
use super::health::{HealthBook, Input, Transition};
use super::model::ComponentId;
use crate::store::health::{self, HealthEvent};
use crate::store::{Store, StoreError, Tx};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex, PoisonError};

struct Inner {
    book: HealthBook,
    changes: ChangeLog,
    applied: i64,
}

/// The catalog, health and changes; shared by the verbs and the webhooks.
pub struct CatalogService {
    inner: Mutex<Inner>,
}

/// How many log events one read fetches.
const BATCH: i64 = 1000;

impl CatalogService {
    /// A service over `catalog`, with no inputs yet.
    pub fn new(catalog: Catalog) -> Self {
        Self {
            inner: Mutex::new(Inner {
                book: HealthBook::new(Arc::new(catalog)),
                changes: ChangeLog::default(),
                applied: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Swaps in a reloaded catalog, keeping the inputs of components that remain.
    pub fn replace_catalog(&self, catalog: Catalog, now: DateTime<Utc>) {
        let mut inner = self.lock();
        let (book, transitions) = inner.book.clone().with_catalog(Arc::new(catalog), now);
        inner.book = book;
        inner.changes.record_transitions(&transitions);
    }

    /// Applies the health events recorded since the last call (by any
    /// replica); returns the transitions they caused here.
    pub async fn sync(&self, store: &Store) -> Result<Vec<Transition>, StoreError> {
        let mut transitions = Vec::new();
        loop {
            let after = self.lock().applied;
            let events = store.health_events_after(after, BATCH).await?;
            if events.is_empty() {
                return Ok(transitions);
            }
            let mut inner = self.lock();
            for event in &events {
                if event.id <= inner.applied {
                    continue;
                }
                inner.applied = event.id;
                transitions.extend(apply(&mut inner, event));
            }
        }
    }

    /// Reads the book and the changes.
    pub fn view<R>(&self, read: impl FnOnce(&HealthBook, &ChangeLog) -> R) -> R {
        let inner = self.lock();
        read(&inner.book, &inner.changes)
    }

    /// Records an Alertmanager delivery as health events in `tx`; returns how
    /// many alerts matched a component, how many did not, and the last
    /// event's log position.
    pub async fn record_alerts(
        &self,
        tx: &mut Tx,
        delivery: &alertmanager::Delivery,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize, Option<i64>), StoreError> {
        let known: Vec<(ComponentId, &alertmanager::Alert)> = {
            let inner = self.lock();
            let catalog = inner.book.catalog().clone();
            delivery
                .alerts
                .iter()
                .filter_map(|alert| {
                    let component = catalog.lookup(alert.component.as_deref()?)?;
                    Some((component.id.clone(), alert))
                })
                .collect()
        };
        let unmatched = delivery.alerts.len() - known.len();
        let mut last = None;
        for (id, alert) in &known {
            let reason = if alert.firing {
                format!(
                    "alert {} ({}): {}",
                    alert.name, alert.severity, alert.summary
                )
            } else {
                format!("alert {} resolved", alert.name)
            };
            last = Some(
                health::append(
                    tx,
                    &HealthEvent {
                        id: 0,
                        component: id.to_string(),
                        source: format!("alert:{}:{}", alert.name, alert.key),
                        rag: alert.firing.then(|| alert.rag.as_str().to_string()),
                        reason,
                        since: if alert.firing {
                            alert.starts_at.unwrap_or(now).min(now)
                        } else {
                            now
                        },
                        link: alert.link.clone(),
                    },
                )
                .await?,
            );
        }
        Ok((known.len(), unmatched, last))
    }
}

/// Applies one event; an event about a component no longer in the catalog
/// is skipped.
fn apply(inner: &mut Inner, event: &HealthEvent) -> Vec<Transition> {
    let Ok(id) = ComponentId::parse(&event.component) else {
        return Vec::new();
    };
    if let Some(cause) = event.source.strip_prefix(super::observe::CHANGE_PREFIX) {
        let kind = if cause.starts_with(super::observe::PLAYBOOK_CAUSE) {
            ChangeKind::Playbook
        } else {
            ChangeKind::Rollout
        };
        inner.changes.record(
            &id,
            Change {
                at: event.since,
                kind,
                text: event.reason.clone(),
            },
        );
        return Vec::new();
    }
    let result = match &event.rag {
        Some(rag) => inner.book.set_input(
            &id,
            Input {
                source: event.source.clone(),
                rag: rag.parse().unwrap_or_default(),
                reason: event.reason.clone(),
                since: event.since,
            },
        ),
        None => inner.book.clear_input(&id, &event.source, event.since),
    };
    let Ok(transitions) = result else {
        return Vec::new();
    };
    if event.source.starts_with("alert:") {
        inner.changes.record(
            &id,
            Change {
                at: event.since,
                kind: ChangeKind::Alert,
                text: event.reason.clone(),
            },
        );
    }
    inner.changes.record_transitions(&transitions);
    transitions
}
