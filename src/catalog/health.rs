//! Health: inputs per component, its own health, and the roll-up over
//! `dependsOn` edges, kept up to date incrementally.
//!
//! # The roll-up rule
//!
//! - Each input (an HTTP check, an alert source, a workload watcher…) says
//!   green, amber, red or unknown, with a reason. One input per source and
//!   component; setting it again replaces it.
//! - Severity order: unknown < green < amber < red. "Worst" is the maximum,
//!   so an unknown input never hides a known one: a component with a green
//!   check and an unknown alert source is green (the unknown is still listed
//!   as a reason).
//! - A component's **own** health is the worst of its inputs; no inputs (or
//!   only unknown ones) is unknown.
//! - Its **rolled-up** health is the worst of its own health and what each
//!   dependency contributes through its edge, from the dependency's rolled-up
//!   health:
//!   - red through a `critical: true` edge → red;
//!   - red through a normal edge → amber;
//!   - amber → amber;
//!   - green → green (this only matters when the component knows nothing
//!     itself: a component without inputs whose dependencies are green is
//!     green; one without inputs and without dependencies is unknown);
//!   - unknown → nothing: an unknown dependency never degrades.
//! - Cycles are allowed: inside a group of components that depend on each
//!   other, health is the smallest solution of the rule (iterated from each
//!   member's own health to a fixpoint), so a cycle never keeps a colour
//!   alive after its cause is gone.
//! - Incremental: an input change recomputes the component's own health and,
//!   only if that changed, its dependents, in dependencies-first order of
//!   the strongly connected components, stopping wherever nothing changed.
//!   The result is always equal to [`HealthBook::recompute_all`], whatever
//!   the order of updates.
//! - Each change of a rolled-up health is a [`Transition`] (notifications are
//!   built on these).

use super::graph::{Catalog, Ix};
use super::model::ComponentId;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::Arc;

/// Red / amber / green, or unknown. Ordered by severity:
/// `Unknown < Green < Amber < Red`, so "worst" is `max`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rag {
    /// Nothing known.
    #[default]
    Unknown,
    /// Healthy.
    Green,
    /// Degraded.
    Amber,
    /// Down.
    Red,
}

impl Rag {
    /// The lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Rag::Unknown => "unknown",
            Rag::Green => "green",
            Rag::Amber => "amber",
            Rag::Red => "red",
        }
    }

    /// What a dependency in this state contributes through an edge.
    pub fn through_edge(self, critical: bool) -> Rag {
        match self {
            Rag::Red if critical => Rag::Red,
            Rag::Red | Rag::Amber => Rag::Amber,
            other => other,
        }
    }
}

impl std::str::FromStr for Rag {
    type Err = ();

    /// The lowercase word, as [`Rag::as_str`] writes it.
    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "red" => Ok(Rag::Red),
            "amber" => Ok(Rag::Amber),
            "green" => Ok(Rag::Green),
            "unknown" => Ok(Rag::Unknown),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Rag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One source's opinion about one component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    /// Who says so: `http:<url>`, `alert:<name>`, `kube:<cluster>`…
    pub source: String,
    /// What it says.
    pub rag: Rag,
    /// Why, in a few words for people.
    pub reason: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// Why a component has the health it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// One of its own inputs.
    Input(Input),
    /// A dependency, through an edge.
    Dependency {
        /// The dependency.
        id: ComponentId,
        /// The dependency's rolled-up health.
        rag: Rag,
        /// Whether the edge is critical.
        critical: bool,
    },
    /// Nothing reports on it and nothing it depends on is known.
    NoInputs,
}

impl Reason {
    /// What this reason contributes to the component's health.
    pub fn contribution(&self) -> Rag {
        match self {
            Reason::Input(input) => input.rag,
            Reason::Dependency { rag, critical, .. } => rag.through_edge(*critical),
            Reason::NoInputs => Rag::Unknown,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Input(input) => write!(f, "{} ({}): {}", input.source, input.rag, input.reason),
            Reason::Dependency { id, rag, critical } => {
                let edge = if *critical {
                    "critical dependency"
                } else {
                    "dependency"
                };
                write!(f, "{edge} {id} is {rag}")
            }
            Reason::NoInputs => f.write_str("no health inputs"),
        }
    }
}

/// A health and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The colour.
    pub rag: Rag,
    /// What made it so, worst first.
    pub reasons: Vec<Reason>,
}

