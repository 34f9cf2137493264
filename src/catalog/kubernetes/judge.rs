//! What one Kubernetes object says about health, read from the status shapes
//! the API reference documents; nothing here knows the catalog or the store.
//!
//! The rule (also in `ARCHITECTURE.md`):
//!
//! | object | red | amber | green |
//! | --- | --- | --- | --- |
//! | Deployment | no replica available; `Available=False`; `ProgressDeadlineExceeded` or `ReplicaFailure` with none available | `Progressing=False/ProgressDeadlineExceeded` or `ReplicaFailure=True` while some are available; fewer available than desired outside a rollout | all desired available; a rollout in progress; scaled to zero |
//! | StatefulSet, DaemonSet | none ready/available | fewer than desired outside a rollout | all available; a rollout in progress |
//! | Pod | a bare pod (no controller) that is stuck | a pod of a workload stuck in `CrashLoopBackOff`, `ImagePullBackOff`, `ErrImagePull`, `CreateContainerConfigError`, `CreateContainerError`, `InvalidImageName`, `RunContainerError`, or `Unschedulable` | — (a pod that is fine says nothing) |
//! | Nodes (counted per component) | fewer than half `Ready` | any not `Ready`, or under memory/disk/PID pressure | all `Ready` |
//!
//! Why: red means the thing does not serve (nothing available), amber that it
//! serves with less than it should or cannot change (a stuck rollout keeps the
//! old ReplicaSet serving — the documented `Available=True` with
//! `Progressing=False`), green that it serves as declared. A normal rollout
//! is green: replicas being replaced within `maxUnavailable` is the plan,
//! not a fault. A stuck pod of a workload is amber because its workload's
//! availability already says whether the service is down.

use super::config::Mapping;
use crate::catalog::health::Rag;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Node, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::fmt;

/// The kinds watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
    /// `v1` Pod.
    Pod,
    /// `v1` Node (cluster-scoped).
    Node,
}

impl Kind {
    /// Every kind, in the order watchers start.
    pub const ALL: [Kind; 5] = [
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::Pod,
        Kind::Node,
    ];

    /// The lowercase word used in sources (`deployment`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "statefulset",
            Kind::DaemonSet => "daemonset",
            Kind::Pod => "pod",
            Kind::Node => "node",
        }
    }

    /// Whether objects of this kind live in namespaces.
    pub fn namespaced(self) -> bool {
        self != Kind::Node
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Node's state, counted with the other nodes of its component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// Its `Ready` condition is `True`.
    pub ready: bool,
    /// What is wrong, if anything (not ready, under pressure).
    pub problem: Option<String>,
}

/// What an object says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An input: a colour and why.
    Says(Rag, String),
    /// Nothing worth an input (a pod that is fine).
    Nothing,
    /// A node, counted with the others of its component.
    Node(NodeState),
}

/// The component names an object gives, from the mapping's annotation and labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// The annotation's value: when present, the only name that counts.
    pub annotation: Option<String>,
    /// The labels' values, in the mapping's order.
    pub labels: Vec<String>,
}

/// One object as seen: what it is, whose it says it is, what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace (none for nodes).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The component names it gives.
    pub names: Names,
    /// Its health.
    pub verdict: Verdict,
    /// Its rollout revision, when the kind has rollouts.
    pub revision: Option<String>,
    /// Its pod template's containers (`name=image`), for rollout texts.
    pub images: String,
}

impl Sighting {
    /// `kind/namespace/name` (`node/name` for nodes): the object part of its source.
    pub fn key(&self) -> String {
        key(self.kind, self.namespace.as_deref(), &self.name)
    }

    /// What a rollout to this revision was, for the history.
    pub fn rollout_text(&self, new_object: bool) -> String {
        let what = format!(
            "{} {}",
            self.kind,
            match &self.namespace {
                Some(ns) => format!("{ns}/{}", self.name),
                None => self.name.clone(),
            }
        );
        let revision = self.revision.as_deref().unwrap_or("?");
        let images = if self.images.is_empty() {
            String::new()
        } else {
            format!(": {}", self.images)
        };
        if new_object {
            format!("{what} created (revision {revision}){images}")
        } else {
            format!("{what} rolled out revision {revision}{images}")
        }
    }
}

