//! The `timers` and `schedules` tables: one-shot work with a due time (business
//! timers and the inbox) and recurring schedules.
//!
//! A row is claimed with a lease by one worker; the handler's transaction marks
//! it done with [`finish_timer`] as its first statement, which succeeds only
//! while the claim is still ours and the row is not cancelled. Rows of one
//! `lane` are claimed one at a time in id order. Queries are written once for
//! both backends; only the row-locking clause differs.

use super::{Store, StoreError, from_millis, millis};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Any, AnyConnection, Executor, Row};

/// Which worker runs a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Business timers: escalations, SLA checks, reminders, schedule occurrences.
    Timers,
    /// Inbound Slack events and interactions, in order per channel.
    Inbox,
}

impl Queue {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Timers => "timers",
            Queue::Inbox => "inbox",
        }
    }
}

/// A timer to arm.
#[derive(Clone, Debug)]
pub struct NewTimer {
    /// Which worker runs it.
    pub queue: Queue,
    /// The handler, e.g. `escalation.step`.
    pub kind: String,
    /// Unique: arming the same key twice is a no-op; cancelling uses it.
    pub key: String,
    /// Timers of one group can be cancelled together (e.g. `request:42`).
    pub group: Option<String>,
    /// Rows of one lane run one at a time, in the order they were armed.
    pub lane: Option<String>,
    /// What the handler needs (ids, never state it can reload).
    pub payload: Value,
    /// When it is due.
    pub due_at: DateTime<Utc>,
}

/// A claimed timer.
#[derive(Clone, Debug)]
pub struct Timer {
    /// Row id.
    pub id: i64,
    /// Its queue.
    pub queue: Queue,
    /// The handler.
    pub kind: String,
    /// Its unique key.
    pub key: String,
    /// Its group.
    pub group: Option<String>,
    /// Its lane.
    pub lane: Option<String>,
    /// The handler's input.
    pub payload: Value,
    /// When it was due.
    pub due_at: DateTime<Utc>,
    /// How many times it has been claimed, this claim included.
    pub attempts: i64,
    /// When it was armed.
    pub created_at: DateTime<Utc>,
}

/// How a timer ended, for reports and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerState {
    /// `pending`, `running`, `done`, `cancelled` or `failed`.
    pub status: String,
    /// Claims so far.
    pub attempts: i64,
    /// When it finished, if it did.
    pub finished_at: Option<DateTime<Utc>>,
    /// The last handler error.
    pub last_error: Option<String>,
}

/// Arms a timer; returns false when a timer with the same key already exists.
pub async fn insert_timer<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    timer: &NewTimer,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO timers (queue, kind, idem_key, grp, lane, payload, due_at, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) ON CONFLICT (idem_key) DO NOTHING",
    )
    .bind(timer.queue.as_str())
    .bind(&timer.kind)
    .bind(&timer.key)
    .bind(&timer.group)
    .bind(&timer.lane)
    .bind(timer.payload.to_string())
    .bind(millis(timer.due_at))
    .bind(millis(now))
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Cancels a timer that has not fired; returns whether it was cancelled.
pub async fn cancel_timer(
    conn: &mut AnyConnection,
    key: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE timers SET status = 'cancelled', finished_at = $1 \
         WHERE idem_key = $2 AND status IN ('pending', 'running')",
    )
    .bind(millis(now))
    .bind(key)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Cancels every timer of a group that has not fired; returns how many.
pub async fn cancel_group(
    conn: &mut AnyConnection,
    group: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "UPDATE timers SET status = 'cancelled', finished_at = $1 \
         WHERE grp = $2 AND status IN ('pending', 'running')",
    )
    .bind(millis(now))
    .bind(group)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Marks a claimed timer done, as the first statement of its handler's
/// transaction. False when the claim is no longer ours (the lease expired and
/// another worker took it) or the timer was cancelled: the handler must not run.
pub async fn finish_timer(
    conn: &mut AnyConnection,
    id: i64,
    worker: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE timers SET status = 'done', finished_at = $1, lease_until = NULL \
         WHERE id = $2 AND status = 'running' AND claimed_by = $3",
    )
    .bind(millis(now))
    .bind(id)
    .bind(worker)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

