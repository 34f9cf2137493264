//! Configuration: one YAML file read top to bottom by an operator, secrets only
//! in the environment.
//!
//! Loading parses the file into typed values and then checks what the types
//! cannot (channels registered twice, unknown time zones). Every error names
//! the file, the field and what is expected; nothing here ever panics on input.

mod duration;

pub use duration::{DurationError, HumanDuration};

use crate::auth::Role;
use crate::ids::{ChannelId, TeamId, TenantId, UserId, UsergroupId};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The example configuration shipped in the repository; used when no file is given
/// and `watchkeeper.yaml` does not exist, so a fresh clone runs with no setup.
pub const BUNDLED_EXAMPLE: &str = include_str!("../../examples/watchkeeper.yaml");

/// The default configuration file name, looked up in the working directory.
pub const DEFAULT_FILE: &str = "watchkeeper.yaml";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Our own team: workspace, time zone, ops channel.
    pub team: TeamConfig,
    /// Who holds which role, by Slack user id or user group.
    #[serde(default)]
    pub roles: BTreeMap<Role, RoleMembers>,
    /// Members of Slack user groups, used offline (console, tests) and until
    /// Slack's own list has been fetched.
    #[serde(default)]
    pub usergroups: BTreeMap<UsergroupId, Vec<UserId>>,
    /// Customers (tenants) and the Slack channels registered to them.
    #[serde(default)]
    pub customers: BTreeMap<TenantId, CustomerConfig>,
    /// Where the command manifest lives.
    #[serde(default)]
    pub commands: CommandsConfig,
    /// Slack client settings (rate limits).
    #[serde(default)]
    pub slack: SlackConfig,
    /// The scheduler and outbox workers.
    #[serde(default)]
    pub workers: WorkersConfig,
    /// Messages posted on a schedule (maintenance windows, weekly reminders).
    #[serde(default)]
    pub announcements: Vec<Announcement>,
    /// The service catalog and how alerts map onto it.
    #[serde(default)]
    pub catalog: crate::catalog::config::CatalogConfig,
    /// Where issues and pull requests are opened.
    #[serde(default)]
    pub forges: crate::postmortem::config::ForgesConfig,
    /// How postmortems are opened and followed.
    #[serde(default)]
    pub postmortems: crate::postmortem::config::PostmortemsConfig,
    /// Where playbooks come from and who approves them by default.
    #[serde(default)]
    pub playbooks: crate::playbooks::config::PlaybooksConfig,
    /// On-call rotations, by name.
    #[serde(default)]
    pub rotations: crate::oncall::config::Rotations,
    /// Support intake: first line, the intake window, urgent keywords,
    /// holiday calendars, incidents.
    #[serde(default)]
    pub support: crate::support::config::SupportConfig,
    /// Escalation policies by name: levels paged in order until acknowledged.
    #[serde(default)]
    pub escalation_policies: BTreeMap<String, crate::support::config::EscalationPolicy>,
}

/// A message posted on a schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    /// Unique name, e.g. `weekly-maintenance`.
    pub name: String,
    /// Five-field cron, e.g. `0 9 * * MON`.
    pub cron: String,
    /// Time zone the cron is read in (default: the team's).
    #[serde(default, deserialize_with = "deserialize_optional_tz")]
    pub timezone: Option<chrono_tz::Tz>,
    /// Where it is posted.
    pub channel: ChannelId,
    /// What it says (Slack mrkdwn, posted as written).
    pub text: String,
}

/// Slack client settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Web API rate limits; the defaults are Slack's documented tiers.
    #[serde(default)]
    pub rate_limits: crate::chat::slack::limits::RateLimitConfig,
    /// How long one Web API call may take (default 10s); a post that times
    /// out is looked up before it is sent again.
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

impl SlackConfig {
    /// The Web API call timeout.
    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
            .and_then(|t| t.as_chrono().to_std().ok())
            .unwrap_or(crate::chat::slack::web::DEFAULT_TIMEOUT)
    }
}

/// How the scheduler and outbox workers behave.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkersConfig {
    /// How long a claimed timer or outbox item stays with its worker before
    /// another replica may take it over (the worker is presumed dead).
    pub lease: HumanDuration,
    /// How often a worker looks for work another replica recorded.
    pub poll: HumanDuration,
    /// How long finished timers and delivered effects are kept (de-duplication
    /// and reports) before housekeeping deletes them.
    pub retention: HumanDuration,
    /// When housekeeping runs (cron, in the team's time zone).
    pub housekeeping: String,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            lease: HumanDuration::from_secs(120),
            poll: HumanDuration::from_secs(1),
            retention: HumanDuration::from_secs(7 * 86_400),
            housekeeping: "30 3 * * *".to_string(),
        }
    }
}

