//! The effects a run's actions have beyond Slack and forges — an HTTP call,
//! a Kubernetes change — and the sinks that deliver them from the outbox.
//!
//! HTTP: secrets are read from the environment at the moment of the call and
//! exist only in the request; the response and any error are redacted before
//! they are recorded or shown. A call whose fate is in doubt (the worker died
//! after sending, or the server timed out) is not repeated: HTTP endpoints
//! are not idempotent in general, so the run fails with a sentence saying to
//! check and request again. Connection failures (nothing was sent), 429 and
//! 503 are retried.
//!
//! Kubernetes: through kube, to the clusters of `catalog.clusters`. Both
//! changes are idempotent — a merge patch of `spec.replicas` on the `scale`
//! subresource, and of the pod template's `kubectl.kubernetes.io/restartedAt`
//! annotation with the time the step started (what `kubectl rollout restart`
//! does) — so an attempt in doubt is simply repeated: the second patch
//! changes nothing and starts no second rollout.

use super::plan::{HttpStep, KubeStep};
use super::render;
use crate::outbox::{Delivery, Effect, Sink};
use crate::store::outbox::OutboxItem;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// Call an HTTP endpoint for a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpEffect {
    /// The run.
    pub run: i64,
    /// The request, secrets as stand-ins.
    pub request: HttpStep,
    /// The environment variables it may use.
    pub secrets: Vec<String>,
}

impl Effect for HttpEffect {
    const SINK: &'static str = "http";

    fn lane(&self) -> String {
        format!("playbook-run:{}", self.run)
    }
}

/// Change a workload through the Kubernetes API for a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeEffect {
    /// The run.
    pub run: i64,
    /// The change.
    pub change: KubeStep,
    /// When the step started: the restart stamp, the same on every attempt.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Effect for KubeEffect {
    const SINK: &'static str = "kube";

    fn lane(&self) -> String {
        format!("kube:{}", self.change.cluster)
    }
}

/// Where secret values come from (the process environment in production).
pub type SecretSource = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Delivers [`HttpEffect`]s.
pub struct HttpSink {
    client: reqwest::Client,
    secrets: Box<SecretSource>,
}

impl HttpSink {
    /// A sink reading secrets with `secrets`.
    pub fn new(secrets: Box<SecretSource>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, secrets })
    }

    /// A sink reading secrets from the process environment.
    pub fn from_env() -> Result<Self, reqwest::Error> {
        Self::new(Box::new(|name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        }))
    }

    async fn call(&self, effect: &HttpEffect, in_doubt: bool) -> Delivery {
        if in_doubt {
            return Delivery::Failed(
                "the call may or may not have reached the endpoint (Watchkeeper stopped mid-call); check the endpoint and request the run again".into(),
            );
        }
        let mut values = Vec::new();
        let mut missing = Vec::new();
        let mut fill = |text: &str| {
            render::fill_secrets(text, |name| {
                if !effect.secrets.iter().any(|s| s == name) {
                    missing.push(name.to_string());
                    return String::new();
                }
                match (self.secrets)(name) {
                    Some(value) => {
                        values.push(value.clone());
                        value
                    }
                    None => {
                        missing.push(name.to_string());
                        String::new()
                    }
                }
            })
        };
        let request = &effect.request;
        let url = fill(&request.url);
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), fill(v)))
            .collect();
        let body = request.body.as_deref().map(&mut fill);
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Delivery::Failed(format!(
                "the secret(s) {} are not set in Watchkeeper's environment",
                missing.join(", ")
            ));
        }
        let redact = |text: &str| render::redact(text, &values);
        let Ok(method) = reqwest::Method::from_bytes(request.method.as_bytes()) else {
            return Delivery::Failed(format!("`{}` is not an HTTP method", request.method));
        };
        let mut builder = self.client.request(method, &url);
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let shown_url = redact(&render::shown(&request.url));
        let response = match builder.send().await {
            Ok(response) => response,
            Err(err) if err.is_connect() => {
                return Delivery::Retry {
                    after: None,
                    in_doubt: false,
                    reason: redact(&format!("cannot connect to {shown_url}: {err}")),
                };
            }
            Err(err) => {
                return Delivery::Failed(redact(&format!(
                    "{} {shown_url} did not answer ({err}); it may or may not have acted — check it and request the run again",
                    request.method
                )));
            }
        };
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let excerpt: String = redact(&text).chars().take(300).collect();
        let ok = if request.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            request.expect_status.contains(&status)
        };
        if ok {
            return Delivery::Done(json!({ "status": status, "body": excerpt }));
        }
        if status == 429 || status == 503 {
            return Delivery::Retry {
                after: Some(Duration::from_secs(30)),
                in_doubt: false,
                reason: format!("{shown_url} answered {status}"),
            };
        }
        Delivery::Failed(format!(
            "{} {shown_url} answered {status}: {excerpt}",
            request.method
        ))
    }
}

