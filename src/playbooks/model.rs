//! The playbook format, as written in `playbooks/*.yaml` and in the `spec` of
//! a `Playbook` custom resource: plain serde types, from which the JSON Schema
//! (`playbooks/playbook.schema.json`) and the CRD's schema are generated.
//!
//! These types say what may be written; `load` checks what they cannot
//! (names, patterns, durations, templates) and turns them into a
//! [`super::Playbook`]. Strings holding templates are Handlebars, rendered in
//! strict mode with `params`, `run` and `playbook` (and, in `http` actions
//! only, `secrets`).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One playbook. As a Kubernetes object, the `spec` of a `Playbook`
/// (`playbooks.watchkeeper.dev`, [`PlaybookResource`]), whose `metadata.name`
/// must equal `name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, CustomResource)]
#[kube(
    group = "watchkeeper.dev",
    version = "v1alpha1",
    kind = "Playbook",
    plural = "playbooks",
    singular = "playbook",
    shortname = "wkpb",
    root = "PlaybookResource",
    namespaced,
    doc = "A Watchkeeper playbook: an approval-gated day-2 operation.",
    printcolumn = r#"{"name":"Title","type":"string","jsonPath":".spec.title"}"#,
    printcolumn = r#"{"name":"Approvals","type":"integer","jsonPath":".spec.approval.approvals"}"#
)]
#[serde(deny_unknown_fields)]
pub struct PlaybookSpec {
    /// Unique name: lower-case letters, digits and `-` (`bump-chart`).
    pub name: String,
    /// One line for lists (`Bump a Helm chart version`).
    pub title: String,
    /// What it does and when to use it.
    #[serde(default)]
    pub description: String,
    /// Where it applies; empty lists mean "anywhere".
    #[serde(default)]
    pub applies_to: AppliesTo,
    /// What a requester fills in, in order.
    #[serde(default)]
    pub parameters: Vec<Parameter>,
    /// Who may request a run (staff roles, user groups, users; customers of
    /// the listed tenants with the `customer` role).
    #[serde(default)]
    pub requesters: Who,
    /// Who must approve a run before it starts.
    #[serde(default)]
    pub approval: Approval,
    /// Environment variables `http` actions may use as `{{secrets.NAME}}`;
    /// never written in YAML, never shown.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Runs requested on a schedule (they wait for approval like any other).
    #[serde(default)]
    pub schedules: Vec<ScheduleTrigger>,
    /// Runs requested by a firing alert (they wait for approval like any other).
    #[serde(default)]
    pub alerts: Vec<AlertTrigger>,
    /// What an approved run does, in order; a failed action stops the run.
    /// Each is written as one key (`- gitops: {…}`).
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    #[schemars(with = "Vec<Action>")]
    pub actions: Vec<Action>,
}

/// Where a playbook applies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    /// Catalog component ids.
    #[serde(default)]
    pub components: Vec<String>,
    /// Any component with one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Customers (tenants) in whose channels it is offered.
    #[serde(default)]
    pub tenants: Vec<String>,
}

/// The type of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Text on one line (`pattern`; `min`/`max` bound its length).
    String,
    /// A whole number (`min`/`max` bound it).
    Integer,
    /// `true` or `false` (also yes/no).
    Boolean,
    /// One of `values`.
    Enum,
    /// A duration such as `30m` or `1h30m` (`min`/`max` are durations).
    Duration,
    /// A catalog component the requester may see, where the playbook applies.
    Component,
}

/// A scalar in YAML: a default value or a schedule's argument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` / `false`.
    Bool(bool),
    /// A whole number.
    Integer(i64),
    /// Text (also durations, enum values, component ids).
    Text(String),
}

/// A boolean, a whole number or text. Kubernetes' structural schemas have no
/// such union, so the CRD leaves the value open (the loader checks it); the
/// editors' schema, [`json_schema`], says exactly which types.
impl JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A boolean, a whole number or text.",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Integer(n) => write!(f, "{n}"),
            Scalar::Text(t) => f.write_str(t),
        }
    }
}