/// Our own team.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Shown in messages.
    pub name: String,
    /// Our Slack workspace; members of other workspaces are customers.
    pub slack_team_id: TeamId,
    /// IANA time zone of the team, e.g. `Europe/Berlin`.
    #[serde(deserialize_with = "deserialize_tz")]
    pub timezone: chrono_tz::Tz,
    /// Where pages, approvals and hand-offs go.
    pub ops_channel: ChannelId,
    /// The workspace's address, for links to messages
    /// (e.g. `https://acme-ops.slack.com`).
    #[serde(default = "default_slack_url")]
    pub slack_url: String,
}

fn default_slack_url() -> String {
    "https://slack.com".into()
}

/// The people holding one role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMembers {
    /// Slack user ids.
    #[serde(default)]
    pub users: Vec<UserId>,
    /// Slack user group ids; every member holds the role.
    #[serde(default)]
    pub usergroups: Vec<UsergroupId>,
}

/// One customer (tenant).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerConfig {
    /// Display name, e.g. "ACME Corp".
    pub name: String,
    /// Slack Connect channels where this customer talks to us.
    pub channels: Vec<ChannelId>,
    /// The customer's own Slack workspaces (Slack Connect team ids). When
    /// listed, a member of any other workspace is a stranger in this
    /// customer's channels, not the customer; when empty, anyone who is not
    /// staff there is the customer.
    #[serde(default)]
    pub teams: Vec<TeamId>,
    /// The customer's time zone, for times shown to them (default: the team's).
    #[serde(default, deserialize_with = "deserialize_optional_tz")]
    pub timezone: Option<chrono_tz::Tz>,
    /// `business-hours` (SLA clocks run in business hours) or `24x7`.
    #[serde(default)]
    pub tier: crate::support::config::Tier,
    /// Support hours, zone and holidays of a business-hours tier.
    #[serde(default)]
    pub business_hours: Option<crate::support::config::BusinessHoursConfig>,
    /// SLA targets; without them requests are tracked with no clock.
    #[serde(default)]
    pub sla: Option<crate::support::config::SlaConfig>,
    /// The escalation policy a breach or `/wk escalate` starts.
    #[serde(default)]
    pub escalation: Option<String>,
    /// How our staff are recognised in this customer's channels.
    #[serde(default)]
    pub staff: crate::support::config::StaffConfig,
    /// Who answers this customer first (default `support.first_line`).
    #[serde(default)]
    pub first_line: Vec<crate::support::config::Notify>,
}

/// Where `commands/*.yaml` are read from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsConfig {
    /// A folder of one YAML file per verb, relative to the config file.
    #[serde(default = "default_commands_path")]
    pub path: PathBuf,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        Self {
            path: default_commands_path(),
        }
    }
}

fn default_commands_path() -> PathBuf {
    PathBuf::from("commands")
}

fn deserialize_tz<'de, D: serde::Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{name}` is not an IANA time zone: write one like Europe/Berlin or America/New_York"
        ))
    })
}

/// Reads an optional IANA zone, saying what to write when it is not one.
pub(crate) fn deserialize_optional_tz<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<chrono_tz::Tz>, D::Error> {
    deserialize_tz(d).map(Some)
}

/// Why the configuration could not be used.
///
/// `Display` prints one sentence, `file:line: …` whenever the YAML gives a
/// line, the way `watchkeeper check` reports it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML did not match the expected shape.
    #[error("{file}:{line}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The 1-based line serde points at (1 when it names none).
        line: usize,
        /// serde's message, naming the field and what is expected.
        message: String,
    },
    /// The YAML was well formed but a value is not acceptable.
    #[error("{}: {field}: {message}", at(file, *line))]
    Invalid {
        /// The file.
        file: String,
        /// The 1-based line of the field, when the text is known.
        line: Option<usize>,
        /// The field's path, e.g. `customers.acme.channels`.
        field: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

fn at(file: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_string(),
    }
}

