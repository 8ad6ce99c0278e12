//! Chat-bot methods: classic `imbot.*`, the `imbot.v2.*` core, and `im.message.*` for humans.

use serde_json::{json, Map, Value};

use super::{ApiError, Ctx, Outcome, Reply};
use crate::im::{self, Bot, BotHandlers, BotV2, Command};
use crate::state::Caller;
use crate::store::{Kind, Record};
use crate::util::{self, get, p_bool, p_str, p_u64};
use bitrix24::codes;

/// Method names served here.
pub(crate) const KNOWN: &[&str] = &[
    "imbot.register",
    "imbot.unregister",
    "imbot.update",
    "imbot.bot.list",
    "imbot.message.add",
    "imbot.message.update",
    "imbot.message.delete",
    "imbot.message.like",
    "imbot.chat.add",
    "imbot.chat.get",
    "imbot.dialog.get",
    "imbot.chat.leave",
    "imbot.chat.sendTyping",
    "imbot.chat.setManager",
    "imbot.chat.setOwner",
    "imbot.chat.updateTitle",
    "imbot.chat.updateColor",
    "imbot.chat.updateAvatar",
    "imbot.chat.user.add",
    "imbot.chat.user.delete",
    "imbot.chat.user.list",
    "imbot.command.register",
    "imbot.command.update",
    "imbot.command.unregister",
    "imbot.command.answer",
    "imbot.v2.Bot.register",
    "imbot.v2.Bot.list",
    "imbot.v2.Bot.get",
    "imbot.v2.Bot.unregister",
    "imbot.v2.Chat.Message.send",
    "imbot.v2.Chat.Message.update",
    "imbot.v2.Chat.Message.delete",
    "imbot.v2.Chat.Message.get",
    "imbot.v2.Event.get",
    "im.message.add",
    "im.message.update",
    "im.message.delete",
];

const COLORS: &[&str] = &[
    "RED",
    "GREEN",
    "MINT",
    "LIGHT_BLUE",
    "DARK_BLUE",
    "PURPLE",
    "AQUA",
    "PINK",
    "LIME",
    "BROWN",
    "AZURE",
    "KHAKI",
    "SAND",
    "MARENGO",
    "GRAY",
    "GRAPHITE",
];

/// Largest `KEYBOARD`/`ATTACH`/`MENU`, bytes.
const MAX_BLOCK: usize = 30 * 1024;

pub(crate) fn dispatch(ctx: &mut Ctx<'_>, method: &str, p: &Value) -> Option<Outcome> {
    Some(match method {
        "imbot.register" => register(ctx, p),
        "imbot.unregister" => unregister(ctx, p),
        "imbot.update" => update(ctx, p),
        "imbot.bot.list" => bot_list(ctx),
        "imbot.message.add" => message_add(ctx, p),
        "imbot.message.update" => message_update(ctx, p),
        "imbot.message.delete" => message_delete(ctx, p),
        "imbot.message.like" => message_like(ctx, p),
        "imbot.chat.add" => chat_add(ctx, p),
        "imbot.chat.get" => chat_get(ctx, p),
        "imbot.dialog.get" => dialog_get(ctx, p),
        "imbot.chat.leave"
        | "imbot.chat.sendtyping"
        | "imbot.chat.setmanager"
        | "imbot.chat.setowner"
        | "imbot.chat.updatetitle"
        | "imbot.chat.updatecolor"
        | "imbot.chat.updateavatar"
        | "imbot.chat.user.add"
        | "imbot.chat.user.delete"
        | "imbot.chat.user.list" => chat_op(ctx, method, p),
        "imbot.command.register" => command_register(ctx, p),
        "imbot.command.update" | "imbot.command.unregister" => command_change(ctx, method, p),
        "imbot.command.answer" => command_answer(ctx, p),
        "imbot.v2.bot.register" => v2_register(ctx, p),
        "imbot.v2.bot.list" => v2_list(ctx, p),
        "imbot.v2.bot.get" => v2_get(ctx, p),
        "imbot.v2.bot.unregister" => v2_unregister(ctx, p),
        "imbot.v2.chat.message.send" => v2_send(ctx, p),
        "imbot.v2.chat.message.update" => v2_update(ctx, p),
        "imbot.v2.chat.message.delete" => v2_delete(ctx, p),
        "imbot.v2.chat.message.get" => v2_message_get(ctx, p),
        "imbot.v2.event.get" => v2_event_get(ctx, p),
        "im.message.add" => im_message_add(ctx, p),
        "im.message.update" => im_message_update(ctx, p),
        "im.message.delete" => im_message_delete(ctx, p),
        _ => return None,
    })
}

/// Who owns bots registered by this caller: the app, or a webhook's `CLIENT_ID`/`botToken`.
fn owner(ctx: &Ctx<'_>, p: &Value, token_key: &str) -> Result<(String, String), ApiError> {
    match ctx.caller {
        Caller::OAuth { client_id, .. } => Ok((format!("app:{client_id}"), client_id.clone())),
        Caller::Webhook { .. } => match p_str(p, token_key) {
            Some(id) => Ok((format!("hook:{id}"), id)),
            None => Err(ApiError::new(
                codes::ACCESS_DENIED,
                format!("Access denied! {token_key} not specified"),
            )),
        },
    }
}

fn bot_error() -> ApiError {
    ApiError::new("BOT_ID_ERROR", "Bot not found")
}

