//! A run's plan: every action rendered into exactly what it will do — each
//! file's content before and after, each request — computed once, before
//! anyone approves. The plan is stored with the run; approvers approve it,
//! the dry run shows it, and execution carries out that plan and nothing
//! else.

use super::load::Playbook;
use super::model::{Action, KubeOperation, WorkloadKind};
use super::params::{ParamValue, Params, params_json};
use super::{render, yaml_edit};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The branch of a `gitops` action that names none.
pub const DEFAULT_BRANCH: &str = "watchkeeper/{{playbook.name}}-{{run.id}}";

/// Everything one run will do, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// One step per action.
    pub steps: Vec<Step>,
}

/// One action, rendered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    /// A pull request.
    Gitops(GitopsStep),
    /// A change through the Kubernetes API.
    Kubernetes(KubeStep),
    /// An HTTP call.
    Http(HttpStep),
    /// A message.
    Notify(NotifyStep),
}

/// A pull request, ready to open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitopsStep {
    /// The configured forge's name.
    pub forge: String,
    /// `owner/name`.
    pub repo: String,
    /// The branch to merge into (`None`: the default branch).
    pub base: Option<String>,
    /// The run's branch.
    pub branch: String,
    /// The commit message.
    pub commit_message: String,
    /// The pull request's title.
    pub title: String,
    /// Its description.
    pub body: String,
    /// Labels.
    pub labels: Vec<String>,
    /// Reviewers (forge logins).
    pub reviewers: Vec<String>,
    /// Merge once checks pass.
    pub auto_merge: bool,
    /// The files, before and after.
    pub files: Vec<PlannedFile>,
}

/// One file of a pull request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFile {
    /// Path in the repository.
    pub path: String,
    /// What it holds now (`None`: it does not exist yet).
    pub before: Option<String>,
    /// What it will hold.
    pub after: String,
}

/// A Kubernetes change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeStep {
    /// The cluster's configured name.
    pub cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Workload kind.
    pub kind: WorkloadKind,
    /// Workload name.
    pub name: String,
    /// What to do.
    pub operation: KubeOperation,
    /// For scale.
    pub replicas: Option<i32>,
}

/// An HTTP call; secret values are stand-ins (see `render`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpStep {
    /// Method.
    pub method: String,
    /// URL.
    pub url: String,
    /// Headers.
    pub headers: BTreeMap<String, String>,
    /// Body.
    pub body: Option<String>,
    /// Statuses that count as success (empty: any 2xx).
    pub expect_status: Vec<u16>,
}

/// A message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyStep {
    /// Channel (`None`: the run's thread).
    pub channel: Option<String>,
    /// Slack mrkdwn, values escaped.
    pub text: String,
}

/// A file the plan needs to read first: (action index, forge, repo, base, path).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileRead {
    /// Which action.
    pub action: usize,
    /// Forge name.
    pub forge: String,
    /// Repository.
    pub repo: String,
    /// Base branch (`None`: default).
    pub base: Option<String>,
    /// Path.
    pub path: String,
}

/// What was read: content by [`FileRead`] (`None`: no such file).
pub type Reads = BTreeMap<FileRead, Option<String>>;

fn render_field(field: &str, template: &str, data: &Value) -> Result<String, String> {
    render::render(template, data).map_err(|e| format!("{field}: {e}"))
}

/// The files `playbook`'s actions will read, for a run with `context`.
pub fn files_to_read(
    playbook: &Playbook,
    default_forge: &str,
    context: &Value,
) -> Result<Vec<FileRead>, String> {
    let mut reads = Vec::new();
    for (i, action) in playbook.spec.actions.iter().enumerate() {
        if let Action::Gitops(g) = action {
            for file in &g.files {
                let path = render_field("path", &file.path, context)?;
                crate::forge::check_path(&path).map_err(|e| e.to_string())?;
                reads.push(FileRead {
                    action: i,
                    forge: g.forge.clone().unwrap_or_else(|| default_forge.to_string()),
                    repo: g.repository.clone(),
                    base: g.base.clone(),
                    path,
                });
            }
        }
    }
    Ok(reads)
}

/// The shape of a YAML tree: what a parameter must not change.
fn shape(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::Mapping(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", shape(k), shape(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        serde_yaml::Value::Sequence(seq) => {
            format!("[{}]", seq.iter().map(shape).collect::<Vec<_>>().join(","))
        }
        serde_yaml::Value::Tagged(t) => format!("!{}", shape(&t.value)),
        _ => "s".into(),
    }
}

