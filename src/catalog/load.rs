//! Reading catalog files: Watchkeeper's own YAML and Backstage entities.
//!
//! # Watchkeeper's format
//!
//! A file holds one or more YAML documents (`---`), each either a list of
//! components or a map with `components:`:
//!
//! ```yaml
//! components:
//!   - id: payments-api              # required; lowercase letters, digits, - _ .
//!     title: Payments API
//!     kind: service                 # service, database, queue, cluster, external, website, api, system, resource, or any word
//!     owner: team-payments
//!     tenants: [acme]               # customers who may see it; none = staff only
//!     tags: [payments]
//!     links: { runbook: https://…, dashboard: https://…, repo: https://…, status: https://… }
//!     dependsOn:
//!       - payments-queue            # an id, or
//!       - { id: payments-db, critical: true }
//!     checks:
//!       - { url: https://…/healthz, interval: 30s, timeout: 5s, expect_status: 200, body_contains: ok }
//! ```
//!
//! Check defaults: `interval` 1m (at least 5s), `timeout` 10s or the interval
//! if shorter (never longer than the interval), `expect_status` 200.
//!
//! # Backstage
//!
//! A document with `apiVersion: backstage.io/…` is a Backstage entity.
//! `Component`, `System`, `Resource` and `API` become components; other kinds
//! (`Group`, `User`, `Location`, `Domain`, `Template`…) are skipped without error.
//! - id: `metadata.name` (a namespace other than `default` is kept as `ns/name`);
//!   title: `metadata.title`; tags: `metadata.tags`.
//! - kind: `spec.type` for Component and Resource (`service`, `database`…),
//!   `api` for API, `system` for System.
//! - owner: `spec.owner` without its kind and namespace (`group:default/payments` → `payments`).
//! - `spec.dependsOn` are edges; `spec.dependencyOf: [x]` is an edge from x.
//! - `spec.system: s` makes the System `s` depend on this entity (a normal
//!   edge), so a system's health rolls up from its parts; the system must be
//!   in the catalog.
//! - Watchkeeper annotations: `watchkeeper.io/tenants` (comma-separated),
//!   `watchkeeper.io/critical` (comma-separated references among
//!   `dependsOn` whose edges are critical), `watchkeeper.io/runbook`,
//!   `watchkeeper.io/dashboard`, `watchkeeper.io/check-url` (+ optional
//!   `watchkeeper.io/check-interval`). `metadata.links` whose `type` or
//!   `title` says runbook / dashboard / repo fill those links, the rest go to
//!   `other`; `backstage.io/source-location` gives the repo.

use super::error::CatalogError;
use super::graph::{Catalog, closest};
use super::model::{Component, ComponentId, Edge, HttpCheck, Kind, Links, Origin};
use crate::config::HumanDuration;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A loaded catalog and its warnings (one per dependency cycle).
#[derive(Debug)]
pub struct Loaded {
    /// The merged, validated catalog.
    pub catalog: Catalog,
    /// Not errors, but `check` reports them.
    pub warnings: Vec<CatalogError>,
}

/// Loads folders (recursively, `*.yaml` and `*.yml`, in name order) and
/// files, merges them into one catalog, and reports every problem found.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, Vec<CatalogError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            if let Err(e) = collect(path, &mut files) {
                errors.push(e);
            }
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            errors.push(CatalogError::new(
                path,
                1,
                "catalog path does not exist: list existing folders or files under catalog.paths",
            ));
        }
    }
    let mut texts = Vec::with_capacity(files.len());
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => texts.push((file, text)),
            Err(e) => errors.push(CatalogError::new(
                &file,
                1,
                format!("cannot read the file: {e}"),
            )),
        }
    }
    match load_texts(&texts) {
        Ok(loaded) if errors.is_empty() => Ok(loaded),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            Err(errors)
        }
    }
}