/// The caller's bot: `key` if given (must be the caller's), else its first bot.
fn own_bot(ctx: &Ctx<'_>, p: &Value, key: &str, token_key: &str) -> Result<Bot, ApiError> {
    let (owner, _) = owner(ctx, p, token_key)?;
    match p_u64(p, key) {
        Some(id) => match ctx.st.im.bots.get(&id) {
            Some(b) if b.owner == owner => Ok(b.clone()),
            _ => Err(bot_error()),
        },
        None => ctx
            .st
            .im
            .bots
            .values()
            .find(|b| b.owner == owner)
            .cloned()
            .ok_or_else(bot_error),
    }
}

fn add_bot_user(
    ctx: &mut Ctx<'_>,
    name: &str,
    last_name: &str,
    position: &str,
    gender: &str,
) -> u64 {
    let mut r = Record::new();
    let sv = |v: &str| Value::String(v.to_owned());
    r.insert("XML_ID".into(), sv(""));
    r.insert("ACTIVE".into(), Value::Bool(true));
    r.insert("NAME".into(), sv(name));
    r.insert("LAST_NAME".into(), sv(last_name));
    r.insert("SECOND_NAME".into(), sv(""));
    r.insert("EMAIL".into(), sv(""));
    r.insert("IS_ONLINE".into(), sv("Y"));
    r.insert("PERSONAL_GENDER".into(), sv(gender));
    r.insert("WORK_POSITION".into(), sv(position));
    r.insert("UF_DEPARTMENT".into(), json!([]));
    r.insert("USER_TYPE".into(), sv("bot"));
    ctx.st.table_mut(Kind::User).add(r)
}

fn register(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let (owner, client_id) = owner(ctx, p, "CLIENT_ID")?;
    let code =
        p_str(p, "CODE").ok_or_else(|| ApiError::new("CODE_ERROR", "Bot code isn't specified"))?;
    if ctx.st.im.bots.values().any(|b| b.code == code) {
        return Err(ApiError::new(
            "CODE_ERROR",
            "Bot with this code is already registered",
        ));
    }
    let props = util::p_obj(p, "PROPERTIES").unwrap_or_default();
    let props = Value::Object(props);
    let name = p_str(&props, "NAME").unwrap_or_default();
    let last = p_str(&props, "LAST_NAME").unwrap_or_default();
    if name.is_empty() && last.is_empty() {
        return Err(ApiError::new("NAME_ERROR", "Bot name isn't specified"));
    }
    let all = p_str(p, "EVENT_HANDLER");
    let url = |k: &str| p_str(p, k).or_else(|| all.clone());
    let bot_type = p_str(p, "TYPE")
        .unwrap_or_else(|| "B".into())
        .to_ascii_uppercase();
    let openline = bot_type == "O" || p_bool(p, "OPENLINE").unwrap_or(false);
    let handlers = BotHandlers {
        message_add: url("EVENT_MESSAGE_ADD"),
        message_update: url("EVENT_MESSAGE_UPDATE")
            .filter(|_| openline || !matches!(bot_type.as_str(), "B" | "H")),
        message_delete: url("EVENT_MESSAGE_DELETE")
            .filter(|_| openline || !matches!(bot_type.as_str(), "B" | "H")),
        welcome: url("EVENT_WELCOME_MESSAGE"),
        delete: url("EVENT_BOT_DELETE"),
    };
    for (v, k) in [
        (&handlers.message_add, "EVENT_MESSAGE_ADD"),
        (&handlers.welcome, "EVENT_WELCOME_MESSAGE"),
        (&handlers.delete, "EVENT_BOT_DELETE"),
    ] {
        if v.is_none() {
            return Err(ApiError::new(
                &format!("{k}_ERROR"),
                format!("Handler for \"{k}\" isn't specified"),
            ));
        }
    }
    if ctx.st.im.bots.values().filter(|b| b.owner == owner).count() >= 5 {
        return Err(ApiError::new(
            "MAX_COUNT_ERROR",
            "Has reached the maximum number of bots for application (max: 5)",
        ));
    }
    let application_token = application_token(ctx, &owner);
    let id = add_bot_user(
        ctx,
        &name,
        &last,
        &p_str(&props, "WORK_POSITION").unwrap_or_default(),
        &p_str(&props, "PERSONAL_GENDER").unwrap_or_default(),
    );
    let handler_id = ctx.st.handler_id();
    ctx.st.im.bots.insert(
        id,
        Bot {
            id,
            code,
            bot_type,
            openline,
            owner,
            client_id,
            application_token,
            handlers,
            handler_id,
            v2: None,
        },
    );
    Ok(Reply::ok(json!(id)))
}

/// The application token events carry for bots of `owner`.
fn application_token(ctx: &Ctx<'_>, owner: &str) -> String {
    match owner.strip_prefix("app:").and_then(|c| ctx.st.apps.get(c)) {
        Some(app) => app.application_token.clone(),
        None => util::hex(util::hash(&[ctx.cfg.seed, util::hash_str(owner)]), 32),
    }
}

fn unregister(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = own_bot(ctx, p, "BOT_ID", "CLIENT_ID")?;
    if p_u64(p, "BOT_ID").is_none() {
        return Err(bot_error());
    }
    im::remove_bot(ctx.st, bot.id);
    let user = ctx.caller.user_id();
    im::delete_event(ctx.st, ctx.cfg, ctx.now, &bot, user, ctx.out);
    Ok(Reply::ok(json!(true)))
}

