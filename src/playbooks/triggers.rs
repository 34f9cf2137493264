//! Runs nobody typed: a playbook's `schedules` (cron) and `alerts` (a firing
//! Alertmanager alert). Both request a run exactly as a person would — the
//! same checks, the same dry run, the same approvals — with Watchkeeper as
//! the requester and the trigger recorded. No path bypasses approval.
//!
//! An alert is turned into a timer keyed by playbook, alert fingerprint and
//! start time, so Alertmanager's repeated notifications of one firing, its
//! retries and several replicas request one run.

use super::Playbook;
use super::cards;
use super::load;
use super::runs::{self, Request, SYSTEM};
use super::service::Playbooks;
use crate::catalog::alertmanager::Delivery;
use crate::chat::Reply;
use crate::config::Config;
use crate::dispatch::{Dispatcher, Env};
use crate::ids::ChannelId;
use crate::outbox::{SlackEffect, Target};
use crate::scheduler::{HandlerError, Recurrence, ScheduleDef, TimerHandler};
use crate::store::StoreError;
use crate::store::timers::{NewTimer, Queue, Timer};
use crate::work::Work;
use futures::future::BoxFuture;
use serde_json::json;
use std::collections::BTreeMap;

/// The timer kind of a triggered request.
pub const TRIGGERED: &str = "playbook.triggered";

/// The schedules the playbooks declare.
pub fn schedules(playbooks: &Playbooks, config: &Config) -> Vec<ScheduleDef> {
    let mut defs = Vec::new();
    for playbook in playbooks.all() {
        for schedule in &playbook.spec.schedules {
            let zone = schedule
                .timezone
                .as_deref()
                .and_then(|z| z.parse().ok())
                .unwrap_or(config.team.timezone);
            // Checked when the playbook was loaded.
            let Ok(recurrence) = Recurrence::parse(&schedule.cron, zone) else {
                continue;
            };
            defs.push(ScheduleDef {
                name: format!("playbook:{}:{}", playbook.name(), schedule.name),
                recurrence,
                kind: TRIGGERED.into(),
                payload: json!({
                    "playbook": playbook.name(),
                    "trigger": format!("schedule:{}", schedule.name),
                    "channel": schedule.channel,
                    "parameters": load::scalar_texts(&schedule.parameters),
                }),
            });
        }
    }
    defs
}

/// Renders an alert trigger's parameter templates over the alert's labels.
fn alert_parameters(
    templates: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let data = json!({ "labels": labels });
    templates
        .iter()
        .map(|(key, template)| {
            super::render::render(template, &data)
                .map(|value| (key.clone(), value))
                .map_err(|e| format!("{key}: {e}"))
        })
        .collect()
}

/// Records in `work`, for every firing alert a playbook listens to, the
/// request of a run (once per alert and start time). Called by the
/// Alertmanager webhook in the transaction that records the alerts.
pub async fn on_alerts(
    work: &mut Work,
    playbooks: &Playbooks,
    delivery: &Delivery,
) -> Result<usize, StoreError> {
    let now = work.now();
    let mut armed = 0;
    for alert in delivery.alerts.iter().filter(|a| a.firing) {
        for playbook in playbooks.all() {
            for trigger in playbook
                .spec
                .alerts
                .iter()
                .filter(|t| t.alertname == alert.name)
            {
                let started = alert.starts_at.map(|t| t.timestamp()).unwrap_or_default();
                let parameters = alert_parameters(&trigger.parameters, &alert.labels);
                let new = work
                    .arm(NewTimer {
                        queue: Queue::Timers,
                        kind: TRIGGERED.into(),
                        key: format!("playbook-alert:{}:{}:{started}", playbook.name(), alert.key),
                        group: None,
                        lane: None,
                        payload: json!({
                            "playbook": playbook.name(),
                            "trigger": format!("alert:{}", alert.name),
                            "channel": trigger.channel,
                            "parameters": parameters.as_ref().ok(),
                            "problem": parameters.err(),
                        }),
                        due_at: now,
                    })
                    .await?;
                armed += usize::from(new);
            }
        }
    }
    Ok(armed)
}

/// Requests a run for a schedule's occurrence or an alert.
pub struct Triggered {
    dispatcher: Dispatcher,
}

impl Triggered {
    /// The handler; playbooks, catalog, wording and the ops channel (where
    /// triggers that name no channel post) come from the dispatcher's
    /// current configuration, so a reload applies to the next trigger.
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }

    async fn refuse(
        &self,
        work: &mut Work,
        timer: &Timer,
        channel: &ChannelId,
        text: String,
    ) -> Result<(), StoreError> {
        work.effect(
            &format!("{}:refused", timer.key),
            &SlackEffect::Post {
                to: Target::Channel {
                    channel: channel.clone(),
                    thread: None,
                },
                reply: Reply::text(text).in_channel(),
            },
        )
        .await?;
        Ok(())
    }

    fn check(
        env: &Env,
        playbook: &Playbook,
        given: &BTreeMap<String, String>,
    ) -> Result<super::params::Params, String> {
        let component = |id: &str| {
            env.catalog
                .view(|book, _| load::component_ref(book.catalog(), id))
        };
        super::params::parse_all(&playbook.params, given, &component).map_err(|p| {
            let mut all = p.problems;
            all.extend(p.missing.iter().map(|m| format!("{m}: required")));
            all.join("; ")
        })
    }
}

impl TimerHandler for Triggered {
    fn kind(&self) -> &'static str {
        TRIGGERED
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let env = self.dispatcher.env();
            let payload = &timer.payload;
            let name = payload["playbook"].as_str().unwrap_or_default();
            let trigger = payload["trigger"].as_str().unwrap_or("trigger").to_string();
            let channel = payload["channel"]
                .as_str()
                .map(ChannelId::from)
                .unwrap_or_else(|| env.config.team.ops_channel.clone());
            let Some(playbook) = env.playbooks.get(name) else {
                tracing::warn!(playbook = name, %trigger, "a trigger names a playbook that no longer exists");
                return Ok(());
            };
            let given: BTreeMap<String, String> =
                serde_json::from_value(payload["parameters"].clone()).unwrap_or_default();
            let checked = match payload["problem"].as_str() {
                Some(problem) => Err(problem.to_string()),
                None => Self::check(&env, &playbook, &given),
            };
            let params = match checked {
                Ok(params) => params,
                Err(problem) => {
                    let text = cards::words(
                        env.manifest.templates(),
                        "trigger_refused",
                        &json!({ "trigger": trigger, "playbook": name, "problem": problem }),
                    );
                    self.refuse(work, timer, &channel, text).await?;
                    return Ok(());
                }
            };
            runs::request(
                work,
                env.manifest.templates(),
                Request {
                    playbook: playbook.clone(),
                    params,
                    requested_by: SYSTEM.into(),
                    team: None,
                    roles: "system".into(),
                    trigger,
                    tenant: None,
                    channel,
                    thread: None,
                },
            )
            .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_parameters_come_from_labels() {
        let templates = BTreeMap::from([
            ("namespace".to_string(), "{{labels.namespace}}".to_string()),
            ("component".to_string(), "acme-checkout-api".to_string()),
        ]);
        let labels = BTreeMap::from([("namespace".to_string(), "checkout".to_string())]);
        let given = alert_parameters(&templates, &labels).unwrap();
        assert_eq!(given["namespace"], "checkout");
        assert_eq!(given["component"], "acme-checkout-api");
        let missing = alert_parameters(&templates, &BTreeMap::new()).unwrap_err();
        assert!(missing.contains("namespace"), "{missing}");
    }
}
