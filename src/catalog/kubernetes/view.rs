//! One cluster's view: the objects its watches have listed and streamed, and
//! what it has said about them, turned into [`Step`]s for the recording path
//! (`catalog::observe`). Pure: no store, no network, no clock.
//!
//! - An object that says something is an input of the component it maps to
//!   (source `kube:<cluster>:<kind>/<namespace>/<name>`); it is withdrawn
//!   when the object is deleted, maps elsewhere, or is fine again (a pod).
//! - Nodes are counted per component: one input `kube:<cluster>:nodes`.
//! - After every (re)list of a scope — the first one, one after `410 Gone`,
//!   one after another replica took the cluster over — what the health log
//!   holds for that scope is reconciled with what was listed: an input whose
//!   object is gone, moved, or fine is withdrawn. So a change missed while
//!   the watch was down, or made while another replica held the cluster, is
//!   never lost.
//! - A revision not seen before is passed on as a rollout; the store decides
//!   whether it is new (once across replicas).

use super::config::ClusterConfig;
use super::judge::{self, Kind, NodeState, Sighting, Verdict};
use crate::catalog::graph::Catalog;
use crate::catalog::health::Rag;
use crate::catalog::model::{Component, ComponentId};
use crate::catalog::observe::{Observation, Rollout};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What a watch covers: one kind, in one namespace or all.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// The kind.
    pub kind: Kind,
    /// The namespace; `None` for all (and for nodes).
    pub namespace: Option<String>,
}

impl Scope {
    /// The watches `cluster` needs: every kind, per listed namespace (or all).
    pub fn all_for(cluster: &ClusterConfig) -> Vec<Scope> {
        let mut scopes = Vec::new();
        for kind in Kind::ALL {
            if !kind.namespaced() || cluster.namespaces.is_empty() {
                scopes.push(Scope {
                    kind,
                    namespace: None,
                });
            } else {
                scopes.extend(cluster.namespaces.iter().map(|ns| Scope {
                    kind,
                    namespace: Some(ns.clone()),
                }));
            }
        }
        scopes
    }

    /// Whether `sighting` is one of this scope's objects.
    pub fn covers(&self, sighting: &Sighting) -> bool {
        sighting.kind == self.kind
            && (self.namespace.is_none() || self.namespace == sighting.namespace)
    }

    /// The prefix of the sources of this scope's objects in `cluster`.
    fn prefix(&self, cluster: &str) -> String {
        match &self.namespace {
            Some(ns) => format!("kube:{cluster}:{}/{ns}/", self.kind),
            None => format!("kube:{cluster}:{}/", self.kind),
        }
    }
}

/// The source of a cluster's node count on a component.
pub fn nodes_source(cluster: &str) -> String {
    format!("kube:{cluster}:nodes")
}

/// The source saying whether a cluster's API can be watched.
pub fn api_source(cluster: &str) -> String {
    format!("kube:{cluster}:api")
}

/// The prefix of every source of `cluster`.
pub fn cluster_prefix(cluster: &str) -> String {
    format!("kube:{cluster}:")
}

/// Which component an object feeds, under the cluster's mapping and tenant.
pub struct Mapper {
    catalog: Arc<Catalog>,
    tenant: Option<String>,
    cluster_component: String,
}

impl Mapper {
    /// A mapper over the current `catalog` for `cluster`.
    pub fn new(catalog: Arc<Catalog>, cluster: &ClusterConfig) -> Self {
        Self {
            catalog,
            tenant: cluster.tenant.as_ref().map(|t| t.to_string()),
            cluster_component: cluster.component().to_string(),
        }
    }

    /// A tenant's cluster only feeds components of that tenant alone (or
    /// internal ones), so nothing of it reaches another customer's view.
    fn allowed(&self, component: &Component) -> bool {
        self.tenant.as_ref().is_none_or(|tenant| {
            component
                .tenants
                .iter()
                .all(|t| t.eq_ignore_ascii_case(tenant))
        })
    }

    fn resolve(&self, name: &str) -> Option<ComponentId> {
        let component = self.catalog.lookup(name)?;
        self.allowed(component).then(|| component.id.clone())
    }

    /// The component standing for the cluster, if it is in the catalog.
    pub fn cluster_component(&self) -> Option<ComponentId> {
        self.resolve(&self.cluster_component)
    }

