//! CRM (`crm.{contact,deal,lead,company}.*`, `crm.item.*`) and `tasks.task.*` on the seeded
//! store.

use serde_json::{json, Map, Value};

use super::lists::{self, Dialect};
use super::{ApiError, Ctx, Outcome, Reply};
use crate::clock;
use crate::store::{self, Kind, Record};
use crate::util;

/// Method names served here.
pub(crate) const KNOWN: &[&str] = &[
    "crm.contact.add",
    "crm.contact.update",
    "crm.contact.delete",
    "crm.contact.get",
    "crm.contact.list",
    "crm.contact.fields",
    "crm.deal.add",
    "crm.deal.update",
    "crm.deal.delete",
    "crm.deal.get",
    "crm.deal.list",
    "crm.deal.fields",
    "crm.lead.add",
    "crm.lead.update",
    "crm.lead.delete",
    "crm.lead.get",
    "crm.lead.list",
    "crm.lead.fields",
    "crm.company.add",
    "crm.company.update",
    "crm.company.delete",
    "crm.company.get",
    "crm.company.list",
    "crm.company.fields",
    "crm.item.add",
    "crm.item.update",
    "crm.item.delete",
    "crm.item.get",
    "crm.item.list",
    "tasks.task.add",
    "tasks.task.update",
    "tasks.task.delete",
    "tasks.task.get",
    "tasks.task.list",
];

pub(crate) fn dispatch(ctx: &mut Ctx<'_>, method: &str, p: &Value) -> Option<Outcome> {
    let parts: Vec<&str> = method.split('.').collect();
    let r = match parts.as_slice() {
        ["crm", "item", action] => item(ctx, action, p)?,
        ["tasks", "task", action] => task(ctx, action, p)?,
        ["crm", entity, action] => {
            let kind = match *entity {
                "contact" => Kind::Contact,
                "deal" => Kind::Deal,
                "lead" => Kind::Lead,
                "company" => Kind::Company,
                _ => return None,
            };
            classic(ctx, kind, action, p)?
        }
        _ => return None,
    };
    Some(r)
}

fn entity_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Contact => "CONTACT",
        Kind::Deal => "DEAL",
        Kind::Lead => "LEAD",
        Kind::Company => "COMPANY",
        Kind::Task => "TASK",
        Kind::User => "USER",
        Kind::Department => "DEPARTMENT",
    }
}

fn not_found() -> ApiError {
    ApiError::new("", "Not found")
}

fn bad_id() -> ApiError {
    ApiError::new("", "ID is not defined or invalid.")
}

