//! The catalog: the example catalog, loader errors, and property tests of the
//! health roll-up.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use watchkeeper::catalog::{
    Catalog, Component, ComponentId, Edge, HealthBook, Input, Kind, Rag, load, load_texts,
};

fn id(s: &str) -> ComponentId {
    ComponentId::parse(s).unwrap()
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog")
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
fn example_catalog_loads_without_warnings() {
    let loaded = load(&[example_dir()]).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let cat = &loaded.catalog;
    assert_eq!(cat.len(), 14);

    let checkout = cat.lookup("acme-checkout-api").unwrap();
    assert_eq!(checkout.kind, Kind::Service);
    assert!(checkout.origin.file.ends_with("acme.yaml"));
    assert!(checkout.links.runbook.is_some());
    assert_eq!(checkout.checks[0].body_contains.as_deref(), Some("ok"));
    let critical: Vec<_> = checkout
        .depends_on
        .iter()
        .filter(|e| e.critical)
        .map(|e| e.target.as_str())
        .collect();
    assert_eq!(critical, ["acme-orders-db", "acme-prod"]);

    // Backstage: references reduced to names, spec.system makes the system
    // depend on its parts, annotations give tenants, critical edges, checks.
    let billing = cat.lookup("component:default/globex-billing-api").unwrap();
    assert_eq!(billing.tenants, ["globex"]);
    assert_eq!(billing.owner.as_deref(), Some("team-billing"));
    assert_eq!(billing.checks[0].interval.as_secs(), 30);
    assert_eq!(
        billing.links.runbook.as_deref(),
        Some("https://runbooks.example.com/globex/billing")
    );
    assert_eq!(
        billing.links.repo.as_deref(),
        Some("https://github.com/example/globex-billing")
    );
    assert!(billing.depends_on.contains(&Edge {
        target: id("globex-billing-db"),
        critical: true
    }));
    let system = cat.lookup("globex-billing").unwrap();
    assert_eq!(system.kind, Kind::System);
    let parts: Vec<_> = system
        .depends_on
        .iter()
        .map(|e| e.target.as_str())
        .collect();
    assert_eq!(
        parts,
        [
            "globex-billing-api",
            "globex-billing-db",
            "globex-billing-events"
        ]
    );
    assert_eq!(
        cat.lookup("globex-billing-db").unwrap().kind,
        Kind::Database
    );
    assert!(
        cat.lookup("team-billing").is_none(),
        "Group entities are skipped"
    );
}

#[test]
fn example_catalog_rolls_up_and_keeps_tenants_apart() {
    let loaded = load(&[example_dir()]).unwrap();
    let mut book = HealthBook::new(Arc::new(loaded.catalog));
    book.set_input(&id("acme-checkout-api"), input("http", Rag::Green))
        .unwrap();
    book.set_input(&id("acme-shop-web"), input("http", Rag::Green))
        .unwrap();
    let transitions = book
        .set_input(&id("acme-orders-db"), input("kube", Rag::Red))
        .unwrap();
    let changed: Vec<_> = transitions.iter().map(|t| (t.id.as_str(), t.to)).collect();
    assert_eq!(
        changed,
        [
            ("acme-orders-db", Rag::Red),
            ("acme-checkout-api", Rag::Red),
            ("acme-shop-web", Rag::Amber)
        ]
    );
    let health = book.rolled(&id("acme-checkout-api")).unwrap();
    assert_eq!(
        health.reasons[0].to_string(),
        "critical dependency acme-orders-db is red"
    );

    let cat = book.catalog();
    let for_acme = cat.suggest("billing", 10, |c| c.visible_to_tenant("acme"));
    assert!(for_acme.is_empty(), "acme must not see globex's billing");
    let for_globex = cat.suggest("billing", 10, |c| c.visible_to_tenant("globex"));
    assert_eq!(for_globex[0].id.as_str(), "globex-billing");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn duplicate_ids_name_both_places() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.yaml",
        "- id: db\n- id: api\n  dependsOn: [db]\n",
    );
    write(
        dir.path(),
        "b/catalog-info.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: DB\n",
    );
    let errors = load(&[dir.path().to_path_buf()]).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.contains("catalog-info.yaml:4: id `db` is declared twice"),
        "{text}"
    );
    assert!(text.contains("a.yaml:1"), "{text}");
}

#[test]
fn unknown_references_suggest_a_close_id() {
    let errors = load_texts(&[(
        "c.yaml".into(),
        "- id: payments-db\n- id: payments-api\n  dependsOn: [payments-bd]\n".into(),
    )])
    .unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "c.yaml:2: `payments-api` has dependsOn `payments-bd`, which is not in the catalog: did you mean `payments-db`?"
    );
}

