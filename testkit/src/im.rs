//! Chats, messages and bots, and the events a human's message sends to bots
//! (PROTOCOL.md 7.8, 7.9, 8).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Map, Value};

use crate::methods::events::event_body;
use crate::methods::ApiError;
use crate::state::{self, Config, Outgoing, State};
use crate::store::Kind;
use crate::util;

/// A stored chat message, as [`FakePortal::messages`](crate::FakePortal::messages) returns it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// Message id.
    pub id: u64,
    /// The chat it is in (private dialogs are chats too).
    pub chat_id: u64,
    /// The user (or bot) who wrote it.
    pub author_id: u64,
    /// The text (BB-code kept).
    pub text: String,
    /// `KEYBOARD` as sent, if any.
    pub keyboard: Option<Value>,
    /// `ATTACH` as sent, if any.
    pub attach: Option<Value>,
    /// `MENU` as sent, if any.
    pub menu: Option<Value>,
    /// Sent with `SYSTEM=Y`.
    pub system: bool,
    /// Deleted (without `COMPLETE=Y`, a stub stays).
    pub deleted: bool,
    /// Users (or bots) who liked it.
    pub likes: BTreeSet<u64>,
    /// Reactions (v2) to the users who set them.
    pub reactions: BTreeMap<String, BTreeSet<u64>>,
    /// When it was written, portal unix seconds.
    pub date: f64,
}

/// Event URLs of a classic bot.
#[derive(Clone, Debug, Default)]
pub(crate) struct BotHandlers {
    pub message_add: Option<String>,
    pub message_update: Option<String>,
    pub message_delete: Option<String>,
    pub welcome: Option<String>,
    pub delete: Option<String>,
}

/// Settings of a bot registered through `imbot.v2.Bot.register`.
#[derive(Clone, Debug)]
pub(crate) struct BotV2 {
    pub bot_type: String,
    pub event_mode: String,
    pub webhook_url: Option<String>,
    pub is_hidden: bool,
    pub reactions: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Bot {
    pub id: u64,
    pub code: String,
    pub bot_type: String,
    pub openline: bool,
    /// `app:<client_id>` or `hook:<CLIENT_ID or botToken>`.
    pub owner: String,
    pub client_id: String,
    pub application_token: String,
    pub handlers: BotHandlers,
    pub handler_id: u64,
    pub v2: Option<BotV2>,
}

#[derive(Clone, Debug)]
pub(crate) struct Chat {
    pub id: u64,
    /// `P` private, `C` group, `O` open.
    pub kind: String,
    pub title: String,
    pub description: String,
    pub color: String,
    pub owner: u64,
    pub users: Vec<u64>,
    pub managers: BTreeSet<u64>,
    pub entity_type: String,
    pub entity_id: String,
    pub created: f64,
}

#[derive(Clone, Debug)]
pub(crate) struct Command {
    pub bot_id: u64,
    pub command: String,
    pub handler: String,
    pub hidden: bool,
    pub lang: Value,
}

#[derive(Clone, Debug)]
pub(crate) struct EventV2 {
    pub id: u64,
    pub bot_id: u64,
    pub kind: String,
    pub date: f64,
    pub data: Value,
}

#[derive(Default)]
pub(crate) struct Im {
    pub bots: BTreeMap<u64, Bot>,
    pub chats: BTreeMap<u64, Chat>,
    pub private: HashMap<(u64, u64), u64>,
    pub messages: BTreeMap<u64, Message>,
    pub commands: BTreeMap<u64, Command>,
    pub events_v2: Vec<EventV2>,
    pub next_chat: u64,
    pub next_message: u64,
    pub next_command: u64,
    pub next_event: u64,
}

impl Im {
    pub(crate) fn new() -> Self {
        Im {
            next_chat: 900,
            next_message: 55_000,
            next_command: 0,
            ..Im::default()
        }
    }

