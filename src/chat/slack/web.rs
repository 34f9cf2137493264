//! The Slack Web API side of [`Chat`], through slack-morphism.
//!
//! The base URL comes from `SLACK_API_URL` so tests (and staging) talk to a
//! local fake. Errors are sorted into rate-limited / permanent / transient so
//! the caller knows whether to wait, give up or retry.

use crate::chat::{Chat, ChatError, Destination, Modal, Outgoing, Posted, Reply, post_marker};
use crate::ids::{ChannelId, MessageTs, UserId, UsergroupId};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Slack's own Web API base URL.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// Error codes after which retrying the same call cannot succeed.
const PERMANENT_CODES: &[&str] = &[
    "channel_not_found",
    "not_in_channel",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "is_archived",
    "msg_too_long",
    "no_text",
    "invalid_blocks",
    "invalid_arguments",
    "too_many_attachments",
    "restricted_action",
    "user_not_found",
    "user_not_in_channel",
    "cannot_dm_bot",
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
    "expired_url",
    "used_url",
    "expired_trigger_id",
    "invalid_trigger_id",
    "exchanged_trigger_id",
    "view_too_large",
    "invalid_name",
    "too_many_reactions",
    "no_item_specified",
];

/// How long one Web API call may take before it counts as failed in doubt
/// (`slack.timeout` in the configuration).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers replies through Slack's Web API.
#[derive(Clone)]
pub struct SlackWebChat {
    client: Arc<SlackHyperClient>,
    token: SlackApiToken,
    timeout: Duration,
    /// Each person's DM channel with the bot, once Slack has named it: a DM
    /// channel never changes, so `conversations.open` (Tier 3, 50/min) is
    /// called once per person and process, not once per page.
    dms: Arc<Mutex<HashMap<UserId, ChannelId>>>,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the Slack client: {0}")]
pub struct ClientSetupError(String);

impl SlackWebChat {
    /// A client for `api_url` (e.g. `https://slack.com/api`) with the bot token.
    pub fn new(api_url: &str, bot_token: &str) -> Result<Self, ClientSetupError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| ClientSetupError(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let connector = SlackClientHyperConnector::from(https)
            .with_slack_api_url(api_url.trim_end_matches('/'));
        Ok(Self {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(SlackApiTokenValue::new(bot_token.to_string())),
            timeout: DEFAULT_TIMEOUT,
            dms: Arc::default(),
        })
    }

