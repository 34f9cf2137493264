//! A simulated month of support on the virtual clock: three customers in
//! Berlin, New York and Sydney, three daily rotations in those zones, March
//! 2026 (the US and the EU change clocks on the 8th and the 29th). Every
//! request that nobody answers escalates at its SLA target; every level is
//! paged on time, to whoever the roster says is on call then; nothing is
//! paged after an acknowledgement. Then the same escalations on two replicas
//! sharing PostgreSQL: each page is sent once.

mod support;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use std::collections::BTreeMap;
use support::slack_events::message;
use support::{Db, TestApp, repo_path};
use watchkeeper::config::Config;
use watchkeeper::store::support as db;
use watchkeeper::store::timeline::thread_subject;
use watchkeeper::work::Work;

fn month_config() -> String {
    format!(
        r#"team: {{ name: Month, slack_team_id: T0STAFF, timezone: Europe/Berlin, ops_channel: C0OPS }}
roles:
  oncall: {{ usergroups: [S0ONCALL] }}
  support: {{ usergroups: [S0SUPPORT] }}
usergroups:
  S0ONCALL: [U0B1, U0B2, U0N1, U0N2, U0S1, U0S2]
  S0SUPPORT: [U0SAM]
customers:
  berlin:
    name: Berlin GmbH
    channels: [C0BER]
    timezone: Europe/Berlin
    business_hours: {{ days: Mon-Fri, from: "09:00", to: "17:00", holidays: [2026-03-20] }}
    sla: {{ first_response: 30m }}
    escalation: berlin
  newyork:
    name: NY Inc
    channels: [C0NYC]
    timezone: America/New_York
    tier: 24x7
    sla: {{ first_response: 15m }}
    escalation: newyork
  sydney:
    name: Sydney Pty
    channels: [C0SYD]
    timezone: Australia/Sydney
    business_hours: {{ days: Mon-Fri, from: "08:00", to: "18:00" }}
    sla: {{ first_response: 1h }}
    escalation: sydney
rotations:
  emea: {{ timezone: Europe/Berlin, handoff: "09:00", shift: 1d, start: 2026-01-01, members: [U0B1, U0B2] }}
  amer: {{ timezone: America/New_York, handoff: "09:00", shift: 1d, start: 2026-01-01, members: [U0N1, U0N2] }}
  apac: {{ timezone: Australia/Sydney, handoff: "09:00", shift: 1d, start: 2026-01-01, members: [U0S1, U0S2] }}
escalation_policies:
  berlin: {{ repeat: 1, levels: [ {{ notify: [rotation:emea], after: 10m }}, {{ notify: [rotation:amer], after: 20m }} ] }}
  newyork: {{ repeat: 1, levels: [ {{ notify: [rotation:amer], after: 10m }}, {{ notify: [rotation:apac], after: 20m }} ] }}
  sydney: {{ repeat: 1, levels: [ {{ notify: [rotation:apac], after: 10m }}, {{ notify: [rotation:emea], after: 20m }} ] }}
catalog: {{ paths: [{}], run_checks: false }}
"#,
        repo_path("catalog").display()
    )
}

const CUSTOMERS: [(&str, &str, &str, &str); 3] = [
    ("berlin", "C0BER", "U9BER", "T9BER"),
    ("newyork", "C0NYC", "U9NYC", "T9NYC"),
    ("sydney", "C0SYD", "U9SYD", "T9SYD"),
];

/// The rotations each customer's policy pages, level by level.
fn levels(tenant: &str) -> [&'static str; 2] {
    match tenant {
        "berlin" => ["emea", "amer"],
        "newyork" => ["amer", "apac"],
        _ => ["apac", "emea"],
    }
}

/// What happens to a request after it is opened.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    /// Staff answer in the thread before the target.
    Answered,
    /// The first page is acknowledged five minutes later.
    Acknowledged,
    /// Nobody ever answers: every level of both rounds is paged.
    Ignored,
}

struct Posted {
    id: i64,
    tenant: &'static str,
    channel: &'static str,
    ts: String,
    at: DateTime<Utc>,
    fate: Fate,
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

/// The moment the SLA target falls, from the configuration's own clock.
fn target(config: &Config, tenant: &str, opened: DateTime<Utc>) -> DateTime<Utc> {
    let customer = &config.customers[&watchkeeper::ids::TenantId::from(tenant)];
    let clock = watchkeeper::support::config::sla_clock(config, customer).unwrap();
    clock.add(opened, customer.sla.unwrap().first_response.as_chrono())
}

/// `paged` timeline entries of a request: (when, who).
async fn pages(app: &TestApp, request: &Posted) -> Vec<(DateTime<Utc>, Vec<String>)> {
    app.server
        .store()
        .timeline(&thread_subject(request.channel, &request.ts))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "paged")
        .map(|e| {
            let who = e.text.rsplit(": ").next().unwrap_or_default();
            (e.at, who.split(", ").map(str::to_string).collect())
        })
        .collect()
}