/// Like [`load`], from texts already read (`(file name, contents)`).
pub fn load_texts(texts: &[(PathBuf, String)]) -> Result<Loaded, Vec<CatalogError>> {
    let mut parsed = Parsed::default();
    for (file, text) in texts {
        parse_file(file, text, &mut parsed);
    }
    let Parsed {
        mut components,
        extra_edges,
        mut errors,
    } = parsed;
    let mut position: HashMap<ComponentId, usize> = HashMap::with_capacity(components.len());
    for (i, c) in components.iter().enumerate() {
        position.entry(c.id.clone()).or_insert(i);
    }
    for extra in extra_edges {
        match position.get(&extra.from) {
            Some(&i) => components[i].depends_on.push(Edge {
                target: extra.to,
                critical: false,
            }),
            None => {
                let hint = closest(
                    extra.from.as_str(),
                    position.keys().map(ComponentId::as_str),
                )
                .map(|near| format!("did you mean `{near}`?"))
                .unwrap_or_else(|| format!("declare `{}` or remove {}", extra.from, extra.field));
                errors.push(CatalogError::new(
                    &extra.origin.file,
                    extra.origin.line,
                    format!(
                        "`{}` has {} `{}`, which is not in the catalog: {hint}",
                        extra.to, extra.field, extra.from
                    ),
                ));
            }
        }
    }
    let built = Catalog::build(components);
    match built {
        Ok(catalog) if errors.is_empty() => {
            let warnings = catalog.cycle_warnings();
            Ok(Loaded { catalog, warnings })
        }
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
            Err(errors)
        }
    }
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), CatalogError> {
    let read_error =
        |e: std::io::Error| CatalogError::new(dir, 1, format!("cannot read the folder: {e}"));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    Ok(())
}

#[derive(Default)]
struct Parsed {
    components: Vec<Component>,
    extra_edges: Vec<ExtraEdge>,
    errors: Vec<CatalogError>,
}

/// An edge declared on its target (`spec.system`, `spec.dependencyOf`).
struct ExtraEdge {
    from: ComponentId,
    to: ComponentId,
    field: &'static str,
    origin: Origin,
}

/// One YAML document of a file: its text and the 0-based line it starts at.
struct Doc<'a> {
    text: &'a str,
    first_line: usize,
}

fn split_documents(text: &str) -> Vec<Doc<'_>> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0usize;
    let mut offset = 0usize;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end();
        if n > 0 && (bare == "---" || bare.starts_with("--- ")) {
            docs.push(Doc {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset;
            start_line = n;
        }
        offset += line.len();
    }
    docs.push(Doc {
        text: &text[start..],
        first_line: start_line,
    });
    docs
}

fn content_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| {
        let t = l.trim();
        !(t.is_empty() || t.starts_with('#') || t == "---" || t == "...")
    })
}

fn parse_file(file: &Path, text: &str, out: &mut Parsed) {
    for doc in split_documents(text) {
        let Some(first) = content_lines(doc.text).next() else {
            continue;
        };
        let backstage = doc
            .text
            .lines()
            .any(|l| l.starts_with("apiVersion:") && l.contains("backstage.io/"));
        let at = |line: usize| doc.first_line + line;
        if backstage {
            parse_backstage(file, &doc, out);
            continue;
        }
        let raw: Result<Vec<RawComponent>, _> = if first.trim_start().starts_with('-') {
            serde_yaml::from_str(doc.text)
        } else {
            serde_yaml::from_str::<RawFile>(doc.text).map(|f| f.components)
        };
        match raw {
            Ok(raws) => {
                // One pass over the lines for the whole document: ids come in
                // order, so each search starts where the previous one ended.
                let mut cursor = 0;
                let mut lines = doc.text.lines().enumerate().skip(cursor);
                for raw in raws {
                    let line = match find_value_line_in(&mut lines, "id", &raw.id) {
                        Some(line) => line,
                        None => {
                            lines = doc.text.lines().enumerate().skip(cursor);
                            cursor
                        }
                    };
                    cursor = line + 1;
                    let origin = Origin {
                        file: file.to_path_buf(),
                        line: at(line + 1),
                    };
                    match raw.into_component(origin) {
                        Ok(c) => out.components.push(c),
                        Err(e) => out.errors.extend(e),
                    }
                }
            }
            Err(e) => out.errors.push(yaml_error(file, doc.first_line, &e)),
        }
    }
}

