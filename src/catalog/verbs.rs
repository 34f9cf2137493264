//! `/wk status [component]` and `/wk changes <component> [since]`.
//!
//! A customer sees only their tenant's components: a component of another
//! tenant is "not found", and never appears in suggestions or summaries.

use super::changes::ChangeLog;
use super::graph::Catalog;
use super::health::{HealthBook, Rag};
use super::model::Component;
use super::service::CatalogService;
use crate::chat::Reply;
use crate::config::HumanDuration;
use crate::dispatch::{Call, CommandError, Verb};
use crate::store::Store;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// `/wk status`.
pub struct Status;

/// `/wk changes`.
pub struct Changes;

fn emoji(rag: Rag) -> &'static str {
    match rag {
        Rag::Red => ":red_circle:",
        Rag::Amber => ":large_orange_circle:",
        Rag::Green => ":large_green_circle:",
        Rag::Unknown => ":white_circle:",
    }
}

/// A time every reader sees in their own zone (Slack date token), with a UTC fallback.
fn when(at: DateTime<Utc>) -> String {
    crate::chat::mrkdwn::date_token(at)
}

/// Who may see what: staff see everything; a customer only their tenant's.
fn visibility(call: &Call<'_>) -> impl Fn(&Component) -> bool + use<> {
    let actor = &call.inbound.actor;
    let staff = actor.is_staff();
    let tenant = call
        .inbound
        .place
        .tenant
        .clone()
        .or_else(|| actor.tenant.clone())
        .map(|t| t.to_string());
    move |c: &Component| staff || tenant.as_deref().is_some_and(|t| c.visible_to_tenant(t))
}

/// Applies the health events other replicas recorded before answering.
async fn synced(catalog: &CatalogService, store: Store) -> Result<(), CommandError> {
    catalog
        .sync(&store)
        .await
        .map(|_| ())
        .map_err(CommandError::internal)
}

/// The component named `query` if the caller may see it, else a "not found"
/// with suggestions among what they may see.
fn resolve<'c>(
    call: &Call<'_>,
    catalog: &'c Catalog,
    query: &str,
    visible: &impl Fn(&Component) -> bool,
) -> Result<&'c Component, CommandError> {
    let found = catalog.lookup(query);
    if let Some(component) = found.filter(|c| visible(c)) {
        return Ok(component);
    }
    let suggestions: Vec<String> = catalog
        .suggest(query, 3, visible)
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    let text = call.render(
        "not_found",
        &json!({ "query": query, "suggestions": suggestions }),
    )?;
    // Another tenant's component reads exactly like one that does not exist.
    Err(match found {
        Some(_) => CommandError::NotVisible(text),
        None => CommandError::NotFound(text),
    })
}

fn component_view(book: &HealthBook, changes: &ChangeLog, c: &Component) -> Value {
    let health = book.rolled(&c.id);
    let rag = health.as_ref().map(|h| h.rag).unwrap_or_default();
    let reasons: Vec<String> = health
        .map(|h| h.reasons.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let recent: Vec<Value> = changes
        .recent(&c.id, 5)
        .into_iter()
        .map(|change| json!({ "when": when(change.at), "text": change.text }))
        .collect();
    let mut links: Vec<Value> = Vec::new();
    for (name, url) in [
        ("Runbook", &c.links.runbook),
        ("Dashboard", &c.links.dashboard),
        ("Repository", &c.links.repo),
    ] {
        if let Some(url) = url {
            links.push(json!({ "name": name, "url": url }));
        }
    }
    for (name, url) in &c.links.other {
        links.push(json!({ "name": name, "url": url }));
    }
    json!({
        "emoji": emoji(rag),
        "rag": rag.as_str(),
        "id": c.id.as_str(),
        "title": c.title,
        "kind": c.kind.as_str(),
        "owner": c.owner,
        "reasons": reasons,
        "changes": recent,
        "links": links,
    })
}

impl Verb for Status {
    fn verb(&self) -> &'static str {
        "status"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            synced(&call.env.catalog, call.work.store().clone()).await?;
            let visible = visibility(&call);
            let query = call.line.rest();
            let data = call.env.catalog.view(|book, changes| {
                let catalog = book.catalog();
                if !query.trim().is_empty() {
                    let component = resolve(&call, catalog, query.trim(), &visible)?;
                    return Ok(("component", component_view(book, changes, component)));
                }
                let mut items: Vec<(Rag, &Component)> = catalog
                    .iter()
                    .filter(|c| visible(c))
                    .map(|c| (book.rag(&c.id).unwrap_or_default(), c))
                    .collect();
                items.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
                let total = items.len();
                let green = items.iter().filter(|(rag, _)| *rag == Rag::Green).count();
                // Staff outside a customer channel get what needs attention;
                // a customer gets all of theirs.
                let everything =
                    !call.inbound.actor.is_staff() || call.inbound.place.tenant.is_some();
                let shown: Vec<Value> = items
                    .into_iter()
                    .filter(|(rag, _)| everything || matches!(rag, Rag::Red | Rag::Amber))
                    .map(|(rag, c)| {
                        let reason = book
                            .rolled(&c.id)
                            .and_then(|h| h.reasons.first().map(ToString::to_string));
                        json!({
                            "emoji": emoji(rag),
                            "rag": rag.as_str(),
                            "id": c.id.as_str(),
                            "title": c.title,
                            "reason": if rag >= Rag::Amber { reason } else { None },
                        })
                    })
                    .collect();
                Ok((
                    "summary",
                    json!({
                        "total": total,
                        "green": green,
                        "count": shown.len(),
                        "items": shown,
                        "everything": everything,
                    }),
                ))
            })?;
            let (template, data) = data;
            Ok(Reply::text(call.render(template, &data)?))
        })
    }
}

impl Verb for Changes {
    fn verb(&self) -> &'static str {
        "changes"
    }

    fn run<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let Some(query) = call.line.args.first().cloned() else {
                return Err(CommandError::Usage("say which component".into()));
            };
            let window = match call.line.args.get(1) {
                Some(text) => text.parse::<HumanDuration>().map_err(|_| {
                    CommandError::Usage(format!(
                        "`{text}` is not a time span; write one like 2h, 1d or 7d"
                    ))
                })?,
                None => HumanDuration::from_secs(7 * 86_400),
            };
            synced(&call.env.catalog, call.work.store().clone()).await?;
            let visible = visibility(&call);
            let since = call.work.now() - window.as_chrono();
            let data = call.env.catalog.view(|book, changes| {
                let component = resolve(&call, book.catalog(), &query, &visible)?;
                let list: Vec<Value> = changes
                    .since(&component.id, since)
                    .into_iter()
                    .rev()
                    .map(|change| json!({ "when": when(change.at), "text": change.text }))
                    .collect();
                Ok::<_, CommandError>(json!({
                    "id": component.id.as_str(),
                    "title": component.title,
                    "window": window.to_string(),
                    "changes": list,
                }))
            })?;
            Ok(Reply::text(call.render("list", &data)?))
        })
    }
}
