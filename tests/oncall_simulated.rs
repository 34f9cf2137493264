//! Rotations over simulated time on the virtual clock: three rotations in
//! Berlin, New York/Berlin layers and Sydney, across the DST changes of March
//! and April 2026 — every hand-off at the configured local time, once, to the
//! channel and both engineers, with every registered hand-off section in a
//! fixed order; every reminder a day and an hour ahead; an empty shift
//! announced loudly ahead of time; two replicas post each hand-off once.

mod support;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use std::sync::Arc;
use support::{Db, TestApp, TestDb, fake_slack::FakeSlack, virtual_runtime};
use watchkeeper::clock::Clock;
use watchkeeper::oncall::handoff::{HandoffItem, HandoffSection, HandoffSectionData, ShiftChange};
use watchkeeper::store::StoreError;
use watchkeeper::work::Work;

const CONFIG: &str = r#"team: { name: Platform Ops, slack_team_id: T0STAFF, timezone: Europe/Berlin, ops_channel: C0OPS }
roles:
  oncall: { users: [U0ANNA, U0BEN, U0CHEN, U0DANA, U0EVA, U0FRED, U0GINA, U0KAI, U0LIN] }
rotations:
  ops-duty: { timezone: Europe/Berlin, handoff: "Mon 09:00", shift: 1w, start: 2026-01-05, members: [U0ANNA, U0BEN, U0CHEN], channel: C0OPS }
  follow-the-sun:
    channel: C0SRE
    start: 2026-01-05
    layers:
      - { name: emea, timezone: Europe/Berlin, restrict: "07:00-20:00", shift: 1d, members: [U0DANA, U0EVA] }
      - { name: amer, timezone: America/New_York, restrict: "12:00-02:00", shift: 1d, members: [U0FRED, U0GINA] }
  apac: { timezone: Australia/Sydney, handoff: "08:00", shift: 1d, start: 2026-01-05, members: [U0KAI, U0LIN], channel: C0APAC }
"#;

/// A job's part of the hand-off, as another job would contribute it.
struct TestSection {
    name: &'static str,
    title: &'static str,
}

impl HandoffSection for TestSection {
    fn name(&self) -> &'static str {
        self.name
    }

    fn collect<'a>(
        &'a self,
        _work: &'a mut Work,
        change: &'a ShiftChange,
    ) -> BoxFuture<'a, Result<Option<HandoffSectionData>, StoreError>> {
        Box::pin(async move {
            // Says nothing for Sydney, to show an empty section is left out.
            if change.rotation == "apac" && self.name == "changes" {
                return Ok(None);
            }
            Ok(Some(HandoffSectionData {
                title: self.title.into(),
                items: vec![HandoffItem {
                    text: format!(
                        "<!channel> {} shift of {} hours",
                        change.rotation,
                        (change.at - change.shift_started).num_hours()
                    ),
                    link: None,
                    attention: self.name == "requests",
                }],
            }))
        })
    }
}

async fn start(db: Db, config: &str, at: DateTime<Utc>) -> Option<(TestApp, tempfile::TempDir)> {
    let slack = FakeSlack::start(support::BOT_TOKEN).await;
    let test_db = Arc::new(TestDb::create(db).await?);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchkeeper.yaml");
    std::fs::write(&path, config).unwrap();
    let mut settings = support::settings(&test_db, &slack);
    settings.config = Some(path);
    let mut runtime = virtual_runtime(Clock::virtual_at(at), None);
    // Registered out of order: the summary reads requests before changes.
    runtime.handoff_sections = vec![
        Arc::new(TestSection {
            name: "changes",
            title: "Notable changes",
        }),
        Arc::new(TestSection {
            name: "requests",
            title: "Open requests",
        }),
    ];
    Some((TestApp::start(test_db, slack, settings, runtime).await, dir))
}

fn ts_time(ts: &str) -> DateTime<Utc> {
    DateTime::from_timestamp(ts.split('.').next().unwrap().parse().unwrap(), 0).unwrap()
}

fn posts(app: &TestApp, channel: &str, needle: &str) -> Vec<(DateTime<Utc>, String)> {
    app.slack
        .messages_in(channel)
        .into_iter()
        .filter(|m| m.text.contains(needle))
        .map(|m| (ts_time(&m.ts), m.text))
        .collect()
}

fn dm(user: &str) -> String {
    format!("D{}", user.trim_start_matches('U'))
}