#[test]
fn cycles_are_warnings_listed_once() {
    let loaded = load_texts(&[(
        "c.yaml".into(),
        "- { id: a, dependsOn: [b] }\n- { id: b, dependsOn: [c] }\n- { id: c, dependsOn: [a] }\n- { id: d, dependsOn: [a] }\n".into(),
    )])
    .unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(
        loaded.warnings[0]
            .to_string()
            .starts_with("c.yaml:1: dependsOn forms a cycle a → b → c → a")
    );
}

#[test]
fn bad_checks_say_what_to_write() {
    let errors = load_texts(&[(
        "c.yaml".into(),
        "components:\n  - id: api\n    checks:\n      - { url: 'not a url', interval: 30s }\n      - { url: 'https://api.example/healthz', interval: soon }\n".into(),
    )])
    .unwrap_err();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0]
            .to_string()
            .starts_with("c.yaml:2: checks of `api`: url `not a url`"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1]
            .message
            .contains("interval: `soon` is not a duration"),
        "{}",
        errors[1]
    );
}

#[test]
fn backstage_multi_document_with_unknown_system() {
    let errors = load_texts(&[(
        "catalog-info.yaml".into(),
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: { name: x }\nspec: { targets: [a] }\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: api\nspec:\n  system: paymnets\n---\napiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: payments\n".into(),
    )])
    .unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "catalog-info.yaml:9: `api` has spec.system `paymnets`, which is not in the catalog: did you mean `payments`?"
    );
}

// ----- property tests of the roll-up -----

/// A random graph: `n` nodes, edges `(from, to, critical)`.
fn graph(acyclic: bool) -> impl Strategy<Value = (usize, Vec<(usize, usize, bool)>)> {
    (1usize..24).prop_flat_map(move |n| {
        let edges =
            prop::collection::vec((0..n, 0..n, any::<bool>()), 0..n * 3).prop_map(move |edges| {
                edges
                    .into_iter()
                    .filter_map(|(a, b, c)| match (acyclic, a.cmp(&b)) {
                        (true, std::cmp::Ordering::Less) => Some((a, b, c)),
                        (true, _) => None,
                        (false, _) => Some((a, b, c)),
                    })
                    .collect::<Vec<_>>()
            });
        (Just(n), edges)
    })
}

fn rag() -> impl Strategy<Value = Option<Rag>> {
    prop_oneof![
        Just(None),
        Just(Some(Rag::Unknown)),
        Just(Some(Rag::Green)),
        Just(Some(Rag::Amber)),
        Just(Some(Rag::Red)),
    ]
}

fn build(n: usize, edges: &[(usize, usize, bool)]) -> Arc<Catalog> {
    let mut comps: Vec<Component> = (0..n)
        .map(|i| Component::new(id(&format!("c{i}"))))
        .collect();
    for &(a, b, critical) in edges {
        comps[a].depends_on.push(Edge {
            target: id(&format!("c{b}")),
            critical,
        });
    }
    Arc::new(Catalog::build(comps).unwrap())
}

/// The rule, computed naively: from own health, raise every component until
/// nothing changes (the least fixpoint over the whole graph).
fn oracle(cat: &Catalog, book: &HealthBook) -> BTreeMap<ComponentId, Rag> {
    let own = |c: &Component| book.own(&c.id).map(|h| h.rag).unwrap_or_default();
    let mut rag: BTreeMap<ComponentId, Rag> = cat.iter().map(|c| (c.id.clone(), own(c))).collect();
    loop {
        let mut changed = false;
        for c in cat.iter() {
            let mut r = own(c);
            for e in &c.depends_on {
                r = r.max(rag[&e.target].through_edge(e.critical));
            }
            if r != rag[&c.id] {
                rag.insert(c.id.clone(), r);
                changed = true;
            }
        }
        if !changed {
            return rag;
        }
    }
}

fn rolled(book: &HealthBook) -> BTreeMap<ComponentId, Rag> {
    book.catalog()
        .iter()
        .map(|c| (c.id.clone(), book.rag(&c.id).unwrap_or_default()))
        .collect()
}

fn apply(book: &mut HealthBook, updates: &[(usize, usize, Option<Rag>)]) {
    for &(node, source, rag) in updates {
        let id = id(&format!("c{node}"));
        let source = format!("s{source}");
        match rag {
            Some(rag) => book.set_input(&id, input(&source, rag)).map(drop).unwrap(),
            None => book
                .clear_input(&id, &source, DateTime::<Utc>::UNIX_EPOCH)
                .map(drop)
                .unwrap(),
        }
    }
}

