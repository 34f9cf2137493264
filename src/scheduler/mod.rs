//! The durable scheduler: timers and recurring schedules as rows in the store,
//! each fired exactly once, across restarts and replicas.
//!
//! A worker claims due rows with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), then runs each row's [`TimerHandler`] inside a transaction whose
//! first statement marks the row done — only if the claim is still ours and the
//! row was not cancelled. The handler records its decision, new timers and
//! effects in that same transaction, so they commit exactly once with the row.
//! A handler that fails is retried with backoff; a worker that dies leaves its
//! claim to expire, and the row fires late, once. Cancelling (an escalation
//! acknowledged) is an update in the canceller's transaction: a cancelled row
//! is never claimed, and a claimed one cannot be marked done any more.
//!
//! Recurring schedules ([`ScheduleDef`]) keep their next occurrence in the
//! store. Whoever moves a schedule past an occurrence (a compare-and-set) arms
//! one timer for it, keyed by the occurrence, so each fires once. Occurrences
//! missed while the bot was down fire once, late, on start: they are coalesced.

pub mod builtin;
mod recurrence;

pub use recurrence::{Recurrence, RecurrenceError, local_instant};

use crate::clock::Clock;
use crate::faults::{FaultPoint, Faults};
use crate::metrics::Metrics;
use crate::store::timers::{self, NewTimer, Queue, ScheduleRow, Timer};
use crate::store::{Store, StoreError};
use crate::work::Work;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{StreamExt, stream};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a handler did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The store failed; the timer is retried.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something a later attempt may fix.
    #[error("{0}")]
    Retry(String),
    /// Something no retry can fix (a payload this build cannot read).
    #[error("{0}")]
    Permanent(String),
}

