//! `/wk playbooks`, `/wk run`, `/wk runs` and `/wk approvals`, and the
//! request path a modal submission shares with `/wk run`.

use super::params::{self, ParamDef, ParamProblems};
use super::runs::{self, Request};
use super::{Playbook, cards};
use crate::chat::{Inbound, InputKind, Modal, ModalInput, Reply};
use crate::dispatch::{Call, CommandError, Env, Verb};
use crate::outbox::SlackEffect;
use crate::store::playbook_runs::{self, RunFilter, RunStatus};
use crate::work::Work;
use futures::future::BoxFuture;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The modal's callback id.
pub const FORM: &str = "playbook.run";

/// Whether the person who acted may request `playbook` where they are.
pub fn may_request(env: &Env, inbound: &Inbound, playbook: &Playbook) -> Result<(), CommandError> {
    let place = &inbound.place;
    if !playbook.offered_to(place.tenant.as_ref()) {
        return Err(CommandError::NotVisible(no_playbook(playbook.name())));
    }
    env.authorizer
        .admits(
            &inbound.actor,
            place,
            &playbook.requesters,
            place.tenant.as_ref(),
        )
        .map_err(|denied| {
            CommandError::Denied(format!(
                "You may not request `{}`: {denied}.",
                playbook.name()
            ))
        })
}

/// What naming a playbook that does not exist here gets, whether it does not
/// exist at all or is offered only to another customer.
fn no_playbook(name: &str) -> String {
    format!("There is no playbook `{name}` here; `/wk playbooks` lists what you may run.")
}

/// Resolves a component parameter: it exists, the person may see it, and
/// the playbook applies to it.
fn component_check<'a>(
    env: &'a Env,
    inbound: &'a Inbound,
    playbook: &'a Playbook,
) -> impl Fn(&str) -> Result<String, String> + 'a {
    move |text: &str| {
        env.catalog.view(|book, _| {
            let catalog = book.catalog();
            let visible = |c: &crate::catalog::model::Component| match &inbound.place.tenant {
                Some(tenant) if inbound.actor.external => c.visible_to_tenant(tenant.as_str()),
                _ => true,
            };
            let component = catalog
                .lookup(text)
                .filter(|c| visible(c))
                .ok_or_else(|| format!("`{text}` is not a component you can see"))?;
            if !playbook.applies_to_component(component) {
                return Err(format!(
                    "playbook {} does not apply to `{}`",
                    playbook.name(),
                    component.id
                ));
            }
            Ok(component.id.to_string())
        })
    }
}

fn form(playbook: &Playbook, given: &BTreeMap<String, String>, inbound: &Inbound) -> Modal {
    let input = |def: &ParamDef| {
        let initial = given
            .get(def.name())
            .cloned()
            .or_else(|| def.spec.default.as_ref().map(ToString::to_string));
        let kind = match def.spec.kind {
            super::model::ParamType::Enum => InputKind::Select {
                options: def
                    .spec
                    .values
                    .iter()
                    .map(|v| (v.clone(), v.clone()))
                    .collect(),
                initial,
            },
            super::model::ParamType::Boolean => InputKind::Select {
                options: vec![("true".into(), "yes".into()), ("false".into(), "no".into())],
                initial,
            },
            _ => InputKind::Text {
                multiline: false,
                initial,
            },
        };
        ModalInput {
            id: def.name().to_string(),
            label: def.name().to_string(),
            hint: (!def.spec.description.is_empty()).then(|| def.spec.description.clone()),
            optional: !def.spec.required || def.spec.default.is_some(),
            kind,
        }
    };
    Modal {
        callback_id: FORM.into(),
        title: format!("Run {}", playbook.name()),
        submit: "Request".into(),
        private_metadata: format!(
            "{}|{}|{}",
            inbound.place.channel,
            inbound
                .place
                .thread
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            playbook.name()
        ),
        intro: Some(format!(
            "*{}*\n{}",
            crate::chat::mrkdwn::escape(&playbook.spec.title),
            crate::chat::mrkdwn::escape(&playbook.spec.description)
        )),
        inputs: playbook.params.iter().map(input).collect(),
    }
}