/// A graph and a sequence of input updates `(node, source, rag or clear)`.
type Scenario = (
    (usize, Vec<(usize, usize, bool)>),
    Vec<(usize, usize, Option<Rag>)>,
);

fn scenario(acyclic: bool) -> impl Strategy<Value = Scenario> {
    graph(acyclic).prop_flat_map(|(n, edges)| {
        let updates = prop::collection::vec((0..n, 0usize..3, rag()), 0..40);
        (Just((n, edges)), updates)
    })
}

fn check_rule(book: &HealthBook) -> Result<(), TestCaseError> {
    let cat = book.catalog();
    for c in cat.iter() {
        let mine = book.rag(&c.id).unwrap_or_default();
        let own = book.own(&c.id).map(|h| h.rag).unwrap_or_default();
        prop_assert!(mine >= own, "{} is greener than its own inputs", c.id);
        for e in &c.depends_on {
            let dep = book.rag(&e.target).unwrap_or_default();
            if e.critical {
                prop_assert!(
                    mine >= dep,
                    "{} is greener than critical {}",
                    c.id,
                    e.target
                );
            }
            if dep == Rag::Red && e.critical {
                prop_assert_eq!(
                    mine,
                    Rag::Red,
                    "{} not red with red critical {}",
                    c.id,
                    e.target
                );
            }
            if dep >= Rag::Amber {
                prop_assert!(
                    mine >= Rag::Amber,
                    "{} not amber with {} {}",
                    c.id,
                    dep,
                    e.target
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rollup_rule_holds_on_dags(((n, edges), updates) in scenario(true)) {
        let mut book = HealthBook::new(build(n, &edges));
        apply(&mut book, &updates);
        check_rule(&book)?;
        prop_assert_eq!(rolled(&book), oracle(book.catalog(), &book));
    }

    #[test]
    fn rollup_rule_holds_with_cycles(((n, edges), updates) in scenario(false)) {
        let mut book = HealthBook::new(build(n, &edges));
        apply(&mut book, &updates);
        check_rule(&book)?;
        prop_assert_eq!(rolled(&book), oracle(book.catalog(), &book));
    }

    #[test]
    fn incremental_equals_recompute_all(((n, edges), updates) in scenario(false)) {
        let mut book = HealthBook::new(build(n, &edges));
        for update in &updates {
            apply(&mut book, std::slice::from_ref(update));
            let mut fresh = book.clone();
            fresh.recompute_all();
            prop_assert_eq!(rolled(&book), rolled(&fresh));
        }
    }

    #[test]
    fn update_order_does_not_matter(
        ((n, edges), updates) in scenario(false),
        seed in any::<u64>(),
    ) {
        // One update per (component, source): a set, applied in two orders.
        let mut set: BTreeMap<(usize, usize), Option<Rag>> = BTreeMap::new();
        for (node, source, rag) in updates {
            set.insert((node, source), rag);
        }
        let forward: Vec<_> = set.iter().map(|(&(n, s), &r)| (n, s, r)).collect();
        let mut shuffled = forward.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let cat = build(n, &edges);
        let mut a = HealthBook::new(Arc::clone(&cat));
        let mut b = HealthBook::new(cat);
        apply(&mut a, &forward);
        apply(&mut b, &shuffled);
        prop_assert_eq!(rolled(&a), rolled(&b));
    }

    #[test]
    fn transitions_report_every_change(((n, edges), updates) in scenario(false)) {
        let mut book = HealthBook::new(build(n, &edges));
        for &(node, source, rag) in &updates {
            let before = rolled(&book);
            let id = id(&format!("c{node}"));
            let source = format!("s{source}");
            let transitions = match rag {
                Some(rag) => book.set_input(&id, input(&source, rag)).unwrap(),
                None => book.clear_input(&id, &source, DateTime::<Utc>::UNIX_EPOCH).unwrap(),
            };
            let after = rolled(&book);
            let changed: BTreeMap<_, _> = before
                .iter()
                .filter(|(k, v)| after[*k] != **v)
                .map(|(k, v)| (k.clone(), (*v, after[k])))
                .collect();
            let reported: BTreeMap<_, _> = transitions.into_iter().map(|t| (t.id, (t.from, t.to))).collect();
            prop_assert_eq!(changed, reported);
        }
    }
}
