//! Swaps: two engineers exchange one shift each, and both must confirm.
//!
//! `/wk oncall swap @other [my shift] [their shift] [rotation]` records a
//! pending swap of the two shifts it resolved (by default each one's next
//! shift) and DMs both engineers the proposal with Confirm and Decline
//! buttons. A button carries only the swap's id: the click reloads the swap,
//! checks that the person clicking is one of the two, and that both shifts
//! are still theirs and have not started. When the second confirmation
//! arrives the swap becomes two overrides, and everyone whose shifts moved is
//! told.

use super::roster::{Rotation, Segment};
use super::ticks;
use super::verbs::{AHEAD_DAYS, MAY_CHANGE, pick_rotation, take_moment, words};
use crate::chat::mrkdwn::date_token;
use crate::chat::{Block, Button, ButtonStyle, InboundKind, Reply};
use crate::dispatch::args::user_mention;
use crate::dispatch::templates::Templates;
use crate::dispatch::{Call, CommandError, Env, Listener};
use crate::ids::UserId;
use crate::outbox::{SlackEffect, Target};
use crate::store::oncall::{self as store, NewOverride, Swap, SwapSide, SwapStatus};
use crate::work::Work;
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde_json::json;

/// The buttons' action ids.
pub const CONFIRM: &str = "oncall.swap.confirm";
/// See [`CONFIRM`].
pub const DECLINE: &str = "oncall.swap.decline";

/// `user`'s upcoming shifts (not yet started), as whole segments.
fn upcoming(
    rotation: &Rotation,
    overrides: &[super::roster::Override],
    user: &UserId,
    now: DateTime<Utc>,
) -> Vec<Segment> {
    rotation
        .segments(now, now + Duration::days(AHEAD_DAYS), overrides)
        .into_iter()
        .filter(|s| s.start > now && s.users == [user.clone()])
        .map(|s| rotation.segment_at(s.start, overrides))
        .collect()
}

/// The shift a moment names: the one covering it, else the next one after it.
fn pick(shifts: &[Segment], at: Option<DateTime<Utc>>) -> Option<Segment> {
    match at {
        None => shifts.first().cloned(),
        Some(at) => shifts
            .iter()
            .find(|s| s.start <= at && at < s.end)
            .or_else(|| shifts.iter().find(|s| s.start >= at))
            .cloned(),
    }
}

fn side(user: &UserId, shift: &Segment) -> SwapSide {
    SwapSide {
        user: user.clone(),
        start: shift.start,
        end: shift.end,
        confirmed_at: None,
    }
}

fn swap_json(swap: &Swap) -> serde_json::Value {
    json!({
        "id": swap.id,
        "rotation": swap.rotation,
        "proposed_by": swap.proposed_by,
        "first": swap.first.user,
        "first_from": date_token(swap.first.start),
        "first_until": date_token(swap.first.end),
        "second": swap.second.user,
        "second_from": date_token(swap.second.start),
        "second_until": date_token(swap.second.end),
    })
}

async fn dm(work: &mut Work, key: &str, user: &UserId, reply: Reply) -> Result<(), CommandError> {
    let effect = SlackEffect::Post {
        to: Target::Direct { user: user.clone() },
        reply,
    };
    work.effect(key, &effect)
        .await
        .map(|_| ())
        .map_err(CommandError::internal)
}

