//! A small modal model: a form with text and select inputs, rendered as a
//! Slack view for `views.open` or as text on the console.
//!
//! The modal's `private_metadata` holds ids only (`channel|thread|id`); the
//! submission reloads state from the store, as buttons do.

use super::mrkdwn;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A form shown to one person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modal {
    /// Names the form; the submission is routed by it (e.g. `playbook.run`).
    pub callback_id: String,
    /// Title (Slack allows 24 characters).
    pub title: String,
    /// Label of the submit button.
    pub submit: String,
    /// `channel|thread|id`: where it was opened from and what it is about.
    pub private_metadata: String,
    /// A paragraph of mrkdwn above the inputs.
    pub intro: Option<String>,
    /// The inputs, in order.
    pub inputs: Vec<ModalInput>,
}

/// One input of a modal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModalInput {
    /// The input's id: its `block_id` and `action_id`, and the key of its value
    /// in the submission.
    pub id: String,
    /// What the person sees.
    pub label: String,
    /// Grey help text under it.
    pub hint: Option<String>,
    /// May be left empty.
    pub optional: bool,
    /// Text or a choice.
    pub kind: InputKind,
}

/// What an input takes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputKind {
    /// Free text.
    Text {
        /// Several lines.
        multiline: bool,
        /// Pre-filled value.
        initial: Option<String>,
    },
    /// One of a list of `(value, label)` options.
    Select {
        /// The options.
        options: Vec<(String, String)>,
        /// The pre-selected value.
        initial: Option<String>,
    },
}

fn plain(text: &str, limit: usize) -> Value {
    let text: String = mrkdwn::to_plain(text).chars().take(limit).collect();
    json!({ "type": "plain_text", "text": text, "emoji": true })
}

impl Modal {
    /// The modal as a Slack view object.
    pub fn view_json(&self) -> Value {
        let mut blocks = Vec::new();
        if let Some(intro) = &self.intro {
            blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": intro } }));
        }
        for input in &self.inputs {
            let element = match &input.kind {
                InputKind::Text { multiline, initial } => {
                    let mut element = json!({
                        "type": "plain_text_input",
                        "action_id": input.id,
                        "multiline": multiline,
                    });
                    if let Some(initial) = initial {
                        element["initial_value"] = json!(initial);
                    }
                    element
                }
                InputKind::Select { options, initial } => {
                    let option = |(value, label): &(String, String)| json!({ "text": plain(label, 75), "value": value });
                    let mut element = json!({
                        "type": "static_select",
                        "action_id": input.id,
                        "options": options.iter().take(100).map(option).collect::<Vec<_>>(),
                    });
                    if let Some(chosen) = initial
                        .as_ref()
                        .and_then(|i| options.iter().find(|(v, _)| v == i))
                    {
                        element["initial_option"] = option(chosen);
                    }
                    element
                }
            };
            let mut block = json!({
                "type": "input",
                "block_id": input.id,
                "label": plain(&input.label, 2000),
                "optional": input.optional,
                "element": element,
            });
            if let Some(hint) = &input.hint {
                block["hint"] = plain(hint, 2000);
            }
            blocks.push(block);
        }
        json!({
            "type": "modal",
            "callback_id": self.callback_id,
            "title": plain(&self.title, 24),
            "submit": plain(&self.submit, 24),
            "close": plain("Cancel", 24),
            "private_metadata": self.private_metadata,
            "blocks": blocks,
        })
    }

    /// The modal as readable text (the console's rendering).
    pub fn to_plain_text(&self) -> String {
        let mut lines = vec![format!("== {} ==", self.title)];
        if let Some(intro) = &self.intro {
            lines.push(mrkdwn::to_plain(intro));
        }
        for input in &self.inputs {
            let optional = if input.optional { " (optional)" } else { "" };
            let detail = match &input.kind {
                InputKind::Text { initial, .. } => initial
                    .as_ref()
                    .map(|i| format!(" [{i}]"))
                    .unwrap_or_default(),
                InputKind::Select { options, initial } => {
                    let values: Vec<&str> = options.iter().map(|(v, _)| v.as_str()).collect();
                    let chosen = initial
                        .as_ref()
                        .map(|i| format!(" [{i}]"))
                        .unwrap_or_default();
                    format!(" one of {}{chosen}", values.join(" | "))
                }
            };
            lines.push(format!(
                "  {} = {}{optional}{detail}",
                input.id, input.label
            ));
        }
        lines.push(format!(
            "[ {} ]  (:submit {}=… to send it)",
            self.submit,
            self.inputs
                .first()
                .map(|i| i.id.as_str())
                .unwrap_or("field")
        ));
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modal_renders_as_a_slack_view_and_as_text() {
        let modal = Modal {
            callback_id: "playbook.run".into(),
            title: "Run restart-workload now please".into(),
            submit: "Request".into(),
            private_metadata: "C0ACME||7".into(),
            intro: Some("Restart a workload".into()),
            inputs: vec![
                ModalInput {
                    id: "workload".into(),
                    label: "Workload".into(),
                    hint: None,
                    optional: false,
                    kind: InputKind::Text {
                        multiline: false,
                        initial: None,
                    },
                },
                ModalInput {
                    id: "cluster".into(),
                    label: "Cluster".into(),
                    hint: Some("where it runs".into()),
                    optional: true,
                    kind: InputKind::Select {
                        options: vec![("prod".into(), "Production".into())],
                        initial: Some("prod".into()),
                    },
                },
            ],
        };
        let view = modal.view_json();
        assert_eq!(view["title"]["text"].as_str().unwrap().chars().count(), 24);
        assert_eq!(view["blocks"][1]["element"]["action_id"], "workload");
        assert_eq!(
            view["blocks"][2]["element"]["initial_option"]["value"],
            "prod"
        );
        let text = modal.to_plain_text();
        assert!(text.contains("cluster = Cluster (optional) one of prod [prod]"));
    }
}
