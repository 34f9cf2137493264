//! The `catalog:` section of the configuration.

use super::alertmanager::AlertmanagerConfig;
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
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            alertmanager: AlertmanagerConfig::default(),
            run_checks: true,
        }
    }
}
