//! Requests from customer threads, and the listener that hears them.
//!
//! A top-level message from the customer in their channel opens a request on
//! its thread — unless the same person has an open request whose last
//! message is within `support.join_window`: then it joins that one. The bot
//! answers in the thread (request number, who is on first line, when to
//! expect an answer as a Slack date token) and puts a card with Claim /
//! Resolve buttons in the support channel. The first staff reply in the
//! thread stops the first-response clock; staff 👀 claims and ✅ resolves
//! (customers' reactions change nothing). Edits update the request (and may
//! make it urgent); deleting the opening message before anyone answered
//! withdraws it. Bots and apps never open requests.

use super::config::{self as support_config, Tier};
use super::escalation::{self, About, Started};
use super::{Desk, SupportError, mention, request_label, slack_date, thread_link};
use crate::chat::mrkdwn::escape;
use crate::chat::{
    Block, Button, ButtonStyle, Inbound, InboundKind, MessageChange, MessageEvent, ReactionEvent,
    Reply,
};
use crate::config::CustomerConfig;
use crate::dispatch::{CommandError, Env, Listener};
use crate::ids::MessageTs;
use crate::ids::UserId;
use crate::outbox::{MessageRef, SlackEffect, Target};
use crate::scheduler::{HandlerError, TimerHandler};
use crate::store::outbox::FollowUp;
use crate::store::support::{self as db, EscalationStatus, NewRequest, Request, RequestStatus};
use crate::store::timeline::{self, TimelineEntry, thread_subject};
use crate::store::timers::Timer;
use crate::work::Work;
use futures::future::BoxFuture;
use serde_json::json;

/// The Claim button.
pub const CLAIM: &str = "request.claim";
/// The Resolve button.
pub const RESOLVE: &str = "request.resolve";

/// How much of a message a request keeps.
const TEXT_LIMIT: usize = 300;

/// Support intake: hears customer channels, owns `request.` and `page.` buttons.
pub struct Intake;

impl Listener for Intake {
    fn prefixes(&self) -> &'static [&'static str] {
        &["request.", "page."]
    }

    fn hears_conversation(&self) -> bool {
        true
    }

    fn handle<'a>(
        &'a self,
        inbound: &'a Inbound,
        env: &'a Env,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<Option<Reply>, CommandError>> {
        Box::pin(async move {
            let desk = Desk::new(env);
            match &inbound.kind {
                InboundKind::Message(message) => {
                    on_message(work, &desk, inbound, message)
                        .await
                        .map_err(CommandError::internal)?;
                    Ok(None)
                }
                InboundKind::Reaction(reaction) => {
                    on_reaction(work, &desk, inbound, reaction)
                        .await
                        .map_err(CommandError::internal)?;
                    Ok(None)
                }
                InboundKind::BlockAction(action) => {
                    let reply = match action.action_id.as_str() {
                        escalation::ACK | escalation::RESOLVE => {
                            escalation::on_click(
                                work,
                                &desk,
                                inbound,
                                &action.action_id,
                                &action.value,
                            )
                            .await?
                        }
                        CLAIM | RESOLVE => on_button(work, &desk, inbound, action).await?,
                        other => {
                            tracing::warn!(action = other, "unknown support button");
                            return Ok(None);
                        }
                    };
                    Ok(Some(reply))
                }
                _ => Ok(None),
            }
        })
    }
}

/// Plain text of a message, shortened for the request.
fn excerpt(text: &str) -> String {
    let plain = crate::chat::mrkdwn::to_plain(text);
    let plain = plain.trim();
    if plain.chars().count() <= TEXT_LIMIT {
        return plain.to_string();
    }
    let mut cut: String = plain.chars().take(TEXT_LIMIT - 1).collect();
    cut.push('…');
    cut
}

fn customer<'a>(desk: &'a Desk<'_>, request: &Request) -> Option<&'a CustomerConfig> {
    desk.config().customers.get(&request.tenant)
}