fn timer_from_row(row: &sqlx::any::AnyRow) -> Result<Timer, sqlx::Error> {
    let queue: String = row.try_get("queue")?;
    let payload: String = row.try_get("payload")?;
    Ok(Timer {
        id: row.try_get("id")?,
        queue: if queue == "inbox" {
            Queue::Inbox
        } else {
            Queue::Timers
        },
        kind: row.try_get("kind")?,
        key: row.try_get("idem_key")?,
        group: row.try_get("grp")?,
        lane: row.try_get("lane")?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        due_at: from_millis(row.try_get("due_at")?),
        attempts: row.try_get("attempts")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

impl Store {
    /// Arms a timer outside any transaction (the inbox); false for a duplicate key.
    pub async fn insert_timer(
        &self,
        timer: &NewTimer,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        insert_timer(self.pool(), timer, now).await
    }

    /// Claims up to `limit` due rows of `queue` for `worker` until `lease_until`:
    /// pending rows that are due, and running rows whose lease has expired (their
    /// worker died). A laned row is claimed only when no earlier row of its lane
    /// is still waiting or running.
    pub async fn claim_timers(
        &self,
        queue: Queue,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Timer>, StoreError> {
        // A read first: an idle poll must not take SQLite's write lock.
        if self.next_timer_due(queue).await?.is_none_or(|at| at > now) {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE timers SET status = 'running', claimed_by = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN ( \
               SELECT t.id FROM timers t \
               WHERE t.queue = $3 \
                 AND ((t.status = 'pending' AND t.due_at <= $4) OR (t.status = 'running' AND t.lease_until < $4)) \
                 AND (t.lane IS NULL OR NOT EXISTS ( \
                   SELECT 1 FROM timers p WHERE p.lane = t.lane AND p.id < t.id AND p.status IN ('pending', 'running'))) \
               ORDER BY t.due_at, t.id LIMIT $5 {}) \
             RETURNING id, queue, kind, idem_key, grp, lane, payload, due_at, attempts, created_at",
            self.backend().skip_locked()
        );
        let rows = sqlx::query(&sql)
            .bind(worker)
            .bind(millis(lease_until))
            .bind(queue.as_str())
            .bind(millis(now))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut timers = rows
            .iter()
            .map(timer_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        timers.sort_by_key(|t| (t.due_at, t.id));
        Ok(timers)
    }

    /// Gives a claimed timer back after its handler failed: pending again at
    /// `retry_at`, or `failed` for good when `retry_at` is `None`.
    pub async fn release_failed_timer(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(2000).collect();
        let query = match retry_at {
            Some(at) => sqlx::query(
                "UPDATE timers SET status = 'pending', due_at = $1, last_error = $2, claimed_by = NULL, lease_until = NULL \
                 WHERE id = $3 AND status = 'running' AND claimed_by = $4",
            )
            .bind(millis(at)),
            None => sqlx::query(
                "UPDATE timers SET status = 'failed', finished_at = $1, last_error = $2, lease_until = NULL \
                 WHERE id = $3 AND status = 'running' AND claimed_by = $4",
            )
            .bind(millis(now)),
        };
        query
            .bind(error)
            .bind(id)
            .bind(worker)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The earliest moment a row of `queue` becomes claimable: the earliest
    /// pending due time or expiring lease among the heads of their lanes.
    pub async fn next_timer_due(&self, queue: Queue) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN t.status = 'pending' THEN t.due_at ELSE t.lease_until END) FROM timers t \
             WHERE t.queue = $1 AND t.status IN ('pending', 'running') \
               AND (t.lane IS NULL OR NOT EXISTS ( \
                 SELECT 1 FROM timers p WHERE p.lane = t.lane AND p.id < t.id AND p.status IN ('pending', 'running')))",
        )
        .bind(queue.as_str())
        .fetch_one(self.pool())
        .await?;
        Ok(next.map(from_millis))
    }

    /// Rows of `queue` due by `now` and not yet run, and the oldest due time among them.
    pub async fn timer_backlog(
        &self,
        queue: Queue,
        now: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(due_at) AS oldest FROM timers \
             WHERE queue = $1 AND status = 'pending' AND due_at <= $2",
        )
        .bind(queue.as_str())
        .bind(millis(now))
        .fetch_one(self.pool())
        .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok((row.try_get("n")?, oldest.map(from_millis)))
    }

    /// The state of a timer by key, for reports and tests.
    pub async fn timer_state(&self, key: &str) -> Result<Option<TimerState>, StoreError> {
        let row = sqlx::query(
            "SELECT status, attempts, finished_at, last_error FROM timers WHERE idem_key = $1",
        )
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let finished: Option<i64> = row.try_get("finished_at")?;
            Ok(TimerState {
                status: row.try_get("status")?,
                attempts: row.try_get("attempts")?,
                finished_at: finished.map(from_millis),
                last_error: row.try_get("last_error")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }
}

/// A recurring schedule as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRow {
    /// Unique name, e.g. `handoff:ops-duty`.
    pub name: String,
    /// The cron expression as configured.
    pub cron: String,
    /// IANA time zone it is evaluated in.
    pub timezone: String,
    /// The handler each occurrence runs.
    pub kind: String,
    /// The handler's input (JSON).
    pub payload: String,
    /// The next occurrence.
    pub next_due_at: DateTime<Utc>,
}

fn schedule_from_row(row: &sqlx::any::AnyRow) -> Result<ScheduleRow, sqlx::Error> {
    Ok(ScheduleRow {
        name: row.try_get("name")?,
        cron: row.try_get("cron")?,
        timezone: row.try_get("timezone")?,
        kind: row.try_get("kind")?,
        payload: row.try_get("payload")?,
        next_due_at: from_millis(row.try_get("next_due_at")?),
    })
}

impl Store {
    /// Every stored schedule.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, cron, timezone, kind, payload, next_due_at FROM schedules ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(schedule_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Schedules whose next occurrence is due by `now`.
    pub async fn due_schedules(&self, now: DateTime<Utc>) -> Result<Vec<ScheduleRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, cron, timezone, kind, payload, next_due_at FROM schedules \
             WHERE next_due_at <= $1 ORDER BY next_due_at, name",
        )
        .bind(millis(now))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(schedule_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// The earliest next occurrence of any schedule.
    pub async fn next_schedule_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar("SELECT MIN(next_due_at) FROM schedules")
            .fetch_one(self.pool())
            .await?;
        Ok(next.map(from_millis))
    }

    /// Deletes the schedules not in `keep` (removed from the configuration).
    pub async fn delete_schedules_except(&self, keep: &[String]) -> Result<u64, StoreError> {
        let mut removed = 0;
        for row in self.schedules().await? {
            if !keep.contains(&row.name) {
                removed += sqlx::query("DELETE FROM schedules WHERE name = $1")
                    .bind(&row.name)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
            }
        }
        Ok(removed)
    }
}

/// Creates or updates a schedule. `next_due_at` is used only when the schedule
/// is new or its expression, time zone, handler or payload changed; otherwise
/// the stored next occurrence stands (so a restart never skips or repeats one).
pub async fn upsert_schedule(
    conn: &mut AnyConnection,
    row: &ScheduleRow,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let existing = sqlx::query(
        "SELECT name, cron, timezone, kind, payload, next_due_at FROM schedules WHERE name = $1",
    )
    .bind(&row.name)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| schedule_from_row(&r))
    .transpose()?;
    match existing {
        Some(old)
            if old.cron == row.cron
                && old.timezone == row.timezone
                && old.kind == row.kind
                && old.payload == row.payload => {}
        Some(_) => {
            sqlx::query(
                "UPDATE schedules SET cron = $1, timezone = $2, kind = $3, payload = $4, next_due_at = $5, updated_at = $6 \
                 WHERE name = $7",
            )
            .bind(&row.cron)
            .bind(&row.timezone)
            .bind(&row.kind)
            .bind(&row.payload)
            .bind(millis(row.next_due_at))
            .bind(millis(now))
            .bind(&row.name)
            .execute(conn)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO schedules (name, cron, timezone, kind, payload, next_due_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&row.name)
            .bind(&row.cron)
            .bind(&row.timezone)
            .bind(&row.kind)
            .bind(&row.payload)
            .bind(millis(row.next_due_at))
            .bind(millis(now))
            .execute(conn)
            .await?;
        }
    }
    Ok(())
}

/// Moves a schedule from the occurrence `seen` to `next`, if no other replica
/// did first; returns whether this caller owns occurrence `seen`.
pub async fn advance_schedule(
    conn: &mut AnyConnection,
    name: &str,
    seen: DateTime<Utc>,
    next: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "UPDATE schedules SET next_due_at = $1, updated_at = $2 WHERE name = $3 AND next_due_at = $4",
    )
    .bind(millis(next))
    .bind(millis(now))
    .bind(name)
    .bind(millis(seen))
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

impl Store {
    /// Puts back the timers `worker` holds — in `queue`, or in every queue.
    /// One queue after one of its steps failed (the database went away
    /// mid-step), so they need not wait for the lease; every queue when a
    /// previous run of this replica died, or it is stopping. Their handlers
    /// never committed, so running them again is running them once.
    pub async fn recover_timer_claims(
        &self,
        worker: &str,
        queue: Option<Queue>,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE timers SET status = 'pending', claimed_by = NULL, lease_until = NULL \
             WHERE status = 'running' AND claimed_by = $1 AND queue = COALESCE($2, queue)",
        )
        .bind(worker)
        .bind(queue.map(|q| q.as_str()))
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected())
    }
}

/// Deletes finished rows older than `before` (done, cancelled or failed).
pub async fn purge_finished(
    conn: &mut AnyConnection,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let result = sqlx::query(
        "DELETE FROM timers WHERE status IN ('done', 'cancelled', 'failed') AND finished_at < $1",
    )
    .bind(millis(before))
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// One row of a group's history, for reports and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimerRecord {
    /// Its key.
    pub key: String,
    /// When it was due.
    pub due_at: DateTime<Utc>,
    /// Where it stands.
    pub status: String,
    /// When it finished, if it did.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Every timer of a group, in due order.
    pub async fn timers_in_group(&self, group: &str) -> Result<Vec<TimerRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT idem_key, due_at, status, finished_at FROM timers WHERE grp = $1 ORDER BY due_at, id",
        )
        .bind(group)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let finished: Option<i64> = row.try_get("finished_at")?;
                Ok(TimerRecord {
                    key: row.try_get("idem_key")?,
                    due_at: from_millis(row.try_get("due_at")?),
                    status: row.try_get("status")?,
                    finished_at: finished.map(from_millis),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
