//! A fake Kubernetes API server, small and honest: what the real client
//! (kube-rs) needs to list and watch, with the API server's semantics.
//!
//! - Resources are registered by type (`kube::Resource`: built-in kinds from
//!   k8s-openapi, or a derived custom resource); the five kinds the catalog
//!   watches are registered at start. Paths are the API's:
//!   `/api/v1/[namespaces/{ns}/]{plural}[/{name}]` and
//!   `/apis/{group}/{version}/[namespaces/{ns}/]{plural}[/{name}]`.
//! - Objects are JSON as the API serves them (serialised from k8s-openapi
//!   types or read from the fixtures). Every write moves one global
//!   `resourceVersion` (like etcd's revision), sets `metadata.uid`,
//!   `creationTimestamp` and `generation` (incremented when `spec` changes),
//!   and is appended to a change log.
//! - `GET` lists (`limit`/`continue` pages; items without `kind` and
//!   `apiVersion`, as the API server sends them) and gets one object.
//! - `?watch=true&resourceVersion=N` streams the changes after N as
//!   newline-delimited `{"type","object"}` events, then live ones, until
//!   `timeoutSeconds`; `allowWatchBookmarks=true` gets `BOOKMARK` events on
//!   [`FakeKube::bookmark`]. A version older than the last
//!   [`FakeKube::compact`] gets the `ERROR` event with a `410` `Expired`
//!   status, as the API server sends it, and the stream ends;
//!   `resourceVersion=0` starts with synthetic `ADDED` events for what exists.
//! - `GET /version`. Requests need `Authorization: Bearer` [`TOKEN`] (else
//!   `401`); other methods answer `405` (extend here for patches).
//! - Failure modes: [`FakeKube::drop_watches`] ends open watches (the
//!   connection stays up), [`FakeKube::stop`] takes the server away
//!   (connections refused) and [`FakeKube::start_again`] brings it back on
//!   the same port; [`FakeKube::forbid`] answers `403` for a resource.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The bearer token the fake accepts.
pub const TOKEN: &str = "fake-kube-token";

/// A registered resource type.
#[derive(Clone, Debug)]
struct Type {
    group: String,
    version: String,
    plural: String,
    kind: String,
    namespaced: bool,
}

impl Type {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

struct Change {
    version: u64,
    ty: usize,
    namespace: String,
    event: &'static str,
    object: Value,
}

#[derive(Default)]
struct World {
    version: u64,
    types: Vec<Type>,
    objects: BTreeMap<(usize, String, String), Value>,
    log: Vec<Change>,
    compacted: u64,
    forbidden: BTreeSet<usize>,
    requests: Vec<String>,
}

impl World {
    fn type_of(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        self.types
            .iter()
            .position(|t| t.group == group && t.version == version && t.plural == plural)
    }

    fn type_by_kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.types
            .iter()
            .position(|t| t.api_version() == api_version && t.kind == kind)
    }
}

struct Shared {
    world: Mutex<World>,
    written: watch::Sender<u64>,
    cut: watch::Sender<u64>,
    bookmarks: watch::Sender<u64>,
    open_watches: AtomicUsize,
}

impl Shared {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The fake API server; cheap to clone.
#[derive(Clone)]
pub struct FakeKube {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Arc<tokio::sync::Mutex<Option<Running>>>,
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code.as_u16(),
        })
        .to_string(),
    )
        .into_response()
}