impl Sink for HttpSink {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            match serde_json::from_value::<HttpEffect>(item.payload.clone()) {
                Ok(effect) => self.call(&effect, item.in_doubt).await,
                Err(err) => Delivery::Failed(format!("unreadable HTTP effect: {err}")),
            }
        })
    }
}

/// Delivers [`KubeEffect`]s to the configured clusters.
pub struct KubeSink {
    clusters: Vec<crate::catalog::kubernetes::config::ClusterConfig>,
    clients: tokio::sync::Mutex<std::collections::HashMap<String, kube::Client>>,
}

impl KubeSink {
    /// A sink for `clusters` (connected on first use).
    pub fn new(clusters: Vec<crate::catalog::kubernetes::config::ClusterConfig>) -> Self {
        Self {
            clusters,
            clients: tokio::sync::Mutex::default(),
        }
    }

    async fn client(&self, name: &str) -> Result<kube::Client, Delivery> {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(name) {
            return Ok(client.clone());
        }
        let Some(cluster) = self.clusters.iter().find(|c| c.name == name) else {
            return Err(Delivery::Failed(format!(
                "the cluster `{name}` is not under catalog.clusters"
            )));
        };
        let client = crate::catalog::kubernetes::config::connect(cluster)
            .await
            .map_err(|e| Delivery::Failed(format!("cannot reach cluster `{name}`: {e}")))?;
        clients.insert(name.to_string(), client.clone());
        Ok(client)
    }

    async fn apply(&self, effect: &KubeEffect) -> Delivery {
        use super::model::{KubeOperation, WorkloadKind};
        use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
        use kube::api::{Api, Patch, PatchParams};
        let change = &effect.change;
        let client = match self.client(&change.cluster).await {
            Ok(client) => client,
            Err(delivery) => return delivery,
        };
        let params = PatchParams::default();
        let what = format!(
            "{} {}/{} in {}",
            match change.kind {
                WorkloadKind::Deployment => "deployment",
                WorkloadKind::Statefulset => "statefulset",
            },
            change.namespace,
            change.name,
            change.cluster
        );
        let result = match change.operation {
            KubeOperation::Scale => {
                let patch = Patch::Merge(json!({ "spec": { "replicas": change.replicas } }));
                match change.kind {
                    WorkloadKind::Deployment => {
                        Api::<Deployment>::namespaced(client, &change.namespace)
                            .patch_scale(&change.name, &params, &patch)
                            .await
                    }
                    WorkloadKind::Statefulset => {
                        Api::<StatefulSet>::namespaced(client, &change.namespace)
                            .patch_scale(&change.name, &params, &patch)
                            .await
                    }
                }
                .map(|scale| json!({ "replicas": scale.spec.and_then(|s| s.replicas) }))
            }
            KubeOperation::Restart => {
                let stamp = effect.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let patch = Patch::Merge(
                    json!({ "spec": { "template": { "metadata": { "annotations": {
                    "kubectl.kubernetes.io/restartedAt": stamp,
                    "watchkeeper.dev/playbook-run": effect.run.to_string(),
                } } } } }),
                );
                match change.kind {
                    WorkloadKind::Deployment => {
                        Api::<Deployment>::namespaced(client, &change.namespace)
                            .patch(&change.name, &params, &patch)
                            .await
                            .map(|_| ())
                    }
                    WorkloadKind::Statefulset => {
                        Api::<StatefulSet>::namespaced(client, &change.namespace)
                            .patch(&change.name, &params, &patch)
                            .await
                            .map(|_| ())
                    }
                }
                .map(|()| json!({ "restarted_at": stamp }))
            }
        };
        match result {
            Ok(result) => Delivery::Done(result),
            Err(kube::Error::Api(status)) => match status.code {
                404 => Delivery::Failed(format!("{what} does not exist")),
                401 | 403 => Delivery::Failed(format!(
                    "Kubernetes refused to change {what} ({}); check Watchkeeper's RBAC (deploy/kubernetes/base/rbac.yaml)",
                    status.message
                )),
                409 | 429 | 500..=599 => Delivery::Retry {
                    after: None,
                    in_doubt: true,
                    reason: format!(
                        "Kubernetes answered {} for {what}: {}",
                        status.code, status.message
                    ),
                },
                code => Delivery::Failed(format!(
                    "Kubernetes refused to change {what} ({code}): {}",
                    status.message
                )),
            },
            Err(err) => Delivery::Retry {
                after: None,
                in_doubt: true,
                reason: format!("cannot reach cluster `{}`: {err}", change.cluster),
            },
        }
    }
}

impl Sink for KubeSink {
    fn deliver<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            match serde_json::from_value::<KubeEffect>(item.payload.clone()) {
                Ok(effect) => self.apply(&effect).await,
                Err(err) => Delivery::Failed(format!("unreadable Kubernetes effect: {err}")),
            }
        })
    }
}
