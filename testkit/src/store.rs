//! The seeded data store: users, departments, CRM entities and tasks.
//!
//! Seeded records are never materialized: record `id` of a table with `seeded >= id` is
//! generated from a hash of (seed, kind, id) when read, so a million contacts cost nothing
//! until they are listed. Only changes are stored: `overrides` maps an id to its new record
//! (`Some`) or to a deletion (`None`); added records get ids after the seeded ones.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::clock;
use crate::util::{self, hash};

/// One record: wire field names (`UPPER_CASE`) to values as classic methods return them.
pub(crate) type Record = Map<String, Value>;

/// What a table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    User,
    Department,
    Lead,
    Deal,
    Contact,
    Company,
    Task,
}

impl Kind {
    /// The CRM `entityTypeId` of a CRM kind.
    pub(crate) fn from_entity_type_id(id: u64) -> Option<Kind> {
        match id {
            1 => Some(Kind::Lead),
            2 => Some(Kind::Deal),
            3 => Some(Kind::Contact),
            4 => Some(Kind::Company),
            _ => None,
        }
    }

    fn code(self) -> u64 {
        self as u64 + 1
    }
}

const FIRST: &[&str] = &[
    "Alex", "Maria", "Ivan", "Olga", "John", "Emma", "Pavel", "Anna", "Peter", "Sofia", "Lucas",
    "Mia", "David", "Elena", "Omar", "Yuki",
];
const LAST: &[&str] = &[
    "Example", "Smith", "Petrov", "Garcia", "Muller", "Rossi", "Kowalski", "Novak", "Tanaka",
    "Silva", "Jensen", "Dubois", "Ivanova", "Brown", "Lopez", "Kim",
];
const POSITIONS: &[&str] = &["Manager", "Developer", "Sales", "Support", "Accountant", ""];
const DEAL_STAGES: &[&str] = &[
    "NEW",
    "PREPARATION",
    "PREPAYMENT_INVOICE",
    "EXECUTING",
    "FINAL_INVOICE",
];
const LEAD_STATUSES: &[&str] = &["NEW", "IN_PROCESS", "PROCESSED"];
const SOURCES: &[&str] = &["WEB", "CALL", "EMAIL", "ADVERTISING", "PARTNER"];
const DEPARTMENTS: &[&str] = &[
    "Company",
    "Sales",
    "Support",
    "Development",
    "Marketing",
    "Finance",
];

/// Seeded dates fall in the 200 days before this instant (2026-08-01T00:00:00Z).
const DATE_BASE: f64 = 1_785_542_400.0;

/// Fixed inputs of record generation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gen {
    pub seed: u64,
    pub tz: i32,
    pub users: u64,
    pub departments: u64,
    pub contacts: u64,
    pub companies: u64,
}

fn pick<'a>(list: &[&'a str], h: u64) -> &'a str {
    list[(h % list.len() as u64) as usize]
}