impl FakeKube {
    /// Starts on a random port with Deployments, StatefulSets, DaemonSets,
    /// Pods and Nodes registered.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = Self {
            url: format!("http://{addr}"),
            addr,
            shared: Arc::new(Shared {
                world: Mutex::new(World::default()),
                written: watch::channel(0).0,
                cut: watch::channel(0).0,
                bookmarks: watch::channel(0).0,
                open_watches: AtomicUsize::new(0),
            }),
            running: Arc::default(),
        };
        use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
        use k8s_openapi::api::core::v1::{Node, Pod};
        fake.register::<Deployment>();
        fake.register::<StatefulSet>();
        fake.register::<DaemonSet>();
        fake.register::<Pod>();
        fake.register::<Node>();
        fake.serve(listener).await;
        fake
    }

    async fn serve(&self, listener: tokio::net::TcpListener) {
        let (stop, mut stopped) = watch::channel(false);
        let router = Router::new()
            .fallback(handle)
            .with_state(self.shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        *self.running.lock().await = Some(Running { stop, task });
    }

    /// Serves `K` (a built-in kind or a custom resource).
    pub fn register<K: kube::Resource<DynamicType = ()>>(&self) {
        let namespaced = K::url_path(&(), Some("x")).contains("/namespaces/x/");
        self.shared.world().types.push(Type {
            group: K::group(&()).to_string(),
            version: K::version(&()).to_string(),
            plural: K::plural(&()).to_string(),
            kind: K::kind(&()).to_string(),
            namespaced,
        });
    }

    /// Creates or replaces `object`; returns its new resourceVersion.
    pub fn put<K: kube::Resource<DynamicType = ()> + Serialize>(&self, object: &K) -> u64 {
        let mut value = serde_json::to_value(object).unwrap();
        value["apiVersion"] = K::api_version(&()).into();
        value["kind"] = K::kind(&()).into();
        self.put_json(value)
    }

    /// Creates or replaces an object given as the API's JSON (a fixture).
    pub fn put_json(&self, mut object: Value) -> u64 {
        let mut world = self.shared.world();
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let ty = world
            .type_by_kind(&api_version, &kind)
            .unwrap_or_else(|| panic!("fake kube: {api_version} {kind} is not registered"));
        let namespaced = world.types[ty].namespaced;
        let name = object["metadata"]["name"]
            .as_str()
            .expect("fake kube: an object needs metadata.name")
            .to_string();
        let namespace = if namespaced {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        world.version += 1;
        let version = world.version;
        let key = (ty, namespace.clone(), name);
        let spec = object["spec"].clone();
        let metadata = &mut object["metadata"];
        if namespaced {
            metadata["namespace"] = namespace.clone().into();
        }
        metadata["resourceVersion"] = version.to_string().into();
        let event = match world.objects.get(&key) {
            Some(old) => {
                metadata["uid"] = old["metadata"]["uid"].clone();
                metadata["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
                metadata["generation"] = if old["spec"] == spec {
                    generation
                } else {
                    generation + 1
                }
                .into();
                "MODIFIED"
            }
            None => {
                metadata["uid"] = format!("00000000-0000-4000-8000-{version:012}").into();
                metadata["creationTimestamp"] = chrono::Utc::now()
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
                    .into();
                metadata["generation"] = 1.into();
                "ADDED"
            }
        };
        world.objects.insert(key, object.clone());
        world.log.push(Change {
            version,
            ty,
            namespace,
            event,
            object,
        });
        drop(world);
        self.shared.written.send_replace(version);
        version
    }

    /// Deletes an object (a `DELETED` event with its last state); returns
    /// whether it existed.
    pub fn delete<K: kube::Resource<DynamicType = ()>>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let mut world = self.shared.world();
        let Some(ty) = world.type_by_kind(&K::api_version(&()), &K::kind(&())) else {
            return false;
        };
        let namespace = namespace.unwrap_or_default().to_string();
        let Some(mut object) = world
            .objects
            .remove(&(ty, namespace.clone(), name.to_string()))
        else {
            return false;
        };
        world.version += 1;
        let version = world.version;
        object["metadata"]["resourceVersion"] = version.to_string().into();
        world.log.push(Change {
            version,
            ty,
            namespace,
            event: "DELETED",
            object,
        });
        drop(world);
        self.shared.written.send_replace(version);
        true
    }

    /// Forgets the change log up to now: a watch or a page from an older
    /// resourceVersion is answered `410 Gone`.
    pub fn compact(&self) {
        let mut world = self.shared.world();
        world.compacted = world.version;
        world.log.clear();
    }

    /// Sends a bookmark on every open watch that allows them.
    pub fn bookmark(&self) {
        self.shared.bookmarks.send_modify(|n| *n += 1);
    }

    /// Ends every open watch; the server stays up.
    pub fn drop_watches(&self) {
        self.shared.cut.send_modify(|n| *n += 1);
    }

    /// Watch streams open now.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// Answers `403 Forbidden` to every request for `K` from now on.
    pub fn forbid<K: kube::Resource<DynamicType = ()>>(&self) {
        let mut world = self.shared.world();
        if let Some(ty) = world.type_by_kind(&K::api_version(&()), &K::kind(&())) {
            world.forbidden.insert(ty);
        }
    }

    /// The server goes away: watches end, the port is closed.
    pub async fn stop(&self) {
        let running = self.running.lock().await.take();
        if let Some(running) = running {
            self.drop_watches();
            let _ = running.stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), running.task).await;
        }
    }

    /// The server comes back on the same port, with the same objects.
    pub async fn start_again(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener).await;
    }

    /// Requests received (`GET /path?query`), oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.shared.world().requests.clone()
    }

    /// Writes a kubeconfig for this server with context `context` into `dir`.
    pub fn kubeconfig(&self, dir: &Path, context: &str) -> PathBuf {
        let path = dir.join(format!("kubeconfig-{context}"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
                 users:\n- name: fake\n  user:\n    token: {TOKEN}\n\
                 contexts:\n- name: {context}\n  context:\n    cluster: fake\n    user: fake\n\
                 current-context: {context}\n",
                self.url
            ),
        )
        .unwrap();
        path
    }
}

