//! A month of operations as a seeded, deterministic scenario, the code that
//! plays it against the real service (one replica, or three on one database
//! with one killed every few minutes), and an independent oracle.
//!
//! The scenario: customer channels in six tiers across time zones (business
//! hours with holidays in Berlin, Sydney, Tokyo and São Paulo, 24x7 in New
//! York and London), three daily rotations (Berlin, New York, Sydney) with
//! whole-shift overrides (one across the US clock change), requests with a
//! fate each (answered in time, answered late, acknowledged at the first
//! page, never answered, urgent by keyword), and Alertmanager storms whose
//! groups open incidents. Everything reaches the service the way Slack and
//! Alertmanager send it: signed HTTP.
//!
//! The oracle never calls the product's business-time, SLA, roster or
//! escalation code: it computes SLA targets with its own business-hour
//! arithmetic (local days, holidays, time zones from the tz database), who is
//! on call from the rotation's rule written out again, and every page's time
//! from the policy's levels. [`Verdict`] compares that with what the bot did.

use super::slack_events::message;
use super::{TestApp, repo_path};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use watchkeeper::faults::{FaultPoint, Faults};

/// How big a run is.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Customer channels.
    pub customers: usize,
    /// Requests over the whole run.
    pub requests: usize,
    /// Days simulated, from 2026-03-01 00:00 UTC.
    pub days: i64,
    /// Alertmanager storms.
    pub storms: usize,
    /// The generator's seed.
    pub seed: u64,
}

/// SplitMix64: small, seeded, the same on every platform.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The simulation starts here (a Sunday; the US changes clocks on the 8th,
/// the EU on the 29th).
pub fn sim_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// A support tier: where, when open, how fast, which policy.
pub struct Tier {
    /// Short name.
    pub name: &'static str,
    /// The customer's zone.
    pub zone: Tz,
    /// Open hours (local minutes from midnight), `None` for 24x7.
    pub hours: Option<(u32, u32)>,
    /// Closed dates.
    pub holidays: &'static [&'static str],
    /// First-response target.
    pub first_response_min: i64,
    /// Escalation policy (and the rotations it pages, level by level).
    pub policy: &'static str,
}

/// The six tiers; customer `c` is in tier `c % 6`.
pub const TIERS: [Tier; 6] = [
    Tier {
        name: "berlin",
        zone: chrono_tz::Europe::Berlin,
        hours: Some((9 * 60, 17 * 60)),
        holidays: &["2026-03-06", "2026-03-20"],
        first_response_min: 30,
        policy: "emea",
    },
    Tier {
        name: "newyork",
        zone: chrono_tz::America::New_York,
        hours: None,
        holidays: &[],
        first_response_min: 15,
        policy: "amer",
    },
    Tier {
        name: "sydney",
        zone: chrono_tz::Australia::Sydney,
        hours: Some((8 * 60, 18 * 60)),
        holidays: &["2026-03-09"],
        first_response_min: 60,
        policy: "apac",
    },
    Tier {
        name: "tokyo",
        zone: chrono_tz::Asia::Tokyo,
        hours: Some((9 * 60, 18 * 60)),
        holidays: &["2026-03-20"],
        first_response_min: 120,
        policy: "apac",
    },
    Tier {
        name: "saopaulo",
        zone: chrono_tz::America::Sao_Paulo,
        hours: Some((8 * 60, 17 * 60 + 30)),
        holidays: &["2026-03-02"],
        first_response_min: 45,
        policy: "amer",
    },
    Tier {
        name: "london",
        zone: chrono_tz::Europe::London,
        hours: None,
        holidays: &[],
        first_response_min: 20,
        policy: "emea",
    },
];

/// A rotation as the oracle knows it: daily shifts handed off at 09:00 local
/// from 2026-01-01, member `k mod n` on shift `k`.
pub struct Rotation {
    /// Its name.
    pub name: &'static str,
    /// Its zone.
    pub zone: Tz,
    /// Members in turn order.
    pub members: &'static [&'static str],
    /// Where hand-offs are posted.
    pub channel: &'static str,
    /// Whole-shift overrides: (first local day, days, who).
    pub overrides: &'static [(&'static str, i64, &'static str)],
}

/// The three rotations.
pub const ROTATIONS: [Rotation; 3] = [
    Rotation {
        name: "emea",
        zone: chrono_tz::Europe::Berlin,
        members: &["U0B1", "U0B2", "U0B3"],
        channel: "C0REMEA",
        overrides: &[("2026-03-10", 1, "U0B9"), ("2026-03-28", 2, "U0B9")],
    },
    Rotation {
        name: "amer",
        zone: chrono_tz::America::New_York,
        members: &["U0N1", "U0N2"],
        channel: "C0RAMER",
        overrides: &[("2026-03-07", 2, "U0N9")],
    },
    Rotation {
        name: "apac",
        zone: chrono_tz::Australia::Sydney,
        members: &["U0S1", "U0S2", "U0S3"],
        channel: "C0RAPAC",
        overrides: &[("2026-03-04", 1, "U0S9")],
    },
];

/// A policy's levels: (rotations paged, minutes until the next level), and
/// how many times the whole policy repeats.
pub fn policy(name: &str) -> (Vec<(Vec<&'static str>, i64)>, i64) {
    match name {
        "emea" => (vec![(vec!["emea"], 10), (vec!["amer"], 20)], 1),
        "amer" => (vec![(vec!["amer"], 10), (vec!["apac"], 20)], 1),
        "apac" => (vec![(vec!["apac"], 10), (vec!["emea"], 20)], 1),
        "urgent" => (vec![(vec!["amer", "emea"], 5), (vec!["apac"], 5)], 0),
        "incidents" => (vec![(vec!["emea"], 5), (vec!["amer"], 15)], 1),
        other => panic!("no policy {other}"),
    }
}

/// What happens to a request after it is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// Staff answer halfway to the target; resolved an hour later (or at the
    /// end of the run, more than a week later for early ones).
    InTime,
    /// Answered 25 minutes after the target, resolved 8 minutes after that.
    Late,
    /// The first page is acknowledged five minutes after it.
    Acknowledged,
    /// Nobody answers: every level of both rounds is paged.
    Never,
    /// "outage" in the text: paged at once, acknowledged two minutes later.
    Urgent,
}