/// The object part of a source.
pub fn key(kind: Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// Kubelet waiting reasons that mean a container will not run by itself.
const STUCK: [&str; 7] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

/// At most `max` characters of `text`, with an ellipsis when cut.
fn short(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn names(meta: &ObjectMeta, mapping: &Mapping) -> Names {
    let annotation = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(&mapping.annotation))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let labels = mapping
        .labels
        .iter()
        .filter_map(|label| meta.labels.as_ref()?.get(label))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    Names { annotation, labels }
}

fn images(template: Option<&PodTemplateSpec>) -> String {
    let containers: &[Container] = template
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let mut parts: Vec<String> = containers
        .iter()
        .take(3)
        .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("?")))
        .collect();
    if containers.len() > 3 {
        parts.push(format!("and {} more", containers.len() - 3));
    }
    parts.join(", ")
}

fn sighting(kind: Kind, meta: &ObjectMeta, mapping: &Mapping, verdict: Verdict) -> Sighting {
    Sighting {
        kind,
        namespace: if kind.namespaced() {
            Some(meta.namespace.clone().unwrap_or_else(|| "default".into()))
        } else {
            None
        },
        name: meta.name.clone().unwrap_or_default(),
        names: names(meta, mapping),
        verdict,
        revision: None,
        images: String::new(),
    }
}

/// A condition of any kind, as the fields every condition type shares.
struct Condition<'a> {
    type_: &'a str,
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

fn condition<'a>(conditions: &'a [Condition<'a>], type_: &str) -> Option<&'a Condition<'a>> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether a workload's controller has not caught up with its spec yet.
fn behind(meta: &ObjectMeta, observed: Option<i64>) -> bool {
    matches!((meta.generation, observed), (Some(g), Some(o)) if o < g)
}

/// Health of a Deployment.
pub fn deployment(object: &Deployment, mapping: &Mapping) -> Sighting {
    let desired = object.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = object.status.clone().unwrap_or_default();
    let available = status.available_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let conditions: Vec<Condition<'_>> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| Condition {
            type_: &c.type_,
            status: &c.status,
            reason: c.reason.as_deref().unwrap_or_default(),
            message: c.message.as_deref().unwrap_or_default(),
        })
        .collect();
    let counts = format!("{available} of {desired} available");
    let rolling = behind(&object.metadata, status.observed_generation)
        || updated < desired
        || status.replicas.unwrap_or(0) > desired;
    let verdict = if desired == 0 {
        Verdict::Says(Rag::Green, "scaled to zero".into())
    } else if let Some(c) = condition(&conditions, "Progressing")
        .filter(|c| c.status == "False" && c.reason == "ProgressDeadlineExceeded")
    {
        Verdict::Says(
            if available == 0 { Rag::Red } else { Rag::Amber },
            format!(
                "rollout stuck (ProgressDeadlineExceeded): {}; {counts}",
                short(c.message, 160)
            ),
        )
    } else if let Some(c) = condition(&conditions, "ReplicaFailure").filter(|c| c.status == "True")
    {
        Verdict::Says(
            if available == 0 { Rag::Red } else { Rag::Amber },
            format!(
                "cannot create pods ({}): {}; {counts}",
                c.reason,
                short(c.message, 160)
            ),
        )
    } else if available == 0 {
        Verdict::Says(Rag::Red, format!("no replica available ({counts})"))
    } else if let Some(c) = condition(&conditions, "Available").filter(|c| c.status == "False") {
        Verdict::Says(Rag::Red, format!("{counts}: {}", short(c.message, 160)))
    } else if rolling {
        Verdict::Says(
            Rag::Green,
            format!("rolling out: {updated} of {desired} updated, {available} available"),
        )
    } else if available < desired {
        Verdict::Says(Rag::Amber, counts)
    } else {
        Verdict::Says(Rag::Green, counts)
    };
    let mut seen = sighting(Kind::Deployment, &object.metadata, mapping, verdict);
    seen.revision = object
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned();
    seen.images = images(object.spec.as_ref().map(|s| &s.template));
    seen
}

