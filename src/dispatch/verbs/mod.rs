//! The handlers of the foundation's verbs. Jobs add theirs in their own folders
//! and list them here.

mod help;
mod whoami;

use super::Verb;

/// Every verb this build can run.
pub fn all() -> Vec<Box<dyn Verb>> {
    vec![
        Box::new(help::Help),
        Box::new(whoami::WhoAmI),
        Box::new(crate::postmortem::OpenPostmortem),
        Box::new(crate::postmortem::ListPostmortems),
        Box::new(crate::catalog::verbs::Status),
        Box::new(crate::catalog::verbs::Changes),
        Box::new(crate::oncall::Oncall),
    ]
}

/// Templates a verb's handler renders, checked against the manifest at start-up.
pub fn required_templates(verb: &str) -> &'static [&'static str] {
    match verb {
        "help" => &["list", "detail"],
        "whoami" => &["reply"],
        "postmortem" => &["opening", "existing"],
        "postmortems" => &["list"],
        "status" => &["component", "summary", "not_found"],
        "changes" => &["list"],
        "oncall" => crate::oncall::TEMPLATES,
        _ => &[],
    }
}
