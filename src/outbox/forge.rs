//! Forge effects — open an issue, open a pull request — and the sink that
//! delivers them through the configured [`Forge`]s.
//!
//! Exactly once: every issue body ends with a marker naming its outbox key
//! (`<!-- watchkeeper:{key} -->`, invisible when rendered). When an attempt's
//! fate is in doubt (its worker died, or the forge timed out), the sink first
//! looks for an issue carrying that marker and records it instead of opening
//! another. Pull requests need no marker: a forge opens one per branch, and
//! opening it again returns the first.

use super::{Delivery, Effect, Sink};
use crate::forge::{Forge, ForgeError, NewIssue, NewPullRequest};
use crate::store::outbox::OutboxItem;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// One thing to do on a forge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ForgeEffect {
    /// Open an issue.
    OpenIssue {
        /// The configured forge's name (`github`, `local`…).
        forge: String,
        /// The repository, `owner/name`.
        repo: String,
        /// The issue.
        issue: NewIssue,
    },
    /// Open a pull request with files on a new branch.
    OpenPullRequest {
        /// The configured forge's name.
        forge: String,
        /// The repository, `owner/name`.
        repo: String,
        /// The pull request.
        pr: NewPullRequest,
    },
}

impl ForgeEffect {
    fn repo(&self) -> &str {
        match self {
            ForgeEffect::OpenIssue { repo, .. } | ForgeEffect::OpenPullRequest { repo, .. } => repo,
        }
    }

    fn forge(&self) -> &str {
        match self {
            ForgeEffect::OpenIssue { forge, .. } | ForgeEffect::OpenPullRequest { forge, .. } => {
                forge
            }
        }
    }
}

impl Effect for ForgeEffect {
    const SINK: &'static str = "forge";

    fn lane(&self) -> String {
        format!("forge:{}", self.repo())
    }
}

/// The marker that ends the body of the issue opened for outbox item `key`.
pub fn issue_marker(key: &str) -> String {
    // `--` would end the HTML comment early.
    format!("<!-- watchkeeper:{} -->", key.replace("--", "-\u{2010}"))
}

/// How long to wait when a forge rate limits us without saying for how long.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Delivers [`ForgeEffect`]s through the forges it knows by name.
pub struct ForgeSink {
    forges: HashMap<String, Arc<dyn Forge>>,
}

impl ForgeSink {
    /// A sink over `forges`, keyed by the names effects use.
    pub fn new(forges: HashMap<String, Arc<dyn Forge>>) -> Self {
        Self { forges }
    }

    async fn open_issue(
        &self,
        item: &OutboxItem,
        forge: &dyn Forge,
        repo: &str,
        issue: &NewIssue,
    ) -> Delivery {
        let marker = issue_marker(&item.key);
        if item.in_doubt {
            match forge.find_issue(repo, &marker).await {
                Ok(Some(found)) => {
                    tracing::info!(
                        key = item.key,
                        number = found.number,
                        "in-doubt issue was already opened; not opening another"
                    );
                    return Delivery::Done(json!({ "number": found.number, "url": found.url }));
                }
                Ok(None) => {}
                Err(err) => return failure(err, true),
            }
        }
        let mut marked = issue.clone();
        marked.body = format!("{}\n\n{marker}\n", issue.body.trim_end());
        match forge.open_issue(repo, &marked).await {
            Ok(opened) => Delivery::Done(json!({ "number": opened.number, "url": opened.url })),
            Err(err) => failure(err, true),
        }
    }
}

/// Sorts a forge failure into what the outbox should do; `ambiguous` when
/// the call may have taken effect although it failed.
fn failure(err: ForgeError, ambiguous: bool) -> Delivery {
    match err {
        ForgeError::RateLimited { retry_after } => Delivery::Retry {
            after: Some(retry_after.unwrap_or(RATE_LIMIT_WAIT)),
            in_doubt: false,
            reason: err.to_string(),
        },
        err if err.is_permanent() => Delivery::Failed(err.to_string()),
        err => Delivery::Retry {
            after: None,
            in_doubt: ambiguous,
            reason: err.to_string(),
        },
    }
}

impl Sink for ForgeSink {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let effect: ForgeEffect = match serde_json::from_value(item.payload.clone()) {
                Ok(effect) => effect,
                Err(err) => return Delivery::Failed(format!("unreadable forge effect: {err}")),
            };
            let Some(forge) = self.forges.get(effect.forge()) else {
                return Delivery::Failed(format!(
                    "no forge named `{}` is configured",
                    effect.forge()
                ));
            };
            match &effect {
                ForgeEffect::OpenIssue { repo, issue, .. } => {
                    self.open_issue(item, forge.as_ref(), repo, issue).await
                }
                ForgeEffect::OpenPullRequest { repo, pr, .. } => {
                    match forge.open_pull_request(repo, pr).await {
                        Ok(pull) => Delivery::Done(json!({
                            "number": pull.number,
                            "url": pull.url,
                            "branch": pull.branch,
                            "notes": pull.notes,
                        })),
                        Err(err) => failure(err, true),
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_run_in_one_lane_per_repository() {
        let effect = ForgeEffect::OpenIssue {
            forge: "local".into(),
            repo: "acme-platform/postmortems".into(),
            issue: NewIssue::default(),
        };
        assert_eq!(effect.lane(), "forge:acme-platform/postmortems");
        assert_eq!(ForgeEffect::SINK, "forge");
        let json = serde_json::to_value(&effect).unwrap();
        assert_eq!(json["op"], "open_issue");
        assert_eq!(serde_json::from_value::<ForgeEffect>(json).unwrap(), effect);
    }

    #[test]
    fn markers_stay_one_html_comment() {
        assert_eq!(issue_marker("pm:42"), "<!-- watchkeeper:pm:42 -->");
        let marker = issue_marker("a--b-->");
        assert_eq!(marker.matches("--").count(), 2, "{marker}");
    }

    #[test]
    fn failures_are_sorted() {
        assert!(matches!(
            failure(
                ForgeError::RateLimited {
                    retry_after: Some(Duration::from_secs(5))
                },
                true
            ),
            Delivery::Retry { after: Some(after), in_doubt: false, .. } if after == Duration::from_secs(5)
        ));
        assert!(matches!(
            failure(ForgeError::RateLimited { retry_after: None }, true),
            Delivery::Retry { after: Some(after), .. } if after == RATE_LIMIT_WAIT
        ));
        assert!(matches!(
            failure(ForgeError::Transient("503".into()), true),
            Delivery::Retry {
                after: None,
                in_doubt: true,
                ..
            }
        ));
        assert!(matches!(
            failure(ForgeError::Unauthorized, true),
            Delivery::Failed(_)
        ));
    }
}
