//! The `catalog:` section of the configuration.

use super::alertmanager::AlertmanagerConfig;
use crate::config::HumanDuration;
use crate::ids::ChannelId;
use serde::Deserialize;
use std::path::PathBuf;

/// Where the catalog comes from and how alerts map onto it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Folders (read recursively) and files of catalog YAML — Watchkeeper's
    /// own format and Backstage `catalog-info.yaml` — relative to the
    /// configuration file.
    pub paths: Vec<PathBuf>,
    /// Alertmanager webhooks (`POST /webhooks/alertmanager`).
    pub alertmanager: AlertmanagerConfig,
    /// Run the HTTP checks components declare (off for catalogs whose hosts
    /// are not reachable from here, like the example's).
    pub run_checks: bool,
    /// Channels told when a component's rolled-up health changes.
    pub notify: Vec<Subscription>,
    /// How long a change must last before it is announced (a flapping
    /// check that settles within it says nothing).
    pub debounce: HumanDuration,
    /// How often a red component is announced again while it stays red.
    pub repeat: HumanDuration,
    /// Kubernetes clusters whose workloads, pods and nodes are watched.
    pub clusters: Vec<super::kubernetes::config::ClusterConfig>,
}

/// A channel that hears about some components: by id, tag or tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Where notices go.
    pub channel: ChannelId,
    /// Component ids.
    #[serde(default)]
    pub components: Vec<String>,
    /// Any component with one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Any component of one of these tenants.
    #[serde(default)]
    pub tenants: Vec<String>,
}

impl Subscription {
    /// Whether `component` is one this channel hears about.
    pub fn covers(&self, component: &super::model::Component) -> bool {
        self.components
            .iter()
            .any(|c| c.eq_ignore_ascii_case(component.id.as_str()))
            || component.tags.iter().any(|t| self.tags.contains(t))
            || self.tenants.iter().any(|t| component.visible_to_tenant(t))
    }
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            alertmanager: AlertmanagerConfig::default(),
            run_checks: true,
            notify: Vec::new(),
            debounce: HumanDuration::from_secs(120),
            repeat: HumanDuration::from_secs(3600),
            clusters: Vec::new(),
        }
    }
}
