//! The outbox: every effect on the outside world leaves through here.
//!
//! Jobs record effects with [`crate::work::Work::effect`] in the transaction of
//! the decision that caused them. This worker claims them (the first waiting
//! item of each lane, so one channel's messages keep their order), hands each to
//! its [`Sink`], and records the outcome: delivered (with what the other side
//! reported, e.g. a message `ts` that later updates target), retried later with
//! exponential backoff or the other side's `Retry-After`, held back by our own
//! rate limits (not an attempt), or failed for good — logged, counted and
//! reported to the ops channel.
//!
//! Exactly once: an item's key is unique, so recording it twice is a no-op; a
//! worker that dies mid-delivery leaves the item claimed, and whoever claims it
//! after the lease marks it *in doubt*, which makes the sink check whether the
//! effect already happened before repeating it.

pub mod forge;
pub mod slack;

use crate::clock::Clock;
use crate::faults::{FaultPoint, Faults};
use crate::ids::ChannelId;
use crate::metrics::Metrics;
use crate::store::outbox::OutboxItem;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{StreamExt, stream};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use slack::{MessageRef, SlackEffect, SlackSink, Target};

/// An effect a sink knows how to carry out.
pub trait Effect: Serialize {
    /// The sink that delivers it, e.g. `slack`.
    const SINK: &'static str;
    /// Its lane: effects of one lane are delivered one at a time, in order.
    fn lane(&self) -> String;
}

/// What a sink reports for one attempt.
#[derive(Debug)]
pub enum Delivery {
    /// Done; what the other side said (e.g. `{"channel":…,"ts":…}`).
    Done(Value),
    /// Not attempted: our own limit (`limit`) allows it in `after`.
    Wait {
        /// Which limit.
        limit: &'static str,
        /// How long until it allows the call.
        after: Duration,
    },
    /// Failed in a way a later attempt may fix.
    Retry {
        /// When the other side asked us to come back (`Retry-After`).
        after: Option<Duration>,
        /// The attempt may have taken effect (a timeout, a 5xx).
        in_doubt: bool,
        /// What happened.
        reason: String,
    },
    /// Failed for good (channel_not_found, not_in_channel, invalid_auth…).
    Failed(String),
}

/// Carries out the effects of one kind.
pub trait Sink: Send + Sync {
    /// One attempt at `item` (its payload is this sink's effect).
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Delivery>;
}

/// After this many attempts an effect is failed for good (about a day with backoff).
const MAX_ATTEMPTS: i64 = 30;

/// Backoff before attempt `attempts + 1`: 2 s, 4 s, 8 s … capped at 30 minutes.
fn backoff(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 11)).unwrap_or(11);
    Duration::from_secs(2_u64.pow(exponent)).min(Duration::from_secs(1800))
}

/// A wait as stored: rounded up to the next millisecond (times are stored in
/// milliseconds; rounding down would retry a hair too early, forever).
fn to_chrono(duration: Duration) -> chrono::Duration {
    let ms = duration.as_nanos().div_ceil(1_000_000).max(1);
    i64::try_from(ms)
        .ok()
        .and_then(chrono::Duration::try_milliseconds)
        .unwrap_or(chrono::Duration::days(1))
}

/// How one claimed item ended, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    Deferred,
    Failed,
    Crashed,
}

struct Inner {
    store: Store,
    clock: Clock,
    instance: String,
    lease: chrono::Duration,
    sinks: HashMap<&'static str, Arc<dyn Sink>>,
    metrics: Metrics,
    faults: Option<Arc<dyn Faults>>,
    ops_channel: Option<ChannelId>,
    concurrency: usize,
}

/// The outbox worker; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

/// Builds an [`Outbox`].
pub struct OutboxBuilder {
    inner: Inner,
}

impl OutboxBuilder {
    /// Adds the sink for effects of type `E`.
    pub fn sink<E: Effect>(mut self, sink: Arc<dyn Sink>) -> Self {
        self.inner.sinks.insert(E::SINK, sink);
        self
    }

    /// Where permanent failures are reported.
    pub fn ops_channel(mut self, channel: ChannelId) -> Self {
        self.inner.ops_channel = Some(channel);
        self
    }

    /// Crash points (tests and drills).
    pub fn faults(mut self, faults: Option<Arc<dyn Faults>>) -> Self {
        self.inner.faults = faults;
        self
    }

    /// Deliveries in flight at once (distinct lanes).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.inner.concurrency = concurrency.max(1);
        self
    }

    /// The worker.
    pub fn build(self) -> Outbox {
        Outbox {
            inner: Arc::new(self.inner),
        }
    }
}

impl Outbox {
    /// Starts building the worker of replica `instance`, whose claims last `lease`.
    pub fn builder(
        store: Store,
        clock: Clock,
        instance: &str,
        lease: chrono::Duration,
        metrics: Metrics,
    ) -> OutboxBuilder {
        OutboxBuilder {
            inner: Inner {
                store,
                clock,
                instance: instance.to_string(),
                lease,
                sinks: HashMap::new(),
                metrics,
                faults: None,
                ops_channel: None,
                concurrency: 8,
            },
        }
    }

