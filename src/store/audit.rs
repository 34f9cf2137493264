//! The audit log's table: who did what, where, when, and whether it was allowed.

use super::{Store, StoreError, millis};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

/// The result of an audited action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused by authorisation.
    Denied,
    /// Refused as malformed (bad arguments, unknown verb).
    Rejected,
    /// Failed on our side.
    Failed,
}

impl Outcome {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
        }
    }
}

/// One audited action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Slack user id.
    pub actor_user: String,
    /// Their workspace, when known.
    pub actor_team: Option<String>,
    /// Their roles at the time ("support, oncall").
    pub roles: String,
    /// The customer concerned, if any.
    pub tenant: Option<String>,
    /// The channel, if any.
    pub channel: Option<String>,
    /// What was attempted, e.g. `command:help`.
    pub action: String,
    /// Arguments or ids.
    pub detail: String,
    /// What happened.
    pub outcome: String,
    /// Why, for denials and failures.
    pub reason: Option<String>,
}

/// Appends one entry inside the caller's transaction, so a decision and its
/// audit entry commit together (a playbook run's every step).
pub async fn append(conn: &mut sqlx::AnyConnection, e: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_user, actor_team, roles, tenant, channel, action, detail, outcome, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(millis(e.at))
    .bind(&e.actor_user)
    .bind(&e.actor_team)
    .bind(&e.roles)
    .bind(&e.tenant)
    .bind(&e.channel)
    .bind(&e.action)
    .bind(&e.detail)
    .bind(&e.outcome)
    .bind(&e.reason)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Appends entries in one transaction.
    pub async fn append_audit(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for e in entries {
            append(&mut tx, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The most recent entries, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor_user, actor_team, roles, tenant, channel, action, detail, outcome, reason \
             FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: Utc
                        .timestamp_millis_opt(row.try_get::<i64, _>(0)?)
                        .single()
                        .unwrap_or_default(),
                    actor_user: row.try_get(1)?,
                    actor_team: row.try_get(2)?,
                    roles: row.try_get(3)?,
                    tenant: row.try_get(4)?,
                    channel: row.try_get(5)?,
                    action: row.try_get(6)?,
                    detail: row.try_get(7)?,
                    outcome: row.try_get(8)?,
                    reason: row.try_get(9)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
