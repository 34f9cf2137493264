//! The console: Watchkeeper on a terminal, speaking like Slack, through the same
//! dispatcher and store.
//!
//! Lines starting with `/wk` are slash commands, other lines are messages in the
//! current channel, and lines starting with `:` are meta commands (switch user,
//! channel or thread, press a button, move the virtual clock). Works piped:
//! `printf '/wk help\n' | watchkeeper console`.

use crate::chat::{
    BlockAction, Chat, ChatError, Destination, Inbound, InboundKind, MessageChange, MessageEvent,
    Modal, Outgoing, Posted, ReactionEvent, Reply, SlashCommand, ViewSubmission, Visibility,
};
use crate::clock::Clock;
use crate::config::HumanDuration;
use crate::dispatch::Dispatcher;
use crate::ids::{ChannelId, MessageTs, TeamId, UserId};
use crate::store::Store;
use crate::workers::Workers;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Where console output goes (stdout, or a buffer in tests).
pub type Output = Arc<Mutex<dyn Write + Send>>;

/// A button shown on the console, remembered so `:press` can click it.
#[derive(Clone, Debug)]
struct Shown {
    label: String,
    action_id: String,
    value: String,
    channel: Option<ChannelId>,
    ts: Option<MessageTs>,
}

/// The console's [`Chat`]: prints what the bot says.
pub struct ConsoleChat {
    out: Output,
    clock: Clock,
    counter: AtomicU64,
    buttons: Mutex<Vec<Shown>>,
    modal: Mutex<Option<Modal>>,
}

impl ConsoleChat {
    /// Prints to `out`, stamping messages with `clock`.
    pub fn new(out: Output, clock: Clock) -> Self {
        Self {
            out,
            clock,
            counter: AtomicU64::new(0),
            buttons: Mutex::new(Vec::new()),
            modal: Mutex::new(None),
        }
    }

    /// A new, unique message ts at the current (virtual) time.
    pub fn next_ts(&self) -> MessageTs {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        MessageTs::new(format!(
            "{}.{:06}",
            self.clock.now().timestamp(),
            n % 1_000_000
        ))
    }

    /// Prints a line.
    pub fn print(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn remember(&self, reply: &Reply, channel: Option<ChannelId>, ts: Option<MessageTs>) {
        let mut buttons = self.buttons.lock().unwrap_or_else(|p| p.into_inner());
        for b in reply.buttons() {
            buttons.push(Shown {
                label: b.label.clone(),
                action_id: b.action_id.clone(),
                value: b.value.clone(),
                channel: channel.clone(),
                ts: ts.clone(),
            });
        }
        let excess = buttons.len().saturating_sub(50);
        buttons.drain(..excess);
    }

    fn find_button(&self, label: &str) -> Option<Shown> {
        let buttons = self.buttons.lock().unwrap_or_else(|p| p.into_inner());
        buttons
            .iter()
            .rev()
            .find(|b| b.label.eq_ignore_ascii_case(label.trim()))
            .cloned()
    }

    /// Prints a message as Slack would show it; returns where it landed.
    pub fn show(&self, message: &Outgoing) -> Posted {
        let (header, channel, ts) = match &message.to {
            Destination::Channel { channel, thread } => {
                let ts = self.next_ts();
                let place = match thread {
                    Some(t) => format!("#{channel} thread {t}"),
                    None => format!("#{channel}"),
                };
                (format!("[{place}] ({ts})"), Some(channel.clone()), Some(ts))
            }
            Destination::Ephemeral { channel, user, .. } => (
                format!("[#{channel}, only @{user} sees this]"),
                Some(channel.clone()),
                None,
            ),
            Destination::Direct { user } => {
                let ts = self.next_ts();
                (format!("[DM to @{user}] ({ts})"), None, Some(ts))
            }
            Destination::ResponseUrl { ephemeral, .. } => (
                if *ephemeral {
                    "[only you]".to_string()
                } else {
                    "[reply]".to_string()
                },
                None,
                None,
            ),
            Destination::Update { channel, ts } => (
                format!("[#{channel} message {ts} updated]"),
                Some(channel.clone()),
                Some(ts.clone()),
            ),
        };
        self.remember(&message.reply, channel.clone(), ts.clone());
        self.print(&format!(
            "wk {header}\n{}",
            indent(&message.reply.to_plain_text())
        ));
        Posted { channel, ts }
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Chat for ConsoleChat {
    fn send(&self, message: Outgoing) -> BoxFuture<'_, Result<Posted, ChatError>> {
        let posted = self.show(&message);
        Box::pin(async move { Ok(posted) })
    }

    fn react<'a>(
        &'a self,
        channel: &'a ChannelId,
        ts: &'a MessageTs,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        self.print(&format!("wk [#{channel}] reacted :{name}: to {ts}"));
        Box::pin(async { Ok(()) })
    }

    fn open_modal<'a>(
        &'a self,
        _trigger_id: &'a str,
        modal: &'a Modal,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        self.print(&format!("wk [form]\n{}", indent(&modal.to_plain_text())));
        *self.modal.lock().unwrap_or_else(|p| p.into_inner()) = Some(modal.clone());
        Box::pin(async { Ok(()) })
    }

