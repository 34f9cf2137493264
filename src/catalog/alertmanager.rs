//! Prometheus Alertmanager webhooks (version 4): what is firing, for which
//! component, and how bad.
//!
//! A delivery is one group: `alerts` each carry `status`, `labels`,
//! `annotations`, `startsAt`/`endsAt` (RFC 3339 with nanoseconds and any
//! offset; `endsAt` is `0001-01-01T00:00:00Z` or in the future while firing,
//! so only `status` says whether an alert is resolved) and usually a
//! `fingerprint` (older Alertmanagers send none: we derive one from the
//! labels). The component is the value of a configured label (`service` by
//! default); the severity label decides red or amber.

use super::health::Rag;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Why a delivery could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerError {
    /// Not the JSON Alertmanager sends.
    #[error("not an Alertmanager webhook payload: {0}")]
    Payload(String),
    /// A version this build does not read.
    #[error(
        "Alertmanager webhook version `{}` is not supported; version 4 is",
        shown(.0)
    )]
    Version(String),
}

/// A value from the payload as it may be shown: control characters escaped,
/// at most 40 characters.
fn shown(value: &str) -> String {
    value
        .chars()
        .take(40)
        .flat_map(char::escape_debug)
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    version: String,
    #[serde(default)]
    group_key: String,
    #[serde(default)]
    truncated_alerts: u64,
    alerts: Vec<RawAlert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<String>,
    #[serde(default)]
    generator_url: String,
    #[serde(default)]
    fingerprint: Option<String>,
}

/// One alert of a delivery, mapped to a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Stable identity of the alert (its fingerprint).
    pub key: String,
    /// The component it is about, if the configured label is present.
    pub component: Option<String>,
    /// `alertname`.
    pub name: String,
    /// Firing (true) or resolved.
    pub firing: bool,
    /// Red or amber, from the severity label.
    pub rag: Rag,
    /// The severity label as sent (`critical`, `warning`…).
    pub severity: String,
    /// `summary` or `description` annotation, else the alert name.
    pub summary: String,
    /// When it started firing.
    pub starts_at: Option<DateTime<Utc>>,
    /// Where it came from (Prometheus graph link), if absolute.
    pub link: Option<String>,
    /// Its labels, as sent (playbook alert triggers read them).
    pub labels: BTreeMap<String, String>,
}

/// A parsed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Alertmanager's group key.
    pub group_key: String,
    /// The alerts in the group.
    pub alerts: Vec<Alert>,
    /// How many alerts Alertmanager left out of this delivery.
    pub truncated: u64,
}

/// How alerts map onto the catalog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertmanagerConfig {
    /// The label naming the component (`service`, `app`…).
    pub component_label: String,
    /// Severity label values that make a component red; others make it amber.
    pub red_severities: Vec<String>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            component_label: "service".into(),
            red_severities: vec!["critical".into(), "page".into(), "error".into()],
        }
    }
}

/// A fingerprint from the labels, for Alertmanagers that send none (FNV-1a
/// over the sorted `name=value` pairs, hex).
fn fingerprint_of(labels: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, value) in labels {
        for byte in name.bytes().chain([b'=']).chain(value.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Reads one webhook body.
pub fn parse(body: &[u8], config: &AlertmanagerConfig) -> Result<Delivery, AlertmanagerError> {
    let payload: Payload = serde_json::from_slice(body)
        .map_err(|e| AlertmanagerError::Payload(crate::chat::slack::payload::reason_of(&e)))?;
    if payload.version != "4" {
        return Err(AlertmanagerError::Version(payload.version));
    }
    let alerts = payload
        .alerts
        .into_iter()
        .map(|raw| {
            let severity = raw
                .labels
                .get("severity")
                .cloned()
                .unwrap_or_else(|| "none".into());
            let rag = if config
                .red_severities
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&severity))
            {
                Rag::Red
            } else {
                Rag::Amber
            };
            let name = raw
                .labels
                .get("alertname")
                .cloned()
                .unwrap_or_else(|| "unnamed alert".into());
            let summary = raw
                .annotations
                .get("summary")
                .or_else(|| raw.annotations.get("description"))
                .or_else(|| raw.labels.get("summary"))
                .cloned()
                .unwrap_or_else(|| name.clone());
            // A relative generator URL points into a Prometheus whose address
            // we do not know: no link rather than a broken one.
            let link = (raw.generator_url.starts_with("http://")
                || raw.generator_url.starts_with("https://"))
            .then(|| raw.generator_url.clone());
            Alert {
                key: raw
                    .fingerprint
                    .filter(|f| !f.is_empty())
                    .unwrap_or_else(|| fingerprint_of(&raw.labels)),
                component: raw.labels.get(&config.component_label).cloned(),
                name,
                firing: raw.status == "firing",
                rag,
                severity,
                summary,
                starts_at: raw
                    .starts_at
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.to_utc()),
                link,
                labels: raw.labels.clone(),
            }
        })
        .collect();
    Ok(Delivery {
        group_key: payload.group_key,
        alerts,
        truncated: payload.truncated_alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let path = format!("{}/../shared/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_captured_payload_reads() {
        let config = AlertmanagerConfig::default();
        for path in [
            "alertmanager/v4-probe-failure-firing.json",
            "alertmanager/v4-test-no-fingerprint.json",
            "real/alertmanager/v4_firing_demoalert_captured_am0.21_raw.json",
            "real/alertmanager/v4_firing_endsat_in_future_tz_offset.json",
            "real/alertmanager/v4_firing_icmp_three_alerts_no_fingerprint.json",
            "real/alertmanager/v4_resolved_tz_offset.json",
        ] {
            let delivery = parse(&fixture(path), &config).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!delivery.alerts.is_empty(), "{path}");
            for alert in &delivery.alerts {
                assert!(!alert.key.is_empty(), "{path}");
            }
        }
    }

    #[test]
    fn status_not_ends_at_decides_firing() {
        let config = AlertmanagerConfig::default();
        let firing = parse(
            &fixture("real/alertmanager/v4_firing_endsat_in_future_tz_offset.json"),
            &config,
        )
        .unwrap();
        assert!(firing.alerts.iter().all(|a| a.firing));
        let resolved = parse(
            &fixture("real/alertmanager/v4_resolved_tz_offset.json"),
            &config,
        )
        .unwrap();
        assert!(resolved.alerts.iter().all(|a| !a.firing));
        assert_eq!(
            firing.alerts[0].key, resolved.alerts[0].key,
            "the same alert keeps its identity from firing to resolved"
        );
    }

    #[test]
    fn three_alerts_without_fingerprints_stay_distinct() {
        let delivery = parse(
            &fixture("real/alertmanager/v4_firing_icmp_three_alerts_no_fingerprint.json"),
            &AlertmanagerConfig::default(),
        )
        .unwrap();
        let mut keys: Vec<_> = delivery.alerts.iter().map(|a| a.key.clone()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        let config = AlertmanagerConfig::default();
        assert!(parse(b"{", &config).is_err());
        assert!(parse(br#"{"version":"3","alerts":[]}"#, &config).is_err());
    }
}
