//! The support job's tables: `requests` (and the top-level messages that
//! joined one), `escalations` (with the policy snapshot they run on) and
//! `incidents` (with their alerts). Every state change is a compare-and-set,
//! so two replicas — or a click and a timer — change a row once.

use super::{StoreError, from_millis, millis};
use crate::ids::{ChannelId, MessageTs, TenantId, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Any, AnyConnection, Executor, Row};

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    /// Waiting for us.
    Open,
    /// Resolved by staff.
    Resolved,
    /// Its message was deleted before anyone answered.
    Withdrawn,
}

impl RequestStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::Withdrawn => "withdrawn",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "resolved" => Self::Resolved,
            "withdrawn" => Self::Withdrawn,
            _ => Self::Open,
        }
    }
}

/// A request to record.
#[derive(Clone, Debug)]
pub struct NewRequest {
    /// The customer.
    pub tenant: TenantId,
    /// Their channel.
    pub channel: ChannelId,
    /// The message that opened it (the thread).
    pub thread_ts: MessageTs,
    /// Who wrote it.
    pub opened_by: UserId,
    /// What they wrote (plain text, shortened).
    pub text: String,
    /// When the first answer is due, when the customer has an SLA.
    pub first_response_due: Option<DateTime<Utc>>,
    /// When the resolution is due.
    pub resolution_due: Option<DateTime<Utc>>,
}

/// A recorded request.
#[derive(Clone, Debug, Serialize)]
pub struct Request {
    /// Its number, shown as `#12`.
    pub id: i64,
    /// The customer.
    pub tenant: TenantId,
    /// Their channel.
    pub channel: ChannelId,
    /// The thread.
    pub thread_ts: MessageTs,
    /// Who opened it.
    pub opened_by: UserId,
    /// When.
    pub opened_at: DateTime<Utc>,
    /// What they wrote.
    pub text: String,
    /// Where it stands.
    pub status: RequestStatus,
    /// Pages the on-call rotation at any hour.
    pub urgent: bool,
    /// Who claimed it (👀).
    pub claimed_by: Option<UserId>,
    /// The first staff answer.
    pub first_response_at: Option<DateTime<Utc>>,
    /// Who gave it.
    pub first_response_by: Option<UserId>,
    /// When it is due.
    pub first_response_due: Option<DateTime<Utc>>,
    /// When the resolution is due.
    pub resolution_due: Option<DateTime<Utc>>,
    /// When an SLA target was first missed.
    pub breached_at: Option<DateTime<Utc>>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// By whom.
    pub resolved_by: Option<UserId>,
    /// The customer's last message in it.
    pub last_customer_at: DateTime<Utc>,
    /// Its card in the support channel, once Slack has posted it.
    pub card_ts: Option<MessageTs>,
}

impl Request {
    /// True when a target is missed or past due at `now`.
    pub fn breaching(&self, now: DateTime<Utc>) -> bool {
        self.status == RequestStatus::Open
            && (self.breached_at.is_some()
                || (self.first_response_at.is_none()
                    && self.first_response_due.is_some_and(|due| due <= now))
                || self.resolution_due.is_some_and(|due| due <= now))
    }
}

const REQUEST_COLUMNS: &str = "id, tenant, channel, thread_ts, opened_by, opened_at, text, status, urgent, \
     claimed_by, first_response_at, first_response_by, first_response_due, resolution_due, \
     breached_at, resolved_at, resolved_by, last_customer_at, card_ts";

fn time(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(from_millis))
}