/// For a YAML or JSON file written from a template: the document parsed
/// from the real values must have the shape of the one parsed from harmless
/// stand-ins, so no value added keys, items or documents.
fn check_structure(
    path: &str,
    template: &str,
    rendered: &str,
    context: &Value,
    params: &Params,
) -> Result<(), String> {
    let structured = [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| path.ends_with(ext));
    if !structured {
        return Ok(());
    }
    let stand_ins: serde_json::Map<String, Value> = params
        .iter()
        .enumerate()
        .map(|(i, (name, value))| {
            let safe = match value {
                ParamValue::Integer(_) => Value::from(1000 + i64::try_from(i).unwrap_or(0)),
                ParamValue::Bool(_) => Value::Bool(true),
                _ => Value::String(format!("wkvalue{i}")),
            };
            (name.clone(), safe)
        })
        .collect();
    let mut safe_context = context.clone();
    safe_context["params"] = Value::Object(stand_ins);
    let safe = render_field(path, template, &safe_context)?;
    let parse = |text: &str| -> Result<Vec<serde_yaml::Value>, String> {
        use serde::Deserialize as _;
        serde_yaml::Deserializer::from_str(text)
            .map(serde_yaml::Value::deserialize)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    };
    let expected = parse(&safe)
        .map_err(|e| format!("{path}: the template does not render a YAML document ({e})"))?;
    let actual = parse(rendered).map_err(|_| {
        format!("{path}: a parameter value breaks the document's structure; choose a plainer value")
    })?;
    let same = expected.len() == actual.len()
        && expected
            .iter()
            .zip(&actual)
            .all(|(a, b)| shape(a) == shape(b));
    if same {
        Ok(())
    } else {
        Err(format!(
            "{path}: a parameter value changes the document's structure (new keys or items); choose a plainer value"
        ))
    }
}

