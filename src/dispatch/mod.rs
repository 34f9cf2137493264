//! The one dispatcher every input goes through: parse `/wk <verb> …`, authorise
//! it once, run the verb's handler, render errors in one place, and audit it.
//!
//! Verbs are data (`commands/*.yaml`) plus a small handler implementing [`Verb`];
//! a verb without both is refused at start-up, never discovered at run time.
//! Messages, reactions, button clicks and modal submissions go to the jobs'
//! [`Listener`]s: clicks and submissions by the prefix of their `action_id` or
//! `callback_id` (`request.`, `page.`, `approval.`), conversation to every job
//! that listens to it.
//!
//! Every handler gets a [`Work`]: what it records commits only if it succeeds.
//! A handler that refuses (usage, denied, not found, conflict) leaves nothing
//! behind — its writes are rolled back to a savepoint — and the refusal is shown
//! to the person and audited.

pub mod args;
pub mod errors;
pub mod manifest;
pub mod templates;
mod verbs;

pub use args::CommandLine;
pub use errors::CommandError;
pub use manifest::{CommandSpec, Manifest};

use crate::audit::AuditLog;
use crate::auth::Authorizer;
use crate::chat::{Inbound, InboundKind, Reply};
use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;
use crate::store::audit::{AuditEntry, Outcome as AuditOutcome};
use crate::work::Work;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A verb's handler.
pub trait Verb: Send + Sync {
    /// The verb it handles, as in its YAML file.
    fn verb(&self) -> &'static str;
    /// Runs the command; the reply goes to the caller.
    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>>;
}

/// What a verb's handler gets: the input, its parsed line, its spec, the
/// shared parts and the unit of work to record its decision in.
pub struct Call<'a> {
    /// The input, with actor and place.
    pub inbound: &'a Inbound,
    /// The parsed command line.
    pub line: &'a CommandLine,
    /// The verb's manifest entry.
    pub spec: &'a CommandSpec,
    /// Shared parts.
    pub env: &'a Env,
    /// Where the decision, its timers and its effects are recorded.
    pub work: &'a mut Work,
}

/// A job's handler for what people do outside slash commands.
pub trait Listener: Send + Sync {
    /// `action_id` / `callback_id` prefixes it owns, e.g. `["request."]`.
    fn prefixes(&self) -> &'static [&'static str];
    /// Whether it wants every message and reaction (support intake does).
    fn hears_conversation(&self) -> bool {
        false
    }
    /// Handles one input; a reply goes to the person who acted.
    fn handle<'a>(
        &'a self,
        inbound: &'a Inbound,
        env: &'a Env,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<Option<Reply>, CommandError>>;
}

impl Call<'_> {
    /// Renders one of this verb's templates.
    pub fn render<T: serde::Serialize>(
        &self,
        name: &str,
        data: &T,
    ) -> Result<String, CommandError> {
        self.env
            .manifest
            .templates()
            .render(&format!("{}.{name}", self.spec.verb), data)
            .map_err(CommandError::internal)
    }
}

/// The parts verbs share.
pub struct Env {
    /// The command manifest.
    pub manifest: Manifest,
    /// Who may do what.
    pub authorizer: Authorizer,
    /// The configuration.
    pub config: Arc<Config>,
    /// Business time.
    pub clock: Clock,
    /// The catalog and its health.
    pub catalog: Arc<crate::catalog::CatalogService>,
    /// The playbooks that may be requested.
    pub playbooks: crate::playbooks::Playbooks,
}

/// Why the dispatcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A verb in `commands/` has no handler.
    #[error(
        "commands/{0}.yaml describes `/wk {0}`, but this build has no handler for it; remove the file or upgrade"
    )]
    NoHandler(String),
    /// A handler has no manifest entry.
    #[error("`/wk {0}` has no commands/{0}.yaml: add it with usage, summary and audience")]
    NoManifest(String),
    /// A handler needs a template the manifest lacks.
    #[error("commands/{verb}.yaml: missing template `{template}`")]
    MissingTemplate {
        /// The verb.
        verb: String,
        /// The template it needs.
        template: String,
    },
}

