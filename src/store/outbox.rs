//! The `outbox` table: effects on the outside world (Slack posts, forge calls),
//! written in the transaction of the decision that caused them and delivered by
//! a worker, in order per lane, each exactly once.
//!
//! An item is claimed with a lease (`sending`). If its worker dies, the lease
//! expires and the next claim marks it `in_doubt`: the sink must then find out
//! whether the effect already happened before doing it again.

use super::{Backend, Store, StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{AnyConnection, Row};

/// An effect to record.
#[derive(Clone, Debug)]
pub struct NewEffect {
    /// Unique: recording the same key twice is a no-op (idempotency).
    pub key: String,
    /// Items of one lane are delivered one at a time, in order (a channel).
    pub lane: String,
    /// Which sink delivers it, e.g. `slack`.
    pub sink: String,
    /// The effect, as the sink reads it.
    pub payload: Value,
    /// A timer to run once the effect has ended, delivered or not.
    pub follow_up: Option<FollowUp>,
}

/// A timer armed when an effect ends, in the transaction that records the end.
/// Its payload is `payload` (an object) plus `effect` (the effect's key),
/// `outcome` (`delivered`, `failed` or `abandoned`), `result` and `error`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FollowUp {
    /// The timer kind, e.g. `postmortem.opened`.
    pub kind: String,
    /// What the handler needs besides the outcome.
    pub payload: Value,
}

/// A claimed item.
#[derive(Clone, Debug)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// Its key.
    pub key: String,
    /// Its lane.
    pub lane: String,
    /// Its sink.
    pub sink: String,
    /// The effect.
    pub payload: Value,
    /// Deliveries tried so far, this one included.
    pub attempts: i64,
    /// An earlier attempt may have reached the other side.
    pub in_doubt: bool,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Where an item stands.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxState {
    /// `pending`, `sending`, `delivered`, `failed` or `abandoned`.
    pub status: String,
    /// Delivery attempts.
    pub attempts: i64,
    /// What the sink reported (e.g. the message's channel and ts).
    pub result: Option<Value>,
    /// The last error.
    pub last_error: Option<String>,
}

/// Records an effect; returns false when one with the same key exists.
pub async fn enqueue(
    conn: &mut AnyConnection,
    effect: &NewEffect,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO outbox (idem_key, lane, sink, payload, follow_up, status, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) ON CONFLICT (idem_key) DO NOTHING",
    )
    .bind(&effect.key)
    .bind(&effect.lane)
    .bind(&effect.sink)
    .bind(effect.payload.to_string())
    .bind(
        effect
            .follow_up
            .as_ref()
            .and_then(|f| serde_json::to_string(f).ok()),
    )
    .bind(millis(now))
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

