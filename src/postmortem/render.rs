//! The postmortem ticket: a Handlebars template rendering Markdown, with every
//! value escaped so that nothing a customer wrote becomes markup, a link, an
//! HTML tag or an @-mention on the forge.

use handlebars::Handlebars;
use serde::Serialize;

/// The built-in template, kept in the repository (`templates/postmortem.md`).
pub const DEFAULT_TEMPLATE: &str = include_str!("../../templates/postmortem.md");

/// Why a template could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(String);

/// Escapes a value for inline Markdown: emphasis, code, link and table
/// characters are backslash escaped, a leading block marker (`#`, `-`, `1.`)
/// too, HTML is neutralised, line breaks become spaces (a value never starts a
/// heading, list or table row of its own), and `@` cannot mention anyone.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let trimmed = value.trim_start();
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    let ordered = digits > 0 && matches!(trimmed[digits..].chars().next(), Some('.' | ')'));
    if trimmed.starts_with(['#', '-', '+', '=', '!']) {
        out.push('\\');
    }
    for (i, ch) in trimmed.chars().enumerate() {
        if ordered && i == digits {
            out.push('\\');
        }
        match ch {
            '\n' | '\r' | '\t' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' => out.push_str("@\u{200B}"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A title as forges accept it: one line of plain text, at most 200 characters.
pub fn plain_title(title: &str) -> String {
    let one_line: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = one_line.split_whitespace().collect();
    words.join(" ").chars().take(200).collect()
}

fn registry(template: &str) -> Result<Handlebars<'static>, RenderError> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(escape);
    registry
        .register_template_string("postmortem", template)
        .map_err(|e| RenderError(crate::dispatch::templates::syntax_error(&e)))?;
    Ok(registry)
}

/// Checks that a template compiles and renders the sample postmortem.
pub fn check_template(template: &str) -> Result<(), RenderError> {
    render(template, &super::sample_ticket()).map(|_| ())
}

/// Renders the ticket body.
pub fn render<T: Serialize>(template: &str, data: &T) -> Result<String, RenderError> {
    registry(template)?
        .render("postmortem", data)
        .map_err(|e| RenderError(crate::dispatch::templates::render_error(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_stay_text() {
        let hostile =
            "x](https://evil.example) <img src=x onerror=alert(1)> @everyone\n# Heading\n| a | b |";
        let out = escape(hostile);
        assert!(out.starts_with("x\\](https"), "the link is broken: {out}");
        assert!(!out.contains('<'), "{out}");
        assert!(!out.contains('\n'), "{out}");
        assert!(!out.contains("@everyone"), "{out}");
        assert!(out.contains("\\|"), "{out}");
        assert_eq!(escape("# title"), "\\# title");
        assert_eq!(escape("1. first"), "1\\. first");
        assert_eq!(
            escape("2026-03-02 09:04"),
            "2026-03-02 09:04",
            "plain text stays readable"
        );
    }

    #[test]
    fn titles_are_one_plain_line() {
        assert_eq!(
            plain_title("  DB\nfailover\t at 10:00 "),
            "DB failover at 10:00"
        );
        assert_eq!(plain_title(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn the_built_in_template_renders_the_sample() {
        check_template(DEFAULT_TEMPLATE).unwrap();
        assert!(check_template("{{nonexistent}}").is_err(), "strict mode");
        assert!(check_template("{{#if}").is_err());
    }
}
