//! Members of Slack user groups: seeded from config, refreshed from Slack.

use crate::config::Config;
use crate::ids::{UserId, UsergroupId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// A shared, replaceable view of user-group membership.
#[derive(Clone, Default)]
pub struct UsergroupDirectory {
    groups: Arc<RwLock<HashMap<UsergroupId, HashSet<UserId>>>>,
}

impl UsergroupDirectory {
    /// Membership as written in the config's `usergroups:` section.
    pub fn from_config(config: &Config) -> Self {
        let groups = config
            .usergroups
            .iter()
            .map(|(id, users)| (id.clone(), users.iter().cloned().collect()))
            .collect();
        Self {
            groups: Arc::new(RwLock::new(groups)),
        }
    }

    /// True when `user` is a member of `group`.
    pub fn is_member(&self, group: &UsergroupId, user: &UserId) -> bool {
        match self.groups.read() {
            Ok(groups) => groups
                .get(group)
                .is_some_and(|members| members.contains(user)),
            Err(poisoned) => poisoned
                .into_inner()
                .get(group)
                .is_some_and(|members| members.contains(user)),
        }
    }

    /// The members of `group`, sorted (empty when unknown).
    pub fn members(&self, group: &UsergroupId) -> Vec<UserId> {
        let groups = match self.groups.read() {
            Ok(groups) => groups,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut members: Vec<UserId> = groups
            .get(group)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default();
        members.sort();
        members
    }

    /// Replaces one group's members (after asking Slack).
    pub fn replace(&self, group: UsergroupId, members: HashSet<UserId>) {
        let mut groups = match self.groups.write() {
            Ok(groups) => groups,
            Err(poisoned) => poisoned.into_inner(),
        };
        groups.insert(group, members);
    }

    /// The groups known, for refreshing.
    pub fn groups(&self) -> Vec<UsergroupId> {
        match self.groups.read() {
            Ok(groups) => groups.keys().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().keys().cloned().collect(),
        }
    }
}
