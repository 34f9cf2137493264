//! Embedded migrations, one folder per backend (`migrations/sqlite`,
//! `migrations/postgres`). Applied migrations are never edited: add a new file.

use super::{Backend, StoreError};
use futures::future::BoxFuture;
use sqlx::AnyPool;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use std::borrow::Cow;

/// (version, description, SQL) for each backend, in order.
type Files = &'static [(i64, &'static str, &'static str)];

const SQLITE: Files = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "scheduler outbox",
        include_str!("../../migrations/sqlite/0002_scheduler_outbox.sql"),
    ),
    (
        3,
        "timeline postmortems",
        include_str!("../../migrations/sqlite/0003_timeline_postmortems.sql"),
    ),
    (
        4,
        "health events",
        include_str!("../../migrations/sqlite/0004_health_events.sql"),
    ),
    (
        5,
        "health notices",
        include_str!("../../migrations/sqlite/0005_health_notices.sql"),
    ),
    (
        6,
        "oncall",
        include_str!("../../migrations/sqlite/0006_oncall.sql"),
    ),
    (
        7,
        "support",
        include_str!("../../migrations/sqlite/0007_support.sql"),
    ),
    (
        8,
        "playbook runs",
        include_str!("../../migrations/sqlite/0008_playbook_runs.sql"),
    ),
    (
        9,
        "kube watch",
        include_str!("../../migrations/sqlite/0009_kube_watch.sql"),
    ),
    (
        10,
        "request card ts",
        include_str!("../../migrations/sqlite/0010_request_card_ts.sql"),
    ),
    (
        11,
        "outbox open lanes",
        include_str!("../../migrations/sqlite/0011_outbox_open_lanes.sql"),
    ),
    (
        12,
        "posted messages",
        include_str!("../../migrations/sqlite/0012_posted_messages.sql"),
    ),
];

const POSTGRES: Files = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "scheduler outbox",
        include_str!("../../migrations/postgres/0002_scheduler_outbox.sql"),
    ),
    (
        3,
        "timeline postmortems",
        include_str!("../../migrations/postgres/0003_timeline_postmortems.sql"),
    ),
    (
        4,
        "health events",
        include_str!("../../migrations/postgres/0004_health_events.sql"),
    ),
    (
        5,
        "health notices",
        include_str!("../../migrations/postgres/0005_health_notices.sql"),
    ),
    (
        6,
        "oncall",
        include_str!("../../migrations/postgres/0006_oncall.sql"),
    ),
    (
        7,
        "support",
        include_str!("../../migrations/postgres/0007_support.sql"),
    ),
    (
        8,
        "playbook runs",
        include_str!("../../migrations/postgres/0008_playbook_runs.sql"),
    ),
    (
        9,
        "kube watch",
        include_str!("../../migrations/postgres/0009_kube_watch.sql"),
    ),
    (
        10,
        "request card ts",
        include_str!("../../migrations/postgres/0010_request_card_ts.sql"),
    ),
    (
        11,
        "outbox open lanes",
        include_str!("../../migrations/postgres/0011_outbox_open_lanes.sql"),
    ),
    (
        12,
        "posted messages",
        include_str!("../../migrations/postgres/0012_posted_messages.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(Files);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

fn files(backend: Backend) -> Files {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// Applies what is pending; returns how many migrations were new.
pub async fn apply(pool: &AnyPool, backend: Backend) -> Result<usize, StoreError> {
    let before = applied_count(pool).await.unwrap_or(0);
    let migrator = Migrator::new(Embedded(files(backend))).await?;
    migrator.run(pool).await?;
    let after = applied_count(pool).await?;
    Ok(usize::try_from(after - before).unwrap_or(0))
}

/// True when every embedded migration is recorded as applied.
pub async fn all_applied(pool: &AnyPool, backend: Backend) -> Result<bool, StoreError> {
    let count = applied_count(pool).await?;
    Ok(count >= i64::try_from(files(backend).len()).unwrap_or(i64::MAX))
}

async fn applied_count(pool: &AnyPool) -> Result<i64, StoreError> {
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(pool)
            .await?;
    Ok(count)
}