/// Runs the timers of one kind.
pub trait TimerHandler: Send + Sync {
    /// The kind it handles, e.g. `escalation.step`.
    fn kind(&self) -> &'static str;
    /// Work done before the timer's transaction opens — a network call whose
    /// answer `fire` records (an HTTP health check) — so no transaction is
    /// held open while waiting on another system. Its result reaches `fire`
    /// as the payload's `prepared` field. By default nothing.
    fn prepare<'a>(&'a self, _timer: &'a Timer) -> BoxFuture<'a, Result<Value, HandlerError>> {
        Box::pin(async { Ok(Value::Null) })
    }
    /// Fires `timer`: records what follows in `work` (committed by the scheduler).
    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// A recurring schedule, as the jobs declare it at start. Each occurrence runs
/// `kind` with `payload` (an object) plus `occurrence` (the due time, RFC 3339)
/// and `schedule` (the name).
#[derive(Clone, Debug)]
pub struct ScheduleDef {
    /// Unique name, e.g. `handoff:ops-duty`.
    pub name: String,
    /// When it recurs.
    pub recurrence: Recurrence,
    /// The handler each occurrence runs.
    pub kind: String,
    /// The handler's input.
    pub payload: Value,
}

/// After this many failed attempts a timer is failed for good.
const MAX_ATTEMPTS: i64 = 10;

fn retry_delay(attempts: i64) -> chrono::Duration {
    let exponent = u32::try_from(attempts.clamp(1, 10)).unwrap_or(10);
    chrono::Duration::seconds(2_i64.pow(exponent)).min(chrono::Duration::minutes(30))
}

struct Inner {
    store: Store,
    clock: Clock,
    instance: String,
    lease: chrono::Duration,
    handlers: HashMap<&'static str, Arc<dyn TimerHandler>>,
    metrics: Metrics,
    faults: Option<Arc<dyn Faults>>,
    concurrency: usize,
}

/// The scheduler; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl Scheduler {
    /// A scheduler for replica `instance` whose claims last `lease`.
    pub fn new(
        store: Store,
        clock: Clock,
        instance: &str,
        lease: chrono::Duration,
        metrics: Metrics,
        handlers: Vec<Arc<dyn TimerHandler>>,
        faults: Option<Arc<dyn Faults>>,
    ) -> Self {
        let concurrency = match store.backend() {
            crate::store::Backend::Sqlite => 1,
            crate::store::Backend::Postgres => 8,
        };
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                instance: instance.to_string(),
                lease,
                handlers: handlers.into_iter().map(|h| (h.kind(), h)).collect(),
                metrics,
                faults,
                concurrency,
            }),
        }
    }

    /// The kinds this scheduler can run.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.inner.handlers.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }

    /// Claims the rows of `queue` due now and runs them; returns how many it claimed.
    pub async fn run_due(&self, queue: Queue) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let limit = i64::try_from(inner.concurrency * 16).unwrap_or(64);
        let claimed = inner
            .store
            .claim_timers(queue, &inner.instance, now, now + inner.lease, limit)
            .await?;
        let count = claimed.len();
        let results: Vec<Result<(), StoreError>> = stream::iter(claimed)
            .map(|timer| self.fire(timer))
            .buffer_unordered(inner.concurrency)
            .collect()
            .await;
        for result in results {
            result?;
        }
        Ok(count)
    }

    async fn fire(&self, mut timer: Timer) -> Result<(), StoreError> {
        let inner = &self.inner;
        let crash = |point| {
            inner
                .faults
                .as_ref()
                .is_some_and(|f| f.crash_at(point, &timer.key))
        };
        if crash(FaultPoint::TimerClaimed) {
            return Ok(());
        }
        let now = inner.clock.now();
        let lag = (now - timer.due_at).num_milliseconds().max(0) as f64 / 1000.0;
        let Some(handler) = inner.handlers.get(timer.kind.as_str()) else {
            let reason = format!("no handler for `{}` in this build", timer.kind);
            tracing::error!(key = timer.key, %reason, "timer failed");
            inner.metrics.timer_fired(&timer.kind, "failed", lag);
            return inner
                .store
                .release_failed_timer(timer.id, &inner.instance, &reason, None, now)
                .await;
        };
        let prepared = handler.prepare(&timer).await;
        let result = match prepared {
            Ok(prepared) => {
                if let (false, Value::Object(map)) = (prepared.is_null(), &mut timer.payload) {
                    map.insert("prepared".into(), prepared);
                }
                Ok(())
            }
            Err(err) => Err(err),
        };
        let (work, result) = match result {
            Ok(()) => {
                let mut tx = inner.store.begin().await?;
                if !timers::finish_timer(tx.conn(), timer.id, &inner.instance, now).await? {
                    // Cancelled, or our lease ran out and another worker has it.
                    return Ok(());
                }
                let mut work = Work::with_tx(inner.store.clone(), now, tx);
                let result = handler.fire(&timer, &mut work).await;
                (Some(work), result)
            }
            Err(err) => (None, Err(err)),
        };
        if crash(FaultPoint::TimerBeforeCommit) {
            return Ok(());
        }
        let error = match (result, work) {
            (Ok(()), Some(work)) => match work.commit().await {
                Ok(()) => {
                    inner.metrics.timer_fired(&timer.kind, "done", lag);
                    return Ok(());
                }
                Err(err) => HandlerError::Store(err),
            },
            (Ok(()), None) => return Ok(()),
            (Err(err), work) => {
                drop(work);
                err
            }
        };
        let retry_at = match &error {
            HandlerError::Permanent(_) => None,
            _ if timer.attempts >= MAX_ATTEMPTS => None,
            _ => Some(now + retry_delay(timer.attempts)),
        };
        tracing::warn!(key = timer.key, kind = timer.kind, attempt = timer.attempts, error = %error, retry = retry_at.is_some(), "timer handler failed");
        inner.metrics.timer_fired(
            &timer.kind,
            if retry_at.is_some() {
                "retried"
            } else {
                "failed"
            },
            lag,
        );
        inner
            .store
            .release_failed_timer(timer.id, &inner.instance, &error.to_string(), retry_at, now)
            .await
    }

    /// Arms one timer for every schedule occurrence that is due; returns how many.
    pub async fn promote_schedules(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut armed = 0;
        for row in inner.store.due_schedules(now).await? {
            let Some(next) = next_occurrence(&row, now) else {
                tracing::error!(schedule = row.name, "schedule has no future occurrence");
                continue;
            };
            let mut tx = inner.store.begin().await?;
            if !timers::advance_schedule(tx.conn(), &row.name, row.next_due_at, next, now).await? {
                continue; // another replica took this occurrence
            }
            // The handler gets the schedule's payload with the occurrence added.
            let mut payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
            if !payload.is_object() {
                payload = serde_json::json!({ "payload": payload });
            }
            payload["occurrence"] = serde_json::json!(row.next_due_at);
            payload["schedule"] = serde_json::json!(row.name);
            let timer = NewTimer {
                queue: Queue::Timers,
                kind: row.kind.clone(),
                key: format!(
                    "schedule:{}:{}",
                    row.name,
                    row.next_due_at.timestamp_millis()
                ),
                group: Some(format!("schedule:{}", row.name)),
                lane: None,
                payload,
                due_at: row.next_due_at,
            };
            timers::insert_timer(tx.conn(), &timer, now).await?;
            tx.wake_after_commit(crate::store::Wake::Timers);
            tx.commit().await?;
            armed += 1;
        }
        Ok(armed)
    }

    /// Stores the schedules the configuration declares (new ones start at their
    /// next occurrence; unchanged ones keep theirs) and removes the others.
    pub async fn sync_schedules(&self, defs: &[ScheduleDef]) -> Result<(), StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut tx = inner.store.begin().await?;
        for def in defs {
            let Some(next) = def.recurrence.next_after(now) else {
                continue;
            };
            let row = ScheduleRow {
                name: def.name.clone(),
                cron: def.recurrence.expression().to_string(),
                timezone: def.recurrence.timezone().name().to_string(),
                kind: def.kind.clone(),
                payload: def.payload.to_string(),
                next_due_at: next,
            };
            timers::upsert_schedule(tx.conn(), &row, now).await?;
        }
        tx.commit().await?;
        let keep: Vec<String> = defs.iter().map(|d| d.name.clone()).collect();
        inner.store.delete_schedules_except(&keep).await?;
        Ok(())
    }

    /// Gives back the rows of `queue` this replica holds (after a failed step:
    /// nothing of that queue is in flight then).
    pub async fn release_claims(&self, queue: Queue) -> Result<u64, StoreError> {
        self.inner
            .store
            .recover_timer_claims(&self.inner.instance, Some(queue))
            .await
    }

    /// Puts back the rows a previous run of this replica left claimed.
    pub async fn recover_own_claims(&self) -> Result<u64, StoreError> {
        self.inner
            .store
            .recover_timer_claims(&self.inner.instance, None)
            .await
    }
}

/// The occurrence after `now` for a stored schedule (its stored expression
/// and zone are re-read, so a row written by another version still works).
fn next_occurrence(row: &ScheduleRow, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let tz: chrono_tz::Tz = row.timezone.parse().ok()?;
    let recurrence = Recurrence::parse(&row.cron, tz).ok()?;
    recurrence.next_after(now.max(row.next_due_at))
}
