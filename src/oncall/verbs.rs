//! `/wk oncall`: who is on duty now and next, my next shifts, overrides and
//! their cancellation; swaps are proposed here and confirmed in `swaps`.

use super::moments::{self, FORMS};
use super::notices::shifts_by_user;
use super::roster::{Override, Rotation};
use super::{swaps, ticks};
use crate::auth::Audience;
use crate::chat::Reply;
use crate::chat::mrkdwn::date_token;
use crate::config::Config;
use crate::dispatch::args::user_mention;
use crate::dispatch::{Call, CommandError, Verb};
use crate::ids::UserId;
use crate::store::oncall::{self as store, NewOverride};
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// `/wk oncall [rotation | me | override … | cancel <id> | swap …]`.
pub struct Oncall;

/// How far ahead `/wk oncall me` and swaps look for shifts.
pub const AHEAD_DAYS: i64 = 56;

/// The longest override accepted.
const LONGEST_OVERRIDE_DAYS: i64 = 90;

/// Who may change the roster: on-call engineers, SREs, admins.
pub const MAY_CHANGE: &[Audience] = &[Audience::Oncall, Audience::Sre, Audience::Admin];

/// The words after the sub-command, quoted groups split again.
pub fn words(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| a.split_whitespace().map(str::to_string))
        .collect()
}

