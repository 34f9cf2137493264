//! Loading playbooks: `playbooks/*.yaml` files (and `Playbook` custom
//! resources, through the same checks) become [`Playbook`]s, or `file:line`
//! errors that say what to write instead.
//!
//! Everything a run will need is checked here, once: names and references
//! (components, tenants, forges, clusters), parameter definitions, durations
//! and crons, and every template, rendered against sample values in strict
//! mode, so a typo is found by `watchkeeper check` and not by a requester.

use super::config::PlaybooksConfig;
use super::model::{Action, PlaybookSpec, Scalar};
use super::params::{self, ParamDef};
use super::render;
use crate::auth::{People, Role};
use crate::catalog::Catalog;
use crate::config::{Config, HumanDuration};
use crate::ids::{TenantId, UserId, UsergroupId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A problem in a playbook, at a place in its source.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PlaybookError {
    /// The file (or `cluster:<namespace>/<name>` for a custom resource).
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong and what to write.
    pub message: String,
}

impl fmt::Display for PlaybookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line even when the message quotes a value that spans several.
        let message = self.message.replace(['\n', '\r'], " ");
        write!(f, "{}:{}: {message}", self.file, self.line)
    }
}

/// A checked playbook.
#[derive(Clone, Debug)]
pub struct Playbook {
    /// As written.
    pub spec: PlaybookSpec,
    /// Where it came from (`playbooks/bump-chart.yaml`).
    pub source: String,
    /// Its parameters, checked.
    pub params: Vec<ParamDef>,
    /// Who may request it.
    pub requesters: People,
    /// Who may approve it.
    pub approvers: People,
    /// Distinct approvals needed.
    pub approvals: u32,
    /// How long a request waits.
    pub expires: chrono::Duration,
    /// What `watchkeeper check` warns about (it still loads).
    pub warnings: Vec<PlaybookError>,
}

impl Playbook {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether it is offered in `tenant`'s channels (`None`: our own channels).
    pub fn offered_to(&self, tenant: Option<&TenantId>) -> bool {
        let tenants = &self.spec.applies_to.tenants;
        match tenant {
            None => true,
            Some(t) => tenants.is_empty() || tenants.iter().any(|x| x == t.as_str()),
        }
    }

    /// Whether it applies to `component`.
    pub fn applies_to_component(&self, component: &crate::catalog::model::Component) -> bool {
        let to = &self.spec.applies_to;
        (to.components.is_empty() && to.tags.is_empty())
            || to
                .components
                .iter()
                .any(|c| c.eq_ignore_ascii_case(component.id.as_str()))
            || component.tags.iter().any(|t| to.tags.contains(t))
    }

    /// The catalog components it names, for its change history.
    pub fn components(&self) -> &[String] {
        &self.spec.applies_to.components
    }
}

/// Every playbook, by name.
#[derive(Clone, Debug, Default)]
pub struct Library {
    playbooks: BTreeMap<String, Arc<Playbook>>,
}

impl Library {
    /// A library of `playbooks` (names are unique: `load` checked).
    pub fn new(playbooks: Vec<Playbook>) -> Self {
        Self {
            playbooks: playbooks
                .into_iter()
                .map(|p| (p.name().to_string(), Arc::new(p)))
                .collect(),
        }
    }

    /// The playbook called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Playbook>> {
        self.playbooks.get(name)
    }

    /// Every playbook, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Playbook>> {
        self.playbooks.values()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.playbooks.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty()
    }

    /// What `watchkeeper check` warns about, `file:line: problem`.
    pub fn warnings(&self) -> impl Iterator<Item = &PlaybookError> {
        self.playbooks.values().flat_map(|p| p.warnings.iter())
    }
}

/// The bundled example playbooks, for the bundled example configuration.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "playbooks/bump-chart.yaml",
        include_str!("../../playbooks/bump-chart.yaml"),
    ),
    (
        "playbooks/scale-node-pool.yaml",
        include_str!("../../playbooks/scale-node-pool.yaml"),
    ),
    (
        "playbooks/rotate-certificate.yaml",
        include_str!("../../playbooks/rotate-certificate.yaml"),
    ),
    (
        "playbooks/restart-workload.yaml",
        include_str!("../../playbooks/restart-workload.yaml"),
    ),
];