fn yaml_error(file: &Path, first_line: usize, error: &serde_yaml::Error) -> CatalogError {
    let line = error.location().map(|l| l.line()).unwrap_or(1);
    let mut message = error.to_string();
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    if message.contains("untagged enum RawEdge") {
        message = "each dependsOn entry is an id or `{ id: <component>, critical: true }`".into();
    }
    CatalogError::new(file, first_line + line, message)
}

/// The 0-based line (from `from`) where `key: value` is written, in block
/// or flow style, quoted or not.
fn find_value_line(text: &str, from: usize, key: &str, value: &str) -> Option<usize> {
    find_value_line_in(&mut text.lines().enumerate().skip(from), key, value)
}

/// Like [`find_value_line`], continuing through `lines` (`(index, line)`)
/// and leaving it just after the match.
fn find_value_line_in<'t>(
    lines: &mut impl Iterator<Item = (usize, &'t str)>,
    key: &str,
    value: &str,
) -> Option<usize> {
    let pattern = format!("{key}:");
    lines.find_map(|(n, line)| {
        let mut rest = line;
        while let Some(pos) = rest.find(&pattern) {
            let before = rest[..pos].chars().last();
            let after = rest[pos + pattern.len()..].trim_start();
            let after = after.trim_start_matches(['"', '\'']);
            let boundary = matches!(before, None | Some(' ' | '{' | '-' | ',' | '\t'));
            if boundary && after.starts_with(value) {
                let tail = after[value.len()..].chars().next();
                if matches!(tail, None | Some(' ' | ',' | '}' | '"' | '\'' | '#' | '\r')) {
                    return Some(n);
                }
            }
            rest = &rest[pos + pattern.len()..];
        }
        None
    })
}

// ----- Watchkeeper's own format -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    components: Vec<RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    id: String,
    title: Option<String>,
    kind: Option<String>,
    owner: Option<String>,
    #[serde(default)]
    tenants: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    links: RawLinks,
    #[serde(default, rename = "dependsOn", alias = "depends_on")]
    depends_on: Vec<RawEdge>,
    #[serde(default)]
    checks: Vec<RawCheck>,
    description: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawLinks {
    runbook: Option<String>,
    dashboard: Option<String>,
    repo: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEdge {
    Id(String),
    Full(RawEdgeFull),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdgeFull {
    #[serde(alias = "target")]
    id: String,
    #[serde(default)]
    critical: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    url: String,
    interval: Option<String>,
    timeout: Option<String>,
    #[serde(alias = "expectStatus")]
    expect_status: Option<u16>,
    #[serde(alias = "bodyContains")]
    body_contains: Option<String>,
}

impl RawComponent {
    fn into_component(self, origin: Origin) -> Result<Component, Vec<CatalogError>> {
        let mut errors = Vec::new();
        let err = |m: String| CatalogError::new(&origin.file, origin.line, m);
        let id = match ComponentId::parse(&self.id) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(err(format!("id: {e}")));
                None
            }
        };
        let mut depends_on = Vec::with_capacity(self.depends_on.len());
        for edge in self.depends_on {
            let (target, critical) = match edge {
                RawEdge::Id(t) => (t, false),
                RawEdge::Full(f) => (f.id, f.critical),
            };
            match ComponentId::parse(&target) {
                Ok(target) => depends_on.push(Edge { target, critical }),
                Err(e) => errors.push(err(format!("dependsOn of `{}`: {e}", self.id))),
            }
        }
        let mut checks = Vec::with_capacity(self.checks.len());
        for check in self.checks {
            match check.validate() {
                Ok(c) => checks.push(c),
                Err(m) => errors.push(err(format!("checks of `{}`: {m}", self.id))),
            }
        }
        let tenants: Vec<String> = self
            .tenants
            .iter()
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        if tenants.iter().any(String::is_empty) {
            errors.push(err(format!(
                "tenants of `{}`: a tenant is empty; write customer names such as [acme]",
                self.id
            )));
        }
        let (Some(id), true) = (id, errors.is_empty()) else {
            return Err(errors);
        };
        let _ = self.description;
        Ok(Component {
            title: self.title.unwrap_or_else(|| id.as_str().to_string()),
            id,
            kind: self.kind.as_deref().map(Kind::parse).unwrap_or_default(),
            owner: self.owner,
            tenants,
            tags: self.tags,
            links: Links {
                runbook: self.links.runbook,
                dashboard: self.links.dashboard,
                repo: self.links.repo,
                other: self.links.other,
            },
            depends_on,
            checks,
            origin,
        })
    }
}