/// `/wk oncall swap …`: records the proposal and asks both to confirm.
pub async fn propose(call: Call<'_>) -> Result<Reply, CommandError> {
    let env = call.env;
    env.authorizer
        .authorize(
            &call.inbound.actor,
            &call.inbound.place,
            "oncall swap",
            MAY_CHANGE,
        )
        .map_err(|d| CommandError::Denied(d.0))?;
    let me = call.inbound.actor.user.clone();
    let mut words = words(call.line.args.get(1..).unwrap_or_default());
    let other = words.first().and_then(|w| user_mention(w)).ok_or_else(|| {
        CommandError::Usage(
            "write whom to swap with, e.g. `/wk oncall swap @ben` (your next shift for theirs)"
                .into(),
        )
    })?;
    words.remove(0);
    if other == me {
        return Err(CommandError::Usage(
            "a swap needs someone else: name them with @".into(),
        ));
    }
    let rotation = pick_rotation(&env.config, &mut words, &[&me, &other])?;
    let now = call.work.now();
    let (mine_at, theirs_at) = if words.is_empty() {
        (None, None)
    } else {
        let mine = take_moment(&mut words, &rotation, now, false, "your shift")?;
        let theirs = take_moment(&mut words, &rotation, now, false, "their shift")?;
        if let Some(extra) = words.first() {
            return Err(CommandError::Usage(format!(
                "`{extra}` is left over: write your shift, theirs, then the rotation"
            )));
        }
        (Some(mine), Some(theirs))
    };
    let overrides = super::overrides(call.work, &rotation.name, now - Duration::days(400))
        .await
        .map_err(CommandError::internal)?;
    let not_found = |who: &UserId| {
        CommandError::NotFound(format!(
            "{} no {} shift that has not started in the next {} weeks{}.",
            if who == &me { "You have" } else { "They have" },
            rotation.name,
            AHEAD_DAYS / 7,
            if mine_at.is_some() {
                " at or after that time"
            } else {
                ""
            }
        ))
    };
    let my_shift =
        pick(&upcoming(&rotation, &overrides, &me, now), mine_at).ok_or_else(|| not_found(&me))?;
    let their_shift = pick(&upcoming(&rotation, &overrides, &other, now), theirs_at)
        .ok_or_else(|| not_found(&other))?;
    let tx = call.work.tx().await.map_err(CommandError::internal)?;
    let swap = store::insert_swap(
        tx.conn(),
        &rotation.name,
        &me,
        &side(&me, &my_shift),
        &side(&other, &their_shift),
        now,
    )
    .await
    .map_err(CommandError::internal)?;
    let text = call.render("swap_proposed", &swap_json(&swap))?;
    let value = swap.id.to_string();
    let ask = Reply::text(text.clone())
        .in_channel()
        .with_block(Block::Actions(vec![
            Button {
                label: "Confirm swap".into(),
                action_id: CONFIRM.into(),
                value: value.clone(),
                style: Some(ButtonStyle::Primary),
            },
            Button {
                label: "Decline swap".into(),
                action_id: DECLINE.into(),
                value,
                style: Some(ButtonStyle::Danger),
            },
        ]));
    for user in [&me, &other] {
        dm(
            call.work,
            &format!("oncall:swap:{}:ask:{user}", swap.id),
            user,
            ask.clone(),
        )
        .await?;
    }
    let text = call.render("swap_asked", &swap_json(&swap))?;
    Ok(Reply::text(text))
}

fn render(templates: &Templates, name: &str, swap: &Swap) -> Result<String, CommandError> {
    templates
        .render(&format!("oncall.{name}"), &swap_json(swap))
        .map_err(CommandError::internal)
}

/// Ends a pending swap without it happening, and tells both.
async fn end_swap(
    templates: &Templates,
    work: &mut Work,
    swap: &Swap,
    status: SwapStatus,
    template: &str,
) -> Result<Reply, CommandError> {
    let text = render(templates, template, swap)?;
    let now = work.now();
    let tx = work.tx().await.map_err(CommandError::internal)?;
    store::finish_swap(tx.conn(), swap.id, status, now)
        .await
        .map_err(CommandError::internal)?;
    for user in [&swap.first.user, &swap.second.user] {
        let key = format!("oncall:swap:{}:{}:{user}", swap.id, status.as_str());
        dm(work, &key, user, Reply::text(text.clone()).in_channel()).await?;
    }
    Ok(Reply::text(text))
}

/// The buttons of a swap proposal.
pub struct Swaps;

