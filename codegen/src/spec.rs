//! Parsing and validating `methods.toml` into the [`Spec`] model.
//!
//! Every problem is reported as a [`SpecError`] that names `FILE:LINE:COL`, the method (or
//! type) and the parameter (or field), and, for an unknown type, the closest known one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::naming::{self, RustName};

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// One problem found in a spec, located in the spec file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// File name as given to [`crate::generate`] (usually `methods.toml`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What the error is about: ``method `imbot.message.add`, param `DIALOG_ID` ``.
    pub context: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when known (`did you mean ...?`).
    pub help: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        if !self.context.is_empty() {
            write!(f, "{}: ", self.context)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " ({help})")?;
        }
        Ok(())
    }
}

/// All problems found in a spec; `Display` prints one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

/// A type in the spec's type language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `string`: a JSON string (`String`).
    String,
    /// `integer`: a signed integer (`i64`), numbers sent as strings accepted.
    Integer,
    /// `id`: a non-negative id (`u64`), numbers sent as strings accepted.
    Id,
    /// `number`: a float (`f64`).
    Number,
    /// `boolean`: JSON `true`/`false` on the wire (`bool`).
    Boolean,
    /// `yn`: `"Y"`/`"N"` on the wire (`bool`).
    Yn,
    /// `date`: `YYYY-MM-DD` (`chrono::NaiveDate`).
    Date,
    /// `datetime`: ISO 8601 with offset (`chrono::DateTime<FixedOffset>`).
    DateTime,
    /// `object`: a free JSON object (`serde_json::Value`, `[]` read as `{}`).
    Object,
    /// `json`: any JSON value (`serde_json::Value`).
    Json,
    /// `secret`: a token or other secret string (`bitrix24::Secret`, never printed).
    Secret,
    /// `list<T>`.
    List(Box<Ty>),
    /// `map<T>`: object with string keys (`BTreeMap<String, T>`, `[]` read as empty).
    Map(Box<Ty>),
    /// A named type declared with `[[type]]`.
    Named(String),
}

const PRIMITIVES: &[&str] = &[
    "secret", "string", "integer", "id", "number", "boolean", "yn", "date", "datetime", "object",
    "json",
];

/// A struct field or a method parameter.
#[derive(Clone, Debug)]
pub struct Field {
    /// Wire name, verbatim.
    pub wire: String,
    /// The Rust member name.
    pub rust: RustName,
    /// Its type.
    pub ty: Ty,
    /// Requests: a constructor argument. Responses: guaranteed present (not `Option`).
    pub required: bool,
    /// Documentation.
    pub doc: String,
}

/// A named type declared with `[[type]]`.
#[derive(Clone, Debug)]
pub struct TypeDef {
    /// Rust name (PascalCase), as written in the spec.
    pub name: String,
    /// Documentation.
    pub doc: String,
    /// Optional link to the Bitrix24 docs.
    pub docs: Option<String>,
    /// Struct or enum.
    pub kind: TypeKind,
}

/// What a named type is.
#[derive(Clone, Debug)]
pub enum TypeKind {
    /// A struct with fields in order.
    Struct(Vec<Field>),
    /// A string enum: `(wire value, variant name)`.
    Enum(Vec<(String, RustName)>),
}

/// One REST method.
#[derive(Clone, Debug)]
pub struct MethodDef {
    /// Wire name, verbatim (`imbot.v2.Chat.Message.send`).
    pub wire: String,
    /// Scope (and the Cargo feature that will gate it).
    pub scope: String,
    /// Module name of the scope.
    pub scope_module: RustName,
    /// One-line summary.
    pub summary: String,
    /// Link to the official docs page.
    pub docs: Option<String>,
    /// `true` for reads (safe to retry), `false` for writes.
    pub read: bool,
    /// Successor method or deprecation note.
    pub deprecated: Option<String>,
    /// Result type.
    pub result: Ty,
    /// Result documentation.
    pub result_doc: String,
    /// Parameters in wire order.
    pub params: Vec<Field>,
    /// Request type name (`ImbotMessageAdd`).
    pub type_name: RustName,
    /// Function name in the scope group (`message_add`).
    pub fn_name: RustName,
}

