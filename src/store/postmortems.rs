//! The `postmortems` table: one per subject, with its ticket on a forge,
//! tracked until the ticket is closed.

use super::{Store, StoreError, from_millis, millis};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Any, AnyConnection, Executor, Row};

/// Where a postmortem stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PostmortemStatus {
    /// Recorded; the ticket is being created.
    Opening,
    /// The ticket exists and is open.
    Open,
    /// The ticket was closed.
    Closed,
    /// The forge refused to create the ticket.
    Failed,
}

impl PostmortemStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opening => "opening",
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "open" => Self::Open,
            "closed" => Self::Closed,
            "failed" => Self::Failed,
            _ => Self::Opening,
        }
    }
}

/// A postmortem to record.
#[derive(Clone, Debug)]
pub struct NewPostmortem {
    /// What it is about, e.g. `thread:C0ACME:1700000000.000100`; unique.
    pub subject: String,
    /// The channel of the thread.
    pub channel: String,
    /// The thread, if it is about one.
    pub thread_ts: Option<String>,
    /// The customer.
    pub tenant: Option<String>,
    /// Title (plain text).
    pub title: String,
    /// Severity, e.g. `SEV2`.
    pub severity: String,
    /// Owner (Slack user id).
    pub owner: Option<String>,
    /// Which forge holds the ticket.
    pub forge: String,
    /// Which repository.
    pub repo: String,
    /// Who asked for it (Slack user id).
    pub created_by: String,
}

/// A recorded postmortem.
#[derive(Clone, Debug, Serialize)]
pub struct Postmortem {
    /// Its number, shown as `PM-<id>`.
    pub id: i64,
    /// What it is about.
    pub subject: String,
    /// The channel of the thread.
    pub channel: String,
    /// The thread.
    pub thread_ts: Option<String>,
    /// The customer.
    pub tenant: Option<String>,
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: String,
    /// Owner (Slack user id).
    pub owner: Option<String>,
    /// Forge.
    pub forge: String,
    /// Repository.
    pub repo: String,
    /// Where it stands.
    pub status: PostmortemStatus,
    /// The ticket's number, once created.
    pub issue_number: Option<i64>,
    /// The ticket's address, once created.
    pub issue_url: Option<String>,
    /// Who asked for it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When the ticket was closed.
    pub closed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, subject, channel, thread_ts, tenant, title, severity, owner, forge, repo, \
     status, issue_number, issue_url, created_by, created_at, closed_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Postmortem, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let closed: Option<i64> = row.try_get("closed_at")?;
    Ok(Postmortem {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        channel: row.try_get("channel")?,
        thread_ts: row.try_get("thread_ts")?,
        tenant: row.try_get("tenant")?,
        title: row.try_get("title")?,
        severity: row.try_get("severity")?,
        owner: row.try_get("owner")?,
        forge: row.try_get("forge")?,
        repo: row.try_get("repo")?,
        status: PostmortemStatus::parse(&status),
        issue_number: row.try_get("issue_number")?,
        issue_url: row.try_get("issue_url")?,
        created_by: row.try_get("created_by")?,
        created_at: from_millis(row.try_get("created_at")?),
        closed_at: closed.map(from_millis),
    })
}

/// Records a postmortem unless its subject has one; returns it and whether it
/// is new.
pub async fn insert(
    conn: &mut AnyConnection,
    new: &NewPostmortem,
    now: DateTime<Utc>,
) -> Result<(Postmortem, bool), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO postmortems (subject, channel, thread_ts, tenant, title, severity, owner, forge, repo, \
           status, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'opening', $10, $11, $11) \
         ON CONFLICT (subject) DO NOTHING",
    )
    .bind(&new.subject)
    .bind(&new.channel)
    .bind(new.thread_ts.as_deref())
    .bind(new.tenant.as_deref())
    .bind(&new.title)
    .bind(&new.severity)
    .bind(new.owner.as_deref())
    .bind(&new.forge)
    .bind(&new.repo)
    .bind(&new.created_by)
    .bind(millis(now))
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM postmortems WHERE subject = $1"
    ))
    .bind(&new.subject)
    .fetch_one(&mut *conn)
    .await?;
    Ok((from_row(&row)?, inserted))
}

/// Records the ticket the forge created; the postmortem is then open.
pub async fn set_issue(
    conn: &mut AnyConnection,
    id: i64,
    number: i64,
    url: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE postmortems SET issue_number = $1, issue_url = $2, status = 'open', updated_at = $3 \
         WHERE id = $4 AND status = 'opening'",
    )
    .bind(number)
    .bind(url)
    .bind(millis(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a postmortem to `status`; false when it already was there (so a
/// webhook and a poll that both see a close announce it once).
pub async fn set_status(
    conn: &mut AnyConnection,
    id: i64,
    status: PostmortemStatus,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let closed_at = (status == PostmortemStatus::Closed).then(|| millis(now));
    let changed = sqlx::query(
        "UPDATE postmortems SET status = $1, closed_at = $2, updated_at = $3 WHERE id = $4 AND status <> $1",
    )
    .bind(status.as_str())
    .bind(closed_at)
    .bind(millis(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// One postmortem by id.
pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<Postmortem>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM postmortems WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

impl Store {
    /// One postmortem by id.
    pub async fn postmortem(&self, id: i64) -> Result<Option<Postmortem>, StoreError> {
        get(self.pool(), id).await
    }

    /// The postmortem tracking ticket `number` of `repo` on `forge`.
    pub async fn postmortem_by_issue(
        &self,
        forge: &str,
        repo: &str,
        number: i64,
    ) -> Result<Option<Postmortem>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM postmortems WHERE forge = $1 AND repo = $2 AND issue_number = $3"
        ))
        .bind(forge)
        .bind(repo)
        .bind(number)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Postmortems in `statuses`, oldest first, optionally only `owner`'s.
    pub async fn postmortems(
        &self,
        statuses: &[PostmortemStatus],
        owner: Option<&str>,
    ) -> Result<Vec<Postmortem>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM postmortems WHERE (CAST($1 AS TEXT) IS NULL OR owner = $1) ORDER BY created_at, id"
        ))
        .bind(owner)
        .fetch_all(self.pool())
        .await?;
        let all = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(all
            .into_iter()
            .filter(|p| statuses.contains(&p.status))
            .collect())
    }
}
