//! `/wk help [command]`: only what the caller may run here.

use crate::chat::Reply;
use crate::dispatch::{Call, CommandError, Verb};
use futures::future::BoxFuture;
use serde_json::json;

/// The `help` verb.
pub struct Help;

impl Verb for Help {
    fn verb(&self) -> &'static str {
        "help"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let env = call.env;
            let actor = &call.inbound.actor;
            let place = &call.inbound.place;
            let allowed = |spec: &&crate::dispatch::CommandSpec| {
                env.authorizer.may(actor, place, &spec.verb, &spec.audience)
            };
            if let Some(wanted) = call.line.args.first() {
                let wanted = wanted.to_lowercase();
                let spec = env
                    .manifest
                    .get(&wanted)
                    .filter(allowed)
                    .ok_or_else(|| {
                        CommandError::NotFound(format!(
                            "There is no `/wk {wanted}` you can run here. `/wk help` lists what you can."
                        ))
                    })?;
                let text = call.render(
                    "detail",
                    &json!({
                        "usage": spec.usage,
                        "summary": spec.summary,
                        "help": spec.help.trim(),
                        "arguments": spec.arguments,
                    }),
                )?;
                return Ok(Reply::text(text));
            }
            let commands: Vec<_> = env
                .manifest
                .commands()
                .filter(allowed)
                .map(|spec| json!({ "verb": spec.verb, "usage": spec.usage, "summary": spec.summary }))
                .collect();
            let text = call.render("list", &json!({ "commands": commands }))?;
            Ok(Reply::text(text))
        })
    }
}