    fn find_posted<'a>(
        &'a self,
        _to: &'a Destination,
        _key: &'a str,
        _since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<Posted>, ChatError>> {
        // What the console printed cannot be taken back or looked up; a console
        // that died mid-line has no one to show a duplicate to.
        Box::pin(async { Ok(None) })
    }
}

/// Who and where the console user is.
struct Session {
    user: UserId,
    team: TeamId,
    channel: ChannelId,
    thread: Option<MessageTs>,
    inputs: u64,
}

const META_HELP: &str = "\
Console commands:
  /wk <verb> …          run a slash command as the current user
  <text>                post a message in the current channel (or thread)
  :as <user>[@team]     act as a Slack user (another team makes you a guest), e.g. :as U9EXT@T0ACME
  :in <channel>         move to a channel, e.g. :in C0ACME
  :thread <ts>|off      reply inside a thread (the ts printed after a message), or leave it
  :react <name> [ts]    react to a message (the thread's first message by default), e.g. :react eyes
  :press <label>        click the most recent button with that label
  :submit k=v …         submit the form on screen with these values
  :advance <duration>   move the clock forward, firing what falls due on the way, e.g. :advance 2h
  :now                  show the clock
  :help                 this text
  :quit                 leave";

/// What the console drives: the dispatcher for commands, the store's inbox and
/// the workers for everything else.
pub struct Bot {
    /// Runs slash commands.
    pub dispatcher: Dispatcher,
    /// Runs the inbox, timers and outbox.
    pub workers: Workers,
    /// Holds the inbox.
    pub store: Store,
}

/// Runs the console over `input` until it ends or `:quit`.
pub async fn run<R: AsyncBufRead + Unpin>(
    dispatcher: Dispatcher,
    workers: Workers,
    store: Store,
    chat: Arc<ConsoleChat>,
    input: R,
    interactive: bool,
) -> std::io::Result<()> {
    let bot = Bot {
        dispatcher,
        workers,
        store,
    };
    let env = bot.dispatcher.env();
    let config = env.config.clone();
    let default_user = config
        .roles
        .values()
        .flat_map(|m| m.users.iter())
        .next()
        .cloned()
        .unwrap_or_else(|| UserId::from("U0CONSOLE"));
    let mut session = Session {
        user: default_user,
        team: config.team.slack_team_id.clone(),
        channel: config.team.ops_channel.clone(),
        thread: None,
        inputs: 0,
    };
    if interactive {
        chat.print(&format!(
            "Watchkeeper console — {} — you are @{} in #{}. Type :help for console commands, /wk help for the bot's.",
            config.team.name, session.user, session.channel
        ));
    }
    settle(&bot, &chat).await;
    let mut lines = input.lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(meta) = line.strip_prefix(':') {
            if !meta_command(meta, &mut session, &bot, &chat).await {
                break;
            }
            continue;
        }
        let place = env
            .authorizer
            .place(session.channel.clone(), session.thread.clone());
        let actor = env
            .authorizer
            .actor(session.user.clone(), Some(session.team.clone()), &place);
        if let Some(text) = line.strip_prefix("/wk") {
            if !(text.is_empty() || text.starts_with(' ')) {
                chat.print("  (the console knows one slash command: /wk)");
                continue;
            }
            let inbound = Inbound {
                actor,
                place,
                kind: InboundKind::Command(SlashCommand {
                    text: text.trim().to_string(),
                    response_url: None,
                    trigger_id: Some(format!("console-trigger-{}", session.inputs)),
                }),
            };
            session.inputs += 1;
            let reply = bot.dispatcher.command(&inbound).await;
            show_reply(&chat, &inbound, reply);
        } else {
            let ts = chat.next_ts();
            chat.print(&format!("  (posted as {ts})"));
            let kind = InboundKind::Message(MessageEvent {
                ts,
                text: line.to_string(),
                change: MessageChange::Posted,
                from_bot: false,
            });
            enqueue(&bot, &chat, &mut session, Inbound { actor, place, kind }).await;
        }
        settle(&bot, &chat).await;
    }
    Ok(())
}