fn user(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<UserId>, sqlx::Error> {
    Ok(row.try_get::<Option<String>, _>(column)?.map(UserId::new))
}

fn request_from_row(row: &sqlx::any::AnyRow) -> Result<Request, sqlx::Error> {
    Ok(Request {
        id: row.try_get("id")?,
        tenant: TenantId::new(row.try_get::<String, _>("tenant")?),
        channel: ChannelId::new(row.try_get::<String, _>("channel")?),
        thread_ts: MessageTs::new(row.try_get::<String, _>("thread_ts")?),
        opened_by: UserId::new(row.try_get::<String, _>("opened_by")?),
        opened_at: from_millis(row.try_get("opened_at")?),
        text: row.try_get("text")?,
        status: RequestStatus::parse(&row.try_get::<String, _>("status")?),
        urgent: row.try_get::<i64, _>("urgent")? != 0,
        claimed_by: user(row, "claimed_by")?,
        first_response_at: time(row, "first_response_at")?,
        first_response_by: user(row, "first_response_by")?,
        first_response_due: time(row, "first_response_due")?,
        resolution_due: time(row, "resolution_due")?,
        breached_at: time(row, "breached_at")?,
        resolved_at: time(row, "resolved_at")?,
        resolved_by: user(row, "resolved_by")?,
        last_customer_at: from_millis(row.try_get("last_customer_at")?),
        card_ts: row
            .try_get::<Option<String>, _>("card_ts")?
            .map(MessageTs::new),
    })
}

/// Records where the request's card was posted (the first answer wins).
pub async fn set_card_ts(
    conn: &mut AnyConnection,
    id: i64,
    ts: &MessageTs,
) -> Result<bool, StoreError> {
    let result = sqlx::query("UPDATE requests SET card_ts = $1 WHERE id = $2 AND card_ts IS NULL")
        .bind(ts.as_str())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Records a request for a thread; `None` when the thread already has one.
pub async fn insert_request(
    conn: &mut AnyConnection,
    new: &NewRequest,
    now: DateTime<Utc>,
) -> Result<Option<Request>, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO requests (tenant, channel, thread_ts, opened_by, opened_at, text, status, \
           first_response_due, resolution_due, last_customer_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $5, $5) ON CONFLICT DO NOTHING",
    )
    .bind(new.tenant.as_str())
    .bind(new.channel.as_str())
    .bind(new.thread_ts.as_str())
    .bind(new.opened_by.as_str())
    .bind(millis(now))
    .bind(&new.text)
    .bind(new.first_response_due.map(millis))
    .bind(new.resolution_due.map(millis))
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(None);
    }
    request_by_thread(&mut *conn, &new.channel, &new.thread_ts).await
}

/// One request by number.
pub async fn request<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<Request>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(request_from_row).transpose()?)
}

/// The request a thread (or a message that joined one) belongs to.
pub async fn request_by_thread(
    conn: &mut AnyConnection,
    channel: &ChannelId,
    ts: &MessageTs,
) -> Result<Option<Request>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REQUEST_COLUMNS} FROM requests WHERE channel = $1 AND (thread_ts = $2 OR id = \
           (SELECT request_id FROM request_messages WHERE channel = $1 AND ts = $2))"
    ))
    .bind(channel.as_str())
    .bind(ts.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(request_from_row).transpose()?)
}

/// The newest open request `user` opened in `channel` whose last customer
/// message is no older than `since`.
pub async fn joinable_request(
    conn: &mut AnyConnection,
    channel: &ChannelId,
    user: &UserId,
    since: DateTime<Utc>,
) -> Result<Option<Request>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {REQUEST_COLUMNS} FROM requests WHERE channel = $1 AND opened_by = $2 \
           AND status = 'open' AND last_customer_at >= $3 ORDER BY id DESC LIMIT 1"
    ))
    .bind(channel.as_str())
    .bind(user.as_str())
    .bind(millis(since))
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(request_from_row).transpose()?)
}

