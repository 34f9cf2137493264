//! The `health_events` table: what health sources (alerts, checks, watchers)
//! said about components, as an append-only log every replica replays into
//! its in-memory health book.

use super::{Backend, Store, StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One thing a source said about a component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// Log position (0 until recorded).
    pub id: i64,
    /// The component's id.
    pub component: String,
    /// Who says so: `alert:<name>:<fingerprint>`, `http:<url>`…
    pub source: String,
    /// `red`, `amber`, `green`, `unknown`; `None` when the source withdrew.
    pub rag: Option<String>,
    /// Why, for people.
    pub reason: String,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Where to look (an alert's graph), if any.
    pub link: Option<String>,
}

/// Appends an event; returns its log position.
///
/// Readers replay the log by position, so positions must become visible in
/// order: on PostgreSQL appends take the table's EXCLUSIVE lock (readers are
/// not blocked) until their transaction ends; SQLite has one writer anyway.
pub async fn append(tx: &mut Tx, event: &HealthEvent) -> Result<i64, StoreError> {
    if tx.backend() == Backend::Postgres {
        sqlx::query("LOCK TABLE health_events IN EXCLUSIVE MODE")
            .execute(tx.conn())
            .await?;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO health_events (component, source, rag, reason, since, link) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&event.component)
    .bind(&event.source)
    .bind(event.rag.as_deref())
    .bind(&event.reason)
    .bind(millis(event.since))
    .bind(event.link.as_deref())
    .fetch_one(tx.conn())
    .await?;
    Ok(id)
}

/// Deletes events older than `before` that a later event of the same source
/// about the same component replaces: replaying the log still ends in the
/// same state, and it stops growing with every flap.
pub async fn purge_superseded(
    conn: &mut sqlx::AnyConnection,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "DELETE FROM health_events WHERE since < $1 AND EXISTS ( \
           SELECT 1 FROM health_events n \
           WHERE n.component = health_events.component AND n.source = health_events.source \
             AND n.id > health_events.id)",
    )
    .bind(millis(before))
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

impl Store {
    /// Events after log position `after`, oldest first, at most `limit`.
    pub async fn health_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<HealthEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, component, source, rag, reason, since, link FROM health_events \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HealthEvent {
                    id: row.try_get("id")?,
                    component: row.try_get("component")?,
                    source: row.try_get("source")?,
                    rag: row.try_get("rag")?,
                    reason: row.try_get("reason")?,
                    since: from_millis(row.try_get("since")?),
                    link: row.try_get("link")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// What subscribers were last told about `component`: its colour and when.
pub async fn last_notice(
    conn: &mut sqlx::AnyConnection,
    component: &str,
) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
    let row = sqlx::query("SELECT rag, notified_at FROM health_notices WHERE component = $1")
        .bind(component)
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        Ok((
            row.try_get("rag")?,
            from_millis(row.try_get("notified_at")?),
        ))
    })
    .transpose()
    .map_err(|e: sqlx::Error| StoreError::from(e))
}

/// Records that subscribers were told `rag`, only if what they were told
/// before is still `previous` (None: never told): false when another worker
/// got there first.
pub async fn record_notice(
    conn: &mut sqlx::AnyConnection,
    component: &str,
    previous: Option<&str>,
    rag: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = match previous {
        None => sqlx::query(
            "INSERT INTO health_notices (component, rag, notified_at) VALUES ($1, $2, $3) \
             ON CONFLICT (component) DO NOTHING",
        )
        .bind(component)
        .bind(rag)
        .bind(millis(at))
        .execute(conn)
        .await?,
        Some(previous) => sqlx::query(
            "UPDATE health_notices SET rag = $1, notified_at = $2 WHERE component = $3 AND rag = $4",
        )
        .bind(rag)
        .bind(millis(at))
        .bind(component)
        .bind(previous)
        .execute(conn)
        .await?,
    };
    Ok(done.rows_affected() == 1)
}