/// One generated request.
pub struct RequestSpec {
    /// Index in the scenario.
    pub n: usize,
    /// Customer number.
    pub customer: usize,
    /// When it is posted.
    pub at: DateTime<Utc>,
    /// Its fate.
    pub fate: Fate,
    /// Resolved at the end of the run rather than an hour after the answer.
    pub resolve_at_end: bool,
}

impl RequestSpec {
    /// The customer's channel.
    pub fn channel(&self) -> String {
        channel(self.customer)
    }
    /// The thread's ts.
    pub fn ts(&self) -> String {
        format!("{}.{:06}", self.at.timestamp(), self.n % 1_000_000)
    }
    /// The tier.
    pub fn tier(&self) -> &'static Tier {
        &TIERS[self.customer % TIERS.len()]
    }
}

/// A customer's channel.
pub fn channel(customer: usize) -> String {
    format!("C9{customer:05}")
}

/// One alert group of a storm: it opens one incident.
pub struct GroupSpec {
    /// `storm-group`.
    pub name: String,
    /// Alerts in it.
    pub alerts: usize,
    /// Acknowledged (else resolved by Alertmanager).
    pub acknowledged: bool,
}

/// An Alertmanager storm.
pub struct StormSpec {
    /// Its first delivery.
    pub at: DateTime<Utc>,
    /// Its groups.
    pub groups: Vec<GroupSpec>,
}

/// The whole generated scenario.
pub struct Scenario {
    /// Its scale.
    pub scale: Scale,
    /// Requests in time order.
    pub requests: Vec<RequestSpec>,
    /// Storms.
    pub storms: Vec<StormSpec>,
}

/// The nominal end of the run: `days` after the start.
pub fn nominal_end(scale: &Scale) -> DateTime<Utc> {
    sim_start() + Duration::days(scale.days)
}

impl Scenario {
    /// Generates the scenario of `scale`.
    pub fn generate(scale: Scale) -> Self {
        let mut rng = Rng::new(scale.seed);
        // Requests stop a day before the end so every fate plays out.
        let window = (scale.days - 1).max(1) * 86_400;
        let mut requests: Vec<RequestSpec> = (0..scale.requests)
            .map(|n| {
                let at = sim_start() + Duration::seconds(rng.below(window as u64) as i64);
                let fate = match rng.below(100) {
                    0..=59 => Fate::InTime,
                    60..=69 => Fate::Late,
                    70..=84 => Fate::Acknowledged,
                    85..=92 => Fate::Never,
                    _ => Fate::Urgent,
                };
                RequestSpec {
                    n,
                    customer: rng.below(scale.customers as u64) as usize,
                    at,
                    fate,
                    resolve_at_end: fate == Fate::InTime && rng.below(5) == 0,
                }
            })
            .collect();
        requests.sort_by_key(|r| (r.at, r.n));
        for (n, request) in requests.iter_mut().enumerate() {
            request.n = n;
        }
        let storms = (0..scale.storms)
            .map(|s| {
                let at = sim_start()
                    + Duration::seconds(rng.below(window as u64) as i64)
                    + Duration::milliseconds(500);
                let groups = (0..3 + rng.below(4))
                    .map(|g| GroupSpec {
                        name: format!("storm{s}-g{g}"),
                        alerts: 3 + rng.below(10) as usize,
                        acknowledged: rng.below(2) == 0,
                    })
                    .collect();
                StormSpec { at, groups }
            })
            .collect();
        Self {
            scale,
            requests,
            storms,
        }
    }

    /// The configuration the service runs with.
    pub fn config(&self) -> String {
        let mut text = String::from(
            r#"team: { name: Scale, slack_team_id: T0STAFF, timezone: Europe/Berlin, ops_channel: C0OPS }
roles:
  oncall: { usergroups: [S0ONCALL] }
  support: { usergroups: [S0SUPPORT] }
usergroups:
  S0ONCALL: [U0B1, U0B2, U0B3, U0B9, U0N1, U0N2, U0N9, U0S1, U0S2, U0S3, U0S9]
  S0SUPPORT: [U0SAM]
workers: { lease: LEASEs }
support:
  channel: C0SUPPORT
  urgent_keywords: [outage]
  urgent_escalation: urgent
  incidents: { severities: [critical], escalation: incidents }
rotations:
"#,
        )
        .replace("LEASE", &LEASE_SECS.to_string());
        for rotation in &ROTATIONS {
            let _ = writeln!(
                text,
                "  {}: {{ timezone: {}, handoff: \"09:00\", shift: 1d, start: 2026-01-01, members: [{}], channel: {} }}",
                rotation.name,
                rotation.zone.name(),
                rotation.members.join(", "),
                rotation.channel
            );
        }
        text.push_str("escalation_policies:\n");
        for name in ["emea", "amer", "apac", "urgent", "incidents"] {
            let (levels, repeat) = policy(name);
            let levels: Vec<String> = levels
                .iter()
                .map(|(rotations, after)| {
                    let notify: Vec<String> =
                        rotations.iter().map(|r| format!("rotation:{r}")).collect();
                    format!("{{ notify: [{}], after: {after}m }}", notify.join(", "))
                })
                .collect();
            let _ = writeln!(
                text,
                "  {name}: {{ repeat: {repeat}, levels: [ {} ] }}",
                levels.join(", ")
            );
        }
        text.push_str("customers:\n");
        for c in 0..self.scale.customers {
            let tier = &TIERS[c % TIERS.len()];
            let hours = match tier.hours {
                None => "tier: 24x7".to_string(),
                Some((from, to)) => format!(
                    "business_hours: {{ days: Mon-Fri, from: \"{:02}:{:02}\", to: \"{:02}:{:02}\", holidays: [{}] }}",
                    from / 60,
                    from % 60,
                    to / 60,
                    to % 60,
                    tier.holidays.join(", ")
                ),
            };
            let _ = writeln!(
                text,
                "  c{c}: {{ name: Customer {c}, channels: [{}], timezone: {}, {hours}, sla: {{ first_response: {}m }}, escalation: {} }}",
                channel(c),
                tier.zone.name(),
                tier.first_response_min,
                tier.policy
            );
        }
        let _ = writeln!(
            text,
            "catalog: {{ paths: [{}], run_checks: false }}",
            repo_path("catalog").display()
        );
        text
    }
}