/// Records that top-level message `ts` joined request `id`.
pub async fn join_message(
    conn: &mut AnyConnection,
    id: i64,
    channel: &ChannelId,
    ts: &MessageTs,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO request_messages (channel, ts, request_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(channel.as_str())
    .bind(ts.as_str())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    touch_customer(conn, id, now).await
}

/// The customer wrote in the request.
pub async fn touch_customer(
    conn: &mut AnyConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET last_customer_at = $1, updated_at = $1 WHERE id = $2")
        .bind(millis(now))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Runs one compare-and-set update of a request (`$1` is the id, `$2` now,
/// then `binds`); true when it changed the row.
async fn update(
    conn: &mut AnyConnection,
    sql: &str,
    id: i64,
    now: DateTime<Utc>,
    binds: &[Option<String>],
) -> Result<bool, StoreError> {
    let sql = format!("UPDATE requests SET updated_at = $2, {sql}");
    let mut query = sqlx::query(&sql).bind(id).bind(millis(now));
    for value in binds {
        query = query.bind(value.clone());
    }
    Ok(query.execute(conn).await?.rows_affected() == 1)
}

/// The first staff answer; false when there was one already.
pub async fn set_first_response(
    conn: &mut AnyConnection,
    id: i64,
    by: &UserId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    update(
        conn,
        "first_response_by = $3, first_response_at = $2 \
         WHERE id = $1 AND first_response_at IS NULL AND status = 'open'",
        id,
        now,
        &[Some(by.to_string())],
    )
    .await
}

/// Claimed by `by`; false when it already was theirs or is not open.
pub async fn claim(
    conn: &mut AnyConnection,
    id: i64,
    by: &UserId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    update(
        conn,
        "claimed_by = $3 WHERE id = $1 AND status = 'open' AND (claimed_by IS NULL OR claimed_by <> $3)",
        id,
        now,
        &[Some(by.to_string())],
    )
    .await
}

/// Resolved by `by`; false when it was not open.
pub async fn resolve(
    conn: &mut AnyConnection,
    id: i64,
    by: &UserId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    update(
        conn,
        "status = 'resolved', resolved_by = $3, resolved_at = $2 WHERE id = $1 AND status = 'open'",
        id,
        now,
        &[Some(by.to_string())],
    )
    .await
}

/// Open again, with a new resolution target; false when it was open.
pub async fn reopen(
    conn: &mut AnyConnection,
    id: i64,
    resolution_due: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE requests SET status = 'open', resolved_by = NULL, resolved_at = NULL, \
           resolution_due = $1, breached_at = NULL, updated_at = $2 WHERE id = $3 AND status <> 'open'",
    )
    .bind(resolution_due.map(millis))
    .bind(millis(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// Withdrawn (its message was deleted); false when it was not open.
pub async fn withdraw(
    conn: &mut AnyConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    update(
        conn,
        "status = 'withdrawn', resolved_at = $2 WHERE id = $1 AND status = 'open'",
        id,
        now,
        &[],
    )
    .await
}

/// Marked urgent; false when it already was or is not open.
pub async fn set_urgent(
    conn: &mut AnyConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    update(
        conn,
        "urgent = 1 WHERE id = $1 AND urgent = 0 AND status = 'open'",
        id,
        now,
        &[],
    )
    .await
}

/// An SLA target was missed; false when one had been before.
pub async fn set_breached(
    conn: &mut AnyConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    update(
        conn,
        "breached_at = $2 WHERE id = $1 AND breached_at IS NULL AND status = 'open'",
        id,
        now,
        &[],
    )
    .await
}

/// The customer edited the opening message.
pub async fn set_text(
    conn: &mut AnyConnection,
    id: i64,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET text = $1, updated_at = $2 WHERE id = $3")
        .bind(text)
        .bind(millis(now))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Requests that are open (optionally one customer's), oldest first.
pub async fn open_requests<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    tenant: Option<&TenantId>,
) -> Result<Vec<Request>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {REQUEST_COLUMNS} FROM requests WHERE status = 'open' \
           AND (CAST($1 AS TEXT) IS NULL OR tenant = $1) ORDER BY opened_at, id"
    ))
    .bind(tenant.map(TenantId::as_str))
    .fetch_all(executor)
    .await?;
    Ok(rows
        .iter()
        .map(request_from_row)
        .collect::<Result<_, _>>()?)
}

/// Where an escalation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EscalationStatus {
    /// Paging, level after level.
    Active,
    /// Someone acknowledged: no more pages.
    Acknowledged,
    /// Its request or incident was resolved.
    Resolved,
    /// Every level of every round was paged and nobody acknowledged.
    Exhausted,
}

impl EscalationStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Exhausted => "exhausted",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "acknowledged" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            "exhausted" => Self::Exhausted,
            _ => Self::Active,
        }
    }
}

/// An escalation to record.
#[derive(Clone, Debug)]
pub struct NewEscalation {
    /// The timeline it writes to (`thread:<channel>:<ts>`, `incident:<id>`).
    pub subject: String,
    /// The request it is for.
    pub request_id: Option<i64>,
    /// The incident it is for.
    pub incident_id: Option<i64>,
    /// The policy's name.
    pub policy: String,
    /// The policy as it was at the start (JSON).
    pub snapshot: String,
    /// Why (a breach, `/wk escalate` with a reason, an alert).
    pub reason: String,
    /// Who started it, when a person did.
    pub started_by: Option<UserId>,
}