fn s(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

fn multi(id: u64, value: String, kind: &str) -> Value {
    serde_json::json!([{"ID": (id * 2 + if kind == "EMAIL" { 1 } else { 0 }).to_string(), "VALUE_TYPE": "WORK", "VALUE": value, "TYPE_ID": kind}])
}

/// The seeded record `id` of `kind`.
pub(crate) fn generate(kind: Kind, id: u64, g: &Gen) -> Record {
    let h = hash(&[g.seed, kind.code(), id]);
    let h2 = util::mix(h);
    let first = pick(FIRST, h);
    let last = pick(LAST, h >> 8);
    let created = DATE_BASE - (h2 % (200 * 86_400)) as f64;
    let modified = created + (h % 86_400) as f64;
    let assigned = 1 + (h >> 16) % g.users.max(1);
    let mut r = Record::new();
    match kind {
        Kind::User => {
            let (first, last) = if id == 1 {
                ("Alex", "Example")
            } else {
                (first, last)
            };
            let dept = if id == 1 {
                1
            } else {
                1 + (h >> 20) % g.departments.max(1)
            };
            r.insert("ID".into(), s(id));
            r.insert("XML_ID".into(), s(format!("user{id}")));
            r.insert("ACTIVE".into(), Value::Bool(true));
            r.insert("NAME".into(), s(first));
            r.insert("LAST_NAME".into(), s(last));
            r.insert("SECOND_NAME".into(), s(""));
            r.insert(
                "EMAIL".into(),
                s(format!(
                    "{}.{}{id}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase()
                )),
            );
            r.insert("LAST_LOGIN".into(), s(clock::iso(modified, g.tz)));
            r.insert("DATE_REGISTER".into(), s(clock::iso(created, g.tz)));
            r.insert("IS_ONLINE".into(), s(util::yn(h % 3 == 0)));
            r.insert("TIME_ZONE".into(), s(""));
            r.insert("TIMESTAMP_X".into(), s(clock::dotted(modified, g.tz)));
            r.insert(
                "LAST_ACTIVITY_DATE".into(),
                s(clock::spaced(modified, g.tz)),
            );
            r.insert(
                "PERSONAL_GENDER".into(),
                s(if h % 2 == 0 { "M" } else { "F" }),
            );
            r.insert("PERSONAL_BIRTHDAY".into(), s(""));
            r.insert(
                "WORK_POSITION".into(),
                s(if id == 1 {
                    "Administrator"
                } else {
                    pick(POSITIONS, h >> 24)
                }),
            );
            r.insert("WORK_PHONE".into(), s(""));
            r.insert("UF_DEPARTMENT".into(), serde_json::json!([dept]));
            r.insert("USER_TYPE".into(), s("employee"));
        }
        Kind::Department => {
            r.insert("ID".into(), s(id));
            let name = DEPARTMENTS
                .get(id as usize - 1)
                .map_or_else(|| format!("Department {id}"), |n| (*n).to_owned());
            r.insert("NAME".into(), s(name));
            r.insert("SORT".into(), s(500));
            if id > 1 {
                r.insert("PARENT".into(), s(1));
            }
            r.insert("UF_HEAD".into(), s(if id == 1 { 1 } else { 0 }));
        }
        Kind::Contact => {
            r.insert("ID".into(), s(id));
            r.insert("NAME".into(), s(first));
            r.insert("SECOND_NAME".into(), s(""));
            r.insert("LAST_NAME".into(), s(last));
            r.insert("POST".into(), s(pick(POSITIONS, h >> 24)));
            r.insert("TYPE_ID".into(), s("CLIENT"));
            r.insert("SOURCE_ID".into(), s(pick(SOURCES, h >> 28)));
            r.insert(
                "COMPANY_ID".into(),
                s(if g.companies > 0 {
                    1 + (h >> 32) % g.companies
                } else {
                    0
                }),
            );
            r.insert("ASSIGNED_BY_ID".into(), s(assigned));
            r.insert("CREATED_BY_ID".into(), s(assigned));
            r.insert("MODIFY_BY_ID".into(), s(assigned));
            r.insert("OPENED".into(), s("Y"));
            r.insert("EXPORT".into(), s("Y"));
            r.insert("HAS_PHONE".into(), s("Y"));
            r.insert("HAS_EMAIL".into(), s("Y"));
            r.insert("HAS_IMOL".into(), s("N"));
            r.insert("DATE_CREATE".into(), s(clock::iso(created, g.tz)));
            r.insert("DATE_MODIFY".into(), s(clock::iso(modified, g.tz)));
            r.insert("COMMENTS".into(), s(""));
            r.insert(
                "PHONE".into(),
                multi(id, format!("+1555{:07}", id % 10_000_000), "PHONE"),
            );
            r.insert(
                "EMAIL".into(),
                multi(
                    id,
                    format!(
                        "{}.{}{id}@example.org",
                        first.to_lowercase(),
                        last.to_lowercase()
                    ),
                    "EMAIL",
                ),
            );
        }
        Kind::Deal => {
            r.insert("ID".into(), s(id));
            r.insert("TITLE".into(), s(format!("Deal #{id}")));
            r.insert("TYPE_ID".into(), s("SALE"));
            r.insert("CATEGORY_ID".into(), s(0));
            r.insert("STAGE_ID".into(), s(pick(DEAL_STAGES, h >> 12)));
            r.insert(
                "OPPORTUNITY".into(),
                s(format!("{}.00", 1000 + h2 % 99_000)),
            );
            r.insert("CURRENCY_ID".into(), s("EUR"));
            r.insert(
                "CONTACT_ID".into(),
                s(if g.contacts > 0 {
                    1 + (h >> 32) % g.contacts
                } else {
                    0
                }),
            );
            r.insert(
                "COMPANY_ID".into(),
                s(if g.companies > 0 {
                    1 + (h >> 40) % g.companies
                } else {
                    0
                }),
            );
            r.insert("ASSIGNED_BY_ID".into(), s(assigned));
            r.insert("CREATED_BY_ID".into(), s(assigned));
            r.insert("DATE_CREATE".into(), s(clock::iso(created, g.tz)));
            r.insert("DATE_MODIFY".into(), s(clock::iso(modified, g.tz)));
            r.insert("CLOSED".into(), s("N"));
            r.insert("OPENED".into(), s("Y"));
            r.insert("COMMENTS".into(), s(""));
        }
        Kind::Lead => {
            r.insert("ID".into(), s(id));
            r.insert("TITLE".into(), s(format!("Lead #{id}")));
            r.insert("NAME".into(), s(first));
            r.insert("LAST_NAME".into(), s(last));
            r.insert("STATUS_ID".into(), s(pick(LEAD_STATUSES, h >> 12)));
            r.insert("SOURCE_ID".into(), s(pick(SOURCES, h >> 28)));
            r.insert("OPPORTUNITY".into(), s(format!("{}.00", h2 % 50_000)));
            r.insert("CURRENCY_ID".into(), s("EUR"));
            r.insert("ASSIGNED_BY_ID".into(), s(assigned));
            r.insert("DATE_CREATE".into(), s(clock::iso(created, g.tz)));
            r.insert("DATE_MODIFY".into(), s(clock::iso(modified, g.tz)));
            r.insert("OPENED".into(), s("Y"));
            r.insert("HAS_PHONE".into(), s("N"));
            r.insert("HAS_EMAIL".into(), s("N"));
        }
        Kind::Company => {
            r.insert("ID".into(), s(id));
            r.insert(
                "TITLE".into(),
                s(format!(
                    "{last} {} Ltd",
                    pick(&["Trading", "Systems", "Logistics", "Labs"], h >> 12)
                )),
            );
            r.insert("COMPANY_TYPE".into(), s("CUSTOMER"));
            r.insert(
                "INDUSTRY".into(),
                s(pick(
                    &["IT", "MANUFACTURING", "CONSULTING", "OTHER"],
                    h >> 16,
                )),
            );
            r.insert("REVENUE".into(), s(format!("{}.00", h2 % 10_000_000)));
            r.insert("CURRENCY_ID".into(), s("EUR"));
            r.insert("ASSIGNED_BY_ID".into(), s(assigned));
            r.insert("DATE_CREATE".into(), s(clock::iso(created, g.tz)));
            r.insert("DATE_MODIFY".into(), s(clock::iso(modified, g.tz)));
            r.insert("OPENED".into(), s("Y"));
            r.insert("HAS_PHONE".into(), s("N"));
            r.insert("HAS_EMAIL".into(), s("N"));
        }
        Kind::Task => {
            r.insert("ID".into(), s(id));
            r.insert("TITLE".into(), s(format!("Task #{id}")));
            r.insert("DESCRIPTION".into(), s(""));
            r.insert("STATUS".into(), s(2 + h % 4));
            r.insert("PRIORITY".into(), s(h % 3));
            r.insert("RESPONSIBLE_ID".into(), s(assigned));
            r.insert("CREATED_BY".into(), s(1));
            r.insert("CREATED_DATE".into(), s(clock::iso(created, g.tz)));
            r.insert("CHANGED_DATE".into(), s(clock::iso(modified, g.tz)));
            r.insert(
                "DEADLINE".into(),
                s(clock::iso(created + 14.0 * 86_400.0, g.tz)),
            );
            r.insert("GROUP_ID".into(), s(0));
        }
    }
    r
}

/// Fields left out of list answers unless selected by name (CRM multi-fields).
pub(crate) fn list_hidden(field: &str) -> bool {
    matches!(field, "PHONE" | "EMAIL" | "WEB" | "IM")
}

/// One table: seeded records generated on demand plus stored changes.
pub(crate) struct Table {
    pub kind: Kind,
    pub seeded: u64,
    next_id: u64,
    overrides: BTreeMap<u64, Option<Record>>,
    /// Seeded ids deleted, plus added ids deleted.
    dead: u64,
}

impl Table {
    pub(crate) fn new(kind: Kind, seeded: u64) -> Self {
        Table {
            kind,
            seeded,
            next_id: seeded + 1,
            overrides: BTreeMap::new(),
            dead: 0,
        }
    }

    /// The largest id handed out so far.
    pub(crate) fn max_id(&self) -> u64 {
        self.next_id - 1
    }

    /// The record `id`, if alive.
    pub(crate) fn get(&self, id: u64, g: &Gen) -> Option<Cow<'_, Record>> {
        match self.overrides.get(&id) {
            Some(Some(r)) => Some(Cow::Borrowed(r)),
            Some(None) => None,
            None if id >= 1 && id <= self.seeded => Some(Cow::Owned(generate(self.kind, id, g))),
            None => None,
        }
    }

    /// Whether `id` is alive, without building the record.
    pub(crate) fn alive(&self, id: u64) -> bool {
        match self.overrides.get(&id) {
            Some(r) => r.is_some(),
            None => id >= 1 && id <= self.seeded,
        }
    }

    /// Adds a record (its `ID` is set here) and returns the new id.
    pub(crate) fn add(&mut self, mut record: Record) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        record.insert("ID".into(), Value::String(id.to_string()));
        self.overrides.insert(id, Some(record));
        id
    }

    /// Replaces record `id` (must be alive).
    pub(crate) fn put(&mut self, id: u64, record: Record) {
        self.overrides.insert(id, Some(record));
    }

    /// Deletes record `id`; false when it was not alive.
    pub(crate) fn delete(&mut self, id: u64) -> bool {
        if !self.alive(id) {
            return false;
        }
        self.overrides.insert(id, None);
        self.dead += 1;
        true
    }

    /// Alive ids within `lo..=hi`, counted without building records.
    fn alive_in(&self, lo: u64, hi: u64) -> u64 {
        if lo > hi {
            return 0;
        }
        let deleted = self
            .overrides
            .range(lo..=hi)
            .filter(|(_, r)| r.is_none())
            .count() as u64;
        (hi - lo + 1) - deleted
    }
}