/// A fixture from `real/kubernetes/` as the API's JSON.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&super::fixture(&format!("real/kubernetes/{name}"))).unwrap()
}

/// A fixture from `real/kubernetes/` as a k8s-openapi object.
pub fn fixture_object<K: serde::de::DeserializeOwned>(name: &str) -> K {
    serde_json::from_value(fixture_json(name)).unwrap()
}

/// Where a request points.
struct Target {
    ty: usize,
    namespace: Option<String>,
    name: Option<String>,
}

fn route(world: &World, path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        _ => return None,
    };
    let ty = world.type_of(group, version, plural)?;
    if namespace.is_some() && !world.types[ty].namespaced {
        return None;
    }
    Some(Target {
        ty,
        namespace: namespace.map(str::to_string),
        name: name.map(str::to_string),
    })
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let uri = request.uri().clone();
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| serde_urlencoded::from_str(q).unwrap_or_default())
        .unwrap_or_default();
    shared.world().requests.push(format!(
        "{} {}",
        request.method(),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    ));
    let authorised = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !authorised {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    if request.method() != axum::http::Method::GET {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the fake API server only reads",
        );
    }
    if uri.path() == "/version" {
        return axum::Json(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z",
            "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"
        }))
        .into_response();
    }
    for unsupported in ["labelSelector", "fieldSelector", "sendInitialEvents"] {
        if query.contains_key(unsupported) {
            return status(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("the fake API server does not support {unsupported}"),
            );
        }
    }
    let world = shared.world();
    let Some(target) = route(&world, uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!(
                "the server could not find the requested resource ({})",
                uri.path()
            ),
        );
    };
    let ty = world.types[target.ty].clone();
    if world.forbidden.contains(&target.ty) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "{}{} is forbidden: User \"system:serviceaccount:watchkeeper:watchkeeper\" cannot list resource \"{}\"",
                ty.plural,
                if ty.group.is_empty() {
                    String::new()
                } else {
                    format!(".{}", ty.group)
                },
                ty.plural
            ),
        );
    }
    if let Some(name) = &target.name {
        let key = (
            target.ty,
            target.namespace.clone().unwrap_or_default(),
            name.clone(),
        );
        return match world.objects.get(&key) {
            Some(object) => axum::Json(object.clone()).into_response(),
            None => status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{} \"{name}\" not found", ty.plural),
            ),
        };
    }
    if query.get("watch").map(String::as_str) == Some("true") {
        let from: u64 = query
            .get("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let timeout = query
            .get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1800);
        let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
        drop(world);
        return Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(watch_stream(
                shared.clone(),
                target,
                ty,
                from,
                bookmarks,
                Duration::from_secs(timeout),
            )))
            .unwrap_or_default();
    }
    list(&world, &target, &ty, &query)
}

fn list(world: &World, target: &Target, ty: &Type, query: &HashMap<String, String>) -> Response {
    let (version, offset) = match query.get("continue") {
        Some(token) => {
            let parsed = token
                .split_once(':')
                .and_then(|(v, o)| Some((v.parse::<u64>().ok()?, o.parse::<usize>().ok()?)));
            match parsed {
                Some((v, _)) if v < world.compacted => {
                    return status(
                        StatusCode::GONE,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result.",
                    );
                }
                Some((v, o)) => (v, o),
                None => {
                    return status(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "invalid continue token",
                    );
                }
            }
        }
        None => (world.version, 0),
    };
    let items: Vec<Value> = world
        .objects
        .iter()
        .filter(|((t, ns, _), _)| {
            *t == target.ty && target.namespace.as_ref().is_none_or(|want| want == ns)
        })
        .map(|(_, object)| {
            let mut item = object.clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("apiVersion");
                map.remove("kind");
            }
            item
        })
        .collect();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let page: Vec<Value> = items.iter().skip(offset).take(limit).cloned().collect();
    let mut metadata = json!({ "resourceVersion": version.to_string() });
    if offset.saturating_add(limit) < items.len() {
        metadata["continue"] = format!("{version}:{}", offset + limit).into();
    }
    axum::Json(json!({
        "apiVersion": ty.api_version(),
        "kind": format!("{}List", ty.kind),
        "metadata": metadata,
        "items": page,
    }))
    .into_response()
}