fn update(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = own_bot(ctx, p, "BOT_ID", "CLIENT_ID")?;
    let fields = util::p_obj(p, "FIELDS")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::new("WRONG_REQUEST", "Nothing to update"))?;
    let f = Value::Object(fields);
    let mut b = bot.clone();
    if let Some(code) = p_str(&f, "CODE") {
        b.code = code;
    }
    let all = p_str(&f, "EVENT_HANDLER");
    let set = |slot: &mut Option<String>, key: &str| {
        if let Some(u) = p_str(&f, key).or_else(|| all.clone()) {
            *slot = Some(u);
        }
    };
    set(&mut b.handlers.message_add, "EVENT_MESSAGE_ADD");
    set(&mut b.handlers.message_update, "EVENT_MESSAGE_UPDATE");
    set(&mut b.handlers.message_delete, "EVENT_MESSAGE_DELETE");
    set(&mut b.handlers.welcome, "EVENT_WELCOME_MESSAGE");
    set(&mut b.handlers.delete, "EVENT_BOT_DELETE");
    if let Some(props) = util::p_obj(&f, "PROPERTIES") {
        if let Some(mut r) = ctx
            .st
            .table(Kind::User)
            .get(bot.id, &ctx.cfg.gen)
            .map(|r| r.into_owned())
        {
            for (k, v) in props {
                if let Some(t) = util::text(&v) {
                    r.insert(k.to_ascii_uppercase(), Value::String(t));
                }
            }
            ctx.st.table_mut(Kind::User).put(bot.id, r);
        }
    }
    ctx.st.im.bots.insert(bot.id, b);
    Ok(Reply::ok(json!(true)))
}

fn bot_list(ctx: &mut Ctx<'_>) -> Outcome {
    let mut m = Map::new();
    for b in ctx.st.im.bots.values() {
        let name = ctx
            .st
            .table(Kind::User)
            .get(b.id, &ctx.cfg.gen)
            .and_then(|r| r.get("NAME").and_then(util::text))
            .unwrap_or_default();
        m.insert(b.id.to_string(), json!({"ID": b.id.to_string(), "NAME": name, "CODE": b.code, "OPENLINE": util::yn(b.openline)}));
    }
    Ok(Reply::ok(util::php_array(m)))
}

/// `KEYBOARD`/`ATTACH`/`MENU`: an object, a list, or JSON text; `N` or empty (`""`,
/// `null`, `[]`, `{}`: all `key=` in a query string) clears.
fn block(p: &Value, key: &str) -> Result<Option<Option<Value>>, ApiError> {
    let Some(v) = get(p, key) else {
        return Ok(None);
    };
    let parsed = match v {
        Value::String(s) if s.is_empty() || s == "N" => return Ok(Some(None)),
        Value::Array(a) if a.is_empty() => return Ok(Some(None)),
        Value::Object(m) if m.is_empty() => return Ok(Some(None)),
        Value::String(s) => serde_json::from_str::<Value>(s).map_err(|_| {
            ApiError::new(&format!("{key}_ERROR"), format!("Incorrect {key} params"))
        })?,
        Value::Null => return Ok(Some(None)),
        other => other.clone(),
    };
    if !(parsed.is_object() || parsed.is_array()) {
        return Err(ApiError::new(
            &format!("{key}_ERROR"),
            format!("Incorrect {key} params"),
        ));
    }
    if serde_json::to_string(&parsed).map_or(0, |s| s.len()) > MAX_BLOCK {
        return Err(ApiError::new(
            &format!("{key}_OVERSIZE"),
            format!("You have exceeded the maximum allowable size of {key}"),
        ));
    }
    Ok(Some(Some(parsed)))
}

/// Stores a message from `author` with the optional blocks of `p`.
fn store_message(
    ctx: &mut Ctx<'_>,
    author: u64,
    chat_id: u64,
    text: &str,
    p: &Value,
    system: bool,
) -> Result<u64, ApiError> {
    let keyboard = block(p, "KEYBOARD")?.flatten();
    let attach = block(p, "ATTACH")?.flatten();
    let menu = block(p, "MENU")?.flatten();
    if text.trim().is_empty() && attach.is_none() {
        return Err(ApiError::new("MESSAGE_EMPTY", "Message can't be empty"));
    }
    let id = ctx.st.im.post(chat_id, author, text.trim(), ctx.now);
    if let Some(m) = ctx.st.im.messages.get_mut(&id) {
        m.keyboard = keyboard;
        m.attach = attach;
        m.menu = menu;
        m.system = system;
    }
    Ok(id)
}

fn message_add(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = own_bot(ctx, p, "BOT_ID", "CLIENT_ID")?;
    let text = get(p, "MESSAGE").and_then(util::text).unwrap_or_default();
    let (chat_id, system) = match (p_u64(p, "FROM_USER_ID"), p_u64(p, "TO_USER_ID")) {
        (Some(from), Some(to)) if from > 0 && to > 0 => {
            (ctx.st.im.private_chat(from, to, ctx.now), true)
        }
        _ => {
            let dialog = p_str(p, "DIALOG_ID")
                .ok_or_else(|| ApiError::new("DIALOG_ID_EMPTY", "Dialog ID can't be empty"))?;
            (
                im::resolve_dialog(ctx.st, ctx.cfg, ctx.now, bot.id, &dialog)?,
                p_bool(p, "SYSTEM").unwrap_or(false),
            )
        }
    };
    let id = store_message(ctx, bot.id, chat_id, &text, p, system)?;
    Ok(Reply::ok(json!(id)))
}

