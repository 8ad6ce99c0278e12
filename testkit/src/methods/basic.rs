//! `user.*`, `profile`, `scope`, `app.info`, `server.time`, `department.get`, `methods`.

use serde_json::{json, Value};

use super::lists::{self, Dialect};
use super::{ApiError, Ctx, Outcome, Reply};
use crate::clock;
use crate::state::Caller;
use crate::store::{self, Kind, Record};
use crate::util;
use bitrix24::codes;

/// The calling user's record.
pub(crate) fn user_record(ctx: &Ctx<'_>, id: u64) -> Option<Record> {
    ctx.st
        .table(Kind::User)
        .get(id, &ctx.cfg.gen)
        .map(|r| r.into_owned())
}

/// Public form of a user record (internal flags dropped).
fn public_user(mut r: Record) -> Value {
    r.remove("IS_BOT");
    Value::Object(r)
}

pub(crate) fn user_current(ctx: &mut Ctx<'_>, _p: &Value) -> Outcome {
    let id = ctx.caller.user_id();
    match user_record(ctx, id) {
        Some(r) => Ok(Reply::ok(public_user(r))),
        None => Err(ApiError::new(
            codes::NO_AUTH_FOUND,
            "Wrong authorization data",
        )),
    }
}

/// Params of `user.get` that are not filter fields.
const USER_GET_PARAMS: &[&str] = &[
    "FILTER",
    "SORT",
    "ORDER",
    "START",
    "SELECT",
    "ADMIN_MODE",
    "IMAGE_RESIZE",
];

pub(crate) fn user_get(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let known = |f: &str| lists::known(ctx, Kind::User, f);
    // Filter keys come in FILTER (any case), or as top-level fields (`user.get?ID=1`);
    // top-level keys that name no user field are not filters and are ignored, while every
    // FILTER key must name one.
    let mut filter = match util::param(p, "FILTER") {
        Some(Value::Object(f)) => f.clone(),
        _ => serde_json::Map::new(),
    };
    if let Value::Object(top) = p {
        for (k, v) in top {
            if USER_GET_PARAMS.iter().any(|n| k.eq_ignore_ascii_case(n)) {
                continue;
            }
            let (_, field) = store::parse_key(k);
            if known(&field.to_ascii_uppercase()) {
                filter.insert(k.clone(), v.clone());
            }
        }
    }
    // `sort` names one field, `order` its direction (strings, not an `order` object).
    let mut order = serde_json::Map::new();
    if let Some(sort) = util::p_str(p, "sort") {
        let dir = util::p_str(p, "order").unwrap_or_else(|| "ASC".into());
        order.insert(sort, Value::String(dir));
    }
    let rename = |f: &str| f.to_ascii_uppercase();
    let filter = Value::Object(filter);
    let order = Value::Object(order);
    let mut q = store::query_from(
        Some(&filter),
        Some(&order),
        None,
        util::param(p, "start"),
        &store::Fields {
            rename: &rename,
            filter: &known,
            order: &known,
            strict_direction: false,
        },
    )
    .map_err(|e| lists::query_error(Dialect::Crm, e))?;
    // Bots are users too, but user.get lists people only unless asked.
    if !q
        .filter
        .iter()
        .any(|c| c.field == "USER_TYPE" || c.field == "ID")
    {
        q.filter.push(store::Cond {
            field: "USER_TYPE".into(),
            op: store::Op::Eq,
            values: vec!["employee".into()],
        });
    }
    let select: Vec<String> = util::p_list(p, "select")
        .iter()
        .filter_map(util::text)
        .map(|s| s.to_ascii_uppercase())
        .collect();
    list_reply(ctx, Kind::User, q, &select, public_user)
}

/// Runs a list query on a table and shapes a classic list answer (bare array).
pub(crate) fn list_reply(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    q: store::Query,
    select: &[String],
    shape: impl Fn(Record) -> Value,
) -> Outcome {
    let page = lists::run(ctx, kind, q);
    let items: Vec<Value> = page
        .records
        .into_iter()
        .map(|r| shape(store::select(r, select)))
        .collect();
    Ok(Reply {
        result: Value::Array(items),
        total: page.total,
        next: page.next,
    })
}

