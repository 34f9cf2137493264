//! Slack mrkdwn: escaping values that came from users or other systems, and
//! reading mrkdwn back as plain text for the console.

/// Escapes a value for Slack mrkdwn: `&`, `<` and `>` become entities, so a
/// value can never form a mention (`<!channel>`, `<@U…>`) or a link.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(ch),
        }
    }
    out
}

/// A moment every reader sees in their own time zone (a Slack date token),
/// with a UTC fallback for clients that cannot show it (and the console).
pub fn date_token(at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{} UTC>",
        at.timestamp(),
        at.format("%Y-%m-%d %H:%M")
    )
}

/// Renders mrkdwn as readable plain text: `<@U1>` → `@U1`, `<#C1|name>` → `#name`,
/// `<!subteam^S1>` → `@S1`, `<url|label>` → `label (url)`, `<!date^…|fallback>`
/// → `fallback`, entities decoded.
pub fn to_plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        let rendered = if let Some(user) = target.strip_prefix('@') {
            format!("@{}", label.unwrap_or(user))
        } else if let Some(channel) = target.strip_prefix('#') {
            format!("#{}", label.unwrap_or(channel))
        } else if let Some(special) = target.strip_prefix('!') {
            match (label, special.split_once('^')) {
                (Some(l), _) => l.to_string(),
                // A user group: `<!subteam^S0SUPPORT>` reads `@S0SUPPORT`.
                (None, Some(("subteam", group))) => format!("@{group}"),
                (None, _) => format!("@{}", special.split('^').next().unwrap_or(special)),
            }
        } else {
            match label {
                Some(l) => format!("{l} ({target})"),
                None => target.to_string(),
            }
        };
        out.push_str(&rendered);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_mentions_and_links() {
        assert_eq!(
            escape("<!channel> & <@U1|boss> <https://evil|click>"),
            "&lt;!channel&gt; &amp; &lt;@U1|boss&gt; &lt;https://evil|click&gt;"
        );
    }

    #[test]
    fn plain_text_reads_like_slack_shows_it() {
        assert_eq!(
            to_plain(
                "hi <@U0ANNA>, see <https://x.io|the runbook> by <!date^1700000000^{time}|10:00> &lt;ok&gt;"
            ),
            "hi @U0ANNA, see the runbook (https://x.io) by 10:00 <ok>"
        );
        assert_eq!(to_plain(&escape("a <b> & c")), "a <b> & c");
        assert_eq!(
            to_plain("<!subteam^S0SUPPORT> and <!here>"),
            "@S0SUPPORT and @here"
        );
    }
}
