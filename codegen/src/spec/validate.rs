//! Validating the merged raw entries into the [`Spec`](super::Spec) model: names, types,
//! groups, requirements, list models, collisions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::read::{near_miss, At, Ctx, RawField, RawList, RawSpec, RawType};
use super::{
    Access, Api, BoolForm, EventDef, Field, ListDef, MethodDef, Spec, Ty, TypeDef, TypeKind,
    PRIMITIVES,
};
use crate::naming::{self, RustName};

/// Group module names that would clash with the crate's own modules.
pub const RESERVED_GROUP_NAMES: &[&str] = &[
    "types",
    "events",
    "axum",
    "codes",
    "php",
    "wire",
    "generated",
    "__private",
    "auth",
    "client",
    "error",
    "event_body",
    "install",
    "meta",
    "params",
    "receive",
    "prelude",
];

/// Group accessor names that would clash with `Client`'s own public methods (and `batch`
/// and `call_many`, reserved for it). The client's private helpers live off `Client`, so
/// they need no entry.
pub const RESERVED_ACCESSORS: &[&str] = &[
    "call",
    "call_raw",
    "call_with_meta",
    "call_many",
    "stream",
    "tokens",
    "builder",
    "webhook",
    "oauth",
    "clone",
    "fmt",
    "batch",
];

/// Deepest `list<map<...>>` nesting accepted.
const MAX_TYPE_DEPTH: usize = 8;

/// Names the generated API of a struct or request uses besides its fields' setters
/// (`stream` and `collect_all`: list requests).
const STRUCT_METHODS: &[&str] = &[
    "new",
    "send",
    "send_with_meta",
    "field",
    "extra",
    "retry",
    "timeout",
    "into_future",
    "stream",
    "collect_all",
];

