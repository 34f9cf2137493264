//! Kubernetes clusters as a health source, end to end: a fake API server
//! (list, watch, bookmarks, 410 Gone, going away) driven by the real kube
//! client, observations recorded on SQLite and PostgreSQL, and what people
//! see through `/wk status`, `/wk changes` and `/readyz`.

mod support;

use chrono::Duration;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus};
use k8s_openapi::api::core::v1::{Node, NodeCondition, NodeStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Value, json};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use support::fake_kube::{FakeKube, fixture_json, fixture_object};
use support::{Db, TestApp, monday_morning};
use watchkeeper::catalog::observe::{Observation, Rollout, record};
use watchkeeper::catalog::{Catalog, CatalogService, Component, ComponentId, Rag};
use watchkeeper::store::Store;
use watchkeeper::store::watch as leases;

/// The example configuration with `clusters` (YAML list items) under `catalog:`.
fn config_with(clusters: &str) -> String {
    let example = support::example_config();
    let body = &example[example.find("team:").unwrap()..];
    assert!(body.contains("\ncatalog:\n"));
    let section = if clusters.is_empty() {
        "  clusters: []\n".to_string()
    } else {
        format!("  clusters:\n{clusters}")
    };
    body.replacen("\ncatalog:\n", &format!("\ncatalog:\n{section}"), 1)
}

fn cluster_entry(name: &str, kubeconfig: &Path, tenant: &str) -> String {
    format!(
        "    - {{ name: {name}, kubeconfig: '{}', tenant: {tenant} }}\n",
        kubeconfig.display()
    )
}

/// The example service watching `kube` as cluster acme-prod (tenant acme).
async fn start(db: Db, kube: &FakeKube, dir: &Path) -> Option<TestApp> {
    let config = config_with(&cluster_entry(
        "acme-prod",
        &kube.kubeconfig(dir, "acme-prod"),
        "acme",
    ));
    TestApp::spawn_virtual_with(db, monday_morning(), &config, None).await
}

/// A fake cluster with the checkout Deployment rolled out (revision 3), and
/// the service watching it (listed, watches open).
async fn watching_checkout(db: Db) -> Option<(tempfile::TempDir, FakeKube, TestApp)> {
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start().await;
    kube.put_json(checkout("deployment_healthy_rolled_out.json", "3"));
    let app = start(db, &kube, dir.path()).await?;
    readyz_says(&app, "cluster acme-prod: watching").await;
    open_watches(&kube, 5).await;
    Some((dir, kube, app))
}

fn text(reply: &Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_string()
}

async fn staff(app: &TestApp, command: &str) -> String {
    text(&app.command("U0ANNA", "T0STAFF", "C0OPS", command).await)
}