/// A comparison of a `filter` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    NotLike,
}

/// One filter condition: `field`, `op`, one or more values (several = any of them).
#[derive(Clone, Debug)]
pub(crate) struct Cond {
    pub field: String,
    pub op: Op,
    pub values: Vec<String>,
}

/// Splits a filter key into its prefix and field (`>=ID` -> `Ge`, `ID`).
pub(crate) fn parse_key(key: &str) -> (Op, &str) {
    const PREFIXES: &[(&str, Op)] = &[
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("!=", Op::Ne),
        ("!%", Op::NotLike),
        ("!@", Op::Ne),
        ("=%", Op::Like),
        ("%", Op::Like),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("!", Op::Ne),
        ("@", Op::Eq),
        ("=", Op::Eq),
    ];
    for (p, op) in PREFIXES {
        if let Some(rest) = key.strip_prefix(p) {
            return (*op, rest);
        }
    }
    (Op::Eq, key)
}

/// The values of a filter entry: a scalar or a list of scalars.
pub(crate) fn filter_values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter_map(util::text).collect(),
        Value::Object(m) => m.values().filter_map(util::text).collect(),
        Value::Null => vec![String::new()],
        other => util::text(other).into_iter().collect(),
    }
}

/// Text forms of a record field for matching: multi-fields give each `VALUE`, flags `Y`/`N`.
fn field_texts(v: &Value) -> Vec<String> {
    match v {
        Value::Bool(b) => vec![util::yn(*b).to_owned()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| match x {
                Value::Object(m) => m.get("VALUE").and_then(util::text),
                other => util::text(other),
            })
            .collect(),
        Value::Null => vec![String::new()],
        other => util::text(other).into_iter().collect(),
    }
}