/// Requests a run of `name` with `given` for the person who acted: checks,
/// then records it, or opens the form (`trigger_id`) when values are missing.
pub async fn ask(
    env: &Env,
    inbound: &Inbound,
    work: &mut Work,
    name: &str,
    given: BTreeMap<String, String>,
    trigger_id: Option<&str>,
) -> Result<Reply, CommandError> {
    let templates = env.manifest.templates();
    let Some(playbook) = env.playbooks.get(name) else {
        return Err(CommandError::NotFound(no_playbook(name)));
    };
    may_request(env, inbound, &playbook)?;
    let check = component_check(env, inbound, &playbook);
    let parsed = params::parse_all(&playbook.params, &given, &check);
    let params = match parsed {
        Ok(params) => params,
        Err(ParamProblems { problems, missing }) if problems.is_empty() && trigger_id.is_some() => {
            let modal = form(&playbook, &given, inbound);
            let trigger = trigger_id.unwrap_or_default();
            work.effect(
                &format!("playbook-form:{trigger}"),
                &SlackEffect::OpenModal {
                    trigger_id: trigger.to_string(),
                    modal,
                },
            )
            .await
            .map_err(CommandError::internal)?;
            let text = templates
                .render(
                    "run.form",
                    &json!({ "playbook": playbook.name(), "missing": missing.join(", ") }),
                )
                .map_err(CommandError::internal)?;
            return Ok(Reply::text(text));
        }
        Err(ParamProblems {
            mut problems,
            missing,
        }) => {
            problems.extend(missing.iter().map(|m| format!("{m}: required")));
            return Err(CommandError::Usage(format!(
                "`{}` cannot run with these values: {}.",
                playbook.name(),
                problems.join("; ")
            )));
        }
    };
    let actor = &inbound.actor;
    let run = runs::request(
        work,
        env.manifest.templates(),
        Request {
            playbook: Arc::clone(&playbook),
            params,
            requested_by: actor.user.to_string(),
            team: actor.team.as_ref().map(ToString::to_string),
            roles: actor.role_names(),
            trigger: "person".into(),
            tenant: inbound.place.tenant.clone(),
            channel: inbound.place.channel.clone(),
            thread: inbound.place.thread.clone(),
        },
    )
    .await
    .map_err(CommandError::internal)?;
    let text = templates
        .render(
            "run.requested",
            &json!({
                "id": run.id,
                "playbook": playbook.name(),
                "approvals": playbook.approvals,
                "thread": inbound.place.thread.is_some(),
            }),
        )
        .map_err(CommandError::internal)?;
    Ok(Reply::text(text))
}

/// `/wk playbooks [component]`.
pub struct ListPlaybooks;

impl Verb for ListPlaybooks {
    fn verb(&self) -> &'static str {
        "playbooks"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let env = call.env;
            let component = call.line.args.first().cloned();
            let mut items = Vec::new();
            for playbook in env.playbooks.all() {
                if may_request(env, call.inbound, &playbook).is_err() {
                    continue;
                }
                if let Some(component) = &component {
                    let check = component_check(env, call.inbound, &playbook);
                    if check(component).is_err() {
                        continue;
                    }
                }
                let params: Vec<String> = playbook
                    .params
                    .iter()
                    .map(|p| {
                        let shown = if p.spec.required && p.spec.default.is_none() {
                            format!("{}=…", p.name())
                        } else {
                            format!("[{}=…]", p.name())
                        };
                        if component.is_some() && p.spec.kind == super::model::ParamType::Component
                        {
                            format!("{}={}", p.name(), component.clone().unwrap_or_default())
                        } else {
                            shown
                        }
                    })
                    .collect();
                items.push(json!({
                    "name": playbook.name(),
                    "title": playbook.spec.title,
                    "approvals": playbook.approvals,
                    "params": params,
                }));
            }
            let text = call.render("list", &json!({ "items": items, "component": component }))?;
            Ok(Reply::text(text))
        })
    }
}

/// `/wk run <playbook> [key=value …]`.
pub struct RunPlaybook;