/// A recorded escalation.
#[derive(Clone, Debug, Serialize)]
pub struct Escalation {
    /// Its number.
    pub id: i64,
    /// Its timeline subject.
    pub subject: String,
    /// The request it is for.
    pub request_id: Option<i64>,
    /// The incident it is for.
    pub incident_id: Option<i64>,
    /// The policy's name.
    pub policy: String,
    /// The policy as it was at the start (JSON).
    pub snapshot: String,
    /// Why.
    pub reason: String,
    /// Who started it.
    pub started_by: Option<UserId>,
    /// When.
    pub started_at: DateTime<Utc>,
    /// Where it stands.
    pub status: EscalationStatus,
    /// The pass through the levels (0 first).
    pub round: i64,
    /// The level last paged (0 first).
    pub level: i64,
    /// Everyone paged so far (they may acknowledge).
    pub paged: Vec<UserId>,
    /// Who acknowledged.
    pub acked_by: Option<UserId>,
    /// When.
    pub acked_at: Option<DateTime<Utc>>,
}

const ESCALATION_COLUMNS: &str = "id, subject, request_id, incident_id, policy, snapshot, reason, started_by, \
     started_at, status, round, level, paged, acked_by, acked_at";

fn escalation_from_row(row: &sqlx::any::AnyRow) -> Result<Escalation, sqlx::Error> {
    let paged: String = row.try_get("paged")?;
    Ok(Escalation {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        request_id: row.try_get("request_id")?,
        incident_id: row.try_get("incident_id")?,
        policy: row.try_get("policy")?,
        snapshot: row.try_get("snapshot")?,
        reason: row.try_get("reason")?,
        started_by: user(row, "started_by")?,
        started_at: from_millis(row.try_get("started_at")?),
        status: EscalationStatus::parse(&row.try_get::<String, _>("status")?),
        round: row.try_get("round")?,
        level: row.try_get("level")?,
        paged: serde_json::from_str(&paged).unwrap_or_default(),
        acked_by: user(row, "acked_by")?,
        acked_at: time(row, "acked_at")?,
    })
}

/// Records an escalation (active, before its first level is paged).
pub async fn insert_escalation(
    conn: &mut AnyConnection,
    new: &NewEscalation,
    now: DateTime<Utc>,
) -> Result<Escalation, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO escalations (subject, request_id, incident_id, policy, snapshot, reason, \
           started_by, started_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active') RETURNING id",
    )
    .bind(&new.subject)
    .bind(new.request_id)
    .bind(new.incident_id)
    .bind(&new.policy)
    .bind(&new.snapshot)
    .bind(&new.reason)
    .bind(new.started_by.as_ref().map(UserId::as_str))
    .bind(millis(now))
    .fetch_one(&mut *conn)
    .await?;
    escalation(&mut *conn, id)
        .await?
        .ok_or(StoreError::Query(sqlx::Error::RowNotFound))
}

/// One escalation by number.
pub async fn escalation<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<Escalation>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ESCALATION_COLUMNS} FROM escalations WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(escalation_from_row).transpose()?)
}

/// The escalation running for a request or an incident.
pub async fn active_escalation<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    request_id: Option<i64>,
    incident_id: Option<i64>,
) -> Result<Option<Escalation>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ESCALATION_COLUMNS} FROM escalations WHERE status = 'active' \
           AND (request_id = $1 OR incident_id = $2) ORDER BY id DESC LIMIT 1"
    ))
    .bind(request_id)
    .bind(incident_id)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(escalation_from_row).transpose()?)
}

/// Records that level `level` of round `round` was paged, with everyone paged so far.
pub async fn record_paged(
    conn: &mut AnyConnection,
    id: i64,
    round: i64,
    level: i64,
    paged: &[UserId],
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE escalations SET round = $1, level = $2, paged = $3 WHERE id = $4 AND status = 'active'",
    )
    .bind(round)
    .bind(level)
    .bind(serde_json::to_string(paged).unwrap_or_else(|_| "[]".into()))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends an active escalation as `status` (by `by`, when a person ended it);
