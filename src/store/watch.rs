//! What watchers of pushed sources (Kubernetes clusters) keep in the store:
//! `cluster_leases` (which replica watches a cluster; renewed by its holder,
//! taken over by another replica once expired) and `rollout_revisions` (the
//! last revision recorded per watched object, compared-and-set so a rollout
//! enters the history once across replicas and restarts).

use super::{StoreError, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::{Any, AnyConnection, Executor, Row};

/// How a revision compares with the one recorded for its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revision {
    /// Nothing was recorded for the source: this is its first revision.
    First,
    /// The same revision was recorded already (by this or another replica).
    Same,
    /// A different revision was recorded; it is now replaced.
    Changed,
}

/// Records `revision` as the current one of `source`, in the caller's
/// transaction. Concurrent callers with the same revision get `Changed` (or
/// `First`) exactly once: the insert and the update only match a row that
/// does not hold `revision` yet.
pub async fn advance_revision(
    conn: &mut AnyConnection,
    source: &str,
    revision: &str,
    at: DateTime<Utc>,
) -> Result<Revision, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO rollout_revisions (source, revision, seen_at) VALUES ($1, $2, $3) \
         ON CONFLICT (source) DO NOTHING",
    )
    .bind(source)
    .bind(revision)
    .bind(millis(at))
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Revision::First);
    }
    let updated = sqlx::query(
        "UPDATE rollout_revisions SET revision = $1, seen_at = $2 \
         WHERE source = $3 AND revision <> $1",
    )
    .bind(revision)
    .bind(millis(at))
    .bind(source)
    .execute(&mut *conn)
    .await?;
    Ok(if updated.rows_affected() == 1 {
        Revision::Changed
    } else {
        Revision::Same
    })
}

/// Forgets the revision of an object that is gone.
pub async fn forget_revision<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    source: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM rollout_revisions WHERE source = $1")
        .bind(source)
        .execute(executor)
        .await?;
    Ok(())
}

/// Takes or renews the lease on `cluster` for `holder` until `until`: true
/// when `holder` holds it now (it was free, expired at `now`, or already
/// `holder`'s).
pub async fn claim_lease<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    cluster: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO cluster_leases (cluster, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (cluster) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE cluster_leases.holder = excluded.holder OR cluster_leases.expires_at <= $4",
    )
    .bind(cluster)
    .bind(holder)
    .bind(millis(until))
    .bind(millis(now))
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the lease on `cluster` back, if `holder` holds it.
pub async fn release_lease<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    cluster: &str,
    holder: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM cluster_leases WHERE cluster = $1 AND holder = $2")
        .bind(cluster)
        .bind(holder)
        .execute(executor)
        .await?;
    Ok(())
}

/// Who holds the lease on `cluster`, and until when.
pub async fn lease_holder<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    cluster: &str,
) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
    let row = sqlx::query("SELECT holder, expires_at FROM cluster_leases WHERE cluster = $1")
        .bind(cluster)
        .fetch_optional(executor)
        .await?;
    row.map(|row| {
        Ok((
            row.try_get("holder")?,
            from_millis(row.try_get("expires_at")?),
        ))
    })
    .transpose()
    .map_err(|e: sqlx::Error| StoreError::from(e))
}
