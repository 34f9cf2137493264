//! Timer kinds that belong to no job: a scheduled Slack message, and the
//! housekeeping that deletes finished rows after the retention period.

use super::{HandlerError, TimerHandler};
use crate::outbox::SlackEffect;
use crate::store::timers::{NewTimer, Queue, Timer};
use crate::work::Work;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// Posts a Slack effect when due (reminders, announcements, drills).
pub struct Notify;

/// The payload of a `notify` timer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifyPayload {
    /// What to do in Slack.
    pub effect: SlackEffect,
}

impl Notify {
    /// The kind this handler runs.
    pub const KIND: &'static str = "notify";

    /// A timer that performs `effect` at `due_at`; `key` makes it unique.
    pub fn timer(key: &str, due_at: DateTime<Utc>, effect: SlackEffect) -> NewTimer {
        NewTimer {
            queue: Queue::Timers,
            kind: Self::KIND.to_string(),
            key: key.to_string(),
            group: None,
            lane: None,
            payload: serde_json::to_value(NotifyPayload { effect }).unwrap_or_default(),
            due_at,
        }
    }
}

impl TimerHandler for Notify {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let payload: NotifyPayload = serde_json::from_value(timer.payload.clone())
                .map_err(|e| HandlerError::Permanent(format!("unreadable notify payload: {e}")))?;
            work.effect(&format!("{}:post", timer.key), &payload.effect)
                .await?;
            Ok(())
        })
    }
}

/// Deletes finished timers and ended outbox items older than the retention.
pub struct Housekeeping {
    /// How long finished rows are kept.
    pub retention: chrono::Duration,
}

impl Housekeeping {
    /// The kind this handler runs.
    pub const KIND: &'static str = "housekeeping";
}

impl TimerHandler for Housekeeping {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn fire<'a>(
        &'a self,
        _timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let before = work.now() - self.retention;
            let tx = work.tx().await?;
            let timers = crate::store::timers::purge_finished(tx.conn(), before).await?;
            let effects = crate::store::outbox::purge(tx, before).await?;
            let health = crate::store::health::purge_superseded(tx.conn(), before).await?;
            tracing::info!(timers, effects, health, %before, "housekeeping deleted finished rows");
            Ok(())
        })
    }
}
