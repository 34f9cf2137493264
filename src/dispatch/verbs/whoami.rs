//! `/wk whoami`: the resolved user, roles and customer.

use crate::chat::Reply;
use crate::dispatch::{Call, CommandError, Verb};
use futures::future::BoxFuture;
use serde_json::json;

/// The `whoami` verb.
pub struct WhoAmI;

impl Verb for WhoAmI {
    fn verb(&self) -> &'static str {
        "whoami"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let config = &call.env.config;
            let actor = &call.inbound.actor;
            let place = &call.inbound.place;
            let customer_name = |tenant: &crate::ids::TenantId| {
                config
                    .customers
                    .get(tenant)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| tenant.to_string())
            };
            let text = call.render(
                "reply",
                &json!({
                    "user": actor.user,
                    "team": actor.team,
                    "external": actor.external,
                    "team_name": config.team.name,
                    "roles": actor.role_names(),
                    "tenant": actor.tenant,
                    "tenant_name": actor.tenant.as_ref().map(customer_name),
                    "channel_tenant": place.tenant,
                    "channel_tenant_name": place.tenant.as_ref().map(customer_name),
                }),
            )?;
            Ok(Reply::text(text))
        })
    }
}
