//! HTTP checks in tests: a health endpoint whose answer the test flips, and
//! the example configuration over a catalog of the test's own, checks on.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A health endpoint on a random port answering `200 ok` while the flag is
/// true and `503 down` otherwise; returns its URL and the flag.
pub async fn health_endpoint() -> (String, Arc<AtomicBool>) {
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = healthy.clone();
    let router = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || {
            let flag = flag.clone();
            async move {
                if flag.load(Ordering::SeqCst) {
                    (axum::http::StatusCode::OK, "ok")
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (url, healthy)
}

/// The example configuration reading its catalog from `catalog`, with the
/// declared HTTP checks running.
pub fn config_with_catalog(catalog: &Path) -> String {
    let example = super::example_config();
    example[example.find("team:").unwrap()..]
        .replace(
            &format!("paths: [{}]", super::repo_path("catalog").display()),
            &format!("paths: [{}]", catalog.display()),
        )
        .replace("run_checks: false", "run_checks: true")
}
