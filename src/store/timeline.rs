//! The `timeline` table: what happened to a subject (a request, an incident, a
//! thread), who did it and when. Jobs append in their transactions;
//! postmortems read it back in order.

use super::{Store, StoreError, from_millis, millis};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Any, Executor, Row};

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// What, as a short machine name: `opened`, `claimed`, `escalated`,
    /// `acknowledged`, `resolved`, `alert`, `postmortem`…
    pub kind: String,
    /// Who (a Slack user id), if a person did it.
    pub actor: Option<String>,
    /// What happened, in a sentence (plain text).
    pub text: String,
}

/// The subject of a Slack thread: `thread:<channel>:<ts>`.
pub fn thread_subject(channel: &str, ts: &str) -> String {
    format!("thread:{channel}:{ts}")
}

/// Appends an entry to `subject`'s timeline.
pub async fn append<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    subject: &str,
    entry: &TimelineEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO timeline (subject, at, kind, actor, text) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(subject)
    .bind(millis(entry.at))
    .bind(&entry.kind)
    .bind(entry.actor.as_deref())
    .bind(&entry.text)
    .execute(executor)
    .await?;
    Ok(())
}

impl Store {
    /// Appends an entry outside any other decision.
    pub async fn append_timeline(
        &self,
        subject: &str,
        entry: &TimelineEntry,
    ) -> Result<(), StoreError> {
        append(self.pool(), subject, entry).await
    }

    /// `subject`'s timeline, oldest first.
    pub async fn timeline(&self, subject: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        list(self.pool(), subject).await
    }
}

/// `subject`'s timeline, oldest first (inside a transaction, it includes what
/// the transaction appended).
pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    subject: &str,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT at, kind, actor, text FROM timeline WHERE subject = $1 ORDER BY at, id",
    )
    .bind(subject)
    .fetch_all(executor)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TimelineEntry {
                at: from_millis(row.try_get("at")?),
                kind: row.try_get("kind")?,
                actor: row.try_get("actor")?,
                text: row.try_get("text")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(StoreError::from)
}
