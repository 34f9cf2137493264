//! Slack: request signatures, inbound payloads, the Web API client and Socket Mode.

pub mod inbound;
pub mod limits;
pub mod payload;
pub mod signature;
pub mod socket_mode;
pub mod web;

pub use signature::{SignatureError, SigningSecret};
pub use web::SlackWebChat;
