//! The on-call job's clock: one durable timer chain per rotation that fires
//! at every moment something is due — a shift change (the hand-off), a
//! reminder before someone's shift, a warning before a shift nobody holds.
//!
//! A tick at `T` recomputes the roster as it is now (configuration,
//! overrides, swaps), does what falls exactly at `T`, and arms the tick of
//! the next event. A tick armed under an older roster finds nothing at its
//! moment and only re-arms; ticks are keyed by rotation and moment, so the
//! chains of an old and a new roster merge instead of doubling, and every
//! effect is keyed by what it is for, so nothing is sent twice.

use super::handoff::{self, HandoffSection, HandoffSectionData, ShiftChange};
use super::notices;
use super::roster::{Override, Rotation, Segment};
use crate::chat::mrkdwn::date_token;
use crate::config::{Config, HumanDuration};
use crate::dispatch::Dispatcher;
use crate::dispatch::templates::Templates;
use crate::ids::UserId;
use crate::outbox::Target;
use crate::scheduler::{HandlerError, TimerHandler};
use crate::store::StoreError;
use crate::store::timeline::{self, TimelineEntry};
use crate::store::timers::{NewTimer, Queue, Timer};
use crate::work::Work;
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::sync::Arc;

/// The timer kind.
pub const TICK: &str = "oncall.tick";

/// Something due at a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The people on call change: a hand-off.
    Change,
    /// `user`'s shift starts `lead` from now.
    Reminder {
        /// Whose.
        user: UserId,
        /// The shift.
        shift: Segment,
        /// How far ahead.
        lead: Duration,
    },
    /// Nobody will be on call `lead` from now.
    EmptyAhead {
        /// The gap.
        gap: Segment,
        /// How far ahead.
        lead: Duration,
    },
}