impl RawCheck {
    fn validate(self) -> Result<HttpCheck, String> {
        let uri: http::Uri = self.url.parse().map_err(|_| {
            format!(
                "url `{}` is not a URL: write e.g. https://payments.example.com/healthz",
                self.url
            )
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!(
                "url `{}` must be an absolute http:// or https:// URL, e.g. https://payments.example.com/healthz",
                self.url
            ));
        }
        let duration =
            |field: &str, text: Option<&str>, default: Duration| -> Result<Duration, String> {
                match text {
                    None => Ok(default),
                    Some(t) => t
                        .parse::<HumanDuration>()
                        .map(HumanDuration::as_std)
                        .map_err(|e| format!("{field}: {e}")),
                }
            };
        let interval = duration(
            "interval",
            self.interval.as_deref(),
            Duration::from_secs(60),
        )?;
        if interval < Duration::from_secs(5) {
            return Err("interval must be at least 5s: write e.g. interval: 30s".into());
        }
        let timeout = duration(
            "timeout",
            self.timeout.as_deref(),
            Duration::from_secs(10).min(interval),
        )?;
        if timeout.is_zero() || timeout > interval {
            return Err(format!(
                "timeout must be more than 0s and at most the interval ({}s): write e.g. timeout: 5s",
                interval.as_secs()
            ));
        }
        let expect_status = self.expect_status.unwrap_or(200);
        if !(100..=599).contains(&expect_status) {
            return Err(format!(
                "expect_status {expect_status} is not an HTTP status: write a code from 100 to 599, e.g. 200"
            ));
        }
        Ok(HttpCheck {
            url: self.url,
            interval,
            timeout,
            expect_status,
            body_contains: self.body_contains.filter(|b| !b.is_empty()),
        })
    }
}

// ----- Backstage -----

