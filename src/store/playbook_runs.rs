//! The `playbook_runs` and `playbook_decisions` tables, owned by the
//! playbooks job: a run's state and plan, and who approved or rejected it.
//!
//! Every change of status is a compare-and-set (`WHERE status IN (…)`), so
//! two replicas, a click and a timer, or a retry after a crash can never move
//! a run twice; the caller records the matching audit entry and effects in
//! the same transaction.

use super::{Store, StoreError, from_millis, millis};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Any, AnyConnection, Executor, Row};

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Recorded; its dry run is being prepared.
    Requested,
    /// Its plan is posted; it waits for approvals.
    AwaitingApproval,
    /// Enough approvals; about to run.
    Approved,
    /// Its actions are being carried out.
    Running,
    /// Every action succeeded.
    Succeeded,
    /// An action (or the dry run) failed.
    Failed,
    /// An approver rejected it.
    Rejected,
    /// Nobody approved it in time.
    Expired,
}

impl RunStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Approved => "approved",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    /// As people read it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Requested => "preparing the dry run",
            Self::AwaitingApproval => "awaiting approval",
            Self::Approved => "approved",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "awaiting_approval" => Self::AwaitingApproval,
            "approved" => Self::Approved,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "rejected" => Self::Rejected,
            "expired" => Self::Expired,
            _ => Self::Requested,
        }
    }
}

/// A run to record.
#[derive(Clone, Debug)]
pub struct NewRun {
    /// The playbook's name.
    pub playbook: String,
    /// Its title at the time.
    pub title: String,
    /// Parameter values as text, JSON object.
    pub params: serde_json::Value,
    /// Who asked (a Slack user id, or `watchkeeper` for schedules and alerts).
    pub requested_by: String,
    /// `person`, `schedule:<name>` or `alert:<name>`.
    pub trigger: String,
    /// The customer it is for.
    pub tenant: Option<String>,
    /// Where it was requested (its messages go there).
    pub channel: String,
    /// The thread it was requested in, if any.
    pub thread_ts: Option<String>,
    /// Distinct approvals needed.
    pub approvals_needed: i64,
}

/// A recorded run.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Its number (`run #7`).
    pub id: i64,
    /// The playbook's name.
    pub playbook: String,
    /// Its title.
    pub title: String,
    /// Parameter values as text.
    pub params: serde_json::Value,
    /// The plan, once the dry run is done.
    pub plan: Option<serde_json::Value>,
    /// Where it stands.
    pub status: RunStatus,
    /// The next action to carry out.
    pub step: i64,
    /// Who asked.
    pub requested_by: String,
    /// What started it.
    pub trigger: String,
    /// The customer.
    pub tenant: Option<String>,
    /// Its channel.
    pub channel: String,
    /// Its thread, when requested in one.
    pub thread_ts: Option<String>,
    /// Approvals needed.
    pub approvals_needed: i64,
    /// When the request expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// How it ended, or why it failed (no secrets: redacted before).
    pub outcome: Option<String>,
    /// Its pull request.
    pub pr_url: Option<String>,
    /// The outbox keys of its approval cards (updated in place as it moves).
    pub cards: Vec<CardRef>,
    /// When it was requested.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// An approval card posted for a run: its outbox key and channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CardRef {
    /// The post's outbox key.
    pub key: String,
    /// The channel it went to (`D…`-less for a DM: the user's id).
    pub channel: String,
}

/// One person's decision on a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Slack user id.
    pub approver: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// When.
    pub at: DateTime<Utc>,
}

const COLUMNS: &str = "id, playbook, title, params, plan, status, step, requested_by, trigger_kind, tenant, \
     channel, thread_ts, approvals_needed, expires_at, outcome, pr_url, cards, created_at, updated_at";

fn json(text: Option<String>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Run, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let expires: Option<i64> = row.try_get("expires_at")?;
    Ok(Run {
        id: row.try_get("id")?,
        playbook: row.try_get("playbook")?,
        title: row.try_get("title")?,
        params: json(row.try_get("params")?).unwrap_or_default(),
        plan: json(row.try_get("plan")?),
        status: RunStatus::parse(&status),
        step: row.try_get("step")?,
        requested_by: row.try_get("requested_by")?,
        trigger: row.try_get("trigger_kind")?,
        tenant: row.try_get("tenant")?,
        channel: row.try_get("channel")?,
        thread_ts: row.try_get("thread_ts")?,
        approvals_needed: row.try_get("approvals_needed")?,
        expires_at: expires.map(from_millis),
        outcome: row.try_get("outcome")?,
        pr_url: row.try_get("pr_url")?,
        cards: json(row.try_get("cards")?)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default(),
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
    })
}