/// "I don't know that", with the closest verb the caller may run.
fn unknown(env: &Env, inbound: &Inbound, verb: &str) -> Reply {
    let suggestion = env
        .manifest
        .commands()
        .filter(|spec| {
            env.authorizer
                .may(&inbound.actor, &inbound.place, &spec.verb, &spec.audience)
        })
        .map(|spec| {
            (
                strsim::damerau_levenshtein(verb, &spec.verb),
                spec.verb.clone(),
            )
        })
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min()
        .map(|(_, verb)| verb);
    let text = env
        .manifest
        .templates()
        .render(
            "common.unknown",
            &serde_json::json!({ "verb": verb, "suggestion": suggestion }),
        )
        .unwrap_or_else(|_| format!("I don't know `/wk {verb}`. Try `/wk help`."));
    Reply::text(text)
}

/// Checks that every verb in the manifest has a handler, every handler has a
/// manifest entry, and every template a handler renders exists.
pub fn check_manifest(manifest: &Manifest) -> Result<(), DispatchError> {
    let handlers: Vec<&'static str> = verbs::all().iter().map(|v| v.verb()).collect();
    for spec in manifest.commands() {
        if !handlers.contains(&spec.verb.as_str()) {
            return Err(DispatchError::NoHandler(spec.verb.clone()));
        }
    }
    // The jobs' own messages: `commands/_<job>.yaml`, templates `<job>.<name>`.
    let jobs: [(&str, &[&str]); 2] = [
        ("support", crate::support::TEMPLATES),
        ("playbook", crate::playbooks::cards::TEMPLATES),
    ];
    for (job, templates) in jobs {
        for template in templates {
            if !manifest.templates().has(&format!("{job}.{template}")) {
                return Err(DispatchError::MissingTemplate {
                    verb: format!("_{job}"),
                    template: (*template).to_string(),
                });
            }
        }
    }
    for verb in handlers {
        if manifest.get(verb).is_none() {
            return Err(DispatchError::NoManifest(verb.to_string()));
        }
        for template in verbs::required_templates(verb) {
            if !manifest.templates().has(&format!("{verb}.{template}")) {
                return Err(DispatchError::MissingTemplate {
                    verb: verb.to_string(),
                    template: template.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Routes every input to its handler; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    env: Arc<std::sync::RwLock<Arc<Env>>>,
    verbs: Arc<BTreeMap<&'static str, Box<dyn Verb>>>,
    listeners: Arc<Vec<Arc<dyn Listener>>>,
    audit: AuditLog,
    store: Store,
}

impl Dispatcher {
    /// Builds the dispatcher, checking that manifest and handlers match.
    pub fn new(
        env: Env,
        audit: AuditLog,
        store: Store,
        listeners: Vec<Arc<dyn Listener>>,
    ) -> Result<Self, DispatchError> {
        check_manifest(&env.manifest)?;
        let verbs = verbs::all().into_iter().map(|v| (v.verb(), v)).collect();
        Ok(Self {
            env: Arc::new(std::sync::RwLock::new(Arc::new(env))),
            verbs: Arc::new(verbs),
            listeners: Arc::new(listeners),
            audit,
            store,
        })
    }

    /// The shared parts (authoriser, manifest, config, clock) as they are now;
    /// a request keeps the snapshot it started with across a reload.
    pub fn env(&self) -> Arc<Env> {
        self.env
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Swaps in a reloaded configuration and manifest (SIGHUP). Requests in
    /// flight finish with the old one; nothing is dropped. Refused, keeping
    /// the old one, when manifest and handlers do not match.
    pub fn replace_env(&self, env: Env) -> Result<(), DispatchError> {
        check_manifest(&env.manifest)?;
        *self
            .env
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(env);
        Ok(())
    }

    /// Runs a slash command in its own unit of work and returns the reply; what
    /// the verb recorded is committed only if it succeeded.
    pub async fn command(&self, inbound: &Inbound) -> Reply {
        let text = match &inbound.kind {
            InboundKind::Command(command) => command.text.as_str(),
            _ => "",
        };
        let env = self.env();
        let mut work = Work::new(self.store.clone(), env.clock.now());
        let (reply, succeeded) = self.run_command(&env, inbound, text, &mut work).await;
        if !succeeded {
            return reply;
        }
        match work.commit().await {
            Ok(()) => reply,
            Err(err) => errors::render(
                env.manifest.templates(),
                &CommandError::internal(err),
                text.split_whitespace().next().unwrap_or("help"),
                "/wk help",
            ),
        }
    }

    /// Handles any input inside `work` (the inbox's): a command, or a message,
    /// reaction, click or submission for the jobs. Returns the reply for the
    /// person who acted. Internal errors are returned so the inbox retries; a
    /// refusal is a reply.
    pub async fn handle(
        &self,
        inbound: &Inbound,
        work: &mut Work,
    ) -> Result<Option<Reply>, CommandError> {
        let env = self.env();
        let (routed, action) = match &inbound.kind {
            InboundKind::Command(command) => {
                let text = command.text.clone();
                let savepoint = Savepoint::set(work).await?;
                let (reply, succeeded) = self.run_command(&env, inbound, &text, work).await;
                savepoint.close(work, succeeded).await?;
                return Ok(Some(reply));
            }
            InboundKind::Message(_) | InboundKind::Reaction(_) => {
                let hearing: Vec<_> = self
                    .listeners
                    .iter()
                    .filter(|l| l.hears_conversation())
                    .cloned()
                    .collect();
                (hearing, None)
            }
            InboundKind::BlockAction(action) => (
                self.owner(&action.action_id),
                Some(format!("action:{}", action.action_id)),
            ),
            InboundKind::ViewSubmission(view) => (
                self.owner(&view.callback_id),
                Some(format!("view:{}", view.callback_id)),
            ),
        };
        // A stranger's click is refused before any job sees it.
        if let (InboundKind::BlockAction(_), Some(action)) = (&inbound.kind, &action)
            && let Err(denied) = env.authorizer.may_press(&inbound.actor, &inbound.place)
        {
            let err = CommandError::Denied(denied.0);
            self.record(inbound, action, "", err.outcome(), Some(err.to_string()));
            return Ok(Some(errors::render(
                env.manifest.templates(),
                &err,
                action,
                "",
            )));
        }
        if routed.is_empty() {
            if let Some(action) = &action {
                tracing::warn!(action, "no job handles this interaction");
            }
            return Ok(None);
        }
        let mut reply = None;
        for listener in routed {
            let savepoint = Savepoint::set(work).await?;
            let result = listener.handle(inbound, &env, work).await;
            savepoint.close(work, result.is_ok()).await?;
            match result {
                Ok(r) => {
                    if let Some(action) = &action {
                        self.record(inbound, action, "", AuditOutcome::Ok, None);
                    }
                    reply = reply.or(r);
                }
                Err(CommandError::Internal(source)) => return Err(CommandError::Internal(source)),
                Err(err) => {
                    let action = action.clone().unwrap_or_else(|| "conversation".into());
                    self.record(inbound, &action, "", err.outcome(), Some(err.to_string()));
                    return Ok(Some(errors::render(
                        env.manifest.templates(),
                        &err,
                        &action,
                        "",
                    )));
                }
            }
        }
        Ok(reply)
    }

    /// The listener owning an `action_id` or `callback_id`.
    fn owner(&self, id: &str) -> Vec<Arc<dyn Listener>> {
        self.listeners
            .iter()
            .find(|l| l.prefixes().iter().any(|p| id.starts_with(p)))
            .cloned()
            .into_iter()
            .collect()
    }

    /// Runs `/wk <text>`; returns the reply and whether the verb succeeded.
    async fn run_command(
        &self,
        env: &Env,
        inbound: &Inbound,
        text: &str,
        work: &mut Work,
    ) -> (Reply, bool) {
        let templates = env.manifest.templates();
        let line = match CommandLine::parse(text) {
            Ok(line) => line,
            Err(err) => {
                self.record(
                    inbound,
                    "command",
                    text,
                    AuditOutcome::Rejected,
                    Some(err.to_string()),
                );
                return (
                    errors::render(
                        templates,
                        &CommandError::Usage(err.to_string()),
                        "",
                        "/wk help",
                    ),
                    false,
                );
            }
        };
        let verb = if line.verb.is_empty() {
            "help"
        } else {
            line.verb.as_str()
        };
        let (Some(spec), Some(handler)) = (env.manifest.get(verb), self.verbs.get(verb)) else {
            self.record(
                inbound,
                &format!("command:{verb}"),
                text,
                AuditOutcome::Rejected,
                Some("unknown command".into()),
            );
            return (unknown(env, inbound, verb), false);
        };
        let action = format!("command:{verb}");
        if let Err(denied) =
            env.authorizer
                .authorize(&inbound.actor, &inbound.place, verb, &spec.audience)
        {
            self.record(
                inbound,
                &action,
                text,
                AuditOutcome::Denied,
                Some(denied.0.clone()),
            );
            return (
                errors::render(
                    templates,
                    &CommandError::Denied(denied.0),
                    verb,
                    &spec.usage,
                ),
                false,
            );
        }
        let call = Call {
            inbound,
            line: &line,
            spec,
            env,
            work,
        };
        match handler.run(call).await {
            Ok(reply) => {
                self.record(inbound, &action, text, AuditOutcome::Ok, None);
                (reply, true)
            }
            Err(err) => {
                self.record(inbound, &action, text, err.outcome(), Some(err.to_string()));
                (errors::render(templates, &err, verb, &spec.usage), false)
            }
        }
    }

    fn record(
        &self,
        inbound: &Inbound,
        action: &str,
        detail: &str,
        outcome: AuditOutcome,
        reason: Option<String>,
    ) {
        let actor = &inbound.actor;
        self.audit.record(AuditEntry {
            at: self.env().clock.now(),
            actor_user: actor.user.to_string(),
            actor_team: actor.team.as_ref().map(ToString::to_string),
            roles: actor.role_names(),
            tenant: inbound
                .place
                .tenant
                .as_ref()
                .or(actor.tenant.as_ref())
                .map(ToString::to_string),
            channel: Some(inbound.place.channel.to_string()),
            action: action.to_string(),
            detail: detail.chars().take(500).collect(),
            outcome: outcome.as_str().to_string(),
            reason,
        });
    }

    /// The audit writer, for flushing at shutdown and in tests.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }
}

/// A savepoint around one handler inside an open transaction, so a handler
/// that refuses leaves nothing behind. Without an open transaction there is
/// nothing to protect: a refused command's transaction is simply not committed.
struct Savepoint {
    active: bool,
}

impl Savepoint {
    async fn set(work: &mut Work) -> Result<Self, CommandError> {
        if !work.has_tx() {
            return Ok(Self { active: false });
        }
        let tx = work.tx().await.map_err(CommandError::internal)?;
        sqlx::query("SAVEPOINT wk_handler")
            .execute(tx.conn())
            .await
            .map_err(CommandError::internal)?;
        Ok(Self { active: true })
    }

    async fn close(self, work: &mut Work, keep: bool) -> Result<(), CommandError> {
        if !self.active {
            return Ok(());
        }
        let tx = work.tx().await.map_err(CommandError::internal)?;
        let sql = if keep {
            "RELEASE SAVEPOINT wk_handler"
        } else {
            "ROLLBACK TO SAVEPOINT wk_handler"
        };
        sqlx::query(sql)
            .execute(tx.conn())
            .await
            .map_err(CommandError::internal)?;
        Ok(())
    }
}