/// One line saying what a request is (trusted mrkdwn: values escaped).
pub fn title(desk: &Desk<'_>, request: &Request) -> String {
    let name = customer(desk, request)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| request.tenant.to_string());
    let mut text: String = request.text.chars().take(120).collect();
    if request.text.chars().count() > 120 {
        text.push('…');
    }
    format!(
        "Request {} from {}: “{}”",
        request_label(request.id),
        escape(&name),
        escape(&text)
    )
}

fn subject(request: &Request) -> String {
    thread_subject(request.channel.as_str(), request.thread_ts.as_str())
}

fn thread_of(request: &Request) -> Target {
    Target::Channel {
        channel: request.channel.clone(),
        thread: Some(MessageRef::Ts(request.thread_ts.clone())),
    }
}

fn card_key(request: &Request) -> String {
    format!("request:{}:card", request.id)
}

/// The request's card: its ts once recorded, else the outbox row posting it
/// (deleted by housekeeping after the retention period, so never relied on
/// once the card is known).
fn card_ref(request: &Request) -> MessageRef {
    match &request.card_ts {
        Some(ts) => MessageRef::Ts(ts.clone()),
        None => MessageRef::Posted(card_key(request)),
    }
}

/// The timer kind that records the card's ts once Slack has posted it.
pub const CARD_POSTED: &str = "support.card_posted";

/// Records the card's ts on the request when its post is delivered.
pub(super) struct CardPosted;

impl TimerHandler for CardPosted {
    fn kind(&self) -> &'static str {
        CARD_POSTED
    }

    fn fire<'a>(
        &'a self,
        timer: &'a Timer,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let Some(id) = timer.payload["request"].as_i64() else {
                return Err(HandlerError::Permanent(format!(
                    "{}: unreadable payload",
                    timer.key
                )));
            };
            let ts = timer.payload["result"]["ts"].as_str();
            match (timer.payload["outcome"].as_str(), ts) {
                (Some("delivered"), Some(ts)) => {
                    let tx = work.tx().await?;
                    db::set_card_ts(tx.conn(), id, &MessageTs::from(ts)).await?;
                }
                (outcome, _) => {
                    tracing::warn!(request = id, ?outcome, "the request card was not posted");
                }
            }
            Ok(())
        })
    }
}

/// The support channel, inside the request's card thread.
pub(super) fn under_card(desk: &Desk<'_>, request: &Request) -> Target {
    Target::Channel {
        channel: support_config::support_channel(desk.config()),
        thread: Some(card_ref(request)),
    }
}

fn zone(desk: &Desk<'_>, request: &Request) -> chrono_tz::Tz {
    customer(desk, request)
        .and_then(|c| c.timezone)
        .unwrap_or(desk.config().team.timezone)
}

async fn note(
    work: &mut Work,
    request: &Request,
    kind: &str,
    actor: Option<&UserId>,
    text: String,
) -> Result<(), SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    timeline::append(
        tx.conn(),
        &subject(request),
        &TimelineEntry {
            at: now,
            kind: kind.into(),
            actor: actor.map(ToString::to_string),
            text,
        },
    )
    .await?;
    Ok(())
}

/// The card in the support channel, as the request stands.
fn card(desk: &Desk<'_>, request: &Request) -> Result<Reply, SupportError> {
    let zone = zone(desk, request);
    let text = desk.render(
        "request_card",
        &json!({
            "title": title(desk, request),
            "link": thread_link(desk.config(), &request.channel, &request.thread_ts),
            "status": request.status,
            "urgent": request.urgent,
            "due": request.first_response_due.map(|d| slack_date(d, zone)),
            "answered": request.first_response_by.as_ref().map(mention),
            "claimed": request.claimed_by.as_ref().map(mention),
            "resolved": request.resolved_by.as_ref().map(mention),
            "breached": request.breached_at.is_some(),
        }),
    )?;
    let mut reply = Reply::text(text).in_channel();
    if request.status == RequestStatus::Open {
        reply = reply.with_block(Block::Actions(vec![
            Button {
                label: "Claim".into(),
                action_id: CLAIM.into(),
                value: request.id.to_string(),
                style: None,
            },
            Button {
                label: "Resolve".into(),
                action_id: RESOLVE.into(),
                value: request.id.to_string(),
                style: Some(ButtonStyle::Primary),
            },
        ]));
    }
    Ok(reply)
}