/// false when it was not active any more.
pub async fn end_escalation(
    conn: &mut AnyConnection,
    id: i64,
    status: EscalationStatus,
    by: Option<&UserId>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let acked = status == EscalationStatus::Acknowledged;
    let changed = sqlx::query(
        "UPDATE escalations SET status = $1, ended_at = $2, \
           acked_by = CASE WHEN $3 = 1 THEN $4 ELSE acked_by END, \
           acked_at = CASE WHEN $3 = 1 THEN $2 ELSE acked_at END \
         WHERE id = $5 AND status = 'active'",
    )
    .bind(status.as_str())
    .bind(millis(now))
    .bind(i64::from(acked))
    .bind(by.map(UserId::as_str))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// A recorded incident.
#[derive(Clone, Debug, Serialize)]
pub struct Incident {
    /// Its number, shown as `INC-3`.
    pub id: i64,
    /// Alertmanager's group it follows.
    pub group_key: String,
    /// `open` or `resolved`.
    pub status: String,
    /// What it is about.
    pub title: String,
    /// The paging severity that opened it.
    pub severity: String,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
}

const INCIDENT_COLUMNS: &str = "id, group_key, status, title, severity, opened_at";

fn incident_from_row(row: &sqlx::any::AnyRow) -> Result<Incident, sqlx::Error> {
    Ok(Incident {
        id: row.try_get("id")?,
        group_key: row.try_get("group_key")?,
        status: row.try_get("status")?,
        title: row.try_get("title")?,
        severity: row.try_get("severity")?,
        opened_at: from_millis(row.try_get("opened_at")?),
    })
}

/// The open incident of an alert group, opened now if there is none; true
/// when it is new.
pub async fn open_incident(
    conn: &mut AnyConnection,
    group_key: &str,
    title: &str,
    severity: &str,
    now: DateTime<Utc>,
) -> Result<(Incident, bool), StoreError> {
    let created = sqlx::query(
        "INSERT INTO incidents (group_key, status, title, severity, opened_at) \
         VALUES ($1, 'open', $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(group_key)
    .bind(title)
    .bind(severity)
    .bind(millis(now))
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    let row = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE group_key = $1 AND status = 'open'"
    ))
    .bind(group_key)
    .fetch_one(&mut *conn)
    .await?;
    Ok((incident_from_row(&row)?, created))
}

/// The open incident an alert (by fingerprint) or its group belongs to.
pub async fn incident_of_alert(
    conn: &mut AnyConnection,
    group_key: &str,
    fingerprint: &str,
) -> Result<Option<Incident>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status = 'open' AND (group_key = $1 OR id IN \
           (SELECT incident_id FROM incident_alerts WHERE fingerprint = $2)) ORDER BY id DESC LIMIT 1"
    ))
    .bind(group_key)
    .bind(fingerprint)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(incident_from_row).transpose()?)
}

/// Records an alert of an incident as firing or resolved; returns whether
/// that changed what was known, and how many of its alerts still fire.
pub async fn record_incident_alert(
    conn: &mut AnyConnection,
    incident: i64,
    fingerprint: &str,
    name: &str,
    firing: bool,
) -> Result<(bool, i64), StoreError> {
    let before: Option<i64> = sqlx::query_scalar(
        "SELECT firing FROM incident_alerts WHERE incident_id = $1 AND fingerprint = $2",
    )
    .bind(incident)
    .bind(fingerprint)
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO incident_alerts (incident_id, fingerprint, name, firing) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (incident_id, fingerprint) DO UPDATE SET firing = $4",
    )
    .bind(incident)
    .bind(fingerprint)
    .bind(name)
    .bind(i64::from(firing))
    .execute(&mut *conn)
    .await?;
    let still: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM incident_alerts WHERE incident_id = $1 AND firing = 1",
    )
    .bind(incident)
    .fetch_one(conn)
    .await?;
    Ok((before != Some(i64::from(firing)), still))
}

/// Resolves an open incident; false when it was not open.
pub async fn resolve_incident(
    conn: &mut AnyConnection,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE incidents SET status = 'resolved', resolved_at = $1 WHERE id = $2 AND status = 'open'",
    )
    .bind(millis(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// One incident by number.
pub async fn incident<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: i64,
) -> Result<Option<Incident>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(incident_from_row).transpose()?)
}

/// Open incidents, oldest first.
pub async fn open_incidents<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Vec<Incident>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status = 'open' ORDER BY opened_at, id"
    ))
    .fetch_all(executor)
    .await?;
    Ok(rows
        .iter()
        .map(incident_from_row)
        .collect::<Result<_, _>>()?)
}