// ---------------------------------------------------------------------------
// The oracle: no product code below this line until `Verdict`.
// ---------------------------------------------------------------------------

/// A local wall time in `zone` as an instant (08:00–18:00 never falls in a
/// clock change in these zones; the earlier instant if it ever repeats).
fn local(zone: Tz, date: NaiveDate, minute: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap();
    zone.from_local_datetime(&date.and_time(time))
        .earliest()
        .unwrap_or_else(|| panic!("{date} {time} does not exist in {zone}"))
        .to_utc()
}

/// When `minutes` of open time have passed since `opened`, counted by hand:
/// walk the customer's local days, skip weekends and holidays, consume each
/// day's open window (the closing instant counts as inside).
pub fn oracle_target(tier: &Tier, opened: DateTime<Utc>) -> DateTime<Utc> {
    let need = Duration::minutes(tier.first_response_min);
    let Some((from, to)) = tier.hours else {
        return opened + need;
    };
    let holidays: Vec<NaiveDate> = tier
        .holidays
        .iter()
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap())
        .collect();
    let mut left = need;
    let mut day = opened.with_timezone(&tier.zone).date_naive();
    loop {
        let working =
            !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&day);
        if working {
            let open = local(tier.zone, day, from);
            let close = local(tier.zone, day, to);
            let begin = open.max(opened);
            if begin < close {
                if begin + left <= close {
                    return begin + left;
                }
                left -= close - begin;
            }
        }
        day = day.succ_opt().unwrap();
    }
}

fn rotation(name: &str) -> &'static Rotation {
    ROTATIONS.iter().find(|r| r.name == name).unwrap()
}

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

/// The start of the shift that holds `at` and its index since 2026-01-01.
fn shift_at(rotation: &Rotation, at: DateTime<Utc>) -> (i64, NaiveDate) {
    let mut day = at.with_timezone(&rotation.zone).date_naive();
    if local(rotation.zone, day, 9 * 60) > at {
        day = day.pred_opt().unwrap();
    }
    ((day - first_day()).num_days(), day)
}

/// Who is on call in `rotation` at `at`, by the rule written out again.
pub fn oracle_on_call(name: &str, at: DateTime<Utc>) -> &'static str {
    let rotation = rotation(name);
    let (k, day) = shift_at(rotation, at);
    for (from, days, who) in rotation.overrides {
        let from = NaiveDate::parse_from_str(from, "%Y-%m-%d").unwrap();
        if day >= from && day < from + Duration::days(*days) {
            return who;
        }
    }
    rotation.members[usize::try_from(k).unwrap() % rotation.members.len()]
}

/// An expected page: (level, round), when, to whom (sorted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Level, from 1.
    pub level: i64,
    /// Round, from 1.
    pub round: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who, sorted.
    pub people: Vec<String>,
}

/// Every page of an escalation of `policy` started at `start`, stopped at
/// `stop` (an acknowledgement or resolution; pages at or after it never go).
pub fn oracle_pages(
    policy_name: &str,
    start: DateTime<Utc>,
    stop: Option<DateTime<Utc>>,
) -> Vec<Page> {
    let (levels, repeat) = policy(policy_name);
    let mut pages = Vec::new();
    let mut at = start;
    for round in 0..=repeat {
        for (level, (_, after)) in levels.iter().enumerate() {
            if stop.is_some_and(|s| at >= s) {
                return pages;
            }
            pages.push(Page {
                level: level as i64 + 1,
                round: round + 1,
                at,
                people: people_at(policy_name, level as i64 + 1, at),
            });
            at += Duration::minutes(*after);
        }
    }
    pages
}

/// Who level `level` (from 1) of `policy_name` pages at `at`, sorted.
fn people_at(policy_name: &str, level: i64, at: DateTime<Utc>) -> Vec<String> {
    let (levels, _) = policy(policy_name);
    let Some((rotations, _)) = usize::try_from(level - 1).ok().and_then(|l| levels.get(l)) else {
        return Vec::new();
    };
    let mut people: Vec<String> = rotations
        .iter()
        .map(|r| oracle_on_call(r, at).to_string())
        .collect();
    people.sort();
    people.dedup();
    people
}

/// What the oracle expects of one request.
pub struct ExpectedRequest {
    /// First-response target.
    pub target: DateTime<Utc>,
    /// Breached at (the target) when nobody answered in time.
    pub breach: Option<DateTime<Utc>>,
    /// Pages.
    pub pages: Vec<Page>,
    /// The escalation policy they follow.
    pub policy: &'static str,
}

/// A hand-off: when, outgoing, incoming.
pub type Handoff = (DateTime<Utc>, String, String);

/// A staff action the driver performs, at its time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Act {
    /// The customer posts request `n`.
    Open(usize),
    /// Staff answer request `n` in its thread.
    Reply(usize),
    /// The person the oracle expects at level 1 acknowledges request `n`'s page.
    AckRequest(usize),
    /// `/wk resolve` request `n`.
    Resolve(usize),
    /// Alertmanager sends batch `b` of storm `s`'s group `g` firing.
    Fire(usize, usize, usize),
    /// The incident of storm `s`'s group `g` is acknowledged.
    AckIncident(usize, usize),
    /// Alertmanager says storm `s`'s group `g` resolved.
    ResolveGroup(usize, usize),
}

const ODD: i64 = 17; // seconds: keeps staff actions off the minute grid of pages