/// Reads the `*.yaml` files of `paths` (folders are read, not recursed; a
/// folder that does not exist holds no playbooks, a missing file is an error).
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<(String, String)>, Vec<PlaybookError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let read = |path: &Path, files: &mut Vec<(String, String)>, errors: &mut Vec<PlaybookError>| {
        match std::fs::read_to_string(path) {
            Ok(text) => files.push((path.display().to_string(), text)),
            Err(e) => errors.push(error(
                &path.display().to_string(),
                1,
                format!("cannot read: {e}"),
            )),
        }
    };
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
                Err(e) => {
                    errors.push(error(
                        &path.display().to_string(),
                        1,
                        format!("cannot read the folder: {e}"),
                    ));
                    continue;
                }
            };
            entries.sort();
            for entry in entries {
                if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    read(&entry, &mut files, &mut errors);
                }
            }
        } else if path.exists() {
            read(path, &mut files, &mut errors);
        } else if path.extension().is_none() {
            tracing::debug!(folder = %path.display(), "no playbook folder here");
        } else {
            errors.push(error(
                &path.display().to_string(),
                1,
                "does not exist: fix playbooks.paths in the configuration".into(),
            ));
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

fn error(source: &str, line: usize, message: String) -> PlaybookError {
    PlaybookError {
        file: source.to_string(),
        line: line.max(1),
        message,
    }
}

/// What the checks need from the rest of the configuration.
pub struct Context<'a> {
    /// The configuration (tenants, forges, team time zone).
    pub config: &'a Config,
    /// The catalog (component references).
    pub catalog: &'a Catalog,
}

/// Parses and checks `(source, text)` files; every problem is reported.
pub fn load_texts(
    files: &[(String, String)],
    cx: &Context<'_>,
) -> Result<Library, Vec<PlaybookError>> {
    let mut errors = Vec::new();
    let mut playbooks: Vec<Playbook> = Vec::new();
    for (source, text) in files {
        let spec: PlaybookSpec = match serde_yaml::from_str(text) {
            Ok(spec) => spec,
            Err(e) => {
                let line = e.location().map(|l| l.line()).unwrap_or(1);
                let mut message = e.to_string();
                if let Some(cut) = message.rfind(" at line ") {
                    message.truncate(cut);
                }
                errors.push(error(source, line, message));
                continue;
            }
        };
        match check(spec, source, Some(text), cx) {
            Ok(playbook) => {
                if let Some(first) = playbooks.iter().find(|p| p.name() == playbook.name()) {
                    errors.push(error(
                        source,
                        locate(text, &["name"]),
                        format!(
                            "playbook `{}` is also defined in {}; names are unique",
                            playbook.name(),
                            first.source
                        ),
                    ));
                } else {
                    playbooks.push(playbook);
                }
            }
            Err(mut found) => errors.append(&mut found),
        }
    }
    if errors.is_empty() {
        Ok(Library::new(playbooks))
    } else {
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        Err(errors)
    }
}

/// Names Watchkeeper's own secrets start with: never handed to a playbook.
const OWN_SECRETS: &[&str] = &["SLACK_", "GITHUB_", "WATCHKEEPER_", "ALERTMANAGER_"];

/// Problems found so far, as (path into the document, message); lines are
/// found at the end.
#[derive(Default)]
struct Problems(Vec<(Vec<String>, String)>);

impl Problems {
    fn add(&mut self, path: &[&str], message: String) {
        self.0
            .push((path.iter().map(|s| s.to_string()).collect(), message));
    }

    fn add_at(&mut self, path: &[String], message: String) {
        self.0.push((path.to_vec(), message));
    }

    /// Renders a template against sample values; a failure is a problem.
    fn render(
        &mut self,
        path: &[String],
        field: &str,
        template: &str,
        data: &serde_json::Value,
    ) -> Option<String> {
        match render::render(template, data) {
            Ok(out) => Some(out),
            Err(e) => {
                self.add_at(path, format!("{field}: {e}"));
                None
            }
        }
    }
}

fn roles(names: &[String], field: &str, problems: &mut Problems) -> BTreeSet<Role> {
    let mut out = BTreeSet::new();
    for name in names {
        match Role::ALL.iter().find(|r| r.name() == name) {
            Some(role) => {
                out.insert(*role);
            }
            None => problems.add(
                &[field],
                format!("`{name}` is not a role: write customer, support, oncall, sre or admin"),
            ),
        }
    }
    out
}