    /// The component `sighting` feeds: the annotation's when present, else
    /// the first label naming a component (nodes: the cluster's component).
    pub fn component(&self, sighting: &Sighting) -> Option<ComponentId> {
        if let Some(name) = &sighting.names.annotation {
            return self.resolve(name);
        }
        if sighting.kind == Kind::Node {
            return self.cluster_component();
        }
        sighting.names.labels.iter().find_map(|n| self.resolve(n))
    }
}

/// What the recording path is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Record an observation (it writes only what changes).
    Record(Observation),
    /// Forget the recorded revision of an object that is gone.
    Forget(String),
}

/// One cluster's objects and what was said about them.
pub struct ClusterView {
    cluster: String,
    scopes: Vec<Scope>,
    objects: BTreeMap<String, Sighting>,
    /// Inputs believed recorded: source → component.
    said: BTreeMap<String, ComponentId>,
    /// Components holding this cluster's node count.
    node_groups: BTreeSet<ComponentId>,
    revisions: HashMap<String, String>,
    listing: HashMap<Scope, BTreeSet<String>>,
    nodes_listed: bool,
}

fn withdraw(component: &ComponentId, source: String, reason: &str, at: DateTime<Utc>) -> Step {
    Step::Record(Observation {
        component: component.to_string(),
        source,
        rag: None,
        reason: reason.to_string(),
        rollout: None,
        at,
    })
}

impl ClusterView {
    /// An empty view of `cluster` (a name) watched through `scopes`.
    pub fn new(cluster: &str, scopes: Vec<Scope>) -> Self {
        Self {
            cluster: cluster.to_string(),
            scopes,
            objects: BTreeMap::new(),
            said: BTreeMap::new(),
            node_groups: BTreeSet::new(),
            revisions: HashMap::new(),
            listing: HashMap::new(),
            nodes_listed: false,
        }
    }

    fn source(&self, key: &str) -> String {
        format!("kube:{}:{key}", self.cluster)
    }

    /// A (re)list of `scope` begins.
    pub fn init(&mut self, scope: &Scope) {
        self.listing.insert(scope.clone(), BTreeSet::new());
    }

    /// An object was listed (`live: false`) or added or changed while watched.
    pub fn apply(
        &mut self,
        mapper: &Mapper,
        sighting: Sighting,
        live: bool,
        at: DateTime<Utc>,
    ) -> Vec<Step> {
        let key = sighting.key();
        for (scope, seen) in &mut self.listing {
            if scope.covers(&sighting) {
                seen.insert(key.clone());
            }
        }
        let kind = sighting.kind;
        let new_object = self.objects.insert(key.clone(), sighting).is_none() && live;
        if kind == Kind::Node {
            return if self.nodes_listed {
                self.node_steps(mapper, &[], at)
            } else {
                Vec::new()
            };
        }
        self.object_steps(mapper, &key, new_object, at)
    }

    /// An object was deleted while watched.
    pub fn delete(&mut self, mapper: &Mapper, sighting: &Sighting, at: DateTime<Utc>) -> Vec<Step> {
        let key = sighting.key();
        self.objects.remove(&key);
        if sighting.kind == Kind::Node {
            return self.node_steps(mapper, &[], at);
        }
        self.gone(&key, at)
    }

    /// The (re)list of `scope` is complete. `existing` are the inputs the
    /// health log holds for this cluster (component, source), whoever
    /// recorded them.
    pub fn init_done(
        &mut self,
        mapper: &Mapper,
        scope: &Scope,
        existing: &[(ComponentId, String)],
        at: DateTime<Utc>,
    ) -> Vec<Step> {
        let seen = self.listing.remove(scope).unwrap_or_default();
        if scope.kind == Kind::Node {
            self.objects
                .retain(|key, s| !scope.covers(s) || seen.contains(key));
            self.nodes_listed = true;
            return self.node_steps(mapper, existing, at);
        }
        let missing: Vec<String> = self
            .objects
            .iter()
            .filter(|(key, s)| scope.covers(s) && !seen.contains(*key))
            .map(|(key, _)| key.clone())
            .collect();
        let mut steps = Vec::new();
        for key in missing {
            self.objects.remove(&key);
            steps.extend(self.gone(&key, at));
        }
        steps.extend(self.reconcile(existing, Some(scope), at));
        steps
    }