/// Health of a StatefulSet.
pub fn stateful_set(object: &StatefulSet, mapping: &Mapping) -> Sighting {
    let desired = object.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = object.status.clone().unwrap_or_default();
    let available = status
        .available_replicas
        .or(status.ready_replicas)
        .unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let rolling = behind(&object.metadata, status.observed_generation)
        || matches!((&status.current_revision, &status.update_revision), (Some(c), Some(u)) if c != u)
        || updated < desired;
    let verdict = workload_verdict(desired, available, rolling, updated, "ready");
    let mut seen = sighting(Kind::StatefulSet, &object.metadata, mapping, verdict);
    seen.revision = status.update_revision.clone();
    seen.images = images(object.spec.as_ref().map(|s| &s.template));
    seen
}

/// Health of a DaemonSet.
pub fn daemon_set(object: &DaemonSet, mapping: &Mapping) -> Sighting {
    let status = object.status.clone().unwrap_or_default();
    let desired = status.desired_number_scheduled;
    let available = status.number_available.unwrap_or(0);
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let rolling = behind(&object.metadata, status.observed_generation) || updated < desired;
    let verdict = if desired == 0 {
        Verdict::Says(Rag::Green, "no node to run on".into())
    } else {
        workload_verdict(desired, available, rolling, updated, "available")
    };
    let mut seen = sighting(Kind::DaemonSet, &object.metadata, mapping, verdict);
    seen.revision = object.metadata.generation.map(|g| g.to_string());
    seen.images = images(object.spec.as_ref().map(|s| &s.template));
    seen
}

/// The StatefulSet and DaemonSet rule: none available is red; fewer than
/// desired is amber unless a rollout explains it.
fn workload_verdict(
    desired: i32,
    available: i32,
    rolling: bool,
    updated: i32,
    word: &str,
) -> Verdict {
    let counts = format!("{available} of {desired} {word}");
    if desired == 0 {
        Verdict::Says(Rag::Green, "scaled to zero".into())
    } else if available == 0 {
        Verdict::Says(Rag::Red, format!("none {word} ({counts})"))
    } else if rolling {
        Verdict::Says(
            Rag::Green,
            format!("rolling out: {updated} of {desired} updated, {available} {word}"),
        )
    } else if available < desired {
        Verdict::Says(Rag::Amber, counts)
    } else {
        Verdict::Says(Rag::Green, counts)
    }
}

fn stuck_container(status: &ContainerStatus) -> Option<String> {
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    if !STUCK.contains(&reason) {
        return None;
    }
    let detail = if reason == "CrashLoopBackOff" {
        // The kubelet's message only repeats the back-off delay; the last exit says why.
        status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| {
                format!(
                    ", last exit {}{}",
                    t.exit_code,
                    t.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default()
    } else {
        waiting
            .message
            .as_deref()
            .map(|m| format!(": {}", short(m, 160)))
            .unwrap_or_default()
    };
    Some(format!("container {} is in {reason}{detail}", status.name))
}

/// Health of a Pod: an input only while it is stuck.
pub fn pod(object: &Pod, mapping: &Mapping) -> Sighting {
    let status = object.status.clone().unwrap_or_default();
    let controlled = object
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true));
    let problem = if status.phase.as_deref() == Some("Succeeded") {
        None
    } else {
        status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .find_map(stuck_container)
            .or_else(|| {
                status
                    .conditions
                    .iter()
                    .flatten()
                    .find(|c| {
                        c.type_ == "PodScheduled"
                            && c.status == "False"
                            && c.reason.as_deref() == Some("Unschedulable")
                    })
                    .map(|c| {
                        format!(
                            "cannot be scheduled: {}",
                            short(c.message.as_deref().unwrap_or("no node fits"), 160)
                        )
                    })
            })
    };
    let verdict = match problem {
        Some(problem) => Verdict::Says(if controlled { Rag::Amber } else { Rag::Red }, problem),
        None => Verdict::Nothing,
    };
    sighting(Kind::Pod, &object.metadata, mapping, verdict)
}