/// Something staff do later.
enum Pending {
    /// Answer request `posted[i]` in its thread.
    Reply(usize),
    /// Acknowledge request `id`'s page, as the first person paged.
    Ack(i64),
}

/// Does, in time order, every pending action due by `until`.
async fn perform_until(
    app: &TestApp,
    posted: &[Posted],
    pending: &mut Vec<(DateTime<Utc>, Pending)>,
    until: DateTime<Utc>,
) {
    pending.sort_by_key(|(t, _)| *t);
    while pending.first().is_some_and(|(t, _)| *t <= until) {
        let (when, action) = pending.remove(0);
        app.advance(when - app.clock.now()).await;
        match action {
            Pending::Reply(index) => {
                let request = &posted[index];
                let ts = format!("{}.{:06}", when.timestamp(), 900_000 + index);
                let reply = message(
                    request.channel,
                    "U0SAM",
                    "T0STAFF",
                    &ts,
                    Some(&request.ts),
                    "On it",
                );
                app.deliver(&reply).await;
            }
            Pending::Ack(id) => {
                let escalation = db::active_escalation(app.server.store().pool(), Some(id), None)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("request #{id} is escalating"));
                let who = escalation.paged[0].to_string();
                let dm = format!("D{}", who.trim_start_matches('U'));
                let id = escalation.id.to_string();
                app.press(&who, "T0STAFF", &dm, "1.0", "page.ack", &id)
                    .await;
            }
        }
    }
}

async fn on_call(app: &TestApp, config: &Config, rotation: &str, at: DateTime<Utc>) -> Vec<String> {
    let mut work = Work::new(app.server.store().clone(), at);
    let people = watchkeeper::oncall::on_call(&mut work, config, rotation, at)
        .await
        .unwrap();
    people.into_iter().map(|u| u.to_string()).collect()
}

