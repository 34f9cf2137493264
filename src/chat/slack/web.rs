//! The Slack Web API side of [`Chat`], through slack-morphism.
//!
//! The base URL comes from `SLACK_API_URL` so tests (and staging) talk to a
//! local fake. Errors are sorted into rate-limited / permanent / transient so
//! the caller knows whether to wait, give up or retry.

use crate::chat::{Chat, ChatError, Destination, Outgoing, Posted, Reply};
use crate::ids::{ChannelId, MessageTs, UserId, UsergroupId};
use futures::future::BoxFuture;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

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
];

/// Delivers replies through Slack's Web API.
#[derive(Clone)]
pub struct SlackWebChat {
    client: Arc<SlackHyperClient>,
    token: SlackApiToken,
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
        })
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
        let response = session.apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
            .await
            .map_err(classify)?;
        Ok(response.url.value().to_string())
    }

    async fn deliver(&self, message: Outgoing) -> Result<Posted, ChatError> {
        let session = self.client.open_session(&self.token);
        let content = content(&message.reply)?;
        match message.to {
            Destination::Channel { channel, thread } => {
                let request = SlackApiChatPostMessageRequest::new(channel_id(&channel), content)
                    .opt_thread_ts(thread.map(|t| SlackTs::new(t.to_string())));
                let response = session.chat_post_message(&request).await.map_err(classify)?;
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
                session.chat_post_ephemeral(&request).await.map_err(classify)?;
                Ok(Posted {
                    channel: Some(channel),
                    ts: None,
                })
            }
            Destination::Direct { user } => {
                let open = SlackApiConversationsOpenRequest::new()
                    .with_users(vec![SlackUserId::new(user.to_string())]);
                let opened = session.conversations_open(&open).await.map_err(classify)?;
                let dm = opened.channel.id;
                let request = SlackApiChatPostMessageRequest::new(dm, content);
                let response = session.chat_post_message(&request).await.map_err(classify)?;
                Ok(Posted {
                    channel: Some(ChannelId::new(response.channel.to_string())),
                    ts: Some(MessageTs::new(response.ts.to_string())),
                })
            }
            Destination::ResponseUrl { url, ephemeral } => {
                let url: SlackResponseUrl = SlackResponseUrl::new(
                    url.parse()
                        .map_err(|_| ChatError::Permanent { code: "bad_response_url".into() })?,
                );
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
}

impl Chat for SlackWebChat {
    fn send(&self, message: Outgoing) -> BoxFuture<'_, Result<Posted, ChatError>> {
        Box::pin(self.deliver(message))
    }
}

fn channel_id(channel: &ChannelId) -> SlackChannelId {
    SlackChannelId::new(channel.to_string())
}

fn content(reply: &Reply) -> Result<SlackMessageContent, ChatError> {
    let blocks: Vec<SlackBlock> = serde_json::from_value(reply.blocks_json()).map_err(|e| {
        ChatError::Permanent {
            code: format!("invalid_blocks ({e})"),
        }
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
