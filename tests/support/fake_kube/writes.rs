//! The fake API server's writes: `PATCH` with a JSON merge patch (RFC 7386;
//! a strategic merge patch is applied the same way, which is what it does for
//! the maps and scalars Watchkeeper patches) of an object, and of the `scale`
//! subresource of Deployments and StatefulSets (only `spec.replicas`, as the
//! API server allows), answering with the patched object or an
//! `autoscaling/v1` `Scale`, or `404`/`415`/`422` Status objects like the API
//! server's.

use super::{Shared, route, status};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

pub(super) async fn patch(shared: &Arc<Shared>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !matches!(
        content_type.as_str(),
        "application/merge-patch+json" | "application/strategic-merge-patch+json"
    ) {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got {content_type})"
            ),
        );
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), 1 << 20).await else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "cannot read the body",
        );
    };
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the patch is not JSON",
        );
    };
    let (object_path, scale) = match path.strip_suffix("/scale") {
        Some(object) => (object.to_string(), true),
        None => (path.clone(), false),
    };
    let mut object = {
        let world = shared.world();
        let Some(target) = route(&world, &object_path) else {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("the server could not find the requested resource ({path})"),
            );
        };
        let ty = world.types[target.ty].clone();
        let Some(name) = target.name.clone() else {
            return status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "a collection cannot be patched",
            );
        };
        if scale && !matches!(ty.kind.as_str(), "Deployment" | "StatefulSet") {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{} has no scale subresource", ty.plural),
            );
        }
        let key = (
            target.ty,
            target.namespace.clone().unwrap_or_default(),
            name.clone(),
        );
        match world.objects.get(&key) {
            Some(object) => object.clone(),
            None => {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{}.{} \"{name}\" not found", ty.plural, ty.group),
                );
            }
        }
    };
    if scale {
        let Some(replicas) = patch.pointer("/spec/replicas").and_then(Value::as_i64) else {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "Scale.autoscaling \"\" is invalid: spec.replicas: Required value",
            );
        };
        object["spec"]["replicas"] = replicas.into();
    } else {
        merge(&mut object, &patch);
    }
    let version = shared.put_json(object.clone());
    if !scale {
        object["metadata"]["resourceVersion"] = version.to_string().into();
        return axum::Json(object).into_response();
    }
    let metadata = &object["metadata"];
    axum::Json(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": version.to_string(),
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": { "replicas": object["spec"]["replicas"] },
        "status": { "replicas": object["status"]["replicas"], "selector": "" },
    }))
    .into_response()
}

impl super::FakeKube {
    /// The object `kind` (`apps/v1` `Deployment`…) `namespace/name` as stored.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let world = self.shared.world();
        let ty = world.type_by_kind(api_version, kind)?;
        world
            .objects
            .get(&(ty, namespace.to_string(), name.to_string()))
            .cloned()
    }
}
