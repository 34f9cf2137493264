//! The job's timers: preparing a run's dry run, expiring an unapproved
//! request, and carrying out an approved run one action at a time.
//!
//! How a restart resumes a run, state by state: `requested` — its
//! `playbook.plan` timer is still pending and fires again (the plan is
//! recomputed; nothing was posted); `awaiting_approval` — the cards and
//! buttons are in Slack, the expiry timer is pending, clicks reload the run;
//! `approved` — the start timer is pending; `running` — either the current
//! action's effect is in the outbox (delivered, or looked up first when its
//! fate is in doubt: a pull request is found again by its branch) or its
//! follow-up timer is pending; each follow-up advances the step with a
//! compare-and-set, so a step is never recorded twice.

use super::plan::{self, FileRead, Plan, Reads, Step};
use super::runs::{self, EXPIRE, PLAN, STEP};
use super::service::Playbooks;
use super::{Playbook, cards, effects};
use crate::auth::Role;
use crate::chat::Reply;
use crate::dispatch::Dispatcher;
use crate::forge::{FileChange, Forge, NewPullRequest};
use crate::ids::ChannelId;
use crate::outbox::forge::ForgeEffect;
use crate::outbox::{MessageRef, SlackEffect, Target};
use crate::scheduler::{HandlerError, TimerHandler};
use crate::store::audit::Outcome;
use crate::store::health::{self, HealthEvent};
use crate::store::outbox::FollowUp;
use crate::store::playbook_runs::{self, CardRef, Run, RunStatus};
use crate::store::timers::{NewTimer, Queue, Timer};
use crate::store::{Store, StoreError};
use crate::work::Work;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// What the handlers share.
#[derive(Clone)]
pub struct Shared {
    /// The playbooks.
    pub playbooks: Playbooks,
    /// Forges by name.
    pub forges: HashMap<String, Arc<dyn Forge>>,
    /// Reads for `prepare`.
    pub store: Store,
    /// The dispatcher, for what a reload changes: wording templates and who
    /// approves (named users and user-group members get DMs).
    pub dispatcher: Dispatcher,
    /// Where approval cards go.
    pub ops_channel: ChannelId,
    /// The forge of `gitops` actions that name none.
    pub default_forge: String,
    /// The clusters `kubernetes` actions may reach (`catalog.clusters`).
    pub clusters: Vec<String>,
}

/// The job's timer handlers.
pub fn handlers(shared: Shared) -> Vec<Arc<dyn TimerHandler>> {
    let shared = Arc::new(shared);
    vec![
        Arc::new(Prepare(shared.clone())),
        Arc::new(Expire(shared.clone())),
        Arc::new(Execute(shared)),
    ]
}

fn run_id(timer: &Timer) -> Result<i64, HandlerError> {
    timer.payload["id"]
        .as_i64()
        .ok_or_else(|| HandlerError::Permanent(format!("{}: no run id", timer.key)))
}

/// A run's parameters back as typed values (they were checked when requested).
fn typed_params(playbook: &Playbook, run: &Run) -> Result<super::params::Params, String> {
    let given = run
        .params
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    super::params::parse_all(&playbook.params, &given, &|id| Ok(id.to_string()))
        .map_err(|p| p.problems.join("; "))
}

/// Prepares the dry run: reads the files the plan edits (before the
/// transaction), renders the plan, then records it and asks for approval.
struct Prepare(Arc<Shared>);

impl Prepare {
    async fn plan(&self, run: &Run) -> Result<Result<Plan, String>, HandlerError> {
        let shared = &self.0;
        let Some(playbook) = shared.playbooks.get(&run.playbook) else {
            return Ok(Err(format!(
                "the playbook `{}` no longer exists",
                run.playbook
            )));
        };
        let params = match typed_params(&playbook, run) {
            Ok(params) => params,
            Err(e) => return Ok(Err(e)),
        };
        let context =
            plan::run_context(&playbook, &params, run.id, &run.requested_by, &run.trigger);
        let wanted: Vec<FileRead> =
            match plan::files_to_read(&playbook, &shared.default_forge, &context) {
                Ok(wanted) => wanted,
                Err(e) => return Ok(Err(e)),
            };
        let mut reads = Reads::new();
        for read in wanted {
            let Some(forge) = shared.forges.get(&read.forge) else {
                return Ok(Err(format!(
                    "the forge `{}` is not configured (for GitHub, set GITHUB_TOKEN)",
                    read.forge
                )));
            };
            match forge
                .read_file(&read.repo, read.base.as_deref(), &read.path)
                .await
            {
                Ok(content) => {
                    reads.insert(read, content);
                }
                Err(err) if err.is_permanent() => return Ok(Err(err.to_string())),
                Err(err) => return Err(HandlerError::Retry(err.to_string())),
            }
        }
        let plan = plan::build(&playbook, &shared.default_forge, &context, &params, &reads);
        if let Ok(plan) = &plan {
            for step in &plan.steps {
                if let Step::Kubernetes(k) = step
                    && !shared.clusters.contains(&k.cluster)
                {
                    return Ok(Err(format!(
                        "the cluster `{}` is not under catalog.clusters",
                        k.cluster
                    )));
                }
            }
        }
        Ok(plan)
    }

