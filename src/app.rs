//! Wiring, start-up and shutdown: turns settings into a running service (HTTP
//! router, Socket Mode, workers) or a console session, and tears it down in
//! order (stop taking work, drain, flush the audit log, close the store).

use crate::audit::AuditLog;
use crate::auth::{Authorizer, UsergroupDirectory};
use crate::chat::console::{self, ConsoleChat};
use crate::chat::slack::limits::SlackLimits;
use crate::chat::slack::web::{ClientSetupError, DEFAULT_API_URL, SlackWebChat};
use crate::chat::slack::{SigningSecret, socket_mode};
use crate::chat::{Chat, ChatError, Destination, Modal, Outgoing, Posted};
use crate::clock::Clock;
use crate::config::{self, Config, ConfigError, Loaded};
use crate::dispatch::manifest::ManifestError;
use crate::dispatch::{self, DispatchError, Dispatcher, Env, Manifest};
use crate::faults::Faults;
use crate::forge::{Forge, GitForge, GitHubAuth, GitHubForge};
use crate::http::{self, HttpState};
use crate::ids::{ChannelId, MessageTs};
use crate::ingress::{InboxHandler, Ingress};
use crate::metrics::Metrics;
use crate::oncall::handoff::HandoffSection;
use crate::outbox::forge::{ForgeEffect, ForgeSink};
use crate::outbox::{Outbox, SlackEffect, SlackSink};
use crate::scheduler::{Recurrence, ScheduleDef, Scheduler, TimerHandler, builtin};
use crate::slack_manifest;
use crate::store::{self, Store, StoreError};
use crate::workers::Workers;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything the service needs from the command line and environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `WATCHKEEPER_DATABASE_URL`.
    pub database_url: String,
    /// `WATCHKEEPER_LISTEN`.
    pub listen: String,
    /// `SLACK_SIGNING_SECRET`.
    pub signing_secret: Option<String>,
    /// `SLACK_BOT_TOKEN`.
    pub bot_token: Option<String>,
    /// `SLACK_APP_TOKEN` (Socket Mode).
    pub app_token: Option<String>,
    /// `SLACK_API_URL`.
    pub slack_api_url: String,
    /// `GITHUB_TOKEN` (a personal or installation token).
    pub github_token: Option<String>,
    /// `GITHUB_API_URL` (overrides `forges.github.api_url`).
    pub github_api_url: Option<String>,
    /// `GITHUB_WEBHOOK_SECRET`.
    pub github_webhook_secret: Option<String>,
    /// `GITHUB_APP_PRIVATE_KEY` (PEM), with `forges.github.app_id`.
    pub github_app_key: Option<String>,
    /// `ALERTMANAGER_TOKEN`: the bearer token Alertmanager must send.
    pub alertmanager_token: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            config: None,
            database_url: store::DEFAULT_URL.to_string(),
            listen: "127.0.0.1:3000".to_string(),
            signing_secret: None,
            bot_token: None,
            app_token: None,
            slack_api_url: DEFAULT_API_URL.to_string(),
            github_token: None,
            github_api_url: None,
            github_webhook_secret: None,
            github_app_key: None,
            alertmanager_token: None,
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command manifest is unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Manifest and handlers disagree.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The database is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Slack client could not be set up.
    #[error(transparent)]
    Slack(#[from] ClientSetupError),
    /// The catalog has errors (one per line, `file:line: problem`).
    #[error("the catalog has errors:\n{0}")]
    Catalog(String),
    /// Playbooks have errors (one per line, `file:line: problem`).
    #[error("the playbooks have errors:\n{0}")]
    Playbooks(String),
    /// A forge could not be set up.
    #[error("cannot set up the {name} forge: {source}")]
    Forge {
        /// Which.
        name: &'static str,
        /// Why.
        source: crate::forge::ForgeError,
    },
    /// The listen address is taken or invalid.
    #[error("cannot listen on {addr}: {source} (set WATCHKEEPER_LISTEN to a free host:port)")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Terminal I/O failed.
    #[error("console I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Loads config and manifest and checks they fit together (no database needed).
pub fn load(settings: &Settings) -> Result<(Loaded, Manifest), AppError> {
    let loaded = config::load(settings.config.as_deref())?;
    let manifest = Manifest::load(&loaded.resolve(&loaded.config.commands.path))?;
    dispatch::check_manifest(&manifest)?;
    Ok((loaded, manifest))
}

/// The example catalog, for the bundled example configuration.
const EXAMPLE_CATALOG: &[(&str, &str)] = &[
    ("catalog/acme.yaml", include_str!("../catalog/acme.yaml")),
    (
        "catalog/globex.yaml",
        include_str!("../catalog/globex.yaml"),
    ),
    (
        "catalog/shared.yaml",
        include_str!("../catalog/shared.yaml"),
    ),
    (
        "catalog/backstage/catalog-info.yaml",
        include_str!("../catalog/backstage/catalog-info.yaml"),
    ),
];

/// Loads the catalog the configuration names (the example catalog for the
/// bundled example configuration); every problem is reported, one per line.
pub fn load_catalog(loaded: &Loaded) -> Result<crate::catalog::Loaded, AppError> {
    let result = match &loaded.file {
        None => crate::catalog::load_texts(
            &EXAMPLE_CATALOG
                .iter()
                .map(|(name, text)| (PathBuf::from(name), (*text).to_string()))
                .collect::<Vec<_>>(),
        ),
        Some(_) => {
            let paths: Vec<PathBuf> = loaded
                .config
                .catalog
                .paths
                .iter()
                .map(|p| loaded.resolve(p))
                .collect();
            crate::catalog::load(&paths)
        }
    };
    result.map_err(|errors| {
        AppError::Catalog(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// Loads the playbooks the configuration names (the bundled examples for the
/// bundled configuration); every problem is reported, one per line.
pub fn load_playbooks(
    loaded: &Loaded,
    catalog: &crate::catalog::Catalog,
) -> Result<crate::playbooks::Library, AppError> {
    crate::playbooks::service::load_configured(loaded, catalog).map_err(|errors| {
        AppError::Playbooks(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// How a [`Core`] runs: its clock, its identity among replicas, and whether
/// its workers run in the background (`serve`) or are driven by hand (tests
/// and the console, on a virtual clock).
#[derive(Clone)]
pub struct Runtime {
    /// Business time.
    pub clock: Clock,
    /// Run the inbox, timer and outbox loops in the background.
    pub background_workers: bool,
    /// Crash points, for tests and drills.
    pub faults: Option<Arc<dyn Faults>>,
    /// Hand-off sections beyond the jobs' own (tests, drills).
    pub handoff_sections: Vec<Arc<dyn HandoffSection>>,
}

impl Runtime {
    /// The production runtime: system clock, background workers.
    pub fn production() -> Self {
        Self {
            clock: Clock::system(),
            background_workers: true,
            faults: None,
            handoff_sections: Vec::new(),
        }
    }
}

/// The parts shared by `serve` and `console`.
pub struct Core {
    /// The configuration as loaded.
    pub loaded: Loaded,
    /// The store.
    pub store: Store,
    /// The dispatcher.
    pub dispatcher: Dispatcher,
    /// The scheduler and outbox workers.
    pub workers: Workers,
    /// User-group membership.
    pub directory: UsergroupDirectory,
    /// Metrics.
    pub metrics: Metrics,
    /// The Kubernetes clusters this replica watches.
    pub clusters: crate::catalog::kubernetes::ClusterWatchers,
    audit_task: JoinHandle<()>,
}

impl Core {
    /// Loads everything, opens (and migrates) the store and prepares the workers
    /// of replica `instance`, which deliver through `chat` (within Slack's rate
    /// limits when `limited`).
    pub async fn build(
        settings: &Settings,
        runtime: &Runtime,
        instance: &str,
        chat: Arc<dyn Chat>,
        limited: bool,
    ) -> Result<Self, AppError> {
        let (loaded, manifest) = load(settings)?;
        let config = &loaded.config;
        let clock = runtime.clock.clone();
        let store = Store::open(&settings.database_url).await?;
        let metrics = Metrics::default();
        let (audit, audit_task) = AuditLog::spawn(store.clone());
        let directory = UsergroupDirectory::from_config(config);
        let authorizer = Authorizer::new(config, directory.clone());
        let catalog = load_catalog(&loaded)?;
        for warning in &catalog.warnings {
            tracing::warn!(%warning, "catalog");
        }
        let playbooks =
            crate::playbooks::Playbooks::new(load_playbooks(&loaded, &catalog.catalog)?);
        let catalog = Arc::new(crate::catalog::CatalogService::new(catalog.catalog));
        let env = Env {
            manifest,
            authorizer: authorizer.clone(),
            config: Arc::new(config.clone()),
            clock: clock.clone(),
            catalog: catalog.clone(),
            playbooks: playbooks.clone(),
        };
        let listeners: Vec<Arc<dyn dispatch::Listener>> = vec![
            Arc::new(crate::oncall::Swaps),
            Arc::new(crate::support::Intake),
            Arc::new(crate::playbooks::PlaybookListener),
        ];
        let dispatcher = Dispatcher::new(env, audit, store.clone(), listeners)?;
        let lease = config.workers.lease.as_chrono();
        let forges = forges(settings, &loaded, &clock)?;
        let mut handlers: Vec<Arc<dyn TimerHandler>> = vec![
            Arc::new(InboxHandler::new(dispatcher.clone())),
            Arc::new(builtin::Notify),
            Arc::new(builtin::Housekeeping {
                retention: config.workers.retention.as_chrono(),
            }),
        ];
        handlers.extend(crate::postmortem::handlers(config, forges.clone()));
        handlers.extend(crate::playbooks::handlers::handlers(
            crate::playbooks::handlers::Shared {
                playbooks: playbooks.clone(),
                forges: forges.clone(),
                store: store.clone(),
                dispatcher: dispatcher.clone(),
                ops_channel: config.team.ops_channel.clone(),
                default_forge: config.playbooks.forge.clone(),
                clusters: config
                    .catalog
                    .clusters
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
            },
        ));
        handlers.push(Arc::new(crate::playbooks::triggers::Triggered::new(
            dispatcher.clone(),
        )));
        handlers.push(Arc::new(crate::oncall::Ticks::new(
            dispatcher.clone(),
            handoff_sections(runtime, &dispatcher, &catalog),
        )));
        handlers.extend(crate::support::handlers(dispatcher.clone()));
        let checks = crate::catalog::checks::HttpChecks::new(
            catalog.clone(),
            config.catalog.debounce.as_chrono(),
        )
        .map_err(|e| AppError::Catalog(format!("cannot set up the HTTP check client: {e}")))?;
        handlers.push(Arc::new(checks));
        handlers.push(Arc::new(crate::catalog::notify::Notifier::new(
            catalog.clone(),
            config.catalog.notify.clone(),
            config.catalog.repeat.as_chrono(),
        )));
        let scheduler = Scheduler::new(
            store.clone(),
            clock.clone(),
            instance,
            lease,
            metrics.clone(),
            handlers,
            runtime.faults.clone(),
        );
        let limits =
            limited.then(|| Arc::new(SlackLimits::new(&config.slack.rate_limits, clock.clone())));
        let slack = Arc::new(SlackSink::new(chat, limits, store.clone()));
        let outbox = Outbox::builder(
            store.clone(),
            clock.clone(),
            instance,
            lease,
            metrics.clone(),
        )
        .sink::<SlackEffect>(slack)
        .sink::<ForgeEffect>(Arc::new(ForgeSink::new(forges)))
        .sink::<crate::playbooks::effects::KubeEffect>(Arc::new(
            crate::playbooks::effects::KubeSink::new(clusters_of(&loaded)),
        ))
        .sink::<crate::playbooks::effects::HttpEffect>(Arc::new(
            crate::playbooks::effects::HttpSink::from_env().map_err(|e| {
                AppError::Playbooks(format!("cannot set up the HTTP client of playbooks: {e}"))
            })?,
        ))
        .ops_channel(config.team.ops_channel.clone())
        .faults(runtime.faults.clone())
        .build();
        let workers = Workers::new(
            scheduler,
            outbox,
            store.clone(),
            clock,
            metrics.clone(),
            config.workers.poll.as_std(),
        );
        workers.prepare(&schedules(config, &playbooks)).await?;
        let started = dispatcher.env();
        crate::oncall::ticks::replan_all(
            &store,
            config,
            started.manifest.templates(),
            runtime.clock.now(),
            "a configuration change",
        )
        .await?;
        if config.catalog.run_checks {
            arm_checks(&catalog, &store, runtime.clock.now()).await?;
        }
        let clusters = crate::catalog::kubernetes::ClusterWatchers::new(
            crate::catalog::kubernetes::watch::Context {
                catalog: catalog.clone(),
                store: store.clone(),
                clock: runtime.clock.clone(),
                debounce: config.catalog.debounce.as_chrono(),
                board: crate::catalog::kubernetes::StatusBoard::new(
                    metrics.clone(),
                    runtime.clock.clone(),
                ),
            },
            instance,
            lease,
        );
        // A cluster that cannot be reached never stops the start; neither
        // does a store hiccup here (the next tick tries again).
        if let Err(err) = clusters.configure(clusters_of(&loaded)).await {
            tracing::warn!(error = %err, "cannot take the cluster leases yet; trying again shortly");
        }
        Ok(Self {
            loaded,
            store,
            dispatcher,
            workers,
            directory,
            metrics,
            clusters,
            audit_task,
        })
    }

    /// Stops the cluster watches, flushes the audit log and closes the store.
    pub async fn close(self) {
        self.clusters.stop().await;
        self.dispatcher.audit().flush().await;
        drop(self.dispatcher);
        drop(self.workers);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.audit_task).await;
        self.store.close().await;
    }
}

/// Arms the next run of every HTTP check the catalog declares (idempotent).
async fn arm_checks(
    catalog: &crate::catalog::CatalogService,
    store: &Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let mut work = crate::work::Work::new(store.clone(), now);
    crate::catalog::checks::arm_all(catalog, &mut work).await?;
    work.commit().await
}

/// The configured clusters, their kubeconfig paths resolved against the
/// configuration file's folder.
fn clusters_of(loaded: &Loaded) -> Vec<crate::catalog::kubernetes::config::ClusterConfig> {
    let mut clusters = loaded.config.catalog.clusters.clone();
    for cluster in &mut clusters {
        if let Some(path) = &cluster.kubeconfig {
            cluster.kubeconfig = Some(loaded.resolve(path));
        }
    }
    clusters
}

/// Every job's part of a shift hand-off summary (read in a fixed order:
/// requests, incidents, approvals, changes), plus the runtime's extras.
fn handoff_sections(
    runtime: &Runtime,
    dispatcher: &Dispatcher,
    catalog: &Arc<crate::catalog::CatalogService>,
) -> Vec<Arc<dyn HandoffSection>> {
    let mut sections: Vec<Arc<dyn HandoffSection>> = vec![
        Arc::new(crate::support::handoff::OpenRequests::new({
            let dispatcher = dispatcher.clone();
            move || dispatcher.env().config.clone()
        })),
        Arc::new(crate::support::handoff::ActiveIncidents),
        Arc::new(crate::catalog::handoff::CatalogHandoff::new(
            catalog.clone(),
        )),
        Arc::new(crate::playbooks::handoff::PlaybookHandoff),
    ];
    sections.extend(runtime.handoff_sections.iter().cloned());
    sections
}

/// The forges by name: `git` always (repositories under `forges.git.path`),
/// `github` when configured and `GITHUB_TOKEN` is set.
fn forges(
    settings: &Settings,
    loaded: &Loaded,
    clock: &Clock,
) -> Result<HashMap<String, Arc<dyn Forge>>, AppError> {
    let config = &loaded.config;
    let mut forges: HashMap<String, Arc<dyn Forge>> = HashMap::new();
    let forge_error = |source| AppError::Forge {
        name: "git",
        source,
    };
    let mut git = GitForge::new(&config.forges.git.path, clock.clone()).map_err(forge_error)?;
    for (repo, url) in &config.forges.git.remotes {
        git = git.with_remote(repo, url).map_err(forge_error)?;
    }
    if let Some(seed) = &config.playbooks.seed {
        let files = crate::playbooks::service::seed_files(loaded).map_err(AppError::Playbooks)?;
        git = git
            .with_seed(&seed.repository, files)
            .map_err(forge_error)?;
    }
    forges.insert("git".into(), Arc::new(git));
    if let Some(github) = &config.forges.github {
        let url = settings
            .github_api_url
            .clone()
            .or_else(|| github.api_url.clone())
            .unwrap_or_else(|| crate::forge::github::DEFAULT_API_URL.to_string());
        let auth = match (
            github.app_id,
            &settings.github_app_key,
            &settings.github_token,
        ) {
            (Some(app_id), Some(key), _) => Some(GitHubAuth::App {
                app_id,
                private_key_pem: key.clone(),
            }),
            (Some(_), None, _) => {
                tracing::warn!(
                    "forges.github.app_id is set but GITHUB_APP_PRIVATE_KEY is not: GitHub tickets cannot be opened"
                );
                None
            }
            (None, _, Some(token)) => Some(GitHubAuth::Token(token.clone())),
            (None, _, None) => {
                tracing::warn!(
                    "forges.github is configured but GITHUB_TOKEN is not set: GitHub tickets cannot be opened"
                );
                None
            }
        };
        if let Some(auth) = auth {
            let forge = GitHubForge::new(&url, auth).map_err(|source| AppError::Forge {
                name: "github",
                source,
            })?;
            forges.insert("github".into(), Arc::new(forge));
        }
    }
    Ok(forges)
}

/// The recurring schedules the configuration declares.
/// Every recurring schedule the configuration and the playbooks declare.
fn schedules(config: &Config, playbooks: &crate::playbooks::Playbooks) -> Vec<ScheduleDef> {
    let mut defs = crate::postmortem::schedules(config);
    defs.extend(crate::playbooks::triggers::schedules(playbooks, config));
    match Recurrence::parse(&config.workers.housekeeping, config.team.timezone) {
        Ok(recurrence) => defs.push(ScheduleDef {
            name: "housekeeping".into(),
            recurrence,
            kind: builtin::Housekeeping::KIND.into(),
            payload: serde_json::Value::Null,
        }),
        Err(err) => tracing::error!(error = %err, "workers.housekeeping is not a schedule"),
    }
    for announcement in &config.announcements {
        let tz = announcement.timezone.unwrap_or(config.team.timezone);
        let Ok(recurrence) = Recurrence::parse(&announcement.cron, tz) else {
            continue; // refused when the configuration was loaded
        };
        let effect = SlackEffect::Post {
            to: crate::outbox::Target::Channel {
                channel: announcement.channel.clone(),
                thread: None,
            },
            reply: crate::chat::Reply::text(announcement.text.clone()).in_channel(),
        };
        defs.push(ScheduleDef {
            name: format!("announcement:{}", announcement.name),
            recurrence,
            kind: builtin::Notify::KIND.into(),
            payload: serde_json::to_value(builtin::NotifyPayload { effect }).unwrap_or_default(),
        });
    }
    defs
}

/// The chat side when no bot token is configured: inline replies still work,
/// anything else is refused with a clear log line.
struct NoBotToken;

fn no_bot_token() -> ChatError {
    ChatError::Permanent {
        code: "SLACK_BOT_TOKEN is not set".into(),
    }
}

impl Chat for NoBotToken {
    fn send(&self, _message: Outgoing) -> BoxFuture<'_, Result<Posted, ChatError>> {
        Box::pin(async { Err(no_bot_token()) })
    }

    fn react<'a>(
        &'a self,
        _channel: &'a ChannelId,
        _ts: &'a MessageTs,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(async { Err(no_bot_token()) })
    }

    fn open_modal<'a>(
        &'a self,
        _trigger_id: &'a str,
        _modal: &'a Modal,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(async { Err(no_bot_token()) })
    }

    fn find_posted<'a>(
        &'a self,
        _to: &'a Destination,
        _key: &'a str,
        _since: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<Option<Posted>, ChatError>> {
        Box::pin(async { Err(no_bot_token()) })
    }
}

/// This replica's name among replicas: host and port. While a process holds
/// the port no other can have the name, so a process starting under it knows
/// that whatever work the name had claimed was left by a dead process.
fn instance_name(addr: &SocketAddr) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}:{}", addr.port())
}

/// A running service.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its metrics.
    pub metrics: Metrics,
    core: Core,
    ready: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts the service on the system clock with background workers.
    pub async fn start(settings: &Settings) -> Result<Self, AppError> {
        Self::start_with(settings, Runtime::production()).await
    }

    /// Starts the service: store, workers, router, Socket Mode when configured.
    pub async fn start_with(settings: &Settings, runtime: Runtime) -> Result<Self, AppError> {
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .map_err(|source| AppError::Listen {
                addr: settings.listen.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AppError::Listen {
            addr: settings.listen.clone(),
            source,
        })?;
        let web = match &settings.bot_token {
            Some(token) => {
                let timeout = config::load(settings.config.as_deref())?
                    .config
                    .slack
                    .timeout();
                Some(SlackWebChat::new(&settings.slack_api_url, token)?.with_timeout(timeout))
            }
            None => {
                tracing::warn!(
                    "SLACK_BOT_TOKEN is not set: only inline replies to commands will reach Slack"
                );
                None
            }
        };
        let chat: Arc<dyn Chat> = match &web {
            Some(web) => Arc::new(web.clone()),
            None => Arc::new(NoBotToken),
        };
        let core = Core::build(settings, &runtime, &instance_name(&addr), chat, true).await?;
        let metrics = core.metrics.clone();
        let ingress = Ingress::new(
            core.dispatcher.clone(),
            core.store.clone(),
            runtime.clock.clone(),
            metrics.clone(),
        );
        if settings.signing_secret.is_none() && settings.app_token.is_none() {
            tracing::warn!(
                "neither SLACK_SIGNING_SECRET nor SLACK_APP_TOKEN is set: Slack cannot reach this instance"
            );
        }
        let ready = Arc::new(AtomicBool::new(false));
        let state = HttpState {
            ingress: ingress.clone(),
            signing_secret: settings.signing_secret.as_deref().map(SigningSecret::new),
            store: core.store.clone(),
            metrics: metrics.clone(),
            ready: ready.clone(),
            github_secret: settings
                .github_webhook_secret
                .as_deref()
                .map(|secret| Arc::from(secret.as_bytes())),
            clock: runtime.clock.clone(),
            alertmanager_token: settings.alertmanager_token.clone(),
            clusters: core.clusters.board().clone(),
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut http_shutdown = shutdown_rx.clone();
        let router = http::router(state);
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = http_shutdown.wait_for(|stop| *stop).await;
            });
            if let Err(err) = serve.await {
                tracing::error!(error = %err, "HTTP server failed");
            }
        }));
        if runtime.background_workers {
            tasks.extend(core.workers.spawn(shutdown_rx.clone()));
            tasks.push(core.clusters.spawn(shutdown_rx.clone()));
        }
        let env = core.dispatcher.env();
        tasks.extend(
            crate::playbooks::resources::spawn(
                &clusters_of(&core.loaded),
                &env,
                shutdown_rx.clone(),
            )
            .await,
        );
        if let (Some(web), Some(app_token)) = (&web, &settings.app_token) {
            tasks.push(tokio::spawn(socket_mode::run(
                web.clone(),
                app_token.clone(),
                ingress.clone(),
                shutdown_rx.clone(),
            )));
        }
        if let Some(web) = web {
            tasks.push(tokio::spawn(refresh_usergroups(
                web,
                core.directory.clone(),
                shutdown_rx.clone(),
            )));
        }
        ready.store(true, Ordering::Release);
        tracing::info!(%addr, "watchkeeper is ready");
        Ok(Self {
            addr,
            metrics,
            core,
            ready,
            shutdown,
            tasks,
        })
    }

    /// The store, for tests and tools.
    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// The dispatcher, for tests and tools.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.core.dispatcher
    }

    /// The workers, for tests and tools that drive them by hand.
    pub fn workers(&self) -> &Workers {
        &self.core.workers
    }

    /// The cluster watches, for tests and tools that tick them by hand.
    pub fn clusters(&self) -> &crate::catalog::kubernetes::ClusterWatchers {
        &self.core.clusters
    }

    /// Re-reads the configuration file and `commands/` and swaps them in for
    /// new requests (roles, customers, wording, postmortem settings, the
    /// catalog); requests in flight finish with what they started with. HTTP
    /// checks the new catalog declares start, and cluster watches follow
    /// `catalog.clusters`. A bad file is refused and the running
    /// configuration kept. Other workers and schedules keep theirs until a
    /// restart.
    pub async fn reload(&self, settings: &Settings) -> Result<(), AppError> {
        let (loaded, manifest) = load(settings)?;
        let fresh = load_catalog(&loaded)?;
        let playbooks = load_playbooks(&loaded, &fresh.catalog)?;
        let clusters = clusters_of(&loaded);
        let dispatcher = &self.core.dispatcher;
        let current = dispatcher.env();
        let run_checks = loaded.config.catalog.run_checks;
        let config = loaded.config;
        let env = Env {
            manifest,
            authorizer: Authorizer::new(&config, self.core.directory.clone()),
            config: Arc::new(config),
            clock: current.clock.clone(),
            catalog: current.catalog.clone(),
            playbooks: current.playbooks.clone(),
        };
        dispatcher.replace_env(env)?;
        current.playbooks.replace_files(playbooks);
        let reloaded = dispatcher.env();
        self.core
            .workers
            .sync_schedules(&schedules(&reloaded.config, &reloaded.playbooks))
            .await?;
        current
            .catalog
            .replace_catalog(fresh.catalog, current.clock.now());
        if run_checks {
            arm_checks(&current.catalog, &self.core.store, current.clock.now()).await?;
        }
        self.core.clusters.configure(clusters).await?;
        Ok(())
    }

    /// After a reload: tells the people whose shifts the new rotations moved
    /// and re-arms every rotation's hand-offs and reminders.
    pub async fn replan_oncall(&self) -> Result<(), AppError> {
        let env = self.core.dispatcher.env();
        crate::oncall::ticks::replan_all(
            &self.core.store,
            &env.config,
            env.manifest.templates(),
            env.clock.now(),
            "a configuration change",
        )
        .await?;
        Ok(())
    }

    /// Stops taking work, lets in-flight requests and the workers' current
    /// step finish, gives back what is still claimed, flushes and closes.
    pub async fn shutdown(self) {
        self.ready.store(false, Ordering::Release);
        let _ = self.shutdown.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(10), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        match self.core.workers.release_own_claims().await {
            Ok(0) => {}
            Ok(released) => {
                tracing::info!(released, "gave back unfinished work to the other replicas")
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot give back unfinished work; other replicas take it when the lease runs out")
            }
        }
        self.core.close().await;
    }
}