/// The message `MESSAGE_ID`, which `author` must have written.
fn own_message(ctx: &Ctx<'_>, p: &Value, key: &str, author: u64) -> Result<u64, ApiError> {
    let id = p_u64(p, key)
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::new("MESSAGE_ID_ERROR", "Message ID can't be empty"))?;
    match ctx.st.im.messages.get(&id) {
        Some(m) if m.author_id == author && !m.deleted => Ok(id),
        Some(_) => Err(ApiError::new(
            "CANT_EDIT_MESSAGE",
            "Time has expired for modification or you don't have access",
        )),
        None => Err(ApiError::new("MESSAGE_ID_ERROR", "Message not found")),
    }
}

fn edit_message(ctx: &mut Ctx<'_>, id: u64, p: &Value) -> Result<(), ApiError> {
    let keyboard = block(p, "KEYBOARD")?;
    let attach = block(p, "ATTACH")?;
    let menu = block(p, "MENU")?;
    let text = get(p, "MESSAGE").map(|v| util::text(v).unwrap_or_default());
    let Some(m) = ctx.st.im.messages.get_mut(&id) else {
        return Err(ApiError::new("MESSAGE_ID_ERROR", "Message not found"));
    };
    if let Some(k) = keyboard {
        m.keyboard = k;
    }
    if let Some(a) = attach {
        m.attach = a;
    }
    if let Some(x) = menu {
        m.menu = x;
    }
    match text {
        Some(t) if t.trim().is_empty() => {
            m.deleted = true;
            m.text = String::new();
        }
        Some(t) => m.text = t.trim().to_owned(),
        None => {}
    }
    Ok(())
}

fn message_update(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = own_bot(ctx, p, "BOT_ID", "CLIENT_ID")?;
    let id = own_message(ctx, p, "MESSAGE_ID", bot.id)?;
    edit_message(ctx, id, p)?;
    Ok(Reply::ok(json!(true)))
}

fn delete_message(ctx: &mut Ctx<'_>, id: u64, complete: bool) {
    if complete {
        ctx.st.im.messages.remove(&id);
    } else if let Some(m) = ctx.st.im.messages.get_mut(&id) {
        m.deleted = true;
        m.text = String::new();
        m.keyboard = None;
        m.attach = None;
    }
}

fn message_delete(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = own_bot(ctx, p, "BOT_ID", "CLIENT_ID")?;
    let id = own_message(ctx, p, "MESSAGE_ID", bot.id)?;
    delete_message(ctx, id, p_bool(p, "COMPLETE").unwrap_or(false));
    Ok(Reply::ok(json!(true)))
}

fn message_like(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = own_bot(ctx, p, "BOT_ID", "CLIENT_ID")?;
    let id = p_u64(p, "MESSAGE_ID")
        .ok_or_else(|| ApiError::new("MESSAGE_ID_ERROR", "Message ID can't be empty"))?;
    let action = p_str(p, "ACTION")
        .unwrap_or_else(|| "auto".into())
        .to_ascii_lowercase();
    let m = ctx
        .st
        .im
        .messages
        .get_mut(&id)
        .ok_or_else(|| ApiError::new("MESSAGE_ID_ERROR", "Message not found"))?;
    let liked = m.likes.contains(&bot.id);
    let want = match action.as_str() {
        "plus" => true,
        "minus" => false,
        _ => !liked,
    };
    if want == liked {
        return Err(ApiError::new(
            "WITHOUT_CHANGES",
            "Action completed without changes",
        ));
    }
    if want {
        m.likes.insert(bot.id);
    } else {
        m.likes.remove(&bot.id);
    }
    Ok(Reply::ok(json!(true)))
}

fn users_param(p: &Value, key: &str) -> Result<Vec<u64>, ApiError> {
    util::p_list(p, key)
        .iter()
        .map(|v| {
            util::as_u64(v).ok_or_else(|| {
                ApiError::new(
                    "INVALID_FORMAT",
                    format!("{key} must be a list of user ids"),
                )
            })
        })
        .collect()
}

fn chat_add(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = own_bot(ctx, p, "BOT_ID", "CLIENT_ID")?;
    let users = users_param(p, "USERS")?;
    let title = p_str(p, "TITLE").unwrap_or_default();
    let id = ctx.st.im.group_chat(bot.id, &title, &users, ctx.now);
    let color = p_str(p, "COLOR").map(|c| c.to_ascii_uppercase());
    if let Some(c) = ctx.st.im.chats.get_mut(&id) {
        if p_str(p, "TYPE").is_some_and(|t| t.eq_ignore_ascii_case("OPEN")) {
            c.kind = "O".into();
        }
        c.description = p_str(p, "DESCRIPTION").unwrap_or_default();
        if let Some(color) = color.filter(|c| COLORS.contains(&c.as_str())) {
            c.color = color;
        }
        c.entity_type = p_str(p, "ENTITY_TYPE").unwrap_or_default();
        c.entity_id = p_str(p, "ENTITY_ID").unwrap_or_default();
    }
    if let Some(m) = p_str(p, "MESSAGE") {
        let mid = ctx.st.im.post(id, bot.id, &m, ctx.now);
        if let Some(msg) = ctx.st.im.messages.get_mut(&mid) {
            msg.system = true;
        }
    }
    joined(ctx, id, &users, bot.id);
    Ok(Reply::ok(json!(id)))
}

