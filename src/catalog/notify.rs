//! Health-change notices to subscribed channels.
//!
//! Every recorded health event arms an evaluation `debounce` later. The
//! evaluation compares each subscribed component's rolled-up health with
//! what its subscribers were last told (`health_notices`, updated
//! compare-and-set, so one replica announces a change once): a change that
//! outlasted the debounce is announced; a flap that settled back is not.
//! While a component stays red it is announced again every `repeat`.

use super::config::Subscription;
use super::health::Rag;
use super::model::ComponentId;
use super::service::CatalogService;
use crate::chat::Reply;
use crate::chat::mrkdwn::escape;
use crate::outbox::{SlackEffect, Target};
use crate::scheduler::{HandlerError, TimerHandler};
use crate::store::health;
use crate::store::timers::{self, NewTimer, Queue, Timer};
use crate::store::{StoreError, Tx, Wake};
use crate::work::Work;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::Arc;

/// The timer kind.
pub const KIND: &str = "catalog.notify";

/// Arms the evaluation of health event `event` at `due` (in the event's transaction).
pub async fn arm_evaluation(
    tx: &mut Tx,
    event: i64,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let timer = NewTimer {
        queue: Queue::Timers,
        kind: KIND.into(),
        key: format!("health:evaluate:{event}"),
        group: None,
        lane: None,
        payload: json!({ "event": event }),
        due_at: due,
    };
    timers::insert_timer(tx.conn(), &timer, now).await?;
    tx.wake_after_commit(Wake::Timers);
    Ok(())
}

/// Announces health changes.
pub struct Notifier {
    catalog: Arc<CatalogService>,
    subscriptions: Vec<Subscription>,
    repeat: chrono::Duration,
}

fn emoji(rag: Rag) -> &'static str {
    match rag {
        Rag::Red => ":red_circle:",
        Rag::Amber => ":large_orange_circle:",
        Rag::Green => ":large_green_circle:",
        Rag::Unknown => ":white_circle:",
    }
}

/// A subscribed component as it is now.
struct Watched {
    id: ComponentId,
    title: String,
    rag: Rag,
    reason: Option<String>,
    channels: Vec<crate::ids::ChannelId>,
}

impl Notifier {
    /// A notifier for `subscriptions`, repeating red every `repeat`.
    pub fn new(
        catalog: Arc<CatalogService>,
        subscriptions: Vec<Subscription>,
        repeat: chrono::Duration,
    ) -> Self {
        Self {
            catalog,
            subscriptions,
            repeat,
        }
    }

    fn watched(&self, only: Option<&str>) -> Vec<Watched> {
        self.catalog.view(|book, _| {
            book.catalog()
                .iter()
                .filter(|c| only.is_none_or(|id| c.id.as_str() == id))
                .filter_map(|c| {
                    let channels: Vec<_> = self
                        .subscriptions
                        .iter()
                        .filter(|s| s.covers(c))
                        .map(|s| s.channel.clone())
                        .collect();
                    if channels.is_empty() {
                        return None;
                    }
                    let health = book.rolled(&c.id)?;
                    Some(Watched {
                        id: c.id.clone(),
                        title: c.title.clone(),
                        rag: health.rag,
                        reason: health.reasons.first().map(ToString::to_string),
                        channels,
                    })
                })
                .collect()
        })
    }

    async fn post(
        work: &mut Work,
        watched: &Watched,
        key: &str,
        text: String,
    ) -> Result<(), StoreError> {
        for channel in &watched.channels {
            work.effect(
                &format!("{key}:{channel}"),
                &SlackEffect::Post {
                    to: Target::Channel {
                        channel: channel.clone(),
                        thread: None,
                    },
                    reply: Reply::text(text.clone()).in_channel(),
                },
            )
            .await?;
        }
        Ok(())
    }

    fn repeat_timer(&self, id: &ComponentId, now: DateTime<Utc>) -> NewTimer {
        let due = now + self.repeat;
        NewTimer {
            queue: Queue::Timers,
            kind: KIND.into(),
            key: format!("health:repeat:{id}:{}", due.timestamp_millis()),
            group: Some(format!("health:repeat:{id}")),
            lane: None,
            payload: json!({ "repeat": id.as_str() }),
            due_at: due,
        }
    }

    async fn evaluate(&self, work: &mut Work, event: i64) -> Result<(), HandlerError> {
        let now = work.now();
        for watched in self.watched(None) {
            let id = watched.id.to_string();
            let tx = work.tx().await?;
            let last = health::last_notice(tx.conn(), &id).await?;
            let previous = last
                .as_ref()
                .map(|(rag, _)| rag.parse().unwrap_or_default());
            if previous == Some(watched.rag) {
                continue;
            }
            let claimed = health::record_notice(
                tx.conn(),
                &id,
                last.as_ref().map(|(rag, _)| rag.as_str()),
                watched.rag.as_str(),
                now,
            )
            .await?;
            // Another worker announced it, or nothing worth saying yet: a
            // first look that finds it green or unknown is recorded silently.
            let first_and_fine = previous.is_none() && watched.rag <= Rag::Green;
            if !claimed || first_and_fine {
                continue;
            }
            let was = previous.unwrap_or(Rag::Unknown);
            let text = format!(
                "{} *{}* (`{}`) is now *{}* (was {}){}",
                emoji(watched.rag),
                escape(&watched.title),
                escape(&id),
                watched.rag,
                was,
                match (&watched.reason, watched.rag >= Rag::Amber) {
                    (Some(reason), true) => format!(": {}", escape(reason)),
                    _ => String::new(),
                }
            );
            Self::post(work, &watched, &format!("health:{id}:{event}"), text).await?;
            work.cancel_group(&format!("health:repeat:{id}")).await?;
            if watched.rag == Rag::Red {
                work.arm(self.repeat_timer(&watched.id, now)).await?;
            }
        }
        Ok(())
    }

    async fn repeat(&self, work: &mut Work, timer: &Timer, id: &str) -> Result<(), HandlerError> {
        let Some(watched) = self.watched(Some(id)).into_iter().next() else {
            return Ok(());
        };
        let tx = work.tx().await?;
        let last = health::last_notice(tx.conn(), id).await?;
        let Some((told, since)) = last else {
            return Ok(());
        };
        if watched.rag != Rag::Red || told != "red" {
            return Ok(()); // the evaluation of the change will speak
        }
        let text = format!(
            "{} *{}* (`{}`) is still *red*, since <!date^{}^{{date_short_pretty}} {{time}}|{} UTC>{}",
            emoji(Rag::Red),
            escape(&watched.title),
            escape(id),
            since.timestamp(),
            since.format("%Y-%m-%d %H:%M"),
            watched
                .reason
                .as_ref()
                .map(|r| format!(": {}", escape(r)))
                .unwrap_or_default(),
        );
        Self::post(work, &watched, &timer.key, text).await?;
        work.arm(self.repeat_timer(&watched.id, work.now())).await?;
        Ok(())
    }
}

impl TimerHandler for Notifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if self.subscriptions.is_empty() {
                return Ok(());
            }
            let store = work.store().clone();
            self.catalog.sync(&store).await?;
            match (
                timer.payload["repeat"].as_str(),
                timer.payload["event"].as_i64(),
            ) {
                (Some(id), _) => self.repeat(work, timer, id).await,
                (None, Some(event)) => self.evaluate(work, event).await,
                _ => Err(HandlerError::Permanent(format!(
                    "{}: unreadable payload",
                    timer.key
                ))),
            }
        })
    }
}
