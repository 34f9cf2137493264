//! The store's contract, run on SQLite and on PostgreSQL alike.

mod support;

use chrono::{Duration, TimeZone, Utc};
use support::{Db, TestDb};
use watchkeeper::store::Store;
use watchkeeper::store::audit::AuditEntry;
use watchkeeper::store::health::{self, HealthEvent};
use watchkeeper::store::timers::{NewTimer, Queue};

async fn migrations_apply_once_and_readiness_follows(db: Db) {
    let Some(db) = TestDb::create(db).await else {
        return;
    };
    let store = Store::connect(&db.url).await.unwrap();
    assert!(!store.is_ready().await, "not ready before migrations");
    assert!(store.migrate().await.unwrap() >= 1);
    assert_eq!(
        store.migrate().await.unwrap(),
        0,
        "second run applies nothing"
    );
    assert!(store.is_ready().await);
    store.close().await;
    db.drop_db().await;
}

async fn inbox_keys_are_recorded_once(db: Db) {
    let Some(db) = TestDb::create(db).await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
    let row = |key: &str| NewTimer {
        queue: Queue::Inbox,
        kind: "slack.inbound".into(),
        key: key.into(),
        group: None,
        lane: Some("channel:C0ACME".into()),
        payload: serde_json::json!({}),
        due_at: t0,
    };
    assert!(
        store
            .insert_timer(&row("slack:event:Ev1"), t0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_timer(&row("slack:event:Ev1"), t0 + Duration::seconds(5))
            .await
            .unwrap(),
        "a redelivery is recognised"
    );
    // Concurrent redeliveries: exactly one wins.
    let results = futures::future::join_all(
        (0..8).map(|_| async { store.insert_timer(&row("slack:event:Ev3"), t0).await }),
    )
    .await;
    assert_eq!(
        results.into_iter().filter(|r| *r.as_ref().unwrap()).count(),
        1
    );
    // One lane runs in order: only its first row is claimable until it is done.
    let claimed = store
        .claim_timers(Queue::Inbox, "w1", t0, t0 + Duration::minutes(2), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].key, "slack:event:Ev1");
    store.close().await;
    db.drop_db().await;
}

async fn audit_entries_round_trip(db: Db) {
    let Some(db) = TestDb::create(db).await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 30, 0).unwrap();
    let entry = |n: usize| AuditEntry {
        at: at + Duration::seconds(n as i64),
        actor_user: format!("U{n}"),
        actor_team: n.is_multiple_of(2).then(|| "T0STAFF".to_string()),
        roles: "support".into(),
        tenant: Some("acme".into()),
        channel: None,
        action: "command:help".into(),
        detail: "help 'quoted' \"text\" ünïcode".into(),
        outcome: "ok".into(),
        reason: None,
    };
    let entries: Vec<_> = (0..3).map(entry).collect();
    store.append_audit(&entries).await.unwrap();
    let read = store.recent_audit(10).await.unwrap();
    assert_eq!(read.len(), 3);
    assert_eq!(read[0], entries[2], "newest first, every field intact");
    assert_eq!(read[2], entries[0]);
    store.close().await;
    db.drop_db().await;
}

async fn the_health_log_replays_to_the_same_state_after_housekeeping(db: Db) {
    let Some(db) = TestDb::create(db).await else {
        return;
    };
    let store = Store::open(&db.url).await.unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let event = |source: &str, rag: Option<&str>, minutes: i64| HealthEvent {
        id: 0,
        component: "acme-orders-db".into(),
        source: source.into(),
        rag: rag.map(str::to_string),
        reason: "r".into(),
        since: t0 + Duration::minutes(minutes),
        link: None,
    };
    let mut tx = store.begin().await.unwrap();
    for e in [
        event("http:a", Some("green"), 0),
        event("http:a", Some("red"), 1),
        event("http:a", Some("green"), 2),
        event("alert:x", Some("red"), 3),
        event("alert:x", None, 4),
        event("http:b", Some("amber"), 5),
    ] {
        health::append(&mut tx, &e).await.unwrap();
    }
    tx.commit().await.unwrap();
    let latest = |events: &[HealthEvent]| {
        let mut last = std::collections::BTreeMap::new();
        for e in events {
            last.insert(e.source.clone(), e.rag.clone());
        }
        last
    };
    let before = store.health_events_after(0, 100).await.unwrap();
    assert_eq!(before.len(), 6);
    assert!(before.windows(2).all(|w| w[0].id < w[1].id), "in log order");
    let mut tx = store.begin().await.unwrap();
    let purged = health::purge_superseded(tx.conn(), t0 + Duration::days(7))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(purged, 3, "two flaps of http:a and the alert's firing");
    let after = store.health_events_after(0, 100).await.unwrap();
    assert_eq!(latest(&after), latest(&before), "same final state");
    store.close().await;
    db.drop_db().await;
}

on_both_backends!(
    the_health_log_replays_to_the_same_state_after_housekeeping,
    migrations_apply_once_and_readiness_follows,
    inbox_keys_are_recorded_once,
    audit_entries_round_trip,
);

#[tokio::test]
async fn unsupported_urls_say_what_to_use() {
    let err = Store::connect("mysql://localhost/wk").await.unwrap_err();
    assert!(
        err.to_string().contains("sqlite:// or postgres://"),
        "{err}"
    );
}
