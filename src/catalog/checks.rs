//! The HTTP health checks components declare, run on the scheduler.
//!
//! Each check is a chain of timers on a grid of its interval (keys
//! `check:<component>:<n>:<slot>`), so replicas that arm the same next run
//! collide on the key instead of doubling the chain, and a restart rejoins
//! it. The request is made in `prepare`, before the timer's transaction
//! opens; `fire` records a health event only when the answer changes what
//! the check says, and arms the next run.

use super::health::Rag;
use super::model::{ComponentId, HttpCheck};
use super::service::CatalogService;
use crate::scheduler::{HandlerError, TimerHandler};
use crate::store::StoreError;
use crate::store::health::{self, HealthEvent};
use crate::store::timers::{NewTimer, Queue, Timer};
use crate::work::Work;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// The timer kind.
pub const KIND: &str = "catalog.http_check";

/// Runs the checks of the catalog.
pub struct HttpChecks {
    catalog: Arc<CatalogService>,
    client: reqwest::Client,
    debounce: chrono::Duration,
}

/// The source name of a check's input.
pub fn source(check: &HttpCheck) -> String {
    format!("http:{}", check.url)
}

/// The first slot of `interval` at or after `at`.
fn slot(at: DateTime<Utc>, interval: std::time::Duration) -> DateTime<Utc> {
    let step = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1000);
    let ms = at.timestamp_millis();
    let aligned = ms.div_euclid(step) * step + if ms.rem_euclid(step) == 0 { 0 } else { step };
    DateTime::from_timestamp_millis(aligned).unwrap_or(at)
}

fn check_timer(id: &ComponentId, index: usize, due: DateTime<Utc>) -> NewTimer {
    NewTimer {
        queue: Queue::Timers,
        kind: KIND.into(),
        key: format!("check:{id}:{index}:{}", due.timestamp_millis()),
        group: Some(format!("check:{id}:{index}")),
        lane: None,
        payload: json!({ "component": id.as_str(), "index": index }),
        due_at: due,
    }
}

/// Arms the next run of every declared check (idempotent: keys are slots).
pub async fn arm_all(catalog: &CatalogService, work: &mut Work) -> Result<usize, StoreError> {
    let now = work.now();
    let timers: Vec<NewTimer> = catalog.view(|book, _| {
        book.catalog()
            .iter()
            .flat_map(|c| {
                c.checks
                    .iter()
                    .enumerate()
                    .map(|(n, check)| check_timer(&c.id, n, slot(now, check.interval)))
                    .collect::<Vec<_>>()
            })
            .collect()
    });
    let mut armed = 0;
    for t in timers {
        armed += usize::from(work.arm(t).await?);
    }
    Ok(armed)
}

impl HttpChecks {
    /// Checks over `catalog`; a change is evaluated for notices after `debounce`.
    pub fn new(
        catalog: Arc<CatalogService>,
        debounce: chrono::Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("watchkeeper/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(Self {
            catalog,
            client,
            debounce,
        })
    }

    fn check_of(&self, timer: &Timer) -> Option<(ComponentId, usize, HttpCheck)> {
        let id = ComponentId::parse(timer.payload["component"].as_str()?).ok()?;
        let index = usize::try_from(timer.payload["index"].as_u64()?).ok()?;
        let check = self.catalog.view(|book, _| {
            book.catalog()
                .get(&id)
                .and_then(|c| c.checks.get(index).cloned())
        })?;
        Some((id, index, check))
    }

    /// One request, judged: green, or red with what went wrong.
    async fn run(&self, check: &HttpCheck) -> (Rag, String) {
        let started = Instant::now();
        let response = self
            .client
            .get(&check.url)
            .timeout(check.timeout)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) if err.is_timeout() => {
                return (
                    Rag::Red,
                    format!("no answer within {} s", check.timeout.as_secs_f64()),
                );
            }
            Err(err) if err.is_connect() => return (Rag::Red, "connection failed".into()),
            Err(_) => return (Rag::Red, "request failed".into()),
        };
        let status = response.status().as_u16();
        if status != check.expect_status {
            return (
                Rag::Red,
                format!("HTTP {status}, expected {}", check.expect_status),
            );
        }
        if let Some(needle) = &check.body_contains {
            match response.text().await {
                Ok(body) if body.contains(needle.as_str()) => {}
                Ok(_) => return (Rag::Red, format!("the answer lacks `{needle}`")),
                Err(_) => return (Rag::Red, "the answer could not be read".into()),
            }
        }
        (
            Rag::Green,
            format!("HTTP {status} in {} ms", started.elapsed().as_millis()),
        )
    }
}

impl TimerHandler for HttpChecks {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn prepare<'a>(&'a self, timer: &'a Timer) -> BoxFuture<'a, Result<Value, HandlerError>> {
        Box::pin(async move {
            let Some((_, _, check)) = self.check_of(timer) else {
                return Ok(Value::Null);
            };
            let (rag, reason) = self.run(&check).await;
            Ok(json!({ "rag": rag.as_str(), "reason": reason }))
        })
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            // The check is gone from the catalog: its chain ends here.
            let Some((id, index, check)) = self.check_of(timer) else {
                return Ok(());
            };
            let prepared = &timer.payload["prepared"];
            let rag = prepared["rag"].as_str().unwrap_or("unknown").to_string();
            let reason = prepared["reason"].as_str().unwrap_or_default().to_string();
            let source = source(&check);
            let store = work.store().clone();
            self.catalog.sync(&store).await?;
            let said = self.catalog.view(|book, _| {
                book.inputs(&id)
                    .iter()
                    .find(|i| i.source == source)
                    .map(|i| i.rag.as_str().to_string())
            });
            let now = work.now();
            if said.as_deref() != Some(rag.as_str()) {
                let tx = work.tx().await?;
                let event = health::append(
                    tx,
                    &HealthEvent {
                        id: 0,
                        component: id.to_string(),
                        source,
                        rag: Some(rag),
                        reason: format!("check {}: {reason}", check.url),
                        since: now,
                        link: None,
                    },
                )
                .await?;
                super::notify::arm_evaluation(tx, event, now + self.debounce, now).await?;
            }
            let next = slot(
                (timer.due_at + chrono::Duration::milliseconds(1)).max(now),
                check.interval,
            );
            work.arm(check_timer(&id, index, next)).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_sit_on_the_interval_grid() {
        let at = DateTime::from_timestamp(1_772_442_007, 0).unwrap();
        let thirty = std::time::Duration::from_secs(30);
        assert_eq!(slot(at, thirty).timestamp(), 1_772_442_030);
        let on_grid = DateTime::from_timestamp(1_772_442_030, 0).unwrap();
        assert_eq!(slot(on_grid, thirty), on_grid);
    }
}
