//! `POST /webhooks/alertmanager`: Prometheus Alertmanager (webhook version 4).
//!
//! With `ALERTMANAGER_TOKEN` set, a delivery must carry `Authorization:
//! Bearer <token>` (Alertmanager's `http_config.authorization`). Each alert
//! whose component label names a catalog component becomes a health event;
//! the others are counted and ignored. Alertmanager retries on 5xx, so a
//! store failure answers 503.

use super::HttpState;
use crate::catalog::alertmanager;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

fn authorised(expected: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Constant time in the token's length.
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Handles one delivery.
pub async fn webhook(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorised(state.alertmanager_token.as_deref(), &headers) {
        tracing::warn!("Alertmanager webhook refused: missing or wrong bearer token");
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "bearer token required" })),
        )
            .into_response();
    }
    let env = state.ingress.dispatcher().env();
    let delivery = match alertmanager::parse(&body, &env.config.catalog.alertmanager) {
        Ok(delivery) => delivery,
        Err(err) => {
            tracing::warn!(error = %err, "Alertmanager payload refused");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "message": err.to_string() })),
            )
                .into_response();
        }
    };
    let store = state.store.clone();
    let recorded = async {
        let mut tx = store.begin().await?;
        let now = state.clock.now();
        let (matched, unmatched, last) = env.catalog.record_alerts(&mut tx, &delivery, now).await?;
        if let Some(event) = last {
            let due = now + env.config.catalog.debounce.as_chrono();
            crate::catalog::notify::arm_evaluation(&mut tx, event, due, now).await?;
        }
        // Paging alerts open (or resolve) incidents in the same transaction.
        let mut work = crate::work::Work::with_tx(store.clone(), now, tx);
        crate::support::incidents::record(&mut work, &crate::support::Desk::new(&env), &delivery)
            .await?;
        crate::playbooks::triggers::on_alerts(&mut work, &env.playbooks, &delivery).await?;
        work.commit().await?;
        env.catalog.sync(&store).await?;
        Ok::<_, crate::support::SupportError>((matched, unmatched))
    }
    .await;
    match recorded {
        Ok((matched, unmatched)) => {
            if unmatched > 0 {
                tracing::info!(
                    matched,
                    unmatched,
                    label = env.config.catalog.alertmanager.component_label,
                    "alerts without a catalog component were ignored"
                );
            }
            Json(json!({ "matched": matched, "unmatched": unmatched })).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot record alerts");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "message": "try again later" })),
            )
                .into_response()
        }
    }
}
