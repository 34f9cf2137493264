//! Catalog benchmark: a generated catalog of 100,000 components and 300,000
//! `dependsOn` edges (10 % critical, a few 2-cycles), deterministic.
//!
//! 1. *Load*: the YAML text (Watchkeeper's format, 10 files) through
//!    `catalog::load_texts` (parse, validate, index, SCCs): time and resident
//!    memory (`VmRSS`) before and after, with and without the text.
//! 2. *Inputs*: one input on 20 % of the components, applied incrementally.
//! 3. *Look-up*: 100,000 status look-ups of random components (parse the
//!    name, find it, rolled-up health with reasons): p50 / p99 / max.
//!    Target: p99 ≤ 1 ms.
//! 4. *One input change*: 1,000 random components flipped red and back,
//!    incremental roll-up (p50 / p99 / max, components re-evaluated by
//!    transitions) versus `recompute_all` from scratch.
//!
//! ```sh
//! cargo run --release --example catalog_bench
//! ```
//! Options (environment): `BENCH_COMPONENTS` (100000), `BENCH_EDGES` (300000).

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use watchkeeper::catalog::{ComponentId, HealthBook, Input, Rag, load_texts};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn name(i: usize) -> String {
    format!("svc-{i:06}")
}

/// Edges `(from, to, critical)`: each component depends on up to three
/// components after it (a DAG), then back edges close a few 2-cycles until
/// the total is reached.
fn edges(n: usize, total: usize, rng: &mut StdRng) -> Vec<Vec<(usize, bool)>> {
    let per = total / n.max(1);
    let mut out: Vec<Vec<(usize, bool)>> = vec![Vec::new(); n];
    let mut count = 0;
    for (i, deps) in out.iter_mut().enumerate() {
        let room = n - 1 - i;
        while deps.len() < per.min(room) {
            let j = i + 1 + rng.random_range(0..room.min(5_000));
            if !deps.iter().any(|&(t, _)| t == j) {
                deps.push((j, rng.random_bool(0.1)));
                count += 1;
            }
        }
    }
    while count < total && n > 1 {
        let i = rng.random_range(0..n);
        let Some(&(j, _)) = out[i].first() else {
            continue;
        };
        if !out[j].iter().any(|&(t, _)| t == i) {
            out[j].push((i, false));
            count += 1;
        }
    }
    out
}

