//! Kubernetes watcher benchmark: what recording a big cluster costs, through
//! the code a cluster's watch task runs (the objects judged, the cluster's
//! view, `catalog::observe::record` into the store) — without the network.
//!
//! A catalog of `BENCH_COMPONENTS` (2,000) components; a cluster with one
//! Deployment per component (3 replicas, 3 healthy Pods each) and 100 Nodes,
//! as k8s-openapi objects. For SQLite (a fresh file) and PostgreSQL (a fresh
//! database on `WATCHKEEPER_TEST_POSTGRES_URL`, skipped when unset):
//! 1. *First list* on an empty health log: every Deployment records its green
//!    input and its baseline revision; the Nodes one count.
//! 2. *Takeover*: another replica replays the log and lists the same cluster
//!    again; nothing may be written.
//! 3. *Rollout wave*: every Deployment rolls out a new revision (rolling, then
//!    rolled out): two status changes and one rollout per Deployment.
//!
//! ```sh
//! WATCHKEEPER_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo run --release --example kube_bench
//! ```
//! Options (environment): `BENCH_COMPONENTS` (2000).

mod common;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStatus, Node, NodeCondition,
    NodeStatus, Pod, PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::sync::Arc;
use std::time::Instant;
use watchkeeper::catalog::kubernetes::StatusBoard;
use watchkeeper::catalog::kubernetes::config::ClusterConfig;
use watchkeeper::catalog::kubernetes::judge::{self, Kind, Sighting};
use watchkeeper::catalog::kubernetes::view::{ClusterView, Mapper, Scope, cluster_prefix};
use watchkeeper::catalog::kubernetes::watch::{Context, perform};
use watchkeeper::catalog::{Catalog, CatalogService, Component, ComponentId};
use watchkeeper::clock::Clock;
use watchkeeper::metrics::Metrics;
use watchkeeper::store::Store;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn meta(name: &str, namespace: Option<&str>, component: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_string),
        labels: component.map(|c| [("app.kubernetes.io/name".to_string(), c.to_string())].into()),
        generation: Some(1),
        ..ObjectMeta::default()
    }
}

fn deployment(n: usize, revision: usize, updated: i32) -> Deployment {
    let component = format!("svc-{n}");
    let mut metadata = meta(&component, Some("apps"), Some(&component));
    metadata.annotations = Some(
        [(
            "deployment.kubernetes.io/revision".to_string(),
            revision.to_string(),
        )]
        .into(),
    );
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas: Some(3),
            template: PodTemplateSpec {
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".into(),
                        image: Some(format!("registry.example.com/svc-{n}:{revision}")),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
                ..PodTemplateSpec::default()
            },
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            available_replicas: Some(3),
            ready_replicas: Some(3),
            replicas: Some(3),
            updated_replicas: Some(updated),
            observed_generation: Some(1),
            ..DeploymentStatus::default()
        }),
    }
}