    /// Withdraws the inputs in `existing` this view would not have said: of
    /// `only` (else of every scope not being listed right now), and any of
    /// a kind or namespace no longer watched.
    fn reconcile(
        &self,
        existing: &[(ComponentId, String)],
        only: Option<&Scope>,
        at: DateTime<Utc>,
    ) -> Vec<Step> {
        let special = [api_source(&self.cluster), nodes_source(&self.cluster)];
        let mut steps = Vec::new();
        for (component, source) in existing {
            if special.contains(source) {
                continue;
            }
            let scope = self
                .scopes
                .iter()
                .find(|s| source.starts_with(&s.prefix(&self.cluster)));
            let stale = match scope {
                None => true,
                Some(scope) => {
                    let settled = match only {
                        Some(only) => only == scope,
                        None => !self.listing.contains_key(scope),
                    };
                    settled && self.said.get(source) != Some(component)
                }
            };
            if stale {
                steps.push(withdraw(component, source.clone(), "no longer seen", at));
            }
        }
        steps
    }

    /// Maps every object again (after the catalog was reloaded) and
    /// withdraws what no longer fits.
    pub fn resync(
        &mut self,
        mapper: &Mapper,
        existing: &[(ComponentId, String)],
        at: DateTime<Utc>,
    ) -> Vec<Step> {
        let keys: Vec<String> = self
            .objects
            .iter()
            .filter(|(_, s)| s.kind != Kind::Node)
            .map(|(k, _)| k.clone())
            .collect();
        let mut steps = Vec::new();
        for key in keys {
            steps.extend(self.object_steps(mapper, &key, false, at));
        }
        if self.nodes_listed {
            steps.extend(self.node_steps(mapper, existing, at));
        }
        steps.extend(self.reconcile(existing, None, at));
        steps
    }

    /// The cluster's API cannot be watched: an amber input on the cluster's
    /// component says so.
    pub fn unreachable(&self, mapper: &Mapper, problem: &str, at: DateTime<Utc>) -> Vec<Step> {
        let Some(component) = mapper.cluster_component() else {
            return Vec::new();
        };
        vec![Step::Record(Observation {
            component: component.to_string(),
            source: api_source(&self.cluster),
            rag: Some(Rag::Amber),
            reason: format!("cannot watch the Kubernetes API: {problem}"),
            rollout: None,
            at,
        })]
    }

    /// The cluster's API is watched again: the amber input goes (also one
    /// another replica left behind).
    pub fn reachable(&self, existing: &[(ComponentId, String)], at: DateTime<Utc>) -> Vec<Step> {
        let api = api_source(&self.cluster);
        existing
            .iter()
            .filter(|(_, source)| source == &api)
            .map(|(component, _)| withdraw(component, api.clone(), "watched again", at))
            .collect()
    }

    fn gone(&mut self, key: &str, at: DateTime<Utc>) -> Vec<Step> {
        let source = self.source(key);
        let mut steps = Vec::new();
        if let Some(component) = self.said.remove(&source) {
            steps.push(withdraw(&component, source.clone(), "deleted", at));
        }
        if self.revisions.remove(&source).is_some() {
            steps.push(Step::Forget(source));
        }
        steps
    }

    fn object_steps(
        &mut self,
        mapper: &Mapper,
        key: &str,
        new_object: bool,
        at: DateTime<Utc>,
    ) -> Vec<Step> {
        let Some(sighting) = self.objects.get(key) else {
            return Vec::new();
        };
        let source = self.source(key);
        let target = mapper.component(sighting);
        let mut steps = Vec::new();
        if let Some(old) = self.said.get(&source)
            && Some(old) != target.as_ref()
        {
            let reason = match &target {
                Some(new) => format!("now reported on {new}"),
                None => "no longer names a component".to_string(),
            };
            steps.push(withdraw(old, source.clone(), &reason, at));
            self.said.remove(&source);
        }
        let Some(component) = target else {
            return steps;
        };
        match &sighting.verdict {
            Verdict::Says(rag, reason) => {
                let rollout = sighting
                    .revision
                    .as_ref()
                    .filter(|r| self.revisions.get(&source) != Some(*r))
                    .map(|revision| Rollout {
                        revision: revision.clone(),
                        text: sighting.rollout_text(new_object),
                        new_object,
                    });
                if let Some(rollout) = &rollout {
                    self.revisions
                        .insert(source.clone(), rollout.revision.clone());
                }
                steps.push(Step::Record(Observation {
                    component: component.to_string(),
                    source: source.clone(),
                    rag: Some(*rag),
                    reason: reason.clone(),
                    rollout,
                    at,
                }));
                self.said.insert(source, component);
            }
            Verdict::Nothing | Verdict::Node(_) => {
                if self.said.remove(&source).is_some() {
                    steps.push(withdraw(&component, source, "fine again", at));
                }
            }
        }
        steps
    }