/// Builds the plan of one run from what was read.
pub fn build(
    playbook: &Playbook,
    default_forge: &str,
    context: &Value,
    params: &Params,
    reads: &Reads,
) -> Result<Plan, String> {
    let mut steps = Vec::new();
    let http_context = render::with_secrets(context, &playbook.spec.secrets);
    for (i, action) in playbook.spec.actions.iter().enumerate() {
        let step = match action {
            Action::Gitops(g) => {
                let forge = g.forge.clone().unwrap_or_else(|| default_forge.to_string());
                let branch = render_field(
                    "branch",
                    g.branch.as_deref().unwrap_or(DEFAULT_BRANCH),
                    context,
                )?;
                crate::forge::check_branch(&branch).map_err(|e| e.to_string())?;
                let mut files = Vec::new();
                for file in &g.files {
                    let path = render_field("path", &file.path, context)?;
                    crate::forge::check_path(&path).map_err(|e| e.to_string())?;
                    let key = FileRead {
                        action: i,
                        forge: forge.clone(),
                        repo: g.repository.clone(),
                        base: g.base.clone(),
                        path: path.clone(),
                    };
                    let before = reads.get(&key).cloned().flatten();
                    let after = match (&file.template, &before) {
                        (Some(template), _) => {
                            let text = render_field(&path, template, context)?;
                            check_structure(&path, template, &text, context, params)?;
                            text
                        }
                        (None, None) => {
                            return Err(format!(
                                "{path} does not exist in {}; a `set` edits an existing file",
                                g.repository
                            ));
                        }
                        (None, Some(current)) => {
                            let mut edits = Vec::new();
                            for set in &file.set {
                                let value = match (&set.value, &set.param) {
                                    (Some(template), _) => serde_yaml::Value::String(render_field(
                                        &set.at, template, context,
                                    )?),
                                    (None, Some(param)) => params
                                        .get(param)
                                        .map(ParamValue::to_yaml)
                                        .ok_or_else(|| {
                                            format!("{}: parameter `{param}` has no value", set.at)
                                        })?,
                                    (None, None) => {
                                        return Err(format!("{}: nothing to set", set.at));
                                    }
                                };
                                edits.push((set.at.clone(), value));
                            }
                            yaml_edit::apply(current, &edits).map_err(|e| format!("{path}: {e}"))?
                        }
                    };
                    files.push(PlannedFile {
                        path,
                        before,
                        after,
                    });
                }
                let title = render_field("pull_request.title", &g.pull_request.title, context)?;
                let title = title.lines().next().unwrap_or_default().trim().to_string();
                let body = match &g.pull_request.body {
                    Some(body) => render_field("pull_request.body", body, context)?,
                    None => playbook.spec.description.clone(),
                };
                let commit_message = match &g.commit_message {
                    Some(message) => render_field("commit_message", message, context)?,
                    None => title.clone(),
                };
                Step::Gitops(GitopsStep {
                    forge,
                    repo: g.repository.clone(),
                    base: g.base.clone(),
                    branch,
                    commit_message,
                    title,
                    body,
                    labels: g.pull_request.labels.clone(),
                    reviewers: g.pull_request.reviewers.clone(),
                    auto_merge: g.auto_merge,
                    files,
                })
            }
            Action::Kubernetes(k) => {
                let name_ok = |field: &str, text: &str| -> Result<(), String> {
                    let ok = !text.is_empty()
                        && text.len() <= 253
                        && text.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                        })
                        && !text.starts_with(['-', '.']);
                    if ok {
                        Ok(())
                    } else {
                        Err(format!("{field} `{text}` is not a Kubernetes name"))
                    }
                };
                let namespace = render_field("namespace", &k.namespace, context)?;
                let name = render_field("name", &k.name, context)?;
                name_ok("namespace", &namespace)?;
                name_ok("name", &name)?;
                let replicas = match &k.replicas {
                    Some(template) => {
                        let text = render_field("replicas", template, context)?;
                        let n: i32 = text
                            .trim()
                            .parse()
                            .map_err(|_| format!("replicas `{text}` is not a whole number"))?;
                        if !(0..=1000).contains(&n) {
                            return Err(format!("replicas {n} is not between 0 and 1000"));
                        }
                        Some(n)
                    }
                    None => None,
                };
                Step::Kubernetes(KubeStep {
                    cluster: k.cluster.clone(),
                    namespace,
                    kind: k.kind,
                    name,
                    operation: k.operation,
                    replicas,
                })
            }
            Action::Http(h) => {
                let url = render_field("url", &h.url, &http_context)?;
                if url.chars().any(char::is_whitespace) {
                    return Err(format!("url `{}` contains spaces", render::shown(&url)));
                }
                let mut headers = BTreeMap::new();
                for (name, value) in &h.headers {
                    headers.insert(name.clone(), render_field("headers", value, &http_context)?);
                }
                let body = h
                    .body
                    .as_ref()
                    .map(|b| render_field("body", b, &http_context))
                    .transpose()?;
                Step::Http(HttpStep {
                    method: h.method.clone().unwrap_or_else(|| "POST".into()),
                    url,
                    headers,
                    body,
                    expect_status: h.expect_status.clone(),
                })
            }
            Action::Notify(n) => {
                let escaped = escape_values(context);
                Step::Notify(NotifyStep {
                    channel: n.channel.clone(),
                    text: render_field("text", &n.text, &escaped)?,
                })
            }
        };
        steps.push(step);
    }
    Ok(Plan { steps })
}

/// The context with every string escaped for Slack mrkdwn (notify texts).
fn escape_values(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(crate::chat::mrkdwn::escape(s)),
        Value::Array(items) => Value::Array(items.iter().map(escape_values).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), escape_values(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The context for one run.
pub fn run_context(
    playbook: &Playbook,
    params: &Params,
    run_id: i64,
    requested_by: &str,
    trigger: &str,
) -> Value {
    render::context(
        &params_json(params),
        run_id,
        requested_by,
        trigger,
        &playbook.spec.name,
        &playbook.spec.title,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_survives_the_store() {
        let kube = Step::Kubernetes(KubeStep {
            cluster: "acme-prod".into(),
            namespace: "shop".into(),
            kind: WorkloadKind::Deployment,
            name: "checkout".into(),
            operation: KubeOperation::Restart,
            replicas: None,
        });
        let plan = Plan { steps: vec![kube] };
        let stored = serde_json::to_value(&plan).unwrap();
        assert_eq!(serde_json::from_value::<Plan>(stored).unwrap(), plan);
    }

    #[test]
    fn shapes_differ_when_keys_are_added() {
        let a: serde_yaml::Value = serde_yaml::from_str("a: 1\nb: [x]\n").unwrap();
        let b: serde_yaml::Value = serde_yaml::from_str("a: 1\nb: [x, y]\n").unwrap();
        let c: serde_yaml::Value = serde_yaml::from_str("a: other\nb: [z]\n").unwrap();
        assert_ne!(shape(&a), shape(&b));
        assert_eq!(shape(&a), shape(&c));
    }
}