/// Replaces the card with how the request stands now.
async fn refresh_card(
    work: &mut Work,
    desk: &Desk<'_>,
    request: &Request,
) -> Result<(), SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    let current = db::request(tx.conn(), request.id)
        .await?
        .unwrap_or_else(|| request.clone());
    work.effect(
        &format!("request:{}:card:{}", request.id, now.timestamp_millis()),
        &SlackEffect::Update {
            channel: support_config::support_channel(desk.config()),
            message: card_ref(&current),
            reply: card(desk, &current)?,
        },
    )
    .await?;
    Ok(())
}

async fn on_message(
    work: &mut Work,
    desk: &Desk<'_>,
    inbound: &Inbound,
    message: &MessageEvent,
) -> Result<(), SupportError> {
    let place = &inbound.place;
    let Some(tenant) = &place.tenant else {
        return Ok(());
    };
    if message.from_bot {
        return Ok(());
    }
    let Some(customer) = desk.config().customers.get(tenant) else {
        return Ok(());
    };
    let top_level = place.thread.as_ref().is_none_or(|t| t == &message.ts);
    let actor = &inbound.actor;
    match (message.change, top_level) {
        (MessageChange::Posted, true) if actor.is_staff() => Ok(()),
        (MessageChange::Posted, true) => open_or_join(work, desk, inbound, customer, message).await,
        (MessageChange::Posted, false) => {
            let thread = place.thread.clone().unwrap_or_else(|| message.ts.clone());
            let tx = work.tx().await?;
            let Some(request) = db::request_by_thread(tx.conn(), &place.channel, &thread).await?
            else {
                return Ok(());
            };
            if request.thread_ts != thread {
                return Ok(()); // a thread under a message that joined another request
            }
            if actor.is_staff() {
                first_response(work, desk, &request, &actor.user).await
            } else {
                let now = work.now();
                let tx = work.tx().await?;
                db::touch_customer(tx.conn(), request.id, now).await?;
                note(
                    work,
                    &request,
                    "customer message",
                    Some(&actor.user),
                    excerpt(&message.text),
                )
                .await
            }
        }
        (MessageChange::Edited, _) => {
            let tx = work.tx().await?;
            let Some(request) =
                db::request_by_thread(tx.conn(), &place.channel, &message.ts).await?
            else {
                return Ok(());
            };
            if request.thread_ts != message.ts || request.opened_by != actor.user {
                return Ok(());
            }
            let now = work.now();
            let text = excerpt(&message.text);
            let tx = work.tx().await?;
            db::set_text(tx.conn(), request.id, &text, now).await?;
            note(
                work,
                &request,
                "edited",
                Some(&actor.user),
                format!("Edited: {text}"),
            )
            .await?;
            if request.status == RequestStatus::Open
                && !request.urgent
                && support_config::is_urgent(&desk.config().support.urgent_keywords, &text)
            {
                mark_urgent(work, desk, &request, None, "urgent keyword in an edit").await?;
            }
            Ok(())
        }
        (MessageChange::Deleted, _) => {
            let tx = work.tx().await?;
            let Some(request) =
                db::request_by_thread(tx.conn(), &place.channel, &message.ts).await?
            else {
                return Ok(());
            };
            if request.thread_ts != message.ts {
                return Ok(());
            }
            withdraw(work, desk, &request).await
        }
    }
}