    async fn ask_for_approval(
        &self,
        work: &mut Work,
        run: &mut Run,
        plan: &Plan,
    ) -> Result<(), StoreError> {
        let shared = &self.0;
        let playbook = shared.playbooks.get(&run.playbook);
        let expires = playbook
            .as_ref()
            .map(|p| p.expires)
            .unwrap_or(chrono::Duration::hours(24));
        let now = work.now();
        let plan_json = serde_json::to_value(plan).unwrap_or_default();
        let tx = work.tx().await?;
        if !playbook_runs::set_plan(tx.conn(), run.id, &plan_json, now + expires, now).await? {
            return Ok(());
        }
        run.status = RunStatus::AwaitingApproval;
        run.expires_at = Some(now + expires);
        run.plan = Some(plan_json);
        runs::audit_system(work, run, "planned", Outcome::Ok, None).await?;
        let env = shared.dispatcher.env();
        let templates = env.manifest.templates();
        let dry_run = cards::dry_run(templates, run, plan);
        runs::say(work, run, "dry-run", dry_run.clone()).await?;
        // The cards: the ops channel (with the dry run in its thread), each
        // named approver by DM, and the run's own thread when customers approve.
        let card = cards::card(
            templates,
            run,
            &[],
            &runs::approvers_text(playbook.as_deref()),
        );
        let mut posted = Vec::new();
        let ops_key = format!("playbook-run:{}:card:ops", run.id);
        work.effect(
            &ops_key,
            &SlackEffect::Post {
                to: Target::Channel {
                    channel: shared.ops_channel.clone(),
                    thread: None,
                },
                reply: card.clone(),
            },
        )
        .await?;
        posted.push(CardRef {
            key: ops_key.clone(),
            channel: shared.ops_channel.to_string(),
        });
        if run.channel != shared.ops_channel.as_str() {
            work.effect(
                &format!("playbook-run:{}:dry-run:ops", run.id),
                &SlackEffect::Post {
                    to: Target::Channel {
                        channel: shared.ops_channel.clone(),
                        thread: Some(MessageRef::Posted(ops_key)),
                    },
                    reply: dry_run,
                },
            )
            .await?;
        }
        if let Some(playbook) = &playbook {
            // By DM too, to at most this many people (a big group hears in the ops channel).
            const DM_LIMIT: usize = 25;
            let named = env.authorizer.named_users(&playbook.approvers);
            for user in named
                .into_iter()
                .filter(|u| u.as_str() != run.requested_by)
                .take(DM_LIMIT)
            {
                let key = format!("playbook-run:{}:card:dm:{user}", run.id);
                work.effect(
                    &key,
                    &SlackEffect::Post {
                        to: Target::Direct { user: user.clone() },
                        reply: card.clone(),
                    },
                )
                .await?;
                posted.push(CardRef {
                    key,
                    channel: user.to_string(),
                });
            }
            if playbook.approvers.roles.contains(&Role::Customer)
                && run.channel != shared.ops_channel.as_str()
            {
                let key = format!("playbook-run:{}:card:thread", run.id);
                work.effect(
                    &key,
                    &SlackEffect::Post {
                        to: runs::thread(run),
                        reply: card.clone(),
                    },
                )
                .await?;
                posted.push(CardRef {
                    key,
                    channel: run.channel.clone(),
                });
            }
        }
        let tx = work.tx().await?;
        playbook_runs::set_cards(tx.conn(), run.id, &posted).await?;
        run.cards = posted;
        work.arm(NewTimer {
            queue: Queue::Timers,
            kind: EXPIRE.into(),
            key: format!("playbook-run:{}:expire", run.id),
            group: Some(runs::group(run.id)),
            lane: None,
            payload: json!({ "id": run.id }),
            due_at: now + expires,
        })
        .await?;
        Ok(())
    }
}