/// Waits (up to 10 s) until `probe` says yes; returns what it saw last.
async fn eventually<F, Fut>(what: &str, mut probe: F) -> String
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (bool, String)>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (done, seen) = probe().await;
        if done {
            return seen;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("never {what}; last saw:\n{seen}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Waits until `/wk status <component>` (as staff) contains every needle.
async fn status_shows(app: &TestApp, component: &str, needles: &[&str]) -> String {
    let command = format!("status {component}");
    let command = command.as_str();
    eventually(&format!("`{command}` showed {needles:?}"), || async move {
        let seen = staff(app, command).await;
        (needles.iter().all(|n| seen.contains(n)), seen)
    })
    .await
}

/// Waits until `/readyz` reports `cluster <name>: <state>`.
async fn readyz_says(app: &TestApp, line: &str) -> String {
    eventually(&format!("/readyz said {line:?}"), || async move {
        let (code, body) = app.get("/readyz").await;
        (code == 200 && body.contains(line), body)
    })
    .await
}

/// The checkout Deployment (`shop/checkout`, component acme-checkout-api by
/// its name label; its part-of label names nothing in the catalog) in the
/// state of a real capture, at `revision`.
fn checkout(fixture: &str, revision: &str) -> Value {
    let mut d = fixture_json(fixture);
    d["metadata"]["name"] = "checkout".into();
    d["metadata"]["namespace"] = "shop".into();
    d["metadata"]["labels"] = json!({
        "app.kubernetes.io/part-of": "acme-shop",
        "app.kubernetes.io/name": "acme-checkout-api",
    });
    d["metadata"]["annotations"] = json!({ "deployment.kubernetes.io/revision": revision });
    d
}

/// The stuck checkout rollout after someone fixed it: all replicas available.
fn recovered_checkout() -> Deployment {
    let mut d: Deployment =
        serde_json::from_value(checkout("deployment_progress_deadline_exceeded.json", "4"))
            .unwrap();
    let condition = |type_: &str, reason: &str, message: &str| DeploymentCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..DeploymentCondition::default()
    };
    d.status = Some(DeploymentStatus {
        available_replicas: Some(1),
        ready_replicas: Some(1),
        replicas: Some(1),
        updated_replicas: Some(1),
        observed_generation: Some(4),
        conditions: Some(vec![
            condition(
                "Available",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            ),
            condition(
                "Progressing",
                "NewReplicaSetAvailable",
                "ReplicaSet \"checkout-75dd4d49d5\" has successfully progressed.",
            ),
        ]),
        ..DeploymentStatus::default()
    });
    d
}

/// A node with the conditions the kubelet reports (ready, or gone silent).
fn node(name: &str, ready: bool) -> Node {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..NodeCondition::default()
    };
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        status: Some(NodeStatus {
            conditions: Some(vec![
                condition(
                    "MemoryPressure",
                    if ready { "False" } else { "Unknown" },
                    if ready {
                        "KubeletHasSufficientMemory"
                    } else {
                        "NodeStatusUnknown"
                    },
                    if ready {
                        "kubelet has sufficient memory available"
                    } else {
                        "Kubelet stopped posting node status."
                    },
                ),
                if ready {
                    condition(
                        "Ready",
                        "True",
                        "KubeletReady",
                        "kubelet is posting ready status",
                    )
                } else {
                    condition(
                        "Ready",
                        "Unknown",
                        "NodeStatusUnknown",
                        "Kubelet stopped posting node status.",
                    )
                },
            ]),
            ..NodeStatus::default()
        }),
        ..Node::default()
    }
}

/// The captured CrashLoopBackOff pod as a pod of the orders database's StatefulSet.
fn crashlooping_orders_db_pod() -> Pod {
    let mut pod: Pod = fixture_object("pod_crashloopbackoff.json");
    pod.metadata.name = Some("orders-db-0".into());
    pod.metadata.namespace = Some("shop".into());
    pod.metadata.labels = Some([("app.kubernetes.io/name".into(), "acme-orders-db".into())].into());
    pod.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        name: "orders-db".into(),
        uid: "3f6a1d9e-0b51-4c1e-9d7a-7b2f7c1e9a10".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    pod
}

/// Waits until the fake has `n` watch streams open.
async fn open_watches(kube: &FakeKube, n: usize) {
    eventually(&format!("{n} watches were open"), || async move {
        let open = kube.open_watches();
        (open == n, open.to_string())
    })
    .await;
}

