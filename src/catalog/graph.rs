//! The merged catalog as a graph: components by id, `dependsOn` edges and
//! their reverse (dependents), strongly connected components in
//! dependencies-first order (iterative Tarjan), cycles, and fuzzy look-up.

use super::error::CatalogError;
use super::model::{Component, ComponentId, Edge};
use std::collections::{HashMap, VecDeque};

/// A dense index of a component inside one [`Catalog`].
pub(crate) type Ix = u32;

const UNVISITED: u32 = u32::MAX;

/// The validated catalog: every id unique, every edge resolved.
///
/// Edges point from a dependent to its dependency. Cycles are allowed; they
/// are found once at build time ([`Catalog::cycles`]) and reported by
/// `check` as warnings.
#[derive(Debug)]
pub struct Catalog {
    components: Vec<Component>,
    index: HashMap<ComponentId, Ix>,
    /// Dependencies in CSR form: `deps[dep_start[i]..dep_start[i + 1]]`.
    dep_start: Vec<u32>,
    deps: Vec<(Ix, bool)>,
    /// Dependents in CSR form.
    rdep_start: Vec<u32>,
    rdeps: Vec<Ix>,
    /// Strongly connected component of each node; SCC numbers are in
    /// dependencies-first order (an SCC only depends on lower numbers).
    scc: Vec<u32>,
    scc_start: Vec<u32>,
    scc_nodes: Vec<Ix>,
    cycles: Vec<Vec<ComponentId>>,
}