fn item_from_row(row: &sqlx::any::AnyRow) -> Result<OutboxItem, sqlx::Error> {
    let payload: String = row.try_get("payload")?;
    let in_doubt: i64 = row.try_get("in_doubt")?;
    Ok(OutboxItem {
        id: row.try_get("id")?,
        key: row.try_get("idem_key")?,
        lane: row.try_get("lane")?,
        sink: row.try_get("sink")?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
        attempts: row.try_get("attempts")?,
        in_doubt: in_doubt != 0,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

impl Store {
    /// Claims up to `limit` items for `worker`: the first waiting item of each
    /// lane whose attempt is due, or whose previous claim's lease expired (then
    /// it is in doubt).
    pub async fn claim_outbox(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        // A read first: an idle poll must not take SQLite's write lock.
        if self.next_outbox_due().await?.is_none_or(|at| at > now) {
            return Ok(Vec::new());
        }
        // `p.status IN ('pending', 'sending')` is written exactly as the
        // partial index `outbox_open_lane` (migration 0011) is, so SQLite
        // uses it to find each lane's head.
        let sql = format!(
            "UPDATE outbox SET \
               in_doubt = CASE WHEN status = 'sending' THEN 1 ELSE in_doubt END, \
               status = 'sending', claimed_by = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN ( \
               SELECT o.id FROM outbox o \
               WHERE ((o.status = 'pending' AND o.next_attempt_at <= $3) OR (o.status = 'sending' AND o.lease_until < $3)) \
                 AND NOT EXISTS ( \
                   SELECT 1 FROM outbox p WHERE p.lane = o.lane AND p.id < o.id AND p.status IN ('pending', 'sending')) \
               ORDER BY o.id LIMIT $4 {}) \
             RETURNING id, idem_key, lane, sink, payload, attempts, in_doubt, created_at",
            self.backend().skip_locked()
        );
        let rows = sqlx::query(&sql)
            .bind(worker)
            .bind(millis(lease_until))
            .bind(millis(now))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut items = rows
            .iter()
            .map(item_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    /// Records a delivery (and arms its follow-up); false when the claim was
    /// no longer ours.
    pub async fn record_delivered(
        &self,
        id: i64,
        worker: &str,
        result: &Value,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let ended = sqlx::query(
            "UPDATE outbox SET status = 'delivered', result = $1, delivered_at = $2, lease_until = NULL, in_doubt = 0 \
             WHERE id = $3 AND status = 'sending' AND claimed_by = $4 \
             RETURNING idem_key, follow_up",
        )
        .bind(result.to_string())
        .bind(millis(now))
        .bind(id)
        .bind(worker)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = ended else {
            return Ok(false);
        };
        arm_follow_up(&mut tx, &row, "delivered", Some(result), None, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives an item back for a later attempt at `at`. `attempted` says whether
    /// this claim reached the other side (a rate-limit wait did not: it does not
    /// count as an attempt); `in_doubt` whether it may have taken effect.
    #[allow(clippy::too_many_arguments)]
    pub async fn defer_outbox(
        &self,
        id: i64,
        worker: &str,
        at: DateTime<Utc>,
        attempted: bool,
        in_doubt: bool,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = $1, claimed_by = NULL, lease_until = NULL, \
               attempts = attempts - $2, in_doubt = $3, last_error = COALESCE($4, last_error) \
             WHERE id = $5 AND status = 'sending' AND claimed_by = $6",
        )
        .bind(millis(at))
        .bind(if attempted { 0_i64 } else { 1_i64 })
        .bind(i64::from(in_doubt))
        .bind(error.map(|e| e.chars().take(2000).collect::<String>()))
        .bind(id)
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends an item without delivery: `failed` (permanent error) or `abandoned`
    /// (in doubt and not safely repeatable); arms its follow-up.
    pub async fn end_outbox(
        &self,
        id: i64,
        worker: &str,
        status: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(2000).collect();
        let mut tx = self.begin().await?;
        let ended = sqlx::query(
            "UPDATE outbox SET status = $1, last_error = $2, delivered_at = $3, lease_until = NULL \
             WHERE id = $4 AND status = 'sending' AND claimed_by = $5 \
             RETURNING idem_key, follow_up",
        )
        .bind(status)
        .bind(&error)
        .bind(millis(now))
        .bind(id)
        .bind(worker)
        .fetch_optional(tx.conn())
        .await?;
        if let Some(row) = ended {
            arm_follow_up(&mut tx, &row, status, None, Some(&error), now).await?;
        }
        tx.commit().await
    }

    /// Where an item stands, by key.
    pub async fn outbox_state(&self, key: &str) -> Result<Option<OutboxState>, StoreError> {
        let row = sqlx::query(
            "SELECT status, attempts, result, last_error FROM outbox WHERE idem_key = $1",
        )
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let result: Option<String> = row.try_get("result")?;
            Ok(OutboxState {
                status: row.try_get("status")?,
                attempts: row.try_get("attempts")?,
                result: result.and_then(|r| serde_json::from_str(&r).ok()),
                last_error: row.try_get("last_error")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// Where a message whose outbox row housekeeping deleted was posted
    /// (its channel and ts), if it was delivered.
    pub async fn posted_message(&self, key: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT channel, ts FROM posted_messages WHERE idem_key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.map(|row| Ok((row.try_get("channel")?, row.try_get("ts")?)))
            .transpose()
            .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    /// The earliest moment an item at the head of its lane becomes claimable.
    pub async fn next_outbox_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN o.status = 'pending' THEN o.next_attempt_at ELSE o.lease_until END) FROM outbox o \
             WHERE o.status IN ('pending', 'sending') \
               AND NOT EXISTS ( \
                 SELECT 1 FROM outbox p WHERE p.lane = o.lane AND p.id < o.id AND p.status IN ('pending', 'sending'))",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(next.map(from_millis))
    }

    /// Items waiting for delivery, and when the oldest was recorded.
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(self.pool())
        .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok((row.try_get("n")?, oldest.map(from_millis)))
    }
}

impl Store {
    /// Puts back, in doubt, the items `worker` had claimed: called when a
    /// replica starts under the identity of one that died, so nobody else can
    /// be delivering them.
    pub async fn recover_outbox_claims(&self, worker: &str) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE outbox SET status = 'pending', in_doubt = 1, claimed_by = NULL, lease_until = NULL \
             WHERE status = 'sending' AND claimed_by = $1",
        )
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected())
    }
}

/// Arms the follow-up timer of an ended item, if it has one.
async fn arm_follow_up(
    tx: &mut super::Tx,
    row: &sqlx::any::AnyRow,
    outcome: &str,
    result: Option<&Value>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let key: String = row.try_get("idem_key")?;
    let follow_up: Option<String> = row.try_get("follow_up")?;
    let Some(follow_up) = follow_up.and_then(|f| serde_json::from_str::<FollowUp>(&f).ok()) else {
        return Ok(());
    };
    let mut payload = match follow_up.payload {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    payload.insert("effect".into(), Value::String(key.clone()));
    payload.insert("outcome".into(), Value::String(outcome.to_string()));
    payload.insert("result".into(), result.cloned().unwrap_or(Value::Null));
    payload.insert(
        "error".into(),
        error.map_or(Value::Null, |e| Value::String(e.to_string())),
    );
    let timer = super::timers::NewTimer {
        queue: super::timers::Queue::Timers,
        kind: follow_up.kind,
        key: format!("{key}:then"),
        group: None,
        lane: None,
        payload: Value::Object(payload),
        due_at: now,
    };
    super::timers::insert_timer(tx.conn(), &timer, now).await?;
    tx.wake_after_commit(super::Wake::Timers);
    Ok(())
}

/// Withdraws the effects whose key starts with `prefix` that have not been
/// sent (pages an acknowledgement made moot); they end as `abandoned` without
/// follow-ups. Returns how many.
pub async fn withdraw_pending(
    conn: &mut AnyConnection,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let result = sqlx::query(
        "UPDATE outbox SET status = 'abandoned', last_error = 'withdrawn before delivery', \
           delivered_at = $1, lease_until = NULL \
         WHERE idem_key LIKE $2 ESCAPE '\\' AND status = 'pending'",
    )
    .bind(millis(now))
    .bind(pattern)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// How long the channel and ts of a delivered message are remembered after
/// its outbox row is deleted: a card may be edited, or replied under, long
/// after the retention period (a pull request open for weeks).
pub const POSTED_MEMORY_DAYS: i64 = 400;

/// Deletes ended items older than `before`, first remembering where each
/// delivered message went (`posted_messages`); forgets those remembered for
/// [`POSTED_MEMORY_DAYS`].
pub async fn purge(tx: &mut Tx, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let (channel, ts) = match tx.backend() {
        Backend::Sqlite => (
            "json_extract(result, '$.channel')",
            "json_extract(result, '$.ts')",
        ),
        Backend::Postgres => ("(result::jsonb ->> 'channel')", "(result::jsonb ->> 'ts')"),
    };
    sqlx::query(&format!(
        "INSERT INTO posted_messages (idem_key, channel, ts, posted_at) \
         SELECT idem_key, {channel}, {ts}, delivered_at FROM outbox \
         WHERE status = 'delivered' AND delivered_at < $1 AND result IS NOT NULL \
           AND {channel} IS NOT NULL AND {ts} IS NOT NULL \
         ON CONFLICT (idem_key) DO NOTHING"
    ))
    .bind(millis(before))
    .execute(tx.conn())
    .await?;
    let result = sqlx::query(
        "DELETE FROM outbox WHERE status IN ('delivered', 'failed', 'abandoned') AND delivered_at < $1",
    )
    .bind(millis(before))
    .execute(tx.conn())
    .await?;
    sqlx::query("DELETE FROM posted_messages WHERE posted_at < $1")
        .bind(millis(before - chrono::Duration::days(POSTED_MEMORY_DAYS)))
        .execute(tx.conn())
        .await?;
    Ok(result.rows_affected())
}