/// ONIMBOTJOINCHAT for every bot among `users` that joined `chat_id`.
fn joined(ctx: &mut Ctx<'_>, chat_id: u64, users: &[u64], by: u64) {
    for u in users {
        if *u == by {
            continue;
        }
        if let Some(b) = ctx.st.im.bots.get(u).cloned() {
            im::join_event(
                ctx.st,
                ctx.cfg,
                ctx.now,
                &b,
                chat_id,
                ctx.caller.user_id(),
                ctx.out,
            );
        }
    }
}

fn chat_get(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let (Some(t), Some(e)) = (p_str(p, "ENTITY_TYPE"), p_str(p, "ENTITY_ID")) else {
        return Ok(Reply::ok(Value::Null));
    };
    let found = ctx
        .st
        .im
        .chats
        .values()
        .find(|c| c.entity_type == t && c.entity_id == e);
    Ok(Reply::ok(
        found.map_or(Value::Null, |c| json!({"ID": c.id})),
    ))
}

fn dialog_get(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let dialog = p_str(p, "DIALOG_ID")
        .ok_or_else(|| ApiError::new("DIALOG_ID_EMPTY", "Dialog ID can't be empty"))?;
    let viewer = match p_u64(p, "BOT_ID") {
        Some(b) => b,
        None => ctx.caller.user_id(),
    };
    let chat_id = im::resolve_dialog(ctx.st, ctx.cfg, ctx.now, viewer, &dialog)?;
    let c = ctx.st.im.chats[&chat_id].clone();
    let last = ctx
        .st
        .im
        .messages
        .values()
        .rev()
        .find(|m| m.chat_id == chat_id)
        .map_or(0, |m| m.id);
    let count = ctx
        .st
        .im
        .messages
        .values()
        .filter(|m| m.chat_id == chat_id)
        .count();
    Ok(Reply::ok(json!({
        "id": c.id, "dialog_id": ctx.st.im.dialog_id(c.id, viewer), "parent_chat_id": 0, "parent_message_id": 0,
        "name": c.title, "description": c.description, "owner": c.owner, "extranet": false, "avatar": "",
        "color": c.color, "type": if c.kind == "P" { "private" } else { "chat" }, "message_type": c.kind,
        "role": if c.owner == viewer { "OWNER" } else { "MEMBER" }, "counter": 0, "user_counter": c.users.len(),
        "message_count": count, "unread_id": 0, "last_message_id": last, "last_id": last, "marked_id": 0,
        "disk_folder_id": 0, "entity_type": c.entity_type, "entity_id": c.entity_id, "entity_data_1": "",
        "entity_data_2": "", "entity_data_3": "", "entity_link": {}, "date_create": crate::clock::iso(c.created, ctx.cfg.gen.tz),
        "mute_list": [], "manager_list": c.managers.iter().collect::<Vec<_>>(), "readed_list": [], "last_message_views": {},
        "restrictions": {}, "permissions": {}, "public": "", "text_field_enabled": true, "background_id": Value::Null, "is_new": false,
    })))
}

fn chat_op(ctx: &mut Ctx<'_>, method: &str, p: &Value) -> Outcome {
    let bot = own_bot(ctx, p, "BOT_ID", "CLIENT_ID")?;
    if method == "imbot.chat.sendtyping" {
        let dialog = p_str(p, "DIALOG_ID")
            .ok_or_else(|| ApiError::new("DIALOG_ID_EMPTY", "Dialog ID can't be empty"))?;
        im::resolve_dialog(ctx.st, ctx.cfg, ctx.now, bot.id, &dialog)?;
        return Ok(Reply::ok(json!(true)));
    }
    let chat_id = p_u64(p, "CHAT_ID")
        .ok_or_else(|| ApiError::new("CHAT_ID_EMPTY", "Chat ID can't be empty"))?;
    let chat = ctx
        .st
        .im
        .chats
        .get(&chat_id)
        .filter(|c| c.kind != "P")
        .cloned()
        .ok_or_else(|| ApiError::new("CHAT_ID_EMPTY", "Chat not found"))?;
    if !chat.users.contains(&bot.id) {
        return Err(ApiError::new(
            "ACCESS_ERROR",
            "You don't have access to this chat",
        ));
    }
    let user = || {
        p_u64(p, "USER_ID").ok_or_else(|| ApiError::new("USER_ID_EMPTY", "User ID can't be empty"))
    };
    match method {
        "imbot.chat.user.list" => return Ok(Reply::ok(json!(chat.users))),
        "imbot.chat.user.add" => {
            let users = users_param(p, "USERS")?;
            if users.is_empty() {
                return Err(ApiError::new("USER_ID_EMPTY", "Users can't be empty"));
            }
            let fresh: Vec<u64> = users
                .iter()
                .copied()
                .filter(|u| !chat.users.contains(u))
                .collect();
            if let Some(c) = ctx.st.im.chats.get_mut(&chat_id) {
                c.users.extend(&fresh);
            }
            joined(ctx, chat_id, &fresh, bot.id);
        }
        _ => {
            let c = ctx
                .st
                .im
                .chats
                .get_mut(&chat_id)
                .ok_or_else(|| ApiError::new("CHAT_ID_EMPTY", "Chat not found"))?;
            match method {
                "imbot.chat.leave" => c.users.retain(|u| *u != bot.id),
                "imbot.chat.setmanager" => {
                    let u = user()?;
                    if p_bool(p, "IS_MANAGER").unwrap_or(true) {
                        c.managers.insert(u);
                    } else {
                        c.managers.remove(&u);
                    }
                }
                "imbot.chat.setowner" => c.owner = user()?,
                "imbot.chat.updatetitle" => {
                    c.title = p_str(p, "TITLE")
                        .ok_or_else(|| ApiError::new("TITLE_EMPTY", "Title can't be empty"))?
                }
                "imbot.chat.updatecolor" => {
                    let color = p_str(p, "COLOR")
                        .map(|c| c.to_ascii_uppercase())
                        .filter(|c| COLORS.contains(&c.as_str()))
                        .ok_or_else(|| {
                            ApiError::new("WRONG_COLOR", "This color is not available")
                        })?;
                    c.color = color;
                }
                "imbot.chat.updateavatar" => {
                    p_str(p, "AVATAR")
                        .ok_or_else(|| ApiError::new("AVATAR_ERROR", "Avatar can't be empty"))?;
                }
                "imbot.chat.user.delete" => {
                    let u = user()?;
                    c.users.retain(|x| *x != u);
                }
                _ => {}
            }
        }
    }
    Ok(Reply::ok(json!(true)))
}