impl Scenario {
    /// The oracle's expectation for request `r`.
    pub fn expect_request(&self, r: &RequestSpec) -> ExpectedRequest {
        let target = oracle_target(r.tier(), r.at);
        let odd = Duration::seconds(ODD);
        let (breach, pages) = match r.fate {
            Fate::InTime => (None, Vec::new()),
            Fate::Late => (
                Some(target),
                oracle_pages(
                    r.tier().policy,
                    target,
                    Some(target + Duration::minutes(33) + odd),
                ),
            ),
            Fate::Acknowledged => (
                Some(target),
                oracle_pages(
                    r.tier().policy,
                    target,
                    Some(target + Duration::minutes(5) + odd),
                ),
            ),
            Fate::Never => (Some(target), oracle_pages(r.tier().policy, target, None)),
            Fate::Urgent => (
                None,
                oracle_pages("urgent", r.at, Some(r.at + Duration::minutes(2) + odd)),
            ),
        };
        ExpectedRequest {
            target,
            breach,
            pages,
            policy: if r.fate == Fate::Urgent {
                "urgent"
            } else {
                r.tier().policy
            },
        }
    }

    /// The pages of storm `s`'s group `g`'s incident.
    pub fn expect_group(&self, s: usize, g: usize) -> Vec<Page> {
        let storm = &self.storms[s];
        let stop = if storm.groups[g].acknowledged {
            storm.at + Duration::minutes(7) + Duration::seconds(ODD)
        } else {
            storm.at + Duration::minutes(22) + Duration::seconds(ODD)
        };
        oracle_pages("incidents", storm.at, Some(stop))
    }

    /// Every hand-off moment in the run, per rotation: (when, outgoing, incoming).
    pub fn expect_handoffs(&self) -> BTreeMap<&'static str, Vec<Handoff>> {
        let mut all = BTreeMap::new();
        let end = self.end();
        for rotation in &ROTATIONS {
            let mut moments = Vec::new();
            let mut day = sim_start().with_timezone(&rotation.zone).date_naive();
            loop {
                let at = local(rotation.zone, day, 9 * 60);
                if at > end {
                    break;
                }
                let outgoing = oracle_on_call(rotation.name, at - Duration::seconds(1));
                let incoming = oracle_on_call(rotation.name, at);
                // A shift change is a hand-off when the person changes.
                if at > sim_start() && outgoing != incoming {
                    moments.push((at, outgoing.to_string(), incoming.to_string()));
                }
                day = day.succ_opt().unwrap();
            }
            all.insert(rotation.name, moments);
        }
        all
    }

    /// Where the run stops: the nominal end, or three hours after the last
    /// action when that is later (a target after a weekend).
    pub fn end(&self) -> DateTime<Utc> {
        let last = self
            .acts(false)
            .last()
            .map(|(t, _)| *t)
            .unwrap_or(sim_start());
        nominal_end(&self.scale).max(last + Duration::hours(3))
    }

    /// Every action of the run in time order.
    pub fn acts(&self, escalations_only: bool) -> Vec<(DateTime<Utc>, Act)> {
        let odd = Duration::seconds(ODD);
        let end = nominal_end(&self.scale) - Duration::hours(2);
        let mut acts = Vec::new();
        for r in &self.requests {
            if escalations_only && r.fate == Fate::InTime {
                continue;
            }
            let n = r.n;
            acts.push((r.at, Act::Open(n)));
            let target = oracle_target(r.tier(), r.at);
            match r.fate {
                Fate::InTime => {
                    let reply = r.at + (target - r.at) / 2;
                    acts.push((reply, Act::Reply(n)));
                    let resolve = if r.resolve_at_end {
                        end
                    } else {
                        reply + Duration::hours(1)
                    };
                    acts.push((resolve.max(reply + odd), Act::Resolve(n)));
                }
                Fate::Late => {
                    acts.push((target + Duration::minutes(25) + odd, Act::Reply(n)));
                    acts.push((target + Duration::minutes(33) + odd, Act::Resolve(n)));
                }
                Fate::Acknowledged => {
                    acts.push((target + Duration::minutes(5) + odd, Act::AckRequest(n)));
                    acts.push((target + Duration::hours(2) + odd, Act::Resolve(n)));
                }
                Fate::Never => {}
                Fate::Urgent => {
                    acts.push((r.at + Duration::minutes(2) + odd, Act::AckRequest(n)));
                    acts.push((r.at + Duration::minutes(3) + odd, Act::Reply(n)));
                    acts.push((r.at + Duration::hours(1) + odd, Act::Resolve(n)));
                }
            }
        }
        for (s, storm) in self.storms.iter().enumerate() {
            for (g, group) in storm.groups.iter().enumerate() {
                // Alertmanager repeats a group's notification as alerts join it.
                for b in 0..3 {
                    acts.push((
                        storm.at + Duration::seconds(40 * b as i64),
                        Act::Fire(s, g, b),
                    ));
                }
                if group.acknowledged {
                    acts.push((
                        storm.at + Duration::minutes(7) + odd,
                        Act::AckIncident(s, g),
                    ));
                    acts.push((
                        storm.at + Duration::minutes(50) + odd,
                        Act::ResolveGroup(s, g),
                    ));
                } else {
                    acts.push((
                        storm.at + Duration::minutes(22) + odd,
                        Act::ResolveGroup(s, g),
                    ));
                }
            }
        }
        acts.sort();
        acts
    }
}

