//! Watchkeeper: a chat-ops bot for teams that support customers' Kubernetes
//! platforms over Slack. See ARCHITECTURE.md for the map.

pub mod app;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod chat;
pub mod clock;
pub mod config;
pub mod dispatch;
pub mod faults;
pub mod forge;
pub mod http;
pub mod ids;
pub mod ingress;
pub mod metrics;
pub mod oncall;
pub mod outbox;
pub mod playbooks;
pub mod postmortem;
pub mod scheduler;
pub mod signatures;
pub mod slack_manifest;
pub mod store;
pub mod support;
pub mod work;
pub mod workers;
