//! A small Block Kit model: what a reply looks like, independent of transport.
//!
//! Layout (blocks, buttons) is built in code; wording comes from templates.
//! Text in sections is mrkdwn that the template engine has already escaped.

use super::mrkdwn;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Who sees a reply to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Only the person who asked.
    #[default]
    Ephemeral,
    /// Everyone in the channel or thread.
    InChannel,
}

/// A button's look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonStyle {
    /// Green.
    Primary,
    /// Red.
    Danger,
}

/// A button carrying an id, never state: the click reloads from the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// What the person sees.
    pub label: String,
    /// What the click means, e.g. `request.resolve`.
    pub action_id: String,
    /// The id it acts on, e.g. a request id.
    pub value: String,
    /// Optional colour.
    pub style: Option<ButtonStyle>,
}

/// One block of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "content", rename_all = "snake_case")]
pub enum Block {
    /// A bold title line.
    Header(String),
    /// A paragraph of mrkdwn.
    Section(String),
    /// Two-column fields of mrkdwn.
    Fields(Vec<String>),
    /// Small grey mrkdwn lines.
    Context(Vec<String>),
    /// A horizontal rule.
    Divider,
    /// A row of buttons.
    Actions(Vec<Button>),
}

/// A message: blocks plus the plain-text fallback Slack shows in notifications.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reply {
    /// Notification and fallback text (mrkdwn).
    pub text: String,
    /// The blocks; when empty, `text` is shown as is.
    pub blocks: Vec<Block>,
    /// Who sees it, for replies to commands.
    #[serde(default)]
    pub visibility: Visibility,
}

/// Slack's limit on a section's text.
const SECTION_LIMIT: usize = 3000;

impl Reply {
    /// A reply of one mrkdwn paragraph.
    pub fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            blocks: vec![Block::Section(text.clone())],
            text,
            visibility: Visibility::Ephemeral,
        }
    }

    /// Makes the reply visible to everyone in the channel.
    pub fn in_channel(mut self) -> Self {
        self.visibility = Visibility::InChannel;
        self
    }

    /// Appends a block.
    pub fn with_block(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }

    /// The buttons in this reply, in order.
    pub fn buttons(&self) -> impl Iterator<Item = &Button> {
        self.blocks.iter().flat_map(|b| match b {
            Block::Actions(buttons) => buttons.as_slice(),
            _ => &[],
        })
    }

    /// The blocks as Slack's Block Kit JSON.
    pub fn blocks_json(&self) -> Value {
        Value::Array(self.blocks.iter().map(block_json).collect())
    }

    /// The blocks as Block Kit JSON, the first one carrying `block_id` (the
    /// outbox marks each post with its idempotency key this way, so a post whose
    /// fate is in doubt can be found again). A reply without blocks gets one
    /// section holding its text.
    pub fn blocks_json_marked(&self, block_id: &str) -> Value {
        let mut blocks: Vec<Value> = if self.blocks.is_empty() {
            vec![block_json(&Block::Section(self.text.clone()))]
        } else {
            self.blocks.iter().map(block_json).collect()
        };
        if let Some(Value::Object(first)) = blocks.first_mut() {
            first.insert("block_id".into(), Value::String(block_id.to_string()));
        }
        Value::Array(blocks)
    }

    /// The body Slack accepts as an immediate slash-command response or on a `response_url`.
    pub fn response_json(&self) -> Value {
        json!({
            "response_type": match self.visibility {
                Visibility::Ephemeral => "ephemeral",
                Visibility::InChannel => "in_channel",
            },
            "text": self.text,
            "blocks": self.blocks_json(),
        })
    }

    /// The reply as readable plain text (the console's rendering).
    pub fn to_plain_text(&self) -> String {
        if self.blocks.is_empty() {
            return mrkdwn::to_plain(&self.text);
        }
        let mut lines = Vec::new();
        for block in &self.blocks {
            match block {
                Block::Header(text) => lines.push(format!("== {} ==", mrkdwn::to_plain(text))),
                Block::Section(text) => lines.push(mrkdwn::to_plain(text)),
                Block::Fields(fields) => {
                    for field in fields {
                        lines.push(format!("  {}", mrkdwn::to_plain(field).replace('\n', " ")));
                    }
                }
                Block::Context(items) => {
                    let items: Vec<String> = items.iter().map(|i| mrkdwn::to_plain(i)).collect();
                    lines.push(format!("  ({})", items.join(" · ")));
                }
                Block::Divider => lines.push("  ----".to_string()),
                Block::Actions(buttons) => {
                    let row: Vec<String> =
                        buttons.iter().map(|b| format!("[ {} ]", b.label)).collect();
                    lines.push(row.join(" "));
                }
            }
        }
        lines.join("\n")
    }
}

fn mrkdwn_text(text: &str) -> Value {
    let mut text = text.to_string();
    if text.len() > SECTION_LIMIT {
        let mut cut = SECTION_LIMIT - 1;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    json!({ "type": "mrkdwn", "text": text })
}

fn block_json(block: &Block) -> Value {
    match block {
        Block::Header(text) => json!({
            "type": "header",
            "text": { "type": "plain_text", "text": mrkdwn::to_plain(text), "emoji": true }
        }),
        Block::Section(text) => json!({ "type": "section", "text": mrkdwn_text(text) }),
        Block::Fields(fields) => json!({
            "type": "section",
            "fields": fields.iter().take(10).map(|f| mrkdwn_text(f)).collect::<Vec<_>>()
        }),
        Block::Context(items) => json!({
            "type": "context",
            "elements": items.iter().take(10).map(|i| mrkdwn_text(i)).collect::<Vec<_>>()
        }),
        Block::Divider => json!({ "type": "divider" }),
        Block::Actions(buttons) => json!({
            "type": "actions",
            "elements": buttons.iter().map(|b| {
                let mut button = json!({
                    "type": "button",
                    "text": { "type": "plain_text", "text": b.label, "emoji": true },
                    "action_id": b.action_id,
                    "value": b.value,
                });
                if let Some(style) = b.style {
                    button["style"] = json!(match style {
                        ButtonStyle::Primary => "primary",
                        ButtonStyle::Danger => "danger",
                    });
                }
                button
            }).collect::<Vec<_>>()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_render_as_block_kit_and_as_text() {
        let reply = Reply::text("*Request #42* is open").with_block(Block::Actions(vec![Button {
            label: "Resolve".into(),
            action_id: "request.resolve".into(),
            value: "42".into(),
            style: Some(ButtonStyle::Primary),
        }]));
        let json = reply.response_json();
        assert_eq!(json["response_type"], "ephemeral");
        assert_eq!(json["blocks"][1]["elements"][0]["value"], "42");
        assert_eq!(json["blocks"][1]["elements"][0]["style"], "primary");
        assert_eq!(reply.to_plain_text(), "*Request #42* is open\n[ Resolve ]");
    }

    #[test]
    fn long_sections_are_cut_at_slacks_limit() {
        let reply = Reply::text("é".repeat(4000));
        let text = reply.blocks_json()[0]["text"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.len() <= SECTION_LIMIT + 3);
        assert!(text.ends_with('…'));
    }
}