async fn a_month_of_escalations_pages_every_level_on_time_and_nothing_after_an_ack(db: Db) {
    let text = month_config();
    let config = watchkeeper::config::parse("month", &text).unwrap();
    let Some(app) = TestApp::spawn_virtual_with(db, start(), &text, None).await else {
        return;
    };
    let mut posted: Vec<Posted> = Vec::new();
    let mut pending: Vec<(DateTime<Utc>, Pending)> = Vec::new();
    // One request a day per customer, at times that walk around the clock.
    let mut events: Vec<(DateTime<Utc>, usize)> = Vec::new();
    for day in 0..31 {
        for c in 0..CUSTOMERS.len() {
            let minute = (day * 211 + c as i64 * 457) % 1440;
            events.push((start() + Duration::days(day) + Duration::minutes(minute), c));
        }
    }
    events.sort();
    for (i, (at, c)) in events.iter().enumerate() {
        // Replies and acknowledgements due before this post happen first.
        perform_until(&app, &posted, &mut pending, *at).await;
        app.advance(*at - app.clock.now()).await;
        let (tenant, channel, user, team) = CUSTOMERS[*c];
        let ts = format!("{}.{:06}", at.timestamp(), i);
        app.deliver(&message(
            channel,
            user,
            team,
            &ts,
            None,
            "Something is wrong with our cluster",
        ))
        .await;
        let id = i64::try_from(posted.len()).unwrap() + 1;
        let fate = match i % 3 {
            0 => Fate::Answered,
            1 => Fate::Acknowledged,
            _ => Fate::Ignored,
        };
        let due = target(&config, tenant, *at);
        match fate {
            Fate::Answered => pending.push((*at + (due - *at) / 2, Pending::Reply(posted.len()))),
            Fate::Acknowledged => pending.push((due + Duration::minutes(5), Pending::Ack(id))),
            Fate::Ignored => {}
        }
        posted.push(Posted {
            id,
            tenant,
            channel,
            ts,
            at: *at,
            fate,
        });
    }
    perform_until(&app, &posted, &mut pending, DateTime::<Utc>::MAX_UTC).await;
    app.advance(Duration::days(5)).await;

    let mut checked = BTreeMap::new();
    for request in &posted {
        let due = target(&config, request.tenant, request.at);
        let got = pages(&app, request).await;
        let rotations = levels(request.tenant);
        let expected: Vec<(DateTime<Utc>, &str)> = match request.fate {
            Fate::Answered => Vec::new(),
            Fate::Acknowledged => vec![(due, rotations[0])],
            Fate::Ignored => vec![
                (due, rotations[0]),
                (due + Duration::minutes(10), rotations[1]),
                (due + Duration::minutes(30), rotations[0]),
                (due + Duration::minutes(40), rotations[1]),
            ],
        };
        assert_eq!(
            got.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            expected.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            "request #{} ({:?}, {}, opened {})",
            request.id,
            request.fate,
            request.tenant,
            request.at
        );
        for ((when, who), (_, rotation)) in got.iter().zip(&expected) {
            let mut want = on_call(&app, &config, rotation, *when).await;
            want.sort();
            let mut who = who.clone();
            who.sort();
            assert_eq!(who, want, "request #{}: {rotation} at {when}", request.id);
        }
        // A business-hours target lands inside the customer's hours, in
        // their local time (checked here without the library's maths).
        if request.fate != Fate::Answered && request.tenant != "newyork" {
            let (zone, open, close): (chrono_tz::Tz, u32, u32) = match request.tenant {
                "berlin" => (chrono_tz::Europe::Berlin, 9, 17),
                _ => (chrono_tz::Australia::Sydney, 8, 18),
            };
            let local = due.with_timezone(&zone);
            let minutes = local.hour() * 60 + local.minute();
            assert!(
                !matches!(local.weekday(), Weekday::Sat | Weekday::Sun)
                    && minutes > open * 60
                    && minutes <= close * 60
                    && !(request.tenant == "berlin" && local.day() == 20),
                "request #{} is due at {local}, outside hours",
                request.id
            );
        }
        *checked.entry(format!("{:?}", request.fate)).or_insert(0) += 1;
    }
    // Nothing was delivered to anyone paged for an acknowledged request after its ack.
    for request in posted.iter().filter(|r| r.fate == Fate::Acknowledged) {
        let escalation = db::active_escalation(app.server.store().pool(), Some(request.id), None)
            .await
            .unwrap();
        assert!(escalation.is_none(), "request #{} still paging", request.id);
    }
    let acked_dms = app
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.channel.starts_with('D') && m.text.contains("You are paged"))
        .filter(|m| {
            posted.iter().any(|r| {
                r.fate == Fate::Acknowledged
                    && m.text.contains(&format!("Request #{} ", r.id))
                    && m.ts.split('.').next().unwrap().parse::<i64>().unwrap()
                        >= (target(&config, r.tenant, r.at) + Duration::minutes(5)).timestamp()
            })
        })
        .count();
    assert_eq!(
        acked_dms, 0,
        "a page was delivered after its acknowledgement"
    );
    assert_eq!(checked.values().sum::<i32>(), 93, "{checked:?}");
    app.stop().await;
}

/// Two replicas on one PostgreSQL database, both running every worker:
/// each page (a DM, marked with its outbox key) reaches Slack once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_send_each_page_once() {
    let text = month_config();
    let Some(first) = TestApp::spawn_virtual_with(Db::Postgres, start(), &text, None).await else {
        return;
    };
    let second = first.replica(None).await;
    for i in 0..12 {
        let at = start() + Duration::minutes(7 * i);
        first.clock.set(at);
        let ts = format!("{}.{:06}", at.timestamp(), i);
        // Different people, so no message joins another's request.
        let user = format!("U9NYC{i}");
        let body = message("C0NYC", &user, "T9NYC", &ts, None, "API is slow");
        let replica = if i % 2 == 0 { &first } else { &second };
        assert_eq!(replica.event(&body).await.status(), 200);
    }
    // Both replicas race for every due timer and effect for three hours.
    let end = start() + Duration::hours(3);
    loop {
        let next = first.server.workers().next_due().await.unwrap();
        let Some(next) = next.filter(|n| *n <= end) else {
            break;
        };
        first.clock.set(next);
        let (a, b) = tokio::join!(
            first.server.workers().settle(),
            second.server.workers().settle()
        );
        a.unwrap();
        b.unwrap();
    }
    let dms: Vec<_> = first
        .slack
        .messages()
        .into_iter()
        .filter(|m| m.channel.starts_with('D'))
        .collect();
    let mut markers: Vec<_> = dms
        .iter()
        .map(|m| m.marker().unwrap_or_default().to_string())
        .collect();
    markers.sort();
    let before = markers.len();
    markers.dedup();
    assert_eq!(markers.len(), before, "a page was sent twice");
    // 12 requests × 2 rounds × 2 levels, one person on call per level.
    assert_eq!(before, 12 * 4, "every level paged once");
    second.stop_keeping_db().await;
    first.stop().await;
}

on_both_backends!(a_month_of_escalations_pages_every_level_on_time_and_nothing_after_an_ack);