fn command_register(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = own_bot(ctx, p, "BOT_ID", "CLIENT_ID")?;
    let command = p_str(p, "COMMAND")
        .ok_or_else(|| ApiError::new("COMMAND_ERROR", "Command can't be empty"))?;
    let handler = p_str(p, "EVENT_COMMAND_ADD").ok_or_else(|| {
        ApiError::new(
            "EVENT_COMMAND_ADD",
            "Handler for \"Command add\" event isn't specified",
        )
    })?;
    let lang = get(p, "LANG")
        .cloned()
        .filter(|l| !l.is_null())
        .ok_or_else(|| ApiError::new("LANG_ERROR", "Lang set can't be empty"))?;
    ctx.st.im.next_command += 1;
    let id = ctx.st.im.next_command;
    ctx.st.im.commands.insert(
        id,
        Command {
            bot_id: bot.id,
            command: command.trim_start_matches('/').to_owned(),
            handler,
            hidden: p_bool(p, "HIDDEN").unwrap_or(false),
            lang,
        },
    );
    Ok(Reply::ok(json!(id)))
}

fn command_change(ctx: &mut Ctx<'_>, method: &str, p: &Value) -> Outcome {
    let (owner, _) = owner(ctx, p, "CLIENT_ID")?;
    let id = p_u64(p, "COMMAND_ID")
        .ok_or_else(|| ApiError::new("COMMAND_ID_ERROR", "Command not found"))?;
    let bot_id = ctx
        .st
        .im
        .commands
        .get(&id)
        .map(|c| c.bot_id)
        .ok_or_else(|| ApiError::new("COMMAND_ID_ERROR", "Command not found"))?;
    if ctx.st.im.bots.get(&bot_id).is_none_or(|b| b.owner != owner) {
        return Err(ApiError::new(
            "APP_ID_ERROR",
            "Command was installed by another application",
        ));
    }
    if method == "imbot.command.unregister" {
        ctx.st.im.commands.remove(&id);
        return Ok(Reply::ok(json!(true)));
    }
    let fields = util::p_obj(p, "FIELDS")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::new("WRONG_REQUEST", "Nothing to update"))?;
    let f = Value::Object(fields);
    if let Some(c) = ctx.st.im.commands.get_mut(&id) {
        if let Some(cmd) = p_str(&f, "COMMAND") {
            c.command = cmd.trim_start_matches('/').to_owned();
        }
        if let Some(h) = p_str(&f, "EVENT_COMMAND_ADD") {
            c.handler = h;
        }
        if let Some(h) = p_bool(&f, "HIDDEN") {
            c.hidden = h;
        }
        if let Some(l) = get(&f, "LANG") {
            c.lang = l.clone();
        }
    }
    Ok(Reply::ok(json!(true)))
}

fn command_answer(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let (owner, _) = owner(ctx, p, "CLIENT_ID")?;
    let command = match p_u64(p, "COMMAND_ID") {
        Some(id) => ctx.st.im.commands.get(&id).cloned(),
        None => p_str(p, "COMMAND").and_then(|name| {
            ctx.st
                .im
                .commands
                .values()
                .find(|c| c.command == name.trim_start_matches('/'))
                .cloned()
        }),
    }
    .ok_or_else(|| ApiError::new("COMMAND_ID_ERROR", "Command not found"))?;
    if ctx
        .st
        .im
        .bots
        .get(&command.bot_id)
        .is_none_or(|b| b.owner != owner)
    {
        return Err(ApiError::new(
            "APP_ID_ERROR",
            "Command was installed by another application",
        ));
    }
    let source = p_u64(p, "MESSAGE_ID")
        .and_then(|id| ctx.st.im.messages.get(&id))
        .map(|m| m.chat_id)
        .ok_or_else(|| ApiError::new("MESSAGE_ID_ERROR", "Message not found"))?;
    let text = get(p, "MESSAGE").and_then(util::text).unwrap_or_default();
    let id = store_message(
        ctx,
        command.bot_id,
        source,
        &text,
        p,
        p_bool(p, "SYSTEM").unwrap_or(false),
    )?;
    Ok(Reply::ok(json!(id)))
}

