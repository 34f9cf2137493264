//! The unit of work every handler gets: a clock reading and a write transaction
//! (begun on first use) in which the handler records its decision, the timers
//! it arms or cancels and the effects it implies. They commit together or not
//! at all: there is no other way for a job to make something happen later or
//! outside.

use crate::outbox::Effect;
use crate::store::timers::{self, NewTimer};
use crate::store::{Store, StoreError, Tx, Wake, outbox};
use chrono::{DateTime, Utc};

/// A handler's view of the store for one input or timer.
pub struct Work {
    store: Store,
    now: DateTime<Utc>,
    tx: Option<Tx>,
}

impl Work {
    /// Work at `now` that begins its transaction when first needed.
    pub fn new(store: Store, now: DateTime<Utc>) -> Self {
        Self {
            store,
            now,
            tx: None,
        }
    }

    /// Work inside a transaction that is already open (a timer's).
    pub fn with_tx(store: Store, now: DateTime<Utc>, tx: Tx) -> Self {
        Self {
            store,
            now,
            tx: Some(tx),
        }
    }

    /// The business time this work happens at.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The store, for reads that need no transaction. Never write through it
    /// while this work holds a transaction: on SQLite the transaction holds the
    /// write lock; write through [`Work::tx`].
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The transaction, begun now if it was not yet.
    pub async fn tx(&mut self) -> Result<&mut Tx, StoreError> {
        let tx = match self.tx.take() {
            Some(tx) => tx,
            None => self.store.begin().await?,
        };
        Ok(self.tx.insert(tx))
    }

    /// True when a transaction was begun.
    pub fn has_tx(&self) -> bool {
        self.tx.is_some()
    }

    /// Commits whatever was recorded (nothing to do if nothing was).
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.tx {
            Some(tx) => tx.commit().await,
            None => Ok(()),
        }
    }

    /// Arms a timer; false when one with the same key exists (idempotent).
    pub async fn arm(&mut self, timer: NewTimer) -> Result<bool, StoreError> {
        let now = self.now;
        let tx = self.tx().await?;
        let new = timers::insert_timer(tx.conn(), &timer, now).await?;
        tx.wake_after_commit(match timer.queue {
            timers::Queue::Timers => Wake::Timers,
            timers::Queue::Inbox => Wake::Inbox,
        });
        Ok(new)
    }

    /// Cancels a timer by key; true if it had not fired.
    pub async fn cancel(&mut self, key: &str) -> Result<bool, StoreError> {
        let now = self.now;
        let tx = self.tx().await?;
        timers::cancel_timer(tx.conn(), key, now).await
    }

    /// Cancels every unfired timer of a group; returns how many.
    pub async fn cancel_group(&mut self, group: &str) -> Result<u64, StoreError> {
        let now = self.now;
        let tx = self.tx().await?;
        timers::cancel_group(tx.conn(), group, now).await
    }

    /// Records an effect for the outbox under an idempotency `key`; false when
    /// that key was recorded before (the effect happens once).
    pub async fn effect<E: Effect>(&mut self, key: &str, effect: &E) -> Result<bool, StoreError> {
        self.effect_then(key, effect, None).await
    }

    /// Like [`Work::effect`], and once the effect has ended (delivered or not)
    /// runs the `follow_up` timer with its outcome, e.g. to post the link of an
    /// issue the forge created.
    pub async fn effect_then<E: Effect>(
        &mut self,
        key: &str,
        effect: &E,
        follow_up: Option<outbox::FollowUp>,
    ) -> Result<bool, StoreError> {
        let now = self.now;
        let record = outbox::NewEffect {
            key: key.to_string(),
            lane: effect.lane(),
            sink: E::SINK.to_string(),
            payload: serde_json::to_value(effect).unwrap_or_default(),
            follow_up,
        };
        let tx = self.tx().await?;
        let new = outbox::enqueue(tx.conn(), &record, now).await?;
        tx.wake_after_commit(Wake::Outbox);
        Ok(new)
    }
}
