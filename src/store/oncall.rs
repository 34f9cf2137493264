//! The on-call job's tables: overrides, swaps awaiting confirmation, and what
//! each person was last told about their upcoming shifts.

use super::{StoreError, from_millis, millis};
use crate::ids::UserId;
use crate::oncall::roster::Override;
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

/// An override as recorded, with who made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverrideRow {
    /// The override itself.
    pub window: Override,
    /// Its rotation.
    pub rotation: String,
    /// Who made it.
    pub created_by: UserId,
    /// The swap it is half of, if any.
    pub swap_id: Option<i64>,
}

/// An override to record.
#[derive(Clone, Debug)]
pub struct NewOverride {
    /// The rotation.
    pub rotation: String,
    /// Who covers.
    pub user: UserId,
    /// From.
    pub start: DateTime<Utc>,
    /// Until.
    pub end: DateTime<Utc>,
    /// Who made it.
    pub created_by: UserId,
    /// The swap it is half of.
    pub swap_id: Option<i64>,
}

const OVERRIDE_COLUMNS: &str = "id, rotation, user_id, starts_at, ends_at, created_by, swap_id";

fn override_row(row: &sqlx::any::AnyRow) -> Result<OverrideRow, sqlx::Error> {
    let user: String = row.try_get("user_id")?;
    let created_by: String = row.try_get("created_by")?;
    Ok(OverrideRow {
        window: Override {
            id: row.try_get("id")?,
            user: UserId::new(user),
            start: from_millis(row.try_get("starts_at")?),
            end: from_millis(row.try_get("ends_at")?),
        },
        rotation: row.try_get("rotation")?,
        created_by: UserId::new(created_by),
        swap_id: row.try_get("swap_id")?,
    })
}

/// Records an override; returns its id.
pub async fn insert_override(
    conn: &mut AnyConnection,
    new: &NewOverride,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO oncall_overrides (rotation, user_id, starts_at, ends_at, created_by, created_at, swap_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&new.rotation)
    .bind(new.user.as_str())
    .bind(millis(new.start))
    .bind(millis(new.end))
    .bind(new.created_by.as_str())
    .bind(millis(now))
    .bind(new.swap_id)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The overrides of `rotation` in force at some time after `from`, oldest first.
pub async fn overrides(
    conn: &mut AnyConnection,
    rotation: &str,
    from: DateTime<Utc>,
) -> Result<Vec<OverrideRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {OVERRIDE_COLUMNS} FROM oncall_overrides \
         WHERE rotation = $1 AND ends_at > $2 AND cancelled_at IS NULL ORDER BY id"
    ))
    .bind(rotation)
    .bind(millis(from))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(override_row)
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)
}

/// One override by id, unless cancelled.
pub async fn get_override(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<OverrideRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {OVERRIDE_COLUMNS} FROM oncall_overrides WHERE id = $1 AND cancelled_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref()
        .map(override_row)
        .transpose()
        .map_err(StoreError::from)
}

/// Cancels an override; false when it was already cancelled.
pub async fn cancel_override(
    conn: &mut AnyConnection,
    id: i64,
    by: &UserId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE oncall_overrides SET cancelled_at = $1, cancelled_by = $2 WHERE id = $3 AND cancelled_at IS NULL",
    )
    .bind(millis(now))
    .bind(by.as_str())
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Where a swap stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapStatus {
    /// Waiting for one or both to confirm.
    Pending,
    /// Both confirmed; its overrides exist.
    Done,
    /// One of them declined.
    Declined,
    /// A shift started (or changed) before both confirmed.
    Expired,
}

impl SwapStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Declined => "declined",
            Self::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "done" => Self::Done,
            "declined" => Self::Declined,
            "expired" => Self::Expired,
            _ => Self::Pending,
        }
    }
}

/// One side of a swap: a person and the shift they give away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapSide {
    /// Whose shift it is.
    pub user: UserId,
    /// Its start.
    pub start: DateTime<Utc>,
    /// Its end.
    pub end: DateTime<Utc>,
    /// When they confirmed.
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// A swap of two shifts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Swap {
    /// Its number (buttons carry it).
    pub id: i64,
    /// The rotation.
    pub rotation: String,
    /// Who asked for it.
    pub proposed_by: UserId,
    /// The first person and shift.
    pub first: SwapSide,
    /// The second person and shift.
    pub second: SwapSide,
    /// Where it stands.
    pub status: SwapStatus,
}

const SWAP_COLUMNS: &str = "id, rotation, proposed_by, first_user, first_starts_at, first_ends_at, \
     first_confirmed_at, second_user, second_starts_at, second_ends_at, second_confirmed_at, status";