impl Verb for RunPlaybook {
    fn verb(&self) -> &'static str {
        "run"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let Some((name, rest)) = call.line.args.split_first() else {
                return Err(CommandError::Usage(
                    "Say which playbook; `/wk playbooks` lists them.".into(),
                ));
            };
            let mut given = BTreeMap::new();
            for arg in rest {
                match arg.split_once('=') {
                    Some((key, value)) if !key.is_empty() => {
                        if given.insert(key.to_string(), value.to_string()).is_some() {
                            return Err(CommandError::Usage(format!("`{key}` is given twice.")));
                        }
                    }
                    _ => {
                        return Err(CommandError::Usage(format!(
                            "`{arg}` is not a parameter; write key=value (quote values with spaces)."
                        )));
                    }
                }
            }
            let trigger = match &call.inbound.kind {
                crate::chat::InboundKind::Command(c) => c.trigger_id.clone(),
                _ => None,
            };
            ask(
                call.env,
                call.inbound,
                call.work,
                name,
                given,
                trigger.as_deref(),
            )
            .await
        })
    }
}

/// `/wk runs [playbook|mine]`.
pub struct ListRuns;

impl Verb for ListRuns {
    fn verb(&self) -> &'static str {
        "runs"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let arg = call.line.args.first().cloned();
            let me = call.inbound.actor.user.to_string();
            let mut filter = RunFilter {
                limit: 50,
                ..RunFilter::default()
            };
            match arg.as_deref() {
                Some("mine") => filter.requested_by = Some(me),
                Some(name) => {
                    let missing = || {
                        format!("There is no playbook `{name}`; write a playbook's name or mine.")
                    };
                    let Some(playbook) = call.env.playbooks.get(name) else {
                        return Err(CommandError::NotFound(missing()));
                    };
                    // A customer does not learn of another customer's playbooks.
                    if call.inbound.actor.external
                        && !playbook.offered_to(call.inbound.place.tenant.as_ref())
                    {
                        return Err(CommandError::NotVisible(missing()));
                    }
                    filter.playbook = Some(name.to_string());
                }
                None => {}
            }
            let actor = &call.inbound.actor;
            let runs = call
                .work
                .store()
                .playbook_runs(&filter)
                .await
                .map_err(CommandError::internal)?;
            let now = call.work.now();
            let items: Vec<_> = runs
                .iter()
                // A customer sees their tenant's runs; staff see all.
                .filter(|r| !actor.external || (actor.tenant.is_some() && r.tenant.as_deref() == actor.tenant.as_ref().map(|t| t.as_str())))
                .take(15)
                .map(|r| {
                    json!({
                        "id": r.id,
                        "playbook": r.playbook,
                        "status": r.status.label(),
                        "requester": cards::requester(r),
                        "age": format!("{} ago", cards::span(now - r.created_at)),
                        "pr": r.pr_url,
                        "outcome": if r.status == RunStatus::Failed { r.outcome.clone() } else { None },
                    })
                })
                .collect();
            let text = call.render("list", &json!({ "items": items, "what": arg }))?;
            Ok(Reply::text(text))
        })
    }
}

/// `/wk approvals`.
pub struct Approvals;

impl Verb for Approvals {
    fn verb(&self) -> &'static str {
        "approvals"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let env = call.env;
            let actor = &call.inbound.actor;
            let filter = RunFilter {
                statuses: vec![RunStatus::AwaitingApproval],
                limit: 200,
                ..RunFilter::default()
            };
            let store = call.work.store().clone();
            let mut runs = store
                .playbook_runs(&filter)
                .await
                .map_err(CommandError::internal)?;
            runs.reverse();
            let mut items = Vec::new();
            for run in runs {
                if run.requested_by == actor.user.as_str() {
                    continue;
                }
                let Some(playbook) = env.playbooks.get(&run.playbook) else {
                    continue;
                };
                let tenant = run.tenant.as_deref().map(crate::ids::TenantId::from);
                if env
                    .authorizer
                    .admits(
                        actor,
                        &call.inbound.place,
                        &playbook.approvers,
                        tenant.as_ref(),
                    )
                    .is_err()
                {
                    continue;
                }
                let decisions = playbook_runs::decisions(store.pool(), run.id)
                    .await
                    .map_err(CommandError::internal)?;
                if decisions.iter().any(|d| d.approver == actor.user.as_str()) {
                    continue;
                }
                items.push(json!({
                    "id": run.id,
                    "playbook": run.playbook,
                    "params": cards::params_line(&run),
                    "requester": cards::requester(&run),
                    "approved": decisions.iter().filter(|d| d.decision == "approve").count(),
                    "needed": run.approvals_needed,
                    "expires": run.expires_at.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default(),
                }));
            }
            let text = call.render("list", &json!({ "count": items.len(), "items": items }))?;
            Ok(Reply::text(text))
        })
    }
}