    /// Claims what is due now and delivers it; returns how many items it claimed.
    pub async fn step(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let limit = i64::try_from(inner.concurrency * 4).unwrap_or(32);
        let items = inner
            .store
            .claim_outbox(&inner.instance, now, now + inner.lease, limit)
            .await?;
        let claimed = items.len();
        let results: Vec<Result<Outcome, StoreError>> = stream::iter(items)
            .map(|item| self.deliver_one(item))
            .buffer_unordered(inner.concurrency)
            .collect()
            .await;
        for result in results {
            result?;
        }
        Ok(claimed)
    }

    /// Delivers everything deliverable now; returns how many items were claimed.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let claimed = self.step().await?;
            if claimed == 0 {
                return Ok(total);
            }
            total += claimed;
        }
    }

    /// Gives back, in doubt, the items a previous run of this replica left
    /// claimed (it was killed): nobody else can be working on them.
    pub async fn recover_own_claims(&self) -> Result<u64, StoreError> {
        self.inner
            .store
            .recover_outbox_claims(&self.inner.instance)
            .await
    }

    async fn deliver_one(&self, item: OutboxItem) -> Result<Outcome, StoreError> {
        let inner = &self.inner;
        let crash = |point| {
            inner
                .faults
                .as_ref()
                .is_some_and(|f| f.crash_at(point, &item.key))
        };
        if crash(FaultPoint::OutboxClaimed) {
            return Ok(Outcome::Crashed);
        }
        let delivery = match inner.sinks.get(item.sink.as_str()) {
            Some(sink) => sink.deliver(&item).await,
            None => Delivery::Failed(format!("no sink `{}` in this build", item.sink)),
        };
        if crash(FaultPoint::OutboxSent) {
            return Ok(Outcome::Crashed);
        }
        let now = inner.clock.now();
        let store = &inner.store;
        let me = inner.instance.as_str();
        let outcome = match delivery {
            Delivery::Done(result) => {
                if !store.record_delivered(item.id, me, &result, now).await? {
                    tracing::warn!(
                        key = item.key,
                        "delivered, but the claim had passed to another worker"
                    );
                }
                inner.metrics.delivery(&item.sink, "delivered");
                Outcome::Delivered
            }
            Delivery::Wait { limit, after } => {
                inner.metrics.rate_limit_wait(limit);
                store
                    .defer_outbox(
                        item.id,
                        me,
                        now + to_chrono(after),
                        false,
                        item.in_doubt,
                        None,
                    )
                    .await?;
                Outcome::Deferred
            }
            Delivery::Retry {
                after,
                in_doubt,
                reason,
            } if item.attempts < MAX_ATTEMPTS => {
                let wait = after.unwrap_or_else(|| backoff(item.attempts));
                tracing::info!(key = item.key, attempt = item.attempts, retry_in = ?wait, %reason, "delivery will be retried");
                inner.metrics.delivery(&item.sink, "retried");
                store
                    .defer_outbox(
                        item.id,
                        me,
                        now + to_chrono(wait),
                        true,
                        item.in_doubt || in_doubt,
                        Some(&reason),
                    )
                    .await?;
                Outcome::Deferred
            }
            Delivery::Retry { reason, .. } => {
                let reason = format!("gave up after {} attempts: {reason}", item.attempts);
                self.fail(&item, &reason, now).await?;
                Outcome::Failed
            }
            Delivery::Failed(reason) => {
                self.fail(&item, &reason, now).await?;
                Outcome::Failed
            }
        };
        Ok(outcome)
    }

    /// Ends an item for good and says so where a person will see it.
    async fn fail(
        &self,
        item: &OutboxItem,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        tracing::error!(key = item.key, lane = item.lane, %reason, "effect failed for good");
        inner.metrics.delivery(&item.sink, "failed");
        inner
            .store
            .end_outbox(item.id, &inner.instance, "failed", reason, now)
            .await?;
        let Some(ops) = &inner.ops_channel else {
            return Ok(());
        };
        let notice = SlackEffect::Post {
            to: Target::Channel {
                channel: ops.clone(),
                thread: None,
            },
            reply: crate::chat::Reply::text(format!(
                ":warning: Watchkeeper could not deliver `{}` ({}): {}. Check that the bot is in that channel and its token is valid; the log has the details.",
                crate::chat::mrkdwn::escape(&item.key),
                crate::chat::mrkdwn::escape(&item.lane),
                crate::chat::mrkdwn::escape(reason),
            ))
            .in_channel(),
        };
        // A failed notice is not reported again: that way lies a loop.
        if item.key.starts_with("ops-notice:") || item.lane == notice.lane() {
            return Ok(());
        }
        let mut work = crate::work::Work::new(inner.store.clone(), now);
        work.effect(&format!("ops-notice:outbox:{}", item.id), &notice)
            .await?;
        work.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(10), Duration::from_secs(1024));
        assert_eq!(backoff(29), Duration::from_secs(1800));
    }
}
