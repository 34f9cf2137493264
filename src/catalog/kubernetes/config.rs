//! The `catalog.clusters` section: which Kubernetes clusters are watched, how
//! to reach each (a kubeconfig file and context, or the service account of
//! the pod Watchkeeper runs in), which namespaces, which customer a cluster
//! belongs to, and how an object names its catalog component.
//!
//! Shapes are checked when the configuration loads ([`check`]); whether a
//! kubeconfig file and its context exist is checked by `watchkeeper check`
//! ([`check_connection`]) and, in the service, reported per cluster without
//! stopping anything else.

use crate::ids::TenantId;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The default annotation that names an object's component (it wins over labels).
pub const DEFAULT_ANNOTATION: &str = "watchkeeper.io/component";

/// The default labels that name an object's component, tried in order.
pub const DEFAULT_LABELS: [&str; 2] = ["app.kubernetes.io/part-of", "app.kubernetes.io/name"];

/// One watched cluster.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// A short name (`acme-prod`): in sources (`kube:acme-prod:…`), logs and metrics.
    pub name: String,
    /// A kubeconfig file, relative to the configuration file (default:
    /// `KUBECONFIG`, else `~/.kube/config`).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its `current-context`).
    #[serde(default)]
    pub context: Option<String>,
    /// Connect with the service account of the pod Watchkeeper runs in.
    #[serde(default)]
    pub in_cluster: bool,
    /// Namespaces to watch; empty watches all of them.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// The customer the cluster belongs to: its objects then only ever feed
    /// that customer's components.
    #[serde(default)]
    pub tenant: Option<TenantId>,
    /// The component standing for the cluster itself (its Nodes, whether its
    /// API can be reached); default: the cluster's name.
    #[serde(default)]
    pub component: Option<String>,
    /// How an object names its component.
    #[serde(default)]
    pub mapping: Mapping,
}

/// How an object names its catalog component: the annotation when present,
/// else the first label, in order, whose value is a component.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mapping {
    /// The annotation that names the component outright.
    pub annotation: String,
    /// Labels tried in order.
    pub labels: Vec<String>,
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            annotation: DEFAULT_ANNOTATION.to_string(),
            labels: DEFAULT_LABELS.iter().map(|l| (*l).to_string()).collect(),
        }
    }
}

impl ClusterConfig {
    /// The component standing for the cluster.
    pub fn component(&self) -> &str {
        self.component.as_deref().unwrap_or(&self.name)
    }
}

/// A problem in the section: the field's path and one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// E.g. `catalog.clusters[0].context`.
    pub field: String,
    /// What is wrong and what to write.
    pub message: String,
}