/// A Node's state.
pub fn node(object: &Node, mapping: &Mapping) -> Sighting {
    let conditions = object
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ready = conditions.iter().find(|c| c.type_ == "Ready");
    let is_ready = ready.is_some_and(|c| c.status == "True");
    let mut problems = Vec::new();
    if !is_ready {
        let detail = match ready {
            None => "no Ready condition yet".to_string(),
            Some(c) if c.status == "Unknown" => format!(
                "status unknown{}",
                c.message
                    .as_deref()
                    .map(|m| format!(": {}", short(m, 120)))
                    .unwrap_or_default()
            ),
            Some(c) => format!(
                "{}{}",
                c.reason.as_deref().unwrap_or("not ready"),
                c.message
                    .as_deref()
                    .map(|m| format!(": {}", short(m, 120)))
                    .unwrap_or_default()
            ),
        };
        problems.push(format!("NotReady ({detail})"));
    }
    for c in conditions {
        if matches!(
            c.type_.as_str(),
            "MemoryPressure" | "DiskPressure" | "PIDPressure" | "NetworkUnavailable"
        ) && c.status == "True"
        {
            problems.push(c.type_.clone());
        }
    }
    let state = NodeState {
        ready: is_ready,
        problem: (!problems.is_empty()).then(|| problems.join(", ")),
    };
    sighting(Kind::Node, &object.metadata, mapping, Verdict::Node(state))
}

