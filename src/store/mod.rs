//! The store: one sqlx pool over SQLite (the embedded default) or PostgreSQL,
//! chosen by the URL scheme, with migrations applied at start.
//!
//! Queries are written once with `$1` placeholders, which both backends accept;
//! where the dialects differ, [`Backend`] makes the switch explicit. Times are
//! stored as Unix milliseconds (`BIGINT`). Each job owns its own module of
//! queries here and never reads another job's tables.

pub mod audit;
pub mod health;
mod migrations;
pub mod oncall;
pub mod outbox;
pub mod playbook_runs;
pub mod postmortems;
pub mod support;
pub mod timeline;
pub mod timers;
pub mod tx;
pub mod watch;

pub use tx::{Tx, Wake, Wakers};

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The default database, relative to the working directory.
pub const DEFAULT_URL: &str = "sqlite://var/watchkeeper.db";

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: one writer at a time; no row locks.
    Sqlite,
    /// PostgreSQL: several replicas; `FOR UPDATE SKIP LOCKED`.
    Postgres,
}

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names a database we do not support.
    #[error("WATCHKEEPER_DATABASE_URL must start with sqlite:// or postgres://, not `{0}`")]
    UnsupportedUrl(String),
    /// The SQLite file's folder could not be created.
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        /// The URL without credentials.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Migrations could not be applied.
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// The database did not answer in time (it is down or overloaded).
    #[error("the database did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// How long `/readyz` waits for the database before reporting not ready.
const READY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    wakers: Arc<Wakers>,
}

impl Store {
    /// Connects to `url`, creating the SQLite file (and its folder) on first run.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let options = match backend {
            // One SQLite file: a few connections, WAL so readers never block the writer.
            Backend::Sqlite => options.max_connections(6).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options.max_connections(16),
        };
        let pool = options
            .connect(&url)
            .await
            .map_err(|source| StoreError::Connect {
                url: redact(&url),
                source,
            })?;
        Ok(Self {
            pool,
            backend,
            wakers: Arc::default(),
        })
    }

    /// Connects and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        migrations::apply(&self.pool, self.backend).await
    }

    /// True when the database answers and every migration is applied.
    pub async fn is_ready(&self) -> bool {
        // A database that does not answer is not ready: say so at once
        // rather than after the pool's acquire timeout.
        tokio::time::timeout(
            READY_DEADLINE,
            migrations::all_applied(&self.pool, self.backend),
        )
        .await
        .is_ok_and(|applied| applied.unwrap_or(false))
    }

    /// The pool, for the query modules.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The wake-up signals of this process's workers, fired after commits.
    pub fn wakers(&self) -> &Arc<Wakers> {
        &self.wakers
    }

    /// Closes every connection (at shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Makes sure the SQLite file can be created: its folder exists and `mode=rwc` is set.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path != ":memory:"
        && !path.is_empty()
        && let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let mut query = query.to_string();
    if !query.contains("mode=") {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("mode=rwc");
    }
    Ok(format!("sqlite://{path}?{query}"))
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:…@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch, as stored.
pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A stored time back as a `DateTime` (out-of-range values read as the epoch).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Backend {
    /// The row-locking clause for claiming work: PostgreSQL lets replicas skip
    /// rows another one is claiming; SQLite has one writer and needs none.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://wk:hunter2@db:5432/wk"),
            "postgres://wk:…@db:5432/wk"
        );
        assert_eq!(redact("sqlite://var/x.db"), "sqlite://var/x.db");
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/wk.db");
        let url = sqlite_url(&format!("sqlite://{}", path.display())).unwrap();
        assert!(url.ends_with("?mode=rwc"), "{url}");
        assert!(path.parent().unwrap().is_dir());
    }
}