/// A status answer without its history: the colour and the reasons.
fn reasons(status: &str) -> &str {
    status.split("*Recent changes*").next().unwrap_or(status)
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

async fn a_stuck_rollout_turns_the_component_amber_and_recovers(db: Db) {
    let Some((_dir, kube, app)) = watching_checkout(db).await else {
        return;
    };
    status_shows(
        &app,
        "acme-checkout-api",
        &[
            "is *green*",
            "kube:acme-prod:deployment/shop/checkout (green): 3 of 3 available",
        ],
    )
    .await;
    readyz_says(&app, "cluster acme-prod: watching since").await;

    // A new revision rolls out, then misses its progress deadline.
    kube.put_json(checkout(
        "deployment_progressing_replicaset_updated.json",
        "4",
    ));
    status_shows(&app, "acme-checkout-api", &["rolling out: 1 of 1 updated"]).await;
    kube.put_json(checkout("deployment_progress_deadline_exceeded.json", "4"));
    let stuck = status_shows(&app, "acme-checkout-api", &["is *amber*"]).await;
    assert!(
        stuck.contains(
            "rollout stuck (ProgressDeadlineExceeded): ReplicaSet \"guestbook-ui-75dd4d49d5\" has timed out progressing."
        ),
        "{stuck}"
    );
    assert!(stuck.contains("1 of 1 available"), "{stuck}");
    // What depends on it hears of it.
    let shop = staff(&app, "status acme-shop-web").await;
    assert!(
        shop.contains("is *amber*") && shop.contains("dependency acme-checkout-api is amber"),
        "{shop}"
    );
    // A customer of ACME sees it in their channel.
    let customer = text(
        &app.command("U9EXT", "T9ACME", "C0ACME", "status acme-checkout-api")
            .await,
    );
    assert!(customer.contains("ProgressDeadlineExceeded"), "{customer}");

    kube.put(&recovered_checkout());
    status_shows(
        &app,
        "acme-checkout-api",
        &["is *green*", "1 of 1 available"],
    )
    .await;

    // The rollout is in the history once, with what was rolled out; the
    // revision found at start is a baseline, not a rollout.
    let changes = staff(&app, "changes acme-checkout-api").await;
    assert_eq!(
        count(
            &changes,
            "deployment shop/checkout rolled out revision 4: guestbook-ui=gcr.io/heptio-images/ks-guestbook-demo:0.3"
        ),
        1,
        "{changes}"
    );
    assert!(!changes.contains("revision 3"), "{changes}");
    assert!(changes.contains("green → amber"), "{changes}");
    app.stop().await;
}

async fn crashlooping_pods_and_a_silent_node_show_and_clear(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start().await;
    kube.put(&node("worker-1", true));
    kube.put(&node("worker-2", true));
    let Some(app) = start(db, &kube, dir.path()).await else {
        return;
    };
    status_shows(&app, "acme-prod", &["is *green*", "2 of 2 nodes ready"]).await;

    kube.put(&node("worker-2", false));
    let cluster = status_shows(&app, "acme-prod", &["is *amber*"]).await;
    assert!(
        cluster.contains(
            "kube:acme-prod:nodes (amber): 1 of 2 nodes ready: worker-2 NotReady (status unknown: Kubelet stopped posting node status.)"
        ),
        "{cluster}"
    );
    let checkout = staff(&app, "status acme-checkout-api").await;
    assert!(
        checkout.contains("critical dependency acme-prod is amber"),
        "{checkout}"
    );

    kube.put(&crashlooping_orders_db_pod());
    status_shows(
        &app,
        "acme-orders-db",
        &[
            "is *amber*",
            "• kube:acme-prod:pod/shop/orders-db-0 (amber): container main is in CrashLoopBackOff, last exit 1 (Error)",
        ],
    )
    .await;

    // The pod is replaced and the node comes back: both inputs go.
    assert!(kube.delete::<Pod>(Some("shop"), "orders-db-0"));
    kube.put(&node("worker-2", true));
    status_shows(&app, "acme-prod", &["is *green*", "2 of 2 nodes ready"]).await;
    let cleared = status_shows(&app, "acme-orders-db", &["is *green*"]).await;
    assert!(!reasons(&cleared).contains("CrashLoopBackOff"), "{cleared}");
    app.stop().await;
}

async fn a_rollout_is_recorded_once_while_another_replica_stands_by_and_takes_over(db: Db) {
    let Some((_dir, kube, first)) = watching_checkout(db).await else {
        return;
    };
    let second = first.replica(None).await;
    readyz_says(&second, "cluster acme-prod: watched by replica").await;
    open_watches(&kube, 5).await;

    kube.put_json(checkout("deployment_progress_deadline_exceeded.json", "4"));
    status_shows(&first, "acme-checkout-api", &["is *amber*"]).await;

    // The watching replica stops; the other takes the cluster over at its
    // next tick, lists everything again, and records nothing twice.
    first.stop_keeping_db().await;
    second.server.clusters().tick().await.unwrap();
    readyz_says(&second, "cluster acme-prod: watching").await;
    kube.put_json(checkout("deployment_progress_deadline_exceeded.json", "5"));
    let app = &second;
    let changes = eventually("revision 5 was recorded", || async move {
        let seen = staff(app, "changes acme-checkout-api").await;
        (seen.contains("revision 5"), seen)
    })
    .await;
    assert_eq!(count(&changes, "rolled out revision 4"), 1, "{changes}");
    assert_eq!(count(&changes, "rolled out revision 5"), 1, "{changes}");
    let revisions: Vec<_> = second
        .server
        .store()
        .health_events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.source.starts_with("change:kube:"))
        .collect();
    assert_eq!(revisions.len(), 2, "{revisions:?}");
    second.stop().await;
}