pub(super) fn validate(cx: &mut Ctx<'_>, raw: &RawSpec) -> Spec {
    // Named types first, so that fields and params can refer to them in any order.
    let mut type_names: HashMap<String, (usize, usize)> = HashMap::new();
    for t in &raw.types {
        let name = &t.name.value;
        let valid = naming::pascal(name).is_some_and(|p| &p.text == name);
        if !valid {
            cx.err(
                t.file,
                t.name.offset,
                format!("type `{name}`"),
                "a type name must be PascalCase ASCII letters and digits",
                naming::pascal(name).map(|p| format!("try `{}`", p.text)),
            );
        } else if PRIMITIVES.contains(&name.to_lowercase().as_str()) {
            cx.err(
                t.file,
                t.name.offset,
                format!("type `{name}`"),
                "shadows a built-in type",
                None,
            );
        } else if let Some((f, _)) = type_names.insert(name.clone(), (t.file, t.name.offset)) {
            cx.err(
                t.file,
                t.name.offset,
                format!("type `{name}`"),
                "declared twice",
                Some(format!("also in {}", cx.files[f].name)),
            );
        }
    }
    let known: BTreeSet<String> = type_names.keys().cloned().collect();

    let mut types = Vec::new();
    for t in &raw.types {
        let name = t.name.value.clone();
        let context = format!("type `{name}`");
        let kind = match t.kind.value.as_str() {
            "struct" => {
                if t.values.is_some() {
                    cx.err(
                        t.file,
                        t.kind.offset,
                        context.clone(),
                        "a struct has `field`s, not `values`",
                        None,
                    );
                }
                TypeKind::Struct(fields(cx, &context, "field", &t.fields, &known, false))
            }
            "enum" => {
                if !t.fields.is_empty() {
                    cx.err(
                        t.file,
                        t.kind.offset,
                        context.clone(),
                        "an enum has `values`, not `field`s",
                        None,
                    );
                }
                TypeKind::Enum(enum_values(cx, &context, t))
            }
            other => {
                cx.err(
                    t.file,
                    t.kind.offset,
                    context.clone(),
                    format!("unknown kind `{other}`"),
                    Some("expected `struct` or `enum`".into()),
                );
                continue;
            }
        };
        types.push(TypeDef {
            name,
            doc: t.doc.trim().to_owned(),
            docs: t.docs.clone(),
            kind,
            dynamic: t.dynamic.clone(),
        });
    }
    check_cycles(cx, raw, &types);

    let mut methods = Vec::new();
    let mut type_seen: HashMap<(String, String), String> = HashMap::new();
    let mut fn_seen: HashMap<(String, String), String> = HashMap::new();
    let mut group_modules: BTreeMap<String, String> = BTreeMap::new();
    for m in &raw.methods {
        let Some(name) = &m.name else { continue };
        let wire = name.value.clone();
        let at = name.offset;
        let file = m.file;
        let context = format!("method `{wire}`");
        if !valid_method_name(&wire) {
            cx.err(file, at, context, "bad wire name: expected dot-separated words of ASCII letters, digits and `_`, starting with a letter", None);
            continue;
        }
        let group = match &m.group {
            Some(g) => g.value.clone(),
            None => default_group(&wire).to_owned(),
        };
        let (group_file, group_at) = m.group.as_ref().map_or((file, at), |g| (g.file, g.offset));
        let group_ok = !group.is_empty()
            && group
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && group.starts_with(|c: char| c.is_ascii_lowercase());
        if !group_ok {
            cx.err(
                group_file,
                group_at,
                context.clone(),
                format!("group `{group}` must be lower-case ASCII letters, digits and `_`"),
                Some(if m.group.is_some() {
                    format!(
                        "try `group = \"{}\"`",
                        group
                            .to_ascii_lowercase()
                            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                    )
                } else {
                    "set `group = \"...\"`".into()
                }),
            );
            continue;
        }
        let Some(group_module) = naming::module(&group) else {
            continue;
        };
        if RESERVED_GROUP_NAMES.contains(&group_module.text.as_str())
            || RESERVED_ACCESSORS.contains(&group_module.text.as_str())
        {
            cx.err(group_file, group_at, context.clone(), format!("group name `{group}` is reserved: it would clash with the crate's own `bitrix24::{0}` or `Client::{0}`", group_module.text), Some("set `group = \"...\"`".into()));
            continue;
        }
        match group_modules.get(&group_module.text) {
            Some(g) if g != &group => {
                cx.err(
                    group_file,
                    group_at,
                    context.clone(),
                    format!("group `{group}` collides with group `{g}` after case conversion"),
                    None,
                );
            }
            _ => {
                group_modules.insert(group_module.text.clone(), group.clone());
            }
        }
        let access = match m.access.as_ref().map(|a| a.value.as_str()) {
            Some("read") => Access::Read,
            Some("write") => Access::Write,
            Some("read_with_effects") => Access::ReadWithEffects,
            Some(other) => {
                let (f, a) = m.access.as_ref().map_or((file, at), |a| (a.file, a.offset));
                cx.err(
                    f,
                    a,
                    context.clone(),
                    format!("unknown access `{other}`"),
                    Some("expected `read`, `write` or `read_with_effects`".into()),
                );
                continue;
            }
            None => continue,
        };
        let api = match m.api.as_ref().map(|a| a.value.as_str()) {
            None | Some("v2") => Api::V2,
            Some("v3") => Api::V3,
            Some(other) => {
                let (f, a) = m.api.as_ref().map_or((file, at), |a| (a.file, a.offset));
                cx.err(
                    f,
                    a,
                    context.clone(),
                    format!("unknown api `{other}`"),
                    Some("expected `v2` or `v3`".into()),
                );
                continue;
            }
        };
        let query_bool = match m.query_bool.as_ref().map(|q| q.value.as_str()) {
            None | Some("10") => BoolForm::OneZero,
            Some("yn") => BoolForm::YesNo,
            Some(other) => {
                let (f, a) = m
                    .query_bool
                    .as_ref()
                    .map_or((file, at), |q| (q.file, q.offset));
                cx.err(
                    f,
                    a,
                    context.clone(),
                    format!("unknown query_bool `{other}`"),
                    Some("expected `yn` (booleans as `Y`/`N` inside batch) or `10` (`1`/`0`, the default)".into()),
                );
                continue;
            }
        };
        let Some(result_at) = &m.result else { continue };
        let result = match parse_ty(&result_at.value, &known) {
            Ok(t) => t,
            Err((msg, help)) => {
                cx.err(
                    result_at.file,
                    result_at.offset,
                    format!("{context}, result"),
                    msg,
                    help,
                );
                continue;
            }
        };
        let params = fields(cx, &context, "param", &m.params, &known, true);
        let names: Vec<&str> = params.iter().map(|p| p.wire.as_str()).collect();
        let mut requires = Vec::new();
        if let Some(r) = &m.requires {
            for g in &r.value {
                for n in g {
                    if !names.contains(&n.as_str()) {
                        cx.err(
                            r.file,
                            r.offset,
                            format!("{context}, requires"),
                            format!("`{n}` is not a param of this method"),
                            near_miss(n, names.iter().copied()),
                        );
                    }
                }
                if g.is_empty() {
                    cx.err(
                        r.file,
                        r.offset,
                        format!("{context}, requires"),
                        "an empty group is always satisfied",
                        None,
                    );
                }
            }
            requires = r.value.clone();
        }
        // A paging param whose own entry was refused is reported once, not again here.
        let paging_refused = m.params.iter().any(|p| {
            let n = p.name.value.to_ascii_lowercase();
            (n == "start" || n == "offset") && !params.iter().any(|q| q.wire == p.name.value)
        });
        let list = m.list.as_ref().map(|l| {
            let mut def = list_def(cx, &context, l, &params, paging_refused);
            def.item = list_item(
                cx,
                &context,
                l,
                &def.items,
                (&result, &result_at.value),
                &types,
            );
            def
        });
        if let Some(summary) = &m.summary {
            if summary.contains('\n') {
                cx.err(
                    file,
                    at,
                    context.clone(),
                    "`summary` must be one line",
                    None,
                );
            }
        }

        let type_name = naming::pascal(&wire).expect("validated wire name");
        let local = local_name(&wire, &group);
        let fn_name = match &m.rust_name {
            Some(r) => match naming::snake(&r.value) {
                Some(n) if n.text == r.value && !n.raw => n,
                _ => {
                    cx.err(
                        r.file,
                        r.offset,
                        context.clone(),
                        format!(
                            "`rust_name = \"{}\"` is not a usable snake_case identifier",
                            r.value
                        ),
                        None,
                    );
                    continue;
                }
            },
            None => match naming::snake(local) {
                Some(n) => n,
                None => continue,
            },
        };
        let group_type = format!(
            "{}Methods",
            naming::pascal(&group).map(|p| p.text).unwrap_or_default()
        );
        if type_name.text == group_type || type_name.text == "C" {
            cx.err(file, at, context.clone(), format!("request type `{}` collides with a name the generated code uses (the group type or the client parameter `C`)", type_name.text), None);
        } else if let Some(other) = type_seen.insert(
            (group_module.text.clone(), type_name.text.clone()),
            wire.clone(),
        ) {
            cx.err(
                file,
                at,
                context.clone(),
                format!(
                    "Rust type name `{}` collides with method `{other}` after case conversion",
                    type_name.text
                ),
                None,
            );
        }
        if let Some(other) = fn_seen.insert(
            (group_module.text.clone(), fn_name.text.clone()),
            wire.clone(),
        ) {
            cx.err(
                file,
                at,
                context.clone(),
                format!(
                    "function name `{}` collides with method `{other}` after case conversion",
                    fn_name.text
                ),
                Some("set `rust_name = \"...\"` on one of them".into()),
            );
        }
        methods.push(MethodDef {
            wire,
            group,
            group_module,
            scope: m
                .scope
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            api,
            summary: m.summary.clone().unwrap_or_default().trim().to_owned(),
            docs: m.docs.clone(),
            access,
            deprecated: m.deprecated.clone(),
            batch: m.batch.unwrap_or(true),
            query_bool,
            result,
            result_text: result_at.value.clone(),
            result_doc: m.result_doc.clone().unwrap_or_default().trim().to_owned(),
            params,
            requires,
            list,
            type_name,
            fn_name,
            why: m.why.clone(),
            imported: m.imported,
            file: cx.files[file].name.clone(),
        });
    }

    let mut events: Vec<EventDef> = Vec::new();
    for e in &raw.events {
        let code = &e.name.value;
        let context = format!("event `{code}`");
        if code.is_empty()
            || !code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            cx.err(
                e.file,
                e.name.offset,
                context,
                "an event code is upper-case ASCII letters, digits and `_`",
                None,
            );
            continue;
        }
        if events.iter().any(|x| &x.code == code) {
            cx.err(e.file, e.name.offset, context, "duplicate event", None);
            continue;
        }
        let variant = &e.variant.value;
        let valid =
            naming::pascal(variant).is_some_and(|p| &p.text == variant) && variant != "Unknown";
        if !valid || events.iter().any(|x| &x.variant.text == variant) {
            cx.err(
                e.file,
                e.variant.offset,
                context,
                format!(
                    "variant `{variant}` must be a unique PascalCase name other than `Unknown`"
                ),
                None,
            );
            continue;
        }
        let data = &e.data.value;
        let is_struct = types
            .iter()
            .any(|t| &t.name == data && matches!(t.kind, TypeKind::Struct(_)));
        if !is_struct {
            cx.err(
                e.file,
                e.data.offset,
                format!("{context}, data"),
                format!("`{data}` is not a declared struct type"),
                near_miss(data, known.iter().map(String::as_str)),
            );
            continue;
        }
        events.push(EventDef {
            code: code.clone(),
            variant: RustName {
                text: variant.clone(),
                raw: false,
            },
            summary: e.summary.trim().to_owned(),
            docs: e.docs.clone(),
            data: data.clone(),
        });
    }
    Spec {
        types,
        methods,
        events,
    }
}

