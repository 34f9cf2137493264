//! Reply wording: Handlebars templates from `commands/*.yaml`, in strict mode,
//! with every value escaped for Slack mrkdwn.
//!
//! A template refers to `{{value}}` (escaped) for anything from a user or an
//! external system; the rare trusted mrkdwn built in code uses `{{{value}}}`.

use crate::chat::mrkdwn;
use handlebars::Handlebars;
use serde::Serialize;

/// The compiled templates, named `<verb>.<name>` (or `common.<name>`).
#[derive(Clone)]
pub struct Templates {
    registry: Handlebars<'static>,
}

/// Why a template could not be compiled or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template text is not valid Handlebars.
    #[error("template {name}: {message}")]
    Compile {
        /// `<verb>.<name>`.
        name: String,
        /// Handlebars' message, with line and column.
        message: String,
    },
    /// Rendering failed (in strict mode: a value the template needs is missing).
    #[error("template {name}: {message}")]
    Render {
        /// `<verb>.<name>`.
        name: String,
        /// Handlebars' message.
        message: String,
    },
}

/// A Handlebars syntax error in one sentence: the reason and where (its
/// `Display` draws the template over several lines).
pub fn syntax_error(e: &handlebars::TemplateError) -> String {
    let reason = one_line(&e.reason().to_string());
    match e.pos() {
        Some((line, column)) => format!("{reason} (template line {line}, column {column})"),
        None => reason,
    }
}

/// A rendering error in one sentence (a syntax error inside it as [`syntax_error`]).
pub fn render_error(e: &handlebars::RenderError) -> String {
    match e.reason() {
        handlebars::RenderErrorReason::TemplateError(inner) => syntax_error(inner),
        _ => one_line(&e.to_string()),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Default for Templates {
    fn default() -> Self {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(mrkdwn::escape);
        Self { registry }
    }
}

impl Templates {
    /// Compiles and registers one template.
    pub fn register(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        self.registry
            .register_template_string(name, text)
            .map_err(|e| TemplateError::Compile {
                name: name.to_string(),
                message: syntax_error(&e),
            })
    }

    /// True when a template of that name exists.
    pub fn has(&self, name: &str) -> bool {
        self.registry.has_template(name)
    }

    /// Renders a template with `data`; trailing white space is trimmed.
    pub fn render<T: Serialize>(&self, name: &str, data: &T) -> Result<String, TemplateError> {
        self.registry
            .render(name, data)
            .map(|text| text.trim_end().to_string())
            .map_err(|e| TemplateError::Render {
                name: name.to_string(),
                message: render_error(&e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_escaped_and_strict_mode_catches_missing_ones() {
        let mut t = Templates::default();
        t.register("x.hello", "Hi {{name}}, <@{{user}}>").unwrap();
        let out = t
            .render("x.hello", &json!({"name": "<!channel> & co", "user": "U1"}))
            .unwrap();
        assert_eq!(out, "Hi &lt;!channel&gt; &amp; co, <@U1>");
        assert!(t.render("x.hello", &json!({"name": "a"})).is_err());
        assert!(t.register("x.bad", "{{#if}}").is_err());
    }
}
