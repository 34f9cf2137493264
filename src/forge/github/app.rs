//! GitHub App authentication: a JWT signed with the App's RSA key (RS256,
//! through `ring`, which the TLS stack already brings) is exchanged for an
//! installation token of the repository's owner
//! (`GET /repos/{owner}/{repo}/installation`, then
//! `POST /app/installations/{id}/access_tokens`). Tokens last an hour; one
//! client per owner is cached and replaced five minutes before its token
//! expires.

use super::{ForgeError, client, github_error};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use octocrab::Octocrab;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use std::collections::HashMap;

/// A token is replaced this long before it expires.
const REFRESH_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// The App's key, and one installation client per owner.
pub(super) struct Installations {
    api_url: String,
    app_id: u64,
    key: RsaKeyPair,
    rng: SystemRandom,
    cache: tokio::sync::Mutex<HashMap<String, Cached>>,
}

/// An owner's client, its installation token and when the token expires.
type Cached = (Octocrab, String, DateTime<Utc>);

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: Option<DateTime<Utc>>,
}

impl Installations {
    /// Reads the App's private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    pub(super) fn new(api_url: &str, app_id: u64, pem: &str) -> Result<Self, ForgeError> {
        Ok(Self {
            api_url: api_url.to_string(),
            app_id,
            key: parse_key(pem)?,
            rng: SystemRandom::new(),
            cache: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The App's JWT at `now`: valid from a minute ago (clock drift) for nine minutes.
    pub(super) fn jwt(&self, now: DateTime<Utc>) -> Result<String, ForgeError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": now.timestamp() - 60,
            "exp": now.timestamp() + 540,
            "iss": self.app_id.to_string(),
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let message = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                message.as_bytes(),
                &mut signature,
            )
            .map_err(|_| ForgeError::Invalid("could not sign the GitHub App's JWT".into()))?;
        Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// A client holding a valid installation token for `owner`.
    pub(super) async fn client(&self, owner: &str, name: &str) -> Result<Octocrab, ForgeError> {
        self.credentials(owner, name).await.map(|(crab, _)| crab)
    }

    /// A client and its valid installation token for `owner` (the token, for
    /// clients of other GitHub endpoints such as GraphQL).
    pub(super) async fn credentials(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<(Octocrab, String), ForgeError> {
        let now = Utc::now();
        let mut cache = self.cache.lock().await;
        if let Some((crab, token, expires)) = cache.get(owner)
            && *expires - REFRESH_MARGIN > now
        {
            return Ok((crab.clone(), token.clone()));
        }
        let app = client(&self.api_url, &self.jwt(now)?)?;
        let what = format!("the GitHub App's installation on {owner}/{name}");
        let installation: Installation = app
            .get(format!("/repos/{owner}/{name}/installation"), None::<&()>)
            .await
            .map_err(|e| github_error(e, &what))?;
        let token: AccessToken = app
            .post(
                format!("/app/installations/{}/access_tokens", installation.id),
                None::<&()>,
            )
            .await
            .map_err(|e| github_error(e, &what))?;
        let expires = token
            .expires_at
            .unwrap_or(now + chrono::Duration::minutes(55));
        let crab = client(&self.api_url, &token.token)?;
        cache.insert(
            owner.to_string(),
            (crab.clone(), token.token.clone(), expires),
        );
        Ok((crab, token.token))
    }
}

/// An RSA private key from PEM text.
fn parse_key(pem: &str) -> Result<RsaKeyPair, ForgeError> {
    let invalid = |why: &str| {
        ForgeError::Invalid(format!(
            "the GitHub App private key {why}; use the .pem file GitHub generated"
        ))
    };
    let pem = pem.trim();
    let (label, rest) = pem
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .ok_or_else(|| invalid("is not PEM"))?;
    let end = format!("-----END {label}-----");
    let body = rest
        .strip_suffix(end.as_str())
        .ok_or_else(|| invalid("is not PEM"))?;
    let packed: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD
        .decode(packed)
        .map_err(|_| invalid("is not valid base64"))?;
    let key = match label {
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        _ => return Err(invalid("is not an RSA private key")),
    };
    key.map_err(|e| invalid(&format!("was refused ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_are_not_rsa_pem_are_refused_with_a_reason() {
        for (pem, why) in [
            ("", "is not PEM"),
            ("hello", "is not PEM"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\n!!\n-----END RSA PRIVATE KEY-----",
                "is not valid base64",
            ),
            (
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
                "is not an RSA private key",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
                "was refused",
            ),
        ] {
            let err = parse_key(pem)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(why), "{pem:?}: {err}");
        }
    }
}