/// The default group of a method: its first segment, or `basic` for names without a dot.
pub fn default_group(wire: &str) -> &str {
    match wire.split_once('.') {
        Some((first, _)) => first,
        None => "basic",
    }
}

/// The name of a method inside its group: without the group segment (`crm.deal.add` ->
/// `deal.add`); names without a dot are kept whole.
pub fn local_name<'a>(wire: &'a str, group: &str) -> &'a str {
    match wire.split_once('.') {
        Some((first, rest)) if first.eq_ignore_ascii_case(group) => rest,
        _ => wire,
    }
}

fn list_def(
    cx: &mut Ctx<'_>,
    context: &str,
    l: &At<RawList>,
    params: &[Field],
    paging_refused: bool,
) -> ListDef {
    // The param spelled exactly so, else one spelled so in another letter case.
    let find = |want: &str| -> String {
        params
            .iter()
            .find(|p| p.wire == want)
            .or_else(|| params.iter().find(|p| p.wire.eq_ignore_ascii_case(want)))
            .map(|p| p.wire.clone())
            .unwrap_or_default()
    };
    let r = &l.value;
    let def = ListDef {
        items: r.items.clone().unwrap_or_default(),
        id: r.id.clone().unwrap_or_else(|| "ID".into()),
        answer_id: r
            .answer_id
            .clone()
            .or_else(|| r.id.clone())
            .unwrap_or_else(|| "ID".into()),
        fast_scan: r.fast_scan.unwrap_or(false),
        filter: r.filter.clone().unwrap_or_else(|| find("filter")),
        order: r.order.clone().unwrap_or_else(|| find("order")),
        select: r.select.clone().unwrap_or_else(|| find("select")),
        // Some im.* lists page with OFFSET (and LIMIT) rather than start.
        start: r.start.clone().unwrap_or_else(|| {
            Some(find("start"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| find("offset"))
        }),
        item: None,
    };
    for (key, name) in [
        ("filter", &def.filter),
        ("order", &def.order),
        ("select", &def.select),
        ("start", &def.start),
    ] {
        if !name.is_empty() && !params.iter().any(|p| &p.wire == name) {
            cx.err(
                l.file,
                l.offset,
                format!("{context}, list"),
                format!("`{key} = \"{name}\"` is not a param of this method"),
                None,
            );
        }
    }
    if def.start.is_empty() && !paging_refused {
        cx.err(
            l.file,
            l.offset,
            format!("{context}, list"),
            "a list method needs a `start` (or `OFFSET`) param, or `start = \"...\"` naming its paging param",
            None,
        );
    }
    def
}

/// The item type of a list method's pages: `T` of a `list<T>` result (`items = ""`) or of
/// the `list<T>` field `items` of a struct result. Free JSON (`json`, `object`) and maps
/// (results keyed by id) give `None` (items as JSON values); a result that cannot hold the
/// items where `items` says is an error.
fn list_item(
    cx: &mut Ctx<'_>,
    context: &str,
    l: &At<RawList>,
    items: &str,
    (result, result_text): (&Ty, &str),
    types: &[TypeDef],
) -> Option<Ty> {
    let context = format!("{context}, list");
    let list_fields = |fields: &[Field]| -> String {
        let names: Vec<String> = fields
            .iter()
            .filter(|f| matches!(f.ty, Ty::List(_)))
            .map(|f| format!("`{}`", f.wire))
            .collect();
        if names.is_empty() {
            "it has no list field".to_owned()
        } else {
            format!("its list fields: {}", names.join(", "))
        }
    };
    let named = |n: &str| types.iter().find(|t| t.name == n).map(|t| &t.kind);
    let message = match (items, result) {
        (_, Ty::Json | Ty::Object | Ty::Map(_)) => return None,
        ("", Ty::List(t)) => return Some((**t).clone()),
        (key, Ty::List(_)) => (
            format!("`items = \"{key}\"` names a key of `result`, but the result type is the list `{result_text}`"),
            Some("set `items = \"\"`".into()),
        ),
        ("", Ty::Named(n)) => match named(n) {
            Some(TypeKind::Struct(fields)) => (
                format!("`items = \"\"` says `result` is the page, but the result type `{n}` is a struct"),
                Some(format!("set `items` to the key of the page ({}), or make the result `list<{n}>`", list_fields(fields))),
            ),
            _ => (format!("`items = \"\"` says `result` is the page, but the result type `{n}` is not a list"), None),
        },
        (key, Ty::Named(n)) => match named(n) {
            Some(TypeKind::Struct(fields)) => match fields.iter().find(|f| f.wire == key) {
                Some(Field { ty: Ty::List(t), .. }) => return Some((**t).clone()),
                Some(Field { ty: Ty::Json | Ty::Object, .. }) => return None,
                Some(f) => (
                    format!("field `{key}` of the result type `{n}` is `{}`, not a list", f.ty_text),
                    Some(format!("make it `list<...>`, or set `items` to another key ({})", list_fields(fields))),
                ),
                None => (
                    format!("the result type `{n}` has no field `{key}`"),
                    near_miss(key, fields.iter().map(|f| f.wire.as_str()))
                        .or_else(|| Some(list_fields(fields))),
                ),
            },
            _ => (format!("`items = \"{key}\"`, but the result type `{n}` is not a struct"), None),
        },
        ("", _) => (
            format!("`items = \"\"` says `result` is the page, but the result type is `{result_text}`"),
            Some(SHAPES.into()),
        ),
        (key, _) => (
            format!("`items = \"{key}\"` names a key of `result`, but the result type is `{result_text}`"),
            Some(SHAPES.into()),
        ),
    };
    cx.err(l.file, l.offset, context, message.0, message.1);
    None
}

/// What a list's result may be (for messages).
const SHAPES: &str = "a list's result is `list<T>`, a struct with a `list<T>` field, or free JSON";

/// Reports named structs that contain themselves other than through a list or map.
fn check_cycles(cx: &mut Ctx<'_>, raw: &RawSpec, types: &[TypeDef]) {
    let direct = |t: &TypeDef| -> Vec<String> {
        match &t.kind {
            TypeKind::Struct(fields) => fields
                .iter()
                .filter_map(|f| match &f.ty {
                    Ty::Named(n) => Some(n.clone()),
                    _ => None,
                })
                .collect(),
            TypeKind::Enum(_) => Vec::new(),
        }
    };
    for t in types {
        let mut stack = direct(t);
        let mut seen: Vec<String> = Vec::new();
        while let Some(next) = stack.pop() {
            if next == t.name {
                if let Some(r) = raw.types.iter().find(|r| r.name.value == t.name) {
                    cx.err(r.file, r.name.offset, format!("type `{}`", t.name), "contains itself (directly or through other structs); it would have infinite size", Some("make the recursive field a `list<...>` or `map<...>`".into()));
                }
                break;
            }
            if seen.contains(&next) {
                continue;
            }
            if let Some(n) = types.iter().find(|x| x.name == next) {
                stack.extend(direct(n));
            }
            seen.push(next);
        }
    }
}

fn valid_method_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            part.chars().any(|c| c.is_ascii_alphanumeric())
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
}

fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
}

fn fields(
    cx: &mut Ctx<'_>,
    owner: &str,
    what: &str,
    raw: &[RawField],
    known: &BTreeSet<String>,
    params: bool,
) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut wire_seen: BTreeSet<&str> = BTreeSet::new();
    // Rust member name -> wire name that produced it (setters share the member's name).
    let mut names: HashMap<String, String> = STRUCT_METHODS
        .iter()
        .map(|s| (s.to_string(), String::new()))
        .collect();
    for f in raw {
        let wire = &f.name.value;
        let context = format!("{owner}, {what} `{wire}`");
        let at = f.name.offset;
        let file = f.name.file;
        if !valid_field_name(wire) {
            cx.err(
                file,
                at,
                context,
                "bad wire name: empty or containing whitespace/quotes",
                None,
            );
            continue;
        }
        if !wire_seen.insert(wire) {
            cx.err(file, at, context, format!("duplicate {what}"), None);
            continue;
        }
        if params && wire == "auth" {
            cx.err(
                file,
                at,
                context,
                "`auth` is reserved: the client sends the access token under that name",
                None,
            );
            continue;
        }
        let rust = match &f.rust_name {
            Some(r) => match naming::member(&r.value) {
                Some(n) if n.text == r.value => n,
                chosen => {
                    cx.err(
                        r.file,
                        r.offset,
                        context,
                        format!(
                            "`rust_name = \"{}\"` is not a usable snake_case identifier",
                            r.value
                        ),
                        chosen.map(|n| format!("try `{}`", n.text)),
                    );
                    continue;
                }
            },
            None => match naming::member(wire) {
                Some(n) => n,
                None => {
                    cx.err(
                        file,
                        at,
                        context,
                        "no Rust name can be made from this wire name",
                        Some("set `rust_name`".into()),
                    );
                    continue;
                }
            },
        };
        if let Some(other) = names.insert(rust.text.clone(), wire.clone()) {
            let with = if other.is_empty() {
                "a name the generated API uses".to_owned()
            } else {
                format!("{what} `{other}`")
            };
            cx.err(
                file,
                at,
                context,
                format!(
                    "Rust name `{}` collides with {with} after case conversion",
                    rust.text
                ),
                Some("set `rust_name = \"...\"` on one of them".into()),
            );
            continue;
        }
        let Some(ty_text) = &f.ty else {
            continue;
        };
        let ty = match parse_ty(&ty_text.value, known) {
            Ok(t) => t,
            Err((msg, help)) => {
                cx.err(ty_text.file, ty_text.offset, context, msg, help);
                continue;
            }
        };
        out.push(Field {
            wire: wire.clone(),
            rust,
            ty,
            ty_text: ty_text.value.clone(),
            required: f.required.unwrap_or(false),
            doc: f.doc.clone().unwrap_or_default().trim().to_owned(),
            why: f.why.clone(),
            deprecated: f.deprecated.unwrap_or(false),
        });
    }
    out
}

