//! The seeded data store: users, departments, CRM entities and tasks.
//!
//! Seeded records are never materialized: record `id` of a table with `seeded >= id` is
//! generated from a hash of (seed, kind, id) when read, so a million contacts cost nothing
//! until they are listed. Only changes are stored: `overrides` maps an id to its new record
//! (`Some`) or to a deletion (`None`); added records get ids after the seeded ones.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

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
    /// Ids deleted (seeded or added): the holes a walk over the id range steps over.
    deleted: BTreeSet<u64>,
}

impl Table {
    pub(crate) fn new(kind: Kind, seeded: u64) -> Self {
        Table {
            kind,
            seeded,
            next_id: seeded + 1,
            overrides: BTreeMap::new(),
            deleted: BTreeSet::new(),
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
        self.deleted.insert(id);
        true
    }

    /// Alive ids within `lo..=hi` (`hi` at most [`max_id`](Self::max_id)), counted without
    /// building records: O(deletions in the range).
    fn alive_in(&self, lo: u64, hi: u64) -> u64 {
        if lo > hi {
            return 0;
        }
        (hi - lo + 1) - self.deleted.range(lo..=hi).count() as u64
    }

    /// The alive id that has `n` alive ids before it in `lo..=hi`, walking up (or down from
    /// `hi` when `desc`): where a page at offset `n` starts, found in O(deletions passed)
    /// instead of walking `n` ids.
    fn nth_alive(&self, lo: u64, hi: u64, n: u64, desc: bool) -> Option<u64> {
        if lo > hi || n > hi - lo {
            return None;
        }
        if desc {
            let mut cand = hi - n;
            for d in self.deleted.range(lo..=hi).rev() {
                if *d < cand {
                    break;
                }
                if cand == lo {
                    return None;
                }
                cand -= 1;
            }
            Some(cand)
        } else {
            let mut cand = lo + n;
            for d in self.deleted.range(lo..=hi) {
                if *d > cand {
                    break;
                }
                if cand == hi {
                    return None;
                }
                cand += 1;
            }
            Some(cand)
        }
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
    /// `%`: the value is a substring (no wildcards).
    Like,
    /// `!%`.
    NotLike,
    /// `=%`, `%=`: the value is a pattern with `%` (any run) and `_` (one character).
    Pattern,
    /// `!=%`, `!%=`.
    NotPattern,
}

/// One filter condition: `field`, `op`, one or more values (several = any of them).
#[derive(Clone, Debug)]
pub(crate) struct Cond {
    pub field: String,
    pub op: Op,
    pub values: Vec<String>,
}

/// Splits a filter key into its prefix and field (`>=ID` -> `Ge`, `ID`), longest prefix
/// first (PROTOCOL.md; EN:api-reference/user/user-get.md lists them all).
pub(crate) fn parse_key(key: &str) -> (Op, &str) {
    const PREFIXES: &[(&str, Op)] = &[
        ("!=%", Op::NotPattern),
        ("!%=", Op::NotPattern),
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("!=", Op::Ne),
        ("!%", Op::NotLike),
        ("!@", Op::Ne),
        ("=%", Op::Pattern),
        ("%=", Op::Pattern),
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

/// The values of a filter entry: a scalar or a list of scalars. An empty one (`null`, `""`,
/// `[]`, `{}`: all `key=` in a query string) is the one value `""`.
pub(crate) fn filter_values(v: &Value) -> Vec<String> {
    let values: Vec<String> = match v {
        Value::Array(a) => a.iter().filter_map(util::text).collect(),
        Value::Object(m) => m.values().filter_map(util::text).collect(),
        other => util::text(other).into_iter().collect(),
    };
    if values.is_empty() {
        vec![String::new()]
    } else {
        values
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

/// A date or date-time as unix seconds: ISO 8601 with or without an offset
/// (`2026-01-02T03:04:05+03:00`, `2026-01-02T03:04:05`), `2026-01-02 03:04:05`, the dotted
/// `02.01.2026 03:04:05`, or a bare date (midnight). Without an offset it is portal time
/// (`tz` seconds east of UTC), as a portal reads filter values in its own zone.
pub(crate) fn parse_datetime(s: &str, tz: i32) -> Option<f64> {
    use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
    let s = s.trim();
    let b = s.as_bytes();
    // Cheap rejection: every accepted form starts with `dddd-` or `dd.`.
    let dashed = b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    let dotted = b.len() >= 10 && b[..2].iter().all(u8::is_ascii_digit) && b[2] == b'.';
    if !dashed && !dotted {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp() as f64);
    }
    let zone = FixedOffset::east_opt(tz)?;
    let naive = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%d.%m.%Y %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        ["%Y-%m-%d", "%d.%m.%Y"]
            .iter()
            .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    zone.from_local_datetime(&naive)
        .single()
        .map(|t| t.timestamp() as f64)
}

/// Numbers as numbers, dates and date-times as instants (whatever their offsets), the rest
/// as text.
fn compare(a: &str, b: &str, tz: i32) -> Ordering {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => match (parse_datetime(a, tz), parse_datetime(b, tz)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            _ => a.cmp(b),
        },
    }
}

fn eq_value(field: &Value, a: &str, b: &str, tz: i32) -> bool {
    let flag = |s: &str| util::as_bool(&Value::String(s.to_owned()));
    if field.is_boolean() || matches!(a, "Y" | "N") {
        if let (Some(x), Some(y)) = (flag(a), flag(b)) {
            return x == y;
        }
    }
    if a == b {
        return true;
    }
    // Equal as numbers (`5`, `5.0`) or as instants (`...+02:00`, `...+03:00`), not as text.
    let numeric = a.trim().parse::<f64>().is_ok() && b.trim().parse::<f64>().is_ok();
    let instants = parse_datetime(a, tz).is_some() && parse_datetime(b, tz).is_some();
    (numeric || instants) && compare(a, b, tz) == Ordering::Equal
}

/// SQL `LIKE` with `%` and `_`, case-insensitive.
fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(&t[i..], rest)),
            Some(('_', rest)) => !t.is_empty() && go(&t[1..], rest),
            Some((c, rest)) => t.first() == Some(c) && go(&t[1..], rest),
        }
    }
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    go(&t, &p)
}