impl Swaps {
    async fn answer(
        &self,
        env: &Env,
        work: &mut Work,
        clicker: &UserId,
        id: i64,
        confirm: bool,
    ) -> Result<Reply, CommandError> {
        let templates = env.manifest.templates();
        let now = work.now();
        let backend = work.store().backend();
        let tx = work.tx().await.map_err(CommandError::internal)?;
        let swap = store::get_swap(tx.conn(), id, backend)
            .await
            .map_err(CommandError::internal)?
            .ok_or_else(|| CommandError::NotFound(format!("There is no swap #{id}.")))?;
        let first = if clicker == &swap.first.user {
            true
        } else if clicker == &swap.second.user {
            false
        } else {
            return Err(CommandError::Denied(format!(
                "Only the two engineers of swap #{id} can answer it."
            )));
        };
        if swap.status != SwapStatus::Pending {
            return Err(CommandError::Conflict(format!(
                "Swap #{id} is already {}.",
                swap.status.as_str()
            )));
        }
        let theirs = if first { &swap.second } else { &swap.first };
        if !confirm {
            return end_swap(
                templates,
                work,
                &swap,
                SwapStatus::Declined,
                "swap_declined",
            )
            .await;
        }
        let rotation = Rotation::from_config(&env.config, &swap.rotation);
        let overrides = super::overrides(work, &swap.rotation, now - Duration::days(400))
            .await
            .map_err(CommandError::internal)?;
        let still_theirs = |side: &SwapSide| {
            rotation.as_ref().is_some_and(|r| {
                side.start > now
                    && r.segments(side.start, side.end, &overrides)
                        .iter()
                        .all(|s| s.users == [side.user.clone()])
            })
        };
        if !still_theirs(&swap.first) || !still_theirs(&swap.second) {
            return end_swap(templates, work, &swap, SwapStatus::Expired, "swap_expired").await;
        }
        if theirs.confirmed_at.is_none() {
            let tx = work.tx().await.map_err(CommandError::internal)?;
            store::confirm_swap(tx.conn(), id, first, now)
                .await
                .map_err(CommandError::internal)?;
            let text = templates
                .render(
                    "oncall.swap_waiting",
                    &json!({ "id": id, "other": theirs.user }),
                )
                .map_err(CommandError::internal)?;
            return Ok(Reply::text(text));
        }
        let tx = work.tx().await.map_err(CommandError::internal)?;
        for (shift, covering) in [
            (&swap.first, &swap.second.user),
            (&swap.second, &swap.first.user),
        ] {
            store::insert_override(
                tx.conn(),
                &NewOverride {
                    rotation: swap.rotation.clone(),
                    user: covering.clone(),
                    start: shift.start,
                    end: shift.end,
                    created_by: swap.proposed_by.clone(),
                    swap_id: Some(id),
                },
                now,
            )
            .await
            .map_err(CommandError::internal)?;
        }
        store::finish_swap(tx.conn(), id, SwapStatus::Done, now)
            .await
            .map_err(CommandError::internal)?;
        ticks::replan(
            work,
            &env.config,
            templates,
            &swap.rotation,
            &format!(
                "swap #{id} of <@{}> and <@{}>",
                swap.first.user, swap.second.user
            ),
        )
        .await
        .map_err(CommandError::internal)?;
        Ok(Reply::text(render(templates, "swap_done", &swap)?))
    }
}

impl Listener for Swaps {
    fn prefixes(&self) -> &'static [&'static str] {
        &["oncall."]
    }

    fn handle<'a>(
        &'a self,
        inbound: &'a crate::chat::Inbound,
        env: &'a Env,
        work: &'a mut Work,
    ) -> BoxFuture<'a, Result<Option<Reply>, CommandError>> {
        Box::pin(async move {
            let InboundKind::BlockAction(action) = &inbound.kind else {
                return Ok(None);
            };
            let confirm = match action.action_id.as_str() {
                CONFIRM => true,
                DECLINE => false,
                _ => return Ok(None),
            };
            let id: i64 = action
                .value
                .parse()
                .map_err(|_| CommandError::NotFound("That swap no longer exists.".into()))?;
            self.answer(env, work, &inbound.actor.user, id, confirm)
                .await
                .map(Some)
        })
    }
}