/// A local wall-clock time's instant, read straight from the zone database:
/// a time the clocks skip is the moment they jump.
fn local(tz: Tz, date: NaiveDate, hour: u32) -> DateTime<Utc> {
    (0..180)
        .find_map(|minutes| {
            let wall = date.and_hms_opt(hour, 0, 0).unwrap() + Duration::minutes(minutes);
            tz.from_local_datetime(&wall).earliest()
        })
        .unwrap()
        .to_utc()
}

/// Every `hour` o'clock local in `tz` (on `weekday` if given) within `(from, to]`.
fn every(
    tz: Tz,
    hours: &[u32],
    weekday: Option<chrono::Weekday>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    use chrono::Datelike;
    let mut out = Vec::new();
    let mut date = from.date_naive() - Duration::days(1);
    while date <= to.date_naive() + Duration::days(1) {
        if weekday.is_none_or(|d| date.weekday() == d) {
            for hour in hours {
                let at = local(tz, date, *hour);
                if from < at && at <= to {
                    out.push(at);
                }
            }
        }
        date += Duration::days(1);
    }
    out.sort();
    out
}

/// The person a hand-off names as incoming.
fn incoming(text: &str) -> String {
    let after = text
        .split(" → <@")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    after.split('>').next().unwrap().to_string()
}