/// The events with a moment in `(from, to]`, in order of their moment.
pub fn events(
    rotation: &Rotation,
    overrides: &[Override],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Event)> {
    let longest = rotation.reminders.first().copied().unwrap_or_default();
    let margin = Duration::days(1);
    let segments = rotation.segments(from - margin, to + longest + margin, overrides);
    let mut out = Vec::new();
    let within = |at: DateTime<Utc>| from < at && at <= to;
    for after in segments.iter().skip(1) {
        let at = after.start;
        if within(at) {
            out.push((at, Event::Change));
        }
        for lead in &rotation.reminders {
            let due = at - *lead;
            if !within(due) {
                continue;
            }
            if after.users.is_empty() {
                out.push((
                    due,
                    Event::EmptyAhead {
                        gap: after.clone(),
                        lead: *lead,
                    },
                ));
            }
            for user in &after.users {
                out.push((
                    due,
                    Event::Reminder {
                        user: user.clone(),
                        shift: after.clone(),
                        lead: *lead,
                    },
                ));
            }
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out
}

/// The moment of the next event after `after`, looked for up to 400 days ahead.
pub fn next_event(
    rotation: &Rotation,
    overrides: &[Override],
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    [8, 64, 400].into_iter().find_map(|days| {
        events(rotation, overrides, after, after + Duration::days(days))
            .first()
            .map(|(at, _)| *at)
    })
}

/// Arms `rotation`'s tick at its next event after `after` (once per moment).
pub async fn arm_next(
    work: &mut Work,
    rotation: &Rotation,
    overrides: &[Override],
    after: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(at) = next_event(rotation, overrides, after) else {
        return Ok(());
    };
    work.arm(NewTimer {
        queue: Queue::Timers,
        kind: TICK.into(),
        key: format!("oncall:{}:{}", rotation.name, at.timestamp_millis()),
        group: Some(format!("oncall:{}", rotation.name)),
        lane: None,
        payload: json!({ "rotation": rotation.name, "at": at }),
        due_at: at,
    })
    .await?;
    Ok(())
}

/// The overrides that can matter around `at` (a segment's start is looked
/// for up to 400 days back).
async fn overrides_around(
    work: &mut Work,
    rotation: &str,
    at: DateTime<Utc>,
) -> Result<Vec<Override>, StoreError> {
    super::overrides(work, rotation, at - Duration::days(400)).await
}

/// After the roster of `name` changed (an override, a swap, a configuration
/// change): tells the people whose shifts moved and arms the next tick.
pub async fn replan(
    work: &mut Work,
    config: &Config,
    templates: &Templates,
    name: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let Some(rotation) = Rotation::from_config(config, name) else {
        return Ok(());
    };
    let now = work.now();
    let overrides = overrides_around(work, name, now).await?;
    notices::tell_moves(work, templates, &rotation, &overrides, reason).await?;
    arm_next(work, &rotation, &overrides, now).await
}

/// [`replan`] for every rotation of `config`, each in its own unit of work
/// (at start and after a reload: `reason` is "a configuration change").
pub async fn replan_all(
    store: &crate::store::Store,
    config: &Config,
    templates: &Templates,
    now: DateTime<Utc>,
    reason: &str,
) -> Result<(), StoreError> {
    for name in config.rotations.keys() {
        let mut work = Work::new(store.clone(), now);
        replan(&mut work, config, templates, name, reason).await?;
        work.commit().await?;
    }
    Ok(())
}

/// The tick's handler: hand-offs, reminders and empty-shift warnings.
pub struct Ticks {
    dispatcher: Dispatcher,
    sections: Vec<Arc<dyn HandoffSection>>,
}

impl Ticks {
    /// Reads the configuration and wording as they are now from `dispatcher`
    /// (so a reload is honoured) and asks `sections` for every hand-off.
    pub fn new(dispatcher: Dispatcher, sections: Vec<Arc<dyn HandoffSection>>) -> Self {
        Self {
            dispatcher,
            sections,
        }
    }
}

fn lead_text(lead: Duration) -> String {
    HumanDuration::from_secs(lead.num_seconds()).to_string()
}

fn render(templates: &Templates, name: &str, data: &Value) -> String {
    templates
        .render(&format!("oncall.{name}"), data)
        .unwrap_or_else(|err| {
            tracing::error!(error = %err, template = name, "on-call template failed");
            format!("On-call notice for {}", data["rotation"])
        })
}

fn sections_json(sections: &[HandoffSectionData]) -> Value {
    json!(
        sections
            .iter()
            .map(|s| json!({
                "title": s.title,
                "items": s.items.iter().map(|i| json!({
                    "text": i.text,
                    "link": i.link,
                    "attention": i.attention,
                })).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>()
    )
}

impl Ticks {
    async fn hand_off(
        &self,
        work: &mut Work,
        templates: &Templates,
        rotation: &Rotation,
        overrides: &[Override],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let outgoing = rotation.segment_at(at - Duration::milliseconds(1), overrides);
        let incoming = rotation.segment_at(at, overrides);
        let change = ShiftChange {
            rotation: rotation.name.clone(),
            shift_started: outgoing.start,
            at,
            outgoing: outgoing.users.clone(),
            incoming: incoming.users.clone(),
        };
        let sections = handoff::collect(&self.sections, work, &change).await?;
        let data = json!({
            "rotation": rotation.name,
            "at": date_token(at),
            "since": date_token(outgoing.start),
            "until": date_token(incoming.end),
            "outgoing": change.outgoing,
            "incoming": change.incoming,
            "empty": change.incoming.is_empty(),
            "sections": sections_json(&sections),
        });
        let text = render(templates, "handoff", &data);
        let key = format!("oncall:{}:{}:handoff", rotation.name, at.timestamp_millis());
        let channel = Target::Channel {
            channel: rotation.channel.clone(),
            thread: None,
        };
        super::post(work, &format!("{key}:channel"), channel, text.clone()).await?;
        let mut people: Vec<&UserId> = change.outgoing.iter().chain(&change.incoming).collect();
        people.sort();
        people.dedup();
        for user in people {
            let to = Target::Direct { user: user.clone() };
            super::post(work, &format!("{key}:dm:{user}"), to, text.clone()).await?;
        }
        let names = |users: &[UserId]| {
            if users.is_empty() {
                "nobody".to_string()
            } else {
                users
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let tx = work.tx().await?;
        timeline::append(
            tx.conn(),
            &format!("rotation:{}", rotation.name),
            &TimelineEntry {
                at,
                kind: "handoff".into(),
                actor: None,
                text: format!(
                    "{} handed {} to {}",
                    names(&change.outgoing),
                    rotation.name,
                    names(&change.incoming)
                ),
            },
        )
        .await?;
        Ok(())
    }

    /// Says `lead` ahead that `segment` (someone's shift, or nobody's) starts.
    #[allow(clippy::too_many_arguments)]
    async fn ahead(
        &self,
        work: &mut Work,
        templates: &Templates,
        rotation: &Rotation,
        overrides: &[Override],
        segment: &Segment,
        lead: Duration,
        template: &str,
        key: &str,
        to: Target,
    ) -> Result<(), StoreError> {
        let segment = rotation.segment_at(segment.start, overrides);
        let text = render(
            templates,
            template,
            &json!({
                "rotation": rotation.name,
                "from": date_token(segment.start),
                "until": date_token(segment.end),
                "lead": lead_text(lead),
            }),
        );
        let key = format!(
            "{key}:{}:{}",
            segment.start.timestamp_millis(),
            lead.num_seconds()
        );
        super::post(work, &key, to, text).await
    }

    async fn run(&self, work: &mut Work, name: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let env = self.dispatcher.env();
        let templates = env.manifest.templates();
        let Some(rotation) = Rotation::from_config(&env.config, name) else {
            return Ok(()); // removed from the configuration since
        };
        let now = work.now();
        let overrides = overrides_around(work, name, at).await?;
        let due = events(&rotation, &overrides, at - Duration::milliseconds(1), at);
        let mut changed = false;
        for (_, event) in &due {
            match event {
                Event::Change => {
                    changed = true;
                    // After downtime only the latest missed hand-off is posted (late).
                    let superseded = rotation
                        .next_change(at, &overrides)
                        .is_some_and(|next| next <= now);
                    if !superseded {
                        self.hand_off(work, templates, &rotation, &overrides, at)
                            .await?;
                    }
                }
                Event::Reminder { user, shift, lead } if now < shift.start => {
                    let key = format!("oncall:{name}:reminder:{user}");
                    let to = Target::Direct { user: user.clone() };
                    self.ahead(
                        work, templates, &rotation, &overrides, shift, *lead, "reminder", &key, to,
                    )
                    .await?;
                }
                Event::EmptyAhead { gap, lead } if now < gap.start => {
                    let to = Target::Channel {
                        channel: rotation.channel.clone(),
                        thread: None,
                    };
                    let key = format!("oncall:{name}:empty");
                    self.ahead(
                        work,
                        templates,
                        &rotation,
                        &overrides,
                        gap,
                        *lead,
                        "empty_ahead",
                        &key,
                        to,
                    )
                    .await?;
                }
                _ => {} // a reminder or warning the bot was down for
            }
        }
        if changed {
            // Keeps what people were told current (and tells anyone whose
            // shifts moved while nobody was looking).
            notices::tell_moves(
                work,
                templates,
                &rotation,
                &overrides,
                "the rotation changed",
            )
            .await?;
        }
        arm_next(work, &rotation, &overrides, at).await
    }
}

impl TimerHandler for Ticks {
    fn kind(&self) -> &'static str {
        TICK
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let name = timer.payload["rotation"]
                .as_str()
                .ok_or_else(|| HandlerError::Permanent(format!("{}: no rotation", timer.key)))?;
            let at: DateTime<Utc> = serde_json::from_value(timer.payload["at"].clone())
                .map_err(|e| HandlerError::Permanent(format!("{}: {e}", timer.key)))?;
            self.run(work, name, at).await?;
            Ok(())
        })
    }
}
