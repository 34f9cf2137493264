//! Approval-gated playbooks: day-2 operations kept as YAML in git (and as
//! `Playbook` custom resources), requested from Slack, run only after the
//! required approvals — never the requester's own — with their changes landing
//! as pull requests.
//!
//! A run is a state machine in the store (`store::playbook_runs`):
//! requested → awaiting approval → approved → running → succeeded / failed,
//! or rejected / expired. Every move is a compare-and-set recorded with its
//! audit entry, timers and effects in one `Work`, so a crash at any point
//! resumes from the last recorded step and nothing is lost or done twice.
//! This module never talks to Slack, a forge or a cluster itself: it records
//! effects, and the outbox delivers them.

pub mod cards;
pub mod config;
pub mod effects;
pub mod handlers;
pub mod handoff;
mod listener;
pub mod load;
pub mod model;
pub mod params;
pub mod plan;
pub mod render;
pub mod resources;
pub mod runs;
pub mod service;
pub mod triggers;
mod verbs;
pub mod yaml_edit;

pub use listener::PlaybookListener;
pub use load::{Library, Playbook, PlaybookError};
pub use service::Playbooks;
pub use verbs::{Approvals, ListPlaybooks, ListRuns, RunPlaybook};
