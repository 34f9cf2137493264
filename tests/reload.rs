//! SIGHUP reloads configuration and commands without a restart: new wording
//! and roles apply to the next request, a broken file is refused and the
//! running configuration kept; the real binary reloads on the signal and
//! stops cleanly on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use support::{Db, TestApp, monday_morning, repo_path};

fn copy_commands(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(repo_path("commands")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn text_of(reply: &serde_json::Value) -> String {
    reply["text"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_wording_applies_after_a_reload_and_a_broken_file_changes_nothing() {
    let app = TestApp::spawn_virtual_with(Db::Sqlite, monday_morning(), "# reloadable", None)
        .await
        .unwrap();
    let config = app.settings.config.clone().unwrap();
    let commands = config.parent().unwrap().join("commands");
    copy_commands(&commands);
    let whoami = commands.join("whoami.yaml");
    let original = std::fs::read_to_string(&whoami).unwrap();
    std::fs::write(
        &whoami,
        original.replace("You are <@{{user}}>", "Hello <@{{user}}>, you are"),
    )
    .unwrap();

    let before = app.command("U0SAM", "T0STAFF", "C0OPS", "whoami").await;
    assert!(text_of(&before).starts_with("You are"), "{before}");
    app.server.reload(&app.settings).await.unwrap();
    let after = app.command("U0SAM", "T0STAFF", "C0OPS", "whoami").await;
    assert!(text_of(&after).starts_with("Hello <@U0SAM>"), "{after}");

    // A broken template is refused with a reason; the running wording stays.
    std::fs::write(&whoami, original.replace("{{user}}", "{{#if user}")).unwrap();
    let err = app
        .server
        .reload(&app.settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("whoami"), "{err}");
    let still = app.command("U0SAM", "T0STAFF", "C0OPS", "whoami").await;
    assert!(text_of(&still).starts_with("Hello <@U0SAM>"), "{still}");
    app.stop().await;
}

#[test]
fn the_binary_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchkeeper"))
        .arg("serve")
        .current_dir(dir.path())
        .env(
            "WATCHKEEPER_DATABASE_URL",
            format!("sqlite://{}/wk.db", dir.path().display()),
        )
        .env("WATCHKEEPER_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env_remove("SLACK_BOT_TOKEN")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut wait_for = |needle: &str| -> String {
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains(needle) {
                return line;
            }
        }
        panic!("the log never said {needle:?}");
    };
    wait_for("watchkeeper is ready");
    let signal = |name: &str| {
        assert!(
            Command::new("kill")
                .args([name, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-HUP");
    wait_for("configuration and commands reloaded");
    signal("-TERM");
    wait_for("shutting down");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_check_declared_after_a_reload_runs_without_a_restart() {
    let (url, _healthy) = support::checks::health_endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("edge.yaml");
    std::fs::write(&catalog, "components:\n  - id: edge-api\n").unwrap();
    let config = support::checks::config_with_catalog(&catalog);
    let app = TestApp::spawn_virtual_with(Db::Sqlite, monday_morning(), &config, None)
        .await
        .unwrap();
    let status = || app.command("U0ANNA", "T0STAFF", "C0OPS", "status edge-api");
    app.advance(chrono::Duration::minutes(1)).await;
    assert!(text_of(&status().await).contains("is *unknown*"));

    std::fs::write(
        &catalog,
        format!(
            "components:\n  - id: edge-api\n    checks:\n      - {{ url: '{url}', interval: 30s, timeout: 2s, body_contains: ok }}\n"
        ),
    )
    .unwrap();
    app.server.reload(&app.settings).await.unwrap();
    app.advance(chrono::Duration::seconds(30)).await;
    let after = text_of(&status().await);
    assert!(
        after.contains("is *green*") && after.contains("HTTP 200"),
        "{after}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_added_by_a_reload_fire_without_a_restart() {
    let app = TestApp::spawn_virtual_with(Db::Sqlite, monday_morning(), "# reloadable", None)
        .await
        .unwrap();
    let config = app.settings.config.clone().unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\nannouncements:\n  - {{ name: standup, cron: \"30 10 * * *\", timezone: Europe/Berlin, channel: C0OPS, text: \"Stand-up in five minutes\" }}\n"
        ),
    )
    .unwrap();
    app.server.reload(&app.settings).await.unwrap();
    // Monday 09:00 UTC is 10:00 in Berlin: the stand-up is due at 10:30.
    app.advance(chrono::Duration::hours(1)).await;
    let posted: Vec<_> = app
        .slack
        .messages_in("C0OPS")
        .into_iter()
        .filter(|m| m.text.contains("Stand-up in five minutes"))
        .collect();
    assert_eq!(
        posted.len(),
        1,
        "the announcement added by the reload fired once"
    );

    // Removed again: it stops.
    std::fs::write(&config, &text).unwrap();
    app.server.reload(&app.settings).await.unwrap();
    app.advance(chrono::Duration::days(1)).await;
    let posted = app
        .slack
        .messages_in("C0OPS")
        .into_iter()
        .filter(|m| m.text.contains("Stand-up in five minutes"))
        .count();
    assert_eq!(posted, 1, "a schedule removed by a reload does not fire");
    app.stop().await;
}