async fn open_or_join(
    work: &mut Work,
    desk: &Desk<'_>,
    inbound: &Inbound,
    customer: &CustomerConfig,
    message: &MessageEvent,
) -> Result<(), SupportError> {
    let now = work.now();
    let config = desk.config();
    let place = &inbound.place;
    let user = &inbound.actor.user;
    let since = now - config.support.join_window.as_chrono();
    let tx = work.tx().await?;
    if let Some(open) = db::joinable_request(tx.conn(), &place.channel, user, since).await? {
        db::join_message(tx.conn(), open.id, &place.channel, &message.ts, now).await?;
        let text = excerpt(&message.text);
        note(work, &open, "customer message", Some(user), text.clone()).await?;
        let reply = desk.render(
            "request_joined",
            &json!({ "id": open.id, "link": thread_link(config, &open.channel, &open.thread_ts) }),
        )?;
        work.effect(
            &format!("request:{}:joined:{}", open.id, message.ts),
            &SlackEffect::Post {
                to: Target::Channel {
                    channel: place.channel.clone(),
                    thread: Some(MessageRef::Ts(message.ts.clone())),
                },
                reply: Reply::text(reply).in_channel(),
            },
        )
        .await?;
        if !open.urgent && support_config::is_urgent(&config.support.urgent_keywords, &text) {
            mark_urgent(work, desk, &open, None, "urgent keyword").await?;
        }
        return Ok(());
    }
    let clock = support_config::sla_clock(config, customer).unwrap_or_else(|err| {
        tracing::error!(%err, "customer hours unusable; counting wall time");
        super::business_time::SlaClock::Wall
    });
    let (first_due, resolution_due) = match &customer.sla {
        Some(sla) => (
            Some(clock.add(now, sla.first_response.as_chrono())),
            sla.resolution.map(|r| clock.add(now, r.as_chrono())),
        ),
        None => (None, None),
    };
    let Some(tenant) = &place.tenant else {
        return Ok(());
    };
    let text = excerpt(&message.text);
    let tx = work.tx().await?;
    let Some(request) = db::insert_request(
        tx.conn(),
        &NewRequest {
            tenant: tenant.clone(),
            channel: place.channel.clone(),
            thread_ts: message.ts.clone(),
            opened_by: user.clone(),
            text: text.clone(),
            first_response_due: first_due,
            resolution_due,
        },
        now,
    )
    .await?
    else {
        return Ok(()); // a redelivery: the thread has its request
    };
    note(
        work,
        &request,
        "opened",
        Some(user),
        format!("Request {} opened: {text}", request_label(request.id)),
    )
    .await?;
    if let Some(sla) = &customer.sla {
        super::sla::arm(work, config, &clock, &request, sla).await?;
    }
    let zone = zone(desk, &request);
    let first_line = support_config::first_line(config, customer);
    let first_line = desk.mentions(work, &first_line, now).await?;
    let ack = desk.render(
        "request_ack",
        &json!({
            "id": request.id,
            "first_line": first_line,
            "due": first_due.map(|d| slack_date(d, zone)),
            "around_the_clock": customer.tier == Tier::AroundTheClock,
            "open_now": clock.is_open(now),
        }),
    )?;
    work.effect(
        &format!("request:{}:ack", request.id),
        &SlackEffect::Post {
            to: thread_of(&request),
            reply: Reply::text(ack).in_channel(),
        },
    )
    .await?;
    work.effect_then(
        &card_key(&request),
        &SlackEffect::Post {
            to: Target::Channel {
                channel: support_config::support_channel(config),
                thread: None,
            },
            reply: card(desk, &request)?,
        },
        Some(FollowUp {
            kind: CARD_POSTED.into(),
            payload: json!({ "request": request.id }),
        }),
    )
    .await?;
    if support_config::is_urgent(&config.support.urgent_keywords, &text) {
        mark_urgent(work, desk, &request, None, "urgent keyword").await?;
    }
    Ok(())
}

/// The first staff answer stops the first-response clock.
async fn first_response(
    work: &mut Work,
    desk: &Desk<'_>,
    request: &Request,
    by: &UserId,
) -> Result<(), SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    if !db::set_first_response(tx.conn(), request.id, by, now).await? {
        return Ok(());
    }
    work.cancel_group(&super::sla::first_response_group(request.id))
        .await?;
    let waited = now - request.opened_at;
    note(
        work,
        request,
        "first response",
        Some(by),
        format!("First response after {} min", waited.num_minutes()),
    )
    .await?;
    refresh_card(work, desk, request).await
}