    /// The same client, giving up on a call after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs one call within the timeout. A call that times out may have taken
    /// effect: it is a transient failure, and the outbox treats a post that
    /// failed so as in doubt (it looks for the post before sending it again).
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, ChatError>>,
    ) -> Result<T, ChatError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(ChatError::Transient(format!(
                "Slack did not answer within {} s",
                self.timeout.as_secs_f64()
            ))),
        }
    }

    /// The members of a Slack user group (`usergroups.users.list`).
    pub async fn usergroup_members(
        &self,
        group: &UsergroupId,
    ) -> Result<HashSet<UserId>, ChatError> {
        let session = self.client.open_session(&self.token);
        let response = session
            .usergroups_users_list(&SlackApiUserGroupsUsersListRequest::new(
                SlackUserGroupId::new(group.as_str().to_string()),
            ))
            .await
            .map_err(classify)?;
        Ok(response
            .users
            .into_iter()
            .map(|u| UserId::new(u.to_string()))
            .collect())
    }

    /// Opens a Socket Mode connection with the app-level token; returns the WebSocket URL.
    pub async fn open_socket_mode(&self, app_token: &str) -> Result<String, ChatError> {
        let token = SlackApiToken::new(SlackApiTokenValue::new(app_token.to_string()));
        let session = self.client.open_session(&token);
        let response = session
            .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
            .await
            .map_err(classify)?;
        Ok(response.url.value().to_string())
    }

    async fn deliver(&self, message: Outgoing) -> Result<Posted, ChatError> {
        let session = self.client.open_session(&self.token);
        let content = content(&message.reply, message.key.as_deref())?;
        match message.to {
            Destination::Channel { channel, thread } => {
                let request = SlackApiChatPostMessageRequest::new(channel_id(&channel), content)
                    .opt_thread_ts(thread.map(|t| SlackTs::new(t.to_string())));
                let response = session
                    .chat_post_message(&request)
                    .await
                    .map_err(classify)?;
                Ok(Posted {
                    channel: Some(ChannelId::new(response.channel.to_string())),
                    ts: Some(MessageTs::new(response.ts.to_string())),
                })
            }
            Destination::Ephemeral {
                channel,
                user,
                thread,
            } => {
                let request = SlackApiChatPostEphemeralRequest::new(
                    channel_id(&channel),
                    SlackUserId::new(user.to_string()),
                    content,
                )
                .opt_thread_ts(thread.map(|t| SlackTs::new(t.to_string())));
                session
                    .chat_post_ephemeral(&request)
                    .await
                    .map_err(classify)?;
                Ok(Posted {
                    channel: Some(channel),
                    ts: None,
                })
            }
            Destination::Direct { user } => {
                let dm = self.open_dm(&user).await?;
                let request = SlackApiChatPostMessageRequest::new(channel_id(&dm), content);
                let response = session
                    .chat_post_message(&request)
                    .await
                    .map_err(classify)?;
                Ok(Posted {
                    channel: Some(ChannelId::new(response.channel.to_string())),
                    ts: Some(MessageTs::new(response.ts.to_string())),
                })
            }
            Destination::ResponseUrl { url, ephemeral } => {
                let url: SlackResponseUrl =
                    SlackResponseUrl::new(url.parse().map_err(|_| ChatError::Permanent {
                        code: "bad_response_url".into(),
                    })?);
                let mut request = SlackApiPostWebhookMessageRequest::new(content);
                if !ephemeral {
                    request = request.with_replace_original(false);
                }
                self.client
                    .respond_to_event(&url, &request)
                    .await
                    .map_err(classify)?;
                Ok(Posted {
                    channel: None,
                    ts: None,
                })
            }
            Destination::Update { channel, ts } => {
                let request = SlackApiChatUpdateRequest::new(
                    channel_id(&channel),
                    content,
                    SlackTs::new(ts.to_string()),
                );
                let response = session.chat_update(&request).await.map_err(classify)?;
                Ok(Posted {
                    channel: Some(channel),
                    ts: Some(MessageTs::new(response.ts.to_string())),
                })
            }
        }
    }

    /// The DM channel with a person (`conversations.open`, idempotent on Slack's side).
    /// Remembered per person after the first call.
    async fn open_dm(&self, user: &UserId) -> Result<ChannelId, ChatError> {
        if let Some(known) = self.known_dm(user) {
            return Ok(known);
        }
        let session = self.client.open_session(&self.token);
        let open = SlackApiConversationsOpenRequest::new()
            .with_users(vec![SlackUserId::new(user.to_string())]);
        let opened = session.conversations_open(&open).await.map_err(classify)?;
        let channel = ChannelId::new(opened.channel.id.to_string());
        self.dms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user.clone(), channel.clone());
        Ok(channel)
    }

    fn known_dm(&self, user: &UserId) -> Option<ChannelId> {
        self.dms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .cloned()
    }

    async fn add_reaction(
        &self,
        channel: &ChannelId,
        ts: &MessageTs,
        name: &str,
    ) -> Result<(), ChatError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiReactionsAddRequest::new(
            channel_id(channel),
            SlackReactionName::new(name.to_string()),
            SlackTs::new(ts.to_string()),
        );
        match session.reactions_add(&request).await {
            Ok(_) => Ok(()),
            Err(SlackClientError::ApiError(e)) if e.code == "already_reacted" => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }

    async fn open_view(&self, trigger_id: &str, modal: &Modal) -> Result<(), ChatError> {
        let session = self.client.open_session(&self.token);
        let view: SlackView =
            serde_json::from_value(modal.view_json()).map_err(|e| ChatError::Permanent {
                code: format!("invalid_arguments ({e})"),
            })?;
        let request = SlackApiViewsOpenRequest::new(SlackTriggerId::new(trigger_id.into()), view);
        session.views_open(&request).await.map_err(classify)?;
        Ok(())
    }

    /// Pages through `conversations.history` (or `.replies` inside a thread)
    /// since `since`, looking for a message whose first block carries `key`'s marker.
    async fn search_marker(
        &self,
        to: &Destination,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Posted>, ChatError> {
        let (channel, thread) = match to {
            Destination::Channel { channel, thread } => (channel.clone(), thread.clone()),
            Destination::Direct { user } => (self.open_dm(user).await?, None),
            _ => return Ok(None),
        };
        let marker = post_marker(key);
        let oldest = format!("{}.000000", since.timestamp().saturating_sub(60));
        let session = self.client.open_session(&self.token);
        let mut cursor: Option<String> = None;
        for _page in 0..20 {
            let mut params: Vec<(&str, Option<String>)> = vec![
                ("channel", Some(channel.to_string())),
                ("oldest", Some(oldest.clone())),
                ("limit", Some("200".into())),
                ("cursor", cursor.clone()),
            ];
            let method = match &thread {
                Some(ts) => {
                    params.push(("ts", Some(ts.to_string())));
                    "conversations.replies"
                }
                None => "conversations.history",
            };
            let page: HistoryPage = session
                .http_session_api
                .http_get(method, &params, None)
                .await
                .map_err(classify)?;
            let found = page.messages.iter().find(|m| {
                m.get("blocks")
                    .and_then(Value::as_array)
                    .and_then(|blocks| blocks.first())
                    .and_then(|b| b.get("block_id"))
                    .and_then(Value::as_str)
                    == Some(marker.as_str())
            });
            if let Some(message) = found {
                return Ok(Some(Posted {
                    channel: Some(channel),
                    ts: message
                        .get("ts")
                        .and_then(Value::as_str)
                        .map(MessageTs::from),
                }));
            }
            cursor = page
                .response_metadata
                .and_then(|m| m.next_cursor)
                .filter(|c| !c.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        Ok(None)
    }
}

/// One page of `conversations.history` / `.replies`, read leniently: messages
/// stay JSON so a block type this client does not know cannot break the search.
#[derive(Deserialize)]
struct HistoryPage {
    #[serde(default)]
    messages: Vec<Value>,
    response_metadata: Option<HistoryCursor>,
}

#[derive(Deserialize)]
struct HistoryCursor {
    next_cursor: Option<String>,
}

impl Chat for SlackWebChat {
    fn send(&self, message: Outgoing) -> BoxFuture<'_, Result<Posted, ChatError>> {
        Box::pin(self.bounded(self.deliver(message)))
    }

    fn knows_dm(&self, user: &UserId) -> bool {
        self.known_dm(user).is_some()
    }

    fn react<'a>(
        &'a self,
        channel: &'a ChannelId,
        ts: &'a MessageTs,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(self.bounded(self.add_reaction(channel, ts, name)))
    }

    fn open_modal<'a>(
        &'a self,
        trigger_id: &'a str,
        modal: &'a Modal,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(self.bounded(self.open_view(trigger_id, modal)))
    }

    fn find_posted<'a>(
        &'a self,
        to: &'a Destination,
        key: &'a str,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<Posted>, ChatError>> {
        Box::pin(self.bounded(self.search_marker(to, key, since)))
    }
}