/// The 1-based line of a field path as errors name it (`customers.acme.channels`,
/// `announcements[0].cron`) in block YAML `text`: the deepest part found.
pub fn line_of(text: &str, field: &str) -> usize {
    let parts: Vec<String> = field
        .split('.')
        .flat_map(|part| {
            let mut pieces = part.split('[');
            let key = pieces.next().unwrap_or_default().to_string();
            std::iter::once(key)
                .chain(pieces.map(|p| p.trim_end_matches(']').to_string()))
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    crate::playbooks::load::locate(text, &parts)
}

impl ConfigError {
    /// Names the line of an [`ConfigError::Invalid`] field in `text`, the YAML
    /// it came from, and keeps the message on one line (a value quoted in it
    /// may span several).
    pub fn with_line_from(self, text: &str) -> Self {
        match self {
            Self::Invalid {
                file,
                line,
                field,
                message,
            } => Self::Invalid {
                line: line.or_else(|| Some(line_of(text, &field))),
                file,
                message: one_line(&message),
                field,
            },
            other => other,
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A loaded configuration with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file it was read from, or `None` for the bundled example.
    pub file: Option<PathBuf>,
    /// The folder relative paths in the config are resolved against.
    pub base_dir: PathBuf,
}

impl Loaded {
    /// A name for messages: the file path, or "the bundled example configuration".
    pub fn source_name(&self) -> String {
        match &self.file {
            Some(path) => path.display().to_string(),
            None => "the bundled example configuration".to_string(),
        }
    }

    /// Resolves a path from the config against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

/// Loads the configuration: the given file, else `watchkeeper.yaml` in the working
/// directory, else the bundled example.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
    let file = match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let default = PathBuf::from(DEFAULT_FILE);
            default.exists().then_some(default)
        }
    };
    match file {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                file: name.clone(),
                source,
            })?;
            let mut config = parse(&name, &text)?;
            let base_dir = path
                .parent()
                .map(Path::to_path_buf)
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| PathBuf::from("."));
            load_postmortem_template(&name, &base_dir, &mut config)
                .map_err(|err| err.with_line_from(&text))?;
            Ok(Loaded {
                config,
                file: Some(path),
                base_dir,
            })
        }
        None => Ok(Loaded {
            config: parse("examples/watchkeeper.yaml (bundled)", BUNDLED_EXAMPLE)?,
            file: None,
            base_dir: PathBuf::from("."),
        }),
    }
}

/// Reads and compiles the postmortem template the configuration names.
fn load_postmortem_template(
    file: &str,
    base_dir: &Path,
    config: &mut Config,
) -> Result<(), ConfigError> {
    let Some(template) = &config.postmortems.template else {
        return Ok(());
    };
    let path = if template.is_absolute() {
        template.clone()
    } else {
        base_dir.join(template)
    };
    let invalid = |message: String| ConfigError::Invalid {
        file: file.to_string(),
        line: None,
        field: "postmortems.template".into(),
        message,
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|err| invalid(format!("cannot read {}: {err}", path.display())))?;
    crate::postmortem::render::check_template(&text)
        .map_err(|err| invalid(format!("{}: {err}", path.display())))?;
    config.postmortems.template_text = Some(text);
    Ok(())
}

/// Parses and checks configuration text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let config: Config = serde_yaml::from_str(text).map_err(|err| {
        let line = err.location().map_or(1, |l| l.line());
        let mut message = err.to_string();
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
        ConfigError::Parse {
            file: file.to_string(),
            line,
            message: one_line(&message),
        }
    })?;
    check(file, &config).map_err(|err| err.with_line_from(text))?;
    Ok(config)
}