fn enum_values(cx: &mut Ctx<'_>, context: &str, t: &RawType) -> Vec<(String, RustName)> {
    let Some(values) = &t.values else {
        cx.err(
            t.file,
            t.kind.offset,
            context,
            "an enum needs `values = [...]`",
            None,
        );
        return Vec::new();
    };
    if values.is_empty() {
        cx.err(
            t.file,
            t.kind.offset,
            context,
            "an enum needs at least one value",
            None,
        );
    }
    let mut out: Vec<(String, RustName)> = Vec::new();
    for v in values {
        let wire = &v.value;
        let Some(variant) = naming::variant(wire) else {
            cx.err(
                t.file,
                v.offset,
                context,
                format!("no variant name can be made from value `{wire}`"),
                None,
            );
            continue;
        };
        if let Some((other, _)) = out.iter().find(|(w, n)| w == wire || n == &variant) {
            cx.err(
                t.file,
                v.offset,
                context,
                format!(
                    "value `{wire}` collides with value `{other}` (variant `{}`)",
                    variant.text
                ),
                None,
            );
            continue;
        }
        out.push((wire.clone(), variant));
    }
    out
}

/// Parses a type expression (`list<map<id>>`, `BotProperties`) against the declared names.
///
/// # Errors
/// The message and a hint for an unknown or malformed type.
pub fn parse_ty(text: &str, known: &BTreeSet<String>) -> Result<Ty, (String, Option<String>)> {
    parse_ty_at(text, known, 0)
}