async fn a_dropped_watch_an_outage_and_410_gone_lose_nothing(db: Db) {
    let Some((_dir, kube, app)) = watching_checkout(db).await else {
        return;
    };
    kube.put(&crashlooping_orders_db_pod());
    status_shows(&app, "acme-orders-db", &["is *amber*", "CrashLoopBackOff"]).await;
    let lists = |kube: &FakeKube| {
        kube.requests()
            .iter()
            .filter(|r| {
                r.starts_with("GET /apis/apps/v1/deployments?") && !r.contains("watch=true")
            })
            .count()
    };
    assert_eq!(lists(&kube), 1);

    // A quiet watch that got a bookmark resumes after compaction without a
    // relist (writes of other kinds moved the resourceVersion past the one
    // it listed at); a change made meanwhile arrives over the resumed watch.
    kube.put(&node("worker-1", true));
    status_shows(&app, "acme-prod", &["1 of 1 nodes ready"]).await;
    kube.bookmark();
    kube.compact();
    kube.drop_watches();
    kube.put_json(checkout(
        "deployment_progressing_replicaset_updated.json",
        "4",
    ));
    let app_ref = &app;
    eventually(
        "the rollout arrived over the resumed watch",
        || async move {
            let seen = staff(app_ref, "changes acme-checkout-api").await;
            (seen.contains("rolled out revision 4"), seen)
        },
    )
    .await;
    assert_eq!(lists(&kube), 1, "{:?}", kube.requests());

    // The API server goes away: the cluster is reported unreachable.
    kube.stop().await;
    readyz_says(&app, "cluster acme-prod: unreachable since").await;
    let away = status_shows(&app, "acme-prod", &["is *amber*"]).await;
    assert!(
        away.contains("kube:acme-prod:api (amber): cannot watch the Kubernetes API:"),
        "{away}"
    );
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("watchkeeper_kube_cluster_connected{cluster=\"acme-prod\"} 0"),
        "{metrics}"
    );

    // While it is away, the rollout gets stuck and the pod goes; the history
    // is compacted, so the watcher's resourceVersion is gone (410).
    kube.put_json(checkout("deployment_progress_deadline_exceeded.json", "4"));
    assert!(kube.delete::<Pod>(Some("shop"), "orders-db-0"));
    kube.compact();
    kube.start_again().await;

    status_shows(
        &app,
        "acme-checkout-api",
        &["• kube:acme-prod:deployment/shop/checkout (amber): rollout stuck (ProgressDeadlineExceeded)"],
    )
    .await;
    let cleared = status_shows(&app, "acme-orders-db", &["is *green*"]).await;
    assert!(!reasons(&cleared).contains("CrashLoopBackOff"), "{cleared}");
    readyz_says(&app, "cluster acme-prod: watching").await;
    let back = status_shows(&app, "acme-prod", &["is *green*"]).await;
    assert!(!reasons(&back).contains("cannot watch"), "{back}");
    assert!(
        lists(&kube) >= 2,
        "relisted after 410: {:?}",
        kube.requests()
    );
    let (_, metrics) = app.get("/metrics").await;
    assert!(
        metrics.contains("watchkeeper_kube_cluster_connected{cluster=\"acme-prod\"} 1"),
        "{metrics}"
    );
    let changes = staff(&app, "changes acme-checkout-api").await;
    assert_eq!(count(&changes, "rolled out revision 4"), 1, "{changes}");
    app.stop().await;
}