pub(crate) fn profile(ctx: &mut Ctx<'_>, _p: &Value) -> Outcome {
    let id = ctx.caller.user_id();
    let r = user_record(ctx, id).unwrap_or_default();
    Ok(Reply::ok(json!({
        "ID": id.to_string(),
        "ADMIN": id == 1,
        "NAME": r.get("NAME").cloned().unwrap_or(Value::Null),
        "LAST_NAME": r.get("LAST_NAME").cloned().unwrap_or(Value::Null),
        "PERSONAL_GENDER": r.get("PERSONAL_GENDER").cloned().unwrap_or(Value::Null),
        "PERSONAL_PHOTO": "",
        "TIME_ZONE": "",
        "TIME_ZONE_OFFSET": ctx.cfg.gen.tz,
    })))
}

pub(crate) fn scope(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    if util::p_bool(p, "full") == Some(true) {
        let all = ["basic", "crm", "department", "im", "imbot", "task", "user"];
        return Ok(Reply::ok(json!(all)));
    }
    let scopes = match ctx.caller {
        Caller::Webhook { .. } => ctx.cfg.webhook_scopes.clone(),
        Caller::OAuth { client_id, .. } => ctx
            .st
            .apps
            .get(client_id)
            .map(|a| a.scopes.clone())
            .unwrap_or_default(),
    };
    Ok(Reply::ok(json!(scopes)))
}

pub(crate) fn app_info(ctx: &mut Ctx<'_>, _p: &Value) -> Outcome {
    match ctx.caller {
        Caller::OAuth { client_id, .. } => {
            let Some(app) = ctx.st.apps.get(client_id) else {
                return Err(ApiError::new(
                    codes::NOT_INSTALLED,
                    "Application not installed",
                ));
            };
            Ok(Reply::ok(json!({
                "ID": app.id,
                "CODE": app.code,
                "VERSION": app.version,
                "STATUS": app.status,
                "INSTALLED": true,
                "PAYMENT_EXPIRED": "N",
                "DAYS": Value::Null,
                "LANGUAGE_ID": ctx.cfg.language,
                "LICENSE": "en_project",
                "LICENSE_TYPE": "project",
                "LICENSE_FAMILY": "project",
            })))
        }
        Caller::Webhook { .. } => Ok(Reply::ok(json!({
            "SCOPE": ctx.cfg.webhook_scopes,
            "LICENSE": "en_project",
            "LICENSE_TYPE": "project",
            "LICENSE_FAMILY": "project",
        }))),
    }
}

pub(crate) fn server_time(ctx: &mut Ctx<'_>, _p: &Value) -> Outcome {
    Ok(Reply::ok(Value::String(clock::iso(
        ctx.now,
        ctx.cfg.gen.tz,
    ))))
}

pub(crate) fn department_get(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    // `sort` (lower case) names the field to sort by and `order` its direction
    // (EN:api-reference/departments/department-get.md); `SORT` (upper case) filters on the
    // department's SORT field, as do `ID`, `>ID`, `PARENT`, ... Every top-level key but
    // `sort`, `order` and `start` (any case) is a filter and must name a department field.
    let exact = |k: &str| {
        p.get(k)
            .and_then(util::text)
            .filter(|s| !s.trim().is_empty())
    };
    let mut filter = serde_json::Map::new();
    if let Value::Object(top) = p {
        for (k, v) in top {
            let param =
                k == "sort" || k.eq_ignore_ascii_case("order") || k.eq_ignore_ascii_case("start");
            if !param {
                filter.insert(k.clone(), v.clone());
            }
        }
    }
    let mut order = serde_json::Map::new();
    match util::param(p, "order") {
        // An `order` object (`{"ID": "DESC"}`) is read too.
        Some(Value::Object(o)) => order = o.clone(),
        _ => {
            if let Some(sort) = exact("sort") {
                let dir = util::p_str(p, "order").unwrap_or_else(|| "ASC".into());
                order.insert(sort.trim().to_owned(), Value::String(dir));
            }
        }
    }
    let known = |f: &str| lists::known(ctx, Kind::Department, f);
    let (filter, order) = (Value::Object(filter), Value::Object(order));
    let q = store::query_from(
        Some(&filter),
        Some(&order),
        ctx.order.keys("order").as_deref(),
        util::param(p, "start"),
        &store::Fields {
            rename: &|f| f.to_ascii_uppercase(),
            filter: &known,
            order: &known,
            strict_direction: false,
        },
    )
    .map_err(|e| lists::query_error(Dialect::Crm, e))?;
    list_reply(ctx, Kind::Department, q, &[], Value::Object)
}

pub(crate) fn methods(_ctx: &mut Ctx<'_>, _p: &Value) -> Outcome {
    let mut all: Vec<&str> = super::KNOWN.to_vec();
    all.extend(super::crm::KNOWN);
    all.extend(super::imbot::KNOWN);
    Ok(Reply::ok(json!(all)))
}