/// Shows a command's inline reply the way Slack would.
fn show_reply(chat: &ConsoleChat, inbound: &Inbound, reply: Reply) {
    let to = match reply.visibility {
        Visibility::Ephemeral => Destination::ResponseUrl {
            url: String::new(),
            ephemeral: true,
        },
        Visibility::InChannel => Destination::Channel {
            channel: inbound.place.channel.clone(),
            thread: inbound.place.thread.clone(),
        },
    };
    chat.show(&Outgoing {
        to,
        reply,
        key: None,
    });
}

/// Puts an input into the inbox, as the HTTP ingress does for Slack's events.
async fn enqueue(bot: &Bot, chat: &ConsoleChat, session: &mut Session, inbound: Inbound) {
    session.inputs += 1;
    let key = format!(
        "console:{}:{}",
        bot.dispatcher.env().clock.now().timestamp_millis(),
        session.inputs
    );
    let now = bot.dispatcher.env().clock.now();
    if let Err(err) = bot
        .store
        .insert_timer(&crate::ingress::inbox_timer(key, &inbound, now), now)
        .await
    {
        chat.print(&format!("  (could not record that: {err})"));
    }
}

/// Runs whatever is due now and shows what it says.
async fn settle(bot: &Bot, chat: &ConsoleChat) {
    if let Err(err) = bot.workers.settle().await {
        chat.print(&format!("  (the store failed: {err})"));
    }
}

