//! The command manifest: `commands/*.yaml`, one file per `/wk` verb (usage,
//! summary, arguments, who may run it, Slack scopes it needs, reply templates)
//! plus template-only files whose names start with `_`: `_common.yaml` for
//! wording shared by every verb (templates `common.<name>`), and one per job
//! for the messages it sends on its own (`_support.yaml` → `support.<name>`).
//!
//! Operators change wording without recompiling; the binary also carries the
//! repository's copy so it runs where no `commands/` folder exists.

use super::templates::{TemplateError, Templates};
use crate::auth::Audience;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The manifest files shipped with the binary, used when the folder is absent.
const EMBEDDED: &[(&str, &str)] = &[
    ("_common.yaml", include_str!("../../commands/_common.yaml")),
    (
        "_support.yaml",
        include_str!("../../commands/_support.yaml"),
    ),
    (
        "_playbook.yaml",
        include_str!("../../commands/_playbook.yaml"),
    ),
    (
        "approvals.yaml",
        include_str!("../../commands/approvals.yaml"),
    ),
    ("changes.yaml", include_str!("../../commands/changes.yaml")),
    ("help.yaml", include_str!("../../commands/help.yaml")),
    ("oncall.yaml", include_str!("../../commands/oncall.yaml")),
    (
        "postmortem.yaml",
        include_str!("../../commands/postmortem.yaml"),
    ),
    (
        "postmortems.yaml",
        include_str!("../../commands/postmortems.yaml"),
    ),
    (
        "escalate.yaml",
        include_str!("../../commands/escalate.yaml"),
    ),
    (
        "playbooks.yaml",
        include_str!("../../commands/playbooks.yaml"),
    ),
    ("reopen.yaml", include_str!("../../commands/reopen.yaml")),
    (
        "requests.yaml",
        include_str!("../../commands/requests.yaml"),
    ),
    ("resolve.yaml", include_str!("../../commands/resolve.yaml")),
    ("run.yaml", include_str!("../../commands/run.yaml")),
    ("runs.yaml", include_str!("../../commands/runs.yaml")),
    ("status.yaml", include_str!("../../commands/status.yaml")),
    ("urgent.yaml", include_str!("../../commands/urgent.yaml")),
    ("whoami.yaml", include_str!("../../commands/whoami.yaml")),
];

/// One verb as described in its YAML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The verb, e.g. `status`.
    pub verb: String,
    /// One line for `/wk help`.
    pub summary: String,
    /// e.g. `/wk status [component]`.
    pub usage: String,
    /// Longer help for `/wk help <verb>`.
    #[serde(default)]
    pub help: String,
    /// Arguments, in order.
    #[serde(default)]
    pub arguments: Vec<ArgumentSpec>,
    /// Who may run it.
    pub audience: Vec<Audience>,
    /// Slack bot scopes the verb needs (merged into the app manifest).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Reply templates by name.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
}

/// One argument of a verb.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArgumentSpec {
    /// Its name in usage and help.
    pub name: String,
    /// What it means.
    pub help: String,
    /// Whether it must be given.
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonFile {
    templates: BTreeMap<String, String>,
}

/// Every verb, and the compiled templates.
#[derive(Clone)]
pub struct Manifest {
    commands: BTreeMap<String, CommandSpec>,
    templates: Templates,
}

/// Why the manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {}", .message.replace(['\n', '\r'], " "))]
pub struct ManifestError {
    /// The file at fault.
    pub file: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl Manifest {
    /// Loads `dir/*.yaml` when the folder exists, else the embedded copy.
    pub fn load(dir: &Path) -> Result<Self, ManifestError> {
        if !dir.is_dir() {
            return Self::embedded();
        }
        let mut files = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| ManifestError {
            file: dir.display().to_string(),
            message: format!("cannot read the folder: {e}"),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let text = std::fs::read_to_string(&path).map_err(|e| ManifestError {
                    file: path.display().to_string(),
                    message: format!("cannot read: {e}"),
                })?;
                files.push((path.display().to_string(), text));
            }
        }
        files.sort();
        Self::from_files(files)
    }

    /// The copy compiled into the binary.
    pub fn embedded() -> Result<Self, ManifestError> {
        Self::from_files(
            EMBEDDED
                .iter()
                .map(|(name, text)| (format!("commands/{name} (built in)"), text.to_string()))
                .collect(),
        )
    }

    fn from_files(files: Vec<(String, String)>) -> Result<Self, ManifestError> {
        let mut commands = BTreeMap::new();
        let mut templates = Templates::default();
        let mut has_common = false;
        for (file, text) in files {
            let err = |message: String| ManifestError {
                file: file.clone(),
                message,
            };
            let compile = |e: TemplateError| ManifestError {
                file: file.clone(),
                message: e.to_string(),
            };
            let namespace = Path::new(&file)
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix('_'))
                .and_then(|n| n.split('.').next())
                .map(str::to_string);
            if let Some(namespace) = namespace {
                let common: CommonFile =
                    serde_yaml::from_str(&text).map_err(|e| err(e.to_string()))?;
                for (name, body) in &common.templates {
                    templates
                        .register(&format!("{namespace}.{name}"), body)
                        .map_err(compile)?;
                }
                has_common |= namespace == "common";
                continue;
            }
            let spec: CommandSpec = serde_yaml::from_str(&text).map_err(|e| err(e.to_string()))?;
            if spec.verb.is_empty()
                || !spec
                    .verb
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-')
            {
                return Err(err(format!(
                    "verb `{}` must be lower-case letters and dashes",
                    spec.verb
                )));
            }
            if spec.audience.is_empty() {
                return Err(err(
                    "audience must list who may run it, e.g. [support, oncall], [everyone] or [anyone]"
                        .into(),
                ));
            }
            for (name, body) in &spec.templates {
                templates
                    .register(&format!("{}.{name}", spec.verb), body)
                    .map_err(compile)?;
            }
            if let Some(previous) = commands.insert(spec.verb.clone(), spec) {
                return Err(err(format!(
                    "verb `{}` is defined twice; keep one file per verb",
                    previous.verb
                )));
            }
        }
        if !has_common {
            return Err(ManifestError {
                file: "commands/_common.yaml".into(),
                message: "missing: it holds the wording shared by every command".into(),
            });
        }
        Ok(Self {
            commands,
            templates,
        })
    }

    /// A verb's spec.
    pub fn get(&self, verb: &str) -> Option<&CommandSpec> {
        self.commands.get(verb)
    }

    /// Every verb, alphabetically.
    pub fn commands(&self) -> impl Iterator<Item = &CommandSpec> {
        self.commands.values()
    }

    /// The compiled templates.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_manifest_loads_and_matches_the_embedded_copy() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("commands");
        let on_disk = Manifest::load(&dir).unwrap();
        let embedded = Manifest::embedded().unwrap();
        let verbs = |m: &Manifest| m.commands().map(|c| c.verb.clone()).collect::<Vec<_>>();
        assert_eq!(verbs(&on_disk), verbs(&embedded));
        assert!(on_disk.get("help").is_some());
    }

    #[test]
    fn a_bad_file_is_named() {
        let err = Manifest::from_files(vec![
            ("_common.yaml".into(), "templates: {}".into()),
            (
                "commands/x.yaml".into(),
                "verb: x\nsummary: s\nusage: u\naudience: [wizards]\n".into(),
            ),
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(err.starts_with("commands/x.yaml: "), "{err}");
        assert!(err.contains("wizards"), "{err}");
    }
}
