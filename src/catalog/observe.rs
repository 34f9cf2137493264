//! Recording what a watcher observes (Kubernetes workloads, or any source
//! that pushes rather than being polled): an observation becomes a health
//! event only when it changes what its source says, and a rollout becomes an
//! entry in the component's history on every replica — once: the object's
//! revision is compared-and-set in the store (`rollout_revisions`) in the
//! transaction that records it, so neither a second replica nor a restart
//! records the same revision again.

use super::health::Rag;
use super::model::ComponentId;
use super::service::CatalogService;
use crate::store::health::{self, HealthEvent};
use crate::store::watch::{self, Revision};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};

/// Prefix of the sources whose events are changes, not health.
pub const CHANGE_PREFIX: &str = "change:";
/// The cause (after [`CHANGE_PREFIX`]) of the changes playbook runs make.
pub const PLAYBOOK_CAUSE: &str = "playbook:";

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
    /// The object's current version, when it has one (a Deployment's
    /// revision): a version the store has not recorded for this source is a
    /// rollout, kept in the history once.
    pub rollout: Option<Rollout>,
    /// When.
    pub at: DateTime<Utc>,
}

/// The version of a watched object, and what it is for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    /// What identifies this version (a Deployment's revision number, a
    /// StatefulSet's update revision).
    pub revision: String,
    /// What was rolled out, for the history ("deployment shop/checkout
    /// revision 5: checkout=registry.example.com/checkout:1.4.2").
    pub text: String,
    /// Whether the first version recorded for a source is itself a rollout
    /// (an object created while watched) rather than its baseline (an object
    /// found when listing).
    pub new_object: bool,
}

/// Records `observation`; returns whether a health event or a rollout was
/// written. Observations about components that are not in the catalog are
/// ignored.
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
    if !health_changed && observation.rollout.is_none() {
        return Ok(false);
    }
    let mut tx = store.begin().await?;
    let mut wrote = false;
    if let Some(rollout) = &observation.rollout {
        let seen = watch::advance_revision(
            tx.conn(),
            &observation.source,
            &rollout.revision,
            observation.at,
        )
        .await?;
        if seen == Revision::Changed || (seen == Revision::First && rollout.new_object) {
            health::append(
                &mut tx,
                &event(
                    &id,
                    &format!("{CHANGE_PREFIX}{}", observation.source),
                    None,
                    &rollout.text,
                    observation.at,
                ),
            )
            .await?;
            wrote = true;
        }
    }
    if health_changed {
        wrote = true;
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
    if wrote {
        catalog.sync(store).await?;
    }
    Ok(wrote)
}

/// Forgets the recorded version of an object that is gone (a later object
/// of the same name starts a history of its own).
pub async fn forget(store: &Store, source: &str) -> Result<(), StoreError> {
    watch::forget_revision(store.pool(), source).await
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