#[derive(Deserialize)]
struct Head {
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Entity {
    metadata: Metadata,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    namespace: Option<String>,
    title: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    links: Vec<BackstageLink>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct BackstageLink {
    url: String,
    title: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(rename = "type")]
    kind: Option<String>,
    owner: Option<String>,
    system: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    dependency_of: Vec<String>,
}

const ANNOTATION_PREFIX: &str = "watchkeeper.io/";

fn parse_backstage(file: &Path, doc: &Doc<'_>, out: &mut Parsed) {
    let head: Head = match serde_yaml::from_str(doc.text) {
        Ok(h) => h,
        Err(e) => return out.errors.push(yaml_error(file, doc.first_line, &e)),
    };
    let kind = match head.kind.as_deref() {
        Some("Component" | "System" | "Resource" | "API") => head.kind.unwrap_or_default(),
        _ => return,
    };
    let entity: Entity = match serde_yaml::from_str(doc.text) {
        Ok(e) => e,
        Err(e) => return out.errors.push(yaml_error(file, doc.first_line, &e)),
    };
    let line = find_value_line(doc.text, 0, "name", &entity.metadata.name).unwrap_or(0);
    let origin = Origin {
        file: file.to_path_buf(),
        line: doc.first_line + line + 1,
    };
    let err = |m: String| CatalogError::new(&origin.file, origin.line, m);
    let mut errors = Vec::new();
    let name = match entity.metadata.namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", entity.metadata.name),
        None => entity.metadata.name.clone(),
    };
    let id = match ComponentId::parse(&name) {
        Ok(id) => id,
        Err(e) => return out.errors.push(err(format!("metadata.name: {e}"))),
    };
    let annotations = &entity.metadata.annotations;
    let annotation = |key: &str| {
        annotations
            .get(&format!("{ANNOTATION_PREFIX}{key}"))
            .map(String::as_str)
    };
    let list = |text: Option<&str>| -> Vec<String> {
        text.map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
    };
    let mut critical = Vec::new();
    for reference in list(annotation("critical")) {
        match ComponentId::parse(&reference) {
            Ok(r) => critical.push(r),
            Err(e) => errors.push(err(format!("annotation {ANNOTATION_PREFIX}critical: {e}"))),
        }
    }
    let mut depends_on = Vec::new();
    for reference in &entity.spec.depends_on {
        match ComponentId::parse(reference) {
            Ok(target) => depends_on.push(Edge {
                critical: critical.contains(&target),
                target,
            }),
            Err(e) => errors.push(err(format!("spec.dependsOn of `{id}`: {e}"))),
        }
    }
    for c in &critical {
        if !depends_on.iter().any(|e| &e.target == c) {
            errors.push(err(format!(
                "annotation {ANNOTATION_PREFIX}critical names `{c}`, which is not in spec.dependsOn of `{id}`: add it there or remove it from the annotation"
            )));
        }
    }
    let mut extra = |field: &'static str, reference: &str, errors: &mut Vec<CatalogError>| {
        match ComponentId::parse(reference) {
            Ok(from) => out.extra_edges.push(ExtraEdge {
                from,
                to: id.clone(),
                field,
                origin: origin.clone(),
            }),
            Err(e) => errors.push(err(format!("{field} of `{id}`: {e}"))),
        }
    };
    if let Some(system) = entity.spec.system.as_deref() {
        extra("spec.system", system, &mut errors);
    }
    for dependent in &entity.spec.dependency_of {
        extra("spec.dependencyOf", dependent, &mut errors);
    }
    let mut checks = Vec::new();
    if let Some(url) = annotation("check-url") {
        let raw = RawCheck {
            url: url.to_string(),
            interval: annotation("check-interval").map(str::to_string),
            timeout: None,
            expect_status: None,
            body_contains: None,
        };
        match raw.validate() {
            Ok(c) => checks.push(c),
            Err(m) => errors.push(err(format!(
                "annotation {ANNOTATION_PREFIX}check-url of `{id}`: {m}"
            ))),
        }
    }
    if !errors.is_empty() {
        out.errors.extend(errors);
        return;
    }
    let mut links = Links {
        runbook: annotation("runbook").map(str::to_string),
        dashboard: annotation("dashboard").map(str::to_string),
        repo: annotations
            .get("backstage.io/source-location")
            .map(|s| s.trim_start_matches("url:").to_string()),
        other: BTreeMap::new(),
    };
    for link in entity.metadata.links {
        let label = format!(
            "{} {}",
            link.kind.as_deref().unwrap_or_default(),
            link.title.as_deref().unwrap_or_default()
        )
        .to_ascii_lowercase();
        let slot = if label.contains("runbook") {
            &mut links.runbook
        } else if label.contains("dashboard") {
            &mut links.dashboard
        } else if label.contains("repo") || label.contains("source") {
            &mut links.repo
        } else {
            let title = link.title.unwrap_or_else(|| link.url.clone());
            links.other.insert(title, link.url);
            continue;
        };
        if slot.is_none() {
            *slot = Some(link.url);
        }
    }
    let component_kind = match kind.as_str() {
        "API" => Kind::Api,
        "System" => Kind::System,
        "Resource" => entity
            .spec
            .kind
            .as_deref()
            .map(Kind::parse)
            .unwrap_or(Kind::Resource),
        _ => entity
            .spec
            .kind
            .as_deref()
            .map(Kind::parse)
            .unwrap_or_default(),
    };
    out.components.push(Component {
        title: entity
            .metadata
            .title
            .unwrap_or_else(|| id.as_str().to_string()),
        id,
        kind: component_kind,
        owner: entity.spec.owner.as_deref().map(|o| {
            ComponentId::parse(o)
                .map(|o| o.to_string())
                .unwrap_or_else(|_| o.to_string())
        }),
        tenants: list(annotation("tenants"))
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect(),
        tags: entity.metadata.tags,
        links,
        depends_on,
        checks,
        origin,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(files: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
        files
            .iter()
            .map(|(f, t)| (PathBuf::from(f), t.to_string()))
            .collect()
    }

    #[test]
    fn own_format_list_map_and_multi_document() {
        let loaded = load_texts(&texts(&[(
            "a.yaml",
            "components:\n  - id: api\n    dependsOn: [db, { id: queue, critical: true }]\n  - { id: db, kind: db }\n---\n# second\n- id: queue\n  kind: queue\n",
        )]))
        .unwrap();
        let cat = &loaded.catalog;
        assert_eq!(cat.len(), 3);
        let api = cat.lookup("api").unwrap();
        assert_eq!(api.origin.line, 2);
        assert_eq!(
            api.depends_on[1],
            Edge {
                target: ComponentId::parse("queue").unwrap(),
                critical: true
            }
        );
        assert_eq!(cat.lookup("db").unwrap().origin.line, 4);
        assert_eq!(cat.lookup("queue").unwrap().origin.line, 7);
        assert_eq!(cat.lookup("queue").unwrap().kind, Kind::Queue);
    }

    #[test]
    fn yaml_errors_have_absolute_lines() {
        let errors = load_texts(&texts(&[(
            "a.yaml",
            "- id: a\n---\n- id: b\n  dependson: [a]\n",
        )]))
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 4, "{}", errors[0]);
        assert!(
            errors[0].message.contains("unknown field `dependson`"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn checks_are_validated() {
        let check = |yaml: &str| {
            load_texts(&texts(&[(
                "c.yaml",
                &format!("- id: a\n  checks: [{yaml}]\n"),
            )]))
            .map(|l| l.catalog.lookup("a").map(|c| c.checks[0].clone()))
            .map_err(|e| e[0].message.clone())
        };
        let ok = check("{ url: 'https://a.example/healthz' }")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                ok.interval.as_secs(),
                ok.timeout.as_secs(),
                ok.expect_status
            ),
            (60, 10, 200)
        );
        assert!(check("{ url: 'ftp://a' }").unwrap_err().contains("http://"));
        assert!(
            check("{ url: 'https://a', interval: 1s }")
                .unwrap_err()
                .contains("at least 5s")
        );
        assert!(
            check("{ url: 'https://a', interval: 10x }")
                .unwrap_err()
                .contains("interval")
        );
        assert!(
            check("{ url: 'https://a', interval: 30s, timeout: 1m }")
                .unwrap_err()
                .contains("timeout")
        );
        assert!(
            check("{ url: 'https://a', expect_status: 99 }")
                .unwrap_err()
                .contains("expect_status")
        );
    }

    #[test]
    fn finds_value_lines() {
        let text = "- id: ab\n- id: 'a'\n- {id: a, title: x}\n";
        assert_eq!(find_value_line(text, 0, "id", "a"), Some(1));
        assert_eq!(find_value_line(text, 2, "id", "a"), Some(2));
    }
}
