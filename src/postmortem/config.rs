//! The `postmortems:` and `forges:` sections of the configuration.

use crate::config::HumanDuration;
use crate::ids::{ChannelId, UserId};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where issues and pull requests are opened.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForgesConfig {
    /// The embedded forge: plain git repositories under this folder
    /// (relative to the working directory).
    pub git: GitForgeConfig,
    /// GitHub or GitHub Enterprise; the token comes from `GITHUB_TOKEN`, the
    /// address from `GITHUB_API_URL` (default `https://api.github.com`).
    pub github: Option<GitHubForgeConfig>,
}

impl Default for ForgesConfig {
    fn default() -> Self {
        Self {
            git: GitForgeConfig {
                path: PathBuf::from("var/forge"),
                remotes: BTreeMap::new(),
            },
            github: None,
        }
    }
}

/// The embedded git forge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitForgeConfig {
    /// The folder holding the repositories.
    pub path: PathBuf,
    /// Repositories (`owner/name`) whose pull-request branches are also
    /// pushed to a remote (`ssh://…`, `https://…`, `git@host:path`, or a
    /// local path); credentials are git's own (SSH agent, credential helper).
    #[serde(default)]
    pub remotes: BTreeMap<String, String>,
}

/// GitHub settings that are not secrets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubForgeConfig {
    /// API base URL; `GITHUB_API_URL` overrides it.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Sign in as this GitHub App (its private key from
    /// `GITHUB_APP_PRIVATE_KEY`) instead of with `GITHUB_TOKEN`.
    #[serde(default)]
    pub app_id: Option<u64>,
}

/// How postmortems are opened and followed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostmortemsConfig {
    /// `git` (the embedded default) or `github`.
    pub forge: String,
    /// The repository, `owner/name`.
    pub repository: String,
    /// Labels put on every postmortem ticket.
    pub labels: Vec<String>,
    /// Severity when the command gives none.
    pub severity: String,
    /// The owner when the command names none (default: whoever asks).
    pub owner: Option<UserId>,
    /// Slack user → forge login, for assigning tickets.
    pub logins: BTreeMap<UserId, String>,
    /// A Handlebars Markdown template replacing the built-in one (relative to
    /// the configuration file).
    pub template: Option<PathBuf>,
    /// The template's text, read when the configuration is loaded.
    #[serde(skip)]
    pub template_text: Option<String>,
    /// The weekly digest of open postmortems.
    pub digest: DigestConfig,
    /// How often an open ticket's state is checked on the forge (webhooks
    /// make it immediate where they can reach us).
    pub poll: HumanDuration,
}

impl Default for PostmortemsConfig {
    fn default() -> Self {
        Self {
            forge: "git".into(),
            repository: "platform/postmortems".into(),
            labels: vec!["postmortem".into()],
            severity: "SEV3".into(),
            owner: None,
            logins: BTreeMap::new(),
            template: None,
            template_text: None,
            digest: DigestConfig::default(),
            poll: HumanDuration::from_secs(15 * 60),
        }
    }
}

/// The digest of open postmortems.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    /// Five-field cron in the team's time zone.
    pub cron: String,
    /// Where it is posted (default: the ops channel).
    pub channel: Option<ChannelId>,
}

impl Default for DigestConfig {
    fn default() -> Self {
        Self {
            cron: "0 9 * * MON".into(),
            channel: None,
        }
    }
}
