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
    config: Box<dyn Fn() -> Arc<Config> + Send + Sync>,
}

impl OpenRequests {
    /// The section; `config` gives the configuration in force (customer
    /// names and links follow a reload).
    pub fn new(config: impl Fn() -> Arc<Config> + Send + Sync + 'static) -> Self {
        Self {
            config: Box::new(config),
        }
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
            let config = (self.config)();
            open.sort_by_key(|r| (!r.breaching(at), !r.urgent, r.opened_at, r.id));
            let items = open
                .iter()
                .map(|r| {
                    let customer = config
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
                        link: Some(super::thread_link(&config, &r.channel, &r.thread_ts)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::support::NewRequest;
    use chrono::{DateTime, Duration, Utc};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[tokio::test]
    async fn open_requests_come_breaching_first_and_incidents_with_their_paging_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/wk.db", dir.path().display()))
            .await
            .unwrap();
        let config = Arc::new(crate::config::parse("x", crate::config::BUNDLED_EXAMPLE).unwrap());
        let opened = at("2026-03-02T09:00:00Z");
        let mut work = Work::new(store.clone(), opened);
        let tx = work.tx().await.unwrap();
        for (ts, text, due) in [
            ("1.000001", "calm question", opened + Duration::hours(5)),
            (
                "1.000002",
                "nobody answered this",
                opened + Duration::minutes(30),
            ),
        ] {
            db::insert_request(
                tx.conn(),
                &NewRequest {
                    tenant: "acme".into(),
                    channel: "C0ACME".into(),
                    thread_ts: ts.into(),
                    opened_by: "U9EXT".into(),
                    text: text.into(),
                    first_response_due: Some(due),
                    resolution_due: None,
                },
                opened,
            )
            .await
            .unwrap();
        }
        db::open_incident(tx.conn(), "group", "Disk full", "critical", opened)
            .await
            .unwrap();
        work.commit().await.unwrap();

        let change = ShiftChange {
            rotation: "ops-duty".into(),
            shift_started: opened,
            at: opened + Duration::hours(1),
            outgoing: vec!["U0ANNA".into()],
            incoming: vec!["U0BEN".into()],
        };
        let mut work = Work::new(store.clone(), change.at);
        let requests = OpenRequests::new(move || config.clone())
            .collect(&mut work, &change)
            .await
            .unwrap()
            .expect("a section");
        assert_eq!(requests.items.len(), 2);
        assert!(requests.items[0].attention, "the breaching one first");
        assert!(requests.items[0].text.contains("nobody answered this"));
        assert!(requests.items[0].text.contains("SLA breached"));
        assert!(!requests.items[1].attention);
        assert!(
            requests.items[1]
                .link
                .as_deref()
                .unwrap()
                .contains("/archives/C0ACME/p1000001")
        );
        let incidents = ActiveIncidents
            .collect(&mut work, &change)
            .await
            .unwrap()
            .expect("a section");
        assert!(
            incidents.items[0].text.contains("INC-1"),
            "{:?}",
            incidents.items
        );
        assert!(incidents.items[0].text.contains("Disk full"));
        drop(work);
        store.close().await;
    }

    #[tokio::test]
    async fn nothing_open_leaves_the_sections_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/wk.db", dir.path().display()))
            .await
            .unwrap();
        let config = Arc::new(crate::config::parse("x", crate::config::BUNDLED_EXAMPLE).unwrap());
        let now = at("2026-03-02T09:00:00Z");
        let change = ShiftChange {
            rotation: "ops-duty".into(),
            shift_started: now,
            at: now,
            outgoing: vec![],
            incoming: vec![],
        };
        let mut work = Work::new(store.clone(), now);
        assert!(
            OpenRequests::new(move || config.clone())
                .collect(&mut work, &change)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            ActiveIncidents
                .collect(&mut work, &change)
                .await
                .unwrap()
                .is_none()
        );
    }
}
