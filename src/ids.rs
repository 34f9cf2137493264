//! Typed identifiers: a Slack user, channel, team or user group, and a tenant.
//!
//! The core never passes raw strings where one of these fits; they are parsed
//! at the edge (Slack payloads, config, console input) and compared as-is.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier as received from Slack or config.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The identifier as Slack spells it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_string())
            }
        }
    };
}

string_id!(
    /// A Slack user id (`U…` or, on Enterprise Grid, `W…`).
    UserId
);
string_id!(
    /// A Slack channel id (`C…`, `G…` or `D…` for a direct message).
    ChannelId
);
string_id!(
    /// A Slack workspace (team) id (`T…`).
    TeamId
);
string_id!(
    /// A Slack user group id (`S…`).
    UsergroupId
);
string_id!(
    /// A customer, as named in the `customers:` section of the config.
    TenantId
);

impl ChannelId {
    /// Direct-message channels start with `D`.
    pub fn is_direct_message(&self) -> bool {
        self.0.starts_with('D')
    }
}

string_id!(
    /// A Slack message timestamp (`"1610402265.000300"`): the id of a message in
    /// its channel. Always a string; never compared as a number.
    MessageTs
);
