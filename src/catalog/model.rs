//! The catalog's values: components, their kinds, links, dependency edges and
//! declared HTTP checks.
//!
//! # Identifiers
//!
//! A [`ComponentId`] is lowercase and flat. Backstage entity references are
//! reduced to their name: `component:default/payments-db`,
//! `resource:payments-db`, `Payments-DB` and `payments-db` are all
//! `payments-db`. The kind prefix is always dropped: one name means one
//! component whatever its kind, so a Backstage `Component` and a `Resource`
//! with the same name are reported as a duplicate id (rename one). A namespace
//! other than `default` is kept: `component:billing/api` is `billing/api`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A component's identifier, normalised (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId(String);

/// Why a text is not a component id or reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Nothing was written.
    #[error("the id is empty: write a name such as payments-api")]
    Empty,
    /// A character that ids may not contain.
    #[error(
        "`{0}` is not a component id: use letters, digits, `-`, `_` and `.`, optionally `kind:namespace/name`"
    )]
    Invalid(String),
}

impl ComponentId {
    /// Reads an id or a Backstage entity reference (`kind:namespace/name`,
    /// `kind:name`, `namespace/name`, `name`), case-insensitively.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(IdError::Empty);
        }
        let lower = text.to_ascii_lowercase();
        let without_kind = match lower.split_once(':') {
            Some((kind, rest)) if is_name(kind) => rest,
            Some(_) => return Err(IdError::Invalid(text.to_string())),
            None => lower.as_str(),
        };
        let id = match without_kind.split_once('/') {
            Some(("default", name)) => name.to_string(),
            Some((ns, name)) if is_name(ns) && is_name(name) => format!("{ns}/{name}"),
            Some(_) => return Err(IdError::Invalid(text.to_string())),
            None => without_kind.to_string(),
        };
        let name = id.rsplit('/').next().unwrap_or_default();
        if !is_name(name) {
            return Err(IdError::Invalid(text.to_string()));
        }
        Ok(Self(id))
    }

    /// The normalised id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ComponentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What sort of thing a component is. Unknown words are kept as `Other`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// A service we run (the default).
    #[default]
    Service,
    /// A database.
    Database,
    /// A queue or stream.
    Queue,
    /// A Kubernetes cluster.
    Cluster,
    /// Something outside our control (a SaaS, a partner API).
    External,
    /// A website or frontend.
    Website,
    /// An API (Backstage `API`).
    Api,
    /// A group of components (Backstage `System`).
    System,
    /// Storage, caches and other resources.
    Resource,
    /// Any other word, lowercased.
    Other(String),
}

impl Kind {
    /// Reads a kind word case-insensitively (`db` and `postgres` are databases).
    pub fn parse(word: &str) -> Self {
        match word.trim().to_ascii_lowercase().as_str() {
            "" | "service" | "svc" => Kind::Service,
            "database" | "db" | "postgres" | "postgresql" | "mysql" => Kind::Database,
            "queue" | "stream" | "kafka" | "topic" => Kind::Queue,
            "cluster" | "kubernetes-cluster" => Kind::Cluster,
            "external" | "saas" | "third-party" => Kind::External,
            "website" | "frontend" => Kind::Website,
            "api" => Kind::Api,
            "system" => Kind::System,
            "resource" | "storage" | "cache" => Kind::Resource,
            other => Kind::Other(other.to_string()),
        }
    }

    /// The kind as written in catalogs.
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Service => "service",
            Kind::Database => "database",
            Kind::Queue => "queue",
            Kind::Cluster => "cluster",
            Kind::External => "external",
            Kind::Website => "website",
            Kind::Api => "api",
            Kind::System => "system",
            Kind::Resource => "resource",
            Kind::Other(word) => word,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where people go for a component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    /// The runbook.
    pub runbook: Option<String>,
    /// The dashboard.
    pub dashboard: Option<String>,
    /// The source repository.
    pub repo: Option<String>,
    /// Any other links, by title.
    pub other: BTreeMap<String, String>,
}

/// A `dependsOn` edge: this component needs `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The component depended upon.
    pub target: ComponentId,
    /// A critical edge turns a red dependency into a red dependent.
    pub critical: bool,
}

/// A declared HTTP health check (validated; run elsewhere).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    /// An absolute `http` or `https` URL.
    pub url: String,
    /// How often to run it.
    pub interval: Duration,
    /// How long to wait for an answer; shorter than the interval.
    pub timeout: Duration,
    /// The expected status code (default 200).
    pub expect_status: u16,
    /// Text the body must contain, if any.
    pub body_contains: Option<String>,
}

/// Where a component was declared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// The 1-based line of its id (or of its document when unknown).
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One thing in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// Its id.
    pub id: ComponentId,
    /// A human title (the id when none was given).
    pub title: String,
    /// What sort of thing it is.
    pub kind: Kind,
    /// The owning team, if known.
    pub owner: Option<String>,
    /// The tenants (customers) it belongs to; empty means internal/shared,
    /// visible to staff only.
    pub tenants: Vec<String>,
    /// Free tags.
    pub tags: Vec<String>,
    /// Runbook, dashboard, repository and other links.
    pub links: Links,
    /// What it depends on.
    pub depends_on: Vec<Edge>,
    /// Declared HTTP checks.
    pub checks: Vec<HttpCheck>,
    /// Where it was declared.
    pub origin: Origin,
}

impl Component {
    /// A bare component (title = id, kind service), for tests and generators.
    pub fn new(id: ComponentId) -> Self {
        Self {
            title: id.as_str().to_string(),
            id,
            kind: Kind::Service,
            owner: None,
            tenants: Vec::new(),
            tags: Vec::new(),
            links: Links::default(),
            depends_on: Vec::new(),
            checks: Vec::new(),
            origin: Origin::default(),
        }
    }

    /// Whether a customer of `tenant` may see this component.
    pub fn visible_to_tenant(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t.eq_ignore_ascii_case(tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backstage_references_reduce_to_the_name() {
        for text in [
            "payments-db",
            "Payments-DB",
            "component:default/payments-db",
            "resource:payments-db",
            "default/payments-db",
            " RESOURCE:default/payments-db ",
        ] {
            assert_eq!(
                ComponentId::parse(text).unwrap().as_str(),
                "payments-db",
                "{text}"
            );
        }
        assert_eq!(
            ComponentId::parse("component:billing/api")
                .unwrap()
                .as_str(),
            "billing/api"
        );
    }

    #[test]
    fn bad_ids_are_refused() {
        assert_eq!(ComponentId::parse("  "), Err(IdError::Empty));
        for text in ["a b", "a:b:c", "x/", "/x", "a/b/c", "é"] {
            assert!(ComponentId::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn kinds_have_aliases() {
        assert_eq!(Kind::parse("DB"), Kind::Database);
        assert_eq!(Kind::parse("queue"), Kind::Queue);
        assert_eq!(Kind::parse("lambda"), Kind::Other("lambda".into()));
        assert_eq!(Kind::parse("lambda").to_string(), "lambda");
    }
}