fn compare(a: &str, b: &str) -> Ordering {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

fn eq_value(field: &Value, a: &str, b: &str) -> bool {
    if field.is_boolean() {
        let norm = |s: &str| util::as_bool(&Value::String(s.to_owned()));
        return norm(a) == norm(b);
    }
    compare(a, b) == Ordering::Equal && (a == b || a.trim().parse::<f64>().is_ok())
}

impl Cond {
    /// Whether `record` satisfies this condition. A field the record lacks is empty.
    pub(crate) fn matches(&self, record: &Record) -> bool {
        let null = Value::Null;
        let field = record.get(&self.field).unwrap_or(&null);
        let texts = field_texts(field);
        let any = |f: &dyn Fn(&str, &str) -> bool| {
            texts.iter().any(|t| self.values.iter().any(|v| f(t, v)))
        };
        match self.op {
            Op::Eq => any(&|t, v| eq_value(field, t, v)),
            Op::Ne => !any(&|t, v| eq_value(field, t, v)),
            Op::Gt => any(&|t, v| compare(t, v) == Ordering::Greater),
            Op::Ge => any(&|t, v| compare(t, v) != Ordering::Less),
            Op::Lt => any(&|t, v| compare(t, v) == Ordering::Less),
            Op::Le => any(&|t, v| compare(t, v) != Ordering::Greater),
            Op::Like => any(&|t, v| t.to_lowercase().contains(&v.to_lowercase())),
            Op::NotLike => !any(&|t, v| t.to_lowercase().contains(&v.to_lowercase())),
        }
    }
}

/// A list request, already in wire field names.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query {
    pub filter: Vec<Cond>,
    /// `(field, descending)` in priority order.
    pub order: Vec<(String, bool)>,
    /// Offset; `None` = `start=-1` (no count).
    pub start: Option<u64>,
    /// Page size (50 on a real portal).
    pub limit: u64,
}