/// The Alertmanager (webhook v4) body of a storm group: firing, the first
/// `upto` of its alerts; or all of them resolved.
pub fn alertmanager_body(group: &GroupSpec, firing: bool, upto: usize) -> Value {
    let status = if firing { "firing" } else { "resolved" };
    let alerts: Vec<Value> = (0..group.alerts.min(upto.max(1)))
        .map(|a| {
            // One alert in four is a warning: it joins no incident.
            let severity = if a % 4 == 3 { "warning" } else { "critical" };
            json!({
                "status": status,
                "labels": { "alertname": "NodeNotReady", "severity": severity, "cluster": group.name, "node": format!("node-{a}") },
                "annotations": { "summary": format!("{} node-{a} is not ready", group.name) },
                "startsAt": "2026-03-01T00:00:00Z",
                "endsAt": if firing { "0001-01-01T00:00:00Z" } else { "2026-03-01T01:00:00Z" },
                "generatorURL": "http://prometheus/graph",
                "fingerprint": format!("{:016x}", fingerprint(&group.name, a)),
            })
        })
        .collect();
    json!({
        "receiver": "watchkeeper",
        "status": status,
        "alerts": alerts,
        "groupLabels": { "cluster": group.name },
        "commonLabels": { "alertname": "NodeNotReady", "cluster": group.name },
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{cluster=\"{}\"}}", group.name),
        "truncatedAlerts": 0
    })
}

fn fingerprint(name: &str, a: usize) -> u64 {
    let mut rng = Rng::new(
        name.bytes()
            .fold(a as u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)),
    );
    rng.next()
}

// ---------------------------------------------------------------------------
// Driving the service.
// ---------------------------------------------------------------------------

/// Kills a replica abruptly: once armed, it dies at the n-th crash point it
/// reaches (mid-claim, before a commit, after a send), and every later one.
#[derive(Default)]
pub struct KillSwitch {
    countdown: AtomicI64,
    dead: AtomicBool,
}

impl KillSwitch {
    /// Dies at the `n`-th crash point from now.
    pub fn arm(&self, n: i64) {
        self.countdown.store(n.max(1), Ordering::SeqCst);
    }
    /// Has it died?
    pub fn dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }
}

impl Faults for KillSwitch {
    fn crash_at(&self, _point: FaultPoint, _key: &str) -> bool {
        if self.dead() {
            return true;
        }
        if self.countdown.load(Ordering::SeqCst) > 0
            && self.countdown.fetch_sub(1, Ordering::SeqCst) == 1
        {
            self.dead.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }
}

/// One replica, or three on one PostgreSQL database.
pub struct Cluster {
    /// Live replicas (one, or three).
    pub replicas: Vec<(TestApp, Arc<KillSwitch>)>,
    /// Kill one every this often (three replicas only).
    pub kill_every: Option<Duration>,
    last_kill: DateTime<Utc>,
    last_vacuum: DateTime<Utc>,
    rng: Rng,
    /// Replicas killed so far.
    pub kills: usize,
    /// When each was killed (virtual time).
    pub kill_times: Vec<DateTime<Utc>>,
}

impl Cluster {
    /// One replica.
    pub fn single(app: TestApp) -> Self {
        Self {
            replicas: vec![(app, Arc::new(KillSwitch::default()))],
            kill_every: None,
            last_kill: sim_start(),
            last_vacuum: sim_start(),
            rng: Rng::new(1),
            kills: 0,
            kill_times: Vec::new(),
        }
    }

    /// Three replicas of `first`'s database, one killed every `every`.
    pub async fn three(
        first: TestApp,
        first_switch: Arc<KillSwitch>,
        every: Duration,
        seed: u64,
    ) -> Self {
        let mut replicas = vec![(first, first_switch)];
        for _ in 0..2 {
            let switch = Arc::new(KillSwitch::default());
            let app = replicas[0].0.replica(Some(switch.clone())).await;
            replicas.push((app, switch));
        }
        let now = replicas[0].0.clock.now();
        Self {
            replicas,
            kill_every: Some(every),
            last_kill: now,
            last_vacuum: now,
            rng: Rng::new(seed),
            kills: 0,
            kill_times: Vec::new(),
        }
    }

    /// A live replica to send the next request to.
    pub fn front(&mut self) -> &TestApp {
        let i = self.rng.below(self.replicas.len() as u64) as usize;
        &self.replicas[i].0
    }

    fn now(&self) -> DateTime<Utc> {
        self.replicas[0].0.clock.now()
    }

    async fn settle_all(&mut self) {
        let results = futures::future::join_all(
            self.replicas
                .iter()
                .map(|(app, _)| app.server.workers().settle()),
        )
        .await;
        for (i, result) in results.into_iter().enumerate() {
            let (_, switch) = &self.replicas[i];
            // A replica that died may fail on its way down; the others may not.
            if let Err(err) = result
                && !switch.dead()
            {
                panic!(
                    "replica {i} (of {}, {} killed so far): {err}",
                    self.replicas.len(),
                    self.kills
                );
            }
        }
        self.bury_the_dead().await;
    }

    /// Replaces every replica that died by a fresh one; the dead one is
    /// never shut down (its claims stay until their lease runs out).
    async fn bury_the_dead(&mut self) {
        while let Some(i) = self.replicas.iter().position(|(_, s)| s.dead()) {
            let (dead, _) = self.replicas.remove(i);
            let switch = Arc::new(KillSwitch::default());
            let fresh = self.replicas[0].0.replica(Some(switch.clone())).await;
            // Dropped, never shut down: its claims stay until their lease runs
            // out, and its connections close as a killed process's do.
            drop(dead);
            self.replicas.push((fresh, switch));
            self.kills += 1;
            self.kill_times.push(self.now());
        }
    }

    /// Moves the clock to `target`, every replica racing for what falls due
    /// on the way; one is armed to die every `kill_every`.
    pub async fn advance_to(&mut self, target: DateTime<Utc>) {
        if self.replicas.len() == 1 {
            let app = &self.replicas[0].0;
            let by = target - app.clock.now();
            app.advance(by).await;
            return;
        }
        self.settle_all().await;
        loop {
            let next = self.replicas[0]
                .0
                .server
                .workers()
                .next_due()
                .await
                .unwrap();
            let Some(next) = next.filter(|n| *n <= target) else {
                break;
            };
            let now = self.now();
            self.replicas[0].0.clock.set(next.max(now));
            if let Some(every) = self.kill_every
                && self.now() - self.last_kill >= every
            {
                self.last_kill = self.now();
                let victim = self.rng.below(self.replicas.len() as u64) as usize;
                let at = 1 + self.rng.below(6) as i64;
                self.replicas[victim].1.arm(at);
            }
            self.settle_all().await;
            if self.now() - self.last_vacuum >= Duration::hours(1) {
                // Autovacuum's work in production (it is off on the CI
                // database, and a virtual hour passes here in a second).
                self.last_vacuum = self.now();
                self.replicas[0].0.db().vacuum().await;
            }
            if next <= now && self.now() == now {
                // Due but held by a dead replica's lease: let time move.
                let lease_step = self.now() + Duration::seconds(1);
                if lease_step > target {
                    break;
                }
                self.replicas[0].0.clock.set(lease_step);
            }
        }
        self.replicas[0].0.clock.set(target.max(self.now()));
        self.settle_all().await;
    }

