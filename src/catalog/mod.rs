//! The catalog: components of customers' platforms, their dependencies and
//! their health.
//!
//! - [`model`]: components, ids (Backstage references reduce to names),
//!   kinds, links, edges, HTTP check declarations.
//! - [`load`]: Watchkeeper's YAML and Backstage `catalog-info.yaml`, merged
//!   with `file:line` errors (duplicates, unknown references, bad checks)
//!   and cycle warnings.
//! - [`graph`]: the validated [`Catalog`]: look-up, dependents, strongly
//!   connected components, tenant-filtered suggestions.
//! - [`health`]: inputs, own and rolled-up health (the rule is documented
//!   there), incremental updates and transitions.
//! - [`changes`]: recent changes per component.
//! - [`service`]: the live catalog of a replica — health inputs replayed
//!   from the store's `health_events` log; [`alertmanager`] reads webhooks;
//!   [`verbs`]: `/wk status` and `/wk changes`; [`config`]: `catalog:`;
//!   [`checks`]: the declared HTTP checks, run on the scheduler;
//!   [`handoff`]: the catalog's part of a shift hand-off;
//!   [`kubernetes`]: workloads, pods and nodes of configured clusters,
//!   watched with kube-rs; [`observe`]: the recording path of such
//!   watchers.

pub mod alertmanager;
pub mod changes;
pub mod checks;
pub mod config;
pub mod error;
pub mod graph;
pub mod handoff;
pub mod health;
pub mod kubernetes;
pub mod load;
pub mod model;
pub mod notify;
pub mod observe;
pub mod service;
pub mod verbs;

pub use changes::{Change, ChangeKind, ChangeLog};
pub use error::CatalogError;
pub use graph::Catalog;
pub use health::{Health, HealthBook, HealthError, Input, Rag, Reason, Transition};
pub use load::{Loaded, load, load_texts};
pub use model::{Component, ComponentId, Edge, HttpCheck, IdError, Kind, Links, Origin};
pub use service::CatalogService;