/// Records a requested run; returns its id.
pub async fn insert(
    conn: &mut AnyConnection,
    new: &NewRun,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO playbook_runs (playbook, title, params, status, requested_by, trigger_kind, tenant, channel, \
           thread_ts, approvals_needed, created_at, updated_at) \
         VALUES ($1, $2, $3, 'requested', $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
    )
    .bind(&new.playbook)
    .bind(&new.title)
    .bind(new.params.to_string())
    .bind(&new.requested_by)
    .bind(&new.trigger)
    .bind(new.tenant.as_deref())
    .bind(&new.channel)
    .bind(new.thread_ts.as_deref())
    .bind(new.approvals_needed)
    .bind(millis(now))
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// One run by id.
pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<Run>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM playbook_runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Moves a run from one of `from` to `to`, noting `outcome` when given;
/// false when it was not in one of `from` (someone else moved it first).
pub async fn transition(
    conn: &mut AnyConnection,
    id: i64,
    from: &[RunStatus],
    to: RunStatus,
    outcome: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let list: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let changed = sqlx::query(&format!(
        "UPDATE playbook_runs SET status = $1, outcome = COALESCE($2, outcome), updated_at = $3 \
         WHERE id = $4 AND status IN ({})",
        list.join(", ")
    ))
    .bind(to.as_str())
    .bind(outcome)
    .bind(millis(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// Records the dry run's plan and the expiry; the run then awaits approval.
/// False when the run was no longer `requested`.
pub async fn set_plan(
    conn: &mut AnyConnection,
    id: i64,
    plan: &serde_json::Value,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE playbook_runs SET plan = $1, expires_at = $2, status = 'awaiting_approval', updated_at = $3 \
         WHERE id = $4 AND status = 'requested'",
    )
    .bind(plan.to_string())
    .bind(millis(expires_at))
    .bind(millis(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// Moves a running run from step `from` to `from + 1`; false when it was
/// not at `from` (the step was already recorded).
pub async fn advance_step(
    conn: &mut AnyConnection,
    id: i64,
    from: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE playbook_runs SET step = step + 1, updated_at = $1 WHERE id = $2 AND step = $3 AND status = 'running'",
    )
    .bind(millis(now))
    .bind(id)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// Records the run's approval cards.
pub async fn set_cards(
    conn: &mut AnyConnection,
    id: i64,
    cards: &[CardRef],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE playbook_runs SET cards = $1 WHERE id = $2")
        .bind(serde_json::to_string(cards).unwrap_or_default())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the run's pull request.
pub async fn set_pr(
    conn: &mut AnyConnection,
    id: i64,
    url: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE playbook_runs SET pr_url = $1, updated_at = $2 WHERE id = $3")
        .bind(url)
        .bind(millis(now))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records `approver`'s decision; false when they had decided already.
pub async fn decide(
    conn: &mut AnyConnection,
    id: i64,
    approver: &str,
    decision: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO playbook_decisions (run_id, approver, decision, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (run_id, approver) DO NOTHING",
    )
    .bind(id)
    .bind(approver)
    .bind(decision)
    .bind(millis(now))
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The decisions on a run, in order.
pub async fn decisions<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Vec<Decision>, StoreError> {
    let rows = sqlx::query("SELECT approver, decision, at FROM playbook_decisions WHERE run_id = $1 ORDER BY at, approver")
        .bind(id)
        .fetch_all(executor)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Decision {
                approver: row.try_get("approver")?,
                decision: row.try_get("decision")?,
                at: from_millis(row.try_get("at")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Which runs a list shows.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    /// Only this playbook's.
    pub playbook: Option<String>,
    /// Only this requester's.
    pub requested_by: Option<String>,
    /// Only in these statuses (all when empty).
    pub statuses: Vec<RunStatus>,
    /// Only runs changed since.
    pub changed_since: Option<DateTime<Utc>>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// Runs matching `filter`, newest first.
pub async fn list<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    filter: &RunFilter,
) -> Result<Vec<Run>, StoreError> {
    let statuses: Vec<String> = filter
        .statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    let status_clause = if statuses.is_empty() {
        String::new()
    } else {
        format!(" AND status IN ({})", statuses.join(", "))
    };
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM playbook_runs \
         WHERE (CAST($1 AS TEXT) IS NULL OR playbook = $1) AND (CAST($2 AS TEXT) IS NULL OR requested_by = $2) \
           AND updated_at >= $3{status_clause} \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(filter.playbook.as_deref())
    .bind(filter.requested_by.as_deref())
    .bind(filter.changed_since.map(millis).unwrap_or(i64::MIN))
    .bind(if filter.limit > 0 { filter.limit } else { 20 })
    .fetch_all(executor)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?)
}

impl Store {
    /// One playbook run by id.
    pub async fn playbook_run(&self, id: i64) -> Result<Option<Run>, StoreError> {
        get(self.pool(), id).await
    }

    /// Playbook runs matching `filter`, newest first.
    pub async fn playbook_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        list(self.pool(), filter).await
    }
}