    /// Runs what is due now on every replica.
    pub async fn settle(&mut self) {
        if self.replicas.len() == 1 {
            self.replicas[0].0.settle().await;
        } else {
            self.settle_all().await;
        }
    }

    /// Stops every replica and drops the database.
    pub async fn stop(mut self) {
        let first = self.replicas.remove(0).0;
        for (app, _) in self.replicas.drain(..) {
            app.stop_keeping_db().await;
        }
        first.stop().await;
    }
}

/// What the driver learned while playing (product ids, for acknowledgements).
#[derive(Default)]
pub struct Played {
    /// Request index → the product's request id.
    pub request_ids: HashMap<usize, i64>,
    /// Acknowledgements that found no running escalation.
    pub missed_acks: Vec<String>,
    /// When replicas were killed (virtual time).
    pub kill_times: Vec<DateTime<Utc>>,
}

async fn request_id(app: &TestApp, channel: &str, ts: &str) -> Option<i64> {
    sqlx::query_scalar::<_, i64>("SELECT id FROM requests WHERE channel = $1 AND thread_ts = $2")
        .bind(channel)
        .bind(ts)
        .fetch_optional(app.server.store().pool())
        .await
        .unwrap()
}

async fn incident_id(app: &TestApp, group: &str) -> Option<i64> {
    let key = format!("{{}}:{{cluster=\"{group}\"}}");
    sqlx::query_scalar::<_, i64>(
        "SELECT id FROM incidents WHERE group_key = $1 ORDER BY id LIMIT 1",
    )
    .bind(key)
    .fetch_optional(app.server.store().pool())
    .await
    .unwrap()
}

async fn acknowledge(
    app: &TestApp,
    escalation: Option<i64>,
    who: &str,
    what: &str,
    played: &mut Played,
) {
    let Some(escalation) = escalation else {
        played
            .missed_acks
            .push(format!("{what}: nothing to acknowledge"));
        return;
    };
    let dm = format!("D{}", who.trim_start_matches('U'));
    app.click(
        who,
        "T0STAFF",
        &dm,
        "1.0",
        "page.ack",
        &escalation.to_string(),
    )
    .await;
}

async fn running_escalation(
    app: &TestApp,
    request: Option<i64>,
    incident: Option<i64>,
) -> Option<i64> {
    watchkeeper::store::support::active_escalation(app.server.store().pool(), request, incident)
        .await
        .unwrap()
        .map(|e| e.id)
}

/// Creates the rotations' overrides the way an engineer does, with `/wk oncall override`.
pub async fn create_overrides(app: &TestApp) {
    for rotation in &ROTATIONS {
        for (from, days, who) in rotation.overrides {
            let from = NaiveDate::parse_from_str(from, "%Y-%m-%d").unwrap();
            let until = from + Duration::days(*days);
            let text = format!(
                "oncall override <@{who}> {from} 09:00 {until} 09:00 {}",
                rotation.name
            );
            let reply = app.command("U0B1", "T0STAFF", "C0OPS", &text).await;
            assert!(
                reply.to_string().contains("verride"),
                "override accepted: {reply}"
            );
        }
    }
}

/// Plays the scenario's `acts` on `cluster`, then runs to the end.
pub async fn play(
    scenario: &Scenario,
    cluster: &mut Cluster,
    acts: &[(DateTime<Utc>, Act)],
) -> Played {
    let mut played = Played::default();
    let began = std::time::Instant::now();
    for (i, (at, act)) in acts.iter().enumerate() {
        if i > 0 && i % 1000 == 0 {
            // Shown with --nocapture: how far a long run has come.
            println!(
                "  … {i} of {} actions, virtual {at}, {:.0} s, {} killed",
                acts.len(),
                began.elapsed().as_secs_f64(),
                cluster.kills
            );
        }
        cluster.advance_to(*at).await;
        let app = cluster.front();
        match act {
            Act::Open(n) => {
                let r = &scenario.requests[*n];
                let text = if r.fate == Fate::Urgent {
                    "Production outage: nothing answers"
                } else {
                    "Our deployment is stuck"
                };
                let user = format!("U7{:06}", r.n);
                let body = message(&r.channel(), &user, "T9CUST", &r.ts(), None, text);
                assert_eq!(app.event(&body).await.status(), 200);
            }
            Act::Reply(n) => {
                let r = &scenario.requests[*n];
                let ts = format!("{}.{:06}", at.timestamp(), 900_000 + r.n % 100_000);
                let body = message(
                    &r.channel(),
                    "U0SAM",
                    "T0STAFF",
                    &ts,
                    Some(&r.ts()),
                    "Looking into it",
                );
                assert_eq!(app.event(&body).await.status(), 200);
            }
            Act::AckRequest(n) => {
                let r = &scenario.requests[*n];
                let id = match played.request_ids.get(n) {
                    Some(id) => Some(*id),
                    None => request_id(app, &r.channel(), &r.ts()).await,
                };
                let expected = scenario.expect_request(r);
                let who = expected
                    .pages
                    .first()
                    .and_then(|p| p.people.first().cloned())
                    .unwrap_or_else(|| "U0B1".into());
                let escalation = match id {
                    Some(id) => running_escalation(app, Some(id), None).await,
                    None => None,
                };
                acknowledge(app, escalation, &who, &format!("request {n}"), &mut played).await;
            }
            Act::Resolve(n) => {
                let r = &scenario.requests[*n];
                let Some(id) = request_id(app, &r.channel(), &r.ts()).await else {
                    played
                        .missed_acks
                        .push(format!("request {n}: not recorded"));
                    continue;
                };
                played.request_ids.insert(*n, id);
                let reply = app
                    .command("U0SAM", "T0STAFF", "C0OPS", &format!("resolve #{id} fixed"))
                    .await;
                if !reply.to_string().contains("resolved") {
                    played
                        .missed_acks
                        .push(format!("request {n}: resolve answered {reply}"));
                }
            }
            Act::Fire(s, g, b) => {
                let group = &scenario.storms[*s].groups[*g];
                let upto = group.alerts * (b + 1) / 3;
                let body = alertmanager_body(group, true, upto);
                let response = app.alertmanager(body.to_string()).await;
                assert_eq!(response.status(), 200);
            }
            Act::AckIncident(s, g) => {
                let group = &scenario.storms[*s].groups[*g];
                let escalation = match incident_id(app, &group.name).await {
                    Some(id) => running_escalation(app, None, Some(id)).await,
                    None => None,
                };
                let who = scenario.expect_group(*s, *g)[0].people[0].clone();
                acknowledge(app, escalation, &who, &group.name, &mut played).await;
            }
            Act::ResolveGroup(s, g) => {
                let group = &scenario.storms[*s].groups[*g];
                let body = alertmanager_body(group, false, group.alerts);
                let response = app.alertmanager(body.to_string()).await;
                assert_eq!(response.status(), 200);
            }
        }
        cluster.settle().await;
    }
    cluster.advance_to(scenario.end()).await;
    played.kill_times = cluster.kill_times.clone();
    played
}

// ---------------------------------------------------------------------------
// The verdict: what the bot did against what the oracle expects.
// ---------------------------------------------------------------------------

/// Matched and mismatched checks, by kind, with the first differences.
#[derive(Default)]
pub struct Verdict {
    /// kind → (matched, mismatched).
    pub counts: BTreeMap<&'static str, (usize, usize)>,
    /// The first differences.
    pub differences: Vec<String>,
}

impl Verdict {
    fn check(&mut self, kind: &'static str, ok: bool, difference: impl FnOnce() -> String) {
        let entry = self.counts.entry(kind).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
            if self.differences.len() < 12 {
                self.differences.push(format!("{kind}: {}", difference()));
            }
        }
    }