/// The rotation a command is about: a trailing rotation name (taken off
/// `words`), else the only rotation, else the only one all of `people` are
/// members of.
pub fn pick_rotation(
    config: &Config,
    words: &mut Vec<String>,
    people: &[&UserId],
) -> Result<Rotation, CommandError> {
    if let Some(last) = words.last()
        && let Some(rotation) = Rotation::from_config(config, last)
    {
        words.pop();
        return Ok(rotation);
    }
    let all = Rotation::all(config);
    let fitting: Vec<&Rotation> = all
        .iter()
        .filter(|r| all.len() == 1 || people.iter().all(|p| r.members().contains(p)))
        .collect();
    match fitting.as_slice() {
        [one] => Ok((*one).clone()),
        [] if all.is_empty() => Err(CommandError::NotFound(
            "No rotations are configured (rotations: in the configuration).".into(),
        )),
        _ => Err(CommandError::Usage(format!(
            "say which rotation, at the end: one of {}",
            all.iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Reads a moment from the front of `words`, taking the words it used.
pub fn take_moment(
    words: &mut Vec<String>,
    rotation: &Rotation,
    after: DateTime<Utc>,
    allow_length: bool,
    what: &str,
) -> Result<DateTime<Utc>, CommandError> {
    let (at, used) = moments::read(words, rotation.tz, after, allow_length).ok_or_else(|| {
        let got = words.first().cloned().unwrap_or_default();
        CommandError::Usage(if got.is_empty() {
            format!("say {what}: {FORMS}, in {}", rotation.tz.name())
        } else {
            format!(
                "`{got}` is not a time for {what}: write {FORMS}, in {}",
                rotation.tz.name()
            )
        })
    })?;
    words.drain(..used);
    Ok(at)
}

fn people(users: &[UserId]) -> Value {
    json!(users.iter().map(UserId::as_str).collect::<Vec<_>>())
}

async fn rotation_overrides(
    call: &mut Call<'_>,
    rotation: &str,
) -> Result<Vec<Override>, CommandError> {
    let from = call.work.now() - Duration::days(400);
    super::overrides(call.work, rotation, from)
        .await
        .map_err(CommandError::internal)
}

impl Oncall {
    async fn show(
        &self,
        mut call: Call<'_>,
        only: Option<Rotation>,
    ) -> Result<Reply, CommandError> {
        let now = call.work.now();
        let rotations = match only {
            Some(r) => vec![r],
            None => Rotation::all(&call.env.config),
        };
        if rotations.is_empty() {
            return Err(CommandError::NotFound(
                "No rotations are configured (rotations: in the configuration).".into(),
            ));
        }
        let mut items = Vec::new();
        for rotation in &rotations {
            let overrides = rotation_overrides(&mut call, &rotation.name).await?;
            let current = rotation.segment_at(now, &overrides);
            let next = rotation.segment_at(current.end, &overrides);
            let upcoming: Vec<Value> = overrides
                .iter()
                .filter(|o| o.end > now)
                .take(5)
                .map(|o| {
                    json!({ "id": o.id, "user": o.user, "from": date_token(o.start), "until": date_token(o.end) })
                })
                .collect();
            items.push(json!({
                "name": rotation.name,
                "timezone": rotation.tz.name(),
                "now": people(&current.users),
                "since": date_token(current.start),
                "until": date_token(current.end),
                "next": people(&next.users),
                "next_until": date_token(next.end),
                "overrides": upcoming,
            }));
        }
        let text = call.render("now", &json!({ "rotations": items }))?;
        Ok(Reply::text(text))
    }

    async fn mine(&self, mut call: Call<'_>) -> Result<Reply, CommandError> {
        let now = call.work.now();
        let me = call.inbound.actor.user.clone();
        let mut items = Vec::new();
        for rotation in Rotation::all(&call.env.config) {
            let overrides = rotation_overrides(&mut call, &rotation.name).await?;
            let by_user =
                shifts_by_user(&rotation, &overrides, now, now + Duration::days(AHEAD_DAYS));
            if let Some(shifts) = by_user.get(&me) {
                items.push(json!({
                    "name": rotation.name,
                    "shifts": shifts.iter().take(5).map(|(s, e)| json!({
                        "from": date_token(*s), "until": date_token(*e), "now": *s <= now,
                    })).collect::<Vec<_>>(),
                }));
            }
        }
        let text = call.render(
            "me",
            &json!({ "rotations": items, "weeks": AHEAD_DAYS / 7 }),
        )?;
        Ok(Reply::text(text))
    }

    async fn create_override(&self, call: Call<'_>) -> Result<Reply, CommandError> {
        let env = call.env;
        env.authorizer
            .authorize(
                &call.inbound.actor,
                &call.inbound.place,
                "oncall override",
                MAY_CHANGE,
            )
            .map_err(|d| CommandError::Denied(d.0))?;
        let mut words = words(call.line.args.get(1..).unwrap_or_default());
        let usage = || {
            CommandError::Usage(
                "write who covers, from when and until when, e.g. `/wk oncall override @anna tomorrow 18:00 8h ops-duty`"
                    .into(),
            )
        };
        let user = words
            .first()
            .and_then(|w| user_mention(w))
            .ok_or_else(usage)?;
        words.remove(0);
        let rotation = pick_rotation(&env.config, &mut words, &[&user])?;
        let now = call.work.now();
        let from = take_moment(
            &mut words,
            &rotation,
            now,
            false,
            "when the override starts",
        )?;
        let until = take_moment(&mut words, &rotation, from, true, "when it ends")?;
        if let Some(extra) = words.first() {
            return Err(CommandError::Usage(format!(
                "`{extra}` is left over: write the start and the end only, then the rotation"
            )));
        }
        let from = from.max(now);
        if until <= from {
            return Err(CommandError::Usage(format!(
                "the override must end after it starts (and in the future); it would run from {} until {}",
                date_token(from),
                date_token(until)
            )));
        }
        if until - from > Duration::days(LONGEST_OVERRIDE_DAYS) {
            return Err(CommandError::Usage(format!(
                "an override lasts at most {LONGEST_OVERRIDE_DAYS} days; change the rotation's members for longer"
            )));
        }
        let caller = call.inbound.actor.user.clone();
        let tx = call.work.tx().await.map_err(CommandError::internal)?;
        let earlier = store::overrides(tx.conn(), &rotation.name, now)
            .await
            .map_err(CommandError::internal)?;
        let id = store::insert_override(
            tx.conn(),
            &NewOverride {
                rotation: rotation.name.clone(),
                user: user.clone(),
                start: from,
                end: until,
                created_by: caller.clone(),
                swap_id: None,
            },
            now,
        )
        .await
        .map_err(CommandError::internal)?;
        let superseded: Vec<i64> = earlier
            .iter()
            .filter(|o| o.window.start < until && o.window.end > from)
            .map(|o| o.window.id)
            .collect();
        ticks::replan(
            call.work,
            &env.config,
            env.manifest.templates(),
            &rotation.name,
            &format!("override #{id} by <@{caller}>"),
        )
        .await
        .map_err(CommandError::internal)?;
        let text = call.render(
            "override_done",
            &json!({
                "id": id,
                "user": user,
                "rotation": rotation.name,
                "from": date_token(from),
                "until": date_token(until),
                "timezone": rotation.tz.name(),
                "superseded": superseded,
            }),
        )?;
        Ok(Reply::text(text).in_channel())
    }

    async fn cancel_override(&self, call: Call<'_>) -> Result<Reply, CommandError> {
        let env = call.env;
        let words = words(call.line.args.get(1..).unwrap_or_default());
        let id: i64 = words
            .first()
            .and_then(|w| w.trim_start_matches('#').parse().ok())
            .ok_or_else(|| {
                CommandError::Usage("write the override's number, e.g. `/wk oncall cancel 4` (`/wk oncall` lists them)".into())
            })?;
        let caller = call.inbound.actor.user.clone();
        let now = call.work.now();
        let tx = call.work.tx().await.map_err(CommandError::internal)?;
        let row = store::get_override(tx.conn(), id)
            .await
            .map_err(CommandError::internal)?
            .filter(|row| env.config.rotations.contains_key(&row.rotation))
            .ok_or_else(|| {
                CommandError::NotFound(format!("There is no override #{id} in force."))
            })?;
        let own = row.created_by == caller || row.window.user == caller;
        if !own {
            env.authorizer
                .authorize(
                    &call.inbound.actor,
                    &call.inbound.place,
                    "oncall cancel",
                    &[Audience::Sre, Audience::Admin],
                )
                .map_err(|_| {
                    CommandError::Denied(format!(
                        "Only the override's author, the person covering, SREs and admins can cancel override #{id}."
                    ))
                })?;
        }
        if row.window.end <= now {
            return Err(CommandError::Conflict(format!(
                "Override #{id} has already ended."
            )));
        }
        store::cancel_override(tx.conn(), id, &caller, now)
            .await
            .map_err(CommandError::internal)?;
        ticks::replan(
            call.work,
            &env.config,
            env.manifest.templates(),
            &row.rotation,
            &format!("override #{id} cancelled by <@{caller}>"),
        )
        .await
        .map_err(CommandError::internal)?;
        let text = call.render(
            "cancelled",
            &json!({ "id": id, "rotation": row.rotation, "user": row.window.user }),
        )?;
        Ok(Reply::text(text).in_channel())
    }
}

impl Verb for Oncall {
    fn verb(&self) -> &'static str {
        "oncall"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let first = call.line.args.first().map(|a| a.to_ascii_lowercase());
            match first.as_deref() {
                None => self.show(call, None).await,
                Some("me") => self.mine(call).await,
                Some("override") => self.create_override(call).await,
                Some("cancel") => self.cancel_override(call).await,
                Some("swap") => swaps::propose(call).await,
                Some(name) => match Rotation::from_config(&call.env.config, name) {
                    Some(rotation) => self.show(call, Some(rotation)).await,
                    None => Err(CommandError::Usage(format!(
                        "`{name}` is not a rotation (they are: {}) nor one of me, override, cancel, swap",
                        call.env
                            .config
                            .rotations
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                },
            }
        })
    }
}
