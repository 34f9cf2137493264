//! The one dispatcher every input goes through: parse `/wk <verb> …`, authorise
//! it once, run the verb's handler, render errors in one place, and audit it.
//!
//! Verbs are data (`commands/*.yaml`) plus a small handler implementing [`Verb`];
//! a verb without both is refused at start-up, never discovered at run time.

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
use crate::chat::{Inbound, InboundKind, Outgoing, Reply};
use crate::clock::Clock;
use crate::config::Config;
use crate::store::audit::{AuditEntry, Outcome as AuditOutcome};
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

/// What a verb's handler gets: the input, its parsed line, its spec and the shared parts.
pub struct Call<'a> {
    /// The input, with actor and place.
    pub inbound: &'a Inbound,
    /// The parsed command line.
    pub line: &'a CommandLine,
    /// The verb's manifest entry.
    pub spec: &'a CommandSpec,
    /// Shared parts.
    pub env: &'a Env,
}

impl Call<'_> {
    /// Renders one of this verb's templates.
    pub fn render<T: serde::Serialize>(&self, name: &str, data: &T) -> Result<String, CommandError> {
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
}

/// What the dispatcher decided: a reply to the caller, and messages to others.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Shown to the person who acted (ephemeral unless the reply says otherwise).
    pub reply: Option<Reply>,
    /// Messages for channels, threads and people.
    pub effects: Vec<Outgoing>,
}

/// Why the dispatcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A verb in `commands/` has no handler.
    #[error("commands/{0}.yaml describes `/wk {0}`, but this build has no handler for it; remove the file or upgrade")]
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

/// Checks that every verb in the manifest has a handler, every handler has a
/// manifest entry, and every template a handler renders exists.
pub fn check_manifest(manifest: &Manifest) -> Result<(), DispatchError> {
    let handlers: Vec<&'static str> = verbs::all().iter().map(|v| v.verb()).collect();
    for spec in manifest.commands() {
        if !handlers.contains(&spec.verb.as_str()) {
            return Err(DispatchError::NoHandler(spec.verb.clone()));
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
    env: Arc<Env>,
    verbs: Arc<BTreeMap<&'static str, Box<dyn Verb>>>,
    audit: AuditLog,
}

impl Dispatcher {
    /// Builds the dispatcher, checking that manifest and handlers match.
    pub fn new(env: Env, audit: AuditLog) -> Result<Self, DispatchError> {
        check_manifest(&env.manifest)?;
        let verbs = verbs::all().into_iter().map(|v| (v.verb(), v)).collect();
        Ok(Self {
            env: Arc::new(env),
            verbs: Arc::new(verbs),
            audit,
        })
    }

    /// The shared parts (authoriser, manifest, config, clock).
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Handles one input.
    pub async fn handle(&self, inbound: Inbound) -> Outcome {
        match &inbound.kind {
            InboundKind::Command(command) => {
                let reply = self.command(&inbound, &command.text).await;
                Outcome {
                    reply: Some(reply),
                    effects: Vec::new(),
                }
            }
            // Messages, reactions, buttons and modals are routed to the jobs that
            // own them as those jobs land; until then they change nothing.
            _ => Outcome::default(),
        }
    }

    async fn command(&self, inbound: &Inbound, text: &str) -> Reply {
        let templates = self.env.manifest.templates();
        let line = match CommandLine::parse(text) {
            Ok(line) => line,
            Err(err) => {
                self.record(inbound, "command", text, AuditOutcome::Rejected, Some(err.to_string()));
                return errors::render(
                    templates,
                    &CommandError::Usage(err.to_string()),
                    "",
                    "/wk help",
                );
            }
        };
        let verb = if line.verb.is_empty() { "help" } else { line.verb.as_str() };
        let (Some(spec), Some(handler)) = (self.env.manifest.get(verb), self.verbs.get(verb)) else {
            self.record(inbound, &format!("command:{verb}"), text, AuditOutcome::Rejected, Some("unknown command".into()));
            return self.unknown(inbound, verb);
        };
        let action = format!("command:{verb}");
        if let Err(denied) =
            self.env
                .authorizer
                .authorize(&inbound.actor, &inbound.place, verb, &spec.audience)
        {
            self.record(inbound, &action, text, AuditOutcome::Denied, Some(denied.0.clone()));
            return errors::render(templates, &CommandError::Denied(denied.0), verb, &spec.usage);
        }
        let call = Call {
            inbound,
            line: &line,
            spec,
            env: &self.env,
        };
        match handler.run(call).await {
            Ok(reply) => {
                self.record(inbound, &action, text, AuditOutcome::Ok, None);
                reply
            }
            Err(err) => {
                self.record(inbound, &action, text, err.outcome(), Some(err.to_string()));
                errors::render(templates, &err, verb, &spec.usage)
            }
        }
    }

    /// "I don't know that", with the closest verb the caller may run.
    fn unknown(&self, inbound: &Inbound, verb: &str) -> Reply {
        let suggestion = self
            .env
            .manifest
            .commands()
            .filter(|spec| {
                self.env
                    .authorizer
                    .may(&inbound.actor, &inbound.place, &spec.verb, &spec.audience)
            })
            .map(|spec| (strsim::damerau_levenshtein(verb, &spec.verb), spec.verb.clone()))
            .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
            .min()
            .map(|(_, verb)| verb);
        let text = self
            .env
            .manifest
            .templates()
            .render(
                "common.unknown",
                &serde_json::json!({ "verb": verb, "suggestion": suggestion }),
            )
            .unwrap_or_else(|_| format!("I don't know `/wk {verb}`. Try `/wk help`."));
        Reply::text(text)
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
            at: self.env.clock.now(),
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