/// An incoming event (`ONIMBOTMESSAGEADD`) and the named struct its `data` decodes into.
#[derive(Clone, Debug)]
pub struct EventDef {
    /// The event code, upper case, verbatim.
    pub code: String,
    /// The enum variant name (`OnImbotMessageAdd` from `ONIMBOTMESSAGEADD` via `variant`).
    pub variant: RustName,
    /// One-line summary.
    pub summary: String,
    /// Link to the official docs page.
    pub docs: Option<String>,
    /// The named struct type of `data`.
    pub data: String,
}

/// A validated spec.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Named types in spec order.
    pub types: Vec<TypeDef>,
    /// Methods in spec order.
    pub methods: Vec<MethodDef>,
    /// Events in spec order.
    pub events: Vec<EventDef>,
}

impl Spec {
    /// Scopes in first-seen order with their module names.
    pub fn scopes(&self) -> Vec<(&str, &RustName)> {
        let mut out: Vec<(&str, &RustName)> = Vec::new();
        for m in &self.methods {
            if !out.iter().any(|(s, _)| *s == m.scope) {
                out.push((&m.scope, &m.scope_module));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Raw TOML shape
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(default, rename = "type")]
    types: Vec<RawType>,
    #[serde(default, rename = "method")]
    methods: Vec<RawMethod>,
    #[serde(default, rename = "event")]
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    name: Spanned<String>,
    /// Rust variant name, e.g. `ImbotMessageAdd` (event codes are one run of capitals).
    variant: Spanned<String>,
    #[serde(default)]
    summary: String,
    docs: Option<String>,
    data: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    name: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    doc: String,
    docs: Option<String>,
    #[serde(default, rename = "field")]
    fields: Vec<RawField>,
    values: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: Spanned<String>,
    #[serde(rename = "type")]
    ty: Spanned<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    doc: String,
    rust_name: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMethod {
    name: Spanned<String>,
    scope: Spanned<String>,
    #[serde(default)]
    summary: String,
    docs: Option<String>,
    access: Spanned<String>,
    deprecated: Option<String>,
    result: Spanned<String>,
    #[serde(default)]
    result_doc: String,
    #[serde(default, rename = "param")]
    params: Vec<RawField>,
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<SpecError>,
}

impl Ctx<'_> {
    fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn err(&mut self, offset: usize, context: String, message: String, help: Option<String>) {
        let (line, col) = self.locate(offset);
        self.errors.push(SpecError {
            file: self.file.to_owned(),
            line,
            col,
            context,
            message,
            help,
        });
    }
}

/// Parses and validates spec text. `file` is only used in error messages.
pub fn parse(file: &str, text: &str) -> Result<Spec, SpecErrors> {
    let mut cx = Ctx {
        file,
        text,
        errors: Vec::new(),
    };
    let raw: RawSpec = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            cx.err(offset, String::new(), e.message().trim().to_owned(), None);
            return Err(SpecErrors(cx.errors));
        }
    };

    // Named types first, so that fields and params can refer to them in any order.
    let mut type_names: HashMap<String, usize> = HashMap::new();
    for t in &raw.types {
        let name = t.name.get_ref();
        let valid = naming::pascal(name).is_some_and(|p| &p.text == name);
        if !valid {
            cx.err(
                t.name.span().start,
                format!("type `{name}`"),
                "a type name must be PascalCase ASCII letters and digits".into(),
                naming::pascal(name).map(|p| format!("try `{}`", p.text)),
            );
        } else if PRIMITIVES.contains(&name.to_lowercase().as_str()) {
            cx.err(
                t.name.span().start,
                format!("type `{name}`"),
                "shadows a built-in type".into(),
                None,
            );
        } else if type_names
            .insert(name.clone(), t.name.span().start)
            .is_some()
        {
            cx.err(
                t.name.span().start,
                format!("type `{name}`"),
                "declared twice".into(),
                None,
            );
        }
    }
    let known: Vec<String> = type_names.keys().cloned().collect();

