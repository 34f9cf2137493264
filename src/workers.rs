//! The background work of one replica: the inbox (inbound Slack events in order
//! per channel), business timers and schedules, and the outbox.
//!
//! In `serve` each runs in its own loop, woken at once when this process
//! commits new work and polling for what other replicas record. Tests and the
//! console drive the same steps by hand on a virtual clock: [`Workers::settle`]
//! runs everything due now, [`Workers::advance_to`] moves the clock through
//! every due time in order.

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::scheduler::{ScheduleDef, Scheduler};
use crate::store::timers::Queue;
use crate::store::{Store, StoreError, Wake};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The replica's workers; cheap to clone.
#[derive(Clone)]
pub struct Workers {
    scheduler: Scheduler,
    outbox: Outbox,
    store: Store,
    clock: Clock,
    metrics: Metrics,
    poll: Duration,
}

impl Workers {
    /// Bundles the scheduler and outbox of one replica.
    pub fn new(
        scheduler: Scheduler,
        outbox: Outbox,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        poll: Duration,
    ) -> Self {
        Self {
            scheduler,
            outbox,
            store,
            clock,
            metrics,
            poll,
        }
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// The outbox worker.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Prepares to work: takes back what a previous run of this replica left
    /// claimed, and stores the configured schedules.
    pub async fn prepare(&self, schedules: &[ScheduleDef]) -> Result<(), StoreError> {
        let timers = self.scheduler.recover_own_claims().await?;
        let effects = self.outbox.recover_own_claims().await?;
        if timers + effects > 0 {
            tracing::warn!(
                timers,
                effects,
                "took back work a previous run of this replica left unfinished"
            );
        }
        self.sync_schedules(schedules).await
    }

    /// Stores the schedules the configuration now declares (at start and
    /// after a reload): new ones start at their next occurrence, unchanged
    /// ones keep theirs, removed ones stop.
    pub async fn sync_schedules(&self, schedules: &[ScheduleDef]) -> Result<(), StoreError> {
        self.scheduler.sync_schedules(schedules).await
    }

    /// Gives back what this replica still holds when it stops, so another
    /// replica can take it at once instead of after the lease: timers become
    /// pending again, effects pending and in doubt (they may have been sent).
    pub async fn release_own_claims(&self) -> Result<u64, StoreError> {
        let timers = self.scheduler.recover_own_claims().await?;
        let effects = self.outbox.recover_own_claims().await?;
        Ok(timers + effects)
    }

    /// Runs everything due now — inbox, schedules, timers, outbox — until
    /// nothing is left; returns how many rows were handled.
    pub async fn settle(&self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let mut round = 0;
            round += self.scheduler.run_due(Queue::Inbox).await?;
            round += self.scheduler.promote_schedules().await?;
            round += self.scheduler.run_due(Queue::Timers).await?;
            round += self.outbox.drain().await?;
            if round == 0 {
                return Ok(total);
            }
            total += round;
        }
    }

