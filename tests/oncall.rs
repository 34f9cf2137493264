//! On-call end to end: the roster other jobs ask (layers, overrides, read in
//! the asker's transaction) on SQLite and PostgreSQL.

mod support;

use chrono::{DateTime, Duration, Utc};
use support::{Db, TestApp, monday_morning};
use watchkeeper::ids::UserId;
use watchkeeper::store::oncall::{NewOverride, insert_override};
use watchkeeper::work::Work;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn users(names: &[&str]) -> Vec<UserId> {
    names.iter().map(|n| UserId::from(*n)).collect()
}

async fn the_roster_applies_layers_and_overrides_inside_the_askers_work(db: Db) {
    let Some(app) = TestApp::spawn_virtual(db, monday_morning()).await else {
        return;
    };
    let env = app.server.dispatcher().env();
    let config = &env.config;
    let on = |at: &str| utc(at);
    // Follow-the-sun: EMEA from 07:00 Berlin (06:00 UTC), AMER (higher) from
    // 12:00 New York (17:00 UTC) until 02:00 New York (07:00 UTC).
    let sre = |at| {
        let config = config.clone();
        let mut work = Work::new(app.server.store().clone(), app.clock.now());
        async move {
            watchkeeper::oncall::on_call(&mut work, &config, "sre-follow-the-sun", at)
                .await
                .unwrap()
        }
    };
    assert_eq!(sre(on("2026-03-02T10:00:00Z")).await.len(), 1);
    let emea = sre(on("2026-03-02T10:00:00Z")).await;
    assert!(
        emea == users(&["U0DANA"]) || emea == users(&["U0EVA"]),
        "{emea:?}"
    );
    let amer = sre(on("2026-03-02T18:00:00Z")).await;
    assert!(
        amer == users(&["U0FRED"]) || amer == users(&["U0GINA"]),
        "{amer:?}"
    );
    assert_eq!(
        sre(on("2026-03-03T06:30:00Z")).await,
        amer,
        "AMER wins the overlap"
    );

    let mut work = Work::new(app.server.store().clone(), app.clock.now());
    // The example: ops-duty weekly from Monday 2026-01-05 09:00 Berlin, Anna
    // first; 2026-03-02 is eight weeks on: Chen's week (09:00 CET = 08:00 UTC).
    assert_eq!(
        watchkeeper::oncall::on_call(&mut work, config, "ops-duty", on("2026-03-02T08:00:00Z"))
            .await
            .unwrap(),
        users(&["U0CHEN"])
    );
    assert_eq!(
        watchkeeper::oncall::on_call(&mut work, config, "ops-duty", on("2026-03-02T07:59:00Z"))
            .await
            .unwrap(),
        users(&["U0BEN"])
    );
    // An override recorded in this work is seen by the same work at once.
    let tx = work.tx().await.unwrap();
    insert_override(
        tx.conn(),
        &NewOverride {
            rotation: "ops-duty".into(),
            user: "U0ANNA".into(),
            start: on("2026-03-03T17:00:00Z"),
            end: on("2026-03-04T07:00:00Z"),
            created_by: "U0CHEN".into(),
            swap_id: None,
        },
        app.clock.now(),
    )
    .await
    .unwrap();
    let night = on("2026-03-03T23:00:00Z");
    assert_eq!(
        watchkeeper::oncall::on_call(&mut work, config, "ops-duty", night)
            .await
            .unwrap(),
        users(&["U0ANNA"])
    );
    assert_eq!(
        watchkeeper::oncall::on_call(&mut work, config, "ops-duty", night + Duration::hours(8))
            .await
            .unwrap(),
        users(&["U0CHEN"]),
        "back to the rotation when the override ends"
    );
    let unknown = watchkeeper::oncall::on_call(&mut work, config, "nope", night).await;
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("no rotation `nope`")
    );
    work.commit().await.unwrap();
    app.stop().await;
}

on_both_backends!(the_roster_applies_layers_and_overrides_inside_the_askers_work);