fn channel_id(channel: &ChannelId) -> SlackChannelId {
    SlackChannelId::new(channel.to_string())
}

fn content(reply: &Reply, key: Option<&str>) -> Result<SlackMessageContent, ChatError> {
    let json = match key {
        Some(key) => reply.blocks_json_marked(&post_marker(key)),
        None => reply.blocks_json(),
    };
    let blocks: Vec<SlackBlock> =
        serde_json::from_value(json).map_err(|e| ChatError::Permanent {
            code: format!("invalid_blocks ({e})"),
        })?;
    let mut content = SlackMessageContent::new().with_text(reply.text.clone());
    if !blocks.is_empty() {
        content = content.with_blocks(blocks);
    }
    Ok(content)
}

/// Sorts a client error into what the caller should do.
fn classify(err: SlackClientError) -> ChatError {
    match err {
        SlackClientError::RateLimitError(e) => ChatError::RateLimited {
            retry_after: e.retry_after,
        },
        SlackClientError::ApiError(e) => {
            if e.code == "ratelimited" {
                ChatError::RateLimited { retry_after: None }
            } else if PERMANENT_CODES.contains(&e.code.as_str()) {
                ChatError::Permanent { code: e.code }
            } else {
                ChatError::Transient(e.code)
            }
        }
        SlackClientError::HttpError(e) => {
            let status = e.status_code.as_u16();
            if (400..500).contains(&status) && status != 408 {
                ChatError::Permanent {
                    code: format!("http_{status}"),
                }
            } else {
                ChatError::Transient(format!("HTTP {status}"))
            }
        }
        other => ChatError::Transient(other.to_string()),
    }
}