    /// The earliest moment anything becomes due.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let candidates = [
            self.store.next_timer_due(Queue::Inbox).await?,
            self.store.next_timer_due(Queue::Timers).await?,
            self.store.next_schedule_due().await?,
            self.store.next_outbox_due().await?,
        ];
        Ok(candidates.into_iter().flatten().min())
    }

    /// Moves a virtual clock to `target`, stopping at every due time on the
    /// way so timers fire in order and at their time; returns rows handled.
    pub async fn advance_to(&self, target: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut total = self.settle().await?;
        while let Some(next) = self.next_due().await? {
            if next > target {
                break;
            }
            let before = self.clock.now();
            self.clock.set(next.max(before));
            let handled = self.settle().await?;
            total += handled;
            if self.clock.now() < next {
                break; // a system clock: it cannot be moved
            }
            if handled == 0 && next <= before {
                break; // due but not claimable here: time must move on
            }
        }
        self.clock.set(target);
        total += self.settle().await?;
        Ok(total)
    }

    /// Refreshes the backlog gauges.
    pub async fn refresh_gauges(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        for queue in [Queue::Inbox, Queue::Timers] {
            let (_, oldest) = self.store.timer_backlog(queue, now).await?;
            let lag = oldest
                .map(|o| (now - o).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0);
            self.metrics
                .scheduler_lag
                .get_or_create(&crate::metrics::QueueLabels {
                    queue: queue.as_str().to_string(),
                })
                .set(lag);
        }
        let (backlog, oldest) = self.store.outbox_backlog().await?;
        self.metrics.outbox_backlog.set(backlog);
        self.metrics.outbox_oldest_age.set(
            oldest
                .map(|o| (now - o).num_milliseconds().max(0) as f64 / 1000.0)
                .unwrap_or(0.0),
        );
        Ok(())
    }

    /// Starts the background loops; they stop when `shutdown` turns true.
    pub fn spawn(&self, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let inbox = {
            let w = self.clone();
            tokio::spawn(w.clone().run_loop(
                "inbox",
                Wake::Inbox,
                Queue::Inbox,
                shutdown.clone(),
                move || {
                    let w = w.clone();
                    async move { w.scheduler.run_due(Queue::Inbox).await }
                },
            ))
        };
        let timers = {
            let w = self.clone();
            tokio::spawn(w.clone().run_loop(
                "timers",
                Wake::Timers,
                Queue::Timers,
                shutdown.clone(),
                move || {
                    let w = w.clone();
                    async move {
                        let armed = w.scheduler.promote_schedules().await?;
                        Ok(armed + w.scheduler.run_due(Queue::Timers).await?)
                    }
                },
            ))
        };
        let outbox = {
            let w = self.clone();
            tokio::spawn(w.clone().run_loop(
                "outbox",
                Wake::Outbox,
                Queue::Timers,
                shutdown.clone(),
                move || {
                    let w = w.clone();
                    async move { w.outbox.step().await }
                },
            ))
        };
        let gauges = {
            let w = self.clone();
            let mut shutdown = shutdown;
            tokio::spawn(async move {
                loop {
                    if let Err(err) = w.refresh_gauges().await {
                        tracing::warn!(error = %err, "cannot refresh worker gauges");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                }
            })
        };
        vec![inbox, timers, outbox, gauges]
    }

    /// One background loop: step while there is work; when idle, sleep until
    /// woken, until the next due time, or one poll interval.
    async fn run_loop<F, Fut>(
        self,
        name: &'static str,
        wake: Wake,
        queue: Queue,
        mut shutdown: watch::Receiver<bool>,
        mut step: F,
    ) where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<usize, StoreError>>,
    {
        let wakers = self.store.wakers().clone();
        // A failed step (the database went away) can leave rows claimed by
        // this replica; they are given back before the next step rather than
        // waiting for the lease to run out.
        let mut holding = false;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if holding {
                match self.release_after_failure(wake, queue).await {
                    Ok(released) => {
                        holding = false;
                        if released > 0 {
                            tracing::info!(
                                worker = name,
                                released,
                                "gave back the claims of a failed step"
                            );
                        }
                    }
                    Err(err) => {
                        tracing::warn!(worker = name, error = %err, "cannot give back claims yet; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(self.poll) => {}
                            _ = shutdown.wait_for(|stop| *stop) => return,
                        }
                        continue;
                    }
                }
            }
            let idle = match step().await {
                Ok(0) => self.idle_for(wake, queue).await,
                Ok(_) => Duration::ZERO,
                Err(err) => {
                    tracing::warn!(worker = name, error = %err, "worker step failed; retrying");
                    holding = true;
                    self.poll
                }
            };
            if idle.is_zero() {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = wakers.get(wake).notified() => {}
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Gives back what one loop holds after its step failed.
    async fn release_after_failure(&self, wake: Wake, queue: Queue) -> Result<u64, StoreError> {
        match wake {
            Wake::Outbox => self.outbox.recover_own_claims().await,
            Wake::Timers | Wake::Inbox => self.scheduler.release_claims(queue).await,
        }
    }

    /// How long an idle loop may sleep: until its next due row, at most a poll.
    async fn idle_for(&self, wake: Wake, queue: Queue) -> Duration {
        let next = match wake {
            Wake::Outbox => self.store.next_outbox_due().await,
            Wake::Timers => {
                let timers = self.store.next_timer_due(queue).await;
                let schedules = self.store.next_schedule_due().await;
                match (timers, schedules) {
                    (Ok(a), Ok(b)) => Ok(a.into_iter().chain(b).min()),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
            Wake::Inbox => self.store.next_timer_due(queue).await,
        };
        match next {
            Ok(Some(at)) => (at - self.clock.now())
                .to_std()
                .unwrap_or(Duration::from_millis(1))
                .clamp(Duration::from_millis(1), self.poll),
            _ => self.poll,
        }
    }
}
