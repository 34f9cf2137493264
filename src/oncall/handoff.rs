//! What other jobs contribute to a shift hand-off.
//!
//! At every shift change the on-call job builds a summary for the outgoing
//! and incoming engineers. It does not read other jobs' tables: each job that
//! has something to say implements [`HandoffSection`] in its own folder, and
//! `app.rs` registers it. A section reads inside the hand-off timer's
//! [`Work`], so what it reports is consistent with the moment of the change.

use crate::ids::UserId;
use crate::store::StoreError;
use crate::work::Work;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// The shift change a hand-off is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftChange {
    /// The rotation, as named in config (`ops-duty`).
    pub rotation: String,
    /// When the outgoing shift began (the window "during the shift" covers).
    pub shift_started: DateTime<Utc>,
    /// The moment of the change.
    pub at: DateTime<Utc>,
    /// Who was on call until `at` (empty when nobody was).
    pub outgoing: Vec<UserId>,
    /// Who is on call from `at` (empty when nobody is: announced loudly).
    pub incoming: Vec<UserId>,
}

/// One line of a section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffItem {
    /// What it is, in plain text (escaped for mrkdwn when rendered).
    pub text: String,
    /// Where to read more (a Slack permalink, a pull request), if anywhere.
    pub link: Option<String>,
    /// Needs attention first (a breaching request, a red component).
    pub attention: bool,
}

/// A titled part of the summary; items come in the order they should be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffSectionData {
    /// Heading, e.g. "Open requests".
    pub title: String,
    /// Its lines, most urgent first.
    pub items: Vec<HandoffItem>,
}

/// A job's part of every hand-off summary.
pub trait HandoffSection: Send + Sync {
    /// A stable name, for logs and ordering (`requests`, `incidents`,
    /// `approvals`, `changes`).
    fn name(&self) -> &'static str;

    /// What this job has to say about `change`; `None` when nothing (the
    /// section is then left out of the summary).
    fn collect<'a>(
        &'a self,
        work: &'a mut Work,
        change: &'a ShiftChange,
    ) -> BoxFuture<'a, Result<Option<HandoffSectionData>, StoreError>>;
}

/// The order sections are read in; sections with other names follow, by name.
const ORDER: [&str; 4] = ["requests", "incidents", "approvals", "changes"];

fn rank(name: &str) -> (usize, &str) {
    (
        ORDER.iter().position(|n| *n == name).unwrap_or(ORDER.len()),
        name,
    )
}

/// Asks every section what it has to say about `change`, in the fixed order
/// (open requests, incidents, approvals, changes, then any other by name);
/// sections with nothing to say are left out.
pub async fn collect(
    sections: &[std::sync::Arc<dyn HandoffSection>],
    work: &mut Work,
    change: &ShiftChange,
) -> Result<Vec<HandoffSectionData>, StoreError> {
    let mut ordered: Vec<&std::sync::Arc<dyn HandoffSection>> = sections.iter().collect();
    ordered.sort_by_key(|s| rank(s.name()));
    let mut out = Vec::new();
    for section in ordered {
        if let Some(data) = section.collect(work, change).await? {
            out.push(data);
        }
    }
    Ok(out)
}