async fn another_tenants_cluster_never_reaches_a_customers_view(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let acme = FakeKube::start().await;
    let globex = FakeKube::start().await;
    acme.put_json(checkout("deployment_healthy_rolled_out.json", "3"));
    // In Globex's cluster: its portal is down, and two workloads carry
    // names of components that are not Globex's alone.
    let down = |name: &str, component: &str| {
        let mut d = fixture_json("deployment_rolling_update_in_progress.json");
        d["metadata"]["name"] = name.into();
        d["metadata"]["namespace"] = "portal".into();
        d["metadata"]["labels"] = json!({ "app.kubernetes.io/name": component });
        d
    };
    globex.put_json(down("portal", "globex-portal"));
    globex.put_json(down("impostor", "acme-checkout-api"));
    globex.put_json(down("payments", "stripe"));
    let config = config_with(&format!(
        "{}{}",
        cluster_entry(
            "acme-prod",
            &acme.kubeconfig(dir.path(), "acme-prod"),
            "acme"
        ),
        cluster_entry(
            "globex-prod",
            &globex.kubeconfig(dir.path(), "globex-prod"),
            "globex"
        ),
    ));
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), &config, None).await else {
        return;
    };
    readyz_says(&app, "cluster globex-prod: watching").await;
    readyz_says(&app, "cluster acme-prod: watching").await;

    let portal = text(
        &app.command("U9GLX", "T9GLOBEX", "C0GLOBEX", "status globex-portal")
            .await,
    );
    assert!(
        portal.contains("is *red*") && portal.contains("kube:globex-prod:deployment/portal/portal"),
        "{portal}"
    );
    for command in ["status", "status acme-checkout-api", "status stripe"] {
        let seen = text(&app.command("U9EXT", "T9ACME", "C0ACME", command).await);
        assert!(
            !seen.contains("globex") && !seen.contains("impostor"),
            "{command}: {seen}"
        );
    }
    let checkout = staff(&app, "status acme-checkout-api").await;
    assert!(
        checkout.contains("is *green*") && !checkout.contains("impostor"),
        "{checkout}"
    );
    let stripe = staff(&app, "status stripe").await;
    assert!(!stripe.contains("globex-prod"), "{stripe}");
    app.stop().await;
}

async fn watches_follow_a_reload(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start().await;
    kube.put_json(checkout("deployment_progress_deadline_exceeded.json", "4"));
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), &config_with(""), None).await
    else {
        return;
    };
    let (_, before) = app.get("/readyz").await;
    assert_eq!(before, "ready\n");
    let config = app.settings.config.clone().unwrap();

    std::fs::write(
        &config,
        config_with(&cluster_entry(
            "acme-prod",
            &kube.kubeconfig(dir.path(), "acme-prod"),
            "acme",
        )),
    )
    .unwrap();
    app.server.reload(&app.settings).await.unwrap();
    status_shows(
        &app,
        "acme-checkout-api",
        &["is *amber*", "ProgressDeadlineExceeded"],
    )
    .await;

    // Removed again: the watch stops and what it said is withdrawn.
    std::fs::write(&config, config_with("")).unwrap();
    app.server.reload(&app.settings).await.unwrap();
    status_shows(
        &app,
        "acme-checkout-api",
        &["is *unknown*", "• no health inputs"],
    )
    .await;
    assert_eq!(app.get("/readyz").await, (200, "ready\n".to_string()));
    open_watches(&kube, 0).await;
    app.stop().await;
}