fn parse_ty_at(
    text: &str,
    known: &BTreeSet<String>,
    depth: usize,
) -> Result<Ty, (String, Option<String>)> {
    if depth > MAX_TYPE_DEPTH {
        return Err((
            format!("type nests deeper than {MAX_TYPE_DEPTH} levels"),
            None,
        ));
    }
    let s = text.trim();
    for (prefix, wrap) in [
        ("list<", Ty::List as fn(Box<Ty>) -> Ty),
        ("map<", Ty::Map as fn(Box<Ty>) -> Ty),
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            let inner = rest
                .strip_suffix('>')
                .ok_or_else(|| (format!("unclosed `<` in type `{s}`"), None))?;
            return Ok(wrap(Box::new(parse_ty_at(inner, known, depth + 1)?)));
        }
    }
    let ty = match s {
        "string" => Ty::String,
        "integer" => Ty::Integer,
        "id" => Ty::Id,
        "number" => Ty::Number,
        "boolean" => Ty::Boolean,
        "yn" => Ty::Yn,
        "date" => Ty::Date,
        "datetime" => Ty::DateTime,
        "object" => Ty::Object,
        "json" => Ty::Json,
        "secret" => Ty::Secret,
        named if known.contains(named) => Ty::Named(named.to_owned()),
        unknown => {
            let help = near_miss(unknown, PRIMITIVES.iter().copied().chain(known.iter().map(String::as_str)))
                .unwrap_or_else(|| "expected string, integer, id, number, boolean, yn, date, datetime, object, json, secret, list<T>, map<T> or a declared type".into());
            return Err((format!("unknown type `{unknown}`"), Some(help)));
        }
    };
    Ok(ty)
}
