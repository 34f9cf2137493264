//! Authorisation in one place: who someone is (roles, tenant) and what they may run.
//!
//! Roles come from config (user ids and user groups); the channel decides the
//! tenant. A member of another Slack workspace is, in a customer channel, a
//! customer of that channel's tenant and nothing more; anywhere else they hold
//! no role at all. Nothing else in the code decides who may do what.

mod directory;
mod people;

pub use directory::UsergroupDirectory;
pub use people::People;

use crate::config::Config;
use crate::ids::{ChannelId, TeamId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

/// What a person is to Watchkeeper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An engineer of a customer, in that customer's channel.
    Customer,
    /// First-line support: claims and answers customer threads.
    Support,
    /// On the ops-duty rotation: gets paged, acknowledges, approves.
    Oncall,
    /// Defines catalog, rotations and playbooks; reads reports.
    Sre,
    /// Everything, including configuration and audit.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 5] = [
        Role::Customer,
        Role::Support,
        Role::Oncall,
        Role::Sre,
        Role::Admin,
    ];

    /// The name used in config and messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Support => "support",
            Role::Oncall => "oncall",
            Role::Sre => "sre",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who may run a command, as written in `commands/*.yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// Anyone who can reach the bot, strangers included (a member of another
    /// workspace outside their own channel, a DM from someone unknown).
    Anyone,
    /// Our staff, with or without a role, and customers in their own channel.
    Everyone,
    /// Only customers in their own channel.
    Customer,
    /// First-line support.
    Support,
    /// On-call engineers.
    Oncall,
    /// SREs.
    Sre,
    /// Admins.
    Admin,
}

impl Audience {
    fn admits(self, actor: &Actor) -> bool {
        let role = match self {
            Audience::Anyone | Audience::Everyone => return true,
            Audience::Customer => Role::Customer,
            Audience::Support => Role::Support,
            Audience::Oncall => Role::Oncall,
            Audience::Sre => Role::Sre,
            Audience::Admin => Role::Admin,
        };
        // Admins may run everything staff may run; never a customer's view.
        actor.roles.contains(&role) || (role != Role::Customer && actor.is_admin())
    }
}

/// A person acting through Slack or the console, with what they are allowed to be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Their Slack user id.
    pub user: UserId,
    /// Their workspace, when the payload says.
    pub team: Option<TeamId>,
    /// True for members of another workspace (Slack Connect) or unknown people.
    pub external: bool,
    /// Roles held here (a customer's role only in their tenant's channel).
    pub roles: BTreeSet<Role>,
    /// The customer they act for, when they are a customer.
    pub tenant: Option<TenantId>,
}

impl Actor {
    /// True for admins.
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// True for our own people (not customers, not strangers).
    pub fn is_staff(&self) -> bool {
        !self.external
    }

    /// Role names, for messages and the audit log ("support, oncall" or "none").
    pub fn role_names(&self) -> String {
        if self.roles.is_empty() {
            return "none".to_string();
        }
        self.roles
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where something happened: a channel (and thread), and the customer it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// The channel (a `D…` id for a direct message).
    pub channel: ChannelId,
    /// The thread, when inside one.
    pub thread: Option<crate::ids::MessageTs>,
    /// The customer whose channel this is.
    pub tenant: Option<TenantId>,
}

/// A refusal, with the one sentence the user sees.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Resolves people and places and decides what they may do.
#[derive(Clone)]
pub struct Authorizer {
    our_team: TeamId,
    tenants_by_channel: Arc<HashMap<ChannelId, TenantId>>,
    roles_by_user: Arc<HashMap<UserId, BTreeSet<Role>>>,
    roles_by_group: Arc<Vec<(crate::ids::UsergroupId, Role)>>,
    staff_by_tenant: Arc<HashMap<TenantId, StaffRule>>,
    customer_teams: Arc<HashMap<TenantId, Vec<TeamId>>>,
    directory: UsergroupDirectory,
}

/// How staff are told from the customer in one customer's channels: our
/// workspaces, and user groups whose members are staff whatever workspace a
/// payload names (Enterprise Grid, or events such as reactions that name none).
#[derive(Clone, Debug, Default)]
struct StaffRule {
    teams: Vec<TeamId>,
    usergroups: Vec<crate::ids::UsergroupId>,
}

impl Authorizer {
    /// Builds the authoriser from config; `directory` holds user-group members.
    pub fn new(config: &Config, directory: UsergroupDirectory) -> Self {
        let mut tenants_by_channel = HashMap::new();
        let mut staff_by_tenant = HashMap::new();
        let mut customer_teams = HashMap::new();
        for (tenant, customer) in &config.customers {
            if !customer.teams.is_empty() {
                customer_teams.insert(tenant.clone(), customer.teams.clone());
            }
            for channel in &customer.channels {
                tenants_by_channel.insert(channel.clone(), tenant.clone());
            }
            let mut teams = customer.staff.teams.clone();
            if teams.is_empty() {
                teams.push(config.team.slack_team_id.clone());
            }
            staff_by_tenant.insert(
                tenant.clone(),
                StaffRule {
                    teams,
                    usergroups: customer.staff.usergroups.clone(),
                },
            );
        }
        let mut roles_by_user: HashMap<UserId, BTreeSet<Role>> = HashMap::new();
        let mut roles_by_group = Vec::new();
        for (role, members) in &config.roles {
            for user in &members.users {
                roles_by_user.entry(user.clone()).or_default().insert(*role);
            }
            for group in &members.usergroups {
                roles_by_group.push((group.clone(), *role));
            }
        }
        Self {
            our_team: config.team.slack_team_id.clone(),
            tenants_by_channel: Arc::new(tenants_by_channel),
            roles_by_user: Arc::new(roles_by_user),
            roles_by_group: Arc::new(roles_by_group),
            staff_by_tenant: Arc::new(staff_by_tenant),
            customer_teams: Arc::new(customer_teams),
            directory,
        }
    }

    /// Who is in which user group.
    pub fn directory(&self) -> &UsergroupDirectory {
        &self.directory
    }

    /// Our own workspace.
    pub fn our_team(&self) -> &TeamId {
        &self.our_team
    }

    /// The customer a channel is registered to.
    pub fn tenant_of(&self, channel: &ChannelId) -> Option<&TenantId> {
        self.tenants_by_channel.get(channel)
    }

    /// The place for a channel and optional thread.
    pub fn place(&self, channel: ChannelId, thread: Option<crate::ids::MessageTs>) -> Place {
        let tenant = self.tenant_of(&channel).cloned();
        Place {
            channel,
            thread,
            tenant,
        }
    }

    fn configured_roles(&self, user: &UserId) -> BTreeSet<Role> {
        let mut roles = self.roles_by_user.get(user).cloned().unwrap_or_default();
        for (group, role) in self.roles_by_group.iter() {
            if self.directory.is_member(group, user) {
                roles.insert(*role);
            }
        }
        roles
    }

    /// Resolves a person. `team` is their workspace as the payload gives it
    /// (`user_team` / `user.team_id`), `None` when the payload does not say.
    ///
    /// Staff are members of our workspace. When the workspace is unknown, only
    /// people config knows by id or group count as staff: unknown people get the
    /// least privilege, never the most.
    ///
    /// In a customer's channel, the customer's `staff` rule decides: its
    /// workspaces (default ours), or membership of its staff user groups.
    pub fn actor(&self, user: UserId, team: Option<TeamId>, place: &Place) -> Actor {
        let configured = self.configured_roles(&user);
        let rule = place
            .tenant
            .as_ref()
            .and_then(|tenant| self.staff_by_tenant.get(tenant));
        let in_staff_group = rule.is_some_and(|rule| {
            rule.usergroups
                .iter()
                .any(|group| self.directory.is_member(group, &user))
        });
        let staff = in_staff_group
            || match (&team, rule) {
                (Some(team), Some(rule)) => rule.teams.contains(team),
                (Some(team), None) => team == &self.our_team,
                (None, _) => !configured.is_empty(),
            };
        if staff {
            return Actor {
                user,
                team,
                external: false,
                roles: configured,
                tenant: None,
            };
        }
        // The customer's own workspaces, when configured, decide who is the
        // customer: a member of another customer's workspace is a stranger
        // here. A payload naming no workspace leaves it to the channel.
        let customer_here = |tenant: &TenantId| match (self.customer_teams.get(tenant), &team) {
            (Some(teams), Some(team)) => teams.contains(team),
            _ => true,
        };
        let (roles, tenant) = match &place.tenant {
            Some(tenant) if customer_here(tenant) => {
                (BTreeSet::from([Role::Customer]), Some(tenant.clone()))
            }
            _ => (BTreeSet::new(), None),
        };
        Actor {
            user,
            team,
            external: true,
            roles,
            tenant,
        }
    }

    /// Decides whether `actor` may run a command meant for `audience` at `place`.
    pub fn authorize(
        &self,
        actor: &Actor,
        place: &Place,
        verb: &str,
        audience: &[Audience],
    ) -> Result<(), Denied> {
        if actor.external {
            // A customer acts only in their own tenant's channel; anywhere
            // else they are a stranger, who may only ask who they are and
            // what they can run.
            if actor.tenant.is_none() || actor.tenant != place.tenant {
                if audience.contains(&Audience::Anyone) {
                    return Ok(());
                }
                return Err(Denied(format!(
                    "`/wk {verb}` works only in your own support channel; ask there."
                )));
            }
        }
        if audience.iter().any(|a| a.admits(actor)) {
            return Ok(());
        }
        let who: Vec<&str> = audience
            .iter()
            .map(|a| match a {
                Audience::Anyone | Audience::Everyone => "everyone",
                Audience::Customer => "customers",
                Audience::Support => "support",
                Audience::Oncall => "on-call",
                Audience::Sre => "SRE",
                Audience::Admin => "admins",
            })
            .collect();
        Err(Denied(format!(
            "`/wk {verb}` is for {}; your roles here: {}. Ask an admin if you need it.",
            who.join(", "),
            actor.role_names()
        )))
    }

    /// Decides whether `actor` may press a button at `place`: our staff, and
    /// customers in their own channel (the job then checks the button's own
    /// rule). A stranger's click is refused before any job sees it.
    pub fn may_press(&self, actor: &Actor, place: &Place) -> Result<(), Denied> {
        if actor.external && (actor.tenant.is_none() || actor.tenant != place.tenant) {
            return Err(Denied(
                "these buttons are for our staff; ask in your own support channel".into(),
            ));
        }
        Ok(())
    }

    /// True when `actor` could run a command for `audience` at `place`.
    pub fn may(&self, actor: &Actor, place: &Place, verb: &str, audience: &[Audience]) -> bool {
        self.authorize(actor, place, verb, audience).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn authorizer() -> Authorizer {
        let config = config::parse("example", config::BUNDLED_EXAMPLE).unwrap();
        let directory = UsergroupDirectory::from_config(&config);
        Authorizer::new(&config, directory)
    }

    #[test]
    fn a_slack_connect_user_is_a_customer_of_that_channel_only() {
        let auth = authorizer();
        let acme = auth.place(ChannelId::from("C0ACME"), None);
        let actor = auth.actor(UserId::from("U9EXT"), Some(TeamId::from("T0ACME")), &acme);
        assert!(actor.external);
        assert_eq!(actor.roles, BTreeSet::from([Role::Customer]));
        assert_eq!(actor.tenant.as_ref().map(|t| t.as_str()), Some("acme"));

        let globex = auth.place(ChannelId::from("C0GLOBEX"), None);
        assert!(
            auth.authorize(&actor, &globex, "status", &[Audience::Customer])
                .is_err()
        );
        let ops = auth.place(ChannelId::from("C0OPS"), None);
        let stranger = auth.actor(UserId::from("U9EXT"), Some(TeamId::from("T0ACME")), &ops);
        assert!(stranger.roles.is_empty());
    }

    #[test]
    fn an_external_user_listed_in_config_is_still_a_customer() {
        // Config lists U0LEAD as admin, but a payload saying they are from another
        // workspace wins: team membership is checked before roles are granted.
        let auth = authorizer();
        let acme = auth.place(ChannelId::from("C0ACME"), None);
        let actor = auth.actor(UserId::from("U0LEAD"), Some(TeamId::from("T0ACME")), &acme);
        assert!(actor.external);
        assert!(!actor.is_admin());
    }

    #[test]
    fn roles_come_from_users_and_groups() {
        let auth = authorizer();
        let ops = auth.place(ChannelId::from("C0OPS"), None);
        let anna = auth.actor(UserId::from("U0ANNA"), Some(TeamId::from("T0STAFF")), &ops);
        assert_eq!(anna.roles, BTreeSet::from([Role::Support, Role::Oncall]));
        let lead = auth.actor(UserId::from("U0LEAD"), None, &ops);
        assert!(lead.is_admin() && lead.roles.contains(&Role::Sre));
        let nobody = auth.actor(UserId::from("U0NEW"), Some(TeamId::from("T0STAFF")), &ops);
        assert!(nobody.is_staff() && nobody.roles.is_empty());
        let err = auth
            .authorize(&nobody, &ops, "escalate", &[Audience::Support])
            .unwrap_err();
        assert!(err.0.contains("your roles here: none"), "{err}");
    }

    #[test]
    fn staff_user_groups_recognise_staff_in_a_customer_channel() {
        let text = config::BUNDLED_EXAMPLE.replace(
            "    channels: [C0GLOBEX]",
            "    channels: [C0GLOBEX]\n    staff: { teams: [T0STAFF, T0GRID], usergroups: [S0SUPPORT] }",
        );
        let config = config::parse("example", &text).unwrap();
        let auth = Authorizer::new(&config, UsergroupDirectory::from_config(&config));
        let globex = auth.place(ChannelId::from("C0GLOBEX"), None);
        // Membership of the staff group decides, whatever workspace the
        // payload names (Slack Connect events may name the source team).
        let tom = auth.actor(UserId::from("U0TOM"), Some(TeamId::from("T9ELSE")), &globex);
        assert!(tom.is_staff());
        assert!(tom.roles.contains(&Role::Support));
        // Another workspace of our Grid org is staff too.
        let grid = auth.actor(UserId::from("U0NEW"), Some(TeamId::from("T0GRID")), &globex);
        assert!(grid.is_staff());
        let customer = auth.actor(UserId::from("U9EXT"), None, &globex);
        assert!(!customer.is_staff());
        assert_eq!(customer.roles, BTreeSet::from([Role::Customer]));
    }

    #[test]
    fn with_customer_teams_another_customers_member_is_a_stranger() {
        let text = config::BUNDLED_EXAMPLE
            .replace(
                "    channels: [C0ACME]",
                "    channels: [C0ACME]\n    teams: [T9ACME]",
            )
            .replace(
                "    channels: [C0GLOBEX]",
                "    channels: [C0GLOBEX]\n    teams: [T9GLOBEX]",
            );
        let config = config::parse("example", &text).unwrap();
        let auth = Authorizer::new(&config, UsergroupDirectory::from_config(&config));
        let globex = auth.place(ChannelId::from("C0GLOBEX"), None);
        let acme_person = auth.actor(UserId::from("U9A"), Some(TeamId::from("T9ACME")), &globex);
        assert!(acme_person.external && acme_person.roles.is_empty());
        assert_eq!(acme_person.tenant, None);
        assert!(
            auth.authorize(&acme_person, &globex, "requests", &[Audience::Customer])
                .is_err()
        );
        assert!(
            auth.authorize(&acme_person, &globex, "status", &[Audience::Everyone])
                .is_err(),
            "a stranger gets help and whoami only"
        );
        assert!(
            auth.authorize(&acme_person, &globex, "help", &[Audience::Anyone])
                .is_ok()
        );
        let globex_person =
            auth.actor(UserId::from("U9G"), Some(TeamId::from("T9GLOBEX")), &globex);
        assert_eq!(globex_person.roles, BTreeSet::from([Role::Customer]));
        assert!(
            auth.authorize(&globex_person, &globex, "status", &[Audience::Everyone])
                .is_ok()
        );
        assert!(auth.may_press(&acme_person, &globex).is_err());
        assert!(auth.may_press(&globex_person, &globex).is_ok());
        let err = config::parse(
            "example",
            &text.replace("teams: [T9ACME]", "teams: [T0STAFF]"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("customers.acme.teams"), "{err}");
    }

    #[test]
    fn unknown_team_and_unknown_user_is_not_staff() {
        let auth = authorizer();
        let acme = auth.place(ChannelId::from("C0ACME"), None);
        let who = auth.actor(UserId::from("W123"), None, &acme);
        assert!(who.external);
        assert_eq!(who.roles, BTreeSet::from([Role::Customer]));
    }
}
