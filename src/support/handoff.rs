//! Support's parts of a shift hand-off: open requests (breaching first, with
//! attention) and active incidents, read inside the hand-off's [`Work`].

use super::{incident_label, request_label};
use crate::config::Config;
use crate::oncall::handoff::{HandoffItem, HandoffSection, HandoffSectionData, ShiftChange};
use crate::store::StoreError;
use crate::store::support as db;
use crate::work::Work;
use futures::future::BoxFuture;
use std::sync::Arc;

/// Open requests, breaching first.
pub struct OpenRequests {
    config: Arc<Config>,
}

impl OpenRequests {
    /// The section, with the configuration for customer names and links.
    pub fn new(config: Arc<Config>) -> Self {
        Self { config }
    }
}

fn minutes(d: chrono::Duration) -> String {
    let m = d.num_minutes().max(0);
    match (m / 1440, (m % 1440) / 60, m % 60) {
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

impl HandoffSection for OpenRequests {
    fn name(&self) -> &'static str {
        "requests"
    }

    fn collect<'a>(
        &'a self,
        work: &'a mut Work,
        change: &'a ShiftChange,
    ) -> BoxFuture<'a, Result<Option<HandoffSectionData>, StoreError>> {
        Box::pin(async move {
            let tx = work.tx().await?;
            let mut open = db::open_requests(tx.conn(), None).await?;
            if open.is_empty() {
                return Ok(None);
            }
            let at = change.at;
            open.sort_by_key(|r| (!r.breaching(at), !r.urgent, r.opened_at, r.id));
            let items = open
                .iter()
                .map(|r| {
                    let customer = self
                        .config
                        .customers
                        .get(&r.tenant)
                        .map(|c| c.name.clone())
                        .unwrap_or_else(|| r.tenant.to_string());
                    let mut flags = Vec::new();
                    if r.breaching(at) {
                        flags.push("SLA breached".to_string());
                    }
                    if r.urgent {
                        flags.push("urgent".into());
                    }
                    flags.push(match &r.claimed_by {
                        Some(user) => format!("claimed by {user}"),
                        None => "unclaimed".into(),
                    });
                    if r.first_response_at.is_none() {
                        flags.push("not answered yet".into());
                    }
                    let text: String = r.text.chars().take(80).collect();
                    HandoffItem {
                        text: format!(
                            "Request {} ({customer}, open {}): {text} — {}",
                            request_label(r.id),
                            minutes(at - r.opened_at),
                            flags.join(", ")
                        ),
                        link: Some(super::thread_link(&self.config, &r.channel, &r.thread_ts)),
                        attention: r.breaching(at) || r.urgent,
                    }
                })
                .collect();
            Ok(Some(HandoffSectionData {
                title: "Open requests".into(),
                items,
            }))
        })
    }
}

/// Incidents still open, with where their escalation stands.
pub struct ActiveIncidents;

impl HandoffSection for ActiveIncidents {
    fn name(&self) -> &'static str {
        "incidents"
    }

    fn collect<'a>(
        &'a self,
        work: &'a mut Work,
        change: &'a ShiftChange,
    ) -> BoxFuture<'a, Result<Option<HandoffSectionData>, StoreError>> {
        Box::pin(async move {
            let tx = work.tx().await?;
            let open = db::open_incidents(&mut *tx.conn()).await?;
            if open.is_empty() {
                return Ok(None);
            }
            let mut items = Vec::new();
            for incident in &open {
                let escalation =
                    db::active_escalation(&mut *tx.conn(), None, Some(incident.id)).await?;
                let state = match &escalation {
                    Some(e) => format!("paging, level {} — not acknowledged", e.level + 1),
                    None => "acknowledged or not paging".into(),
                };
                items.push(HandoffItem {
                    text: format!(
                        "Incident {} ({}, open {}): {} — {state}",
                        incident_label(incident.id),
                        incident.severity,
                        minutes(change.at - incident.opened_at),
                        incident.title
                    ),
                    link: None,
                    attention: escalation.is_some(),
                });
            }
            items.sort_by_key(|i| !i.attention);
            Ok(Some(HandoffSectionData {
                title: "Active incidents".into(),
                items,
            }))
        })
    }
}
