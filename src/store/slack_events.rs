//! De-duplication of Slack events by `event_id` (Slack redelivers on timeouts).

use super::{Store, StoreError, millis};
use chrono::{DateTime, Utc};

impl Store {
    /// Records an event id; returns `true` the first time, `false` for a redelivery.
    pub async fn first_delivery(
        &self,
        event_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO slack_events (event_id, received_at) VALUES ($1, $2) \
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(event_id)
        .bind(millis(at))
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Forgets event ids older than `before` (Slack retries for at most an hour).
    pub async fn forget_events_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM slack_events WHERE received_at < $1")
            .bind(millis(before))
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected())
    }
}
