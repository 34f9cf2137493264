//! Telling people their shifts moved.
//!
//! The store keeps what each person was last told about their shifts of a
//! rotation over the next four weeks (`oncall_told`). After an override, a
//! swap or a configuration change, the roster is compared with it over the
//! window both cover: exactly the people whose shifts differ get one DM
//! saying what is new and what is no longer theirs, and the record is
//! updated in the same transaction, so each move is told once. The first
//! time a rotation is seen, the record is taken silently.

use super::roster::{Override, Rotation};
use crate::chat::mrkdwn::date_token;
use crate::dispatch::templates::Templates;
use crate::ids::UserId;
use crate::outbox::Target;
use crate::store::StoreError;
use crate::store::oncall::{self, Told};
use crate::work::Work;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::collections::BTreeMap;

/// How far ahead people are told about their shifts.
pub const HORIZON_DAYS: i64 = 28;

type Spans = Vec<(DateTime<Utc>, DateTime<Utc>)>;

/// One person whose shifts moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// Who.
    pub user: UserId,
    /// Shifts (or parts) that are newly theirs.
    pub added: Spans,
    /// Shifts (or parts) that are no longer theirs.
    pub removed: Spans,
}

fn clip(spans: &[(DateTime<Utc>, DateTime<Utc>)], from: DateTime<Utc>, to: DateTime<Utc>) -> Spans {
    spans
        .iter()
        .map(|(s, e)| ((*s).max(from), (*e).min(to)))
        .filter(|(s, e)| s < e)
        .collect()
}

/// The parts of `a` not covered by `b` (both sorted, non-overlapping).
fn minus(a: &Spans, b: &Spans) -> Spans {
    let mut out = Vec::new();
    for &(start, end) in a {
        let mut from = start;
        for &(bs, be) in b.iter().filter(|(bs, be)| *bs < end && *be > start) {
            if bs > from {
                out.push((from, bs));
            }
            from = from.max(be);
        }
        if from < end {
            out.push((from, end));
        }
    }
    out
}

