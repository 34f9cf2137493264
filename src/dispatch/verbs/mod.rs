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
        Box::new(crate::playbooks::ListPlaybooks),
        Box::new(crate::playbooks::RunPlaybook),
        Box::new(crate::playbooks::ListRuns),
        Box::new(crate::playbooks::Approvals),
        Box::new(crate::oncall::Oncall),
        Box::new(crate::support::verbs::Resolve),
        Box::new(crate::support::verbs::Reopen),
        Box::new(crate::support::verbs::Urgent),
        Box::new(crate::support::verbs::Escalate),
        Box::new(crate::support::verbs::ListRequests),
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
        "changes" => &["list", "not_found"],
        "playbooks" | "runs" | "approvals" => &["list"],
        "run" => &["requested", "form"],
        "oncall" => crate::oncall::TEMPLATES,
        "resolve" | "reopen" | "urgent" | "escalate" => &["done"],
        "requests" => &["list"],
        _ => &[],
    }
}
