//! Kubernetes workloads as a health source: per configured cluster, kube-rs
//! watchers of Deployments, StatefulSets, DaemonSets, Pods and Nodes feed
//! the catalog through [`crate::catalog::observe`].
//!
//! - [`config`]: the `catalog.clusters` section, its checks, the client.
//! - [`judge`]: what one object's status says (the red/amber/green rule).
//! - [`view`]: one cluster's objects turned into observations, reconciled
//!   after every (re)list; which component an object feeds.
//! - [`watch`]: one cluster's watch task (streams, backoff, reachability).
//! - [`supervisor`]: which clusters this replica watches (a lease row per
//!   cluster in the store), following reloads; [`status`]: what is
//!   connected, for `/readyz` and the metrics.
//!
//! Never does this module set health in memory only, and it never writes to
//! a cluster.

pub mod config;
pub mod judge;
pub mod status;
pub mod supervisor;
pub mod view;
pub mod watch;

pub use status::StatusBoard;
pub use supervisor::ClusterWatchers;