/// Checks one playbook. `text` is its YAML, for line numbers (custom
/// resources have none: everything is reported at line 1).
pub fn check(
    spec: PlaybookSpec,
    source: &str,
    text: Option<&str>,
    cx: &Context<'_>,
) -> Result<Playbook, Vec<PlaybookError>> {
    let mut p = Problems::default();
    let mut warnings: Vec<(Vec<String>, String)> = Vec::new();
    if !params::is_identifier(&spec.name, 60, '-') {
        p.add(
            &["name"],
            format!(
                "`{}` must be lower-case letters, digits and `-`, starting with a letter",
                spec.name
            ),
        );
    }
    if spec.title.trim().is_empty() {
        p.add(&["title"], "give the playbook a one-line title".into());
    }
    for component in &spec.applies_to.components {
        if cx.catalog.lookup(component).is_none() {
            p.add(
                &["applies_to", "components"],
                format!("`{component}` is not a component of the catalog"),
            );
        }
    }
    let known_tenant = |t: &str| cx.config.customers.contains_key(&TenantId::from(t));
    for tenant in spec
        .applies_to
        .tenants
        .iter()
        .chain(&spec.requesters.tenants)
    {
        if !known_tenant(tenant) {
            p.add(
                &["applies_to"],
                format!("`{tenant}` is not a customer of the configuration"),
            );
        }
    }
    let mut defs = Vec::new();
    for (i, param) in spec.parameters.iter().enumerate() {
        let index = i.to_string();
        match ParamDef::new(param) {
            Ok(def) => {
                if defs.iter().any(|d: &ParamDef| d.name() == def.name()) {
                    p.add(
                        &["parameters", &index, "name"],
                        format!("parameter `{}` is defined twice", def.name()),
                    );
                }
                defs.push(def);
            }
            Err(message) => p.add(&["parameters", &index], message),
        }
    }
    let requester_roles = roles(&spec.requesters.roles, "requesters", &mut p);
    let approver_roles = roles(&spec.approval.roles, "approval", &mut p);
    for (field, groups, users) in [
        (
            "requesters",
            &spec.requesters.usergroups,
            &spec.requesters.users,
        ),
        ("approval", &spec.approval.usergroups, &spec.approval.users),
    ] {
        for group in groups {
            if !group.starts_with('S') {
                p.add(
                    &[field, "usergroups"],
                    format!("`{group}` is not a Slack user group id (they start with S)"),
                );
            }
        }
        for user in users {
            if !user.starts_with(['U', 'W']) {
                p.add(
                    &[field, "users"],
                    format!("`{user}` is not a Slack user id (they start with U or W)"),
                );
            }
        }
    }
    let settings: &PlaybooksConfig = &cx.config.playbooks;
    let requesters = People {
        roles: requester_roles,
        usergroups: spec
            .requesters
            .usergroups
            .iter()
            .map(|g| UsergroupId::from(g.as_str()))
            .collect(),
        users: spec
            .requesters
            .users
            .iter()
            .map(|u| UserId::from(u.as_str()))
            .collect(),
        tenants: spec
            .requesters
            .tenants
            .iter()
            .map(|t| TenantId::from(t.as_str()))
            .collect(),
    };
    if requesters.is_empty() {
        p.add(
            &["requesters"],
            "say who may request it: requesters: { roles: [sre, oncall] }".into(),
        );
    }
    let mut approvers = People {
        roles: approver_roles,
        usergroups: spec
            .approval
            .usergroups
            .iter()
            .map(|g| UsergroupId::from(g.as_str()))
            .collect(),
        users: spec
            .approval
            .users
            .iter()
            .map(|u| UserId::from(u.as_str()))
            .collect(),
        tenants: Vec::new(),
    };
    if approvers.is_empty() {
        approvers.roles = settings.approvers.iter().copied().collect();
    }
    let approvals = spec.approval.approvals.unwrap_or(1);
    if approvals == 0 {
        p.add(
            &["approval", "approvals"],
            "at least one approval is needed: no run goes unapproved".into(),
        );
    }
    if approvals > 10 {
        p.add(&["approval", "approvals"], "at most 10 approvals".into());
    }
    let expires = match &spec.approval.expires {
        None => settings.expires.as_chrono(),
        Some(text) => match text.parse::<HumanDuration>() {
            Ok(d) if d.as_chrono() >= chrono::Duration::minutes(1) => d.as_chrono(),
            Ok(_) => {
                p.add(&["approval", "expires"], "must be at least 1m".into());
                settings.expires.as_chrono()
            }
            Err(e) => {
                p.add(&["approval", "expires"], e.to_string());
                settings.expires.as_chrono()
            }
        },
    };
    for secret in &spec.secrets {
        let ok = !secret.is_empty()
            && secret.starts_with(|c: char| c.is_ascii_uppercase())
            && secret
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            p.add(
                &["secrets"],
                format!("`{secret}` is not an environment variable name (A-Z, 0-9, _)"),
            );
        } else if OWN_SECRETS.iter().any(|p| secret.starts_with(p)) {
            p.add(&["secrets"], format!("`{secret}` is one of Watchkeeper's own secrets; give the playbook a variable of its own"));
        }
    }
    let sample_params = params::params_json(
        &defs
            .iter()
            .map(|d| (d.name().to_string(), d.sample()))
            .collect(),
    );
    let sample = render::context(
        &sample_params,
        1,
        "U0SAMPLE",
        "person",
        &spec.name,
        &spec.title,
    );
    let sample_http = render::with_secrets(&sample, &spec.secrets);
    let mut schedule_names = BTreeSet::new();
    for (i, schedule) in spec.schedules.iter().enumerate() {
        let index = i.to_string();
        if !schedule_names.insert(schedule.name.as_str()) {
            p.add(
                &["schedules", &index, "name"],
                format!("schedule `{}` is defined twice", schedule.name),
            );
        }
        let zone = match &schedule.timezone {
            None => cx.config.team.timezone,
            Some(name) => match name.parse::<chrono_tz::Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    p.add(
                        &["schedules", &index, "timezone"],
                        format!("`{name}` is not an IANA time zone"),
                    );
                    cx.config.team.timezone
                }
            },
        };
        if let Err(e) = crate::scheduler::Recurrence::parse(&schedule.cron, zone) {
            p.add(&["schedules", &index, "cron"], e.to_string());
        }
        let given: BTreeMap<String, String> = schedule
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        let component = |id: &str| component_ref(cx.catalog, id);
        if let Err(e) = params::parse_all(&defs, &given, &component) {
            let mut all = e.problems;
            all.extend(
                e.missing
                    .iter()
                    .map(|m| format!("{m}: required, and a schedule has nobody to ask")),
            );
            p.add(&["schedules", &index, "parameters"], all.join("; "));
        }
        check_channel(
            schedule.channel.as_deref(),
            &["schedules", &index, "channel"],
            &mut p,
        );
    }
    for (i, alert) in spec.alerts.iter().enumerate() {
        let index = i.to_string();
        if alert.alertname.trim().is_empty() {
            p.add(
                &["alerts", &index, "alertname"],
                "name the alert (its alertname label)".into(),
            );
        }
        for (key, template) in &alert.parameters {
            if !defs.iter().any(|d| d.name() == key) {
                p.add(
                    &["alerts", &index, "parameters"],
                    format!("`{key}` is not a parameter of this playbook"),
                );
            }
            if let Err(e) = check_template_syntax(template) {
                p.add(&["alerts", &index, "parameters"], format!("{key}: {e}"));
            }
        }
        check_channel(
            alert.channel.as_deref(),
            &["alerts", &index, "channel"],
            &mut p,
        );
    }
    if spec.actions.is_empty() {
        p.add(&["actions"], "a playbook needs at least one action".into());
    }
    for (i, action) in spec.actions.iter().enumerate() {
        let index = i.to_string();
        let at = |field: &str| vec!["actions".to_string(), index.clone(), field.to_string()];
        match action {
            Action::Gitops(g) => {
                let forge = g.forge.as_deref().unwrap_or(&settings.forge);
                if forge != "git" && !(forge == "github" && cx.config.forges.github.is_some()) {
                    p.render(&at("forge"), "forge", "", &sample);
                    p.add_at(&at("forge"), format!("`{forge}` is not a configured forge: write git, or github with a forges.github section"));
                }
                if g.repository.contains("{{") {
                    p.add_at(&at("repository"), "the repository is never a template: a parameter must not pick where changes go".into());
                } else if let Err(e) = crate::forge::check_repo(&g.repository) {
                    p.add_at(&at("repository"), e.to_string());
                }
                if let Some(base) = &g.base
                    && (base.contains("{{") || crate::forge::check_branch(base).is_err())
                {
                    p.add_at(
                        &at("base"),
                        format!("`{base}` is not a branch name (and never a template)"),
                    );
                }
                let branch = g
                    .branch
                    .clone()
                    .unwrap_or_else(|| super::plan::DEFAULT_BRANCH.to_string());
                if !branch.replace(' ', "").contains("{{run.id}}") {
                    p.add_at(&at("branch"), "the branch must contain {{run.id}}: one branch per run is how a retry finds its pull request".into());
                }
                if let Some(rendered) = p.render(&at("branch"), "branch", &branch, &sample)
                    && let Err(e) = crate::forge::check_branch(&rendered)
                {
                    p.add_at(&at("branch"), e.to_string());
                }
                if g.files.is_empty() {
                    p.add_at(
                        &at("files"),
                        "a pull request needs at least one file".into(),
                    );
                }
                for (f, file) in g.files.iter().enumerate() {
                    let file_at = vec![
                        "actions".to_string(),
                        index.clone(),
                        "files".to_string(),
                        f.to_string(),
                    ];
                    if let Some(path) = p.render(&at("files"), "files", &file.path, &sample)
                        && let Err(e) = crate::forge::check_path(&path)
                    {
                        p.add_at(&file_at, e.to_string());
                    }
                    match (&file.template, file.set.is_empty()) {
                        (Some(template), true) => {
                            p.render(&at("files"), "files", template, &sample);
                        }
                        (None, false) => {
                            for set in &file.set {
                                if let Err(e) = super::yaml_edit::check_path(&set.at) {
                                    p.add_at(&file_at, format!("set: {e}"));
                                }
                                match (&set.value, &set.param) {
                                    (Some(value), None) => {
                                        p.render(&at("files"), "files", value, &sample);
                                    }
                                    (None, Some(param)) if defs.iter().any(|d| d.name() == param) => {}
                                    (None, Some(param)) => p.add_at(&file_at, format!("set: `{param}` is not a parameter of this playbook")),
                                    _ => p.add_at(&file_at, "set: give either value (a template) or param".into()),
                                }
                            }
                        }
                        _ => p.add_at(&file_at, "give either template (the whole file) or set (edits of an existing YAML file)".into()),
                    }
                }
                if let Some(message) = &g.commit_message {
                    p.render(&at("commit_message"), "commit_message", message, &sample);
                }
                p.render(
                    &at("pull_request"),
                    "pull_request",
                    &g.pull_request.title,
                    &sample,
                );
                if let Some(body) = &g.pull_request.body {
                    p.render(&at("pull_request"), "pull_request", body, &sample);
                }
            }
            Action::Kubernetes(k) => {
                if !cx
                    .config
                    .catalog
                    .clusters
                    .iter()
                    .any(|c| c.name == k.cluster)
                {
                    // Playbooks are shared between installations: a missing
                    // cluster is a warning here and a failed dry run there.
                    warnings.push((
                        at("cluster"),
                        format!(
                            "`{}` is not a cluster under catalog.clusters; runs of this playbook fail until it is",
                            k.cluster
                        ),
                    ));
                }
                p.render(&at("namespace"), "namespace", &k.namespace, &sample);
                p.render(&at("name"), "name", &k.name, &sample);
                match (k.operation, &k.replicas) {
                    (super::model::KubeOperation::Scale, Some(replicas)) => {
                        p.render(&at("replicas"), "replicas", replicas, &sample);
                    }
                    (super::model::KubeOperation::Scale, None) => p.add_at(
                        &at("replicas"),
                        "scale needs replicas (e.g. \"{{params.replicas}}\")".into(),
                    ),
                    (super::model::KubeOperation::Restart, Some(_)) => {
                        p.add_at(&at("replicas"), "restart takes no replicas".into())
                    }
                    (super::model::KubeOperation::Restart, None) => {}
                }
            }
            Action::Http(h) => {
                let method = h.method.as_deref().unwrap_or("POST");
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
                    p.add_at(
                        &at("method"),
                        format!("`{method}` is not one of GET, POST, PUT, PATCH, DELETE"),
                    );
                }
                if let Some(url) = p.render(&at("url"), "url", &h.url, &sample_http)
                    && !(url.starts_with("https://") || url.starts_with("http://"))
                {
                    p.add_at(
                        &at("url"),
                        "the URL must start with https:// (or http://)".into(),
                    );
                }
                for (name, value) in &h.headers {
                    p.render(
                        &at("headers"),
                        "headers",
                        &format!("{name}{value}"),
                        &sample_http,
                    );
                }
                if let Some(body) = &h.body {
                    p.render(&at("body"), "body", body, &sample_http);
                }
                for status in &h.expect_status {
                    if !(100..=599).contains(status) {
                        p.add_at(
                            &at("expect_status"),
                            format!("{status} is not an HTTP status"),
                        );
                    }
                }
            }
            Action::Notify(n) => {
                check_channel(
                    n.channel.as_deref(),
                    &["actions", &index, "channel"],
                    &mut p,
                );
                p.render(&at("text"), "text", &n.text, &sample);
            }
        }
    }
    if p.0.is_empty() {
        return Ok(Playbook {
            spec,
            source: source.to_string(),
            params: defs,
            requesters,
            approvers,
            approvals,
            expires,
            warnings: warnings
                .into_iter()
                .map(|(path, message)| {
                    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
                    error(source, text.map(|t| locate(t, &refs)).unwrap_or(1), message)
                })
                .collect(),
        });
    }
    Err(p
        .0
        .into_iter()
        .map(|(path, message)| {
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            let line = text.map(|t| locate(t, &refs)).unwrap_or(1);
            error(source, line, message)
        })
        .collect())
}

