//! Turns parsed Slack payloads into transport-neutral [`Inbound`]s: who (with
//! roles and tenant, decided by the [`Authorizer`]), where and what.

use super::payload::{BlockActionPayload, CommandPayload, Event, ViewSubmissionPayload};
use crate::auth::Authorizer;
use crate::chat::{
    BlockAction, Inbound, InboundKind, MessageEvent, ReactionEvent, SlashCommand, ViewSubmission,
};
use crate::ids::{ChannelId, MessageTs, TeamId, UserId};

/// The inbound for an event we act on; `None` for events that carry nothing for us.
pub fn from_event(auth: &Authorizer, event: Event) -> Option<Inbound> {
    match event {
        Event::Message(m) => {
            let place = auth.place(
                ChannelId::new(m.channel),
                m.thread_ts.clone().map(MessageTs::new),
            );
            // Classic bot messages have no user; they are attributed to Slackbot and
            // marked as from a bot. A human message without a user is not ours to act on.
            let user = match (m.user, m.from_bot) {
                (Some(user), _) => user,
                (None, true) => "USLACKBOT".to_string(),
                (None, false) => return None,
            };
            let actor = auth.actor(UserId::new(user), m.user_team.map(TeamId::new), &place);
            Some(Inbound {
                actor,
                place,
                kind: InboundKind::Message(MessageEvent {
                    ts: MessageTs::new(m.ts),
                    text: m.text,
                    change: m.change,
                    from_bot: m.from_bot,
                }),
            })
        }
        Event::Reaction(r) => {
            let place = auth.place(ChannelId::new(r.channel), None);
            let actor = auth.actor(UserId::new(r.user), None, &place);
            Some(Inbound {
                actor,
                place,
                kind: InboundKind::Reaction(ReactionEvent {
                    name: r.reaction,
                    item_ts: MessageTs::new(r.item_ts),
                    added: r.added,
                }),
            })
        }
        Event::Ignored(_) => None,
    }
}

/// The inbound for a slash command.
pub fn from_command(auth: &Authorizer, command: CommandPayload) -> Inbound {
    let place = auth.place(ChannelId::new(command.channel_id), None);
    let team = command.user_team.or(command.team_id).map(TeamId::new);
    let actor = auth.actor(UserId::new(command.user_id), team, &place);
    Inbound {
        actor,
        place,
        kind: InboundKind::Command(SlashCommand {
            text: command.text,
            response_url: command.response_url,
            trigger_id: command.trigger_id,
        }),
    }
}

/// The inbound for a button click.
pub fn from_block_action(auth: &Authorizer, action: BlockActionPayload) -> Inbound {
    // App Home buttons have no channel: treat them as a direct message with the bot.
    let channel = action
        .channel
        .unwrap_or_else(|| format!("D{}", action.user));
    let place = auth.place(
        ChannelId::new(channel),
        action.thread_ts.map(MessageTs::new),
    );
    let actor = auth.actor(
        UserId::new(action.user),
        action.user_team.map(TeamId::new),
        &place,
    );
    Inbound {
        actor,
        place,
        kind: InboundKind::BlockAction(BlockAction {
            action_id: action.action_id,
            value: action.value,
            message_ts: action.message_ts.map(MessageTs::new),
            response_url: action.response_url,
            trigger_id: action.trigger_id,
        }),
    }
}

/// The inbound for a modal submission. The modal's `private_metadata` starts with
/// the channel it was opened from (`C123|…`), which decides the tenant.
pub fn from_view_submission(auth: &Authorizer, view: ViewSubmissionPayload) -> Inbound {
    let (channel, thread) = view_origin(&view.private_metadata);
    let channel = channel.unwrap_or_else(|| format!("D{}", view.user));
    let place = auth.place(ChannelId::new(channel), thread.map(MessageTs::new));
    let actor = auth.actor(
        UserId::new(view.user),
        view.user_team.map(TeamId::new),
        &place,
    );
    Inbound {
        actor,
        place,
        kind: InboundKind::ViewSubmission(ViewSubmission {
            callback_id: view.callback_id,
            private_metadata: view.private_metadata,
            values: view.values,
        }),
    }
}

/// Reads `channel|thread|id` from a modal's metadata, as our modals write it.
fn view_origin(metadata: &str) -> (Option<String>, Option<String>) {
    let mut parts = metadata.split('|');
    let channel = parts
        .next()
        .filter(|c| {
            c.starts_with(['C', 'G', 'D']) && c.chars().all(|ch| ch.is_ascii_alphanumeric())
        })
        .map(str::to_string);
    let thread = parts
        .next()
        .filter(|t| !t.is_empty() && channel.is_some())
        .map(str::to_string);
    (channel, thread)
}