impl Catalog {
    /// Validates and indexes components: duplicate ids (both places named)
    /// and unknown references (with a "did you mean") are errors. Repeated
    /// edges to the same target are merged (critical if any is).
    pub fn build(components: Vec<Component>) -> Result<Self, Vec<CatalogError>> {
        let mut errors = Vec::new();
        let mut index: HashMap<ComponentId, Ix> = HashMap::with_capacity(components.len());
        let mut kept: Vec<Component> = Vec::with_capacity(components.len());
        for component in components {
            if let Some(&first) = index.get(&component.id) {
                let first = &kept[first as usize];
                errors.push(CatalogError::new(
                    &component.origin.file,
                    component.origin.line,
                    format!(
                        "id `{}` is declared twice, here and at {}: ids ignore case and Backstage kind prefixes, so rename one of them",
                        component.id, first.origin
                    ),
                ));
                continue;
            }
            index.insert(component.id.clone(), kept.len() as Ix);
            kept.push(component);
        }

        let mut dep_start = Vec::with_capacity(kept.len() + 1);
        let mut deps: Vec<(Ix, bool)> = Vec::new();
        for component in &mut kept {
            dep_start.push(deps.len() as u32);
            let from = deps.len();
            let mut merged: Vec<Edge> = Vec::with_capacity(component.depends_on.len());
            for edge in &component.depends_on {
                let Some(&target) = index.get(&edge.target) else {
                    errors.push(unknown_reference(component, &edge.target, &index));
                    continue;
                };
                match deps[from..].iter_mut().find(|(t, _)| *t == target) {
                    Some(existing) => {
                        existing.1 |= edge.critical;
                        if let Some(e) = merged.iter_mut().find(|e| e.target == edge.target) {
                            e.critical |= edge.critical;
                        }
                    }
                    None => {
                        deps.push((target, edge.critical));
                        merged.push(edge.clone());
                    }
                }
            }
            component.depends_on = merged;
        }
        dep_start.push(deps.len() as u32);
        if !errors.is_empty() {
            return Err(errors);
        }

        let n = kept.len();
        let mut counts = vec![0u32; n + 1];
        for &(target, _) in &deps {
            counts[target as usize + 1] += 1;
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let rdep_start = counts.clone();
        let mut rdeps = vec![0 as Ix; deps.len()];
        let mut fill = counts;
        for from in 0..n {
            for &(target, _) in &deps[dep_start[from] as usize..dep_start[from + 1] as usize] {
                let slot = &mut fill[target as usize];
                rdeps[*slot as usize] = from as Ix;
                *slot += 1;
            }
        }

        let mut catalog = Self {
            components: kept,
            index,
            dep_start,
            deps,
            rdep_start,
            rdeps,
            scc: Vec::new(),
            scc_start: Vec::new(),
            scc_nodes: Vec::new(),
            cycles: Vec::new(),
        };
        catalog.tarjan();
        catalog.find_cycles();
        Ok(catalog)
    }

    /// The number of components.
    pub fn len(&self) -> usize {
        self.components.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// The component with this id.
    pub fn get(&self, id: &ComponentId) -> Option<&Component> {
        self.ix(id).map(|ix| &self.components[ix as usize])
    }

    /// The component named by this text (an id or a Backstage reference).
    pub fn lookup(&self, text: &str) -> Option<&Component> {
        ComponentId::parse(text).ok().and_then(|id| self.get(&id))
    }

    /// All components, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = &Component> {
        self.components.iter()
    }

    /// The components that depend on `id` directly.
    pub fn dependents(&self, id: &ComponentId) -> impl Iterator<Item = &Component> {
        let range = self
            .ix(id)
            .map(|ix| self.rdep_range(ix))
            .unwrap_or_default();
        self.rdeps[range]
            .iter()
            .map(|&ix| &self.components[ix as usize])
    }

    /// Each cycle once, as a closed path (`[a, b, c, a]`), one per group of
    /// components that reach each other.
    pub fn cycles(&self) -> &[Vec<ComponentId>] {
        &self.cycles
    }

    /// The cycles as warnings ("a → b → c → a"), at the first component's place.
    pub fn cycle_warnings(&self) -> Vec<CatalogError> {
        self.cycles
            .iter()
            .filter_map(|cycle| {
                let first = self.get(cycle.first()?)?;
                let path: Vec<&str> = cycle.iter().map(ComponentId::as_str).collect();
                Some(CatalogError::new(
                    &first.origin.file,
                    first.origin.line,
                    format!(
                        "dependsOn forms a cycle {}: health still rolls up, but remove one of these edges if it is not intended",
                        path.join(" → ")
                    ),
                ))
            })
            .collect()
    }

    /// Up to `limit` components that look like `query` (exact id, prefix,
    /// substring of id or title, then close spellings), best first, among
    /// those `filter` accepts. The filter is how tenant isolation is kept:
    /// a rejected component is never scored, so never suggested.
    pub fn suggest(
        &self,
        query: &str,
        limit: usize,
        filter: impl Fn(&Component) -> bool,
    ) -> Vec<&Component> {
        let query = query.trim().to_ascii_lowercase();
        let normalised = ComponentId::parse(&query)
            .map(|id| id.as_str().to_string())
            .unwrap_or_else(|_| query.clone());
        if query.is_empty() || limit == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(u32, &Component)> = self
            .components
            .iter()
            .filter(|c| filter(c))
            .filter_map(|c| score(&normalised, c).map(|s| (s, c)))
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        scored.into_iter().take(limit).map(|(_, c)| c).collect()
    }

    // ----- crate-internal access by dense index, for health roll-up -----

    pub(crate) fn ix(&self, id: &ComponentId) -> Option<Ix> {
        self.index.get(id).copied()
    }

    pub(crate) fn component(&self, ix: Ix) -> &Component {
        &self.components[ix as usize]
    }

    pub(crate) fn deps_of(&self, ix: Ix) -> &[(Ix, bool)] {
        let i = ix as usize;
        &self.deps[self.dep_start[i] as usize..self.dep_start[i + 1] as usize]
    }

    fn rdep_range(&self, ix: Ix) -> std::ops::Range<usize> {
        let i = ix as usize;
        self.rdep_start[i] as usize..self.rdep_start[i + 1] as usize
    }

    pub(crate) fn dependents_of(&self, ix: Ix) -> &[Ix] {
        &self.rdeps[self.rdep_range(ix)]
    }

    pub(crate) fn scc_of(&self, ix: Ix) -> u32 {
        self.scc[ix as usize]
    }

    pub(crate) fn scc_count(&self) -> usize {
        self.scc_start.len().saturating_sub(1)
    }

    pub(crate) fn scc_members(&self, scc: u32) -> &[Ix] {
        let s = scc as usize;
        &self.scc_nodes[self.scc_start[s] as usize..self.scc_start[s + 1] as usize]
    }

    /// Iterative Tarjan. SCCs are numbered as they complete, which is
    /// dependencies first (edges point at dependencies).
    fn tarjan(&mut self) {
        let n = self.components.len();
        let mut order = vec![UNVISITED; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<Ix> = Vec::new();
        let mut calls: Vec<(Ix, usize)> = Vec::new();
        let mut counter = 0u32;
        let mut scc = vec![0u32; n];
        let mut scc_start = vec![0u32];
        let mut scc_nodes = Vec::with_capacity(n);
        for root in 0..n {
            if order[root] != UNVISITED {
                continue;
            }
            order[root] = counter;
            low[root] = counter;
            counter += 1;
            stack.push(root as Ix);
            on_stack[root] = true;
            calls.push((root as Ix, self.dep_start[root] as usize));
            while let Some(top) = calls.last_mut() {
                let (v, pos) = *top;
                let vi = v as usize;
                let end = self.dep_start[vi + 1] as usize;
                if pos < end {
                    top.1 += 1;
                    let w = self.deps[pos].0 as usize;
                    if order[w] == UNVISITED {
                        order[w] = counter;
                        low[w] = counter;
                        counter += 1;
                        stack.push(w as Ix);
                        on_stack[w] = true;
                        calls.push((w as Ix, self.dep_start[w] as usize));
                    } else if on_stack[w] {
                        low[vi] = low[vi].min(order[w]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(parent, _)) = calls.last() {
                    let p = parent as usize;
                    low[p] = low[p].min(low[vi]);
                }
                if low[vi] == order[vi] {
                    let number = (scc_start.len() - 1) as u32;
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        scc[w as usize] = number;
                        scc_nodes.push(w);
                        if w == v {
                            break;
                        }
                    }
                    scc_start.push(scc_nodes.len() as u32);
                }
            }
        }
        self.scc = scc;
        self.scc_start = scc_start;
        self.scc_nodes = scc_nodes;
    }

    /// One closed path per cyclic SCC, starting at its smallest id.
    fn find_cycles(&mut self) {
        let mut cycles = Vec::new();
        for s in 0..self.scc_count() as u32 {
            let members = self.scc_members(s);
            let self_loop = members.len() == 1
                && self
                    .deps_of(members[0])
                    .iter()
                    .any(|&(t, _)| t == members[0]);
            if members.len() < 2 && !self_loop {
                continue;
            }
            let Some(&start) = members
                .iter()
                .min_by(|&&a, &&b| self.component(a).id.cmp(&self.component(b).id))
            else {
                continue;
            };
            let path = self.path_back(start, s);
            cycles.push(
                path.into_iter()
                    .map(|ix| self.component(ix).id.clone())
                    .collect(),
            );
        }
        cycles.sort();
        self.cycles = cycles;
    }

    /// A shortest path `start → … → start` inside SCC `s` (breadth first).
    fn path_back(&self, start: Ix, s: u32) -> Vec<Ix> {
        let mut parent: HashMap<Ix, Ix> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            for &(w, _) in self.deps_of(v) {
                if self.scc_of(w) != s {
                    continue;
                }
                if w == start {
                    let mut path = vec![start, v];
                    let mut at = v;
                    while at != start {
                        at = parent.get(&at).copied().unwrap_or(start);
                        path.push(at);
                    }
                    path.reverse();
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        vec![start, start]
    }
}

fn unknown_reference(
    component: &Component,
    target: &ComponentId,
    index: &HashMap<ComponentId, Ix>,
) -> CatalogError {
    let hint = closest(target.as_str(), index.keys().map(ComponentId::as_str))
        .map(|near| format!("did you mean `{near}`?"))
        .unwrap_or_else(|| "declare it in the catalog or remove the edge".to_string());
    CatalogError::new(
        &component.origin.file,
        component.origin.line,
        format!(
            "`{}` has dependsOn `{}`, which is not in the catalog: {hint}",
            component.id, target
        ),
    )
}

/// The closest of `candidates` to `word` within a small edit distance.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let budget = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, _)| *d <= budget)
        .min()
        .map(|(_, c)| c)
}

fn score(query: &str, component: &Component) -> Option<u32> {
    let id = component.id.as_str();
    if id == query {
        return Some(1_000);
    }
    let title = component.title.to_ascii_lowercase();
    if title == query {
        return Some(950);
    }
    if id.starts_with(query) || title.starts_with(query) {
        return Some(900);
    }
    if id.contains(query) || title.contains(query) {
        return Some(800);
    }
    let similar = strsim::jaro_winkler(query, id).max(strsim::jaro_winkler(query, &title));
    (similar >= 0.8).then_some((similar * 700.0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ComponentId {
        ComponentId::parse(s).unwrap()
    }

    fn comp(name: &str, deps: &[&str]) -> Component {
        let mut c = Component::new(id(name));
        c.depends_on = deps
            .iter()
            .map(|d| Edge {
                target: id(d),
                critical: false,
            })
            .collect();
        c
    }

    #[test]
    fn sccs_are_dependencies_first() {
        let cat = Catalog::build(vec![
            comp("app", &["api"]),
            comp("api", &["db", "cache"]),
            comp("db", &[]),
            comp("cache", &[]),
        ])
        .unwrap();
        let s = |n: &str| cat.scc_of(cat.ix(&id(n)).unwrap());
        assert!(s("db") < s("api") && s("cache") < s("api") && s("api") < s("app"));
        assert!(cat.cycles().is_empty());
        let dependents: Vec<_> = cat.dependents(&id("db")).map(|c| c.id.as_str()).collect();
        assert_eq!(dependents, ["api"]);
    }

    #[test]
    fn cycles_are_reported_once_from_the_smallest_id() {
        let cat = Catalog::build(vec![
            comp("c", &["a"]),
            comp("a", &["b"]),
            comp("b", &["c", "d"]),
            comp("d", &["d"]),
            comp("e", &["a"]),
        ])
        .unwrap();
        let cycles: Vec<Vec<&str>> = cat
            .cycles()
            .iter()
            .map(|c| c.iter().map(ComponentId::as_str).collect())
            .collect();
        assert_eq!(cycles, vec![vec!["a", "b", "c", "a"], vec!["d", "d"]]);
        assert!(cat.cycle_warnings()[0].message.contains("a → b → c → a"));
        let sa = cat.scc_of(cat.ix(&id("a")).unwrap());
        assert_eq!(cat.scc_members(sa).len(), 3);
        assert!(cat.scc_of(cat.ix(&id("e")).unwrap()) > sa);
    }

    #[test]
    fn deep_chains_do_not_overflow_the_stack() {
        let n = 200_000;
        let comps: Vec<_> = (0..n)
            .map(|i| {
                let deps = if i + 1 < n {
                    vec![format!("n{}", i + 1)]
                } else {
                    vec![]
                };
                comp(
                    &format!("n{i}"),
                    &deps.iter().map(String::as_str).collect::<Vec<_>>(),
                )
            })
            .collect();
        let cat = Catalog::build(comps).unwrap();
        assert_eq!(cat.scc_count(), n);
    }

    #[test]
    fn duplicates_and_unknown_references_are_errors() {
        let errors = Catalog::build(vec![
            comp("payments-db", &[]),
            comp("Payments-DB", &[]),
            comp("payments-api", &["payments-bd", "zzz-nothing-like-it"]),
        ])
        .unwrap_err();
        assert_eq!(errors.len(), 3);
        assert!(errors[0].message.contains("declared twice"));
        assert!(errors[1].message.contains("did you mean `payments-db`?"));
        assert!(errors[2].message.contains("declare it in the catalog"));
    }

    #[test]
    fn suggestions_respect_the_filter() {
        let mut a = comp("payments-api", &[]);
        a.tenants = vec!["acme".into()];
        let mut b = comp("payments-apis", &[]);
        b.tenants = vec!["globex".into()];
        let cat = Catalog::build(vec![a, b, comp("ledger", &[])]).unwrap();
        let found: Vec<_> = cat
            .suggest("paymnts-api", 5, |c| c.visible_to_tenant("acme"))
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(found, ["payments-api"]);
        let all: Vec<_> = cat
            .suggest("payments", 5, |_| true)
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(all, ["payments-api", "payments-apis"]);
    }
}