async fn simulate(db: Db, days: i64) {
    let from = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
    let to = from + Duration::days(days);
    let Some((app, _dir)) = start(db, CONFIG, from).await else {
        return;
    };
    let began = std::time::Instant::now();
    app.advance(to - from).await;
    eprintln!(
        "{db:?}: {days} simulated days of three rotations in {:.2?}",
        began.elapsed()
    );
    // Every message once, by channel (the checks below ask thousands of times).
    let mut by_channel: std::collections::HashMap<String, Vec<(DateTime<Utc>, String)>> =
        std::collections::HashMap::new();
    for m in app.slack.messages() {
        by_channel
            .entry(m.channel.clone())
            .or_default()
            .push((ts_time(&m.ts), m.text));
    }
    let posts = |channel: &str, needle: &str| -> Vec<(DateTime<Utc>, String)> {
        by_channel
            .get(channel)
            .map(|all| {
                all.iter()
                    .filter(|(_, t)| t.contains(needle))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    let berlin = chrono_tz::Europe::Berlin;
    let new_york = chrono_tz::America::New_York;
    let sydney = chrono_tz::Australia::Sydney;
    let cases = [
        (
            "ops-duty",
            "C0OPS",
            every(berlin, &[9], Some(chrono::Weekday::Mon), from, to),
        ),
        // AMER (the higher layer) holds 12:00–02:00 New York; EMEA the rest.
        (
            "follow-the-sun",
            "C0SRE",
            every(new_york, &[2, 12], None, from, to),
        ),
        ("apac", "C0APAC", every(sydney, &[8], None, from, to)),
    ];
    for (rotation, channel, expected) in cases {
        let handoffs = posts(channel, &format!("*{rotation} hand-off*"));
        let times: Vec<DateTime<Utc>> = handoffs.iter().map(|(at, _)| *at).collect();
        assert_eq!(
            times, expected,
            "{rotation}: every hand-off once, at the local time"
        );
        assert!(expected.len() >= days as usize / 7, "{rotation}");
        for (at, text) in &handoffs {
            // The sections, in the fixed order, values escaped.
            let requests = text
                .find("*Open requests*")
                .unwrap_or_else(|| panic!("{text}"));
            assert!(text.contains(":warning: &lt;!channel&gt;"), "{text}");
            if rotation == "apac" {
                assert!(!text.contains("Notable changes"), "{text}");
            } else {
                assert!(text.find("*Notable changes*").unwrap() > requests, "{text}");
            }
            // Both engineers got it by DM.
            let user = incoming(text);
            let dms = posts(
                &dm(&user),
                &format!("*{rotation} hand-off* at <!date^{}^", at.timestamp()),
            );
            assert_eq!(dms.len(), 1, "{rotation} {at}: {user}");
            // And were reminded a day and an hour before.
            for lead in [Duration::days(1), Duration::hours(1)] {
                if *at - lead <= from {
                    continue;
                }
                let reminders: Vec<DateTime<Utc>> = posts(
                    &dm(&user),
                    &format!(
                        "Reminder: your *{rotation}* shift starts <!date^{}^",
                        at.timestamp()
                    ),
                )
                .into_iter()
                .map(|(t, _)| t)
                .filter(|t| *t == *at - lead)
                .collect();
                assert_eq!(
                    reminders.len(),
                    1,
                    "{rotation} {at}: {user} reminded {lead} ahead"
                );
            }
        }
        if rotation == "follow-the-sun" {
            for (at, text) in &handoffs {
                let hour = at.with_timezone(&new_york).format("%H").to_string();
                let user = incoming(text);
                let amer = ["U0FRED", "U0GINA"].contains(&user.as_str());
                assert_eq!(amer, hour == "12", "{at}: {text}");
            }
        }
    }
    // Anna's ops-duty weeks: reminders only for her own shifts, each once.
    let anna = posts("D0ANNA", "Reminder: your *ops-duty*");
    let mut unique = anna.clone();
    unique.dedup();
    assert_eq!(anna, unique, "no reminder twice");
    app.stop().await;
}

async fn a_simulated_month_across_dst_hands_off_at_local_time(db: Db) {
    // 2026-03-02 to 2026-04-08: New York moves on 8 March, Berlin on 29 March,
    // Sydney on 5 April.
    simulate(db, 37).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_year_hands_off_at_local_time() {
    simulate(Db::Sqlite, 365).await;
}

async fn an_empty_shift_is_announced_loudly_ahead_of_time(db: Db) {
    let config = r#"team: { name: Platform Ops, slack_team_id: T0STAFF, timezone: Europe/Berlin, ops_channel: C0OPS }
rotations:
  desk: { timezone: Europe/Berlin, handoff: "09:00", shift: 1d, start: 2026-03-02, restrict: "Mon-Fri 00:00-24:00", members: [U0ANNA, U0BEN], channel: C0DESK }
"#;
    let from = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
    let Some((app, _dir)) = start(db, config, from).await else {
        return;
    };
    app.advance(Duration::days(8)).await;
    let berlin = chrono_tz::Europe::Berlin;
    // Nobody from Saturday 00:00 to Monday 00:00 Berlin.
    let gap = local(berlin, NaiveDate::from_ymd_opt(2026, 3, 7).unwrap(), 0);
    let warnings: Vec<DateTime<Utc>> = posts(&app, "C0DESK", "Nobody will be on call for desk")
        .into_iter()
        .map(|(at, text)| {
            assert!(text.starts_with("<!here>"), "{text}");
            at
        })
        .collect();
    assert_eq!(
        warnings,
        vec![gap - Duration::days(1), gap - Duration::hours(1)]
    );
    let empty = posts(&app, "C0DESK", "desk: nobody is on call from");
    assert_eq!(empty.len(), 1, "{empty:?}");
    assert_eq!(empty[0].0, gap);
    assert!(empty[0].1.starts_with("<!here>"), "{empty:?}");
    // The outgoing engineer still gets the hand-off.
    assert_eq!(
        posts(&app, "D0BEN", "desk: nobody is on call").len()
            + posts(&app, "D0ANNA", "desk: nobody is on call").len(),
        1
    );
    app.stop().await;
}

async fn two_replicas_post_each_hand_off_once(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, support::monday_morning()).await else {
        return;
    };
    let replica = app.replica(None).await;
    // Monday 2026-03-09 09:00 Berlin: Chen hands ops-duty to Anna.
    let at = Utc.with_ymd_and_hms(2026, 3, 9, 8, 0, 0).unwrap();
    app.advance(at - Duration::minutes(1) - app.clock.now())
        .await;
    app.clock.set(at);
    let (a, b) = tokio::join!(app.settle(), replica.settle());
    assert!(a + b > 0);
    app.settle().await;
    let handoffs = posts(&app, "C0OPS", "*ops-duty hand-off*");
    assert_eq!(handoffs.len(), 1, "{handoffs:?}");
    assert_eq!(posts(&app, "D0ANNA", "*ops-duty hand-off*").len(), 1);
    assert_eq!(posts(&app, "D0CHEN", "*ops-duty hand-off*").len(), 1);
    replica.stop_keeping_db().await;
    app.stop().await;
}

on_both_backends!(
    a_simulated_month_across_dst_hands_off_at_local_time,
    an_empty_shift_is_announced_loudly_ahead_of_time,
    two_replicas_post_each_hand_off_once,
);
