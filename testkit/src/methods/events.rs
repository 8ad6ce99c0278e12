//! `event.bind`, `event.unbind`, `event.get`, and firing bound events (PROTOCOL.md 7.5).

use serde_json::{json, Map, Value};

use super::{ApiError, Ctx, Outcome, Reply};
use crate::state::{self, Caller, Handler, Outgoing};
use crate::util;
use bitrix24::codes;

/// Events `event.bind` accepts.
pub(crate) const EVENTS: &[&str] = &[
    "ONAPPINSTALL",
    "ONAPPUNINSTALL",
    "ONAPPUPDATE",
    "ONCRMCONTACTADD",
    "ONCRMCONTACTUPDATE",
    "ONCRMCONTACTDELETE",
    "ONCRMDEALADD",
    "ONCRMDEALUPDATE",
    "ONCRMDEALDELETE",
    "ONCRMLEADADD",
    "ONCRMLEADUPDATE",
    "ONCRMLEADDELETE",
    "ONCRMCOMPANYADD",
    "ONCRMCOMPANYUPDATE",
    "ONCRMCOMPANYDELETE",
    "ONIMBOTMESSAGEADD",
    "ONIMBOTMESSAGEUPDATE",
    "ONIMBOTMESSAGEDELETE",
    "ONIMBOTJOINCHAT",
    "ONIMBOTDELETE",
    "ONIMCOMMANDADD",
    "ONTASKADD",
    "ONTASKUPDATE",
    "ONTASKDELETE",
    "ONUSERADD",
    "ONOFFLINEEVENT",
];

fn app_caller(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    match ctx.caller {
        Caller::OAuth { client_id, .. } => Ok(client_id.clone()),
        Caller::Webhook { .. } => Err(ApiError::new(
            "WRONG_AUTH_TYPE",
            "Current authorization type is denied for this method",
        )),
    }
}

pub(crate) fn bind(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let client_id = app_caller(ctx)?;
    let event = util::p_str(p, "event")
        .map(|e| e.to_ascii_uppercase())
        .unwrap_or_default();
    if !EVENTS.contains(&event.as_str()) {
        return Err(ApiError::new(
            codes::ERROR_EVENT_NOT_FOUND,
            "Event not found",
        ));
    }
    let offline = util::p_str(p, "event_type").is_some_and(|t| t.eq_ignore_ascii_case("offline"));
    let handler = util::p_str(p, "handler").unwrap_or_default();
    if handler.is_empty() && !offline {
        return Err(ApiError::new(
            "ERROR_HANDLER_URL_MISMATCH",
            "Handler URL is required",
        ));
    }
    let auth_type = util::p_u64(p, "auth_type").unwrap_or(0);
    let exists = ctx.st.handlers.iter().any(|h| {
        h.client_id == client_id
            && h.event == event
            && h.handler == handler
            && h.auth_type == auth_type
    });
    if !exists {
        let id = ctx.st.handler_id();
        ctx.st.handlers.push(Handler {
            id,
            client_id,
            event,
            handler,
            auth_type,
            offline,
        });
    }
    Ok(Reply::ok(json!(true)))
}

pub(crate) fn unbind(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let client_id = app_caller(ctx)?;
    let event = util::p_str(p, "event")
        .map(|e| e.to_ascii_uppercase())
        .unwrap_or_default();
    let handler = util::p_str(p, "handler");
    let auth_type = util::p_u64(p, "auth_type");
    let before = ctx.st.handlers.len();
    ctx.st.handlers.retain(|h| {
        !(h.client_id == client_id
            && h.event == event
            && handler.as_ref().is_none_or(|u| *u == h.handler)
            && auth_type.is_none_or(|a| a == h.auth_type))
    });
    let count = before - ctx.st.handlers.len();
    Ok(Reply::ok(json!({"count": count})))
}

pub(crate) fn get(ctx: &mut Ctx<'_>, _p: &Value) -> Outcome {
    let client_id = app_caller(ctx)?;
    let list: Vec<Value> = ctx
        .st
        .handlers
        .iter()
        .filter(|h| h.client_id == client_id)
        .map(|h| json!({"event": h.event, "handler": h.handler, "auth_type": h.auth_type.to_string(), "offline": i32::from(h.offline)}))
        .collect();
    Ok(Reply::ok(Value::Array(list)))
}

/// Queues `event` with `data` for every online handler bound to it.
pub(crate) fn fire(ctx: &mut Ctx<'_>, event: &str, data: Value) {
    let bound: Vec<Handler> = ctx
        .st
        .handlers
        .iter()
        .filter(|h| h.event == event && !h.offline)
        .cloned()
        .collect();
    for h in bound {
        let Some(app) = ctx.st.apps.get(&h.client_id).cloned() else {
            continue;
        };
        let user = if h.auth_type > 0 {
            h.auth_type
        } else {
            ctx.caller.user_id()
        };
        let auth = state::auth_set(ctx.st, ctx.cfg, ctx.now, &app, user);
        let body = event_body(event, h.id, data.clone(), ctx.now, auth);
        ctx.out.push(Outgoing {
            event: event.to_owned(),
            url: h.handler.clone(),
            body,
        });
    }
}

/// An event POST body as PHP's `http_build_query` builds it, in the portal's order:
/// `event`, `event_handler_id`, `data[...]`, `ts`, `auth[...]` (a `Value` would sort them;
/// inside `data` and `auth` the `Value`'s order is kept, integer keys ascending).
pub(crate) fn event_body(
    event: &str,
    handler_id: u64,
    data: Value,
    now: f64,
    auth: Map<String, Value>,
) -> String {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        event: &'a str,
        event_handler_id: String,
        data: crate::order::Answer<'a>,
        ts: String,
        auth: &'a Map<String, Value>,
    }
    let body = Body {
        event,
        event_handler_id: handler_id.to_string(),
        data: crate::order::Answer {
            value: &data,
            order: None,
        },
        ts: (now.floor() as i64).to_string(),
        auth: &auth,
    };
    bitrix24::php::encode_ordered(&body).unwrap_or_default()
}