fn pod(n: usize, k: usize) -> Pod {
    let component = format!("svc-{n}");
    Pod {
        metadata: meta(&format!("{component}-{k}"), Some("apps"), Some(&component)),
        spec: None,
        status: Some(PodStatus {
            phase: Some("Running".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                ready: true,
                state: Some(ContainerState {
                    running: Some(ContainerStateRunning::default()),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
    }
}

fn node(n: usize) -> Node {
    Node {
        metadata: meta(&format!("node-{n}"), None, None),
        spec: None,
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        }),
    }
}

fn catalog(components: usize) -> Catalog {
    let mut list: Vec<Component> = (0..components)
        .map(|n| Component::new(ComponentId::parse(&format!("svc-{n}")).unwrap()))
        .collect();
    list.push(Component::new(ComponentId::parse("bench").unwrap()));
    Catalog::build(list).expect("a valid catalog")
}

/// A watch task's context over a fresh replay of the store.
async fn replica(store: &Store, components: usize) -> Context {
    let catalog = Arc::new(CatalogService::new(catalog(components)));
    catalog.sync(store).await.expect("replay the health log");
    Context {
        catalog,
        store: store.clone(),
        clock: Clock::system(),
        debounce: chrono::Duration::minutes(2),
        board: StatusBoard::new(Metrics::default(), Clock::system()),
    }
}

async fn apply(ctx: &Context, steps: Vec<watchkeeper::catalog::kubernetes::view::Step>) {
    for step in &steps {
        perform(ctx, step).await.expect("record");
    }
}

/// Lists every scope of `cluster` into a fresh view, as a watch task does.
async fn list(ctx: &Context, cluster: &ClusterConfig, objects: &[Sighting]) -> ClusterView {
    let mut view = ClusterView::new(&cluster.name, Scope::all_for(cluster));
    let mapper = Mapper::new(ctx.catalog.view(|b, _| b.catalog().clone()), cluster);
    for scope in Scope::all_for(cluster) {
        view.init(&scope);
        for sighting in objects.iter().filter(|s| scope.covers(s)) {
            let steps = view.apply(&mapper, sighting.clone(), false, chrono::Utc::now());
            apply(ctx, steps).await;
        }
        ctx.catalog.sync(&ctx.store).await.expect("sync");
        let existing = ctx
            .catalog
            .view(|book, _| book.sources_with_prefix(&cluster_prefix(&cluster.name)));
        let steps = view.init_done(&mapper, &scope, &existing, chrono::Utc::now());
        apply(ctx, steps).await;
    }
    view
}

async fn events(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM health_events")
        .fetch_one(store.pool())
        .await
        .expect("count events")
}

async fn bench(label: &str, url: &str, components: usize) {
    let store = Store::open(url).await.expect("open the store");
    let cluster: ClusterConfig = serde_yaml::from_str("name: bench").expect("a cluster");
    let mapping = cluster.mapping.clone();
    let mut objects: Vec<Sighting> = Vec::new();
    for n in 0..components {
        objects.push(judge::deployment(&deployment(n, 1, 3), &mapping));
        objects.extend((0..3).map(|k| judge::pod(&pod(n, k), &mapping)));
    }
    objects.extend((0..100).map(|n| judge::node(&node(n), &mapping)));
    let count = objects.len();

    let first = replica(&store, components).await;
    let started = Instant::now();
    let mut view = list(&first, &cluster, &objects).await;
    let cold = started.elapsed().as_secs_f64();
    let written = events(&store).await;
    assert_eq!(
        written as usize,
        components + 1,
        "one input per Deployment, one node count"
    );

    let started = Instant::now();
    let second = replica(&store, components).await;
    let replayed = started.elapsed().as_secs_f64();
    list(&second, &cluster, &objects).await;
    let takeover = started.elapsed().as_secs_f64();
    assert_eq!(events(&store).await, written, "a takeover writes nothing");

    let mapper = Mapper::new(first.catalog.view(|b, _| b.catalog().clone()), &cluster);
    let started = Instant::now();
    for n in 0..components {
        for updated in [1, 3] {
            let sighting = judge::deployment(&deployment(n, 2, updated), &mapping);
            assert_eq!(sighting.kind, Kind::Deployment);
            let steps = view.apply(&mapper, sighting, true, chrono::Utc::now());
            apply(&first, steps).await;
        }
    }
    let wave = started.elapsed().as_secs_f64();
    let rollouts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM health_events WHERE source LIKE 'change:%'")
            .fetch_one(store.pool())
            .await
            .expect("count rollouts");
    assert_eq!(rollouts as usize, components, "one rollout per Deployment");

    println!(
        "{label:<9} {components} Deployments, {} Pods, 100 Nodes ({count} objects): first list {:.2} s ({:.0} objects/s) | takeover {:.2} s (replay {:.2} s), nothing written | rollout wave {:.2} s ({:.0} recorded changes/s)",
        components * 3,
        cold,
        count as f64 / cold,
        takeover,
        replayed,
        wave,
        (components * 3) as f64 / wave,
    );
    store.close().await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let components = env_or("BENCH_COMPONENTS", 2000);
    let dir = std::env::temp_dir().join(format!("wk-kube-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    bench(
        "sqlite",
        &format!("sqlite://{}/bench.db", dir.display()),
        components,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);

    common::on_fresh_postgres("wk_kube_bench", |url| async move {
        bench("postgres", &url, components).await;
    })
    .await;
}
