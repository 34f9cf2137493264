//! The playbooks' part of a shift hand-off: requests still waiting for
//! approval (waiting longest first, those about to expire flagged), then the
//! runs that failed during the outgoing shift.

use super::cards;
use crate::oncall::handoff::{HandoffItem, HandoffSection, HandoffSectionData, ShiftChange};
use crate::store::StoreError;
use crate::store::playbook_runs::{self, Run, RunFilter, RunStatus};
use crate::work::Work;
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;

/// A pending request expiring within this long of the change needs attention.
const SOON: Duration = Duration::hours(2);

/// The `approvals` section of hand-off summaries.
pub struct PlaybookHandoff;

fn params(run: &Run) -> String {
    let pairs: Vec<String> = run
        .params
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.join(" ")
}

fn requester(run: &Run) -> String {
    if run.trigger == "person" {
        format!("Slack user {}", run.requested_by)
    } else {
        format!("Watchkeeper ({})", run.trigger)
    }
}

/// The section's items for a change at `at` of a shift that began `since`.
fn items(
    pending: &[Run],
    failed: &[Run],
    since: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Vec<HandoffItem> {
    let mut out = Vec::new();
    let mut waiting: Vec<&Run> = pending.iter().collect();
    waiting.sort_by_key(|r| (r.created_at, r.id));
    for run in waiting {
        let expires = run.expires_at.unwrap_or(at);
        out.push(HandoffItem {
            text: format!(
                "{} of {} ({}) waits for approval since {}, requested by {}; expires in {}",
                cards::label(run.id),
                run.playbook,
                params(run),
                cards::span(at - run.created_at),
                requester(run),
                cards::span(expires - at),
            ),
            link: None,
            attention: expires - at <= SOON,
        });
    }
    for run in failed
        .iter()
        .filter(|r| r.updated_at >= since && r.updated_at < at)
    {
        out.push(HandoffItem {
            text: format!(
                "{} of {} failed: {}",
                cards::label(run.id),
                run.playbook,
                run.outcome.as_deref().unwrap_or("see its thread")
            ),
            link: run.pr_url.clone(),
            attention: true,
        });
    }
    out
}

impl HandoffSection for PlaybookHandoff {
    fn name(&self) -> &'static str {
        "approvals"
    }

    fn collect<'a>(
        &'a self,
        work: &'a mut Work,
        change: &'a ShiftChange,
    ) -> BoxFuture<'a, Result<Option<HandoffSectionData>, StoreError>> {
        Box::pin(async move {
            let tx = work.tx().await?;
            let pending = playbook_runs::list(
                tx.conn(),
                &RunFilter {
                    statuses: vec![RunStatus::AwaitingApproval],
                    limit: 100,
                    ..RunFilter::default()
                },
            )
            .await?;
            let failed = playbook_runs::list(
                tx.conn(),
                &RunFilter {
                    statuses: vec![RunStatus::Failed],
                    changed_since: Some(change.shift_started),
                    limit: 100,
                    ..RunFilter::default()
                },
            )
            .await?;
            let items = items(&pending, &failed, change.shift_started, change.at);
            Ok((!items.is_empty()).then(|| HandoffSectionData {
                title: "Playbook approvals and failed runs".into(),
                items,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::playbook_runs::NewRun;

    async fn run(store: &Store, playbook: &str, at: DateTime<Utc>) -> i64 {
        let mut tx = store.begin().await.unwrap();
        let id = playbook_runs::insert(
            tx.conn(),
            &NewRun {
                playbook: playbook.into(),
                title: playbook.into(),
                params: serde_json::json!({ "version": "2.4.0" }),
                requested_by: "U0ANNA".into(),
                trigger: "person".into(),
                tenant: None,
                channel: "C0OPS".into(),
                thread_ts: None,
                approvals_needed: 1,
            },
            at,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    #[tokio::test]
    async fn waiting_longest_first_expiring_flagged_then_failures_of_the_shift() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("wk.db").display()))
            .await
            .unwrap();
        let shift: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let change = ShiftChange {
            rotation: "ops-duty".into(),
            shift_started: shift,
            at: shift + Duration::days(7),
            outgoing: vec![],
            incoming: vec![],
        };
        let h = Duration::hours;
        let old = run(&store, "scale-node-pool", change.at - h(20)).await;
        let new = run(&store, "bump-chart", change.at - h(1)).await;
        let before_shift = run(&store, "rotate-certificate", shift - h(5)).await;
        let during_shift = run(&store, "restart-workload", shift + h(30)).await;
        let mut tx = store.begin().await.unwrap();
        let plan = serde_json::json!({ "steps": [] });
        // The older request expires in an hour, the newer in a day.
        playbook_runs::set_plan(tx.conn(), old, &plan, change.at + h(1), change.at - h(20))
            .await
            .unwrap();
        playbook_runs::set_plan(tx.conn(), new, &plan, change.at + h(23), change.at - h(1))
            .await
            .unwrap();
        for (id, when) in [(before_shift, shift - h(4)), (during_shift, shift + h(31))] {
            playbook_runs::transition(
                tx.conn(),
                id,
                &[RunStatus::Requested],
                RunStatus::Failed,
                Some("step 1 (http) failed: 500"),
                when,
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();

        let mut work = Work::new(store.clone(), change.at);
        let section = PlaybookHandoff
            .collect(&mut work, &change)
            .await
            .unwrap()
            .expect("something to say");
        let lines: Vec<(&str, bool)> = section
            .items
            .iter()
            .map(|i| (i.text.as_str(), i.attention))
            .collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(
            lines[0]
                .0
                .starts_with(&format!("run #{old} of scale-node-pool")),
            "{lines:#?}"
        );
        assert!(
            lines[0].0.contains("since 20h") && lines[0].0.contains("expires in 1h"),
            "{lines:#?}"
        );
        assert!(lines[0].1, "about to expire");
        assert!(
            lines[1].0.starts_with(&format!("run #{new} of bump-chart")) && !lines[1].1,
            "{lines:#?}"
        );
        assert_eq!(
            lines[2],
            (
                format!(
                    "run #{during_shift} of restart-workload failed: step 1 (http) failed: 500"
                )
                .as_str(),
                true
            )
        );
        work.commit().await.unwrap();

        // Nothing pending, nothing failed: no section.
        let quiet = ShiftChange {
            shift_started: change.at + h(100),
            at: change.at + h(101),
            ..change
        };
        let mut tx = store.begin().await.unwrap();
        for id in [old, new] {
            playbook_runs::transition(
                tx.conn(),
                id,
                &[RunStatus::AwaitingApproval],
                RunStatus::Expired,
                None,
                quiet.at,
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let mut work = Work::new(store.clone(), quiet.at);
        assert!(
            PlaybookHandoff
                .collect(&mut work, &quiet)
                .await
                .unwrap()
                .is_none()
        );
        store.close().await;
    }
}