/// Runs one `:meta` command; returns false to quit.
async fn meta_command(
    meta: &str,
    session: &mut Session,
    bot: &Bot,
    chat: &Arc<ConsoleChat>,
) -> bool {
    let env = bot.dispatcher.env();
    let (name, arg) = meta.split_once(' ').unwrap_or((meta, ""));
    let arg = arg.trim();
    let place = env
        .authorizer
        .place(session.channel.clone(), session.thread.clone());
    match name {
        "quit" | "q" | "exit" => return false,
        "help" | "h" => chat.print(META_HELP),
        "as" if !arg.is_empty() => {
            let (user, team) = match arg.trim_start_matches('@').split_once('@') {
                Some((user, team)) => (user, TeamId::from(team)),
                None => (
                    arg.trim_start_matches('@'),
                    env.config.team.slack_team_id.clone(),
                ),
            };
            session.user = UserId::from(user);
            session.team = team;
            chat.print(&format!(
                "  (you are now @{} of team {})",
                session.user, session.team
            ));
        }
        "in" if !arg.is_empty() => {
            session.channel = ChannelId::from(arg.trim_start_matches('#'));
            session.thread = None;
            let whose = env
                .authorizer
                .tenant_of(&session.channel)
                .map(|t| format!(", customer {t}"))
                .unwrap_or_default();
            chat.print(&format!("  (you are now in #{}{whose})", session.channel));
        }
        "thread" if !arg.is_empty() => {
            if arg == "off" {
                session.thread = None;
                chat.print("  (left the thread)");
            } else {
                session.thread = Some(MessageTs::from(arg));
                chat.print(&format!("  (in thread {arg})"));
            }
        }
        "react" if !arg.is_empty() => {
            let (emoji, ts) = match arg.split_once(' ') {
                Some((emoji, ts)) => (emoji, Some(MessageTs::from(ts.trim()))),
                None => (arg, session.thread.clone()),
            };
            let Some(item_ts) = ts else {
                chat.print("  (say which message: :react <name> <ts>, or enter its thread first)");
                return true;
            };
            let actor =
                env.authorizer
                    .actor(session.user.clone(), Some(session.team.clone()), &place);
            let kind = InboundKind::Reaction(ReactionEvent {
                name: emoji.trim_matches(':').to_string(),
                item_ts,
                added: true,
            });
            let place = env.authorizer.place(session.channel.clone(), None);
            enqueue(bot, chat, session, Inbound { actor, place, kind }).await;
            settle(bot, chat).await;
        }
        "press" if !arg.is_empty() => match chat.find_button(arg) {
            Some(button) => {
                let channel = button.channel.unwrap_or_else(|| session.channel.clone());
                let place = env.authorizer.place(channel, session.thread.clone());
                let actor =
                    env.authorizer
                        .actor(session.user.clone(), Some(session.team.clone()), &place);
                let kind = InboundKind::BlockAction(BlockAction {
                    action_id: button.action_id,
                    value: button.value,
                    message_ts: button.ts,
                    response_url: None,
                    trigger_id: Some(format!("console-trigger-{}", session.inputs)),
                });
                enqueue(bot, chat, session, Inbound { actor, place, kind }).await;
                settle(bot, chat).await;
            }
            None => chat.print(&format!("  (no button labelled \"{arg}\" on screen)")),
        },
        "submit" => {
            let Some(modal) = chat.modal.lock().unwrap_or_else(|p| p.into_inner()).take() else {
                chat.print("  (no form on screen)");
                return true;
            };
            let mut values = std::collections::BTreeMap::new();
            for pair in crate::dispatch::CommandLine::parse(&format!("submit {arg}"))
                .map(|l| l.args)
                .unwrap_or_default()
            {
                if let Some((key, value)) = pair.split_once('=') {
                    values.insert(key.to_string(), value.to_string());
                }
            }
            let actor =
                env.authorizer
                    .actor(session.user.clone(), Some(session.team.clone()), &place);
            let kind = InboundKind::ViewSubmission(ViewSubmission {
                callback_id: modal.callback_id,
                private_metadata: modal.private_metadata,
                values,
            });
            enqueue(bot, chat, session, Inbound { actor, place, kind }).await;
            settle(bot, chat).await;
        }
        "advance" if !arg.is_empty() => match arg.parse::<HumanDuration>() {
            Ok(by) => {
                let target = env.clock.now() + by.as_chrono();
                if let Err(err) = bot.workers.advance_to(target).await {
                    chat.print(&format!("  (the store failed: {err})"));
                }
                chat.print(&format!(
                    "  (clock is now {})",
                    env.clock.now().to_rfc3339()
                ));
            }
            Err(err) => chat.print(&format!("  ({err})")),
        },
        "now" => chat.print(&format!("  (clock: {})", env.clock.now().to_rfc3339())),
        _ => chat.print(&format!("  (unknown console command :{meta}; try :help)")),
    }
    true
}
