//! Recording what a watcher observes (Kubernetes workloads, or any source
//! that pushes rather than being polled): an observation becomes a health
//! event only when it changes what its source says, and a change (a rollout)
//! becomes an entry in the component's history on every replica.

use super::health::Rag;
use super::model::ComponentId;
use super::service::CatalogService;
use crate::store::health::{self, HealthEvent};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};

/// Prefix of the sources whose events are changes, not health.
pub const CHANGE_PREFIX: &str = "change:";

/// What a watcher saw about one object of a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The component (as written on the object; resolved in the catalog).
    pub component: String,
    /// The source, e.g. `kube:acme-prod:deployment/shop/checkout`.
    pub source: String,
    /// What it says; `None` withdraws it (the object is gone or fine again).
    pub rag: Option<Rag>,
    /// Why, for people.
    pub reason: String,
    /// A change worth keeping in the history (a rollout), if any.
    pub change: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Records `observation`; returns whether anything was written. Observations
/// about components that are not in the catalog are ignored.
pub async fn record(
    catalog: &CatalogService,
    store: &Store,
    debounce: chrono::Duration,
    observation: &Observation,
) -> Result<bool, StoreError> {
    catalog.sync(store).await?;
    let Some((id, said)) = catalog.view(|book, _| {
        let component = book.catalog().lookup(&observation.component)?;
        let said = book
            .inputs(&component.id)
            .iter()
            .find(|i| i.source == observation.source)
            .map(|i| (i.rag, i.reason.clone()));
        Some((component.id.clone(), said))
    }) else {
        return Ok(false);
    };
    let health_changed = match (&said, observation.rag) {
        (None, None) => false,
        (Some((rag, reason)), Some(now)) => *rag != now || *reason != observation.reason,
        _ => true,
    };
    if !health_changed && observation.change.is_none() {
        return Ok(false);
    }
    let mut tx = store.begin().await?;
    if let Some(change) = &observation.change {
        health::append(
            &mut tx,
            &event(
                &id,
                &format!("{CHANGE_PREFIX}{}", observation.source),
                None,
                change,
                observation.at,
            ),
        )
        .await?;
    }
    if health_changed {
        let logged = health::append(
            &mut tx,
            &event(
                &id,
                &observation.source,
                observation.rag,
                &observation.reason,
                observation.at,
            ),
        )
        .await?;
        super::notify::arm_evaluation(&mut tx, logged, observation.at + debounce, observation.at)
            .await?;
    }
    tx.commit().await?;
    catalog.sync(store).await?;
    Ok(true)
}

fn event(
    id: &ComponentId,
    source: &str,
    rag: Option<Rag>,
    reason: &str,
    at: DateTime<Utc>,
) -> HealthEvent {
    HealthEvent {
        id: 0,
        component: id.to_string(),
        source: source.to_string(),
        rag: rag.map(|r| r.as_str().to_string()),
        reason: reason.to_string(),
        since: at,
        link: None,
    }
}