/// Re-reads Slack user-group membership every ten minutes.
async fn refresh_usergroups(
    web: SlackWebChat,
    directory: UsergroupDirectory,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        for group in directory.groups() {
            match web.usergroup_members(&group).await {
                Ok(members) => directory.replace(group, members),
                Err(err) => tracing::warn!(%group, error = %err, "cannot refresh user group"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// `watchkeeper serve`: runs until SIGTERM or Ctrl-C; SIGHUP reloads the
/// configuration and commands.
pub async fn serve(settings: Settings) -> Result<(), AppError> {
    // Listening before start and for the whole run: a signal that arrives
    // while a reload is being applied waits for the loop instead of being lost.
    let mut signals = Signals::new();
    let server = Server::start(&settings).await?;
    while let Signal::Reload = signals.next().await {
        match server.reload(&settings).await {
            Ok(()) => {
                tracing::info!("configuration and commands reloaded");
                if let Err(err) = server.replan_oncall().await {
                    tracing::error!(error = %err, "cannot re-plan the rotations after the reload");
                }
            }
            Err(err) => tracing::error!(
                error = %err,
                "reload refused; still running with the previous configuration"
            ),
        }
    }
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

enum Signal {
    Stop,
    Reload,
}

/// The process's stop and reload signals, listened to from creation on.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) {
                (Ok(term), Ok(hup)) => Some((term, hup)),
                _ => None,
            };
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        if let Some((term, hup)) = &mut self.streams {
            return tokio::select! {
                _ = term.recv() => Signal::Stop,
                _ = hup.recv() => Signal::Reload,
                _ = tokio::signal::ctrl_c() => Signal::Stop,
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop
    }
}

/// `watchkeeper console`: the bot on stdin/stdout with a virtual clock.
pub async fn console(settings: Settings) -> Result<(), AppError> {
    use std::io::IsTerminal;
    let clock = Clock::virtual_at(chrono::Utc::now());
    let out: console::Output = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let chat = Arc::new(ConsoleChat::new(out, clock.clone()));
    let runtime = Runtime {
        clock,
        background_workers: false,
        faults: None,
        handoff_sections: Vec::new(),
    };
    let core = Core::build(&settings, &runtime, "console", chat.clone(), false).await?;
    let interactive = std::io::stdin().is_terminal();
    let input = tokio::io::BufReader::new(tokio::io::stdin());
    console::run(
        core.dispatcher.clone(),
        core.workers.clone(),
        core.store.clone(),
        chat,
        input,
        interactive,
    )
    .await?;
    core.close().await;
    Ok(())
}

/// `watchkeeper migrate`: applies pending migrations; returns how many.
pub async fn migrate(settings: &Settings) -> Result<usize, AppError> {
    let store = Store::connect(&settings.database_url).await?;
    let applied = store.migrate().await?;
    store.close().await;
    Ok(applied)
}

/// `watchkeeper check`: validates config and commands (and that each
/// cluster's kubeconfig and context exist); returns a summary.
pub fn check(settings: &Settings) -> Result<String, AppError> {
    let (loaded, manifest) = load(settings)?;
    for (index, cluster) in clusters_of(&loaded).iter().enumerate() {
        crate::catalog::kubernetes::config::check_connection(index, cluster).map_err(
            |problem| {
                let err = ConfigError::Invalid {
                    file: loaded.source_name(),
                    line: None,
                    field: problem.field,
                    message: problem.message,
                };
                // The line, when the configuration is a file we can read again.
                match loaded.file.as_deref().map(std::fs::read_to_string) {
                    Some(Ok(text)) => err.with_line_from(&text),
                    _ => err,
                }
            },
        )?;
    }
    let catalog = load_catalog(&loaded)?;
    let playbooks = load_playbooks(&loaded, &catalog.catalog)?;
    let warnings: String = catalog
        .warnings
        .iter()
        .map(ToString::to_string)
        .chain(playbooks.warnings().map(ToString::to_string))
        .chain(crate::playbooks::service::config_warnings(&loaded))
        .map(|w| format!("\nwarning: {w}"))
        .collect();
    Ok(format!(
        "{}: ok — {} customers, {} channels, {} roles, {} commands, {} catalog components, {} clusters, {} playbooks{warnings}",
        loaded.source_name(),
        loaded.config.customers.len(),
        loaded
            .config
            .customers
            .values()
            .map(|c| c.channels.len())
            .sum::<usize>(),
        loaded.config.roles.len(),
        manifest.commands().count(),
        catalog.catalog.len(),
        loaded.config.catalog.clusters.len(),
        playbooks.len(),
    ))
}

/// `watchkeeper slack-manifest`: the Slack app manifest derived from `commands/`.
pub fn slack_manifest(
    settings: &Settings,
    delivery: &slack_manifest::Delivery,
) -> Result<serde_json::Value, AppError> {
    let (_, manifest) = load(settings)?;
    Ok(slack_manifest::build(&manifest, "Watchkeeper", delivery))
}
