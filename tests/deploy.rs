//! `deploy/`: the files that are generated from the binary stay what the
//! binary prints, and the configuration the Kubernetes base ships is one the
//! binary accepts. (`deploy/check` validates the Kubernetes manifests and
//! builds the Kustomize overlays.)

use std::path::PathBuf;
use std::process::{Command, Output};

/// The configuration mounted into the pods by the Kustomize base.
const DEPLOY_CONFIG: &str = "deploy/kubernetes/base/config/watchkeeper.yaml";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary in the repository root with the deployment's configuration,
/// as the pod does (no `commands/` beside it: the embedded copy is used).
fn watchkeeper(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_watchkeeper"))
        .current_dir(repo())
        .arg("--config")
        .arg(DEPLOY_CONFIG)
        .args(args)
        .env_remove("WATCHKEEPER_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("run watchkeeper");
    assert!(
        output.status.success(),
        "watchkeeper {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Compares a committed file with what the binary prints, and says how to
/// regenerate it when they differ.
fn assert_generated(path: &str, args: &[&str]) {
    let printed = String::from_utf8(watchkeeper(args).stdout).expect("utf-8");
    let committed = read(path);
    assert!(
        committed == printed,
        "{path} is not what `watchkeeper --config {DEPLOY_CONFIG} {}` prints; regenerate it:\n  \
         cargo run -q -- --config {DEPLOY_CONFIG} {} > {path}\n--- committed\n{committed}\n--- printed\n{printed}",
        args.join(" "),
        args.join(" "),
    );
}

#[test]
fn http_slack_app_manifest_is_what_the_binary_prints() {
    assert_generated(
        "deploy/slack/app-manifest-http.yaml",
        &["slack-manifest", "--url", "https://watchkeeper.example.com"],
    );
}

#[test]
fn socket_mode_slack_app_manifest_is_what_the_binary_prints() {
    assert_generated(
        "deploy/slack/app-manifest-socket-mode.yaml",
        &["slack-manifest", "--socket-mode"],
    );
}

#[test]
fn playbook_crd_is_what_the_binary_prints() {
    assert_generated(
        "deploy/kubernetes/crd/playbooks.watchkeeper.dev.yaml",
        &["crd"],
    );
}

#[test]
fn deployment_configuration_passes_check() {
    let output = watchkeeper(&["check"]);
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains(": ok"), "{summary}");
}

#[test]
fn container_runs_what_the_deployment_runs() {
    // The image's default command and the Deployment's args both serve the
    // mounted configuration, on the port the Service and probes use.
    let dockerfile = read("deploy/Dockerfile");
    let deployment = read("deploy/kubernetes/base/deployment.yaml");
    let mount = "/etc/watchkeeper/watchkeeper.yaml";
    assert!(
        dockerfile.contains(&format!(r#"CMD ["serve", "--config", "{mount}"]"#)),
        "Dockerfile CMD must serve {mount}"
    );
    assert!(
        deployment.contains(&format!(r#"args: ["serve", "--config", "{mount}"]"#)),
        "deployment.yaml args must serve {mount}"
    );
    for port in ["WATCHKEEPER_LISTEN=0.0.0.0:3000", "EXPOSE 3000"] {
        assert!(dockerfile.contains(port), "Dockerfile lacks {port}");
    }
    assert!(deployment.contains("containerPort: 3000"));
    assert!(deployment.contains(r#"value: "0.0.0.0:3000""#));
}