/// A change of a component's rolled-up health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The component.
    pub id: ComponentId,
    /// Before.
    pub from: Rag,
    /// After.
    pub to: Rag,
    /// When the change that caused it happened.
    pub at: DateTime<Utc>,
    /// The main reason of the new health, for people.
    pub reason: String,
}

/// Health book errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// The id is not in the catalog.
    #[error("`{0}` is not in the catalog")]
    UnknownComponent(ComponentId),
}

/// Inputs and health of every component of one catalog.
#[derive(Debug, Clone)]
pub struct HealthBook {
    catalog: Arc<Catalog>,
    inputs: Vec<Vec<Input>>,
    own: Vec<Rag>,
    rolled: Vec<Rag>,
    queued: Vec<u32>,
    epoch: u32,
}

impl HealthBook {
    /// Every component unknown, no inputs.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        let n = catalog.len();
        Self {
            inputs: vec![Vec::new(); n],
            own: vec![Rag::Unknown; n],
            rolled: vec![Rag::Unknown; n],
            queued: vec![0; catalog.scc_count()],
            epoch: 0,
            catalog,
        }
    }

    /// The same inputs over a new catalog (after a reload): inputs of
    /// components that are gone are dropped. Returns the rolled-up changes.
    pub fn with_catalog(self, catalog: Arc<Catalog>, at: DateTime<Utc>) -> (Self, Vec<Transition>) {
        let mut next = Self::new(catalog);
        for (ix, inputs) in self.inputs.into_iter().enumerate() {
            let id = &self.catalog.component(ix as Ix).id;
            if let Some(new_ix) = next.catalog.ix(id) {
                next.own[new_ix as usize] = own_of(&inputs);
                next.inputs[new_ix as usize] = inputs;
            }
        }
        next.recompute_all();
        let mut transitions = Vec::new();
        for ix in 0..next.catalog.len() as Ix {
            let id = &next.catalog.component(ix).id;
            let before = self
                .catalog
                .ix(id)
                .map(|old| self.rolled[old as usize])
                .unwrap_or_default();
            let after = next.rolled[ix as usize];
            if before != after {
                transitions.push(next.transition(ix, before, at));
            }
        }
        (next, transitions)
    }

    /// The catalog this book is about.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Sets (or replaces) the input of `input.source` for `id` and rolls up.
    pub fn set_input(
        &mut self,
        id: &ComponentId,
        input: Input,
    ) -> Result<Vec<Transition>, HealthError> {
        let ix = self.ix(id)?;
        let at = input.since;
        let inputs = &mut self.inputs[ix as usize];
        match inputs.iter_mut().find(|i| i.source == input.source) {
            Some(existing) => *existing = input,
            None => inputs.push(input),
        }
        Ok(self.own_changed(ix, at))
    }

    /// Removes the input of `source` for `id` (if any) and rolls up.
    pub fn clear_input(
        &mut self,
        id: &ComponentId,
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<Transition>, HealthError> {
        let ix = self.ix(id)?;
        self.inputs[ix as usize].retain(|i| i.source != source);
        Ok(self.own_changed(ix, at))
    }

    /// The inputs of `id`.
    pub fn inputs(&self, id: &ComponentId) -> &[Input] {
        self.catalog
            .ix(id)
            .map(|ix| self.inputs[ix as usize].as_slice())
            .unwrap_or_default()
    }

    /// Every (component, source) whose source starts with `prefix` (what a
    /// watcher recorded, e.g. `kube:acme-prod:`).
    pub fn sources_with_prefix(&self, prefix: &str) -> Vec<(ComponentId, String)> {
        self.inputs
            .iter()
            .enumerate()
            .flat_map(|(ix, inputs)| {
                inputs
                    .iter()
                    .filter(|i| i.source.starts_with(prefix))
                    .map(move |i| {
                        (
                            self.catalog.component(ix as Ix).id.clone(),
                            i.source.clone(),
                        )
                    })
            })
            .collect()
    }

    /// The rolled-up colour of `id`, without reasons (cheap).
    pub fn rag(&self, id: &ComponentId) -> Option<Rag> {
        self.catalog.ix(id).map(|ix| self.rolled[ix as usize])
    }

    /// The component's own health: the worst of its inputs, all listed.
    pub fn own(&self, id: &ComponentId) -> Option<Health> {
        let ix = self.catalog.ix(id)? as usize;
        let mut reasons: Vec<Reason> = self.inputs[ix].iter().cloned().map(Reason::Input).collect();
        reasons.sort_by_key(|r| Reverse(r.contribution()));
        if reasons.is_empty() {
            reasons.push(Reason::NoInputs);
        }
        Some(Health {
            rag: self.own[ix],
            reasons,
        })
    }

    /// The rolled-up health with its reasons: when amber or red, every
    /// input and dependency contributing amber or worse, worst first;
    /// when green, what is green; when unknown, the unknown inputs or
    /// "no health inputs".
    pub fn rolled(&self, id: &ComponentId) -> Option<Health> {
        let ix = self.catalog.ix(id)?;
        Some(self.explain(ix))
    }

    /// Recomputes every component's rolled-up health from scratch
    /// (dependencies first). The incremental updates always agree with it.
    pub fn recompute_all(&mut self) {
        for s in 0..self.catalog.scc_count() as u32 {
            self.recompute_scc(s);
        }
    }

    fn ix(&self, id: &ComponentId) -> Result<Ix, HealthError> {
        self.catalog
            .ix(id)
            .ok_or_else(|| HealthError::UnknownComponent(id.clone()))
    }

    fn own_changed(&mut self, ix: Ix, at: DateTime<Utc>) -> Vec<Transition> {
        let own = own_of(&self.inputs[ix as usize]);
        if own == self.own[ix as usize] {
            return Vec::new();
        }
        self.own[ix as usize] = own;
        self.propagate(ix, at)
    }

    /// Recomputes the SCC of `start` and, where something changed, the SCCs
    /// of dependents, in dependencies-first order.
    fn propagate(&mut self, start: Ix, at: DateTime<Utc>) -> Vec<Transition> {
        let catalog = Arc::clone(&self.catalog);
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.queued.iter_mut().for_each(|q| *q = 0);
            self.epoch = 1;
        }
        let mut heap = BinaryHeap::new();
        let first = catalog.scc_of(start);
        self.queued[first as usize] = self.epoch;
        heap.push(Reverse(first));
        let mut transitions = Vec::new();
        let mut before: Vec<Rag> = Vec::new();
        while let Some(Reverse(s)) = heap.pop() {
            let members = catalog.scc_members(s);
            before.clear();
            before.extend(members.iter().map(|&m| self.rolled[m as usize]));
            self.recompute_scc(s);
            for (&m, &was) in members.iter().zip(&before) {
                if self.rolled[m as usize] == was {
                    continue;
                }
                transitions.push(self.transition(m, was, at));
                for &d in catalog.dependents_of(m) {
                    let sd = catalog.scc_of(d);
                    if self.queued[sd as usize] != self.epoch {
                        self.queued[sd as usize] = self.epoch;
                        heap.push(Reverse(sd));
                    }
                }
            }
        }
        transitions
    }

    fn roll(&self, ix: Ix) -> Rag {
        let mut rag = self.own[ix as usize];
        for &(dep, critical) in self.catalog.deps_of(ix) {
            rag = rag.max(self.rolled[dep as usize].through_edge(critical));
        }
        rag
    }

    fn recompute_scc(&mut self, s: u32) {
        let catalog = Arc::clone(&self.catalog);
        let members = catalog.scc_members(s);
        if let [only] = members {
            let self_loop = catalog.deps_of(*only).iter().any(|&(t, _)| t == *only);
            if !self_loop {
                self.rolled[*only as usize] = self.roll(*only);
                return;
            }
        }
        // Least fixpoint: start from own health, raise until stable. The rule
        // is monotone over a 4-level order, so this ends.
        for &m in members {
            self.rolled[m as usize] = self.own[m as usize];
        }
        loop {
            let mut changed = false;
            for &m in members {
                let rag = self.roll(m);
                if rag != self.rolled[m as usize] {
                    self.rolled[m as usize] = rag;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn explain(&self, ix: Ix) -> Health {
        let rag = self.rolled[ix as usize];
        let mut reasons: Vec<Reason> = self.inputs[ix as usize]
            .iter()
            .cloned()
            .map(Reason::Input)
            .chain(
                self.catalog
                    .deps_of(ix)
                    .iter()
                    .map(|&(dep, critical)| Reason::Dependency {
                        id: self.catalog.component(dep).id.clone(),
                        rag: self.rolled[dep as usize],
                        critical,
                    }),
            )
            .filter(|r| {
                let c = r.contribution();
                match rag {
                    Rag::Amber | Rag::Red => c >= Rag::Amber,
                    Rag::Green => c == Rag::Green,
                    Rag::Unknown => matches!(r, Reason::Input(_)),
                }
            })
            .collect();
        reasons.sort_by_key(|r| (Reverse(r.contribution()), !matches!(r, Reason::Input(_))));
        if reasons.is_empty() {
            reasons.push(Reason::NoInputs);
        }
        Health { rag, reasons }
    }

    fn transition(&self, ix: Ix, from: Rag, at: DateTime<Utc>) -> Transition {
        let health = self.explain(ix);
        Transition {
            id: self.catalog.component(ix).id.clone(),
            from,
            to: health.rag,
            at,
            reason: health
                .reasons
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

fn own_of(inputs: &[Input]) -> Rag {
    inputs.iter().map(|i| i.rag).max().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::{Component, Edge};

    fn id(s: &str) -> ComponentId {
        ComponentId::parse(s).unwrap()
    }

    fn catalog(spec: &[(&str, &[(&str, bool)])]) -> Arc<Catalog> {
        let comps = spec
            .iter()
            .map(|(name, deps)| {
                let mut c = Component::new(id(name));
                c.depends_on = deps
                    .iter()
                    .map(|(t, critical)| Edge {
                        target: id(t),
                        critical: *critical,
                    })
                    .collect();
                c
            })
            .collect();
        Arc::new(Catalog::build(comps).unwrap())
    }

    fn input(source: &str, rag: Rag) -> Input {
        Input {
            source: source.into(),
            rag,
            reason: format!("{source} says {rag}"),
            since: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn red_dependency_makes_amber_or_red_if_critical() {
        let cat = catalog(&[
            ("api", &[("db", true), ("cache", false)]),
            ("web", &[("api", false)]),
            ("db", &[]),
            ("cache", &[]),
        ]);
        let mut book = HealthBook::new(cat);
        assert_eq!(book.rag(&id("api")), Some(Rag::Unknown));
        book.set_input(&id("api"), input("http", Rag::Green))
            .unwrap();
        book.set_input(&id("web"), input("http", Rag::Green))
            .unwrap();
        let t = book
            .set_input(&id("cache"), input("http", Rag::Red))
            .unwrap();
        assert_eq!(book.rag(&id("api")), Some(Rag::Amber));
        assert_eq!(book.rag(&id("web")), Some(Rag::Amber));
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].reason, "dependency cache is red");
        book.set_input(&id("db"), input("http", Rag::Red)).unwrap();
        assert_eq!(book.rag(&id("api")), Some(Rag::Red));
        assert_eq!(book.rag(&id("web")), Some(Rag::Amber));
        let health = book.rolled(&id("api")).unwrap();
        assert_eq!(
            health
                .reasons
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["critical dependency db is red", "dependency cache is red"]
        );
        book.clear_input(&id("db"), "http", DateTime::<Utc>::UNIX_EPOCH)
            .unwrap();
        assert_eq!(book.rag(&id("api")), Some(Rag::Amber));
    }

    #[test]
    fn unknown_never_degrades_and_green_fills_in() {
        let cat = catalog(&[
            ("system", &[("a", false), ("b", false)]),
            ("a", &[]),
            ("b", &[]),
        ]);
        let mut book = HealthBook::new(cat);
        book.set_input(&id("a"), input("http", Rag::Green)).unwrap();
        assert_eq!(book.rag(&id("system")), Some(Rag::Green));
        book.set_input(&id("a"), input("kube", Rag::Unknown))
            .unwrap();
        assert_eq!(book.rag(&id("a")), Some(Rag::Green));
        let own = book.own(&id("b")).unwrap();
        assert_eq!(
            (own.rag, own.reasons),
            (Rag::Unknown, vec![Reason::NoInputs])
        );
    }

    #[test]
    fn cycles_settle_and_release() {
        let cat = catalog(&[
            ("a", &[("b", true)]),
            ("b", &[("a", true)]),
            ("c", &[("a", false)]),
        ]);
        let mut book = HealthBook::new(cat);
        book.set_input(&id("a"), input("http", Rag::Red)).unwrap();
        assert_eq!(book.rag(&id("b")), Some(Rag::Red));
        assert_eq!(book.rag(&id("c")), Some(Rag::Amber));
        book.set_input(&id("a"), input("http", Rag::Green)).unwrap();
        assert_eq!(book.rag(&id("a")), Some(Rag::Green));
        assert_eq!(book.rag(&id("b")), Some(Rag::Green));
        assert_eq!(book.rag(&id("c")), Some(Rag::Green));
    }

    #[test]
    fn unknown_component_is_an_error() {
        let mut book = HealthBook::new(catalog(&[("a", &[])]));
        assert_eq!(
            book.set_input(&id("zz"), input("x", Rag::Red)),
            Err(HealthError::UnknownComponent(id("zz")))
        );
    }
}
