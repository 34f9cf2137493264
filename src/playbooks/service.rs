//! A replica's playbooks: the library loaded from files, plus those read
//! from `Playbook` custom resources, swapped whole on reload; and what the
//! job's handlers share (forges, the catalog, the authoriser's view).

use super::load::{self, Context, Library, PlaybookError};
use crate::catalog::Catalog;
use crate::config::Loaded;
use std::sync::{Arc, RwLock};

/// The playbooks of this replica; cheap to clone.
#[derive(Clone, Default)]
pub struct Playbooks {
    files: Arc<RwLock<Arc<Library>>>,
    resources: Arc<RwLock<Arc<Library>>>,
}

impl Playbooks {
    /// A handle on `library` (from files).
    pub fn new(library: Library) -> Self {
        Self {
            files: Arc::new(RwLock::new(Arc::new(library))),
            resources: Arc::default(),
        }
    }

    /// The playbook called `name`: a file's, else a custom resource's.
    pub fn get(&self, name: &str) -> Option<Arc<super::Playbook>> {
        let read = |lock: &RwLock<Arc<Library>>| {
            lock.read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(name)
                .cloned()
        };
        read(&self.files).or_else(|| read(&self.resources))
    }

    /// Every playbook, by name (files win over custom resources of the same name).
    pub fn all(&self) -> Vec<Arc<super::Playbook>> {
        let files = self
            .files
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let resources = self
            .resources
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut all: Vec<Arc<super::Playbook>> = files.iter().cloned().collect();
        all.extend(
            resources
                .iter()
                .filter(|p| files.get(p.name()).is_none())
                .cloned(),
        );
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Replaces the playbooks from files (SIGHUP).
    pub fn replace_files(&self, library: Library) {
        *self
            .files
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(library);
    }

    /// Replaces the playbooks read from custom resources.
    pub fn replace_resources(&self, library: Library) {
        *self
            .resources
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(library);
    }
}

/// Loads the playbooks the configuration names (the bundled examples for
/// the bundled example configuration).
pub fn load_configured(loaded: &Loaded, catalog: &Catalog) -> Result<Library, Vec<PlaybookError>> {
    let config = &loaded.config;
    if let Some(cluster) = &config.playbooks.resources_from
        && !config.catalog.clusters.iter().any(|c| &c.name == cluster)
    {
        return Err(vec![PlaybookError {
            file: loaded.source_name(),
            line: 1,
            message: format!(
                "playbooks.resources_from: `{cluster}` is not a cluster under catalog.clusters"
            ),
        }]);
    }
    let files = match &loaded.file {
        None => load::EXAMPLES
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect(),
        Some(_) => {
            let paths: Vec<_> = loaded
                .config
                .playbooks
                .paths
                .iter()
                .map(|p| loaded.resolve(p))
                .collect();
            load::read_files(&paths)?
        }
    };
    load::load_texts(
        &files,
        &Context {
            config: &loaded.config,
            catalog,
        },
    )
}

/// The seed repository's files (`playbooks.seed.from`, or the bundled
/// `examples/gitops` for the bundled configuration): `(path, content)`;
/// none when the folder does not exist.
pub fn seed_files(loaded: &Loaded) -> Result<Vec<(String, String)>, String> {
    let Some(seed) = &loaded.config.playbooks.seed else {
        return Ok(Vec::new());
    };
    if loaded.file.is_none() {
        return Ok(EXAMPLE_SEED
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect());
    }
    let root = loaded.resolve(&seed.from);
    if !root.is_dir() {
        // The repository then starts empty; `watchkeeper check` warns.
        tracing::warn!(folder = %root.display(), "playbooks.seed.from is not a folder; the seed repository starts empty");
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| format!("playbooks.seed.from: cannot read {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(&root) {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!("playbooks.seed.from: cannot read {}: {e}", path.display())
                })?;
                files.push((relative.to_string_lossy().replace('\\', "/"), text));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `examples/gitops`, for the bundled configuration.
const EXAMPLE_SEED: &[(&str, &str)] = &[
    ("README.md", include_str!("../../examples/gitops/README.md")),
    (
        "clusters/acme-prod/apps/checkout-api/helmrelease.yaml",
        include_str!("../../examples/gitops/clusters/acme-prod/apps/checkout-api/helmrelease.yaml"),
    ),
    (
        "clusters/acme-prod/node-pools/general.yaml",
        include_str!("../../examples/gitops/clusters/acme-prod/node-pools/general.yaml"),
    ),
    (
        "clusters/globex-prod/apps/storefront/helmrelease.yaml",
        include_str!("../../examples/gitops/clusters/globex-prod/apps/storefront/helmrelease.yaml"),
    ),
    (
        "clusters/globex-prod/node-pools/general.yaml",
        include_str!("../../examples/gitops/clusters/globex-prod/node-pools/general.yaml"),
    ),
];

/// What `watchkeeper check` warns about the `playbooks:` section itself.
pub fn config_warnings(loaded: &Loaded) -> Vec<String> {
    match &loaded.config.playbooks.seed {
        Some(seed) if loaded.file.is_some() && !loaded.resolve(&seed.from).is_dir() => {
            vec![format!(
                "{}: playbooks.seed.from: {} is not a folder; the seed repository {} starts empty",
                loaded.source_name(),
                loaded.resolve(&seed.from).display(),
                seed.repository
            )]
        }
        _ => Vec::new(),
    }
}