    /// The private chat of two users, created on first use.
    pub(crate) fn private_chat(&mut self, a: u64, b: u64, now: f64) -> u64 {
        let key = (a.min(b), a.max(b));
        if let Some(id) = self.private.get(&key) {
            return *id;
        }
        self.next_chat += 1;
        let id = self.next_chat;
        self.chats.insert(
            id,
            Chat {
                id,
                kind: "P".into(),
                title: String::new(),
                description: String::new(),
                color: String::new(),
                owner: a,
                users: vec![key.0, key.1],
                managers: BTreeSet::new(),
                entity_type: String::new(),
                entity_id: String::new(),
                created: now,
            },
        );
        self.private.insert(key, id);
        id
    }

    /// A new group chat.
    pub(crate) fn group_chat(&mut self, owner: u64, title: &str, users: &[u64], now: f64) -> u64 {
        self.next_chat += 1;
        let id = self.next_chat;
        let mut members = vec![owner];
        for u in users {
            if !members.contains(u) {
                members.push(*u);
            }
        }
        self.chats.insert(
            id,
            Chat {
                id,
                kind: "C".into(),
                title: title.to_owned(),
                description: String::new(),
                color: "MINT".into(),
                owner,
                users: members,
                managers: BTreeSet::new(),
                entity_type: String::new(),
                entity_id: String::new(),
                created: now,
            },
        );
        id
    }

    /// Stores a message and returns its id.
    pub(crate) fn post(&mut self, chat_id: u64, author_id: u64, text: &str, now: f64) -> u64 {
        self.next_message += 1;
        let id = self.next_message;
        self.messages.insert(
            id,
            Message {
                id,
                chat_id,
                author_id,
                text: text.to_owned(),
                keyboard: None,
                attach: None,
                menu: None,
                system: false,
                deleted: false,
                likes: BTreeSet::new(),
                reactions: BTreeMap::new(),
                date: now,
            },
        );
        id
    }

    /// The dialog id of `chat` as `viewer` sees it: the other user's id for a private chat,
    /// `chat<N>` otherwise.
    pub(crate) fn dialog_id(&self, chat_id: u64, viewer: u64) -> String {
        match self.chats.get(&chat_id) {
            Some(c) if c.kind == "P" => c
                .users
                .iter()
                .find(|u| **u != viewer)
                .or(c.users.first())
                .map_or_else(String::new, |u| u.to_string()),
            _ => format!("chat{chat_id}"),
        }
    }