impl TimerHandler for Prepare {
    fn kind(&self) -> &'static str {
        PLAN
    }

    fn prepare<'a>(&'a self, timer: &'a Timer) -> BoxFuture<'a, Result<Value, HandlerError>> {
        Box::pin(async move {
            let id = run_id(timer)?;
            let Some(run) = self.0.store.playbook_run(id).await? else {
                return Ok(Value::Null);
            };
            if run.status != RunStatus::Requested {
                return Ok(Value::Null);
            }
            Ok(match self.plan(&run).await? {
                Ok(plan) => json!({ "plan": plan }),
                Err(error) => json!({ "error": error }),
            })
        })
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let id = run_id(timer)?;
            let Some(mut run) = runs::load(work, id).await? else {
                return Ok(());
            };
            if run.status != RunStatus::Requested {
                return Ok(());
            }
            let prepared = &timer.payload["prepared"];
            if let Some(error) = prepared["error"].as_str() {
                let outcome = format!("the dry run failed: {error}");
                if runs::transition(
                    work,
                    &mut run,
                    &[RunStatus::Requested],
                    RunStatus::Failed,
                    Some(&outcome),
                )
                .await?
                {
                    let env = self.0.dispatcher.env();
                    let text = cards::words(
                        env.manifest.templates(),
                        "dry_run_failed",
                        &json!({ "label": cards::label(id), "outcome": outcome }),
                    );
                    runs::say(work, &run, "dry-run-failed", Reply::text(text)).await?;
                }
                return Ok(());
            }
            let plan: Plan = serde_json::from_value(prepared["plan"].clone())
                .map_err(|e| HandlerError::Retry(format!("the dry run was not prepared: {e}")))?;
            self.ask_for_approval(work, &mut run, &plan).await?;
            Ok(())
        })
    }
}

/// Expires a request nobody approved in time; its buttons are replaced.
struct Expire(Arc<Shared>);

impl TimerHandler for Expire {
    fn kind(&self) -> &'static str {
        EXPIRE
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let id = run_id(timer)?;
            let Some(mut run) = runs::load(work, id).await? else {
                return Ok(());
            };
            let playbook = self.0.playbooks.get(&run.playbook);
            let env = self.0.dispatcher.env();
            runs::conclude(
                work,
                env.manifest.templates(),
                &mut run,
                &[RunStatus::AwaitingApproval],
                RunStatus::Expired,
                "nobody approved it in time",
                playbook.as_deref(),
                "expired",
                "expired",
                json!({}),
            )
            .await?;
            Ok(())
        })
    }
}

/// Carries out an approved run: each action's effect, one after the other.
struct Execute(Arc<Shared>);

