//! Splits the text after `/wk` into a verb and arguments.
//!
//! Words are separated by white space; "double quotes" (or Slack's “smart
//! quotes”) group words; Slack's `<@U123|name>` and `<#C1|x>` tokens stay whole.

/// A command line: the verb (lower-cased) and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    /// The first word, lower-cased; empty for a bare `/wk`.
    pub verb: String,
    /// The remaining words.
    pub args: Vec<String>,
}

/// Why a command line could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a quote is not closed: add the closing \" and try again")]
pub struct UnclosedQuote;

impl CommandLine {
    /// Splits `text` into verb and arguments.
    pub fn parse(text: &str) -> Result<Self, UnclosedQuote> {
        let mut words = split(text)?.into_iter();
        let verb = words.next().unwrap_or_default().to_lowercase();
        Ok(Self {
            verb,
            args: words.collect(),
        })
    }

    /// The arguments joined back with spaces (free text such as a reason or title).
    pub fn rest(&self) -> String {
        self.args.join(" ")
    }
}

/// Reads a person as typed in a command: Slack's `<@U123|anna>`, `@U123` or
/// `U123`.
pub fn user_mention(text: &str) -> Option<crate::ids::UserId> {
    let text = text.trim_start_matches('<').trim_end_matches('>');
    let text = text.trim_start_matches('@');
    let id = text.split('|').next()?;
    (id.len() > 1 && id.starts_with(['U', 'W']) && id.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| crate::ids::UserId::from(id))
}

fn split(text: &str) -> Result<Vec<String>, UnclosedQuote> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_quote = false;
    let mut in_angle = false;
    let mut has_word = false;
    for ch in text.chars() {
        match ch {
            '"' | '“' | '”' if !in_angle => {
                in_quote = !in_quote;
                has_word = true;
            }
            '<' if !in_quote => {
                in_angle = true;
                current.push(ch);
                has_word = true;
            }
            '>' if in_angle => {
                in_angle = false;
                current.push(ch);
            }
            c if c.is_whitespace() && !in_quote && !in_angle => {
                if has_word {
                    words.push(std::mem::take(&mut current));
                    has_word = false;
                }
            }
            c => {
                current.push(c);
                has_word = true;
            }
        }
    }
    if in_quote {
        return Err(UnclosedQuote);
    }
    if has_word {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_quotes_and_mentions() {
        let line =
            CommandLine::parse("  Oncall override <@U0ANNA|anna b> \"Mon 09:00\" “two words” k=v ")
                .unwrap();
        assert_eq!(line.verb, "oncall");
        assert_eq!(
            line.args,
            vec![
                "override",
                "<@U0ANNA|anna b>",
                "Mon 09:00",
                "two words",
                "k=v"
            ]
        );
        assert_eq!(CommandLine::parse("").unwrap(), CommandLine::default());
        assert_eq!(CommandLine::parse("x \"\"").unwrap().args, vec![""]);
        assert_eq!(CommandLine::parse("say \"oops"), Err(UnclosedQuote));
    }
}
