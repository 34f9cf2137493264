//! The `playbooks:` section of the configuration.

use crate::auth::Role;
use crate::config::HumanDuration;
use serde::Deserialize;
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
    /// Also read `Playbook` custom resources from this cluster (a name
    /// under `catalog.clusters`; all namespaces its credentials may list).
    pub resources_from: Option<String>,
}

impl Default for PlaybooksConfig {
    fn default() -> Self {
        Self {
            paths: vec![PathBuf::from("playbooks")],
            forge: "git".into(),
            approvers: vec![Role::Sre],
            expires: HumanDuration::from_secs(24 * 3600),
            seed: None,
            resources_from: None,
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