async fn an_unreachable_or_misconfigured_cluster_does_not_stop_the_bot(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let nowhere = dir.path().join("kubeconfig-nowhere");
    std::fs::write(
        &nowhere,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{ server: 'http://127.0.0.1:{port}' }}\n\
             users:\n- name: u\n  user: {{ token: t }}\ncontexts:\n- name: acme-prod\n  context: {{ cluster: c, user: u }}\n\
             current-context: acme-prod\n"
        ),
    )
    .unwrap();
    let config = config_with(&format!(
        "{}{}",
        cluster_entry("acme-prod", &nowhere, "acme"),
        cluster_entry("globex-prod", &dir.path().join("missing.yaml"), "globex"),
    ));
    let Some(app) = TestApp::spawn_virtual_with(db, monday_morning(), &config, None).await else {
        return;
    };
    let app_ref = &app;
    let ready = eventually("both clusters were reported unreachable", || async move {
        let (code, body) = app_ref.get("/readyz").await;
        let both = body.contains("cluster acme-prod: unreachable since")
            && body.contains("cluster globex-prod: unreachable since");
        (code == 200 && both, body)
    })
    .await;
    assert!(ready.contains("cannot read the kubeconfig"), "{ready}");
    let cluster = status_shows(&app, "globex-prod", &["is *amber*"]).await;
    assert!(cluster.contains("missing.yaml"), "{cluster}");
    // Everything else works.
    let help = staff(&app, "help").await;
    assert!(help.contains("/wk status"), "{help}");
    app.stop().await;
}

async fn the_next_hand_off_names_what_is_red_and_what_rolled_out(db: Db) {
    let Some((_dir, kube, app)) = watching_checkout(db).await else {
        return;
    };
    // A rollout during Chen's shift leaves nothing available.
    kube.put_json(checkout("deployment_rolling_update_in_progress.json", "4"));
    status_shows(
        &app,
        "acme-checkout-api",
        &["is *red*", "no replica available"],
    )
    .await;

    let reply = app
        .command(
            "U0CHEN",
            "T0STAFF",
            "C0OPS",
            "oncall override <@U0ANNA> tomorrow 18:00 8h ops-duty",
        )
        .await;
    assert_eq!(reply["response_type"], "in_channel", "{reply}");
    let from = chrono::DateTime::parse_from_rfc3339("2026-03-03T17:00:00Z")
        .unwrap()
        .to_utc();
    app.advance(from - app.clock.now()).await;
    let handoff: Vec<String> = app
        .slack
        .messages_in("C0OPS")
        .into_iter()
        .map(|m| m.text)
        .filter(|t| t.contains("ops-duty hand-off"))
        .collect();
    assert_eq!(handoff.len(), 1, "{handoff:?}");
    let text = &handoff[0];
    assert!(
        text.contains("Catalog: red now, and what changed during the shift"),
        "{text}"
    );
    assert!(
        text.contains("ACME checkout API (acme-checkout-api) is red since Mon 09:00 UTC: kube:acme-prod:deployment/shop/checkout (red): no replica available (0 of 3 available)"),
        "{text}"
    );
    assert!(
        text.contains("Mon 09:00 UTC acme-checkout-api: deployment shop/checkout rolled out revision 4: postgres=postgres"),
        "{text}"
    );
    app.stop().await;
}

