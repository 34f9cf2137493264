//! Rendering a playbook's templates: Handlebars in strict mode (a misspelt
//! `{{params.x}}` is an error, found by `watchkeeper check`), with values
//! written as they are — file contents, paths and URLs are not Slack text.
//! What a template may see is `params`, `run`, `playbook`, and in `http`
//! actions `secrets`, whose values are stand-ins until the moment of the call.
//!
//! A secret never reaches a message, a log line or the store: templates see
//! [`secret_token`]s (which parameter values, being one line without control
//! characters, can never forge), the dry run shows them as `[secret NAME]`,
//! and the HTTP sink swaps in the environment's value only to send.

use handlebars::Handlebars;
use serde_json::{Value, json};
use std::sync::LazyLock;

static ENGINE: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut engine = Handlebars::new();
    engine.set_strict_mode(true);
    engine.register_escape_fn(handlebars::no_escape);
    engine
});

/// Renders one template against `data`.
pub fn render(template: &str, data: &Value) -> Result<String, String> {
    ENGINE
        .render_template(template, data)
        .map_err(|e| match e.reason() {
            handlebars::RenderErrorReason::MissingVariable(Some(name)) => {
                format!("`{{{{{name}}}}}` is not something a playbook template can use (params, run, playbook)")
            }
            _ => crate::dispatch::templates::render_error(&e),
        })
}

/// What every template sees for one run.
pub fn context(
    params: &Value,
    run_id: i64,
    requested_by: &str,
    trigger: &str,
    name: &str,
    title: &str,
) -> Value {
    json!({
        "params": params,
        "run": { "id": run_id, "requested_by": requested_by, "trigger": trigger },
        "playbook": { "name": name, "title": title },
    })
}

/// The context with `secrets` added, for `http` actions.
pub fn with_secrets(context: &Value, secrets: &[String]) -> Value {
    let mut context = context.clone();
    let map: serde_json::Map<String, Value> = secrets
        .iter()
        .map(|name| (name.clone(), Value::String(secret_token(name))))
        .collect();
    context["secrets"] = Value::Object(map);
    context
}

const TOKEN_START: char = '\u{1}';
const TOKEN_END: char = '\u{2}';

/// The stand-in a template renders for secret `name`.
pub fn secret_token(name: &str) -> String {
    format!("{TOKEN_START}secret:{name}{TOKEN_END}")
}

/// Replaces every secret stand-in in `text` by what `value` says for its name.
pub fn fill_secrets(text: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(TOKEN_START) {
        out.push_str(&rest[..start]);
        let after = &rest[start + TOKEN_START.len_utf8()..];
        match (after.strip_prefix("secret:"), after.find(TOKEN_END)) {
            (Some(_), Some(end)) => {
                let name = &after["secret:".len()..end];
                out.push_str(&value(name));
                rest = &after[end + TOKEN_END.len_utf8()..];
            }
            _ => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `text` as people may see it: secret stand-ins named, never filled.
pub fn shown(text: &str) -> String {
    fill_secrets(text, |name| format!("[secret {name}]"))
}

/// Removes `secrets`' values from `text` (responses, errors) before it is
/// logged, stored or posted.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for value in secrets.iter().filter(|v| v.len() >= 4) {
        out = out.replace(value.as_str(), "[redacted]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_and_unescaped() {
        let data = context(&json!({ "tag": "a&b<c>" }), 7, "U1", "person", "x", "X");
        assert_eq!(
            render("v={{params.tag}} #{{run.id}}", &data).unwrap(),
            "v=a&b<c> #7"
        );
        let err = render("{{params.tga}}", &data).unwrap_err();
        assert!(err.contains("params.tga"), "{err}");
    }

    #[test]
    fn secrets_are_stand_ins_until_sent() {
        let data = with_secrets(
            &context(&json!({}), 1, "U1", "person", "x", "X"),
            &["CERT_TOKEN".into()],
        );
        let header = render("Bearer {{secrets.CERT_TOKEN}}", &data).unwrap();
        assert!(!header.contains("hunter2"));
        assert_eq!(shown(&header), "Bearer [secret CERT_TOKEN]");
        assert_eq!(
            fill_secrets(&header, |_| "hunter2".into()),
            "Bearer hunter2"
        );
        assert_eq!(
            redact("token hunter2 refused", &["hunter2".into()]),
            "token [redacted] refused"
        );
        let without = render(
            "{{secrets.CERT_TOKEN}}",
            &context(&json!({}), 1, "U1", "p", "x", "X"),
        );
        assert!(without.is_err(), "secrets exist only in http actions");
    }
}