/// What a component's nodes say together: red when fewer than half are
/// ready, amber when any is not ready or under pressure, else green.
pub fn nodes(nodes: &[(&str, &NodeState)]) -> (Rag, String) {
    let total = nodes.len();
    let ready = nodes.iter().filter(|(_, n)| n.ready).count();
    let troubled: Vec<String> = nodes
        .iter()
        .filter_map(|(name, n)| n.problem.as_ref().map(|p| format!("{name} {p}")))
        .collect();
    let mut reason = format!("{ready} of {total} nodes ready");
    if !troubled.is_empty() {
        let shown = troubled
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        let more = troubled.len().saturating_sub(3);
        reason.push_str(&format!(": {shown}"));
        if more > 0 {
            reason.push_str(&format!(" and {more} more"));
        }
    }
    let rag = if ready * 2 < total {
        Rag::Red
    } else if !troubled.is_empty() {
        Rag::Amber
    } else {
        Rag::Green
    };
    (rag, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
    use serde::de::DeserializeOwned;

    fn fixture<T: DeserializeOwned>(name: &str) -> T {
        let path = format!(
            "{}/../shared/fixtures/real/kubernetes/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn says(s: &Sighting) -> (Rag, String) {
        match &s.verdict {
            Verdict::Says(rag, reason) => (*rag, reason.clone()),
            other => panic!("no input: {other:?}"),
        }
    }

    fn mapping() -> Mapping {
        Mapping::default()
    }

    #[test]
    fn a_rolled_out_deployment_is_green() {
        let d: Deployment = fixture("deployment_healthy_rolled_out.json");
        let s = deployment(&d, &mapping());
        assert_eq!(says(&s), (Rag::Green, "3 of 3 available".into()));
        assert_eq!(s.key(), "deployment/default/testapp");
        assert_eq!(s.images, "postgres=postgres");
    }

    #[test]
    fn a_stuck_rollout_still_serving_is_amber_with_the_deadline() {
        let d: Deployment = fixture("deployment_progress_deadline_exceeded.json");
        let s = deployment(&d, &mapping());
        let (rag, reason) = says(&s);
        assert_eq!(rag, Rag::Amber);
        assert!(
            reason.starts_with("rollout stuck (ProgressDeadlineExceeded): ReplicaSet \"guestbook-ui-75dd4d49d5\" has timed out progressing."),
            "{reason}"
        );
        assert!(reason.ends_with("1 of 1 available"), "{reason}");
        assert_eq!(s.revision.as_deref(), Some("4"));
        assert_eq!(
            s.rollout_text(false),
            "deployment default/guestbook-ui rolled out revision 4: guestbook-ui=gcr.io/heptio-images/ks-guestbook-demo:0.3"
        );
    }

    #[test]
    fn the_same_rollout_before_its_deadline_is_green_and_progressing() {
        let d: Deployment = fixture("deployment_progressing_replicaset_updated.json");
        let (rag, reason) = says(&deployment(&d, &mapping()));
        assert_eq!(rag, Rag::Green);
        assert_eq!(reason, "rolling out: 1 of 1 updated, 1 available");
    }

    #[test]
    fn a_rollout_with_nothing_available_is_red() {
        let d: Deployment = fixture("deployment_rolling_update_in_progress.json");
        let (rag, reason) = says(&deployment(&d, &mapping()));
        assert_eq!(rag, Rag::Red);
        assert_eq!(reason, "no replica available (0 of 3 available)");
    }

    #[test]
    fn a_replica_failure_from_the_docs_is_amber_with_its_message() {
        let value: serde_json::Value = fixture("deployment_status_replica_failure_docs.json");
        let status: DeploymentStatus = serde_json::from_value(value["status"].clone()).unwrap();
        let d = Deployment {
            spec: Some(Default::default()),
            status: Some(status),
            ..Deployment::default()
        };
        let (rag, reason) = says(&deployment(&d, &mapping()));
        assert_eq!(rag, Rag::Amber);
        assert!(
            reason.starts_with("cannot create pods (FailedCreate): Error creating: pods \"nginx-deployment-4262182780-\" is forbidden: exceeded quota"),
            "{reason}"
        );
    }

    #[test]
    fn stuck_pods_say_why_and_fine_ones_say_nothing() {
        let crash: Pod = fixture("pod_crashloopbackoff.json");
        let (rag, reason) = says(&pod(&crash, &mapping()));
        assert_eq!(rag, Rag::Red, "a bare pod is its only instance");
        assert_eq!(
            reason,
            "container main is in CrashLoopBackOff, last exit 1 (Error)"
        );

        let pull: Pod = fixture("pod_imagepullbackoff.json");
        let (rag, reason) = says(&pod(&pull, &mapping()));
        assert_eq!(rag, Rag::Amber, "owned by a ReplicaSet");
        assert_eq!(
            reason,
            "container errimagepullbackoff is in ImagePullBackOff: Back-off pulling image \"gcr.io/heptio-images/ks-guestbook-demo:0.3\""
        );

        let pending: Pod = fixture("pod_pending_unschedulable.json");
        let (_, reason) = says(&pod(&pending, &mapping()));
        assert!(
            reason.starts_with("cannot be scheduled: 0/1 nodes are available"),
            "{reason}"
        );

        let ready: Pod = fixture("pod_running_ready.json");
        assert_eq!(pod(&ready, &mapping()).verdict, Verdict::Nothing);
    }

    fn a_node(name: &str, ready: &str, reason: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    reason: Some(reason.into()),
                    message: Some("Kubelet stopped posting node status.".into()),
                    ..NodeCondition::default()
                }]),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn nodes_count_together() {
        let up = node(&a_node("w1", "True", "KubeletReady"), &mapping());
        let down = node(&a_node("w2", "Unknown", "NodeStatusUnknown"), &mapping());
        let state = |s: &Sighting| match &s.verdict {
            Verdict::Node(n) => n.clone(),
            other => panic!("{other:?}"),
        };
        let (a, b) = (state(&up), state(&down));
        assert_eq!(
            nodes(&[("w1", &a)]),
            (Rag::Green, "1 of 1 nodes ready".into())
        );
        assert_eq!(
            nodes(&[("w1", &a), ("w2", &b)]),
            (
                Rag::Amber,
                "1 of 2 nodes ready: w2 NotReady (status unknown: Kubelet stopped posting node status.)"
                    .into()
            )
        );
        assert_eq!(nodes(&[("w2", &b)]).0, Rag::Red);
        assert_eq!(nodes(&[("w1", &a), ("w2", &b), ("w3", &b)]).0, Rag::Red);
    }

    #[test]
    fn labels_and_the_annotation_name_the_component() {
        let mut d: Deployment = fixture("deployment_progress_deadline_exceeded.json");
        d.metadata.labels = Some(
            [
                (
                    "app.kubernetes.io/name".to_string(),
                    "checkout-api".to_string(),
                ),
                (
                    "app.kubernetes.io/part-of".to_string(),
                    "checkout".to_string(),
                ),
            ]
            .into(),
        );
        let s = deployment(&d, &mapping());
        assert_eq!(s.names.labels, ["checkout", "checkout-api"]);
        assert_eq!(s.names.annotation, None);
        d.metadata.annotations.get_or_insert_default().insert(
            "watchkeeper.io/component".into(),
            "acme-checkout-api".into(),
        );
        assert_eq!(
            deployment(&d, &mapping()).names.annotation.as_deref(),
            Some("acme-checkout-api")
        );
    }
}