impl Execute {
    /// Records what step `step` produced (its effect has ended).
    async fn finish_step(
        &self,
        work: &mut Work,
        run: &mut Run,
        plan: &Plan,
        step: i64,
        payload: &Value,
    ) -> Result<bool, StoreError> {
        let now = work.now();
        if payload["outcome"] != "delivered" {
            let error = payload["error"]
                .as_str()
                .unwrap_or("the action failed without saying why");
            let kind = usize::try_from(step)
                .ok()
                .and_then(|i| plan.steps.get(i))
                .map(step_kind)
                .unwrap_or("action");
            let outcome = format!("step {} ({kind}) failed: {error}", step + 1);
            let playbook = self.0.playbooks.get(&run.playbook);
            let env = self.0.dispatcher.env();
            runs::conclude(
                work,
                env.manifest.templates(),
                run,
                &[RunStatus::Running],
                RunStatus::Failed,
                &outcome,
                playbook.as_deref(),
                "failed",
                "step_failed",
                json!({ "outcome": outcome }),
            )
            .await?;
            return Ok(false);
        }
        let result = &payload["result"];
        if let Some(Step::Gitops(g)) = usize::try_from(step).ok().and_then(|i| plan.steps.get(i))
            && let Some(url) = result["url"].as_str()
        {
            let tx = work.tx().await?;
            playbook_runs::set_pr(tx.conn(), run.id, url, now).await?;
            run.pr_url = Some(url.to_string());
            let notes: Vec<&str> = result["notes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let env = self.0.dispatcher.env();
            let text = cards::words(
                env.manifest.templates(),
                "pull_request",
                &json!({
                    "label": cards::label(run.id),
                    "url": url,
                    "repo": g.repo,
                    "number": result["number"].as_i64().unwrap_or_default(),
                    "title": g.title,
                    "notes": notes,
                }),
            );
            runs::say(work, run, &format!("step:{step}:pr"), Reply::text(text)).await?;
            self.record_change(work, run, url, &g.title).await?;
        }
        runs::advance(work, run, step).await
    }

    /// Puts the pull request in the recent changes of the components the
    /// playbook applies to (and those its parameters name).
    async fn record_change(
        &self,
        work: &mut Work,
        run: &Run,
        url: &str,
        title: &str,
    ) -> Result<(), StoreError> {
        let Some(playbook) = self.0.playbooks.get(&run.playbook) else {
            return Ok(());
        };
        let mut components: Vec<String> = playbook.components().to_vec();
        for def in &playbook.params {
            if def.spec.kind == super::model::ParamType::Component
                && let Some(value) = run.params[def.name()].as_str()
            {
                components.push(value.to_string());
            }
        }
        components.sort();
        components.dedup();
        let now = work.now();
        for component in components {
            let event = HealthEvent {
                id: 0,
                component,
                source: format!(
                    "{}{}{}:run:{}",
                    crate::catalog::observe::CHANGE_PREFIX,
                    crate::catalog::observe::PLAYBOOK_CAUSE,
                    run.playbook,
                    run.id
                ),
                rag: None,
                reason: format!(
                    "Playbook {} ({}) opened a pull request: {title}",
                    run.playbook,
                    cards::label(run.id)
                ),
                since: now,
                link: Some(url.to_string()),
            };
            let tx = work.tx().await?;
            health::append(tx, &event).await?;
        }
        Ok(())
    }

    /// Records the effect of step `i`, or carries it out at once (messages).
    /// Returns true when the run must wait for the effect.
    async fn start_step(
        &self,
        work: &mut Work,
        run: &mut Run,
        plan: &Plan,
        i: usize,
    ) -> Result<bool, StoreError> {
        let key = format!("playbook-run:{}:step:{i}", run.id);
        let follow_up = || {
            Some(FollowUp {
                kind: STEP.into(),
                payload: json!({ "id": run.id, "step": i }),
            })
        };
        match &plan.steps[i] {
            Step::Gitops(g) => {
                let decisions = {
                    let tx = work.tx().await?;
                    playbook_runs::decisions(tx.conn(), run.id).await?
                };
                let approvers: Vec<String> = decisions
                    .iter()
                    .filter(|d| d.decision == "approve")
                    .map(|d| format!("Slack user {}", d.approver))
                    .collect();
                let body = format!(
                    "{}\n\n---\nWatchkeeper playbook `{}`, {} — requested by {}, approved by {}.\n",
                    g.body.trim_end(),
                    run.playbook,
                    cards::label(run.id),
                    if run.trigger == "person" {
                        format!("Slack user {}", run.requested_by)
                    } else {
                        run.trigger.clone()
                    },
                    approvers.join(", ")
                );
                let effect = ForgeEffect::OpenPullRequest {
                    forge: g.forge.clone(),
                    repo: g.repo.clone(),
                    pr: NewPullRequest {
                        branch: g.branch.clone(),
                        base: g.base.clone(),
                        title: g.title.clone(),
                        commit_message: Some(g.commit_message.clone()),
                        body,
                        files: g
                            .files
                            .iter()
                            .map(|f| FileChange {
                                path: f.path.clone(),
                                content: f.after.clone(),
                            })
                            .collect(),
                        labels: g.labels.clone(),
                        reviewers: g.reviewers.clone(),
                        auto_merge: g.auto_merge,
                    },
                };
                work.effect_then(&key, &effect, follow_up()).await?;
                Ok(true)
            }
            Step::Http(h) => {
                let secrets = self
                    .0
                    .playbooks
                    .get(&run.playbook)
                    .map(|p| p.spec.secrets.clone())
                    .unwrap_or_default();
                let effect = effects::HttpEffect {
                    run: run.id,
                    request: h.clone(),
                    secrets,
                };
                work.effect_then(&key, &effect, follow_up()).await?;
                Ok(true)
            }
            Step::Kubernetes(k) => {
                let effect = effects::KubeEffect {
                    run: run.id,
                    change: k.clone(),
                    at: work.now(),
                };
                work.effect_then(&key, &effect, follow_up()).await?;
                Ok(true)
            }
            Step::Notify(n) => {
                let to = match &n.channel {
                    Some(channel) => Target::Channel {
                        channel: ChannelId::from(channel.as_str()),
                        thread: None,
                    },
                    None => runs::thread(run),
                };
                work.effect(
                    &key,
                    &SlackEffect::Post {
                        to,
                        reply: Reply::text(n.text.clone()).in_channel(),
                    },
                )
                .await?;
                runs::advance(work, run, i64::try_from(i).unwrap_or(i64::MAX)).await?;
                Ok(false)
            }
        }
    }
}

fn step_kind(step: &Step) -> &'static str {
    match step {
        Step::Gitops(_) => "pull request",
        Step::Kubernetes(_) => "kubernetes",
        Step::Http(_) => "http",
        Step::Notify(_) => "message",
    }
}