    /// Mismatches in all.
    pub fn mismatched(&self) -> usize {
        self.counts.values().map(|(_, bad)| bad).sum()
    }

    /// Checks matched in all.
    pub fn matched(&self) -> usize {
        self.counts.values().map(|(ok, _)| ok).sum()
    }

    /// One line per kind and the first differences.
    pub fn report(&self) -> String {
        let mut text = format!(
            "oracle verdict: {} matched, {} mismatched\n",
            self.matched(),
            self.mismatched()
        );
        for (kind, (ok, bad)) in &self.counts {
            let _ = writeln!(text, "  {kind:<28} {ok:>7} matched {bad:>5} mismatched");
        }
        for difference in &self.differences {
            let _ = writeln!(text, "  ! {difference}");
        }
        text
    }
}

/// A `paged` timeline entry: "Level 1 of 2 (round 1 of 2) paged: U1, U2".
fn parse_page(at: DateTime<Utc>, text: &str) -> Option<Page> {
    let rest = text.strip_prefix("Level ")?;
    let (level, rest) = rest.split_once(" of ")?;
    let (_, rest) = rest.split_once("(round ")?;
    let (round, rest) = rest.split_once(" of ")?;
    let (_, people) = rest.split_once("paged: ")?;
    let mut people: Vec<String> = people.split(", ").map(str::to_string).collect();
    people.sort();
    Some(Page {
        level: level.parse().ok()?,
        round: round.parse().ok()?,
        at,
        people,
    })
}

async fn product_pages(app: &TestApp, subject: &str) -> Vec<Page> {
    app.server
        .store()
        .timeline(subject)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "paged")
        .filter_map(|e| parse_page(e.at, &e.text))
        .collect()
}

/// How late a timer may fire: `base` (zero on one replica), plus a lease
/// and the driver's one-second step for each replica killed while it waited
/// (the replica holding it may die, then the one that took it over, …).
pub struct Lateness<'a> {
    base: Duration,
    kills: &'a [DateTime<Utc>],
}

impl Lateness<'_> {
    /// Did a timer due at `due` that fired at `fired` keep to it?
    fn allows(&self, due: DateTime<Utc>, fired: DateTime<Utc>) -> bool {
        let kills = self
            .kills
            .iter()
            .filter(|k| **k >= due && **k <= fired)
            .count();
        let per_kill = Duration::seconds(LEASE_SECS + 1);
        fired >= due && fired - due <= self.base + per_kill * kills as i32
    }
}

/// `workers.lease` in the scenario's configuration.
const LEASE_SECS: i64 = 10;

/// Same levels, rounds and people; each page no earlier than the oracle
/// says, and no later than `late` allows after the page before it plus the
/// level's wait (a level is timed from when the previous one went out). A
/// late page goes to whoever is on call when it is sent.
fn same_pages(got: &[Page], want: &[Page], late: &Lateness<'_>, policy_name: &str) -> bool {
    got.len() == want.len()
        && got.iter().zip(want).enumerate().all(|(i, (g, w))| {
            let due = if i == 0 {
                w.at
            } else {
                got[i - 1].at + (w.at - want[i - 1].at)
            };
            let people = g.people == w.people
                || (g.at > w.at && g.people == people_at(policy_name, g.level, g.at));
            g.level == w.level && g.round == w.round && people && late.allows(due, g.at)
        })
}