/// A value as a classic method stores it: scalars as strings, lists and maps kept.
fn classic_value(v: &Value) -> Value {
    match v {
        Value::Bool(b) => Value::String(util::yn(*b).to_owned()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Null => Value::String(String::new()),
        other => other.clone(),
    }
}

/// Classic `Y`/`N` fields: given JSON `true`/`false`, `1`/`0` (what a query string makes of a
/// boolean), `Y`/`N` or `true`/`false`, they store `Y` or `N`.
const FLAGS: &[&str] = &[
    "OPENED",
    "EXPORT",
    "CLOSED",
    "HAS_PHONE",
    "HAS_EMAIL",
    "HAS_IMOL",
    "IS_MANUAL_OPPORTUNITY",
    "IS_NEW",
    "IS_RETURN_CUSTOMER",
    "IS_REPEATED_APPROACH",
    "IS_RECURRING",
    "IS_MY_COMPANY",
];

/// CRM multi-fields (`crm_multifield[]`).
const MULTI: &[&str] = &["PHONE", "EMAIL", "WEB", "IM"];

/// A new record of `kind` with every schema field, `fields` laid over the defaults.
fn new_record(ctx: &mut Ctx<'_>, kind: Kind, fields: &Map<String, Value>) -> Record {
    let template = store::generate(kind, 1, &ctx.cfg.gen);
    let now = clock::iso(ctx.now, ctx.cfg.gen.tz);
    let me = ctx.caller.user_id().to_string();
    let mut r = Record::new();
    for (k, v) in template {
        let value = match k.as_str() {
            "DATE_CREATE" | "DATE_MODIFY" | "CREATED_DATE" | "CHANGED_DATE" => {
                Value::String(now.clone())
            }
            "ASSIGNED_BY_ID" | "CREATED_BY_ID" | "MODIFY_BY_ID" | "CREATED_BY"
            | "RESPONSIBLE_ID" => Value::String(me.clone()),
            "OPENED" | "EXPORT" => Value::String("Y".into()),
            "CLOSED" | "HAS_PHONE" | "HAS_EMAIL" | "HAS_IMOL" => Value::String("N".into()),
            "STAGE_ID" | "STATUS_ID" => Value::String("NEW".into()),
            "CURRENCY_ID" => Value::String("EUR".into()),
            "STATUS" => Value::String("2".into()),
            "CATEGORY_ID" | "GROUP_ID" | "PRIORITY" => Value::String("0".into()),
            "PHONE" | "EMAIL" | "WEB" | "IM" => Value::Array(Vec::new()),
            _ => match v {
                Value::Array(_) => Value::Array(Vec::new()),
                _ => Value::String(String::new()),
            },
        };
        r.insert(k, value);
    }
    merge(ctx, &mut r, fields);
    r
}

/// The entries of a multi-field as sent: a list, an object keyed by positions (a query
/// string's `PHONE[0][VALUE]=...`), or one bare value; empty (`""`, `[]`, `null`) is none.
fn multi_entries(v: &Value) -> Vec<Map<String, Value>> {
    util::list_items(v)
        .into_iter()
        .filter_map(|item| match item {
            Value::Object(m) => Some(m),
            v @ (Value::String(_) | Value::Number(_)) => {
                Some([("VALUE".to_owned(), v)].into_iter().collect())
            }
            _ => None,
        })
        .collect()
}

/// A field of an entry as text (`""` when absent).
fn entry_text(m: &Map<String, Value>, key: &str) -> String {
    util::get(&Value::Object(m.clone()), key)
        .and_then(util::text)
        .unwrap_or_default()
}

/// Lays a multi-field's entries over `old` as `crm.*.update` does (EN:api-reference/crm/
/// contacts/crm-contact-update.md, "Working with Multiple Fields"): an entry with the `ID` of
/// an existing value changes it, or deletes it with `DELETE=Y` or an empty `VALUE`; an entry
/// without an `ID` adds a value (unless its `VALUE` is empty); values not named stay. New
/// values get ids from the portal's counter.
fn merge_multi(
    next_id: &mut u64,
    key: &str,
    old: Vec<Value>,
    entries: Vec<Map<String, Value>>,
) -> Vec<Value> {
    let mut out = old;
    for e in entries {
        let value = entry_text(&e, "VALUE");
        let value_type = entry_text(&e, "VALUE_TYPE");
        let delete = util::get(&Value::Object(e.clone()), "DELETE")
            .and_then(util::as_bool)
            .unwrap_or(false);
        let id = entry_text(&e, "ID");
        let existing = (!id.is_empty())
            .then(|| {
                out.iter()
                    .position(|x| x["ID"].as_str().is_some_and(|x| x == id.trim()))
            })
            .flatten();
        match existing {
            Some(i) if delete || value.is_empty() => {
                out.remove(i);
            }
            Some(i) => {
                out[i]["VALUE"] = Value::String(value);
                if !value_type.is_empty() {
                    out[i]["VALUE_TYPE"] = Value::String(value_type);
                }
            }
            // An id that names no value of this record changes nothing.
            None if !id.is_empty() => {}
            None if value.is_empty() || delete => {}
            None => {
                let new_id = *next_id;
                *next_id += 1;
                let value_type = if value_type.is_empty() {
                    "WORK".to_owned()
                } else {
                    value_type
                };
                out.push(serde_json::json!({
                    "ID": new_id.to_string(),
                    "VALUE_TYPE": value_type,
                    "VALUE": value,
                    "TYPE_ID": key,
                }));
            }
        }
    }
    out
}

/// Lays `fields` (upper-cased names) over `r`. Multi-fields merge as
/// [`merge_multi`] says (on a new record: every entry is added), and an empty one (`""`,
/// `[]`, `null`: what a query string sends for any of them) changes nothing; `Y`/`N` fields
/// take any flag spelling; other scalars are stored as strings.
fn merge(ctx: &mut Ctx<'_>, r: &mut Record, fields: &Map<String, Value>) {
    for (k, v) in fields {
        let key = k.to_ascii_uppercase();
        if key == "ID" {
            continue;
        }
        if MULTI.contains(&key.as_str()) {
            let old = match r.remove(&key) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            let items = merge_multi(&mut ctx.st.fm_next_id, &key, old, multi_entries(v));
            if key == "PHONE" || key == "EMAIL" {
                r.insert(
                    format!("HAS_{key}"),
                    Value::String(util::yn(!items.is_empty()).into()),
                );
            }
            r.insert(key, Value::Array(items));
            continue;
        }
        let value = match util::as_bool(v) {
            Some(b) if FLAGS.contains(&key.as_str()) => Value::String(util::yn(b).into()),
            _ => classic_value(v),
        };
        r.insert(key, value);
    }
}

/// `fields`: an object; absent or empty (`{}`, `[]`, `""`, `null` alike) is no fields; any
/// other value is refused.
fn fields_param(p: &Value) -> Result<Map<String, Value>, ApiError> {
    match util::param(p, "fields") {
        None => Ok(Map::new()),
        Some(_) => util::p_obj(p, "fields")
            .ok_or_else(|| ApiError::new("", "Parameter 'fields' must be array.")),
    }
}

fn fire(ctx: &mut Ctx<'_>, kind: Kind, action: &str, id: u64) {
    let event = format!("ONCRM{}{}", entity_name(kind), action);
    crate::methods::events::fire(ctx, &event, json!({"FIELDS": {"ID": id.to_string()}}));
}

fn classic(ctx: &mut Ctx<'_>, kind: Kind, action: &str, p: &Value) -> Option<Outcome> {
    Some(match action {
        "add" => (|| {
            let fields = fields_param(p)?;
            let r = new_record(ctx, kind, &fields);
            let id = ctx.st.table_mut(kind).add(r);
            fire(ctx, kind, "ADD", id);
            Ok(Reply::ok(json!(id)))
        })(),
        "update" => (|| {
            let id = util::p_u64(p, "id").ok_or_else(bad_id)?;
            let fields = fields_param(p)?;
            let mut r = ctx
                .st
                .table(kind)
                .get(id, &ctx.cfg.gen)
                .ok_or_else(not_found)?
                .into_owned();
            merge(ctx, &mut r, &fields);
            if r.contains_key("DATE_MODIFY") {
                r.insert(
                    "DATE_MODIFY".into(),
                    Value::String(clock::iso(ctx.now, ctx.cfg.gen.tz)),
                );
            }
            ctx.st.table_mut(kind).put(id, r);
            fire(ctx, kind, "UPDATE", id);
            Ok(Reply::ok(json!(true)))
        })(),
        "delete" => (|| {
            let id = util::p_u64(p, "id").ok_or_else(bad_id)?;
            if !ctx.st.table_mut(kind).delete(id) {
                return Err(not_found());
            }
            fire(ctx, kind, "DELETE", id);
            Ok(Reply::ok(json!(true)))
        })(),
        "get" => (|| {
            let id = util::p_u64(p, "id").ok_or_else(bad_id)?;
            let r = ctx
                .st
                .table(kind)
                .get(id, &ctx.cfg.gen)
                .ok_or_else(not_found)?;
            Ok(Reply::ok(Value::Object(r.into_owned())))
        })(),
        "list" => (|| {
            let upper = |f: &str| f.to_ascii_uppercase();
            let known = |f: &str| lists::known(ctx, kind, f);
            let (filter, order, start) = lists::params(p);
            let q = store::query_from(
                filter,
                order,
                ctx.order.keys("order").as_deref(),
                start,
                &store::Fields {
                    rename: &upper,
                    filter: &known,
                    order: &known,
                    strict_direction: false,
                },
            )
            .map_err(|e| lists::query_error(Dialect::Crm, e))?;
            let select: Vec<String> = util::p_list(p, "select")
                .iter()
                .filter_map(util::text)
                .map(|s| s.to_ascii_uppercase())
                .collect();
            super::basic::list_reply(ctx, kind, q, &select, Value::Object)
        })(),
        "fields" => {
            let template = store::generate(kind, 1, &ctx.cfg.gen);
            let mut out = Map::new();
            for (k, v) in template {
                let ty = match (k.as_str(), &v) {
                    ("ID", _) => "integer",
                    (_, Value::Array(_)) => "crm_multifield",
                    (k, _) if k.starts_with("DATE") => "datetime",
                    (k, _) if k.ends_with("_ID") => "crm_status",
                    ("OPPORTUNITY" | "REVENUE", _) => "double",
                    _ => "string",
                };
                out.insert(k.clone(), json!({"type": ty, "isRequired": false, "isReadOnly": k == "ID", "isImmutable": false, "isMultiple": v.is_array(), "isDynamic": false, "title": k}));
            }
            Ok(Reply::ok(Value::Object(out)))
        }
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// crm.item.*: camelCase names, real numbers, result.items / result.item
// ---------------------------------------------------------------------------------------

const ITEM_NAMES: &[(&str, &str)] = &[
    ("ID", "id"),
    ("DATE_CREATE", "createdTime"),
    ("DATE_MODIFY", "updatedTime"),
    ("ASSIGNED_BY_ID", "assignedById"),
    ("CREATED_BY_ID", "createdBy"),
    ("MODIFY_BY_ID", "updatedBy"),
];

/// Classic field name -> `crm.item` name.
pub(crate) fn to_camel(kind: Kind, upper: &str) -> String {
    if kind == Kind::Lead && upper == "STATUS_ID" {
        return "stageId".into();
    }
    if let Some((_, c)) = ITEM_NAMES.iter().find(|(u, _)| *u == upper) {
        return (*c).to_owned();
    }
    camel(upper)
}

/// `SNAKE_CASE` -> `camelCase`.
pub(crate) fn camel(upper: &str) -> String {
    let mut out = String::with_capacity(upper.len());
    for (i, part) in upper.split('_').filter(|s| !s.is_empty()).enumerate() {
        let lower = part.to_ascii_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut chars = lower.chars();
            if let Some(c) = chars.next() {
                out.push(c.to_ascii_uppercase());
                out.push_str(chars.as_str());
            }
        }
    }
    out
}

/// `crm.item` name -> classic field name.
pub(crate) fn from_camel(kind: Kind, name: &str) -> String {
    if kind == Kind::Lead && name == "stageId" {
        return "STATUS_ID".into();
    }
    if let Some((u, _)) = ITEM_NAMES.iter().find(|(_, c)| *c == name) {
        return (*u).to_owned();
    }
    if name
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn item_value(upper: &str, v: Value) -> Value {
    let numeric_id = upper == "ID" || upper.ends_with("_ID") || upper.ends_with("_BY");
    match v {
        Value::String(s)
            if numeric_id && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse::<u64>().map_or(Value::String(s), |n| json!(n))
        }
        Value::String(s) if matches!(upper, "OPPORTUNITY" | "REVENUE") => {
            s.parse::<f64>().map_or(Value::String(s), |n| json!(n))
        }
        other => other,
    }
}

/// A classic record as a `crm.item` object.
fn to_item(kind: Kind, r: Record) -> Value {
    let mut out = Map::new();
    for (k, v) in r {
        if store::list_hidden(&k) {
            continue;
        }
        let name = to_camel(kind, &k);
        out.insert(name, item_value(&k, v));
    }
    if kind == Kind::Deal || kind == Kind::Lead || kind == Kind::Contact || kind == Kind::Company {
        out.insert("entityTypeId".into(), json!(entity_type_id(kind)));
    }
    Value::Object(out)
}

fn entity_type_id(kind: Kind) -> u64 {
    match kind {
        Kind::Lead => 1,
        Kind::Deal => 2,
        Kind::Contact => 3,
        Kind::Company => 4,
        _ => 0,
    }
}

fn item_fields(kind: Kind, p: &Value) -> Result<Map<String, Value>, ApiError> {
    let f = fields_param(p)?;
    Ok(f.into_iter()
        .map(|(k, v)| (from_camel(kind, &k), v))
        .collect())
}

fn item_not_found() -> ApiError {
    ApiError::new("NOT_FOUND", "Element not found")
}

fn item(ctx: &mut Ctx<'_>, action: &str, p: &Value) -> Option<Outcome> {
    if !matches!(action, "add" | "update" | "delete" | "get" | "list") {
        return None;
    }
    let kind = match util::p_u64(p, "entityTypeId").and_then(Kind::from_entity_type_id) {
        Some(k) => k,
        None => return Some(Err(ApiError::new("NOT_FOUND", "Smart process not found"))),
    };
    Some(match action {
        "add" => (|| {
            let fields = item_fields(kind, p)?;
            let r = new_record(ctx, kind, &fields);
            let id = ctx.st.table_mut(kind).add(r.clone());
            fire(ctx, kind, "ADD", id);
            let r = ctx
                .st
                .table(kind)
                .get(id, &ctx.cfg.gen)
                .map(|r| r.into_owned())
                .unwrap_or(r);
            Ok(Reply::ok(json!({"item": to_item(kind, r)})))
        })(),
        "update" => (|| {
            let id = util::p_u64(p, "id").ok_or_else(item_not_found)?;
            let fields = item_fields(kind, p)?;
            let mut r = ctx
                .st
                .table(kind)
                .get(id, &ctx.cfg.gen)
                .ok_or_else(item_not_found)?
                .into_owned();
            merge(ctx, &mut r, &fields);
            r.insert(
                "DATE_MODIFY".into(),
                Value::String(clock::iso(ctx.now, ctx.cfg.gen.tz)),
            );
            ctx.st.table_mut(kind).put(id, r.clone());
            fire(ctx, kind, "UPDATE", id);
            Ok(Reply::ok(json!({"item": to_item(kind, r)})))
        })(),
        "delete" => (|| {
            let id = util::p_u64(p, "id").ok_or_else(item_not_found)?;
            if !ctx.st.table_mut(kind).delete(id) {
                return Err(item_not_found());
            }
            fire(ctx, kind, "DELETE", id);
            Ok(Reply::ok(Value::Null))
        })(),
        "get" => (|| {
            let id = util::p_u64(p, "id").ok_or_else(item_not_found)?;
            let r = ctx
                .st
                .table(kind)
                .get(id, &ctx.cfg.gen)
                .ok_or_else(item_not_found)?
                .into_owned();
            Ok(Reply::ok(json!({"item": to_item(kind, r)})))
        })(),
        _ => (|| {
            let rename = |f: &str| from_camel(kind, f);
            let known = |f: &str| lists::known(ctx, kind, f) || is_parent_field(f);
            let (filter, order, start) = lists::params(p);
            let q = store::query_from(
                filter,
                order,
                ctx.order.keys("order").as_deref(),
                start,
                &store::Fields {
                    rename: &rename,
                    filter: &known,
                    order: &known,
                    strict_direction: true,
                },
            )
            .map_err(|e| lists::query_error(Dialect::Crm, e))?;
            let select: Vec<String> = util::p_list(p, "select")
                .iter()
                .filter_map(util::text)
                .map(|s| if s == "*" { s } else { from_camel(kind, &s) })
                .collect();
            let page = lists::run(ctx, kind, q);
            let all = select.is_empty() || select.iter().any(|s| s == "*");
            let items: Vec<Value> = page
                .records
                .into_iter()
                .map(|r| {
                    let mut v = to_item(kind, store::select(r, &select));
                    if !all {
                        if let Value::Object(m) = &mut v {
                            m.remove("entityTypeId");
                        }
                    }
                    v
                })
                .collect();
            Ok(Reply {
                result: json!({"items": items}),
                total: page.total,
                next: page.next,
            })
        })(),
    })
}

/// `parentId<entityTypeId>` (as `PARENT_ID<n>`): the binding to a parent item, which every
/// item may be filtered on.
fn is_parent_field(f: &str) -> bool {
    f.strip_prefix("PARENT_ID")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

// ---------------------------------------------------------------------------------------
// tasks.task.*: UPPER names in filter/order/select, camelCase strings out, result.tasks
// ---------------------------------------------------------------------------------------

fn to_task(r: Record) -> Value {
    Value::Object(r.into_iter().map(|(k, v)| (camel(&k), v)).collect())
}

fn task_error(text: &str) -> ApiError {
    ApiError::new("ERROR_CORE", text)
}

fn task(ctx: &mut Ctx<'_>, action: &str, p: &Value) -> Option<Outcome> {
    let kind = Kind::Task;
    let task_id = || util::p_u64(p, "taskId").or_else(|| util::p_u64(p, "id"));
    Some(match action {
        "add" => (|| {
            let fields = fields_param(p)?;
            if !fields.keys().any(|k| k.eq_ignore_ascii_case("TITLE")) {
                return Err(task_error(
                    "TASKS_ERROR_EXCEPTION_#8; Title is not specified",
                ));
            }
            let r = new_record(ctx, kind, &fields);
            let id = ctx.st.table_mut(kind).add(r);
            let r = ctx
                .st
                .table(kind)
                .get(id, &ctx.cfg.gen)
                .ok_or_else(|| task_error("not stored"))?
                .into_owned();
            Ok(Reply::ok(json!({"task": to_task(r)})))
        })(),
        "update" => (|| {
            let id = task_id().ok_or_else(|| task_error("Task not found"))?;
            let fields = fields_param(p)?;
            let mut r = ctx
                .st
                .table(kind)
                .get(id, &ctx.cfg.gen)
                .ok_or_else(|| {
                    task_error("TASKS_ERROR_EXCEPTION_#256; Task not found or not accessible")
                })?
                .into_owned();
            merge(ctx, &mut r, &fields);
            r.insert(
                "CHANGED_DATE".into(),
                Value::String(clock::iso(ctx.now, ctx.cfg.gen.tz)),
            );
            ctx.st.table_mut(kind).put(id, r.clone());
            Ok(Reply::ok(json!({"task": to_task(r)})))
        })(),
        "delete" => (|| {
            let id = task_id().ok_or_else(|| task_error("Task not found"))?;
            if !ctx.st.table_mut(kind).delete(id) {
                return Err(task_error(
                    "TASKS_ERROR_EXCEPTION_#256; Task not found or not accessible",
                ));
            }
            Ok(Reply::ok(json!({"task": true})))
        })(),
        "get" => (|| {
            let id = task_id().ok_or_else(|| task_error("Task not found"))?;
            let r = ctx
                .st
                .table(kind)
                .get(id, &ctx.cfg.gen)
                .ok_or_else(|| {
                    task_error("TASKS_ERROR_EXCEPTION_#256; Task not found or not accessible")
                })?
                .into_owned();
            let select: Vec<String> = util::p_list(p, "select")
                .iter()
                .filter_map(util::text)
                .map(|s| s.to_ascii_uppercase())
                .collect();
            Ok(Reply::ok(
                json!({"task": to_task(store::select(r, &select))}),
            ))
        })(),
        "list" => (|| {
            // Filter and order name fields in upper case (`ID`, `>ID`); the answer is
            // camelCase (`id`). `REAL_STATUS` is the `status` of the answer.
            let rename = |f: &str| match f.to_ascii_uppercase().as_str() {
                "REAL_STATUS" => "STATUS".to_owned(),
                other => other.to_owned(),
            };
            let filterable = |f: &str| lists::known(ctx, kind, f);
            let sortable = |f: &str| lists::task_sortable(f) || f == "STATUS";
            let (filter, order, start) = lists::params(p);
            let mut q = store::query_from(
                filter,
                order,
                ctx.order.keys("order").as_deref(),
                start,
                &store::Fields {
                    rename: &rename,
                    filter: &filterable,
                    order: &sortable,
                    strict_direction: false,
                },
            )
            .map_err(|e| lists::query_error(Dialect::Tasks, e))?;
            // Without an order, newest first (EN:api-reference/tasks/tasks-task-list.md).
            if q.order.is_empty() {
                q.order.push(("ID".into(), true));
            }
            let select: Vec<String> = util::p_list(p, "select")
                .iter()
                .filter_map(util::text)
                .map(|s| s.to_ascii_uppercase())
                .collect();
            let page = lists::run(ctx, kind, q);
            let tasks: Vec<Value> = page
                .records
                .into_iter()
                .map(|r| to_task(store::select(r, &select)))
                .collect();
            Ok(Reply {
                result: json!({"tasks": tasks}),
                total: page.total,
                next: page.next,
            })
        })(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (u, c) in [
            ("STAGE_ID", "stageId"),
            ("ID", "id"),
            ("DATE_CREATE", "createdTime"),
            ("CURRENCY_ID", "currencyId"),
        ] {
            assert_eq!(to_camel(Kind::Deal, u), c);
            assert_eq!(from_camel(Kind::Deal, c), u);
        }
        assert_eq!(to_camel(Kind::Lead, "STATUS_ID"), "stageId");
        assert_eq!(from_camel(Kind::Lead, "stageId"), "STATUS_ID");
    }
}