impl Cond {
    /// Whether `record` satisfies this condition. A field the record lacks is empty.
    pub(crate) fn matches(&self, record: &Record, tz: i32) -> bool {
        if self.field == "NAME_SEARCH" && !record.contains_key("NAME_SEARCH") {
            // user.get's quick search: every word somewhere in the person's names or e-mail.
            let hay: String = ["NAME", "LAST_NAME", "SECOND_NAME", "EMAIL"]
                .iter()
                .filter_map(|f| record.get(*f).and_then(util::text))
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            let found = self.values.iter().any(|v| {
                v.split_whitespace()
                    .all(|w| hay.contains(&w.to_lowercase()))
            });
            return found != matches!(self.op, Op::Ne | Op::NotLike | Op::NotPattern);
        }
        let null = Value::Null;
        let field = record.get(&self.field).unwrap_or(&null);
        let texts = field_texts(field);
        let texts = if texts.is_empty() {
            vec![String::new()]
        } else {
            texts
        };
        let any = |f: &dyn Fn(&str, &str) -> bool| {
            texts.iter().any(|t| self.values.iter().any(|v| f(t, v)))
        };
        let contains = |t: &str, v: &str| t.to_lowercase().contains(&v.to_lowercase());
        match self.op {
            Op::Eq => any(&|t, v| eq_value(field, t, v, tz)),
            Op::Ne => !any(&|t, v| eq_value(field, t, v, tz)),
            Op::Gt => any(&|t, v| compare(t, v, tz) == Ordering::Greater),
            Op::Ge => any(&|t, v| compare(t, v, tz) != Ordering::Less),
            Op::Lt => any(&|t, v| compare(t, v, tz) == Ordering::Less),
            Op::Le => any(&|t, v| compare(t, v, tz) != Ordering::Greater),
            Op::Like => any(&contains),
            Op::NotLike => !any(&contains),
            Op::Pattern => any(&like),
            Op::NotPattern => !any(&like),
        }
    }

