//! The on-call job: rotations, overrides and swaps, shift hand-offs.
//!
//! - `config` — the `rotations:` section and its checks.
//! - `roster` — the rotation maths, pure functions of (configuration,
//!   overrides, instant): layers, restrictions, priorities, the DST rule.
//! - `handoff` — the contract through which the other jobs contribute to a
//!   shift's hand-off summary (open requests, incidents, pending approvals,
//!   notable changes) without this job reading their tables.
//! - `ticks` — one durable timer chain per rotation: hand-offs at every
//!   change of who is on call, reminders and empty-shift warnings ahead.
//! - `notices` — what each person was last told about their shifts, so a
//!   change tells exactly the people whose shifts moved, once.
//! - `verbs`, `swaps`, `moments` — `/wk oncall`, swap confirmations, and
//!   times as people type them.
//!
//! It never stores the roster: who is on call is always computed from the
//! configuration and the overrides, so a configuration change applies at once.
//!
//! # The roster API: who is on call
//!
//! Other jobs (escalations paging "a rotation's current on-call") ask
//! [`on_call`] from inside the `Work` of a verb, listener or timer handler:
//!
//! ```ignore
//! let config = &call.env.config;           // or the Config a timer handler holds
//! let people: Vec<UserId> =
//!     crate::oncall::on_call(work, config, "ops-duty", work.now()).await?;
//! if people.is_empty() { /* nobody is on call: page the next level */ }
//! ```
//!
//! It applies layers (the highest priority wins where they overlap),
//! restrictions (a layer is on call only inside its windows), overrides (the
//! newest wins) and confirmed swaps, and reads the overrides through the
//! work's transaction, so it sees what that transaction recorded. The answer
//! is empty when nobody is on call. [`RosterError::UnknownRotation`] names a
//! rotation the configuration does not have (`watchkeeper check` can refuse
//! such a reference up front with `config.rotations.contains_key(name)`).

pub mod config;
pub mod handoff;
mod moments;
pub mod notices;
pub mod roster;
mod swaps;
pub mod ticks;
mod verbs;

pub use swaps::Swaps;
pub use ticks::Ticks;
pub use verbs::Oncall;

/// The templates of `commands/oncall.yaml` this job renders.
pub const TEMPLATES: &[&str] = &[
    "now",
    "me",
    "override_done",
    "cancelled",
    "swap_proposed",
    "swap_asked",
    "swap_waiting",
    "swap_done",
    "swap_declined",
    "swap_expired",
    "handoff",
    "reminder",
    "empty_ahead",
    "moved",
];

use crate::config::Config;
use crate::ids::UserId;
use crate::store::StoreError;
use crate::work::Work;
use chrono::{DateTime, Utc};
use roster::{Override, Rotation};

/// Why the roster could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// The configuration has no rotation of that name.
    #[error("there is no rotation `{0}` in the configuration")]
    UnknownRotation(String),
    /// Reading the overrides failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who is on call for `rotation` at `at`: layers, restrictions, overrides and
/// confirmed swaps applied; empty when nobody is.
pub async fn on_call(
    work: &mut Work,
    config: &Config,
    rotation: &str,
    at: DateTime<Utc>,
) -> Result<Vec<UserId>, RosterError> {
    let compiled = Rotation::from_config(config, rotation)
        .ok_or_else(|| RosterError::UnknownRotation(rotation.to_string()))?;
    let overrides = overrides(work, rotation, at).await?;
    Ok(compiled.on_call_at(at, &overrides))
}

/// The overrides of `rotation` in force at some time after `from`, read
/// through the work's transaction.
pub async fn overrides(
    work: &mut Work,
    rotation: &str,
    from: DateTime<Utc>,
) -> Result<Vec<Override>, StoreError> {
    let tx = work.tx().await?;
    Ok(crate::store::oncall::overrides(tx.conn(), rotation, from)
        .await?
        .into_iter()
        .map(|row| row.window)
        .collect())
}

/// Records a post (a DM or a channel message) of `text` under `key`.
async fn post(
    work: &mut Work,
    key: &str,
    to: crate::outbox::Target,
    text: String,
) -> Result<(), StoreError> {
    let effect = crate::outbox::SlackEffect::Post {
        to,
        reply: crate::chat::Reply::text(text).in_channel(),
    };
    work.effect(key, &effect).await.map(|_| ())
}
