//! `/wk resolve`, `/wk reopen`, `/wk urgent`, `/wk escalate` (in a request's
//! thread, or with its number) and `/wk requests [open|mine|breaching]`.

use super::escalation::Started;
use super::{Desk, request_label, requests, slack_date, thread_link};
use crate::chat::Reply;
use crate::dispatch::{Call, CommandError, Verb};
use crate::store::support as db;
use futures::future::BoxFuture;
use serde_json::json;

/// Splits `[#12] rest…` into the request argument and the rest.
fn split(args: &[String]) -> (Option<&str>, String) {
    match args.first() {
        Some(first) if super::parse_request_label(first).is_some() => {
            (Some(first.as_str()), args[1..].join(" "))
        }
        _ => (None, args.join(" ")),
    }
}

/// `/wk resolve [#12] [note]`.
pub struct Resolve;

impl Verb for Resolve {
    fn verb(&self) -> &'static str {
        "resolve"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let (which, note) = split(&call.line.args);
            let request = requests::find(call.work, &call.inbound.place, which).await?;
            let desk = Desk::new(call.env);
            let note = (!note.is_empty()).then_some(note.as_str());
            requests::resolve_checked(call.work, &desk, &request, &call.inbound.actor.user, note)
                .await?;
            let text = call.render("done", &json!({ "id": request.id }))?;
            Ok(Reply::text(text))
        })
    }
}

/// `/wk reopen [#12]`.
pub struct Reopen;

impl Verb for Reopen {
    fn verb(&self) -> &'static str {
        "reopen"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let (which, _) = split(&call.line.args);
            let request = requests::find(call.work, &call.inbound.place, which).await?;
            let desk = Desk::new(call.env);
            if !requests::reopen(call.work, &desk, &request, &call.inbound.actor.user)
                .await
                .map_err(CommandError::internal)?
            {
                return Err(CommandError::Conflict(format!(
                    "Request {} is still open.",
                    request_label(request.id)
                )));
            }
            let text = call.render("done", &json!({ "id": request.id }))?;
            Ok(Reply::text(text))
        })
    }
}

fn started_reply(call: &Call<'_>, id: i64, started: &Started) -> Result<Reply, CommandError> {
    let (state, escalation) = match started {
        Started::New(e) => ("new", Some(e.id)),
        Started::Running(e) => ("running", Some(e.id)),
        Started::NoPolicy => ("no_policy", None),
    };
    let text = call.render(
        "done",
        &json!({ "id": id, "state": state, "escalation": escalation,
                 "new": state == "new", "running": state == "running" }),
    )?;
    Ok(Reply::text(text))
}

/// The open request a command names; a conflict when it is not open.
async fn open_request(
    call: &mut Call<'_>,
    which: Option<&str>,
) -> Result<db::Request, CommandError> {
    let request = requests::find(call.work, &call.inbound.place, which).await?;
    if request.status != db::RequestStatus::Open {
        return Err(CommandError::Conflict(format!(
            "Request {} is {}; `/wk reopen` it first.",
            request_label(request.id),
            request.status.as_str()
        )));
    }
    Ok(request)
}

/// `/wk urgent [#12]`: pages on-call now, at any hour.
pub struct Urgent;

impl Verb for Urgent {
    fn verb(&self) -> &'static str {
        "urgent"
    }

    fn run<'a>(&'a self, mut call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let (which, _) = split(&call.line.args);
            let request = open_request(&mut call, which).await?;
            let desk = Desk::new(call.env);
            let by = call.inbound.actor.user.clone();
            let started =
                requests::mark_urgent(call.work, &desk, &request, Some(&by), "marked urgent")
                    .await
                    .map_err(CommandError::internal)?;
            started_reply(&call, request.id, &started)
        })
    }
}

/// `/wk escalate [#12] [reason]`.
pub struct Escalate;

impl Verb for Escalate {
    fn verb(&self) -> &'static str {
        "escalate"
    }

    fn run<'a>(&'a self, mut call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let (which, reason) = split(&call.line.args);
            let request = open_request(&mut call, which).await?;
            let desk = Desk::new(call.env);
            let by = call.inbound.actor.user.clone();
            let reason = if reason.is_empty() {
                "escalated by support".to_string()
            } else {
                reason.chars().take(200).collect()
            };
            let started = requests::escalate(call.work, &desk, &request, &reason, Some(&by), false)
                .await
                .map_err(CommandError::internal)?;
            started_reply(&call, request.id, &started)
        })
    }
}

/// `/wk requests [open|mine|breaching]`.
pub struct ListRequests;

impl Verb for ListRequests {
    fn verb(&self) -> &'static str {
        "requests"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let filter = call.line.args.first().map(String::as_str).unwrap_or("open");
            if !matches!(filter, "open" | "mine" | "breaching") {
                return Err(CommandError::Usage(format!(
                    "`{filter}` is not a filter; write open, mine or breaching"
                )));
            }
            let actor = &call.inbound.actor;
            // In a customer's channel (and for customers) only that customer's.
            let tenant = call
                .inbound
                .place
                .tenant
                .clone()
                .or_else(|| actor.tenant.clone());
            let now = call.work.now();
            let all = db::open_requests(call.work.store().pool(), tenant.as_ref())
                .await
                .map_err(CommandError::internal)?;
            let mut list: Vec<_> = all
                .into_iter()
                .filter(|r| match filter {
                    "mine" => {
                        r.claimed_by.as_ref() == Some(&actor.user)
                            || r.first_response_by.as_ref() == Some(&actor.user)
                            || r.opened_by == actor.user
                    }
                    "breaching" => r.breaching(now),
                    _ => true,
                })
                .collect();
            // Breaching first, then the oldest.
            list.sort_by_key(|r| (!r.breaching(now), r.opened_at, r.id));
            let config = &call.env.config;
            let desk = Desk::new(call.env);
            let items: Vec<_> = list
                .iter()
                .take(30)
                .map(|r| {
                    let zone = config
                        .customers
                        .get(&r.tenant)
                        .and_then(|c| c.timezone)
                        .unwrap_or(config.team.timezone);
                    json!({
                        "title": requests::title(&desk, r),
                        "link": thread_link(config, &r.channel, &r.thread_ts),
                        "breaching": r.breaching(now),
                        "urgent": r.urgent,
                        "claimed": r.claimed_by.as_ref().map(super::mention),
                        "answered": r.first_response_at.is_some(),
                        "due": r.first_response_due.filter(|_| r.first_response_at.is_none())
                            .or(r.resolution_due)
                            .map(|d| slack_date(d, zone)),
                    })
                })
                .collect();
            let text = call.render(
                "list",
                &json!({
                    "what": filter,
                    "count": list.len(),
                    "more": list.len().saturating_sub(items.len()),
                    "items": items,
                }),
            )?;
            Ok(Reply::text(text))
        })
    }
}