    let mut types = Vec::new();
    for t in &raw.types {
        let name = t.name.get_ref().clone();
        let context = format!("type `{name}`");
        let kind = match t.kind.get_ref().as_str() {
            "struct" => {
                if t.values.is_some() {
                    cx.err(
                        t.kind.span().start,
                        context.clone(),
                        "a struct has `field`s, not `values`".into(),
                        None,
                    );
                }
                TypeKind::Struct(fields(&mut cx, &context, "field", &t.fields, &known))
            }
            "enum" => {
                if !t.fields.is_empty() {
                    cx.err(
                        t.kind.span().start,
                        context.clone(),
                        "an enum has `values`, not `field`s".into(),
                        None,
                    );
                }
                TypeKind::Enum(enum_values(&mut cx, &context, t))
            }
            other => {
                cx.err(
                    t.kind.span().start,
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
        });
    }

    let mut methods = Vec::new();
    let mut wire_seen: HashMap<String, String> = HashMap::new();
    let mut type_seen: HashMap<(String, String), String> = HashMap::new();
    let mut fn_seen: HashMap<(String, String), String> = HashMap::new();
    for m in &raw.methods {
        let wire = m.name.get_ref().clone();
        let context = format!("method `{wire}`");
        let at = m.name.span().start;
        if !valid_method_name(&wire) {
            cx.err(
                at,
                context.clone(),
                "bad wire name: expected dot-separated words of ASCII letters, digits and `_`, starting with a letter".into(),
                None,
            );
            continue;
        }
        if let Some(first) = wire_seen.insert(wire.to_lowercase(), wire.clone()) {
            cx.err(
                at,
                context.clone(),
                format!("duplicate method (already declared as `{first}`; REST method names are case-insensitive)"),
                None,
            );
            continue;
        }
        let scope = m.scope.get_ref().clone();
        let Some(scope_module) = naming::module(&scope).filter(|_| valid_method_name(&scope))
        else {
            cx.err(
                m.scope.span().start,
                context.clone(),
                format!("bad scope `{scope}`"),
                None,
            );
            continue;
        };
        let read = match m.access.get_ref().as_str() {
            "read" => true,
            "write" => false,
            other => {
                cx.err(
                    m.access.span().start,
                    context.clone(),
                    format!("unknown access `{other}`"),
                    Some("expected `read` (safe to retry) or `write`".into()),
                );
                continue;
            }
        };
        let result = match parse_ty(m.result.get_ref(), &known) {
            Ok(t) => t,
            Err((msg, help)) => {
                cx.err(
                    m.result.span().start,
                    format!("{context}, result"),
                    msg,
                    help,
                );
                continue;
            }
        };
        let params = fields(&mut cx, &context, "param", &m.params, &known);

        let type_name = naming::pascal(&wire).expect("validated wire name");
        let prefix = format!("{}.", scope.to_lowercase());
        let local = if wire.to_lowercase().starts_with(&prefix) {
            &wire[prefix.len()..]
        } else {
            &wire[..]
        };
        let fn_name = naming::snake(local).expect("validated wire name");
        let group = format!(
            "{}Methods",
            naming::pascal(&scope).map(|p| p.text).unwrap_or_default()
        );

        let tkey = (scope_module.text.clone(), type_name.text.clone());
        if type_name.text == group || type_name.text == "C" {
            cx.err(
                at,
                context.clone(),
                format!(
                    "request type `{}` collides with a name the generated code uses (the scope group type or the client parameter `C`)",
                    type_name.text
                ),
                None,
            );
        } else if let Some(other) = type_seen.insert(tkey, wire.clone()) {
            cx.err(
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
            (scope_module.text.clone(), fn_name.text.clone()),
            wire.clone(),
        ) {
            cx.err(
                at,
                context.clone(),
                format!(
                    "function name `{}` collides with method `{other}` after case conversion",
                    fn_name.text
                ),
                None,
            );
        }

        methods.push(MethodDef {
            wire,
            scope,
            scope_module,
            summary: m.summary.trim().to_owned(),
            docs: m.docs.clone(),
            read,
            deprecated: m.deprecated.clone(),
            result,
            result_doc: m.result_doc.trim().to_owned(),
            params,
            type_name,
            fn_name,
        });
    }

    // Scopes whose module names collide after case conversion.
    let mut scope_modules: BTreeMap<String, String> = BTreeMap::new();
    for (m, raw_m) in methods.iter().zip(raw.methods.iter()) {
        match scope_modules.get(&m.scope_module.text) {
            Some(s) if s != &m.scope => cx.err(
                raw_m.scope.span().start,
                format!("method `{}`", m.wire),
                format!(
                    "scope `{}` collides with scope `{s}` after case conversion",
                    m.scope
                ),
                None,
            ),
            _ => {
                scope_modules.insert(m.scope_module.text.clone(), m.scope.clone());
            }
        }
    }
    for (module, scope) in &scope_modules {
        if RESERVED_SCOPE_NAMES.contains(&module.as_str()) {
            let at = raw
                .methods
                .iter()
                .find(|m| m.scope.get_ref() == scope)
                .map_or(0, |m| m.scope.span().start);
            cx.err(
                at,
                format!("scope `{scope}`"),
                format!("scope name `{module}` is reserved: it would clash with `Client::{module}` or the crate's own `bitrix24::{module}`"),
                None,
            );
        }
    }
    check_cycles(&mut cx, &raw, &types);

    let mut events: Vec<EventDef> = Vec::new();
    for e in &raw.events {
        let code = e.name.get_ref();
        let context = format!("event `{code}`");
        if code.is_empty()
            || !code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            cx.err(
                e.name.span().start,
                context,
                "an event code is upper-case ASCII letters, digits and `_`".into(),
                None,
            );
            continue;
        }
        if events.iter().any(|x| &x.code == code) {
            cx.err(e.name.span().start, context, "duplicate event".into(), None);
            continue;
        }
        let variant = e.variant.get_ref();
        let valid =
            naming::pascal(variant).is_some_and(|p| &p.text == variant) && variant != "Unknown";
        if !valid || events.iter().any(|x| &x.variant.text == variant) {
            cx.err(
                e.variant.span().start,
                context,
                format!(
                    "variant `{variant}` must be a unique PascalCase name other than `Unknown`"
                ),
                None,
            );
            continue;
        }
        let data = e.data.get_ref();
        let is_struct = types
            .iter()
            .any(|t| &t.name == data && matches!(t.kind, TypeKind::Struct(_)));
        if !is_struct {
            cx.err(
                e.data.span().start,
                format!("{context}, data"),
                format!("`{data}` is not a declared struct type"),
                None,
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

    if cx.errors.is_empty() {
        Ok(Spec {
            types,
            methods,
            events,
        })
    } else {
        Err(SpecErrors(cx.errors))
    }
}

/// Scope module names that would clash with `Client`'s own methods or the crate's modules.
const RESERVED_SCOPE_NAMES: &[&str] = &[
    "types",
    "event",
    "events",
    "call",
    "call_raw",
    "tokens",
    "builder",
    "webhook",
    "oauth",
    "execute",
    "post",
    "refresh",
    "refresh_flight",
    "request_tokens",
    "portal_moved",
    "clone",
    "fmt",
    "client",
    "error",
    "auth",
    "method",
    "wire",
    "codes",
    "php",
    "generated",
    "__private",
];

/// Deepest `list<map<...>>` nesting accepted.
const MAX_TYPE_DEPTH: usize = 8;

/// Reports named structs that contain themselves other than through a list or map (they
/// would have infinite size).
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
        // Depth-first search from `t` along direct (unboxed) struct fields.
        let mut stack = direct(t);
        let mut seen: Vec<String> = Vec::new();
        while let Some(next) = stack.pop() {
            if next == t.name {
                let at = raw
                    .types
                    .iter()
                    .find(|r| r.name.get_ref() == &t.name)
                    .map_or(0, |r| r.name.span().start);
                cx.err(
                    at,
                    format!("type `{}`", t.name),
                    "contains itself (directly or through other structs); it would have infinite size".into(),
                    Some("make the recursive field a `list<...>` or `map<...>`".into()),
                );
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

/// Names a struct's generated API uses besides its fields' own setters.
const STRUCT_METHODS: &[&str] = &["new", "send", "with_client"];

fn fields(
    cx: &mut Ctx<'_>,
    owner: &str,
    what: &str,
    raw: &[RawField],
    known: &[String],
) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut wire_seen: HashMap<&str, ()> = HashMap::new();
    // Rust member name -> wire name that produced it; setter name -> wire name.
    let mut names: HashMap<String, String> = HashMap::new();
    let mut setters: HashMap<String, String> = STRUCT_METHODS
        .iter()
        .map(|s| (s.to_string(), String::new()))
        .collect();
    for f in raw {
        let wire = f.name.get_ref();
        let context = format!("{owner}, {what} `{wire}`");
        let at = f.name.span().start;
        if !valid_field_name(wire) {
            cx.err(
                at,
                context,
                "bad wire name: empty or containing whitespace/quotes".into(),
                None,
            );
            continue;
        }
        if wire_seen.insert(wire, ()).is_some() {
            cx.err(at, context, format!("duplicate {what}"), None);
            continue;
        }
        if what == "param" && wire == "auth" {
            cx.err(
                at,
                context,
                "`auth` is reserved: the client sends the access token under that name".into(),
                None,
            );
            continue;
        }
        let rust = match &f.rust_name {
            Some(r) => {
                let chosen = naming::member(r.get_ref());
                match chosen {
                    Some(n) if n.text == *r.get_ref() => n,
                    _ => {
                        cx.err(
                            r.span().start,
                            context,
                            format!(
                                "`rust_name = \"{}\"` is not a usable snake_case identifier",
                                r.get_ref()
                            ),
                            chosen.map(|n| format!("try `{}`", n.text)),
                        );
                        continue;
                    }
                }
            }
            None => match naming::member(wire) {
                Some(n) => n,
                None => {
                    cx.err(
                        at,
                        context,
                        "no Rust name can be made from this wire name".into(),
                        Some("set `rust_name`".into()),
                    );
                    continue;
                }
            },
        };
        if let Some(other) = names.insert(rust.text.clone(), wire.clone()) {
            cx.err(
                at,
                context,
                format!(
                    "Rust name `{}` collides with {what} `{other}` after case conversion",
                    rust.text
                ),
                Some("set `rust_name = \"...\"` on one of them".into()),
            );
            continue;
        }
        let ty = match parse_ty(f.ty.get_ref(), known) {
            Ok(t) => t,
            Err((msg, help)) => {
                cx.err(f.ty.span().start, context, msg, help);
                continue;
            }
        };
        if !f.required {
            for setter in [rust.text.clone(), naming::setter(&rust)] {
                if let Some(other) = setters.insert(setter.clone(), wire.clone()) {
                    let with = if other.is_empty() {
                        "a generated method".to_owned()
                    } else {
                        format!("{what} `{other}`")
                    };
                    cx.err(
                        at,
                        context.clone(),
                        format!("setter `{setter}` collides with {with}"),
                        Some("set `rust_name = \"...\"`".into()),
                    );
                }
            }
        }
        out.push(Field {
            wire: wire.clone(),
            rust,
            ty,
            required: f.required,
            doc: f.doc.trim().to_owned(),
        });
    }
    out
}

fn enum_values(cx: &mut Ctx<'_>, context: &str, t: &RawType) -> Vec<(String, RustName)> {
    let Some(values) = &t.values else {
        cx.err(
            t.kind.span().start,
            context.to_owned(),
            "an enum needs `values = [...]`".into(),
            None,
        );
        return Vec::new();
    };
    if values.is_empty() {
        cx.err(
            t.kind.span().start,
            context.to_owned(),
            "an enum needs at least one value".into(),
            None,
        );
    }
    let mut out: Vec<(String, RustName)> = Vec::new();
    for v in values {
        let wire = v.get_ref();
        let Some(variant) = naming::variant(wire) else {
            cx.err(
                v.span().start,
                context.to_owned(),
                format!("no variant name can be made from value `{wire}`"),
                None,
            );
            continue;
        };
        if let Some((other, _)) = out.iter().find(|(w, n)| w == wire || n == &variant) {
            cx.err(
                v.span().start,
                context.to_owned(),
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

/// Parses a type expression (`list<map<id>>`, `BotProperties`).
fn parse_ty(text: &str, known: &[String]) -> Result<Ty, (String, Option<String>)> {
    parse_ty_at(text, known, 0)
}

fn parse_ty_at(text: &str, known: &[String], depth: usize) -> Result<Ty, (String, Option<String>)> {
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
        named if known.iter().any(|k| k == named) => Ty::Named(named.to_owned()),
        unknown => {
            let candidates = PRIMITIVES
                .iter()
                .map(|s| s.to_string())
                .chain(known.iter().cloned());
            let best = candidates
                .map(|c| {
                    (
                        strsim::normalized_damerau_levenshtein(
                            &unknown.to_lowercase(),
                            &c.to_lowercase(),
                        ),
                        c,
                    )
                })
                .filter(|(score, _)| *score >= 0.5)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let help = match best {
                Some((_, c)) => format!("did you mean `{c}`?"),
                None => "expected string, integer, id, number, boolean, yn, date, datetime, object, json, list<T>, map<T> or a declared type".into(),
            };
            return Err((format!("unknown type `{unknown}`"), Some(help)));
        }
    };
    Ok(ty)
}
