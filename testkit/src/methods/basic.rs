//! `user.*`, `profile`, `scope`, `app.info`, `server.time`, `department.get`, `methods`.

use serde_json::{json, Value};

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

pub(crate) fn user_get(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    // Filter keys come as FILTER/filter, or as top-level fields (`user.get?ID=1`).
    let mut filter = util::get(p, "FILTER").cloned().unwrap_or_else(|| json!({}));
    if let Value::Object(f) = &mut filter {
        if let Value::Object(top) = p {
            for (k, v) in top {
                let (_, field) = store::parse_key(k);
                let upper = field.to_ascii_uppercase();
                if matches!(
                    upper.as_str(),
                    "ID" | "ACTIVE"
                        | "NAME"
                        | "LAST_NAME"
                        | "EMAIL"
                        | "UF_DEPARTMENT"
                        | "USER_TYPE"
                        | "XML_ID"
                        | "WORK_POSITION"
                ) {
                    f.insert(k.clone(), v.clone());
                }
            }
        }
    } else {
        filter = json!({});
    }
    let mut order = json!({});
    if let Some(sort) = util::p_str(p, "sort") {
        let dir = util::p_str(p, "order").unwrap_or_else(|| "ASC".into());
        order = json!({ sort.to_ascii_uppercase(): dir });
    }
    let rename = |f: &str| f.to_ascii_uppercase();
    let mut q = store::query_from(
        Some(&filter),
        Some(&order),
        None,
        util::get(p, "start"),
        &rename,
    );
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
    list_reply(ctx, Kind::User, &q, &[], public_user)
}

/// Runs a list query on a table and shapes a classic list answer (bare array).
pub(crate) fn list_reply(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    q: &store::Query,
    select: &[String],
    shape: impl Fn(Record) -> Value,
) -> Outcome {
    let page = store::list(ctx.st.table(kind), q, &ctx.cfg.gen);
    ctx.cost += list_cost(ctx, &page);
    let items: Vec<Value> = page
        .records
        .into_iter()
        .map(|r| shape(store::select(r, select)))
        .collect();
    let (total, next) = paging(q, page.total, items.len() as u64);
    Ok(Reply {
        result: Value::Array(items),
        total,
        next,
    })
}

/// Simulated seconds a list page costs: every row skipped to reach the offset, and a tenth of
/// that for every row counted for `total`.
pub(crate) fn list_cost(ctx: &Ctx<'_>, page: &store::Page) -> f64 {
    page.rows_skipped as f64 * ctx.cfg.row_cost + page.rows_counted as f64 * ctx.cfg.row_cost / 10.0
}

/// `total` and `next` of a page: `start=-1` gives `total: 0` and no `next`.
pub(crate) fn paging(q: &store::Query, total: Option<u64>, got: u64) -> (Option<u64>, Option<u64>) {
    match (q.start, total) {
        (Some(start), Some(total)) => {
            let next = (start + got < total && got > 0).then_some(start + q.limit);
            (Some(total), next)
        }
        _ => (Some(0), None),
    }
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
    let mut filter = serde_json::Map::new();
    if let Value::Object(top) = p {
        for (k, v) in top {
            let (_, field) = store::parse_key(k);
            if matches!(
                field.to_ascii_uppercase().as_str(),
                "ID" | "NAME" | "PARENT" | "UF_HEAD" | "SORT"
            ) {
                filter.insert(k.to_ascii_uppercase(), v.clone());
            }
        }
    }
    let filter = Value::Object(filter);
    let q = store::query_from(
        Some(&filter),
        util::get(p, "order"),
        ctx.order.keys("order").as_deref(),
        util::get(p, "start"),
        &|f| f.to_ascii_uppercase(),
    );
    list_reply(ctx, Kind::Department, &q, &[], Value::Object)
}

pub(crate) fn methods(_ctx: &mut Ctx<'_>, _p: &Value) -> Outcome {
    let mut all: Vec<&str> = super::KNOWN.to_vec();
    all.extend(super::crm::KNOWN);
    all.extend(super::imbot::KNOWN);
    Ok(Reply::ok(json!(all)))
}