    fn node_steps(
        &mut self,
        mapper: &Mapper,
        existing: &[(ComponentId, String)],
        at: DateTime<Utc>,
    ) -> Vec<Step> {
        let mut groups: BTreeMap<ComponentId, Vec<(&str, &NodeState)>> = BTreeMap::new();
        for sighting in self.objects.values() {
            if let Verdict::Node(state) = &sighting.verdict
                && let Some(component) = mapper.component(sighting)
            {
                groups
                    .entry(component)
                    .or_default()
                    .push((sighting.name.as_str(), state));
            }
        }
        let source = nodes_source(&self.cluster);
        let mut steps = Vec::new();
        let before: BTreeSet<ComponentId> = self
            .node_groups
            .iter()
            .cloned()
            .chain(
                existing
                    .iter()
                    .filter(|(_, s)| s == &source)
                    .map(|(c, _)| c.clone()),
            )
            .collect();
        for component in before.iter().filter(|c| !groups.contains_key(*c)) {
            steps.push(withdraw(component, source.clone(), "no nodes", at));
        }
        for (component, nodes) in &groups {
            let (rag, reason) = judge::nodes(nodes);
            steps.push(Step::Record(Observation {
                component: component.to_string(),
                source: source.clone(),
                rag: Some(rag),
                reason,
                rollout: None,
                at,
            }));
        }
        self.node_groups = groups.into_keys().collect();
        steps
    }
}

