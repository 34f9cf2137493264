//! The real binary: console piped, `check` on good and bad files, `migrate`,
//! `slack-manifest`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn watchkeeper(args: &[&str], db: &str, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchkeeper"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("WATCHKEEPER_DATABASE_URL", db)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn the_console_speaks_like_slack_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/wk.db", dir.path().display());
    let script = "/wk help\n:as U9EXT@T0ACME\n:in C0ACME\n/wk whoami\n/wk whoami me too\nhello, our ingress is down\n:advance 2h\n:now\n";
    let out = watchkeeper(&["console"], &db, script);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("Watchkeeper commands you can run here"),
        "{stdout}"
    );
    assert!(stdout.contains("Roles here: *customer*"), "{stdout}");
    assert!(
        stdout.contains("You act for customer *ACME Corp*"),
        "{stdout}"
    );
    assert!(stdout.contains("(posted as "), "{stdout}");
    assert!(stdout.contains("(clock is now "), "{stdout}");
    // The console writes to the same store: the database file exists and is migrated.
    assert!(dir.path().join("wk.db").exists());
    let migrate = watchkeeper(&["migrate"], &db, "");
    assert!(
        text(&migrate.stdout).contains("0 migration(s) applied"),
        "{}",
        text(&migrate.stdout)
    );
}

#[test]
fn check_names_the_file_the_field_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/watchkeeper.yaml"
    ))
    .unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        good.replacen("channels: [C0ACME]", "chanels: [C0ACME]", 1),
    )
    .unwrap();
    let db = format!("sqlite://{}/wk.db", dir.path().display());
    let out = watchkeeper(&["--config", bad.to_str().unwrap(), "check"], &db, "");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("chanels"), "{stderr}");
    // `bad.yaml:<line>: …`: the file and the line of the typo.
    let line = good
        .lines()
        .position(|l| l.contains("channels: [C0ACME]"))
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("bad.yaml:{line}: ")), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one clear sentence: {stderr}");

    let missing = watchkeeper(&["--config", "/nonexistent/wk.yaml", "check"], &db, "");
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("cannot read /nonexistent/wk.yaml"));

    let ok = watchkeeper(&["check"], &db, "");
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("ok — 2 customers"),
        "{}",
        text(&ok.stdout)
    );
}

#[test]
fn a_bad_command_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let commands = dir.path().join("commands");
    std::fs::create_dir(&commands).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/commands")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), commands.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        commands.join("help.yaml"),
        "verb: help\nsummary: s\nusage: /wk help\naudience: [everyone]\ntemplates:\n  list: \"{{#each commands}}\"\n  detail: x\n",
    )
    .unwrap();
    let config = dir.path().join("watchkeeper.yaml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/watchkeeper.yaml"),
        &config,
    )
    .unwrap();
    let db = format!("sqlite://{}/wk.db", dir.path().display());
    let out = watchkeeper(&["--config", config.to_str().unwrap(), "check"], &db, "");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("help.yaml"), "{stderr}");
    assert!(stderr.contains("help.list"), "{stderr}");
}

#[test]
fn slack_manifest_is_derived_from_the_commands() {
    let out = watchkeeper(
        &["slack-manifest", "--url", "https://wk.example.com"],
        "sqlite::memory:",
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest: serde_json::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["features"]["slash_commands"][0]["command"], "/wk");
    assert_eq!(
        manifest["settings"]["interactivity"]["request_url"],
        "https://wk.example.com/slack/interactivity"
    );
    let without = watchkeeper(&["slack-manifest"], "sqlite::memory:", "");
    assert!(!without.status.success());
    assert!(text(&without.stderr).contains("--socket-mode"));
}

#[test]
fn a_console_postmortem_is_a_real_file_and_a_broken_template_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/wk.db", dir.path().display());
    let example = std::fs::read_to_string("examples/watchkeeper.yaml")
        .unwrap()
        .replace(
            "paths: [../catalog]",
            concat!("paths: [", env!("CARGO_MANIFEST_DIR"), "/catalog]"),
        );
    let config = dir.path().join("wk.yaml");
    std::fs::write(
        &config,
        format!(
            "{example}\nforges:\n  git:\n    path: {}/forge\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let script =
        ":as U0SAM\n:in C0ACME\n:thread 1772442000.000100\n/wk postmortem Payments outage\n";
    let out = watchkeeper(&["console", "--config", &config], &db, script);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Postmortem PM-1 is open"), "{stdout}");
    let file = dir
        .path()
        .join("forge/platform/postmortems/issues/1-pm-1-payments-outage.md");
    let ticket = std::fs::read_to_string(&file).unwrap();
    assert!(
        ticket.contains("state: open") && ticket.contains("ACME Corp"),
        "{ticket}"
    );

    let broken = dir.path().join("broken.yaml");
    std::fs::write(dir.path().join("pm.md"), "{{#each timeline}}{{text}}").unwrap();
    std::fs::write(
        &broken,
        format!("{example}\npostmortems:\n  template: pm.md\n"),
    )
    .unwrap();
    let out = watchkeeper(
        &["check", "--config", &broken.display().to_string()],
        &db,
        "",
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("postmortems.template"), "{stderr}");
}