/// A list page.
pub(crate) struct Page {
    pub records: Vec<Record>,
    /// Matching records in all; `None` when not counted (`start=-1`).
    pub total: Option<u64>,
    /// Records skipped or counted beyond the page, for the simulated cost.
    pub rows_skipped: u64,
    pub rows_counted: u64,
}

/// Runs `q` on `table`.
pub(crate) fn list(table: &Table, q: &Query, g: &Gen) -> Page {
    // Narrow the id range with ID conditions; the rest needs the record.
    let (mut lo, mut hi) = (1u64, table.max_id());
    let mut rest = Vec::new();
    for c in &q.filter {
        let single = (c.field == "ID" && c.values.len() == 1)
            .then(|| c.values[0].trim().parse::<f64>().ok())
            .flatten();
        match (c.op, single) {
            (Op::Gt, Some(v)) => lo = lo.max((v.floor() as i64 + 1).max(0) as u64),
            (Op::Ge, Some(v)) => lo = lo.max(v.ceil().max(0.0) as u64),
            (Op::Lt, Some(v)) => hi = hi.min((v.ceil() as i64 - 1).max(0) as u64),
            (Op::Le, Some(v)) => hi = hi.min(v.floor().max(0.0) as u64),
            (Op::Eq, Some(v)) if v >= 0.0 => {
                lo = lo.max(v as u64);
                hi = hi.min(v as u64);
            }
            _ => rest.push(c),
        }
    }
    let by_id = q.order.is_empty() || (q.order.len() == 1 && q.order[0].0 == "ID");
    let desc = by_id && q.order.first().is_some_and(|o| o.1);
    let offset = q.start.unwrap_or(0);
    let count = q.start.is_some();
    let mut page = Page {
        records: Vec::new(),
        total: None,
        rows_skipped: 0,
        rows_counted: 0,
    };
    if lo > hi {
        page.total = count.then_some(0);
        return page;
    }
    if by_id {
        if rest.is_empty() && count {
            let total = table.alive_in(lo, hi);
            page.total = Some(total);
            page.rows_counted = total;
        }
        let mut seen = 0u64;
        let mut matched_after_page = false;
        let ids: Box<dyn Iterator<Item = u64>> = if desc {
            Box::new((lo..=hi).rev())
        } else {
            Box::new(lo..=hi)
        };
        for id in ids {
            if !table.alive(id) {
                continue;
            }
            let record = if rest.is_empty() {
                None
            } else {
                match table.get(id, g) {
                    Some(r) if rest.iter().all(|c| c.matches(&r)) => Some(r),
                    _ => continue,
                }
            };
            seen += 1;
            if seen <= offset {
                continue;
            }
            if (page.records.len() as u64) < q.limit {
                let r = match record {
                    Some(r) => r.into_owned(),
                    None => match table.get(id, g) {
                        Some(r) => r.into_owned(),
                        None => continue,
                    },
                };
                page.records.push(r);
            } else {
                matched_after_page = true;
                if !count || page.total.is_some() {
                    break;
                }
            }
        }
        page.rows_skipped = offset.min(seen);
        if count && page.total.is_none() {
            page.total = Some(seen);
            page.rows_counted = seen;
        }
        let _ = matched_after_page;
        return page;
    }
    // Any other order: collect all matches, sort, cut.
    let mut all: Vec<Record> = Vec::new();
    for id in lo..=hi {
        if let Some(r) = table.get(id, g) {
            if rest.iter().all(|c| c.matches(&r)) {
                all.push(r.into_owned());
            }
        }
    }
    all.sort_by(|a, b| {
        for (field, d) in &q.order {
            let ta = a
                .get(field)
                .map(field_texts)
                .and_then(|t| t.into_iter().next())
                .unwrap_or_default();
            let tb = b
                .get(field)
                .map(field_texts)
                .and_then(|t| t.into_iter().next())
                .unwrap_or_default();
            let o = compare(&ta, &tb);
            let o = if *d { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let total = all.len() as u64;
    page.rows_counted = total;
    page.rows_skipped = offset.min(total);
    page.total = count.then_some(total);
    page.records = all
        .into_iter()
        .skip(offset as usize)
        .take(q.limit as usize)
        .collect();
    page
}

/// Builds a [`Query`] from `filter`, `order` and `start` params; `rename` maps a wire field
/// name as sent (e.g. camelCase) to the record's name. `order_keys` is the order the keys of
/// `order` were sent in (its `Value` sorts them): the first sorts first.
pub(crate) fn query_from(
    filter: Option<&Value>,
    order: Option<&Value>,
    order_keys: Option<&[String]>,
    start: Option<&Value>,
    rename: &dyn Fn(&str) -> String,
) -> Query {
    let mut q = Query {
        limit: 50,
        start: Some(0),
        ..Query::default()
    };
    if let Some(Value::Object(f)) = filter {
        for (k, v) in f {
            let (op, field) = parse_key(k);
            q.filter.push(Cond {
                field: rename(field),
                op,
                values: filter_values(v),
            });
        }
    }
    if let Some(Value::Object(o)) = order {
        for (k, v) in crate::order::in_order(o, order_keys) {
            let desc = util::text(v).is_some_and(|d| d.eq_ignore_ascii_case("desc"));
            q.order.push((rename(k), desc));
        }
    }
    if let Some(s) = start {
        match util::text(s).and_then(|t| t.trim().parse::<i64>().ok()) {
            Some(n) if n < 0 => q.start = None,
            Some(n) => q.start = Some(n as u64),
            None => {}
        }
    }
    q
}

/// Keeps only the selected fields (in record order); `*` or an empty select keeps all but
/// the multi-fields, which come only when named.
pub(crate) fn select(record: Record, fields: &[String]) -> Record {
    let all = fields.is_empty() || fields.iter().any(|f| f == "*");
    record
        .into_iter()
        .filter(|(k, _)| {
            let named = fields.iter().any(|f| f == k);
            named || (all && !list_hidden(k))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen() -> Gen {
        Gen {
            seed: 1,
            tz: 7200,
            users: 5,
            departments: 3,
            contacts: 1_000_000,
            companies: 10,
        }
    }

    #[test]
    fn a_million_contacts_list_fast_by_id_cursor() {
        let g = gen();
        let mut t = Table::new(Kind::Contact, 1_000_000);
        assert!(t.delete(999_990));
        let q = query_from(
            Some(&serde_json::json!({">ID": 999_950})),
            Some(&serde_json::json!({"ID": "ASC"})),
            None,
            Some(&serde_json::json!(-1)),
            &|f| f.to_owned(),
        );
        let page = list(&t, &q, &g);
        assert_eq!(page.records.len(), 49);
        assert_eq!(page.records[0]["ID"], "999951");
        assert_eq!(page.total, None);
        let q = query_from(None, None, None, Some(&serde_json::json!(0)), &|f| {
            f.to_owned()
        });
        assert_eq!(list(&t, &q, &g).total, Some(999_999));
    }

    #[test]
    fn filters_and_orders() {
        let g = gen();
        let t = Table::new(Kind::Deal, 200);
        let q = query_from(
            Some(&serde_json::json!({"STAGE_ID": "NEW", "%TITLE": "deal #1", "<=ID": 150})),
            Some(&serde_json::json!({"OPPORTUNITY": "DESC"})),
            None,
            None,
            &|f| f.to_owned(),
        );
        let page = list(&t, &q, &g);
        assert!(!page.records.is_empty());
        let opp: Vec<f64> = page
            .records
            .iter()
            .map(|r| r["OPPORTUNITY"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(opp.windows(2).all(|w| w[0] >= w[1]));
        assert!(page.records.iter().all(|r| r["STAGE_ID"] == "NEW"));
    }
}
