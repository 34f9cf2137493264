//! `/wk postmortem` and `/wk postmortems`.

use super::config::PostmortemsConfig;
use super::{label, parse_permalink, render};
use crate::chat::Reply;
use crate::dispatch::{Call, CommandError, Verb};
use crate::forge::NewIssue;
use crate::ids::{ChannelId, MessageTs, UserId};
use crate::outbox::forge::ForgeEffect;
use crate::store::outbox::FollowUp;
use crate::store::postmortems::{self, NewPostmortem, Postmortem, PostmortemStatus};
use crate::store::timeline::{self, TimelineEntry, thread_subject};
use futures::future::BoxFuture;
use serde_json::json;

/// `/wk postmortem [thread link] [title…] [sev=SEV2] [owner=@user] [label=x]`.
pub struct OpenPostmortem;

/// What the command line asks for.
#[derive(Debug, Default, PartialEq)]
struct Request {
    thread: Option<(ChannelId, MessageTs)>,
    support_request: Option<i64>,
    title: Vec<String>,
    severity: Option<String>,
    owner: Option<UserId>,
    labels: Vec<String>,
}

use crate::dispatch::args::user_mention as user_arg;

fn parse(args: &[String]) -> Result<Request, CommandError> {
    let mut request = Request::default();
    for (i, arg) in args.iter().enumerate() {
        if i == 0
            && arg.starts_with('#')
            && let Some(id) = crate::support::parse_request_label(arg)
        {
            request.support_request = Some(id);
            continue;
        }
        if i == 0 && arg.contains("/archives/") {
            request.thread = Some(parse_permalink(arg).ok_or_else(|| {
                CommandError::Usage(format!(
                    "`{arg}` is not a Slack message link; copy it with \"Copy link\" on the thread's first message"
                ))
            })?);
            continue;
        }
        match arg.split_once('=') {
            Some(("sev" | "severity", value)) if !value.is_empty() => {
                let value = value.to_ascii_uppercase();
                if value.len() > 16 || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(CommandError::Usage(format!(
                        "`{value}` is not a severity; write one word such as SEV1"
                    )));
                }
                request.severity = Some(value);
            }
            Some(("owner", value)) => {
                request.owner = Some(user_arg(value).ok_or_else(|| {
                    CommandError::Usage(format!("`{value}` is not a person; write owner=@someone"))
                })?);
            }
            Some(("label", value)) if !value.is_empty() => {
                request.labels.push(value.chars().take(50).collect());
            }
            _ => request.title.push(arg.clone()),
        }
    }
    Ok(request)
}

fn issue_for(
    config: &PostmortemsConfig,
    pm: &Postmortem,
    body: String,
    extra_labels: &[String],
) -> NewIssue {
    let mut labels = config.labels.clone();
    labels.push(pm.severity.to_ascii_lowercase());
    for label in extra_labels {
        if !labels.contains(label) {
            labels.push(label.clone());
        }
    }
    let assignees = pm
        .owner
        .as_deref()
        .and_then(|owner| config.logins.get(&UserId::from(owner)).cloned())
        .into_iter()
        .collect();
    NewIssue {
        title: format!("{}: {}", label(pm.id), pm.title),
        body,
        labels,
        assignees,
    }
}