async fn a_kind_the_cluster_refuses_to_list_is_reported(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let kube = FakeKube::start().await;
    kube.put_json(checkout("deployment_healthy_rolled_out.json", "3"));
    kube.forbid::<Pod>();
    let Some(app) = start(db, &kube, dir.path()).await else {
        return;
    };
    let ready = readyz_says(&app, "cluster acme-prod: partly watched since").await;
    assert!(
        ready.contains("cannot list pods: pods is forbidden: User \"system:serviceaccount:watchkeeper:watchkeeper\" cannot list resource \"pods\" (403)"),
        "{ready}"
    );
    let cluster = status_shows(&app, "acme-prod", &["is *amber*"]).await;
    assert!(
        cluster.contains(
            "kube:acme-prod:api (amber): cannot watch the Kubernetes API: cannot list pods"
        ),
        "{cluster}"
    );
    // What it may list, it watches.
    let app_ref = &app;
    eventually("the Deployment was recorded", || async move {
        let events = app_ref
            .server
            .store()
            .health_events_after(0, 100)
            .await
            .unwrap();
        let seen = events.iter().any(|e| {
            e.source == "kube:acme-prod:deployment/shop/checkout"
                && e.rag.as_deref() == Some("green")
        });
        (seen, format!("{events:?}"))
    })
    .await;
    app.stop().await;
}

/// Two replicas recording the same rollout at the same moment record it
/// once (the revision is compared-and-set in the store).
async fn concurrent_replicas_record_a_rollout_once(db: Db) {
    let Some(test_db) = support::TestDb::create(db).await else {
        return;
    };
    let catalog = || {
        let mut c = Component::new(ComponentId::parse("acme-checkout-api").unwrap());
        c.tenants = vec!["acme".into()];
        Catalog::build(vec![c]).unwrap()
    };
    let (a, b) = (
        Arc::new(CatalogService::new(catalog())),
        Arc::new(CatalogService::new(catalog())),
    );
    let (store_a, store_b) = (
        Store::open(&test_db.url).await.unwrap(),
        Store::open(&test_db.url).await.unwrap(),
    );
    let debounce = chrono::Duration::minutes(2);
    for revision in ["1", "2", "3", "4"] {
        let seen = Observation {
            component: "acme-checkout-api".into(),
            source: "kube:acme-prod:deployment/shop/checkout".into(),
            rag: Some(Rag::Green),
            reason: "3 of 3 available".into(),
            rollout: Some(Rollout {
                revision: revision.into(),
                text: format!("deployment shop/checkout rolled out revision {revision}"),
                new_object: false,
            }),
            at: monday_morning(),
        };
        let (x, y) = tokio::join!(
            record(&a, &store_a, debounce, &seen),
            record(&b, &store_b, debounce, &seen)
        );
        x.unwrap();
        y.unwrap();
    }
    let changes: Vec<String> = store_a
        .health_events_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.source.starts_with("change:"))
        .map(|e| e.reason)
        .collect();
    // Revision 1 is the baseline; 2, 3 and 4 are rollouts, each once.
    assert_eq!(
        changes,
        [
            "deployment shop/checkout rolled out revision 2",
            "deployment shop/checkout rolled out revision 3",
            "deployment shop/checkout rolled out revision 4"
        ]
    );
    store_a.close().await;
    store_b.close().await;
    test_db.drop_db().await;
}