fn check_channel(channel: Option<&str>, at: &[&str], problems: &mut Problems) {
    if let Some(channel) = channel
        && !(channel.starts_with(['C', 'G'])
            && channel.len() > 1
            && channel.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        problems.add(at, format!("`{channel}` is not a Slack channel id (C…)"));
    }
}

/// An alert parameter's template: labels vary per alert, so only the syntax
/// and that it reads `labels.` are checked.
fn check_template_syntax(template: &str) -> Result<(), String> {
    handlebars::Template::compile(template)
        .map_err(|e| crate::dispatch::templates::syntax_error(&e))?;
    if template.contains("{{") && !template.contains("labels.") {
        return Err(
            "alert parameters are templates over the alert's labels, e.g. {{labels.namespace}}"
                .into(),
        );
    }
    Ok(())
}

/// A component reference, resolved in the catalog to its id.
pub fn component_ref(catalog: &Catalog, text: &str) -> Result<String, String> {
    catalog
        .lookup(text)
        .map(|c| c.id.to_string())
        .ok_or_else(|| format!("`{text}` is not a component of the catalog"))
}

/// The 1-based line of `path` (keys, and list indexes as numbers) in a block
/// YAML `text`; the deepest part found when the rest cannot be (flow style).
pub fn locate(text: &str, path: &[&str]) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let content = |l: &str| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && t != "---"
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (mut start, mut end, mut best) = (0usize, lines.len(), 0usize);
    let mut min_col = 0usize;
    for part in path {
        let mut found = None;
        if let Ok(n) = part.parse::<usize>() {
            let col = (start..end)
                .filter(|&i| content(lines[i]))
                .map(|i| indent(lines[i]))
                .filter(|&c| c >= min_col)
                .min();
            let mut item = 0;
            for (i, l) in lines.iter().enumerate().take(end).skip(start) {
                if content(l) && Some(indent(l)) == col && l.trim_start().starts_with("- ") {
                    if item == n {
                        found = Some((i, indent(l), indent(l) + 2));
                        break;
                    }
                    item += 1;
                }
            }
        } else {
            for (i, l) in lines.iter().enumerate().take(end).skip(start) {
                if !content(l) || indent(l) < min_col {
                    continue;
                }
                let t = l.trim_start().trim_start_matches("- ");
                if t.starts_with(&format!("{part}:")) {
                    let col = indent(l) + (l.trim_start().len() - t.len());
                    found = Some((i, col, col + 1));
                    break;
                }
            }
        }
        let Some((line, col, child)) = found else {
            break;
        };
        best = line;
        let block_end = (line + 1..end)
            .find(|&i| content(lines[i]) && indent(lines[i]) <= col)
            .unwrap_or(end);
        start = line;
        end = block_end.max(line + 1);
        min_col = child;
    }
    best + 1
}

/// Scalars given to a schedule, as text.
pub fn scalar_texts(values: &BTreeMap<String, Scalar>) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_for_nested_keys_and_list_items() {
        let text = "name: x\nparameters:\n  - name: a\n    type: string\n  - name: b\n    pattern: '('\nactions:\n  - notify:\n      text: hi\n";
        assert_eq!(locate(text, &["name"]), 1);
        assert_eq!(locate(text, &["parameters", "1"]), 5);
        assert_eq!(locate(text, &["parameters", "1", "pattern"]), 6);
        assert_eq!(locate(text, &["actions", "0", "text"]), 9);
        assert_eq!(locate(text, &["missing"]), 1);
    }
}