impl Execute {
    /// For the next pull request this firing may open: the files whose
    /// content on the base changed since the dry run. What was approved is
    /// a diff against what the dry run read; a pull request written over a
    /// newer base would silently undo someone else's change.
    async fn drift(&self, timer: &Timer) -> Result<Value, HandlerError> {
        let id = run_id(timer)?;
        let Some(run) = self.0.store.playbook_run(id).await? else {
            return Ok(Value::Null);
        };
        let Some(plan) = run
            .plan
            .and_then(|p| serde_json::from_value::<Plan>(p).ok())
        else {
            return Ok(Value::Null);
        };
        let next = timer.payload["step"].as_i64().map_or(run.step, |s| s + 1);
        let next = usize::try_from(next).unwrap_or(usize::MAX);
        let upcoming = plan
            .steps
            .iter()
            .enumerate()
            .skip(next)
            .find(|(_, step)| !matches!(step, Step::Notify(_)));
        let Some((index, Step::Gitops(g))) = upcoming else {
            return Ok(Value::Null);
        };
        let Some(forge) = self.0.forges.get(&g.forge) else {
            return Ok(Value::Null); // the effect fails with the reason
        };
        let mut changed = Vec::new();
        for file in &g.files {
            match forge
                .read_file(&g.repo, g.base.as_deref(), &file.path)
                .await
            {
                Ok(now) if now == file.before => {}
                Ok(_) => changed.push(file.path.clone()),
                Err(err) if err.is_permanent() => changed.push(format!("{} ({err})", file.path)),
                Err(err) => return Err(HandlerError::Retry(err.to_string())),
            }
        }
        Ok(json!({ "step": index, "changed": changed }))
    }
}

impl TimerHandler for Execute {
    fn kind(&self) -> &'static str {
        STEP
    }

    fn prepare<'a>(&'a self, timer: &'a Timer) -> BoxFuture<'a, Result<Value, HandlerError>> {
        Box::pin(self.drift(timer))
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let id = run_id(timer)?;
            let Some(mut run) = runs::load(work, id).await? else {
                return Ok(());
            };
            if run.status == RunStatus::Approved {
                runs::transition(
                    work,
                    &mut run,
                    &[RunStatus::Approved],
                    RunStatus::Running,
                    None,
                )
                .await?;
            }
            if run.status != RunStatus::Running {
                return Ok(());
            }
            let Some(plan) = run
                .plan
                .clone()
                .and_then(|p| serde_json::from_value::<Plan>(p).ok())
            else {
                return Err(HandlerError::Permanent(format!(
                    "{} has no readable plan",
                    cards::label(id)
                )));
            };
            if let Some(step) = timer.payload["step"].as_i64() {
                if step != run.step {
                    return Ok(()); // an old follow-up: that step is recorded
                }
                if !self
                    .finish_step(work, &mut run, &plan, step, &timer.payload)
                    .await?
                {
                    return Ok(());
                }
            }
            while let Ok(i) = usize::try_from(run.step) {
                if i >= plan.steps.len() {
                    break;
                }
                let drift = &timer.payload["prepared"];
                let changed: Vec<&str> = drift["changed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if drift["step"].as_u64() == u64::try_from(i).ok() && !changed.is_empty() {
                    let outcome = format!(
                        "step {} (pull request) was not started: {} changed since the dry run",
                        i + 1,
                        changed.join(", ")
                    );
                    let playbook = self.0.playbooks.get(&run.playbook);
                    let env = self.0.dispatcher.env();
                    runs::conclude(
                        work,
                        env.manifest.templates(),
                        &mut run,
                        &[RunStatus::Running],
                        RunStatus::Failed,
                        &outcome,
                        playbook.as_deref(),
                        "drift",
                        "drift",
                        json!({ "files": changed.join(", ") }),
                    )
                    .await?;
                    return Ok(());
                }
                if self.start_step(work, &mut run, &plan, i).await? {
                    return Ok(());
                }
            }
            let summary = match &run.pr_url {
                Some(url) => format!("done; pull request {url}"),
                None => "done".to_string(),
            };
            let playbook = self.0.playbooks.get(&run.playbook);
            let env = self.0.dispatcher.env();
            let url = run.pr_url.clone().unwrap_or_default();
            runs::conclude(
                work,
                env.manifest.templates(),
                &mut run,
                &[RunStatus::Running],
                RunStatus::Succeeded,
                &summary,
                playbook.as_deref(),
                "succeeded",
                "succeeded",
                json!({ "url": url }),
            )
            .await?;
            Ok(())
        })
    }
}