/// One parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// Its key: `key=value` on the command line, `{{params.key}}` in templates.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// What it means (the modal's hint).
    #[serde(default)]
    pub description: String,
    /// Must be given (a default counts as given).
    #[serde(default)]
    pub required: bool,
    /// Used when the requester gives none.
    #[serde(default)]
    pub default: Option<Scalar>,
    /// A regular expression the whole value must match (strings).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Lower bound: a number for integers and string lengths, a duration for durations.
    #[serde(default)]
    pub min: Option<Scalar>,
    /// Upper bound, as `min`.
    #[serde(default)]
    pub max: Option<Scalar>,
    /// The allowed values of an `enum`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// A set of people: by role, Slack user group, user id, and (for customers) tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Who {
    /// Roles: `customer`, `support`, `oncall`, `sre`, `admin`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Slack user group ids (`S…`).
    #[serde(default)]
    pub usergroups: Vec<String>,
    /// Slack user ids (`U…`).
    #[serde(default)]
    pub users: Vec<String>,
    /// Customers whose people (role `customer`) are included, in their own channel.
    #[serde(default)]
    pub tenants: Vec<String>,
}

/// The approval rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Distinct approvers needed (default 1). The requester never counts.
    #[serde(default)]
    pub approvals: Option<u32>,
    /// Roles that may approve; when roles, user groups and users are all
    /// empty, `playbooks.approvers` from the configuration (by default the
    /// `sre` role). Admins always may; `customer` means a customer of the
    /// run's own tenant.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Slack user groups whose members may approve.
    #[serde(default)]
    pub usergroups: Vec<String>,
    /// Slack users who may approve (they also get the request by DM).
    #[serde(default)]
    pub users: Vec<String>,
    /// How long a request waits for approval before it expires (default
    /// `playbooks.expires`, 24h).
    #[serde(default)]
    pub expires: Option<String>,
}

/// A run requested on a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTrigger {
    /// Unique within the playbook.
    pub name: String,
    /// Five-field cron.
    pub cron: String,
    /// IANA time zone of the cron (default the team's).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Where the request is posted (default the ops channel).
    #[serde(default)]
    pub channel: Option<String>,
    /// The parameters of the run.
    #[serde(default)]
    pub parameters: BTreeMap<String, Scalar>,
}

/// A run requested when an alert fires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertTrigger {
    /// The alert's `alertname` label.
    pub alertname: String,
    /// Where the request is posted (default the ops channel).
    #[serde(default)]
    pub channel: Option<String>,
    /// Parameters: templates over the alert's `labels` (`{{labels.namespace}}`).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// One action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Change files in a GitOps repository through a pull request.
    Gitops(GitopsAction),
    /// Scale or restart a workload through the Kubernetes API.
    Kubernetes(KubernetesAction),
    /// Call an HTTP endpoint.
    Http(HttpAction),
    /// Post a message.
    Notify(NotifyAction),
}

/// A pull request in a GitOps repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitopsAction {
    /// `git` (the embedded default) or `github`; default `playbooks.forge`.
    #[serde(default)]
    pub forge: Option<String>,
    /// `owner/name`; never a template.
    pub repository: String,
    /// The branch to merge into (default the repository's default branch); never a template.
    #[serde(default)]
    pub base: Option<String>,
    /// The new branch; a template that must contain `{{run.id}}` (default
    /// `watchkeeper/{{playbook.name}}-{{run.id}}`).
    #[serde(default)]
    pub branch: Option<String>,
    /// The files it writes or edits.
    pub files: Vec<FileChangeSpec>,
    /// The commit message (default the pull request's title).
    #[serde(default)]
    pub commit_message: Option<String>,
    /// The pull request.
    pub pull_request: PullRequestSpec,
    /// Merge by itself once required checks pass (GitHub's auto-merge).
    #[serde(default)]
    pub auto_merge: bool,
}

/// A file of a pull request: written from a template, or edited in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileChangeSpec {
    /// Path in the repository (a template; checked after rendering).
    pub path: String,
    /// The file's whole new content (a template).
    #[serde(default)]
    pub template: Option<String>,
    /// Structured edits of an existing YAML file: values set at paths.
    #[serde(default)]
    pub set: Vec<YamlSet>,
}

