//! The `playbooks:` section of the configuration.

use crate::auth::Role;
use crate::config::HumanDuration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where playbooks come from and the defaults their rules fall back on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlaybooksConfig {
    /// Folders of `*.yaml` playbooks (and single files), relative to the
    /// configuration file.
    pub paths: Vec<PathBuf>,
    /// The forge of `gitops` actions that name none: `git` or `github`.
    pub forge: String,
    /// Who approves when a playbook names nobody (admins always may).
    pub approvers: Vec<Role>,
    /// How long a request waits for approval when a playbook does not say.
    pub expires: HumanDuration,
    /// A repository of the embedded git forge created on first use with
    /// these files, so a console user's run has manifests to change.
    pub seed: Option<SeedConfig>,
    /// Clusters that `kubernetes` actions (and the `Playbook` custom
    /// resources) are reached in.
    pub kubernetes: KubernetesConfig,
}

impl Default for PlaybooksConfig {
    fn default() -> Self {
        Self {
            paths: vec![PathBuf::from("playbooks")],
            forge: "git".into(),
            approvers: vec![Role::Sre],
            expires: HumanDuration::from_secs(24 * 3600),
            seed: None,
            kubernetes: KubernetesConfig::default(),
        }
    }
}

/// A seeded repository of the embedded git forge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedConfig {
    /// `owner/name` under `forges.git.path`.
    pub repository: String,
    /// A folder whose files become the first commit (relative to the configuration file).
    pub from: PathBuf,
}

/// Kubernetes clusters for playbooks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Clusters by the name actions use.
    pub clusters: BTreeMap<String, ClusterConfig>,
    /// Read `Playbook` custom resources from this cluster (all namespaces
    /// the service account may list).
    pub playbooks_from: Option<String>,
}

/// How to reach one cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// The API server (tests point it at a fake). Without it: the pod's own
    /// service account when running in the cluster, else `context`.
    pub api_url: Option<String>,
    /// A kubeconfig context.
    pub context: Option<String>,
}
