//! Playbooks from the cluster: `Playbook` custom resources
//! (`playbooks.watchkeeper.dev`), watched in the cluster that
//! `playbooks.resources_from` names, through the same checks as files.
//!
//! The watcher keeps the objects it has seen; after its initial list and
//! after every change it rebuilds the library of resources and swaps it in
//! (`Playbooks::replace_resources`). An invalid object is left out with its
//! problems logged (`cluster:<cluster>/<namespace>/<name>:1: …`); one whose
//! `metadata.name` differs from `spec.name` too. A file of the same name wins.

use super::load::{self, Context, Library};
use super::model::PlaybookResource;
use super::service::Playbooks;
use crate::catalog::CatalogService;
use crate::config::Config;
use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

type Key = (String, String);

fn key(object: &PlaybookResource) -> Key {
    (object.namespace().unwrap_or_default(), object.name_any())
}

/// Checks every object and swaps the library in; returns how many loaded.
pub fn publish(
    cluster: &str,
    objects: &BTreeMap<Key, PlaybookResource>,
    playbooks: &Playbooks,
    config: &Config,
    catalog: &CatalogService,
) -> usize {
    let snapshot = catalog.view(|book, _| book.catalog().clone());
    let cx = Context {
        config,
        catalog: &snapshot,
    };
    let mut valid: Vec<super::Playbook> = Vec::new();
    for ((namespace, name), object) in objects {
        let source = format!("cluster:{cluster}/{namespace}/{name}");
        if object.spec.name != *name {
            tracing::warn!(%source, spec_name = object.spec.name, "a Playbook's metadata.name must equal spec.name; left out");
            continue;
        }
        if valid.iter().any(|p| p.name() == name) {
            tracing::warn!(%source, "a Playbook of this name exists in another namespace; left out");
            continue;
        }
        match load::check(object.spec.clone(), &source, None, &cx) {
            Ok(playbook) => valid.push(playbook),
            Err(errors) => {
                for error in errors {
                    tracing::warn!(%error, "Playbook resource left out");
                }
            }
        }
    }
    let count = valid.len();
    playbooks.replace_resources(Library::new(valid));
    count
}

/// Watches `Playbook`s through `client` until `shutdown`.
pub async fn run(
    cluster: String,
    client: kube::Client,
    playbooks: Playbooks,
    config: Arc<Config>,
    catalog: Arc<CatalogService>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<PlaybookResource> = Api::all(client);
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut objects: BTreeMap<Key, PlaybookResource> = BTreeMap::new();
    let mut listing: Option<BTreeMap<Key, PlaybookResource>> = None;
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let changed = match event {
            None => return,
            Some(Err(err)) => {
                tracing::warn!(%cluster, error = %err, "cannot watch Playbook resources; retrying");
                false
            }
            Some(Ok(watcher::Event::Init)) => {
                listing = Some(BTreeMap::new());
                false
            }
            Some(Ok(watcher::Event::InitApply(object))) => {
                listing.get_or_insert_default().insert(key(&object), object);
                false
            }
            Some(Ok(watcher::Event::InitDone)) => {
                objects = listing.take().unwrap_or_default();
                true
            }
            Some(Ok(watcher::Event::Apply(object))) => {
                objects.insert(key(&object), object);
                true
            }
            Some(Ok(watcher::Event::Delete(object))) => {
                objects.remove(&key(&object));
                true
            }
        };
        if changed {
            let count = publish(&cluster, &objects, &playbooks, &config, &catalog);
            tracing::info!(%cluster, count, "Playbook resources loaded");
        }
    }
}

/// Starts watching the cluster `playbooks.resources_from` names, if any.
pub async fn spawn(
    clusters: &[crate::catalog::kubernetes::config::ClusterConfig],
    env: &crate::dispatch::Env,
    shutdown: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let name = env.config.playbooks.resources_from.clone()?;
    let Some(cluster) = clusters.iter().find(|c| c.name == name) else {
        tracing::error!(
            cluster = name,
            "playbooks.resources_from is not under catalog.clusters"
        );
        return None;
    };
    let client = match crate::catalog::kubernetes::config::connect(cluster).await {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(cluster = name, error = %err, "cannot read Playbook resources");
            return None;
        }
    };
    Some(tokio::spawn(run(
        name,
        client,
        env.playbooks.clone(),
        env.config.clone(),
        env.catalog.clone(),
        shutdown,
    )))
}