/// Sets one value in a YAML document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct YamlSet {
    /// Where: keys separated by `.`, sequence indexes as numbers
    /// (`spec.chart.spec.version`, `spec.template.spec.containers.0.image`).
    pub at: String,
    /// The value as text (a template); written as a YAML string.
    #[serde(default)]
    pub value: Option<String>,
    /// Or a parameter, written with its type (an integer stays a number).
    #[serde(default)]
    pub param: Option<String>,
}

/// The pull request's wording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PullRequestSpec {
    /// Its title (a template).
    pub title: String,
    /// Its description (a template, Markdown).
    #[serde(default)]
    pub body: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Forge logins asked to review.
    #[serde(default)]
    pub reviewers: Vec<String>,
}

/// What a `kubernetes` action does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KubeOperation {
    /// Set the replica count (`replicas`).
    Scale,
    /// `kubectl rollout restart`: stamp the pod template so pods are replaced.
    Restart,
}

/// The kinds of workload a `kubernetes` action may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    Statefulset,
}

/// Scale or restart a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesAction {
    /// A cluster named under `playbooks.kubernetes.clusters`.
    pub cluster: String,
    /// The namespace (a template).
    pub namespace: String,
    /// `deployment` or `statefulset`.
    pub kind: WorkloadKind,
    /// The workload's name (a template).
    pub name: String,
    /// `scale` or `restart`.
    pub operation: KubeOperation,
    /// For `scale`: the replica count (a template rendering a number).
    #[serde(default)]
    pub replicas: Option<String>,
}

/// An HTTP call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE` (default `POST`).
    #[serde(default)]
    pub method: Option<String>,
    /// `https://…` (a template).
    pub url: String,
    /// Headers (templates; `{{secrets.NAME}}` allowed).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body (a template).
    #[serde(default)]
    pub body: Option<String>,
    /// Statuses that count as success (default any 2xx).
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

/// A message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyAction {
    /// A channel id (default the run's thread).
    #[serde(default)]
    pub channel: Option<String>,
    /// What it says (a template; values are escaped for Slack).
    pub text: String,
}

/// The JSON Schema of a playbook file, for editors (`playbooks/playbook.schema.json`).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(PlaybookSpec);
    let mut value = serde_json::to_value(schema).unwrap_or_default();
    if let Some(scalar) = value.pointer_mut("/$defs/Scalar") {
        *scalar = serde_json::json!({
            "description": "A boolean, a whole number or text.",
            "type": ["boolean", "integer", "string"],
        });
    }
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "$id".into(),
            "https://watchkeeper.dev/schemas/playbook.schema.json".into(),
        );
        object.insert("title".into(), "Watchkeeper playbook".into());
    }
    value
}

/// The `Playbook` CustomResourceDefinition, as YAML (`watchkeeper crd`).
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let crd = PlaybookResource::crd();
    let mut text = String::from(
        "# The Playbook CustomResourceDefinition, generated: watchkeeper crd > deploy/kubernetes/crd/playbooks.watchkeeper.dev.yaml\n",
    );
    text.push_str(&serde_yaml::to_string(&crd).unwrap_or_default());
    text
}

/// The schema as the committed file holds it: pretty JSON and a final newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_schema_is_what_the_types_generate() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/playbook.schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == json_schema_text(),
            "playbooks/playbook.schema.json is stale; regenerate it: cargo run -q -- playbook-schema > playbooks/playbook.schema.json"
        );
    }

    #[test]
    fn actions_are_written_as_one_key_each() {
        let yaml = "name: x\ntitle: X\nactions:\n  - notify: { text: hi }\n  - http: { url: 'https://x' }\n";
        let spec: PlaybookSpec = serde_yaml::from_str(yaml).unwrap();
        assert!(matches!(spec.actions[0], Action::Notify(_)));
        assert!(matches!(spec.actions[1], Action::Http(_)));
        let err = serde_yaml::from_str::<PlaybookSpec>(
            "name: x\ntitle: X\nactions:\n  - shell: { run: rm }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("shell"), "{err}");
    }
}