// ---------------------------------------------------------------------------------------
// imbot.v2 core
// ---------------------------------------------------------------------------------------

fn v2_bot(ctx: &Ctx<'_>, p: &Value) -> Result<Bot, ApiError> {
    own_bot(ctx, p, "botId", "botToken")
}

fn v2_register(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let fields = util::p_obj(p, "fields")
        .ok_or_else(|| ApiError::new("WRONG_REQUEST", "Field 'fields' is required"))?;
    let f = Value::Object(fields);
    let token_holder = json!({"botToken": p_str(&f, "botToken").or_else(|| p_str(p, "botToken"))});
    let (owner, client_id) = owner(ctx, &token_holder, "botToken")?;
    let code =
        p_str(&f, "code").ok_or_else(|| ApiError::new("CODE_ERROR", "Bot code isn't specified"))?;
    // Idempotent per code and owner: the existing bot comes back unchanged.
    if let Some(b) = ctx
        .st
        .im
        .bots
        .values()
        .find(|b| b.code == code && b.owner == owner)
        .cloned()
    {
        return Ok(Reply::ok(
            json!({"bot": im::bot_v2(ctx.st, &b), "users": [im::user_v2(ctx.st, ctx.cfg, b.id)]}),
        ));
    }
    if ctx.st.im.bots.values().any(|b| b.code == code) {
        return Err(ApiError::new(
            "CODE_ERROR",
            "Bot with this code is already registered",
        ));
    }
    let props = util::p_obj(&f, "properties")
        .map(Value::Object)
        .unwrap_or(Value::Null);
    let name = p_str(&props, "name")
        .ok_or_else(|| ApiError::new("NAME_ERROR", "Bot name isn't specified"))?;
    if ctx.st.im.bots.values().filter(|b| b.owner == owner).count() >= 100 {
        return Err(ApiError::new(
            "MAX_COUNT_ERROR",
            "Has reached the maximum number of bots for application (max: 100)",
        ));
    }
    let event_mode = p_str(&f, "eventMode").unwrap_or_else(|| "fetch".into());
    let webhook_url = p_str(&f, "webhookUrl");
    if event_mode == "webhook" && webhook_url.is_none() {
        return Err(ApiError::new(
            "WEBHOOK_URL_ERROR",
            "webhookUrl is required for eventMode webhook",
        ));
    }
    let bot_type = p_str(&f, "type").unwrap_or_else(|| "bot".into());
    let application_token = application_token(ctx, &owner);
    let id = add_bot_user(
        ctx,
        &name,
        &p_str(&props, "lastName").unwrap_or_default(),
        &p_str(&props, "workPosition").unwrap_or_default(),
        &p_str(&props, "gender").unwrap_or_default(),
    );
    let handler_id = ctx.st.handler_id();
    let bot = Bot {
        id,
        code,
        bot_type: if bot_type == "supervisor" {
            "S".into()
        } else {
            "B".into()
        },
        openline: p_bool(&f, "isSupportOpenline").unwrap_or(false),
        owner,
        client_id,
        application_token,
        handlers: BotHandlers::default(),
        handler_id,
        v2: Some(BotV2 {
            bot_type,
            event_mode,
            webhook_url,
            is_hidden: p_bool(&f, "isHidden").unwrap_or(false),
            reactions: p_bool(&f, "isReactionsEnabled").unwrap_or(false),
        }),
    };
    ctx.st.im.bots.insert(id, bot.clone());
    Ok(Reply::ok(
        json!({"bot": im::bot_v2(ctx.st, &bot), "users": [im::user_v2(ctx.st, ctx.cfg, id)]}),
    ))
}

fn v2_list(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let owner = owner(ctx, p, "botToken").ok().map(|o| o.0);
    let offset = p_u64(p, "offset").unwrap_or(0) as usize;
    let limit = p_u64(p, "limit").unwrap_or(50).clamp(1, 1000) as usize;
    let mine: Vec<Bot> = ctx
        .st
        .im
        .bots
        .values()
        .filter(|b| owner.as_ref().is_none_or(|o| *o == b.owner))
        .cloned()
        .collect();
    let page: Vec<&Bot> = mine.iter().skip(offset).take(limit).collect();
    let bots: Vec<Value> = page.iter().map(|b| im::bot_v2(ctx.st, b)).collect();
    let users: Vec<Value> = page
        .iter()
        .map(|b| im::user_v2(ctx.st, ctx.cfg, b.id))
        .collect();
    Ok(Reply::ok(
        json!({"bots": bots, "users": users, "hasNextPage": offset + page.len() < mine.len()}),
    ))
}

fn v2_get(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = match p_str(p, "code") {
        Some(code) if p_u64(p, "botId").is_none() => {
            let (owner, _) = owner(ctx, p, "botToken")?;
            ctx.st
                .im
                .bots
                .values()
                .find(|b| b.code == code && b.owner == owner)
                .cloned()
                .ok_or_else(bot_error)?
        }
        _ => v2_bot(ctx, p)?,
    };
    Ok(Reply::ok(
        json!({"bot": im::bot_v2(ctx.st, &bot), "users": [im::user_v2(ctx.st, ctx.cfg, bot.id)]}),
    ))
}