    /// Whether this is a range condition on `ID` (`>ID`, `>=ID`, `<ID`, `<=ID`), the one a
    /// fast scan moves forward with.
    pub(crate) fn is_id_range(&self) -> bool {
        self.field == "ID" && matches!(self.op, Op::Gt | Op::Ge | Op::Lt | Op::Le)
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
    /// Rows the page read: those skipped to reach its offset, those a filter looked at and
    /// dropped on the way, and those returned. The simulated cost of the page.
    pub rows_read: u64,
    /// Rows counted for `total` (0 when not counted).
    pub rows_counted: u64,
}

/// Runs `q` on `table`.
///
/// Ordered by `ID` (or not ordered), the walk goes over the id range the `ID` conditions
/// leave, so a `>ID` + `start=-1` page reads only its own rows; an offset is skipped over
/// the deletions, not row by row. Any other order collects and sorts every match.
pub(crate) fn list(table: &Table, q: &Query, g: &Gen) -> Page {
    let tz = g.tz;
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
            (Op::Eq, Some(v)) if v >= 0.0 && v.fract() == 0.0 => {
                lo = lo.max(v as u64);
                hi = hi.min(v as u64);
            }
            _ => rest.push(c),
        }
    }
    lo = lo.max(1);
    let by_id = q.order.is_empty() || (q.order.len() == 1 && q.order[0].0 == "ID");
    let desc = by_id && q.order.first().is_some_and(|o| o.1);
    let offset = q.start.unwrap_or(0);
    let count = q.start.is_some();
    let mut page = Page {
        records: Vec::new(),
        total: None,
        rows_read: 0,
        rows_counted: 0,
    };
    if lo > hi {
        page.total = count.then_some(0);
        return page;
    }
    let limit = q.limit as usize;
    if by_id && rest.is_empty() {
        // Every alive id in the range matches: count and skip without building records.
        let alive = table.alive_in(lo, hi);
        if count {
            page.total = Some(alive);
            page.rows_counted = alive;
        }
        let Some(first) = table.nth_alive(lo, hi, offset, desc) else {
            page.rows_read = alive;
            return page;
        };
        let mut id = first;
        loop {
            if page.records.len() == limit {
                break;
            }
            if let Some(r) = table.get(id, g) {
                page.records.push(r.into_owned());
            }
            if (desc && id == lo) || (!desc && id == hi) {
                break;
            }
            id = if desc { id - 1 } else { id + 1 };
        }
        page.rows_read = offset + page.records.len() as u64;
        return page;
    }
    if by_id {
        // Walk the range, building each record to test the other conditions.
        let mut seen = 0u64;
        let mut examined = 0u64;
        let mut read = None;
        let ids: Box<dyn Iterator<Item = u64>> = if desc {
            Box::new((lo..=hi).rev())
        } else {
            Box::new(lo..=hi)
        };
        for id in ids {
            let Some(r) = table.get(id, g) else {
                continue;
            };
            examined += 1;
            if !rest.iter().all(|c| c.matches(&r, tz)) {
                continue;
            }
            seen += 1;
            if seen <= offset {
                continue;
            }
            if page.records.len() < limit {
                page.records.push(r.into_owned());
            } else {
                read.get_or_insert(examined - 1);
                if !count {
                    break;
                }
            }
        }
        page.rows_read = read.unwrap_or(examined);
        if count {
            page.total = Some(seen);
            page.rows_counted = examined;
        }
        return page;
    }
    // Any other order: collect all matches, sort, cut.
    let mut all: Vec<Record> = Vec::new();
    for id in lo..=hi {
        if let Some(r) = table.get(id, g) {
            if rest.iter().all(|c| c.matches(&r, tz)) {
                all.push(r.into_owned());
            }
        }
    }
    let first_text = |r: &Record, field: &str| {
        r.get(field)
            .map(field_texts)
            .and_then(|t| t.into_iter().next())
            .unwrap_or_default()
    };
    all.sort_by(|a, b| {
        for (field, d) in &q.order {
            let o = compare(&first_text(a, field), &first_text(b, field), tz);
            let o = if *d { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let total = all.len() as u64;
    if count {
        page.total = Some(total);
        page.rows_counted = total;
    }
    page.records = all.into_iter().skip(offset as usize).take(limit).collect();
    page.rows_read = offset.min(total) + page.records.len() as u64;
    page
}

/// Why a list request was refused: a `filter` or `order` key naming a field the entity does
/// not have (as sent, without its operator prefix), or an `order` direction other than
/// `ASC`/`DESC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QueryError {
    Filter(String),
    Order(String),
    Direction { field: String, direction: String },
}

/// How one list method names and checks its fields.
pub(crate) struct Fields<'a> {
    /// A wire field name as sent (e.g. camelCase) to the record's name.
    pub rename: &'a dyn Fn(&str) -> String,
    /// Whether a renamed field may be filtered on.
    pub filter: &'a dyn Fn(&str) -> bool,
    /// Whether a renamed field may be sorted on.
    pub order: &'a dyn Fn(&str) -> bool,
    /// Whether an `order` direction other than `ASC`/`DESC` is refused (else it is ascending).
    pub strict_direction: bool,
}

/// Builds a [`Query`] from `filter`, `order` and `start` params (each already read with
/// [`util::param`], so an empty one is `None`). `order_keys` is the order the keys of `order`
/// were sent in (its `Value` sorts them): the first sorts first. Filter keys starting with
/// `::` (`::SUBFILTER-PARAMS`) are not conditions and are skipped.
pub(crate) fn query_from(
    filter: Option<&Value>,
    order: Option<&Value>,
    order_keys: Option<&[String]>,
    start: Option<&Value>,
    fields: &Fields<'_>,
) -> Result<Query, QueryError> {
    let mut q = Query {
        limit: 50,
        start: Some(0),
        ..Query::default()
    };
    if let Some(Value::Object(f)) = filter {
        for (k, v) in f {
            if k.starts_with("::") {
                continue;
            }
            let (op, field) = parse_key(k);
            let name = (fields.rename)(field);
            if !(fields.filter)(&name) {
                return Err(QueryError::Filter(field.to_owned()));
            }
            q.filter.push(Cond {
                field: name,
                op,
                values: filter_values(v),
            });
        }
    }
    if let Some(Value::Object(o)) = order {
        for (k, v) in crate::order::in_order(o, order_keys) {
            let name = (fields.rename)(k);
            if !(fields.order)(&name) {
                return Err(QueryError::Order(k.clone()));
            }
            let dir = util::text(v).unwrap_or_default();
            let desc = dir.trim().eq_ignore_ascii_case("desc");
            if fields.strict_direction && !desc && !dir.trim().eq_ignore_ascii_case("asc") {
                return Err(QueryError::Direction {
                    field: k.clone(),
                    direction: dir,
                });
            }
            q.order.push((name, desc));
        }
    }
    if let Some(s) = start {
        match util::text(s).and_then(|t| t.trim().parse::<i64>().ok()) {
            Some(n) if n < 0 => q.start = None,
            Some(n) => q.start = Some(n as u64),
            None => {}
        }
    }
    Ok(q)
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
    use serde_json::json;

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

    fn any_field() -> Fields<'static> {
        Fields {
            rename: &|f| f.to_owned(),
            filter: &|_| true,
            order: &|_| true,
            strict_direction: false,
        }
    }

    fn query(filter: Value, order: Value, start: Value) -> Query {
        let opt = |v: &Value| (!util::php_empty(v)).then(|| v.clone());
        query_from(
            opt(&filter).as_ref(),
            opt(&order).as_ref(),
            None,
            opt(&start).as_ref(),
            &any_field(),
        )
        .unwrap()
    }

    #[test]
    fn a_million_contacts_list_fast_by_id_cursor() {
        let g = gen();
        let mut t = Table::new(Kind::Contact, 1_000_000);
        assert!(t.delete(999_990));
        let q = query(json!({">ID": 999_950}), json!({"ID": "ASC"}), json!(-1));
        let page = list(&t, &q, &g);
        assert_eq!(page.records.len(), 49);
        assert_eq!(page.records[0]["ID"], "999951");
        assert_eq!(page.total, None);
        // The page read its own 49 rows, nothing before them, and counted none.
        assert_eq!((page.rows_read, page.rows_counted), (49, 0));
        let q = query(json!(null), json!(null), json!(0));
        let page = list(&t, &q, &g);
        assert_eq!(page.total, Some(999_999));
        assert_eq!((page.rows_read, page.rows_counted), (50, 999_999));
        // An offset reads the rows it skips.
        let q = query(json!(null), json!(null), json!(999_900));
        let page = list(&t, &q, &g);
        assert_eq!(page.records[0]["ID"], "999901");
        assert_eq!(page.rows_read, 999_950);
    }

    #[test]
    fn offsets_skip_over_deletions_both_ways() {
        let g = gen();
        let mut t = Table::new(Kind::Deal, 20);
        for id in [1, 2, 5, 6, 7, 20] {
            assert!(t.delete(id));
        }
        let added = t.add(Record::new());
        assert_eq!(added, 21);
        let alive: Vec<u64> = (1..=21).filter(|id| t.alive(*id)).collect();
        for desc in [false, true] {
            let mut want = alive.clone();
            if desc {
                want.reverse();
            }
            for n in 0..want.len() as u64 + 2 {
                assert_eq!(
                    t.nth_alive(1, 21, n, desc),
                    want.get(n as usize).copied(),
                    "n {n} desc {desc}"
                );
            }
            // Pages of 4 at every offset give the same rows as walking the list.
            for start in 0..want.len() as u64 {
                let mut q = query(
                    json!(null),
                    json!({"ID": if desc { "DESC" } else { "ASC" }}),
                    json!(start),
                );
                q.limit = 4;
                let ids: Vec<u64> = list(&t, &q, &g)
                    .records
                    .iter()
                    .map(|r| r["ID"].as_str().unwrap().parse().unwrap())
                    .collect();
                let end = (start as usize + 4).min(want.len());
                assert_eq!(ids, want[start as usize..end], "start {start} desc {desc}");
            }
        }
        assert_eq!(t.nth_alive(3, 4, 0, false), Some(3));
        assert_eq!(t.nth_alive(5, 7, 0, false), None);
        assert_eq!(t.nth_alive(5, 7, 0, true), None);
    }

    #[test]
    fn filters_and_orders() {
        let g = gen();
        let t = Table::new(Kind::Deal, 200);
        let q = query(
            json!({"STAGE_ID": "NEW", "%TITLE": "deal #1", "<=ID": 150}),
            json!({"OPPORTUNITY": "DESC"}),
            json!(null),
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

    #[test]
    fn every_prefix_parses_longest_first() {
        for (key, op, field) in [
            (">=ID", Op::Ge, "ID"),
            (">ID", Op::Gt, "ID"),
            ("<=ID", Op::Le, "ID"),
            ("<ID", Op::Lt, "ID"),
            ("=ID", Op::Eq, "ID"),
            ("ID", Op::Eq, "ID"),
            ("!ID", Op::Ne, "ID"),
            ("!=ID", Op::Ne, "ID"),
            ("@ID", Op::Eq, "ID"),
            ("!@ID", Op::Ne, "ID"),
            ("%TITLE", Op::Like, "TITLE"),
            ("!%TITLE", Op::NotLike, "TITLE"),
            ("=%TITLE", Op::Pattern, "TITLE"),
            ("%=TITLE", Op::Pattern, "TITLE"),
            ("!=%TITLE", Op::NotPattern, "TITLE"),
            ("!%=TITLE", Op::NotPattern, "TITLE"),
        ] {
            assert_eq!(parse_key(key), (op, field), "{key}");
        }
    }

    #[test]
    fn conditions_compare_numbers_instants_patterns_and_flags() {
        let r: Record = serde_json::from_value(json!({
            "ID": "12", "TITLE": "Молоко + мёд", "DATE_CREATE": "2026-01-02T02:04:05+02:00",
            "OPENED": "Y", "PHONE": [], "EMAIL": [{"VALUE": "a@b.c"}]
        }))
        .unwrap();
        let cond = |k: &str, v: Value| {
            let (op, field) = parse_key(k);
            Cond {
                field: field.to_owned(),
                op,
                values: filter_values(&v),
            }
            .matches(&r, 7200)
        };
        assert!(cond("ID", json!(12)) && cond("ID", json!("12.0")) && !cond("ID", json!(1)));
        assert!(cond("@ID", json!([1, 12])) && cond("!@ID", json!([1, 2])));
        // The same instant at another offset; before/after across offsets.
        assert!(cond("DATE_CREATE", json!("2026-01-02T03:04:05+03:00")));
        assert!(cond(">=DATE_CREATE", json!("2026-01-02T03:04:05+03:00")));
        assert!(!cond(">DATE_CREATE", json!("2026-01-02T03:04:05+03:00")));
        assert!(cond("<DATE_CREATE", json!("2026-01-02T03:04:06+03:00")));
        // A bare date is midnight portal time.
        assert!(cond(">=DATE_CREATE", json!("2026-01-02")));
        assert!(cond("<DATE_CREATE", json!("2026-01-03")));
        assert!(cond("%TITLE", json!("МЁД")) && cond("!%TITLE", json!("sugar")));
        assert!(cond("=%TITLE", json!("молоко%")) && !cond("=%TITLE", json!("мёд%")));
        assert!(cond("%=TITLE", json!("%+ мёд")) && cond("!=%TITLE", json!("_олоко")));
        assert!(
            cond("OPENED", json!(true))
                && cond("OPENED", json!("1"))
                && !cond("OPENED", json!("N"))
        );
        // An empty value (null, "", [] alike) matches an empty field.
        for empty in [json!(null), json!(""), json!([])] {
            assert!(cond("PHONE", empty.clone()), "{empty}");
            assert!(!cond("TITLE", empty.clone()), "{empty}");
        }
        assert!(cond("EMAIL", json!("a@b.c")));
    }

    #[test]
    fn unknown_fields_and_directions_are_refused() {
        let known = Fields {
            rename: &|f| f.to_ascii_uppercase(),
            filter: &|f| f == "ID" || f == "TITLE",
            order: &|f| f == "ID",
            strict_direction: true,
        };
        let q = |f: Value, o: Value| query_from(Some(&f), Some(&o), None, None, &known);
        assert!(q(
            json!({">=id": 1, "%title": "x", "::SUBFILTER-PARAMS": {}}),
            json!({"id": "desc"})
        )
        .is_ok());
        assert_eq!(
            q(json!({"!%NOPE": 1}), json!({})).unwrap_err(),
            QueryError::Filter("NOPE".into())
        );
        assert_eq!(
            q(json!({}), json!({"TITLE": "ASC"})).unwrap_err(),
            QueryError::Order("TITLE".into())
        );
        assert_eq!(
            q(json!({}), json!({"ID": "up"})).unwrap_err(),
            QueryError::Direction {
                field: "ID".into(),
                direction: "up".into()
            }
        );
    }
}
