//! Who belongs to a set of people that data defines — a playbook's
//! requesters or approvers: roles, Slack user groups, users, and customers of
//! some tenants. The decision lives here, with the rest of authorisation.

use super::{Actor, Authorizer, Denied, Place, Role};
use crate::ids::{TenantId, UserId, UsergroupId};
use std::collections::BTreeSet;

/// A set of people described by data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct People {
    /// Anyone holding one of these roles here (`customer`: see `tenants`).
    pub roles: BTreeSet<Role>,
    /// Members of these Slack user groups (staff only).
    pub usergroups: Vec<UsergroupId>,
    /// These Slack users (staff only).
    pub users: Vec<UserId>,
    /// With the `customer` role: only customers of these tenants (all when empty).
    pub tenants: Vec<TenantId>,
}

impl People {
    /// True when nobody is named at all.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.usergroups.is_empty() && self.users.is_empty()
    }
}

impl Authorizer {
    /// Decides whether `actor`, acting at `place`, is one of `people`.
    /// `scope` is the tenant the thing acted on belongs to: a customer is
    /// admitted only in their own channel, only for their own tenant.
    /// Admins are always admitted; customers never through users or groups.
    pub fn admits(
        &self,
        actor: &Actor,
        place: &Place,
        people: &People,
        scope: Option<&TenantId>,
    ) -> Result<(), Denied> {
        if actor.external {
            let Some(tenant) = actor.tenant.as_ref() else {
                return Err(Denied(
                    "you can act on this only in your own support channel".into(),
                ));
            };
            if place.tenant.as_ref() != Some(tenant) {
                return Err(Denied(
                    "you can act on this only in your own support channel".into(),
                ));
            }
            if scope.is_some_and(|scope| scope != tenant) {
                return Err(Denied("this belongs to another customer".into()));
            }
            let listed = people.tenants.is_empty() || people.tenants.contains(tenant);
            if people.roles.contains(&Role::Customer) && listed {
                return Ok(());
            }
            return Err(Denied(
                "customers are not among the people who may do this".into(),
            ));
        }
        let by_role = actor.is_admin()
            || actor
                .roles
                .iter()
                .any(|r| *r != Role::Customer && people.roles.contains(r));
        let by_name = people.users.contains(&actor.user)
            || people
                .usergroups
                .iter()
                .any(|g| self.directory.is_member(g, &actor.user));
        if by_role || by_name {
            return Ok(());
        }
        let roles: Vec<&str> = people.roles.iter().map(|r| r.name()).collect();
        Err(Denied(format!(
            "this is for {}; your roles here: {}",
            if roles.is_empty() {
                "the people named in it".to_string()
            } else {
                format!("{} (or the people named in it)", roles.join(", "))
            },
            actor.role_names()
        )))
    }

    /// Every staff member `people` names: directly, through a user group,
    /// or through a role as the configuration assigns it (never customers,
    /// never admins only for being admins).
    pub fn named_users(&self, people: &People) -> Vec<UserId> {
        let mut users: Vec<UserId> = people.users.clone();
        for group in &people.usergroups {
            users.extend(self.directory.members(group));
        }
        for (user, roles) in self.roles_by_user.iter() {
            if roles
                .iter()
                .any(|r| *r != Role::Customer && people.roles.contains(r))
            {
                users.push(user.clone());
            }
        }
        for (group, role) in self.roles_by_group.iter() {
            if *role != Role::Customer && people.roles.contains(role) {
                users.extend(self.directory.members(group));
            }
        }
        users.sort();
        users.dedup();
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UsergroupDirectory;
    use crate::config;
    use crate::ids::{ChannelId, TeamId};

    fn authorizer() -> Authorizer {
        let config = config::parse("example", config::BUNDLED_EXAMPLE).unwrap();
        Authorizer::new(&config, UsergroupDirectory::from_config(&config))
    }

    #[test]
    fn staff_by_role_group_or_name_customers_only_for_their_tenant() {
        let auth = authorizer();
        let ops = auth.place(ChannelId::from("C0OPS"), None);
        let acme = auth.place(ChannelId::from("C0ACME"), None);
        let globex = auth.place(ChannelId::from("C0GLOBEX"), None);
        let people = People {
            roles: BTreeSet::from([Role::Sre, Role::Customer]),
            usergroups: vec![UsergroupId::from("S0ONCALL")],
            users: vec![UserId::from("U0SAM")],
            tenants: vec![TenantId::from("acme")],
        };
        let staff = |u: &str, place: &Place| {
            auth.actor(UserId::from(u), Some(TeamId::from("T0STAFF")), place)
        };
        assert!(
            auth.admits(&staff("U0DANA", &ops), &ops, &people, None)
                .is_ok(),
            "sre"
        );
        assert!(
            auth.admits(&staff("U0BEN", &ops), &ops, &people, None)
                .is_ok(),
            "group"
        );
        assert!(
            auth.admits(&staff("U0SAM", &ops), &ops, &people, None)
                .is_ok(),
            "named"
        );
        assert!(
            auth.admits(&staff("U0LEAD", &ops), &ops, &people, None)
                .is_ok(),
            "admin"
        );
        assert!(
            auth.admits(&staff("U0TOM", &ops), &ops, &people, None)
                .is_err(),
            "support only"
        );
        let customer = |team: &str, place: &Place| {
            auth.actor(UserId::from("U9EXT"), Some(TeamId::from(team)), place)
        };
        let acme_person = customer("T9ACME", &acme);
        let acme_tenant = TenantId::from("acme");
        assert!(
            auth.admits(&acme_person, &acme, &people, Some(&acme_tenant))
                .is_ok()
        );
        let globex_person = customer("T9GLOBEX", &globex);
        assert!(
            auth.admits(&globex_person, &globex, &people, None).is_err(),
            "tenant not listed"
        );
        assert!(
            auth.admits(
                &globex_person,
                &globex,
                &People {
                    tenants: vec![],
                    ..people.clone()
                },
                Some(&acme_tenant)
            )
            .is_err(),
            "another customer's run"
        );
        let named = auth.named_users(&People {
            roles: BTreeSet::from([Role::Sre]),
            ..People::default()
        });
        let named: Vec<&str> = named.iter().map(UserId::as_str).collect();
        assert_eq!(
            named,
            ["U0DANA", "U0EVA", "U0FRED", "U0GINA", "U0LEAD"],
            "the sre group's members"
        );
        let named_customer = People {
            roles: BTreeSet::new(),
            users: vec![UserId::from("U9EXT")],
            ..people
        };
        assert!(
            auth.admits(&acme_person, &acme, &named_customer, None)
                .is_err(),
            "customers never by name"
        );
    }
}