fn problem(index: usize, field: &str, message: String) -> Problem {
    let field = if field.is_empty() {
        format!("catalog.clusters[{index}]")
    } else {
        format!("catalog.clusters[{index}].{field}")
    };
    Problem { field, message }
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A DNS-1123 label, what Kubernetes allows as a namespace name.
fn is_namespace(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Checks the shapes: unique names, one way to connect, valid namespaces,
/// known tenants, a mapping that names something.
pub fn check<V>(
    clusters: &[ClusterConfig],
    customers: &BTreeMap<TenantId, V>,
) -> Result<(), Problem> {
    let mut names = BTreeSet::new();
    for (i, cluster) in clusters.iter().enumerate() {
        if !is_name(&cluster.name) {
            return Err(problem(
                i,
                "name",
                format!(
                    "`{}` is not a cluster name: use letters, digits, `-`, `_` and `.`, e.g. acme-prod",
                    cluster.name
                ),
            ));
        }
        if !names.insert(cluster.name.as_str()) {
            return Err(problem(
                i,
                "name",
                format!(
                    "`{}` is used twice; give each cluster its own name",
                    cluster.name
                ),
            ));
        }
        if cluster.in_cluster && (cluster.kubeconfig.is_some() || cluster.context.is_some()) {
            return Err(problem(
                i,
                "in_cluster",
                "in_cluster: true connects with the pod's service account; remove kubeconfig and context, or set in_cluster: false".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        for namespace in &cluster.namespaces {
            if !is_namespace(namespace) {
                return Err(problem(
                    i,
                    "namespaces",
                    format!(
                        "`{namespace}` is not a namespace name: lowercase letters, digits and `-`"
                    ),
                ));
            }
            if !seen.insert(namespace) {
                return Err(problem(
                    i,
                    "namespaces",
                    format!("`{namespace}` is listed twice"),
                ));
            }
        }
        if let Some(tenant) = &cluster.tenant
            && !customers.contains_key(tenant)
        {
            return Err(problem(
                i,
                "tenant",
                format!("`{tenant}` is not a customer: name one listed under customers"),
            ));
        }
        if cluster.mapping.annotation.trim().is_empty() && cluster.mapping.labels.is_empty() {
            return Err(problem(
                i,
                "mapping",
                "name an annotation or at least one label that says an object's component".into(),
            ));
        }
    }
    Ok(())
}

/// Reads the kubeconfig `cluster` uses (its file, else `KUBECONFIG`, else
/// `~/.kube/config`).
pub fn read_kubeconfig(cluster: &ClusterConfig) -> Result<Kubeconfig, String> {
    match &cluster.kubeconfig {
        Some(path) => Kubeconfig::read_from(path)
            .map_err(|err| format!("cannot read the kubeconfig {}: {err}", path.display())),
        None => Kubeconfig::read().map_err(|err| {
            format!(
                "cannot read the default kubeconfig (KUBECONFIG or ~/.kube/config): {err}; name a file with kubeconfig:, or set in_cluster: true"
            )
        }),
    }
}

/// Checks, without contacting the cluster, that `cluster` (the `index`th)
/// can be connected to: its kubeconfig reads, the context exists and names
/// a cluster with a server and a user. In-cluster settings can only be
/// checked inside the pod, so they pass.
pub fn check_connection(index: usize, cluster: &ClusterConfig) -> Result<(), Problem> {
    if cluster.in_cluster {
        return Ok(());
    }
    let field = if cluster.kubeconfig.is_some() {
        "kubeconfig"
    } else {
        ""
    };
    let kubeconfig = read_kubeconfig(cluster).map_err(|message| problem(index, field, message))?;
    let where_ = cluster
        .kubeconfig
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the default kubeconfig".into());
    let names: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let Some(context_name) = cluster
        .context
        .as_deref()
        .or(kubeconfig.current_context.as_deref())
    else {
        return Err(problem(
            index,
            "context",
            format!(
                "{where_} has no current-context: name one of its contexts ({})",
                names.join(", ")
            ),
        ));
    };
    let Some(context) = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
    else {
        return Err(problem(
            index,
            "context",
            format!(
                "{where_} has no context `{context_name}`; it has: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ));
    };
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.as_ref());
    if server.is_none() {
        return Err(problem(
            index,
            "context",
            format!(
                "context `{context_name}` names cluster `{}`, which {where_} does not define with a server",
                context.cluster
            ),
        ));
    }
    if let Some(user) = &context.user
        && !kubeconfig.auth_infos.iter().any(|u| &u.name == user)
    {
        return Err(problem(
            index,
            "context",
            format!("context `{context_name}` names user `{user}`, which {where_} does not define"),
        ));
    }
    Ok(())
}

/// Why a client for a cluster could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig could not be read or does not fit.
    #[error("{0}")]
    Kubeconfig(String),
    /// In-cluster settings are missing (not running in a pod?).
    #[error("cannot use the pod's service account: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    /// The client could not be built.
    #[error("cannot set up the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// A Kubernetes client for `cluster` (no request is made yet).
pub async fn connect(cluster: &ClusterConfig) -> Result<kube::Client, ConnectError> {
    let config = if cluster.in_cluster {
        kube::Config::incluster()?
    } else {
        let kubeconfig = read_kubeconfig(cluster).map_err(ConnectError::Kubeconfig)?;
        let options = KubeConfigOptions {
            context: cluster.context.clone(),
            ..KubeConfigOptions::default()
        };
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|err| ConnectError::Kubeconfig(err.to_string()))?
    };
    Ok(kube::Client::try_from(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(yaml: &str) -> ClusterConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn customers() -> BTreeMap<TenantId, ()> {
        BTreeMap::from([(TenantId::new("acme"), ())])
    }

    #[test]
    fn defaults_follow_the_recommended_labels() {
        let c = cluster("name: acme-prod\ncontext: acme-prod\ntenant: acme\n");
        assert_eq!(c.component(), "acme-prod");
        assert_eq!(c.mapping.annotation, "watchkeeper.io/component");
        assert_eq!(
            c.mapping.labels,
            ["app.kubernetes.io/part-of", "app.kubernetes.io/name"]
        );
        assert!(c.namespaces.is_empty());
        assert_eq!(check(&[c], &customers()), Ok(()));
    }

    #[test]
    fn shape_problems_name_the_field() {
        let cases = [
            ("name: 'a b'", "catalog.clusters[0].name"),
            (
                "name: x\nin_cluster: true\ncontext: y",
                "catalog.clusters[0].in_cluster",
            ),
            (
                "name: x\nnamespaces: [Shop]",
                "catalog.clusters[0].namespaces",
            ),
            ("name: x\ntenant: initech", "catalog.clusters[0].tenant"),
            (
                "name: x\nmapping: { annotation: '', labels: [] }",
                "catalog.clusters[0].mapping",
            ),
        ];
        for (yaml, field) in cases {
            let err = check(&[cluster(yaml)], &customers()).unwrap_err();
            assert_eq!(err.field, field, "{yaml}: {}", err.message);
        }
        let twice = [cluster("name: x"), cluster("name: x")];
        assert_eq!(
            check(&twice, &customers()).unwrap_err().field,
            "catalog.clusters[1].name"
        );
    }

    #[test]
    fn the_commented_example_is_valid() {
        let example = crate::config::BUNDLED_EXAMPLE;
        let block: String = example
            .lines()
            .skip_while(|l| !l.starts_with("  # clusters:"))
            .take_while(|l| l.starts_with("  # "))
            .map(|l| format!("{}\n", &l[4..]))
            .collect();
        #[derive(Deserialize)]
        struct Section {
            clusters: Vec<ClusterConfig>,
        }
        let section: Section = serde_yaml::from_str(&block).unwrap();
        assert_eq!(section.clusters.len(), 2, "{block}");
        assert_eq!(check(&section.clusters, &customers()), Ok(()));
        assert!(section.clusters[1].in_cluster);
    }

    #[test]
    fn a_missing_file_or_an_unknown_context_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let mut c = cluster("name: x\ncontext: acme");
        c.kubeconfig = Some(missing.clone());
        let err = check_connection(0, &c).unwrap_err();
        assert_eq!(err.field, "catalog.clusters[0].kubeconfig");
        assert!(err.message.contains("nope.yaml"), "{}", err.message);

        let file = dir.path().join("kubeconfig");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: { server: 'https://10.0.0.1:6443' }\n\
             users:\n- name: u\n  user: { token: t }\ncontexts:\n- name: globex\n  context: { cluster: c, user: u }\n",
        )
        .unwrap();
        c.kubeconfig = Some(file);
        let err = check_connection(0, &c).unwrap_err();
        assert_eq!(err.field, "catalog.clusters[0].context");
        assert!(
            err.message.contains("no context `acme`") && err.message.contains("globex"),
            "{}",
            err.message
        );
        c.context = Some("globex".into());
        assert_eq!(check_connection(0, &c), Ok(()));
    }
}
