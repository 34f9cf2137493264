//! GitHub webhooks: verifying a delivery and reading the few events
//! Watchkeeper follows (an issue closed, a pull request merged).
//!
//! GitHub signs each delivery with the webhook's secret: the
//! `X-Hub-Signature-256` header is `sha256=` and the hex HMAC-SHA256 of the raw
//! body. It is checked, in constant time, before a byte of the body is parsed;
//! the event's name comes from the `X-GitHub-Event` header.

use super::{IssueState, PullState};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    /// The header is not `sha256=<hex>`.
    #[error("malformed X-Hub-Signature-256 header")]
    Malformed,
    /// The signature does not match the body.
    #[error("signature does not match")]
    Mismatch,
    /// The body is not the JSON the event should carry.
    #[error("unreadable webhook payload: {0}")]
    Payload(String),
}

/// An event Watchkeeper reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// GitHub checking the webhook works.
    Ping,
    /// Something happened to an issue.
    Issue {
        /// `opened`, `closed`, `reopened`, `labeled`…
        action: String,
        /// The repository's `owner/name`.
        repo: String,
        /// The issue's number.
        number: u64,
        /// Its state after the action.
        state: IssueState,
    },
    /// Something happened to a pull request.
    PullRequest {
        /// `opened`, `closed`, `synchronize`…
        action: String,
        /// The repository's `owner/name`.
        repo: String,
        /// The pull request's number.
        number: u64,
        /// Whether it is merged.
        merged: bool,
        /// Its state after the action (`closed` and merged is [`PullState::Merged`]).
        state: PullState,
    },
    /// Any other event, by name.
    Other(String),
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` (for tests and tools).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

fn mac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac
}

/// Checks a delivery's `X-Hub-Signature-256` header against its raw body.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::Missing)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(WebhookError::Malformed)?;
    let digest = crate::signatures::lowercase_hex(hex_digest).ok_or(WebhookError::Malformed)?;
    mac(secret, body)
        .verify_slice(&digest)
        .map_err(|_| WebhookError::Mismatch)
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct IssueBody {
    number: u64,
    state: IssueState,
}

#[derive(Deserialize)]
struct IssuePayload {
    action: String,
    issue: IssueBody,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullBody {
    number: u64,
    state: IssueState,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merged_at: Option<String>,
}

#[derive(Deserialize)]
struct PullPayload {
    action: String,
    pull_request: PullBody,
    repository: Repository,
}

fn read<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WebhookError> {
    serde_json::from_slice(body)
        .map_err(|e| WebhookError::Payload(crate::chat::slack::payload::reason_of(&e)))
}

/// Reads a verified delivery of event `event` (the `X-GitHub-Event` header).
pub fn parse_event(event: &str, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    match event {
        "ping" => Ok(WebhookEvent::Ping),
        "issues" => {
            let payload: IssuePayload = read(body)?;
            Ok(WebhookEvent::Issue {
                action: payload.action,
                repo: payload.repository.full_name,
                number: payload.issue.number,
                state: payload.issue.state,
            })
        }
        "pull_request" => {
            let payload: PullPayload = read(body)?;
            let pull = payload.pull_request;
            let merged = pull.merged.unwrap_or(false) || pull.merged_at.is_some();
            let state = match (merged, pull.state) {
                (true, _) => PullState::Merged,
                (false, IssueState::Open) => PullState::Open,
                (false, IssueState::Closed) => PullState::Closed,
            };
            Ok(WebhookEvent::PullRequest {
                action: payload.action,
                repo: payload.repository.full_name,
                number: pull.number,
                merged,
                state,
            })
        }
        other => Ok(WebhookEvent::Other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../shared/fixtures/github/webhooks/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const SECRET: &[u8] = b"It's a Secret to Everybody";

    #[test]
    fn githubs_documented_example_verifies() {
        // From GitHub's "Validating webhook deliveries" documentation.
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(SECRET, b"Hello, World!"), header);
        assert_eq!(
            verify_signature(SECRET, b"Hello, World!", Some(header)),
            Ok(())
        );
    }

    #[test]
    fn every_fixture_verifies_with_its_signature_and_not_a_forged_one() {
        for name in [
            "ping_webhook_event.json",
            "issues_opened_webhook_event.json",
            "pull_request_closed_webhook_event.json",
            "push_webhook_event.json",
        ] {
            let body = fixture(name);
            let good = sign(b"webhook-secret", &body);
            assert_eq!(
                verify_signature(b"webhook-secret", &body, Some(&good)),
                Ok(())
            );
            // Signed with another secret.
            let forged = sign(b"guessed-secret", &body);
            assert_eq!(
                verify_signature(b"webhook-secret", &body, Some(&forged)),
                Err(WebhookError::Mismatch),
                "{name}"
            );
            // The same digest in upper case is not what GitHub sends.
            let upper = format!("sha256={}", good["sha256=".len()..].to_uppercase());
            assert_eq!(
                verify_signature(b"webhook-secret", &body, Some(&upper)),
                Err(WebhookError::Malformed),
                "{name}"
            );
            // The body changed after signing.
            let mut tampered = body.clone();
            tampered.extend_from_slice(b" ");
            assert_eq!(
                verify_signature(b"webhook-secret", &tampered, Some(&good)),
                Err(WebhookError::Mismatch)
            );
        }
    }

    #[test]
    fn malformed_or_missing_signatures_are_refused() {
        let body = b"{}";
        assert_eq!(
            verify_signature(SECRET, body, None),
            Err(WebhookError::Missing)
        );
        let sha1 = format!("sha1={}", "0".repeat(40));
        assert_eq!(
            verify_signature(SECRET, body, Some(&sha1)),
            Err(WebhookError::Malformed)
        );
        assert_eq!(
            verify_signature(SECRET, body, Some("sha256=zz")),
            Err(WebhookError::Malformed)
        );
        assert_eq!(
            verify_signature(SECRET, body, Some("sha256=")),
            Err(WebhookError::Mismatch)
        );
        let truncated = &sign(SECRET, body)[..39]; // `sha256=` and 16 of 32 bytes
        assert_eq!(
            verify_signature(SECRET, body, Some(truncated)),
            Err(WebhookError::Mismatch)
        );
    }

    #[test]
    fn issue_events_are_read() {
        let event = parse_event("issues", &fixture("issues_opened_webhook_event.json")).unwrap();
        assert_eq!(
            event,
            WebhookEvent::Issue {
                action: "opened".into(),
                repo: "gagbo/circadian.nvim".into(),
                number: 1,
                state: IssueState::Open,
            }
        );
        let labeled = parse_event("issues", &fixture("issues_labeled_webhook_event.json")).unwrap();
        assert!(matches!(labeled, WebhookEvent::Issue { ref action, .. } if action == "labeled"));
    }

    #[test]
    fn pull_request_events_are_read() {
        let closed = parse_event(
            "pull_request",
            &fixture("pull_request_closed_webhook_event.json"),
        )
        .unwrap();
        assert_eq!(
            closed,
            WebhookEvent::PullRequest {
                action: "closed".into(),
                repo: "gagbo/ouro-closures".into(),
                number: 2,
                merged: false,
                state: PullState::Closed,
            }
        );
        for name in [
            "pull_request_opened_webhook_event.json",
            "pull_request_synchronize_webhook_event.json",
        ] {
            match parse_event("pull_request", &fixture(name)).unwrap() {
                WebhookEvent::PullRequest { state, merged, .. } => {
                    assert_eq!(state, PullState::Open, "{name}");
                    assert!(!merged);
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn merged_pull_requests_are_merged() {
        let mut body: serde_json::Value =
            serde_json::from_slice(&fixture("pull_request_closed_webhook_event.json")).unwrap();
        body["pull_request"]["merged"] = serde_json::json!(true);
        body["pull_request"]["merged_at"] = serde_json::json!("2023-02-06T20:00:00Z");
        let event = parse_event("pull_request", body.to_string().as_bytes()).unwrap();
        assert!(matches!(
            event,
            WebhookEvent::PullRequest {
                merged: true,
                state: PullState::Merged,
                ..
            }
        ));
    }

    #[test]
    fn other_events_are_named_and_ping_is_ping() {
        assert_eq!(
            parse_event("ping", &fixture("ping_webhook_event.json")).unwrap(),
            WebhookEvent::Ping
        );
        assert_eq!(
            parse_event("push", &fixture("push_webhook_event.json")).unwrap(),
            WebhookEvent::Other("push".into())
        );
        assert_eq!(
            parse_event(
                "issue_comment",
                &fixture("issue_comment_created_webhook_event.json")
            )
            .unwrap(),
            WebhookEvent::Other("issue_comment".into())
        );
        assert!(matches!(
            parse_event("issues", b"{\"action\":"),
            Err(WebhookError::Payload(_))
        ));
    }
}
