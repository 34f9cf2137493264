//! What the benchmarks share: a fresh PostgreSQL database for one run.

use sqlx::{Connection, Executor};
use std::future::Future;

/// Runs `bench` with the URL of a fresh database on the server of
/// `WATCHKEEPER_TEST_POSTGRES_URL` (dropped afterwards); says it is skipped
/// when the variable is unset.
pub async fn on_fresh_postgres<F, Fut>(prefix: &str, bench: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(admin) = std::env::var("WATCHKEEPER_TEST_POSTGRES_URL") else {
        println!("postgres   skipped: set WATCHKEEPER_TEST_POSTGRES_URL");
        return;
    };
    let name = format!("{prefix}_{}", std::process::id());
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to PostgreSQL");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the bench database");
    let (base, _) = admin.rsplit_once('/').expect("a database URL");
    bench(format!("{base}/{name}")).await;
    conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .expect("drop the bench database");
}