    /// Messages of a dialog: `chat<N>`, or a user id for every private chat with that user.
    pub(crate) fn dialog_messages(&self, dialog_id: &str) -> Vec<Message> {
        if let Some(n) = dialog_id
            .strip_prefix("chat")
            .and_then(|n| n.parse::<u64>().ok())
        {
            return self
                .messages
                .values()
                .filter(|m| m.chat_id == n)
                .cloned()
                .collect();
        }
        let Ok(user) = dialog_id.parse::<u64>() else {
            return Vec::new();
        };
        self.messages
            .values()
            .filter(|m| {
                self.chats
                    .get(&m.chat_id)
                    .is_some_and(|c| c.kind == "P" && c.users.contains(&user))
            })
            .cloned()
            .collect()
    }
}

/// The chat a sender's `DIALOG_ID` points at: `chat<N>` (the sender must be a member) or a
/// user id (their private chat, created on first use).
pub(crate) fn resolve_dialog(
    st: &mut State,
    cfg: &Config,
    now: f64,
    sender: u64,
    dialog_id: &str,
) -> Result<u64, ApiError> {
    let dialog_id = dialog_id.trim();
    if dialog_id.is_empty() {
        return Err(ApiError::new("DIALOG_ID_EMPTY", "Dialog ID can't be empty"));
    }
    if let Some(n) = dialog_id.strip_prefix("chat") {
        let id: u64 = n
            .parse()
            .map_err(|_| ApiError::new("DIALOG_ID_EMPTY", "Dialog ID is invalid"))?;
        let chat = st
            .im
            .chats
            .get(&id)
            .ok_or_else(|| ApiError::new("CHAT_ID_EMPTY", "Chat not found"))?;
        if !chat.users.contains(&sender) {
            return Err(ApiError::new(
                "ACCESS_ERROR",
                "You do not have access to the specified dialog",
            ));
        }
        return Ok(id);
    }
    let user: u64 = dialog_id
        .parse()
        .map_err(|_| ApiError::new("DIALOG_ID_EMPTY", "Dialog ID is invalid"))?;
    if st.table(Kind::User).get(user, &cfg.gen).is_none() {
        return Err(ApiError::new("USER_ID_EMPTY", "User not found"));
    }
    Ok(st.im.private_chat(sender, user, now))
}

fn user_fields(st: &State, cfg: &Config, id: u64) -> (String, String, String, String, bool) {
    let r = st
        .table(Kind::User)
        .get(id, &cfg.gen)
        .map(|r| r.into_owned())
        .unwrap_or_default();
    let t = |k: &str| r.get(k).and_then(util::text).unwrap_or_default();
    let is_bot = t("USER_TYPE") == "bot";
    (
        t("NAME"),
        t("LAST_NAME"),
        t("WORK_POSITION"),
        t("PERSONAL_GENDER"),
        is_bot,
    )
}

fn s(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

/// `data[USER]` of a bot event.
fn user_block(st: &State, cfg: &Config, id: u64, full: bool) -> Value {
    let (first, last, position, gender, is_bot) = user_fields(st, cfg, id);
    let mut m = Map::new();
    m.insert("ID".into(), s(id));
    m.insert("NAME".into(), s(format!("{first} {last}").trim()));
    m.insert("FIRST_NAME".into(), s(first));
    m.insert("LAST_NAME".into(), s(last));
    m.insert("WORK_POSITION".into(), s(position));
    m.insert("GENDER".into(), s(gender));
    if full {
        m.insert("IS_BOT".into(), s(util::yn(is_bot)));
        m.insert("IS_CONNECTOR".into(), s("N"));
        m.insert("IS_NETWORK".into(), s("N"));
        m.insert("IS_EXTRANET".into(), s("N"));
    }
    Value::Object(m)
}

/// The `auth` set of an event for `user_id`: the owning app's fresh tokens, or for a bot
/// registered through a webhook only the portal's addresses and the application token.
fn auth_for(st: &mut State, cfg: &Config, now: f64, bot: &Bot, user_id: u64) -> Map<String, Value> {
    let app = bot
        .owner
        .strip_prefix("app:")
        .and_then(|c| st.apps.get(c))
        .cloned();
    match app {
        Some(app) => state::auth_set(st, cfg, now, &app, user_id),
        None => {
            let mut m = Map::new();
            m.insert("domain".into(), s(st.domain()));
            m.insert("client_endpoint".into(), s(format!("{}/rest/", st.base())));
            m.insert(
                "server_endpoint".into(),
                s(format!("{}/rest/", st.oauth_base())),
            );
            m.insert("member_id".into(), s(&cfg.member_id));
            m.insert("application_token".into(), s(&bot.application_token));
            m
        }
    }
}

/// `data[BOT]`: the bot's own token set keyed by its id (PROTOCOL.md 7.8).
fn bot_block(st: &mut State, cfg: &Config, now: f64, bot: &Bot) -> Value {
    let auth = auth_for(st, cfg, now, bot, bot.id);
    // Order as the portal sends it: ..., member_id, refresh_token, user_id, client_id, application_token.
    let mut set = Map::new();
    for key in [
        "access_token",
        "expires",
        "expires_in",
        "scope",
        "domain",
        "server_endpoint",
        "status",
        "client_endpoint",
        "member_id",
        "refresh_token",
        "user_id",
    ] {
        if let Some(v) = auth.get(key) {
            set.insert(key.into(), v.clone());
        }
    }
    set.insert("client_id".into(), s(&bot.client_id));
    set.insert("application_token".into(), s(&bot.application_token));
    let mut entry = set.clone();
    entry.insert("AUTH".into(), Value::Object(set));
    entry.insert("BOT_ID".into(), s(bot.id));
    entry.insert("BOT_CODE".into(), s(&bot.code));
    let mut m = Map::new();
    m.insert(bot.id.to_string(), Value::Object(entry));
    Value::Object(m)
}

fn template_id(message_id: u64) -> String {
    let h = util::hex(util::hash(&[message_id, 0x7E]), 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A human's message in a chat: stored, then delivered to the bots that see it.
/// Returns the message id.
pub(crate) fn human_message(
    st: &mut State,
    cfg: &Config,
    now: f64,
    user_id: u64,
    dialog_id: &str,
    text: &str,
    out: &mut Vec<Outgoing>,
) -> Result<u64, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::new("MESSAGE_EMPTY", "Message can't be empty"));
    }
    let chat_id = resolve_dialog(st, cfg, now, user_id, dialog_id)?;
    let message_id = st.im.post(chat_id, user_id, text, now);
    let chat = st.im.chats[&chat_id].clone();
    let targets: Vec<Bot> = chat
        .users
        .iter()
        .filter(|u| **u != user_id)
        .filter_map(|u| st.im.bots.get(u).cloned())
        .filter(|b| {
            chat.kind == "P"
                || b.bot_type == "S"
                || b.v2.as_ref().is_some_and(|v| v.bot_type == "supervisor")
                || text.contains(&format!("[USER={}]", b.id))
                || text.contains(&format!("[user={}]", b.id))
        })
        .collect();
    for bot in targets {
        if bot.v2.is_some() {
            v2_message_event(st, cfg, now, &bot, &chat, message_id, user_id, text, out);
            continue;
        }
        let Some(url) = bot.handlers.message_add.clone() else {
            continue;
        };
        let data = message_add_data(st, cfg, now, &bot, &chat, message_id, user_id, text);
        let auth = auth_for(st, cfg, now, &bot, user_id);
        out.push(Outgoing {
            event: "ONIMBOTMESSAGEADD".into(),
            url,
            body: event_body("ONIMBOTMESSAGEADD", bot.handler_id, data, now, auth),
        });
    }
    Ok(message_id)
}

#[allow(clippy::too_many_arguments)]
fn message_add_data(
    st: &mut State,
    cfg: &Config,
    now: f64,
    bot: &Bot,
    chat: &Chat,
    message_id: u64,
    user_id: u64,
    text: &str,
) -> Value {
    let private = chat.kind == "P";
    let mention = format!("[USER={}]", bot.id);
    let clean = strip_mention(text, bot.id);
    let mut p = Map::new();
    p.insert(
        "MESSAGE".into(),
        s(if private { text.to_owned() } else { clean }),
    );
    p.insert("TEMPLATE_ID".into(), s(template_id(message_id)));
    p.insert("MESSAGE_TYPE".into(), s(&chat.kind));
    p.insert("FROM_USER_ID".into(), s(user_id));
    p.insert(
        "DIALOG_ID".into(),
        s(if private {
            user_id.to_string()
        } else {
            format!("chat{}", chat.id)
        }),
    );
    p.insert("TO_CHAT_ID".into(), s(chat.id));
    p.insert("AUTHOR_ID".into(), s(user_id));
    p.insert("SYSTEM".into(), s("N"));
    if private {
        p.insert("TO_USER_ID".into(), s(bot.id));
    }
    for (k, v) in [
        ("PUSH", "Y"),
        ("PUSH_IMPORTANT", "N"),
        ("RECENT_SKIP_AUTHOR", "N"),
        ("CONVERT", "N"),
        ("SKIP_COMMAND", "N"),
        ("SKIP_COUNTER_INCREMENTS", "N"),
        ("SILENT_CONNECTOR", "N"),
        ("SKIP_CONNECTOR", "N"),
        ("IMPORTANT_CONNECTOR", "N"),
        ("NO_SESSION_OL", "N"),
        ("FAKE_RELATION", "0"),
        ("SKIP_URL_INDEX", "N"),
        ("COMMAND_CONTEXT", "TEXTAREA"),
    ] {
        p.insert(k.into(), s(v));
    }
    p.insert("CHAT_USER_COUNT".into(), s(chat.users.len()));
    p.insert("PLATFORM_CONTEXT".into(), s("web"));
    p.insert("MESSAGE_ID".into(), s(message_id));
    p.insert("CHAT_TYPE".into(), s(&chat.kind));
    p.insert("LANGUAGE".into(), s(&cfg.language));
    if !private {
        let prev = st
            .im
            .messages
            .range(..message_id)
            .rev()
            .find(|(_, m)| m.chat_id == chat.id)
            .map_or(0, |(id, _)| *id);
        p.insert("CHAT_ID".into(), s(chat.id));
        p.insert("CHAT_TITLE".into(), s(&chat.title));
        p.insert("CHAT_AUTHOR_ID".into(), s(chat.owner));
        p.insert("CHAT_AVATAR".into(), s(""));
        p.insert("CHAT_COLOR".into(), s(&chat.color));
        p.insert("CHAT_ENTITY_TYPE".into(), s(&chat.entity_type));
        p.insert("CHAT_ENTITY_ID".into(), s(&chat.entity_id));
        p.insert("CHAT_ENTITY_DATA_1".into(), s(""));
        p.insert("CHAT_ENTITY_DATA_2".into(), s(""));
        p.insert("CHAT_ENTITY_DATA_3".into(), s(""));
        p.insert("CHAT_EXTRANET".into(), s("N"));
        p.insert("CHAT_PREV_MESSAGE_ID".into(), s(prev));
        p.insert("CHAT_CAN_POST".into(), s("MEMBER"));
        p.insert("RID".into(), s(0));
        p.insert(
            "IS_MANAGER".into(),
            s(util::yn(chat.managers.contains(&user_id))),
        );
        if text.contains(&mention) || text.contains(&mention.to_lowercase()) {
            p.insert(
                "MENTIONED_LIST".into(),
                json!({bot.id.to_string(): bot.id.to_string()}),
            );
        }
        p.insert("MESSAGE_ORIGINAL".into(), s(text));
    }
    let mut data = Map::new();
    data.insert("BOT".into(), bot_block(st, cfg, now, bot));
    data.insert("PARAMS".into(), Value::Object(p));
    data.insert("USER".into(), user_block(st, cfg, user_id, true));
    Value::Object(data)
}

/// Removes `[USER=<bot>]...[/USER]` from a message, as the portal does for `MESSAGE`.
fn strip_mention(text: &str, bot_id: u64) -> String {
    let mut out = text.to_owned();
    for open in [format!("[USER={bot_id}]"), format!("[user={bot_id}]")] {
        while let Some(start) = out.find(&open) {
            let rest = &out[start..];
            let end = rest
                .to_ascii_uppercase()
                .find("[/USER]")
                .map_or(open.len(), |e| e + "[/USER]".len());
            out.replace_range(start..start + end, "");
        }
    }
    out.trim().to_owned()
}

/// ONIMBOTJOINCHAT for `bot` joining `chat`, opened or added by `user_id`.
pub(crate) fn join_event(
    st: &mut State,
    cfg: &Config,
    now: f64,
    bot: &Bot,
    chat_id: u64,
    user_id: u64,
    out: &mut Vec<Outgoing>,
) {
    let Some(chat) = st.im.chats.get(&chat_id).cloned() else {
        return;
    };
    if bot.v2.is_some() {
        let data = json!({"bot": {"id": bot.id, "code": bot.code}, "chat": chat_v2(st, &chat, bot.id), "user": user_v2(st, cfg, user_id), "language": cfg.language});
        v2_event(st, cfg, now, bot, "ONIMBOTV2JOINCHAT", data, out);
        return;
    }
    let Some(url) = bot.handlers.welcome.clone() else {
        return;
    };
    let private = chat.kind == "P";
    let mut p = Map::new();
    p.insert("CHAT_TYPE".into(), s(&chat.kind));
    p.insert("MESSAGE_TYPE".into(), s(&chat.kind));
    p.insert("BOT_ID".into(), s(bot.id));
    p.insert("USER_ID".into(), s(user_id));
    p.insert(
        "DIALOG_ID".into(),
        s(if private {
            user_id.to_string()
        } else {
            format!("chat{chat_id}")
        }),
    );
    p.insert("LANGUAGE".into(), s(&cfg.language));
    if private {
        p.insert("TO_USER_ID".into(), s(bot.id));
        p.insert("FROM_USER_ID".into(), s(user_id));
    } else {
        p.insert("CHAT_ID".into(), s(chat_id));
        p.insert("CHAT_AUTHOR_ID".into(), s(chat.owner));
        p.insert("CHAT_ENTITY_TYPE".into(), s(&chat.entity_type));
        p.insert("CHAT_ENTITY_ID".into(), s(&chat.entity_id));
        p.insert("ACCESS_HISTORY".into(), s(1));
    }
    let mut data = Map::new();
    data.insert("BOT".into(), bot_block(st, cfg, now, bot));
    data.insert("PARAMS".into(), Value::Object(p));
    data.insert("USER".into(), user_block(st, cfg, user_id, false));
    let auth = auth_for(st, cfg, now, bot, user_id);
    out.push(Outgoing {
        event: "ONIMBOTJOINCHAT".into(),
        url,
        body: event_body(
            "ONIMBOTJOINCHAT",
            bot.handler_id,
            Value::Object(data),
            now,
            auth,
        ),
    });
}

/// ONIMBOTDELETE for a removed bot: `data[BOT_ID]`, `data[BOT_CODE]`.
pub(crate) fn delete_event(
    st: &mut State,
    cfg: &Config,
    now: f64,
    bot: &Bot,
    user_id: u64,
    out: &mut Vec<Outgoing>,
) {
    if bot.v2.is_some() {
        let data = json!({"bot": {"id": bot.id, "code": bot.code}});
        v2_event(st, cfg, now, bot, "ONIMBOTV2DELETE", data, out);
        return;
    }
    let Some(url) = bot.handlers.delete.clone() else {
        return;
    };
    let auth = auth_for(st, cfg, now, bot, user_id);
    let data = json!({"BOT_ID": bot.id.to_string(), "BOT_CODE": bot.code});
    out.push(Outgoing {
        event: "ONIMBOTDELETE".into(),
        url,
        body: event_body("ONIMBOTDELETE", bot.handler_id, data, now, auth),
    });
}

/// Removes a bot: its user, private chats and memberships. Returns it.
pub(crate) fn remove_bot(st: &mut State, bot_id: u64) -> Option<Bot> {
    let bot = st.im.bots.remove(&bot_id)?;
    st.table_mut(Kind::User).delete(bot_id);
    let private: Vec<u64> = st
        .im
        .chats
        .values()
        .filter(|c| c.kind == "P" && c.users.contains(&bot_id))
        .map(|c| c.id)
        .collect();
    for id in private {
        st.im.chats.remove(&id);
        st.im.messages.retain(|_, m| m.chat_id != id);
    }
    st.im
        .private
        .retain(|(a, b), _| *a != bot_id && *b != bot_id);
    for c in st.im.chats.values_mut() {
        c.users.retain(|u| *u != bot_id);
    }
    st.im.commands.retain(|_, c| c.bot_id != bot_id);
    Some(bot)
}

// ---------------------------------------------------------------------------------------
// imbot.v2 shapes and events
// ---------------------------------------------------------------------------------------

/// A user in the v2 (camelCase) shape.
pub(crate) fn user_v2(st: &State, cfg: &Config, id: u64) -> Value {
    let (first, last, position, gender, is_bot) = user_fields(st, cfg, id);
    json!({
        "id": id, "active": true, "name": format!("{first} {last}").trim(), "firstName": first,
        "lastName": last, "workPosition": position, "color": "#df532d", "avatar": "",
        "gender": gender, "birthday": "", "extranet": false, "bot": is_bot, "connector": false,
        "externalAuthId": if is_bot { "bot" } else { "default" }, "status": "online", "idle": false,
        "lastActivityDate": false, "mobileLastDate": false, "desktopLastDate": false,
        "absent": false, "departments": [1], "phones": false,
        "type": if is_bot { "bot" } else { "user" }, "website": "", "email": "",
    })
}

/// A bot in the v2 shape.
pub(crate) fn bot_v2(st: &State, bot: &Bot) -> Value {
    let v2 = bot.v2.clone().unwrap_or(BotV2 {
        bot_type: match bot.bot_type.as_str() {
            "S" => "supervisor",
            "O" => "openline",
            _ => "bot",
        }
        .into(),
        event_mode: "webhook".into(),
        webhook_url: bot.handlers.message_add.clone(),
        is_hidden: false,
        reactions: false,
    });
    let count_message = st
        .im
        .messages
        .values()
        .filter(|m| m.author_id == bot.id)
        .count();
    let count_chat = st
        .im
        .chats
        .values()
        .filter(|c| c.users.contains(&bot.id))
        .count();
    let count_command = st
        .im
        .commands
        .values()
        .filter(|c| c.bot_id == bot.id)
        .count();
    json!({
        "id": bot.id, "code": bot.code, "type": v2.bot_type, "isHidden": v2.is_hidden,
        "isSupportOpenline": bot.openline, "isReactionsEnabled": v2.reactions,
        "backgroundId": Value::Null, "language": "en", "moduleId": "rest",
        "appId": bot.client_id, "eventMode": v2.event_mode, "countMessage": count_message,
        "countCommand": count_command, "countChat": count_chat, "countUser": count_chat,
    })
}

/// A chat in the v2 shape, as `viewer` sees it.
pub(crate) fn chat_v2(st: &State, chat: &Chat, viewer: u64) -> Value {
    let last = st
        .im
        .messages
        .values()
        .rev()
        .find(|m| m.chat_id == chat.id)
        .map_or(0, |m| m.id);
    let count = st
        .im
        .messages
        .values()
        .filter(|m| m.chat_id == chat.id)
        .count();
    json!({
        "id": chat.id, "dialogId": st.im.dialog_id(chat.id, viewer), "name": chat.title,
        "type": if chat.kind == "P" { "private" } else { "chat" }, "messageType": chat.kind,
        "owner": chat.owner, "color": chat.color, "avatar": "", "description": chat.description,
        "extranet": false, "role": if chat.owner == viewer { "owner" } else { "member" },
        "entityType": chat.entity_type, "entityId": chat.entity_id,
        "lastMessageId": last, "lastId": last, "messageCount": count,
        "userCounter": chat.users.len(), "managerList": chat.managers.iter().collect::<Vec<_>>(),
    })
}

/// A message in the v2 shape.
pub(crate) fn message_v2(m: &Message, tz: i32) -> Value {
    json!({
        "id": m.id, "chatId": m.chat_id, "authorId": m.author_id,
        "date": crate::clock::iso(m.date, tz), "text": m.text, "isSystem": m.system,
        "uuid": Value::Null, "forward": Value::Null, "params": {}, "viewedByOthers": false,
        "unread": false, "viewed": true,
    })
}

#[allow(clippy::too_many_arguments)]
fn v2_message_event(
    st: &mut State,
    cfg: &Config,
    now: f64,
    bot: &Bot,
    chat: &Chat,
    message_id: u64,
    user_id: u64,
    _text: &str,
    out: &mut Vec<Outgoing>,
) {
    let Some(m) = st.im.messages.get(&message_id).cloned() else {
        return;
    };
    let data = json!({
        "bot": {"id": bot.id, "code": bot.code},
        "message": message_v2(&m, cfg.gen.tz),
        "chat": chat_v2(st, chat, bot.id),
        "user": user_v2(st, cfg, user_id),
        "language": cfg.language,
    });
    v2_event(st, cfg, now, bot, "ONIMBOTV2MESSAGEADD", data, out);
}

/// Queues a v2 event for `imbot.v2.Event.get` (fetch mode) or POSTs it (webhook mode).
fn v2_event(
    st: &mut State,
    cfg: &Config,
    now: f64,
    bot: &Bot,
    kind: &str,
    data: Value,
    out: &mut Vec<Outgoing>,
) {
    let Some(v2) = &bot.v2 else {
        return;
    };
    if v2.event_mode == "webhook" {
        let Some(url) = v2.webhook_url.clone() else {
            return;
        };
        let auth = auth_for(st, cfg, now, bot, bot.id);
        let mut data = data;
        if let Some(b) = data.get_mut("bot").and_then(Value::as_object_mut) {
            b.insert("auth".into(), Value::Object(auth.clone()));
        }
        out.push(Outgoing {
            event: kind.to_owned(),
            url,
            body: event_body(kind, bot.handler_id, data, now, auth),
        });
        return;
    }
    st.im.next_event += 1;
    let id = st.im.next_event;
    st.im.events_v2.push(EventV2 {
        id,
        bot_id: bot.id,
        kind: kind.to_owned(),
        date: now,
        data,
    });
}