async fn on_reaction(
    work: &mut Work,
    desk: &Desk<'_>,
    inbound: &Inbound,
    reaction: &ReactionEvent,
) -> Result<(), SupportError> {
    // Customers' reactions never change state; removals neither.
    if inbound.place.tenant.is_none() || !inbound.actor.is_staff() || !reaction.added {
        return Ok(());
    }
    let tx = work.tx().await?;
    let Some(request) =
        db::request_by_thread(tx.conn(), &inbound.place.channel, &reaction.item_ts).await?
    else {
        return Ok(());
    };
    let by = &inbound.actor.user;
    match reaction.name.as_str() {
        "eyes" => claim(work, desk, &request, by).await,
        "white_check_mark" | "heavy_check_mark" => {
            resolve(work, desk, &request, by, None).await.map(|_| ())
        }
        _ => Ok(()),
    }
}

async fn on_button(
    work: &mut Work,
    desk: &Desk<'_>,
    inbound: &Inbound,
    action: &crate::chat::BlockAction,
) -> Result<Reply, CommandError> {
    let actor = &inbound.actor;
    if !actor.is_staff() || actor.roles.is_empty() {
        return Err(CommandError::Denied(
            "Only support staff may claim or resolve requests.".into(),
        ));
    }
    let id: i64 = action
        .value
        .parse()
        .map_err(|_| CommandError::NotFound("That request is not one I know.".into()))?;
    let tx = work.tx().await.map_err(CommandError::internal)?;
    let request = db::request(tx.conn(), id)
        .await
        .map_err(CommandError::internal)?
        .ok_or_else(|| {
            CommandError::NotFound(format!("Request {} does not exist.", request_label(id)))
        })?;
    if action.action_id == CLAIM {
        claim(work, desk, &request, &actor.user)
            .await
            .map_err(CommandError::internal)?;
        Ok(Reply::text(format!(
            ":eyes: You claimed request {}.",
            request_label(id)
        )))
    } else {
        resolve_checked(work, desk, &request, &actor.user, None).await?;
        Ok(Reply::text(format!(
            ":white_check_mark: Request {} is resolved.",
            request_label(id)
        )))
    }
}

/// Claimed by `by` (👀, the Claim button).
pub async fn claim(
    work: &mut Work,
    desk: &Desk<'_>,
    request: &Request,
    by: &UserId,
) -> Result<(), SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    if !db::claim(tx.conn(), request.id, by, now).await? {
        return Ok(());
    }
    note(
        work,
        request,
        "claimed",
        Some(by),
        format!("Claimed by {by}"),
    )
    .await?;
    refresh_card(work, desk, request).await
}

/// Resolves a request by number (the page's Resolve button).
pub async fn resolve_by_id(
    work: &mut Work,
    desk: &Desk<'_>,
    id: i64,
    by: &UserId,
) -> Result<(), CommandError> {
    let tx = work.tx().await.map_err(CommandError::internal)?;
    let request = db::request(tx.conn(), id)
        .await
        .map_err(CommandError::internal)?
        .ok_or_else(|| {
            CommandError::NotFound(format!("Request {} does not exist.", request_label(id)))
        })?;
    resolve_checked(work, desk, &request, by, None).await
}

/// Resolves, or says why not.
pub async fn resolve_checked(
    work: &mut Work,
    desk: &Desk<'_>,
    request: &Request,
    by: &UserId,
    note_text: Option<&str>,
) -> Result<(), CommandError> {
    if !resolve(work, desk, request, by, note_text)
        .await
        .map_err(CommandError::internal)?
    {
        return Err(CommandError::Conflict(format!(
            "Request {} is already {}.",
            request_label(request.id),
            request.status.as_str()
        )));
    }
    Ok(())
}