/// A cluster's lease: one holder at a time, renewed by it, taken over only
/// once expired, given back on release.
async fn a_cluster_lease_has_one_holder_at_a_time(db: Db) {
    let Some(test_db) = support::TestDb::create(db).await else {
        return;
    };
    let store = Store::open(&test_db.url).await.unwrap();
    let pool = store.pool();
    let t0 = monday_morning();
    let lease = Duration::minutes(2);
    assert!(
        leases::claim_lease(pool, "acme-prod", "a", t0, t0 + lease)
            .await
            .unwrap()
    );
    assert!(
        !leases::claim_lease(pool, "acme-prod", "b", t0, t0 + lease)
            .await
            .unwrap()
    );
    let t1 = t0 + Duration::minutes(1);
    assert!(
        leases::claim_lease(pool, "acme-prod", "a", t1, t1 + lease)
            .await
            .unwrap()
    );
    let t2 = t0 + Duration::minutes(2);
    assert!(
        !leases::claim_lease(pool, "acme-prod", "b", t2, t2 + lease)
            .await
            .unwrap(),
        "renewed at t1, so still a's at t2"
    );
    let t3 = t1 + lease;
    assert!(
        leases::claim_lease(pool, "acme-prod", "b", t3, t3 + lease)
            .await
            .unwrap()
    );
    assert_eq!(
        leases::lease_holder(pool, "acme-prod").await.unwrap(),
        Some(("b".to_string(), t3 + lease))
    );
    leases::release_lease(pool, "acme-prod", "a").await.unwrap();
    assert!(
        !leases::claim_lease(pool, "acme-prod", "a", t3, t3 + lease)
            .await
            .unwrap()
    );
    leases::release_lease(pool, "acme-prod", "b").await.unwrap();
    assert!(
        leases::claim_lease(pool, "acme-prod", "a", t3, t3 + lease)
            .await
            .unwrap()
    );
    assert!(
        leases::claim_lease(pool, "globex-prod", "b", t3, t3 + lease)
            .await
            .unwrap()
    );
    store.close().await;
    test_db.drop_db().await;
}

on_both_backends!(
    a_stuck_rollout_turns_the_component_amber_and_recovers,
    the_next_hand_off_names_what_is_red_and_what_rolled_out,
    crashlooping_pods_and_a_silent_node_show_and_clear,
    a_rollout_is_recorded_once_while_another_replica_stands_by_and_takes_over,
    a_dropped_watch_an_outage_and_410_gone_lose_nothing,
    another_tenants_cluster_never_reaches_a_customers_view,
    watches_follow_a_reload,
    an_unreachable_or_misconfigured_cluster_does_not_stop_the_bot,
    a_kind_the_cluster_refuses_to_list_is_reported,
    concurrent_replicas_record_a_rollout_once,
    a_cluster_lease_has_one_holder_at_a_time,
);

#[test]
fn check_names_a_missing_kubeconfig_and_an_unknown_context() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: { server: 'https://10.0.0.1:6443' }\n\
         users:\n- name: u\n  user: { token: t }\ncontexts:\n- name: acme-prod\n  context: { cluster: c, user: u }\n",
    )
    .unwrap();
    let run = |clusters: &str| {
        let config = dir.path().join("watchkeeper.yaml");
        std::fs::write(&config, config_with(clusters)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_watchkeeper"))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, stdout, _) = run(
        "    - { name: acme-prod, kubeconfig: kubeconfig, context: acme-prod, tenant: acme }\n",
    );
    assert!(ok && stdout.contains("1 clusters"), "{stdout}");

    let (ok, _, stderr) = run("    - { name: acme-prod, kubeconfig: nope.yaml, tenant: acme }\n");
    assert!(!ok);
    assert!(
        stderr.contains("watchkeeper.yaml:")
            && stderr.contains(": catalog.clusters[0].kubeconfig: cannot read the kubeconfig")
            && stderr.contains("nope.yaml"),
        "{stderr}"
    );

    let (ok, _, stderr) = run(
        "    - { name: acme-prod, kubeconfig: kubeconfig, context: acme-staging, tenant: acme }\n",
    );
    assert!(!ok);
    assert!(
        stderr.contains("catalog.clusters[0].context: ")
            && stderr.contains("no context `acme-staging`; it has: acme-prod"),
        "{stderr}"
    );

    let (ok, _, stderr) = run("    - { name: acme-prod, in_cluster: true, tenant: initech }\n");
    assert!(!ok);
    assert!(
        stderr.contains("catalog.clusters[0].tenant: `initech` is not a customer"),
        "{stderr}"
    );
}