fn yaml(n: usize, deps: &[Vec<(usize, bool)>], files: usize) -> Vec<(PathBuf, String)> {
    let per_file = n.div_ceil(files);
    (0..files)
        .map(|f| {
            let mut text = String::from("components:\n");
            for i in f * per_file..((f + 1) * per_file).min(n) {
                let _ = writeln!(text, "  - id: {}", name(i));
                let _ = writeln!(text, "    title: Service {i}");
                let kind = ["service", "database", "queue", "external"][i % 4];
                let _ = writeln!(text, "    kind: {kind}");
                let _ = writeln!(text, "    owner: team-{}", i % 40);
                let _ = writeln!(text, "    tenants: [tenant-{}]", i % 50);
                let _ = writeln!(text, "    links: {{ runbook: https://runbooks.example.com/{} }}", name(i));
                if !deps[i].is_empty() {
                    text.push_str("    dependsOn:\n");
                    for &(j, critical) in &deps[i] {
                        if critical {
                            let _ = writeln!(text, "      - {{ id: {}, critical: true }}", name(j));
                        } else {
                            let _ = writeln!(text, "      - {}", name(j));
                        }
                    }
                }
                if i % 10 == 0 {
                    let _ = writeln!(
                        text,
                        "    checks: [{{ url: 'https://{}.example.com/healthz', interval: 30s, timeout: 5s }}]",
                        name(i)
                    );
                }
            }
            (PathBuf::from(format!("generated-{f}.yaml")), text)
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn input(source: &str, rag: Rag) -> Input {
    Input {
        source: source.to_string(),
        rag,
        reason: format!("{source} says {rag}"),
        since: DateTime::<Utc>::UNIX_EPOCH,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = env_or("BENCH_COMPONENTS", 100_000);
    let total_edges = env_or("BENCH_EDGES", 300_000);
    let mut rng = StdRng::seed_from_u64(42);

    let deps = edges(n, total_edges, &mut rng);
    let edge_count: usize = deps.iter().map(Vec::len).sum();
    let texts = yaml(n, &deps, 10);
    drop(deps);
    let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
    println!(
        "catalog: {n} components, {edge_count} edges, {:.1} MiB of YAML in 10 files",
        bytes as f64 / 1048576.0
    );

    // 1. Load.
    let rss_before = rss_mib();
    let started = Instant::now();
    let loaded = load_texts(&texts).map_err(|e| format!("{} errors, first: {}", e.len(), e[0]))?;
    let load_time = started.elapsed();
    let rss_loaded = rss_mib();
    drop(texts);
    let catalog = Arc::new(loaded.catalog);
    let rss_catalog = rss_mib();
    println!(
        "load: {:.2} s; RSS {:.0} MiB before, {:.0} MiB after (with the text), {:.0} MiB catalog only; {} cycle warnings",
        load_time.as_secs_f64(),
        rss_before,
        rss_loaded,
        rss_catalog,
        loaded.warnings.len()
    );

    // 2. Inputs on 20 % of the components.
    let ids: Vec<ComponentId> = catalog.iter().map(|c| c.id.clone()).collect();
    let mut book = HealthBook::new(Arc::clone(&catalog));
    let started = Instant::now();
    let mut set = 0;
    for id in &ids {
        if rng.random_bool(0.2) {
            let rag = match rng.random_range(0..100) {
                0 => Rag::Red,
                1..=3 => Rag::Amber,
                _ => Rag::Green,
            };
            book.set_input(id, input("http", rag))?;
            set += 1;
        }
    }
    let inputs_time = started.elapsed();
    let counts = ids.iter().fold([0usize; 4], |mut acc, id| {
        acc[book.rag(id).unwrap_or_default() as usize] += 1;
        acc
    });
    println!(
        "inputs: {set} set incrementally in {:.2} s; rolled up: {} unknown, {} green, {} amber, {} red; RSS {:.0} MiB",
        inputs_time.as_secs_f64(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        rss_mib()
    );

    // 3. Status look-ups.
    let mut times = Vec::with_capacity(100_000);
    let mut reasons = 0usize;
    for _ in 0..100_000 {
        let text = ids[rng.random_range(0..ids.len())]
            .as_str()
            .to_ascii_uppercase();
        let started = Instant::now();
        let health = catalog.lookup(&text).and_then(|c| book.rolled(&c.id));
        times.push(started.elapsed());
        reasons += health.map(|h| h.reasons.len()).unwrap_or(0);
    }
    times.sort();
    println!(
        "look-up + rolled health: p50 {}, p99 {}, max {} (target p99 ≤ 1 ms; {reasons} reasons)",
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.99)),
        us(percentile(&times, 1.0))
    );

    // 4. One input change: incremental vs from scratch.
    let mut times = Vec::with_capacity(2_000);
    let mut transitions = Vec::with_capacity(2_000);
    for _ in 0..1_000 {
        let id = &ids[rng.random_range(0..ids.len())];
        for rag in [Rag::Red, Rag::Green] {
            let started = Instant::now();
            let t = book.set_input(id, input("bench", rag))?;
            times.push(started.elapsed());
            transitions.push(t.len());
        }
        book.clear_input(id, "bench", DateTime::<Utc>::UNIX_EPOCH)?;
    }
    times.sort();
    transitions.sort();
    let mean = transitions.iter().sum::<usize>() as f64 / transitions.len() as f64;
    println!(
        "one input change, incremental: p50 {}, p99 {}, max {}; transitions per change: mean {mean:.1}, p99 {}, max {}",
        us(percentile(&times, 0.5)),
        us(percentile(&times, 0.99)),
        us(percentile(&times, 1.0)),
        transitions[(transitions.len() * 99 / 100).min(transitions.len() - 1)],
        transitions[transitions.len() - 1]
    );
    let mut scratch = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        book.recompute_all();
        scratch.push(started.elapsed());
    }
    scratch.sort();
    println!(
        "recompute_all from scratch: median {:.2} ms (5 runs)",
        percentile(&scratch, 0.5).as_secs_f64() * 1e3
    );
    Ok(())
}