/// Resolves an open request: its clocks and escalation stop, the customer
/// hears it in the thread. False when it was not open.
pub async fn resolve(
    work: &mut Work,
    desk: &Desk<'_>,
    request: &Request,
    by: &UserId,
    note_text: Option<&str>,
) -> Result<bool, SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    if !db::resolve(tx.conn(), request.id, by, now).await? {
        return Ok(false);
    }
    super::sla::cancel_all(work, request.id).await?;
    stop_escalation(work, desk, request, EscalationStatus::Resolved, by).await?;
    let text = note_text.map(excerpt).unwrap_or_default();
    note(
        work,
        request,
        "resolved",
        Some(by),
        if text.is_empty() {
            format!("Resolved by {by}")
        } else {
            format!("Resolved by {by}: {text}")
        },
    )
    .await?;
    let reply = desk.render(
        "request_resolved",
        &json!({ "id": request.id, "by": mention(by), "note": text }),
    )?;
    work.effect(
        &format!("request:{}:resolved:{}", request.id, now.timestamp_millis()),
        &SlackEffect::Post {
            to: thread_of(request),
            reply: Reply::text(reply).in_channel(),
        },
    )
    .await?;
    refresh_card(work, desk, request).await?;
    Ok(true)
}

async fn stop_escalation(
    work: &mut Work,
    desk: &Desk<'_>,
    request: &Request,
    status: EscalationStatus,
    by: &UserId,
) -> Result<(), SupportError> {
    let tx = work.tx().await?;
    if let Some(running) = db::active_escalation(tx.conn(), Some(request.id), None).await? {
        escalation::stop(work, desk, running.id, status, Some(by)).await?;
    }
    Ok(())
}

/// Opens a resolved request again with a fresh resolution clock.
pub async fn reopen(
    work: &mut Work,
    desk: &Desk<'_>,
    request: &Request,
    by: &UserId,
) -> Result<bool, SupportError> {
    let now = work.now();
    let config = desk.config();
    let customer = customer(desk, request);
    let clock = customer.and_then(|c| support_config::sla_clock(config, c).ok());
    let sla = customer.and_then(|c| c.sla);
    let due = match (&clock, sla.and_then(|s| s.resolution)) {
        (Some(clock), Some(resolution)) => Some(clock.add(now, resolution.as_chrono())),
        _ => None,
    };
    let tx = work.tx().await?;
    if !db::reopen(tx.conn(), request.id, due, now).await? {
        return Ok(false);
    }
    if let (Some(clock), Some(sla)) = (&clock, &sla) {
        super::sla::arm_resolution(work, config, clock, request.id, sla, now).await?;
    }
    note(
        work,
        request,
        "reopened",
        Some(by),
        format!("Reopened by {by}"),
    )
    .await?;
    let reply = desk.render(
        "request_reopened",
        &json!({ "id": request.id, "by": mention(by) }),
    )?;
    work.effect(
        &format!("request:{}:reopened:{}", request.id, now.timestamp_millis()),
        &SlackEffect::Post {
            to: thread_of(request),
            reply: Reply::text(reply).in_channel(),
        },
    )
    .await?;
    refresh_card(work, desk, request).await?;
    Ok(true)
}

/// The opening message was deleted: withdrawn if nobody answered yet.
async fn withdraw(work: &mut Work, desk: &Desk<'_>, request: &Request) -> Result<(), SupportError> {
    if request.first_response_at.is_some() || request.status != RequestStatus::Open {
        return note(
            work,
            request,
            "deleted",
            Some(&request.opened_by),
            "The opening message was deleted".into(),
        )
        .await;
    }
    let now = work.now();
    let tx = work.tx().await?;
    if !db::withdraw(tx.conn(), request.id, now).await? {
        return Ok(());
    }
    super::sla::cancel_all(work, request.id).await?;
    stop_escalation(
        work,
        desk,
        request,
        EscalationStatus::Resolved,
        &request.opened_by,
    )
    .await?;
    note(
        work,
        request,
        "withdrawn",
        Some(&request.opened_by),
        "Withdrawn: the opening message was deleted before anyone answered".into(),
    )
    .await?;
    let text = desk.render("request_withdrawn", &json!({ "id": request.id }))?;
    work.effect(
        &format!("request:{}:withdrawn", request.id),
        &SlackEffect::Post {
            to: under_card(desk, request),
            reply: Reply::text(text).in_channel(),
        },
    )
    .await?;
    refresh_card(work, desk, request).await
}