/// Decrements the open-watch count when a stream is dropped.
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Watching {
    shared: Arc<Shared>,
    target: Target,
    ty: Type,
    cursor: u64,
    queue: std::collections::VecDeque<Value>,
    bookmarks: Option<watch::Receiver<u64>>,
    written: watch::Receiver<u64>,
    cut: watch::Receiver<u64>,
    deadline: tokio::time::Instant,
    done: bool,
    _open: Open,
}

fn line(event: &Value) -> Result<Bytes, Infallible> {
    let mut bytes = event.to_string().into_bytes();
    bytes.push(b'\n');
    Ok(Bytes::from(bytes))
}

impl Watching {
    /// Moves what the log holds after the cursor into the queue; false when
    /// the cursor's version was compacted away.
    fn catch_up(&mut self) -> bool {
        let world = self.shared.world();
        if self.cursor < world.compacted {
            return false;
        }
        for change in world.log.iter().filter(|c| c.version > self.cursor) {
            let wanted = change.ty == self.target.ty
                && self
                    .target
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| ns == &change.namespace);
            if wanted {
                self.queue
                    .push_back(json!({ "type": change.event, "object": change.object }));
            }
        }
        self.cursor = world.version;
        true
    }
}

enum Next {
    Written,
    Bookmark,
    End,
}

fn watch_stream(
    shared: Arc<Shared>,
    target: Target,
    ty: Type,
    from: u64,
    bookmarks: bool,
    timeout: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    shared.open_watches.fetch_add(1, Ordering::SeqCst);
    let mut start = Watching {
        written: shared.written.subscribe(),
        cut: shared.cut.subscribe(),
        bookmarks: bookmarks.then(|| shared.bookmarks.subscribe()),
        cursor: from,
        queue: Default::default(),
        deadline: tokio::time::Instant::now() + timeout,
        done: false,
        _open: Open(shared.clone()),
        shared,
        target,
        ty,
    };
    start.cut.mark_unchanged();
    if let Some(b) = &mut start.bookmarks {
        b.mark_unchanged();
    }
    if from == 0 {
        // "Any" version: synthetic ADDED events for what exists, then changes.
        let world = start.shared.world();
        for ((t, ns, _), object) in &world.objects {
            if *t == start.target.ty
                && start
                    .target
                    .namespace
                    .as_ref()
                    .is_none_or(|want| want == ns)
            {
                start
                    .queue
                    .push_back(json!({ "type": "ADDED", "object": object }));
            }
        }
        start.cursor = world.version;
    }
    futures::stream::unfold(start, |mut w| async move {
        loop {
            if w.done {
                return None;
            }
            if let Some(event) = w.queue.pop_front() {
                return Some((line(&event), w));
            }
            w.written.mark_unchanged();
            if !w.catch_up() {
                w.done = true;
                let world = w.shared.world();
                let gone = json!({
                    "type": "ERROR",
                    "object": {
                        "kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure",
                        "message": format!("too old resource version: {} ({})", w.cursor, world.compacted),
                        "reason": "Expired", "code": 410
                    }
                });
                drop(world);
                return Some((line(&gone), w));
            }
            if !w.queue.is_empty() {
                continue;
            }
            let next = {
                let bookmarks = &mut w.bookmarks;
                let bookmark = async move {
                    match bookmarks {
                        Some(rx) => rx.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                // What happened first is sent first: a write or a bookmark
                // before a cut reaches the client before the stream ends.
                tokio::select! {
                    biased;
                    _ = w.written.changed() => Next::Written,
                    wanted = bookmark => if wanted { Next::Bookmark } else { Next::End },
                    _ = w.cut.changed() => Next::End,
                    _ = tokio::time::sleep_until(w.deadline) => Next::End,
                }
            };
            match next {
                Next::Written => {}
                Next::Bookmark => {
                    if w.catch_up() {
                        let event = json!({
                            "type": "BOOKMARK",
                            "object": {
                                "kind": w.ty.kind, "apiVersion": w.ty.api_version(),
                                "metadata": { "resourceVersion": w.cursor.to_string() }
                            }
                        });
                        w.queue.push_back(event);
                    }
                }
                Next::End => return None,
            }
        }
    })
}
