//! A write transaction: the unit in which a decision, the timers it arms and the
//! effects it implies commit together, or not at all.
//!
//! On SQLite a write transaction starts with `BEGIN IMMEDIATE`, so it holds the
//! write lock from its first statement and two transactions can never deadlock
//! upgrading a read lock. After a commit, the workers of this process that have
//! new work (timers, inbox, outbox) are woken at once; other replicas find it
//! on their next poll.

use super::{Backend, Store, StoreError};
use sqlx::{Any, AnyConnection, Transaction};
use std::sync::Arc;
use tokio::sync::Notify;

/// Which worker a committed transaction gave new work to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Business timers (escalations, SLA checks, schedule occurrences).
    Timers,
    /// Inbound Slack events and interactions.
    Inbox,
    /// Effects waiting for delivery.
    Outbox,
}

/// The wake-up signals of this process's workers.
#[derive(Debug, Default)]
pub struct Wakers {
    timers: Notify,
    inbox: Notify,
    outbox: Notify,
}

impl Wakers {
    /// The signal for one worker.
    pub fn get(&self, wake: Wake) -> &Notify {
        match wake {
            Wake::Timers => &self.timers,
            Wake::Inbox => &self.inbox,
            Wake::Outbox => &self.outbox,
        }
    }

    /// Wakes one worker.
    pub fn wake(&self, wake: Wake) {
        self.get(wake).notify_one();
    }
}

/// An open write transaction. Dropping it without [`Tx::commit`] rolls back.
pub struct Tx {
    inner: Transaction<'static, Any>,
    backend: Backend,
    wakers: Arc<Wakers>,
    wakes: Vec<Wake>,
}

impl Store {
    /// Begins a write transaction.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match self.backend() {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool().begin().await?,
        };
        Ok(Tx {
            inner,
            backend: self.backend(),
            wakers: self.wakers().clone(),
            wakes: Vec::new(),
        })
    }
}

impl Tx {
    /// The connection, for the query modules.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Asks for `wake` to be signalled once this transaction commits.
    pub fn wake_after_commit(&mut self, wake: Wake) {
        if !self.wakes.contains(&wake) {
            self.wakes.push(wake);
        }
    }

    /// Commits, then wakes the workers that have new work.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.inner.commit().await?;
        for wake in self.wakes {
            self.wakers.wake(wake);
        }
        Ok(())
    }
}
