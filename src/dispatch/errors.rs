//! The error taxonomy of commands, rendered in one place: bad input shows the
//! usage, a denial explains itself (and is audited), not-found and conflict say
//! what to do, and internal errors give the user an opaque sentence while the
//! log gets the whole cause chain.

use super::templates::Templates;
use crate::chat::Reply;
use serde_json::json;

/// Why a command did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The arguments are wrong: the sentence says how.
    #[error("{0}")]
    Usage(String),
    /// Not allowed: the sentence says why.
    #[error("{0}")]
    Denied(String),
    /// The thing asked about does not exist (or is not visible to the caller).
    #[error("{0}")]
    NotFound(String),
    /// The thing exists but belongs to someone the caller may not see (another
    /// customer's request, run, component or playbook). Reads exactly like
    /// [`CommandError::NotFound`] — the sentence must be the one a thing that
    /// does not exist gets — and is audited as a denial.
    #[error("{0}")]
    NotVisible(String),
    /// The thing is in a state that does not allow this.
    #[error("{0}")]
    Conflict(String),
    /// Something failed on our side.
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl CommandError {
    /// Wraps any error as internal.
    pub fn internal<E: std::error::Error + Send + Sync + 'static>(err: E) -> Self {
        Self::Internal(Box::new(err))
    }

    /// The audit outcome for this error.
    pub fn outcome(&self) -> crate::store::audit::Outcome {
        use crate::store::audit::Outcome;
        match self {
            CommandError::Denied(_) | CommandError::NotVisible(_) => Outcome::Denied,
            CommandError::Internal(_) => Outcome::Failed,
            _ => Outcome::Rejected,
        }
    }
}

/// Renders an error for the person who ran `/wk <verb>`.
pub fn render(templates: &Templates, err: &CommandError, verb: &str, usage: &str) -> Reply {
    let (name, data) = match err {
        CommandError::Usage(problem) => ("usage", json!({ "problem": problem, "usage": usage })),
        CommandError::Denied(reason) => ("denied", json!({ "reason": reason })),
        CommandError::NotFound(message) | CommandError::NotVisible(message) => {
            ("not_found", json!({ "message": message }))
        }
        CommandError::Conflict(message) => ("conflict", json!({ "message": message })),
        CommandError::Internal(source) => {
            let incident = format!("{:08x}", rand::random::<u32>());
            tracing::error!(%incident, verb, error = %source, chain = ?source, "command failed");
            ("internal", json!({ "verb": verb, "incident": incident }))
        }
    };
    let text = templates
        .render(&format!("common.{name}"), &data)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "error template failed");
            "Something went wrong on our side; please try again in a minute.".to_string()
        });
    Reply::text(text)
}