fn swap_row(row: &sqlx::any::AnyRow) -> Result<Swap, sqlx::Error> {
    let side = |prefix: &str| -> Result<SwapSide, sqlx::Error> {
        let user: String = row.try_get(format!("{prefix}_user").as_str())?;
        let confirmed: Option<i64> = row.try_get(format!("{prefix}_confirmed_at").as_str())?;
        Ok(SwapSide {
            user: UserId::new(user),
            start: from_millis(row.try_get(format!("{prefix}_starts_at").as_str())?),
            end: from_millis(row.try_get(format!("{prefix}_ends_at").as_str())?),
            confirmed_at: confirmed.map(from_millis),
        })
    };
    let proposed: String = row.try_get("proposed_by")?;
    let status: String = row.try_get("status")?;
    Ok(Swap {
        id: row.try_get("id")?,
        rotation: row.try_get("rotation")?,
        proposed_by: UserId::new(proposed),
        first: side("first")?,
        second: side("second")?,
        status: SwapStatus::parse(&status),
    })
}

/// Records a pending swap; returns it with its id.
pub async fn insert_swap(
    conn: &mut AnyConnection,
    rotation: &str,
    proposed_by: &UserId,
    first: &SwapSide,
    second: &SwapSide,
    now: DateTime<Utc>,
) -> Result<Swap, StoreError> {
    let confirmed = |side: &SwapSide| side.confirmed_at.map(millis);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO oncall_swaps (rotation, proposed_by, first_user, first_starts_at, first_ends_at, \
           first_confirmed_at, second_user, second_starts_at, second_ends_at, second_confirmed_at, \
           status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $11) RETURNING id",
    )
    .bind(rotation)
    .bind(proposed_by.as_str())
    .bind(first.user.as_str())
    .bind(millis(first.start))
    .bind(millis(first.end))
    .bind(confirmed(first))
    .bind(second.user.as_str())
    .bind(millis(second.start))
    .bind(millis(second.end))
    .bind(confirmed(second))
    .bind(millis(now))
    .fetch_one(conn)
    .await?;
    Ok(Swap {
        id,
        rotation: rotation.to_string(),
        proposed_by: proposed_by.clone(),
        first: first.clone(),
        second: second.clone(),
        status: SwapStatus::Pending,
    })
}

/// One swap by id, locked for this transaction on PostgreSQL (two clicks at
/// once are decided one after the other).
pub async fn get_swap(
    conn: &mut AnyConnection,
    id: i64,
    backend: super::Backend,
) -> Result<Option<Swap>, StoreError> {
    let lock = match backend {
        super::Backend::Postgres => " FOR UPDATE",
        super::Backend::Sqlite => "",
    };
    let row = sqlx::query(&format!(
        "SELECT {SWAP_COLUMNS} FROM oncall_swaps WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref()
        .map(swap_row)
        .transpose()
        .map_err(StoreError::from)
}

/// Records `user`'s confirmation of a pending swap (on the side that is theirs).
pub async fn confirm_swap(
    conn: &mut AnyConnection,
    id: i64,
    first: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let column = if first {
        "first_confirmed_at"
    } else {
        "second_confirmed_at"
    };
    sqlx::query(&format!(
        "UPDATE oncall_swaps SET {column} = $1, updated_at = $1 WHERE id = $2 AND status = 'pending'"
    ))
    .bind(millis(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a pending swap to `status`; false when it was no longer pending.
pub async fn finish_swap(
    conn: &mut AnyConnection,
    id: i64,
    status: SwapStatus,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE oncall_swaps SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'pending'",
    )
    .bind(status.as_str())
    .bind(millis(now))
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// What one person was last told about their shifts of a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Told {
    /// The person.
    pub user: UserId,
    /// Their shifts as told, `[start, end)`.
    pub shifts: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// How far ahead the telling looked.
    pub horizon_end: DateTime<Utc>,
}

/// Everything told about `rotation`'s shifts.
pub async fn told(conn: &mut AnyConnection, rotation: &str) -> Result<Vec<Told>, StoreError> {
    let rows = sqlx::query(
        "SELECT user_id, shifts, horizon_end FROM oncall_told WHERE rotation = $1 ORDER BY user_id",
    )
    .bind(rotation)
    .fetch_all(conn)
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let user: String = row.try_get("user_id")?;
        let text: String = row.try_get("shifts")?;
        let pairs: Vec<(i64, i64)> = serde_json::from_str(&text).unwrap_or_default();
        out.push(Told {
            user: UserId::new(user),
            shifts: pairs
                .into_iter()
                .map(|(s, e)| (from_millis(s), from_millis(e)))
                .collect(),
            horizon_end: from_millis(row.try_get("horizon_end")?),
        });
    }
    Ok(out)
}

/// Records what `told.user` has now been told.
pub async fn set_told(
    conn: &mut AnyConnection,
    rotation: &str,
    told: &Told,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let pairs: Vec<(i64, i64)> = told
        .shifts
        .iter()
        .map(|(s, e)| (millis(*s), millis(*e)))
        .collect();
    let text = serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO oncall_told (rotation, user_id, shifts, horizon_end, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (rotation, user_id) DO UPDATE SET shifts = $3, horizon_end = $4, updated_at = $5",
    )
    .bind(rotation)
    .bind(told.user.as_str())
    .bind(text)
    .bind(millis(told.horizon_end))
    .bind(millis(now))
    .execute(conn)
    .await?;
    Ok(())
}