/// Each person's shifts of `rotation` during `[from, to)`.
pub fn shifts_by_user(
    rotation: &Rotation,
    overrides: &[Override],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BTreeMap<UserId, Spans> {
    let mut out: BTreeMap<UserId, Spans> = BTreeMap::new();
    for segment in rotation.segments(from, to, overrides) {
        for user in &segment.users {
            out.entry(user.clone())
                .or_default()
                .push((segment.start, segment.end));
        }
    }
    out
}

/// Who was told something other than `current` says, compared over the window
/// both cover (`now` to the earlier horizon); people never told count as told
/// nothing up to `now + HORIZON_DAYS`.
pub fn moves(current: &BTreeMap<UserId, Spans>, told: &[Told], now: DateTime<Utc>) -> Vec<Moved> {
    let horizon = now + Duration::days(HORIZON_DAYS);
    let mut people: Vec<&UserId> = current.keys().collect();
    for t in told {
        if !people.contains(&&t.user) {
            people.push(&t.user);
        }
    }
    people.sort();
    let mut out = Vec::new();
    for user in people {
        let record = told.iter().find(|t| &t.user == user);
        let until = record.map_or(horizon, |t| t.horizon_end.min(horizon));
        let was = record
            .map(|t| clip(&t.shifts, now, until))
            .unwrap_or_default();
        let is = clip(current.get(user).map_or(&[][..], Vec::as_slice), now, until);
        if was == is {
            continue;
        }
        out.push(Moved {
            user: user.clone(),
            added: minus(&is, &was),
            removed: minus(&was, &is),
        });
    }
    out
}

fn spans_json(spans: &Spans) -> serde_json::Value {
    json!(
        spans
            .iter()
            .take(5)
            .map(|(s, e)| json!({ "from": date_token(*s), "until": date_token(*e) }))
            .collect::<Vec<_>>()
    )
}

/// Compares `rotation`'s roster with what its people were told, DMs those
/// whose shifts moved (`reason` says why: "override #4 by <@U0CHEN>"), and
/// records what everyone has now been told. Returns how many were told.
pub async fn tell_moves(
    work: &mut Work,
    templates: &Templates,
    rotation: &Rotation,
    overrides: &[Override],
    reason: &str,
) -> Result<usize, StoreError> {
    let now = work.now();
    let horizon = now + Duration::days(HORIZON_DAYS);
    let current = shifts_by_user(rotation, overrides, now, horizon);
    let tx = work.tx().await?;
    let told = oncall::told(tx.conn(), &rotation.name).await?;
    let moved = if told.is_empty() {
        Vec::new() // first sight of this rotation: nothing was promised yet
    } else {
        moves(&current, &told, now)
    };
    let mut people: Vec<&UserId> = current.keys().chain(told.iter().map(|t| &t.user)).collect();
    people.sort();
    people.dedup();
    for user in people {
        let record = Told {
            user: user.clone(),
            shifts: current.get(user).cloned().unwrap_or_default(),
            horizon_end: horizon,
        };
        let tx = work.tx().await?;
        oncall::set_told(tx.conn(), &rotation.name, &record, now).await?;
    }
    for m in &moved {
        let text = templates
            .render(
                "oncall.moved",
                &json!({
                    "rotation": rotation.name,
                    "reason": reason,
                    "added": spans_json(&m.added),
                    "removed": spans_json(&m.removed),
                }),
            )
            .unwrap_or_else(|err| {
                tracing::error!(error = %err, "oncall.moved template failed");
                format!("Your {} shifts changed ({reason}).", rotation.name)
            });
        let key = format!(
            "oncall:{}:moved:{}:{}",
            rotation.name,
            m.user,
            crate::chat::post_marker(&format!(
                "{}{:?}{:?}",
                now.timestamp_millis(),
                m.added,
                m.removed
            ))
        );
        let to = Target::Direct {
            user: m.user.clone(),
        };
        super::post(work, &key, to, text).await?;
    }
    Ok(moved.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hours: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .to_utc()
            + Duration::hours(hours)
    }

    #[test]
    fn only_people_whose_shifts_differ_inside_the_common_window_have_moved() {
        let now = at(0);
        let told = vec![
            Told {
                user: "U0ANNA".into(),
                shifts: vec![(at(10), at(20))],
                horizon_end: at(100),
            },
            Told {
                user: "U0BEN".into(),
                shifts: vec![(at(20), at(30)), (at(150), at(160))],
                horizon_end: at(100),
            },
            Told {
                user: "U0CHEN".into(),
                shifts: vec![(at(30), at(40))],
                horizon_end: at(100),
            },
        ];
        let mut current = BTreeMap::new();
        // Anna unchanged; Ben's second shift is past the old horizon (new, not moved);
        // Chen lost an hour to Dana, who was never told anything.
        current.insert(UserId::from("U0ANNA"), vec![(at(10), at(20))]);
        current.insert(
            UserId::from("U0BEN"),
            vec![(at(20), at(30)), (at(170), at(180))],
        );
        current.insert(UserId::from("U0CHEN"), vec![(at(31), at(40))]);
        current.insert(UserId::from("U0DANA"), vec![(at(30), at(31))]);
        let moved = moves(&current, &told, now);
        let who: Vec<&str> = moved.iter().map(|m| m.user.as_str()).collect();
        assert_eq!(who, vec!["U0CHEN", "U0DANA"]);
        assert_eq!(
            moved[0].removed,
            vec![(at(30), at(31))],
            "only the hour Chen lost"
        );
        assert!(moved[0].added.is_empty());
        assert_eq!(moved[1].added, vec![(at(30), at(31))]);
        assert_eq!(
            minus(
                &vec![(at(0), at(10))],
                &vec![(at(3), at(5)), (at(9), at(12))]
            ),
            vec![(at(0), at(3)), (at(5), at(9))]
        );
        // A shift that has ended since is not a move.
        assert!(
            moves(&current, &told, at(45))
                .iter()
                .all(|m| m.user.as_str() != "U0CHEN")
        );
    }
}