/// Withdraws every input in `existing` (a cluster that is no longer watched).
pub fn withdraw_all(existing: &[(ComponentId, String)], at: DateTime<Utc>) -> Vec<Step> {
    existing
        .iter()
        .map(|(component, source)| {
            withdraw(component, source.clone(), "cluster no longer watched", at)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::kubernetes::judge::Names;
    use crate::catalog::model::Component;
    use proptest::prelude::*;

    fn id(s: &str) -> ComponentId {
        ComponentId::parse(s).unwrap()
    }

    fn catalog() -> Arc<Catalog> {
        let component = |name: &str, tenants: &[&str]| {
            let mut c = Component::new(id(name));
            c.tenants = tenants.iter().map(|t| t.to_string()).collect();
            c
        };
        Arc::new(
            Catalog::build(vec![
                component("web", &["acme"]),
                component("db", &["acme"]),
                component("shared", &["acme", "globex"]),
                component("portal", &["globex"]),
                component("internal", &[]),
                component("acme-prod", &["acme"]),
            ])
            .unwrap(),
        )
    }

    fn cluster() -> ClusterConfig {
        serde_yaml::from_str("name: acme-prod\ntenant: acme\n").unwrap()
    }

    fn at() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH
    }

    fn object(
        kind: Kind,
        name: &str,
        label: &str,
        verdict: Verdict,
        revision: Option<&str>,
    ) -> Sighting {
        Sighting {
            kind,
            namespace: kind.namespaced().then(|| "shop".to_string()),
            name: name.into(),
            names: Names {
                annotation: None,
                labels: vec![label.to_string()],
            },
            verdict,
            revision: revision.map(str::to_string),
            images: "app=shop:1".into(),
        }
    }

    fn records(steps: &[Step]) -> Vec<(String, Option<Rag>, Option<String>)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Record(o) => Some((
                    o.component.clone(),
                    o.rag,
                    o.rollout.as_ref().map(|r| r.text.clone()),
                )),
                Step::Forget(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_tenants_cluster_feeds_only_that_tenants_components() {
        let mapper = Mapper::new(catalog(), &cluster());
        let says = Verdict::Says(Rag::Red, "down".into());
        for (label, expected) in [
            ("web", Some("web")),
            ("internal", Some("internal")),
            ("portal", None),
            ("shared", None),
            ("nope", None),
        ] {
            let s = object(Kind::Deployment, "x", label, says.clone(), None);
            assert_eq!(
                mapper.component(&s).map(|c| c.to_string()).as_deref(),
                expected,
                "{label}"
            );
        }
        let mut pinned = object(Kind::Deployment, "x", "web", says, None);
        pinned.names.annotation = Some("nope".into());
        assert_eq!(
            mapper.component(&pinned),
            None,
            "the annotation wins outright"
        );
    }

    #[test]
    fn a_rollout_is_passed_on_once_per_revision() {
        let mapper = Mapper::new(catalog(), &cluster());
        let mut view = ClusterView::new("acme-prod", Scope::all_for(&cluster()));
        let scope = Scope {
            kind: Kind::Deployment,
            namespace: None,
        };
        let green = Verdict::Says(Rag::Green, "3 of 3 available".into());
        let checkout = |revision| {
            object(
                Kind::Deployment,
                "checkout",
                "web",
                green.clone(),
                Some(revision),
            )
        };
        view.init(&scope);
        let listed = view.apply(&mapper, checkout("4"), false, at());
        assert_eq!(
            records(&listed),
            [(
                "web".into(),
                Some(Rag::Green),
                Some("deployment shop/checkout rolled out revision 4: app=shop:1".into())
            )],
            "the first revision goes to the store, which keeps it as the baseline"
        );
        view.init_done(&mapper, &scope, &[], at());
        let again = view.apply(&mapper, checkout("4"), true, at());
        assert_eq!(records(&again)[0].2, None);
        let next = view.apply(&mapper, checkout("5"), true, at());
        assert!(
            records(&next)[0]
                .2
                .as_deref()
                .unwrap()
                .contains("revision 5")
        );
        let created = view.apply(
            &mapper,
            object(Kind::Deployment, "fresh", "db", green, Some("1")),
            true,
            at(),
        );
        match &created[0] {
            Step::Record(o) => assert!(o.rollout.as_ref().unwrap().new_object),
            other => panic!("{other:?}"),
        }
        let gone = view.delete(
            &mapper,
            &object(Kind::Deployment, "fresh", "db", Verdict::Nothing, None),
            at(),
        );
        assert_eq!(
            gone,
            [
                withdraw(
                    &id("db"),
                    "kube:acme-prod:deployment/shop/fresh".into(),
                    "deleted",
                    at()
                ),
                Step::Forget("kube:acme-prod:deployment/shop/fresh".into())
            ]
        );
    }

    /// One object of the model cluster.
    #[derive(Clone, Debug)]
    struct Model {
        kind: Kind,
        name: &'static str,
        label: &'static str,
        verdict: Verdict,
        revision: Option<&'static str>,
    }

    impl Model {
        fn sighting(&self) -> Sighting {
            object(
                self.kind,
                self.name,
                self.label,
                self.verdict.clone(),
                self.revision,
            )
        }
    }

    fn model() -> impl Strategy<Value = Model> {
        let kind = prop_oneof![Just(Kind::Deployment), Just(Kind::Pod), Just(Kind::Node)];
        let name = prop_oneof![Just("a"), Just("b"), Just("c")];
        let label = prop_oneof![Just("web"), Just("db"), Just("portal"), Just("nope")];
        let rag = prop_oneof![Just(Rag::Green), Just(Rag::Amber), Just(Rag::Red)];
        let reason = prop_oneof![Just("one"), Just("two")];
        let ready = any::<bool>();
        let revision = prop_oneof![Just(None), Just(Some("1")), Just(Some("2"))];
        (kind, name, label, rag, reason, ready, revision).prop_map(
            |(kind, name, label, rag, reason, ready, revision)| {
                let verdict = match kind {
                    Kind::Node => Verdict::Node(NodeState {
                        ready,
                        problem: (!ready).then(|| "NotReady".to_string()),
                    }),
                    Kind::Pod if ready => Verdict::Nothing,
                    _ => Verdict::Says(rag, reason.to_string()),
                };
                Model {
                    kind,
                    name,
                    label,
                    verdict,
                    revision,
                }
            },
        )
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Created or changed; the watch delivers it or misses it.
        Upsert(Model, bool),
        /// Deleted; the watch delivers it or misses it.
        Delete(Kind, &'static str, bool),
        /// The watch is re-established with a full list (410 Gone, takeover).
        Relist,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (model(), any::<bool>()).prop_map(|(m, d)| Op::Upsert(m, d)),
            2 => (
                prop_oneof![Just(Kind::Deployment), Just(Kind::Pod), Just(Kind::Node)],
                prop_oneof![Just("a"), Just("b"), Just("c")],
                any::<bool>()
            )
                .prop_map(|(k, n, d)| Op::Delete(k, n, d)),
            1 => Just(Op::Relist),
        ]
    }

    type Book = BTreeMap<(ComponentId, String), (Rag, String)>;

    fn apply(book: &mut Book, steps: Vec<Step>) {
        for step in steps {
            if let Step::Record(o) = step {
                let key = (id(&o.component), o.source.clone());
                match o.rag {
                    Some(rag) => {
                        book.insert(key, (rag, o.reason.clone()));
                    }
                    None => {
                        book.remove(&key);
                    }
                }
            }
        }
    }

    fn existing(book: &Book) -> Vec<(ComponentId, String)> {
        book.keys()
            .filter(|(_, s)| s.starts_with("kube:acme-prod:"))
            .cloned()
            .collect()
    }

    fn relist(
        view: &mut ClusterView,
        mapper: &Mapper,
        server: &BTreeMap<String, Sighting>,
        book: &mut Book,
    ) {
        for scope in Scope::all_for(&cluster()) {
            view.init(&scope);
            for s in server.values().filter(|s| scope.covers(s)) {
                let steps = view.apply(mapper, s.clone(), false, at());
                apply(book, steps);
            }
            let steps = view.init_done(mapper, &scope, &existing(book), at());
            apply(book, steps);
        }
    }

    fn expected(mapper: &Mapper, server: &BTreeMap<String, Sighting>) -> Book {
        let mut book = Book::new();
        let mut nodes: BTreeMap<ComponentId, Vec<(&str, &NodeState)>> = BTreeMap::new();
        for s in server.values() {
            let Some(component) = mapper.component(s) else {
                continue;
            };
            match &s.verdict {
                Verdict::Says(rag, reason) => {
                    book.insert(
                        (component, format!("kube:acme-prod:{}", s.key())),
                        (*rag, reason.clone()),
                    );
                }
                Verdict::Node(state) => nodes.entry(component).or_default().push((&s.name, state)),
                Verdict::Nothing => {}
            }
        }
        for (component, list) in nodes {
            book.insert((component, nodes_source("acme-prod")), judge::nodes(&list));
        }
        book
    }

    proptest! {
        /// Whatever the watch delivered or missed, and whatever another
        /// replica left in the log, a relist leaves exactly the inputs the
        /// cluster's objects say now.
        #[test]
        fn a_relist_loses_nothing_and_leaves_nothing_stale(
            stale in proptest::collection::vec(
                (prop_oneof![Just("web"), Just("db"), Just("internal")],
                 prop_oneof![Just("deployment/shop/a"), Just("pod/shop/b"), Just("nodes"), Just("statefulset/gone/x")]),
                0..4),
            ops in proptest::collection::vec(op(), 0..40),
        ) {
            let mapper = Mapper::new(catalog(), &cluster());
            let mut view = ClusterView::new("acme-prod", Scope::all_for(&cluster()));
            let mut book: Book = stale
                .into_iter()
                .map(|(c, s)| ((id(c), format!("kube:acme-prod:{s}")), (Rag::Red, "left behind".into())))
                .collect();
            let mut server: BTreeMap<String, Sighting> = BTreeMap::new();
            relist(&mut view, &mapper, &server, &mut book);
            for op in ops {
                match op {
                    Op::Upsert(m, delivered) => {
                        let s = m.sighting();
                        server.insert(s.key(), s.clone());
                        if delivered {
                            let steps = view.apply(&mapper, s, true, at());
                            apply(&mut book, steps);
                        }
                    }
                    Op::Delete(kind, name, delivered) => {
                        let key = judge::key(kind, kind.namespaced().then_some("shop"), name);
                        if let Some(s) = server.remove(&key) && delivered {
                            let steps = view.delete(&mapper, &s, at());
                            apply(&mut book, steps);
                        }
                    }
                    Op::Relist => relist(&mut view, &mapper, &server, &mut book),
                }
            }
            relist(&mut view, &mapper, &server, &mut book);
            prop_assert_eq!(book, expected(&mapper, &server));
        }
    }
}
