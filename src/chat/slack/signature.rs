//! Slack request signing (v0): HMAC-SHA256 over `v0:{timestamp}:{raw body}`.
//!
//! Checked before anything in the body is parsed. The comparison is constant
//! time, and requests older or newer than five minutes are refused so a
//! captured request cannot be replayed.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// How far a request's timestamp may be from now, in seconds.
pub const MAX_SKEW_SECS: i64 = 300;

/// The app's signing secret. Never printed, not even by `Debug`.
#[derive(Clone)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// Wraps the secret from `SLACK_SIGNING_SECRET`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// Computes the `X-Slack-Signature` value for a body (used by tests and load tools).
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let digest = self.mac(timestamp, body).finalize().into_bytes();
        format!("v0={}", hex::encode(digest))
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"v0:");
        mac.update(timestamp.as_bytes());
        mac.update(b":");
        mac.update(body);
        mac
    }

    /// Verifies a request's signature headers against its raw body at `now` (Unix seconds).
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(SignatureError::Missing);
        };
        let sent: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::Malformed)?;
        // `abs_diff`: a timestamp near i64's ends must not overflow the check.
        if now.abs_diff(sent) > MAX_SKEW_SECS.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        let hex_digest = signature
            .trim()
            .strip_prefix("v0=")
            .ok_or(SignatureError::Malformed)?;
        let digest =
            crate::signatures::lowercase_hex(hex_digest).ok_or(SignatureError::Mismatch)?;
        self.mac(timestamp.trim(), body)
            .verify_slice(&digest)
            .map_err(|_| SignatureError::Mismatch)
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A signature header is missing.
    #[error("missing X-Slack-Signature or X-Slack-Request-Timestamp")]
    Missing,
    /// A header is not of the expected form.
    #[error("malformed signature headers")]
    Malformed,
    /// The timestamp is more than five minutes from now.
    #[error("request timestamp is too old or in the future")]
    Stale,
    /// The signature does not match the body.
    #[error("signature does not match")]
    Mismatch,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Vectors {
        vectors: Vec<Vector>,
    }

    #[derive(Deserialize)]
    struct Vector {
        id: String,
        signing_secret: String,
        timestamp: String,
        body: String,
        signature: String,
        expect: String,
    }

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../shared/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn every_published_vector_verifies_as_its_authors_expect() {
        let vectors: Vectors =
            serde_json::from_str(&fixture("real/signing/slack_signature_vectors.json")).unwrap();
        assert!(vectors.vectors.len() >= 3);
        for v in vectors.vectors {
            let secret = SigningSecret::new(&v.signing_secret);
            let sent: i64 = v.timestamp.parse().unwrap();
            // The stale vector is only stale against a clock past the window.
            let now = if v.id.contains("stale") {
                sent + 600
            } else {
                sent
            };
            let result = secret.verify(
                Some(&v.timestamp),
                Some(&v.signature),
                v.body.as_bytes(),
                now,
            );
            match v.expect.as_str() {
                "valid" => assert_eq!(result, Ok(()), "{}", v.id),
                _ => assert!(result.is_err(), "{} should be refused", v.id),
            }
        }
    }

    #[test]
    fn the_docs_example_verifies_only_within_five_minutes() {
        #[derive(Deserialize)]
        struct Example {
            signing_secret: String,
            timestamp: String,
            body: String,
            signature: String,
        }
        let ex: Example =
            serde_json::from_str(&fixture("slack/signing/slack-docs-example.json")).unwrap();
        let secret = SigningSecret::new(&ex.signing_secret);
        let ts: i64 = ex.timestamp.parse().unwrap();
        let check = |now| {
            secret.verify(
                Some(&ex.timestamp),
                Some(&ex.signature),
                ex.body.as_bytes(),
                now,
            )
        };
        assert_eq!(check(ts), Ok(()));
        // The same digest in upper case is not what Slack sends.
        let upper = format!("v0={}", ex.signature["v0=".len()..].to_uppercase());
        assert_ne!(upper, ex.signature);
        assert_eq!(
            secret.verify(Some(&ex.timestamp), Some(&upper), ex.body.as_bytes(), ts),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(check(ts + 300), Ok(()));
        assert_eq!(check(ts + 301), Err(SignatureError::Stale));
        assert_eq!(check(ts - 301), Err(SignatureError::Stale));
        assert_eq!(secret.sign(&ex.timestamp, ex.body.as_bytes()), ex.signature);
    }

    #[test]
    fn tampering_is_refused() {
        let secret = SigningSecret::new("s3cr3t");
        let sig = secret.sign("1000", b"text=hello");
        assert_eq!(
            secret.verify(Some("1000"), Some(&sig), b"text=hello", 1000),
            Ok(())
        );
        assert_eq!(
            secret.verify(Some("1000"), Some(&sig), b"text=hellO", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            SigningSecret::new("other").verify(Some("1000"), Some(&sig), b"text=hello", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            secret.verify(None, Some(&sig), b"text=hello", 1000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            secret.verify(Some("1000"), Some("v1=abc"), b"text=hello", 1000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            secret.verify(Some("1000"), Some("v0=zz"), b"text=hello", 1000),
            Err(SignatureError::Mismatch)
        );
        assert!(!format!("{secret:?}").contains("s3cr3t"));
    }
}