fn v2_unregister(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = v2_bot(ctx, p)?;
    im::remove_bot(ctx.st, bot.id);
    let user = ctx.caller.user_id();
    im::delete_event(ctx.st, ctx.cfg, ctx.now, &bot, user, ctx.out);
    Ok(Reply::ok(json!({"result": true})))
}

/// v2 `fields` as the classic upper-case params `store_message` reads.
fn v2_fields(p: &Value) -> Value {
    let f = util::p_obj(p, "fields")
        .map(Value::Object)
        .unwrap_or(Value::Null);
    let mut m = Map::new();
    for (from, to) in [
        ("message", "MESSAGE"),
        ("keyboard", "KEYBOARD"),
        ("attach", "ATTACH"),
    ] {
        if let Some(v) = get(&f, from) {
            m.insert(to.into(), v.clone());
        }
    }
    if let Some(s) = p_bool(&f, "system") {
        m.insert("SYSTEM".into(), json!(util::yn(s)));
    }
    Value::Object(m)
}

fn v2_send(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = v2_bot(ctx, p)?;
    let dialog = p_str(p, "dialogId")
        .ok_or_else(|| ApiError::new("DIALOG_ID_EMPTY", "Dialog ID can't be empty"))?;
    let chat_id = im::resolve_dialog(ctx.st, ctx.cfg, ctx.now, bot.id, &dialog)?;
    let fields = v2_fields(p);
    let text = get(&fields, "MESSAGE")
        .and_then(util::text)
        .unwrap_or_default();
    let text: String = text.chars().take(20_000).collect();
    let system = p_bool(&fields, "SYSTEM").unwrap_or(false);
    let id = store_message(ctx, bot.id, chat_id, &text, &fields, system)?;
    Ok(Reply::ok(json!({"id": id, "uuidMap": []})))
}

fn v2_update(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = v2_bot(ctx, p)?;
    let id = own_message(ctx, p, "messageId", bot.id)?;
    edit_message(ctx, id, &v2_fields(p))?;
    Ok(Reply::ok(json!({"result": true})))
}

fn v2_delete(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = v2_bot(ctx, p)?;
    let id = own_message(ctx, p, "messageId", bot.id)?;
    delete_message(ctx, id, p_bool(p, "complete").unwrap_or(false));
    Ok(Reply::ok(json!({"result": true})))
}

fn v2_message_get(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = v2_bot(ctx, p)?;
    let id = p_u64(p, "messageId")
        .ok_or_else(|| ApiError::new("MESSAGE_ID_ERROR", "Message ID can't be empty"))?;
    let m = ctx
        .st
        .im
        .messages
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::new("MESSAGE_ID_ERROR", "Message not found"))?;
    if !ctx
        .st
        .im
        .chats
        .get(&m.chat_id)
        .is_some_and(|c| c.users.contains(&bot.id))
    {
        return Err(ApiError::new(
            "ACCESS_ERROR",
            "You don't have access to this message",
        ));
    }
    Ok(Reply::ok(
        json!({"message": im::message_v2(&m, ctx.cfg.gen.tz), "user": im::user_v2(ctx.st, ctx.cfg, m.author_id)}),
    ))
}

fn v2_event_get(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let bot = v2_bot(ctx, p)?;
    let offset = p_u64(p, "offset").unwrap_or(0);
    let limit = p_u64(p, "limit").unwrap_or(100).clamp(1, 1000) as usize;
    let all: Vec<&im::EventV2> = ctx
        .st
        .im
        .events_v2
        .iter()
        .filter(|e| e.bot_id == bot.id && e.id > offset)
        .collect();
    let page: Vec<Value> = all
        .iter()
        .take(limit)
        .map(|e| json!({"eventId": e.id, "type": e.kind, "date": crate::clock::iso(e.date, ctx.cfg.gen.tz), "data": e.data}))
        .collect();
    let next = all.iter().take(limit).next_back().map_or(offset, |e| e.id);
    Ok(Reply::ok(
        json!({"events": page, "nextOffset": next, "hasMore": all.len() > limit}),
    ))
}

// ---------------------------------------------------------------------------------------
// im.message.*: a human (the calling user) writes
// ---------------------------------------------------------------------------------------

fn im_message_add(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let dialog = p_str(p, "DIALOG_ID")
        .ok_or_else(|| ApiError::new("DIALOG_ID_EMPTY", "Dialog ID can't be empty"))?;
    let text = get(p, "MESSAGE").and_then(util::text).unwrap_or_default();
    let user = ctx.caller.user_id();
    block(p, "KEYBOARD")?;
    block(p, "ATTACH")?;
    let id = im::human_message(ctx.st, ctx.cfg, ctx.now, user, &dialog, &text, ctx.out)?;
    let keyboard = block(p, "KEYBOARD")?.flatten();
    let attach = block(p, "ATTACH")?.flatten();
    if let Some(m) = ctx.st.im.messages.get_mut(&id) {
        m.keyboard = keyboard;
        m.attach = attach;
        m.system = p_bool(p, "SYSTEM").unwrap_or(false);
    }
    Ok(Reply::ok(json!(id)))
}

fn im_message_update(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let id = own_message(ctx, p, "MESSAGE_ID", ctx.caller.user_id())?;
    edit_message(ctx, id, p)?;
    Ok(Reply::ok(json!(true)))
}

fn im_message_delete(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let id = own_message(ctx, p, "MESSAGE_ID", ctx.caller.user_id())?;
    delete_message(ctx, id, false);
    Ok(Reply::ok(json!(true)))
}