/// The subject and title of a request's escalation.
pub fn about(desk: &Desk<'_>, request: &Request) -> About {
    About {
        subject: subject(request),
        request_id: Some(request.id),
        incident_id: None,
        title: title(desk, request),
    }
}

/// Starts the customer's escalation policy for a request (`/wk escalate`, a
/// breach), or `urgent`'s policy.
pub async fn escalate(
    work: &mut Work,
    desk: &Desk<'_>,
    request: &Request,
    reason: &str,
    by: Option<&UserId>,
    urgent: bool,
) -> Result<Started, SupportError> {
    let config = desk.config();
    let customer_policy =
        customer(desk, request).and_then(|c| support_config::policy_name(config, c));
    let policy = if urgent {
        config
            .support
            .urgent_escalation
            .as_deref()
            .or(customer_policy)
    } else {
        customer_policy
    };
    escalation::start(work, desk, &about(desk, request), policy, reason, by).await
}

/// Marks a request urgent and pages at once, at any hour.
pub async fn mark_urgent(
    work: &mut Work,
    desk: &Desk<'_>,
    request: &Request,
    by: Option<&UserId>,
    why: &str,
) -> Result<Started, SupportError> {
    let now = work.now();
    let tx = work.tx().await?;
    let newly = db::set_urgent(tx.conn(), request.id, now).await?;
    if newly {
        note(
            work,
            request,
            "urgent",
            by,
            format!("Marked urgent ({why})"),
        )
        .await?;
        let reply = desk.render(
            "request_urgent",
            &json!({ "id": request.id, "by": by.map(mention) }),
        )?;
        work.effect(
            &format!("request:{}:urgent", request.id),
            &SlackEffect::Post {
                to: thread_of(request),
                reply: Reply::text(reply).in_channel(),
            },
        )
        .await?;
        refresh_card(work, desk, request).await?;
    }
    escalate(work, desk, request, &format!("urgent: {why}"), by, true).await
}

/// The request a command is about: a `#12` argument, else the thread it
/// runs in.
pub async fn find(
    work: &mut Work,
    place: &crate::auth::Place,
    argument: Option<&str>,
) -> Result<Request, CommandError> {
    let id = argument.and_then(super::parse_request_label);
    let tx = work.tx().await.map_err(CommandError::internal)?;
    let found = match (id, &place.thread) {
        (Some(id), _) => db::request(tx.conn(), id)
            .await
            .map_err(CommandError::internal)?,
        (None, Some(thread)) => db::request_by_thread(tx.conn(), &place.channel, thread)
            .await
            .map_err(CommandError::internal)?,
        (None, None) => {
            return Err(CommandError::Usage(
                "say which request: run it in the request's thread, or give its number (#12)"
                    .into(),
            ));
        }
    };
    let request = found.ok_or_else(|| match id {
        Some(id) => CommandError::NotFound(format!("There is no request {}.", request_label(id))),
        None => CommandError::NotFound("This thread is not a support request.".into()),
    })?;
    // A customer's channel only ever shows its own requests: another
    // customer's reads exactly like one that does not exist.
    if place.tenant.as_ref().is_some_and(|t| t != &request.tenant) {
        return Err(CommandError::NotVisible(format!(
            "There is no request {}.",
            request_label(request.id)
        )));
    }
    Ok(request)
}

/// The thread of request `id` (for `/wk postmortem #12`).
pub async fn thread_of_request(
    work: &mut Work,
    id: i64,
) -> Result<Option<(crate::ids::ChannelId, crate::ids::MessageTs)>, crate::store::StoreError> {
    let tx = work.tx().await?;
    Ok(db::request(tx.conn(), id)
        .await?
        .map(|r| (r.channel, r.thread_ts)))
}