fn check(file: &str, config: &Config) -> Result<(), ConfigError> {
    let invalid = |field: String, message: String| ConfigError::Invalid {
        file: file.to_string(),
        line: None,
        field,
        message,
    };
    if config.roles.contains_key(&Role::Customer) {
        return Err(invalid(
            "roles.customer".into(),
            "the customer role is given by the channel, not by config: remove this entry and register the channel under customers".into(),
        ));
    }
    let mut seen: BTreeMap<&ChannelId, &TenantId> = BTreeMap::new();
    for (tenant, customer) in &config.customers {
        if customer.channels.is_empty() {
            return Err(invalid(
                format!("customers.{tenant}.channels"),
                "expected at least one Slack channel id, e.g. [C0ACME]".into(),
            ));
        }
        if customer.teams.contains(&config.team.slack_team_id) {
            return Err(invalid(
                format!("customers.{tenant}.teams"),
                format!(
                    "{} is our own workspace (team.slack_team_id); list the customer's workspaces only",
                    config.team.slack_team_id
                ),
            ));
        }
        for channel in &customer.channels {
            if channel == &config.team.ops_channel {
                return Err(invalid(
                    format!("customers.{tenant}.channels"),
                    format!("{channel} is the ops channel; a customer needs a channel of its own"),
                ));
            }
            if let Some(other) = seen.insert(channel, tenant) {
                return Err(invalid(
                    format!("customers.{tenant}.channels"),
                    format!(
                        "{channel} is already registered to customer {other}; a channel belongs to one customer"
                    ),
                ));
            }
        }
    }
    if config.workers.lease.as_chrono() < chrono::Duration::seconds(5) {
        return Err(invalid(
            "workers.lease".into(),
            "must be at least 5s (a lease shorter than a Slack call would hand live work to another replica)".into(),
        ));
    }
    if config
        .slack
        .timeout
        .is_some_and(|t| t.as_chrono() < chrono::Duration::seconds(1))
    {
        return Err(invalid(
            "slack.timeout".into(),
            "must be at least 1s".into(),
        ));
    }
    if config.workers.poll.as_chrono() < chrono::Duration::seconds(1) {
        return Err(invalid("workers.poll".into(), "must be at least 1s".into()));
    }
    if let Err(err) =
        crate::scheduler::Recurrence::parse(&config.workers.housekeeping, config.team.timezone)
    {
        return Err(invalid("workers.housekeeping".into(), err.to_string()));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, announcement) in config.announcements.iter().enumerate() {
        let field = format!("announcements[{i}]");
        if !names.insert(announcement.name.as_str()) {
            return Err(invalid(
                format!("{field}.name"),
                format!(
                    "`{}` is used twice; give each announcement its own name",
                    announcement.name
                ),
            ));
        }
        let tz = announcement.timezone.unwrap_or(config.team.timezone);
        if let Err(err) = crate::scheduler::Recurrence::parse(&announcement.cron, tz) {
            return Err(invalid(format!("{field}.cron"), err.to_string()));
        }
    }
    let postmortems = &config.postmortems;
    match postmortems.forge.as_str() {
        "git" => {}
        "github" if config.forges.github.is_some() => {}
        "github" => {
            return Err(invalid(
                "postmortems.forge".into(),
                "github needs a forges.github section (its token comes from GITHUB_TOKEN)".into(),
            ));
        }
        other => {
            return Err(invalid(
                "postmortems.forge".into(),
                format!("`{other}` is not a forge: write git (the embedded default) or github"),
            ));
        }
    }
    for (repo, url) in &config.forges.git.remotes {
        if let Err(err) =
            crate::forge::check_repo(repo).and_then(|_| crate::forge::git::check_remote(url))
        {
            return Err(invalid(
                format!("forges.git.remotes.{repo}"),
                err.to_string(),
            ));
        }
    }
    if crate::forge::check_repo(&postmortems.repository).is_err() {
        return Err(invalid(
            "postmortems.repository".into(),
            format!(
                "`{}` is not a repository: write owner/name, e.g. acme-platform/postmortems",
                postmortems.repository
            ),
        ));
    }
    if let Err(err) =
        crate::scheduler::Recurrence::parse(&postmortems.digest.cron, config.team.timezone)
    {
        return Err(invalid("postmortems.digest.cron".into(), err.to_string()));
    }
    if postmortems.poll.as_chrono() < chrono::Duration::minutes(1) {
        return Err(invalid(
            "postmortems.poll".into(),
            "must be at least 1m (forges rate-limit us)".into(),
        ));
    }
    crate::oncall::config::check(&config.rotations)
        .map_err(|problem| invalid(problem.field, problem.message))?;
    crate::support::config::check(config).map_err(|(field, message)| invalid(field, message))?;
    crate::catalog::kubernetes::config::check(&config.catalog.clusters, &config.customers)
        .map_err(|problem| invalid(problem.field, problem.message))?;
    for (role, members) in &config.roles {
        if members.users.is_empty() && members.usergroups.is_empty() {
            return Err(invalid(
                format!("roles.{role}"),
                "expected users: [U…] and/or usergroups: [S…]".into(),
            ));
        }
        for group in &members.usergroups {
            if !group.as_str().starts_with('S') {
                return Err(invalid(
                    format!("roles.{role}.usergroups"),
                    format!("`{group}` is not a Slack user group id (they start with S)"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_example_is_valid() {
        let config = parse("example", BUNDLED_EXAMPLE).unwrap();
        assert!(!config.customers.is_empty());
    }

    #[test]
    fn a_typo_names_the_field_and_the_line() {
        let text = BUNDLED_EXAMPLE.replacen("channels:", "chanels:", 1);
        let err = parse("cfg.yaml", &text).unwrap_err().to_string();
        let line = text.lines().position(|l| l.contains("chanels:")).unwrap() + 1;
        assert!(err.starts_with(&format!("cfg.yaml:{line}: ")), "{err}");
        assert!(err.contains("chanels"), "{err}");
    }

    #[test]
    fn a_channel_cannot_belong_to_two_customers() {
        let text = "team: { name: T, slack_team_id: T1, timezone: Europe/Berlin, ops_channel: C0 }\n\
                    customers:\n  a: { name: A, channels: [C1] }\n  b: { name: B, channels: [C1] }\n";
        let err = parse("x.yaml", text).unwrap_err().to_string();
        assert!(err.contains("customers.b.channels"), "{err}");
        assert!(err.contains("already registered to customer a"), "{err}");
    }

    #[test]
    fn a_bad_time_zone_says_what_to_write() {
        let text =
            "team: { name: T, slack_team_id: T1, timezone: Mars/Olympus, ops_channel: C0 }\n";
        let err = parse("x.yaml", text).unwrap_err().to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
        assert!(err.contains("Europe/Berlin"), "{err}");
    }
}