/// Compares the bot's run with the oracle. `tolerance`: how late a timer may
/// fire (zero on one replica; a lease on killed replicas).
pub async fn judge(
    scenario: &Scenario,
    app: &TestApp,
    escalations_only: bool,
    tolerance: Duration,
    played: &Played,
) -> Verdict {
    let mut verdict = Verdict::default();
    let pool = app.server.store().pool();
    let late = Lateness {
        base: tolerance,
        kills: &played.kill_times,
    };
    for missed in &played.missed_acks {
        verdict.check("driver actions", false, || missed.clone());
    }
    for r in &scenario.requests {
        if escalations_only && r.fate == Fate::InTime {
            continue;
        }
        let expected = scenario.expect_request(r);
        let Some(id) = request_id(app, &r.channel(), &r.ts()).await else {
            verdict.check("request recorded", false, || {
                format!("request {} ({:?}) not recorded", r.n, r.fate)
            });
            continue;
        };
        verdict.check("request recorded", true, String::new);
        let stored = watchkeeper::store::support::request(pool, id)
            .await
            .unwrap()
            .unwrap();
        verdict.check(
            "first-response target",
            // A request whose message a killed replica held opens when
            // its lease runs out.
            stored
                .first_response_due
                .is_some_and(|due| late.allows(expected.target, due)),
            || {
                format!(
                    "#{id} ({} opened {}): bot {:?}, oracle {}",
                    r.tier().name,
                    r.at,
                    stored.first_response_due,
                    expected.target
                )
            },
        );
        let breach_ok = match (stored.breached_at, expected.breach) {
            (None, None) => true,
            (Some(got), Some(want)) => late.allows(want, got),
            _ => false,
        };
        verdict.check("SLA breach", breach_ok, || {
            format!(
                "#{id} ({:?}, {} opened {}): bot breached {:?}, oracle {:?}",
                r.fate,
                r.tier().name,
                r.at,
                stored.breached_at,
                expected.breach
            )
        });
        let subject = watchkeeper::store::timeline::thread_subject(&r.channel(), &r.ts());
        let got = product_pages(app, &subject).await;
        verdict.check(
            "request pages (level, time, who)",
            same_pages(&got, &expected.pages, &late, expected.policy),
            || {
                format!(
                    "#{id} ({:?}, {}): bot {got:?}, oracle {:?}",
                    r.fate,
                    r.tier().name,
                    expected.pages
                )
            },
        );
    }
    for (s, storm) in scenario.storms.iter().enumerate() {
        for (g, group) in storm.groups.iter().enumerate() {
            let incidents: Vec<i64> =
                sqlx::query_scalar("SELECT id FROM incidents WHERE group_key = $1")
                    .bind(format!("{{}}:{{cluster=\"{}\"}}", group.name))
                    .fetch_all(pool)
                    .await
                    .unwrap();
            verdict.check("one incident per alert group", incidents.len() == 1, || {
                format!("{}: incidents {incidents:?}", group.name)
            });
            let Some(id) = incidents.first() else {
                continue;
            };
            let got = product_pages(app, &format!("incident:{id}")).await;
            let want = scenario.expect_group(s, g);
            verdict.check(
                "incident pages (level, time, who)",
                same_pages(&got, &want, &late, "incidents"),
                || {
                    format!(
                        "{} (incident {id}): bot {got:?}, oracle {want:?}",
                        group.name
                    )
                },
            );
        }
    }
    for (name, moments) in scenario.expect_handoffs() {
        let rotation = rotation(name);
        let entries: Vec<(DateTime<Utc>, String)> = app
            .server
            .store()
            .timeline(&format!("rotation:{name}"))
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "handoff")
            .map(|e| (e.at, e.text))
            .collect();
        let posts = app.slack.messages_in(rotation.channel).len();
        verdict.check(
            "hand-off posts per rotation",
            posts == moments.len(),
            || {
                format!(
                    "{name}: {posts} posts in {}, oracle {}",
                    rotation.channel,
                    moments.len()
                )
            },
        );
        verdict.check(
            "hand-off moments per rotation",
            entries.len() == moments.len(),
            || {
                format!(
                    "{name}: {} hand-offs recorded, oracle {}",
                    entries.len(),
                    moments.len()
                )
            },
        );
        for (at, outgoing, incoming) in &moments {
            let want = format!("{outgoing} handed {name} to {incoming}");
            let found = entries.iter().any(|(t, text)| t == at && *text == want);
            verdict.check("hand-off (time, who)", found, || {
                let near: Vec<_> = entries
                    .iter()
                    .filter(|(t, _)| (*t - *at).num_hours().abs() < 24)
                    .collect();
                format!("{name} at {at}: oracle `{want}`, bot {near:?}")
            });
        }
    }
    // Nothing doubled: every outbox marker reached Slack once.
    let mut markers: HashMap<String, usize> = HashMap::new();
    for m in app.slack.messages() {
        if let Some(marker) = m.marker() {
            *markers.entry(marker.to_string()).or_default() += 1;
        }
    }
    for (marker, count) in &markers {
        verdict.check("Slack posts sent once", *count == 1, || {
            format!("{marker} posted {count} times")
        });
    }
    // Nothing refused: the outbox reported no delivery that failed for good.
    for m in app.slack.messages_in("C0OPS") {
        if m.text.contains("could not deliver") {
            verdict.check("deliveries", false, || m.text.clone());
        }
    }
    verdict.check("deliveries", true, String::new);
    verdict
}

/// Peak resident memory of this process (`VmHWM`), MiB.
pub fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Counts of the scenario, for the report.
pub fn describe(scenario: &Scenario) -> String {
    let mut fates: BTreeMap<String, usize> = BTreeMap::new();
    for r in &scenario.requests {
        *fates.entry(format!("{:?}", r.fate)).or_default() += 1;
    }
    let groups: usize = scenario.storms.iter().map(|s| s.groups.len()).sum();
    format!(
        "{} channels, {} requests {fates:?}, {} storms ({groups} alert groups), {} days from {}",
        scenario.scale.customers,
        scenario.requests.len(),
        scenario.storms.len(),
        scenario.scale.days,
        sim_start()
    )
}