impl Verb for OpenPostmortem {
    fn verb(&self) -> &'static str {
        "postmortem"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let config = &call.env.config;
            let settings = &config.postmortems;
            let request = parse(&call.line.args)?;
            let place = &call.inbound.place;
            let by_number = match request.support_request {
                Some(id) => Some(
                    crate::support::requests::thread_of_request(call.work, id)
                        .await
                        .map_err(CommandError::internal)?
                        .ok_or_else(|| {
                            CommandError::NotFound(format!("There is no request #{id}."))
                        })?,
                ),
                None => None,
            };
            let (channel, thread) = match (
                by_number.as_ref().or(request.thread.as_ref()),
                &place.thread,
            ) {
                (Some((channel, ts)), _) => (channel.clone(), ts.clone()),
                (None, Some(ts)) => (place.channel.clone(), ts.clone()),
                (None, None) => {
                    return Err(CommandError::Usage(
                        "say which thread: run it inside the thread, or give the link of the thread's first message".into(),
                    ));
                }
            };
            let tenant = call.env.authorizer.tenant_of(&channel);
            let subject = thread_subject(channel.as_str(), thread.as_str());
            let now = call.work.now();
            let title = render::plain_title(&request.title.join(" "));
            let title = if title.is_empty() {
                let zone = tenant
                    .as_ref()
                    .and_then(|t| config.customers.get(t))
                    .and_then(|c| c.timezone)
                    .unwrap_or(config.team.timezone);
                let when = super::ts_time(&thread)
                    .unwrap_or(now)
                    .with_timezone(&zone)
                    .format("%Y-%m-%d");
                match tenant.as_ref().and_then(|t| config.customers.get(t)) {
                    Some(customer) => format!("{} incident on {when}", customer.name),
                    None => format!("Incident on {when}"),
                }
            } else {
                title
            };
            let actor = call.inbound.actor.user.clone();
            let new = NewPostmortem {
                subject: subject.clone(),
                channel: channel.to_string(),
                thread_ts: Some(thread.to_string()),
                tenant: tenant.as_ref().map(ToString::to_string),
                title,
                severity: request
                    .severity
                    .clone()
                    .unwrap_or_else(|| settings.severity.clone()),
                owner: Some(
                    request
                        .owner
                        .clone()
                        .or_else(|| settings.owner.clone())
                        .unwrap_or_else(|| actor.clone())
                        .to_string(),
                ),
                forge: settings.forge.clone(),
                repo: settings.repository.clone(),
                created_by: actor.to_string(),
            };
            let tx = call.work.tx().await.map_err(CommandError::internal)?;
            let (mut pm, created) = postmortems::insert(tx.conn(), &new, now)
                .await
                .map_err(CommandError::internal)?;
            let retry = !created && pm.status == PostmortemStatus::Failed;
            if !created && !retry {
                let text = call.render(
                    "existing",
                    &json!({
                        "id": label(pm.id),
                        "title": pm.title,
                        "url": pm.issue_url,
                        "status": pm.status,
                    }),
                )?;
                return Ok(Reply::text(text));
            }
            if retry {
                postmortems::set_status(tx.conn(), pm.id, PostmortemStatus::Opening, now)
                    .await
                    .map_err(CommandError::internal)?;
                pm.status = PostmortemStatus::Opening;
            }
            timeline::append(
                tx.conn(),
                &subject,
                &TimelineEntry {
                    at: now,
                    kind: "postmortem".into(),
                    actor: Some(actor.to_string()),
                    text: format!("Postmortem {} requested", label(pm.id)),
                },
            )
            .await
            .map_err(CommandError::internal)?;
            let entries = timeline::list(tx.conn(), &subject)
                .await
                .map_err(CommandError::internal)?;
            let ticket = super::ticket(config, &pm, &entries);
            let template = settings
                .template_text
                .as_deref()
                .unwrap_or(render::DEFAULT_TEMPLATE);
            let body = render::render(template, &ticket).map_err(CommandError::internal)?;
            let effect = ForgeEffect::OpenIssue {
                forge: pm.forge.clone(),
                repo: pm.repo.clone(),
                issue: issue_for(settings, &pm, body, &request.labels),
            };
            let key = if retry {
                format!("postmortem:{}:issue:{}", pm.id, now.timestamp_millis())
            } else {
                format!("postmortem:{}:issue", pm.id)
            };
            call.work
                .effect_then(
                    &key,
                    &effect,
                    Some(FollowUp {
                        kind: super::handlers::OPENED.into(),
                        payload: json!({ "id": pm.id }),
                    }),
                )
                .await
                .map_err(CommandError::internal)?;
            let text = call.render(
                "opening",
                &json!({
                    "id": label(pm.id),
                    "title": pm.title,
                    "forge": pm.forge,
                    "repo": pm.repo,
                }),
            )?;
            Ok(Reply::text(text))
        })
    }
}

/// `/wk postmortems [open|mine|all]`.
pub struct ListPostmortems;

impl Verb for ListPostmortems {
    fn verb(&self) -> &'static str {
        "postmortems"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let filter = call.line.args.first().map(String::as_str).unwrap_or("open");
            let me = call.inbound.actor.user.to_string();
            let (statuses, owner, what): (&[PostmortemStatus], Option<&str>, &str) = match filter {
                "open" => (
                    &[PostmortemStatus::Opening, PostmortemStatus::Open],
                    None,
                    "open",
                ),
                "mine" => (
                    &[PostmortemStatus::Opening, PostmortemStatus::Open],
                    Some(me.as_str()),
                    "open and yours",
                ),
                "all" => (
                    &[
                        PostmortemStatus::Opening,
                        PostmortemStatus::Open,
                        PostmortemStatus::Closed,
                        PostmortemStatus::Failed,
                    ],
                    None,
                    "recorded",
                ),
                other => {
                    return Err(CommandError::Usage(format!(
                        "`{other}` is not a filter; write open, mine or all"
                    )));
                }
            };
            let list = call
                .work
                .store()
                .postmortems(statuses, owner)
                .await
                .map_err(CommandError::internal)?;
            let now = call.work.now();
            let text = call.render(
                "list",
                &json!({
                    "what": what,
                    "count": list.len(),
                    "items": super::handlers::list_items(&list, now),
                }),
            )?;
            Ok(Reply::text(text))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_command_line_reads_link_title_and_options() {
        let request = parse(&args(
            "https://acme.slack.com/archives/C0ACME/p1772442000000100 DB failover sev=sev1 owner=<@U0ANNA|anna> label=db",
        ))
        .unwrap();
        assert_eq!(
            request.thread,
            Some(("C0ACME".into(), "1772442000.000100".into()))
        );
        assert_eq!(request.title, ["DB", "failover"]);
        assert_eq!(request.severity.as_deref(), Some("SEV1"));
        assert_eq!(request.owner, Some(UserId::from("U0ANNA")));
        assert_eq!(request.labels, ["db"]);
        assert!(parse(&args("owner=nobody")).is_err());
        assert!(parse(&args("sev=<script>")).is_err());
        assert!(parse(&args("https://x/archives/nope")).is_err());
    }
}
