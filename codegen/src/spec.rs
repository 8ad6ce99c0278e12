//! Parsing and validating the spec (`methods.toml` and the files it includes) into the
//! [`Spec`] model. The format is described in `codegen/SPEC.md`.
//!
//! Every problem is reported as a [`SpecError`] that names `FILE:LINE:COL`, the method (or
//! type) and the parameter (or field), and, for an unknown key or type, the closest known one.
//! The TOML is read into a spanned tree (`toml::de::DeTable`) and walked by hand, so that a
//! misspelt key is reported with the entry it belongs to.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::naming::{self, RustName};

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// One problem found in a spec, located in the spec file it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// File name as given (`methods.toml`, `methods/crm.toml`).
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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// `object`: a free JSON object (`[]` read as `{}`).
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

impl Ty {
    /// The kind of JSON value this type is on the wire: `string`, `number`, `boolean`,
    /// `object`, `array` or `any`. A `yn` flag is a string; an enum is a string.
    pub fn wire_kind(&self, spec_types: &[TypeDef]) -> &'static str {
        match self {
            Ty::String | Ty::Yn | Ty::Date | Ty::DateTime | Ty::Secret => "string",
            Ty::Integer | Ty::Id | Ty::Number => "number",
            Ty::Boolean => "boolean",
            Ty::Object | Ty::Map(_) => "object",
            Ty::List(_) => "array",
            Ty::Json => "any",
            Ty::Named(n) => match spec_types.iter().find(|t| &t.name == n).map(|t| &t.kind) {
                Some(TypeKind::Enum(_)) => "string",
                _ => "object",
            },
        }
    }

    /// The named types this type mentions.
    pub fn named(&self, out: &mut Vec<String>) {
        match self {
            Ty::List(t) | Ty::Map(t) => t.named(out),
            Ty::Named(n) => out.push(n.clone()),
            _ => {}
        }
    }
}

/// The primitive type names.
pub const PRIMITIVES: &[&str] = &[
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
    /// The type as written in the spec (`list<id>`).
    pub ty_text: String,
    /// Requests: a constructor argument. Responses: guaranteed present (not `Option`).
    pub required: bool,
    /// Documentation.
    pub doc: String,
    /// Why this differs from the catalog, when it does.
    pub why: Option<String>,
    /// The docs mark it deprecated.
    pub deprecated: bool,
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
    /// Documented dynamic keys (custom fields such as `UF_CRM_...`).
    pub dynamic: Vec<String>,
}

/// What a named type is.
#[derive(Clone, Debug)]
pub enum TypeKind {
    /// A struct with fields in order.
    Struct(Vec<Field>),
    /// A string enum: `(wire value, variant name)`.
    Enum(Vec<(String, RustName)>),
}

/// Whether a method changes the portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Safe to send twice.
    Read,
    /// Changes data.
    Write,
    /// Reads, but changes state while doing so.
    ReadWithEffects,
}

/// The REST generation of a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// Classic `/rest/`.
    V2,
    /// REST 3.0 `/rest/api/`.
    V3,
}

/// How a list method pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListDef {
    /// Key of the items in `result`; `""` for a bare array.
    pub items: String,
    /// Id field in requests.
    pub id: String,
    /// Id field in answers.
    pub answer_id: String,
    /// `start = -1` scans work.
    pub fast_scan: bool,
    /// Wire name of the filter param.
    pub filter: String,
    /// Wire name of the order param.
    pub order: String,
    /// Wire name of the select param (`""` if none).
    pub select: String,
    /// Wire name of the start param.
    pub start: String,
}

/// One REST method.
#[derive(Clone, Debug)]
pub struct MethodDef {
    /// Wire name, verbatim (`imbot.v2.Chat.Message.send`).
    pub wire: String,
    /// The group (and Cargo feature): the first segment of the name unless set.
    pub group: String,
    /// Module name of the group.
    pub group_module: RustName,
    /// The OAuth scope the docs name.
    pub scope: String,
    /// Classic or REST 3.0.
    pub api: Api,
    /// One-line summary.
    pub summary: String,
    /// Link to the official docs page.
    pub docs: Option<String>,
    /// Read, write or read with effects.
    pub access: Access,
    /// Successor method or deprecation note.
    pub deprecated: Option<String>,
    /// May run inside `batch`.
    pub batch: bool,
    /// Result type.
    pub result: Ty,
    /// The result type as written.
    pub result_text: String,
    /// Result documentation.
    pub result_doc: String,
    /// Parameters in wire order.
    pub params: Vec<Field>,
    /// Conditional requirements: at least one of these groups must be fully set.
    pub requires: Vec<Vec<String>>,
    /// For list methods.
    pub list: Option<ListDef>,
    /// Request type name (`ImbotMessageAdd`).
    pub type_name: RustName,
    /// Function name in the group (`message_add`).
    pub fn_name: RustName,
    /// Why this entry differs from the catalog (hand entries, overrides).
    pub why: Option<String>,
    /// Whether the entry comes from a generated (imported) file.
    pub imported: bool,
    /// The file it was read from.
    pub file: String,
}

/// An incoming event (`ONIMBOTMESSAGEADD`) and the named struct its `data` decodes into.
#[derive(Clone, Debug)]
pub struct EventDef {
    /// The event code, upper case, verbatim.
    pub code: String,
    /// The enum variant name.
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
    /// Methods in spec order (hand entries first, then generated files).
    pub methods: Vec<MethodDef>,
    /// Events in spec order.
    pub events: Vec<EventDef>,
}

impl Spec {
    /// Groups in first-seen order with their module names.
    pub fn groups(&self) -> Vec<(&str, &RustName)> {
        let mut out: Vec<(&str, &RustName)> = Vec::new();
        for m in &self.methods {
            if !out.iter().any(|(s, _)| *s == m.group) {
                out.push((&m.group, &m.group_module));
            }
        }
        out
    }

    /// A named type by name.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name == name)
    }
}

/// One spec file: its name (for messages and `include` paths) and its text.
#[derive(Clone, Debug)]
pub struct SpecFile {
    /// The name errors print (`methods.toml`, `methods/crm.toml`).
    pub name: String,
    /// The TOML text.
    pub text: String,
}

/// The first line of files the importer writes.
pub const GENERATED_MARK: &str = "# @generated";

// ---------------------------------------------------------------------------------------
// Reading files
// ---------------------------------------------------------------------------------------

/// Reads the root spec file at `path` and every file its `include` names (relative to it).
/// The returned files start with the root; their names are the paths as written (the root
/// as given, includes joined to the root's directory).
///
/// # Errors
/// A file that cannot be read, or a malformed `include`, located in the root file.
pub fn read_files(path: &Path) -> Result<Vec<SpecFile>, SpecErrors> {
    let root_name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: root_name.clone(),
            line: 1,
            col: 1,
            context: String::new(),
            message: format!("cannot read the spec: {e}"),
            help: None,
        }])
    })?;
    let root = SpecFile {
        name: root_name,
        text,
    };
    let includes = includes_of(&root)?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut files = vec![root];
    let mut errors = Vec::new();
    for (inc, span) in includes {
        let p: PathBuf = dir.join(&inc);
        match std::fs::read_to_string(&p) {
            Ok(text) => files.push(SpecFile {
                name: p.display().to_string(),
                text,
            }),
            Err(e) => {
                let (line, col) = locate(&files[0].text, span.start);
                errors.push(SpecError {
                    file: files[0].name.clone(),
                    line,
                    col,
                    context: "include".into(),
                    message: format!("cannot read `{inc}`: {e}"),
                    help: None,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(SpecErrors(errors))
    }
}

/// The `include` list of a root file, with spans.
fn includes_of(root: &SpecFile) -> Result<Vec<(String, Range<usize>)>, SpecErrors> {
    let mut cx = Ctx::new(std::slice::from_ref(root));
    let Some(doc) = cx.parse(0) else {
        return Err(SpecErrors(cx.errors));
    };
    let mut out = Vec::new();
    if let Some(v) = doc.get_ref().get("include") {
        match v.get_ref() {
            DeValue::Array(items) => {
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), item.span())),
                        _ => cx.err(
                            0,
                            item.span().start,
                            "include",
                            "expected a file path string",
                            None,
                        ),
                    }
                }
            }
            _ => cx.err(
                0,
                v.span().start,
                "include",
                "expected an array of file paths",
                None,
            ),
        }
    }
    if cx.errors.is_empty() {
        Ok(out)
    } else {
        Err(SpecErrors(cx.errors))
    }
}

fn locate(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

// ---------------------------------------------------------------------------------------
// The walker
// ---------------------------------------------------------------------------------------

struct Ctx<'f> {
    files: &'f [SpecFile],
    errors: Vec<SpecError>,
}

impl<'f> Ctx<'f> {
    fn new(files: &'f [SpecFile]) -> Self {
        Ctx {
            files,
            errors: Vec::new(),
        }
    }

    fn err(
        &mut self,
        file: usize,
        offset: usize,
        context: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let f = &self.files[file];
        let (line, col) = locate(&f.text, offset);
        let e = SpecError {
            file: f.name.clone(),
            line,
            col,
            context: context.into(),
            message: message.into(),
            help,
        };
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn parse(&mut self, file: usize) -> Option<Spanned<DeTable<'f>>> {
        match DeTable::parse(&self.files[file].text) {
            Ok(t) => Some(t),
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                let message = e.message().trim().to_owned();
                self.err(file, offset, "", message, None);
                None
            }
        }
    }
}

/// The closest of `candidates` to `word`, if close enough, as a `did you mean` hint.
fn near_miss<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::normalized_damerau_levenshtein(&word.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(score, c)| *score >= 0.5 && *c != word)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// A value read from a table, with where it was: the file (an override's value sits in
/// another file than the method it patches) and the byte offset in it.
#[derive(Clone, Debug)]
struct At<T> {
    value: T,
    file: usize,
    offset: usize,
}

/// One TOML table being read: every key taken is remembered, the rest are reported as
/// unknown by [`Tab::finish`].
struct Tab<'t, 'f> {
    file: usize,
    table: &'t DeTable<'f>,
    offset: usize,
    context: String,
    taken: Vec<&'static str>,
}

impl<'t, 'f> Tab<'t, 'f> {
    fn new(file: usize, table: &'t DeTable<'f>, offset: usize, context: String) -> Self {
        Tab {
            file,
            table,
            offset,
            context,
            taken: Vec::new(),
        }
    }

    fn raw(&mut self, key: &'static str) -> Option<&'t Spanned<DeValue<'f>>> {
        self.taken.push(key);
        self.table.get(key)
    }

    fn string(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<At<String>> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(At {
                value: s.to_string(),
                file: self.file,
                offset: v.span().start,
            }),
            _ => {
                cx.err(
                    self.file,
                    v.span().start,
                    self.context.clone(),
                    format!("`{key}` must be a string"),
                    None,
                );
                None
            }
        }
    }

    fn req_string(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<At<String>> {
        let v = self.string(cx, key);
        // A misspelt key (`resutl`) is reported once, as unknown with its near miss.
        let misspelt = self.table.iter().any(|(k, _)| {
            let k: &str = k.get_ref();
            k != key && strsim::normalized_damerau_levenshtein(&k.to_lowercase(), key) >= 0.6
        });
        if v.is_none() && !self.table.contains_key(key) && !misspelt {
            cx.err(
                self.file,
                self.offset,
                self.context.clone(),
                format!("missing key `{key}`"),
                None,
            );
        }
        v
    }

    fn bool(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<bool> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                cx.err(
                    self.file,
                    v.span().start,
                    self.context.clone(),
                    format!("`{key}` must be `true` or `false`"),
                    None,
                );
                None
            }
        }
    }

    fn strings(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<Vec<At<String>>> {
        let v = self.raw(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            cx.err(
                self.file,
                v.span().start,
                self.context.clone(),
                format!("`{key}` must be an array of strings"),
                None,
            );
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(At {
                    value: s.to_string(),
                    file: self.file,
                    offset: item.span().start,
                }),
                _ => cx.err(
                    self.file,
                    item.span().start,
                    self.context.clone(),
                    format!("`{key}` must be an array of strings"),
                    None,
                ),
            }
        }
        Some(out)
    }

    /// An array of tables (`[[method.param]]` or `param = [{..}, ..]`).
    fn tables(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Vec<(&'t DeTable<'f>, usize)> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            cx.err(
                self.file,
                v.span().start,
                self.context.clone(),
                format!("`{key}` must be an array of tables"),
                None,
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(t) => out.push((t, item.span().start)),
                _ => cx.err(
                    self.file,
                    item.span().start,
                    self.context.clone(),
                    format!("`{key}` must be an array of tables"),
                    None,
                ),
            }
        }
        out
    }

    fn table(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<(&'t DeTable<'f>, usize)> {
        let v = self.raw(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some((t, v.span().start)),
            _ => {
                cx.err(
                    self.file,
                    v.span().start,
                    self.context.clone(),
                    format!("`{key}` must be a table"),
                    None,
                );
                None
            }
        }
    }

    /// Reports every key not taken, with the closest allowed one.
    fn finish(self, cx: &mut Ctx<'_>, allowed: &[&'static str]) {
        for (k, _) in self.table.iter() {
            let name: &str = k.get_ref();
            if !allowed.contains(&name) && !self.taken.contains(&name) {
                let help = near_miss(name, allowed.iter().copied()).or_else(|| {
                    Some(format!(
                        "expected one of {}",
                        allowed
                            .iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                });
                cx.err(
                    self.file,
                    k.span().start,
                    self.context.clone(),
                    format!("unknown key `{name}`"),
                    help,
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Raw entries (read, not yet validated)
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct RawField {
    name: At<String>,
    ty: Option<At<String>>,
    required: Option<bool>,
    doc: Option<String>,
    rust_name: Option<At<String>>,
    why: Option<String>,
    deprecated: Option<bool>,
    /// Overrides only.
    remove: bool,
    add: bool,
}

#[derive(Clone, Debug, Default)]
struct RawMethod {
    file: usize,
    name: Option<At<String>>,
    group: Option<At<String>>,
    scope: Option<At<String>>,
    api: Option<At<String>>,
    summary: Option<String>,
    docs: Option<String>,
    access: Option<At<String>>,
    deprecated: Option<String>,
    batch: Option<bool>,
    result: Option<At<String>>,
    result_doc: Option<String>,
    requires: Option<At<Vec<Vec<String>>>>,
    list: Option<At<RawList>>,
    rust_name: Option<At<String>>,
    why: Option<String>,
    params: Vec<RawField>,
    imported: bool,
}

#[derive(Clone, Debug, Default)]
struct RawList {
    items: Option<String>,
    id: Option<String>,
    answer_id: Option<String>,
    fast_scan: Option<bool>,
    filter: Option<String>,
    order: Option<String>,
    select: Option<String>,
    start: Option<String>,
}

#[derive(Clone, Debug)]
struct RawType {
    file: usize,
    name: At<String>,
    kind: At<String>,
    doc: String,
    docs: Option<String>,
    fields: Vec<RawField>,
    values: Option<Vec<At<String>>>,
    dynamic: Vec<String>,
}

#[derive(Clone, Debug)]
struct RawEvent {
    file: usize,
    name: At<String>,
    variant: At<String>,
    summary: String,
    docs: Option<String>,
    data: At<String>,
}

#[derive(Clone, Debug)]
struct RawOverride {
    method: At<String>,
    patch: RawMethod,
}

const METHOD_KEYS: &[&str] = &[
    "name",
    "group",
    "scope",
    "api",
    "summary",
    "docs",
    "access",
    "deprecated",
    "batch",
    "result",
    "result_doc",
    "requires",
    "list",
    "rust_name",
    "why",
    "param",
];
const PARAM_KEYS: &[&str] = &[
    "name",
    "type",
    "required",
    "doc",
    "rust_name",
    "why",
    "deprecated",
];
const OVERRIDE_PARAM_KEYS: &[&str] = &[
    "name",
    "type",
    "required",
    "doc",
    "rust_name",
    "why",
    "deprecated",
    "remove",
    "add",
];
const LIST_KEYS: &[&str] = &[
    "items",
    "id",
    "answer_id",
    "fast_scan",
    "filter",
    "order",
    "select",
    "start",
];
const TYPE_KEYS: &[&str] = &["name", "kind", "doc", "docs", "field", "values", "dynamic"];
const EVENT_KEYS: &[&str] = &["name", "variant", "summary", "docs", "data"];
const TOP_KEYS: &[&str] = &["include", "type", "method", "event", "override", "import"];

fn context_of(what: &str, name: &Option<At<String>>) -> String {
    match name {
        Some(n) => format!("{what} `{}`", n.value),
        None => what.to_owned(),
    }
}

fn read_field(
    cx: &mut Ctx<'_>,
    file: usize,
    t: &DeTable<'_>,
    offset: usize,
    owner: &str,
    what: &str,
    overriding: bool,
) -> Option<RawField> {
    let mut tab = Tab::new(file, t, offset, owner.to_owned());
    let name = tab.req_string(cx, "name")?;
    tab.context = format!("{owner}, {what} `{}`", name.value);
    let ty = if overriding {
        tab.string(cx, "type")
    } else {
        tab.req_string(cx, "type")
    };
    let f = RawField {
        name,
        ty,
        required: tab.bool(cx, "required"),
        doc: tab.string(cx, "doc").map(|s| s.value),
        rust_name: tab.string(cx, "rust_name"),
        why: tab.string(cx, "why").map(|s| s.value),
        deprecated: tab.bool(cx, "deprecated"),
        remove: overriding && tab.bool(cx, "remove").unwrap_or(false),
        add: overriding && tab.bool(cx, "add").unwrap_or(false),
    };
    tab.finish(
        cx,
        if overriding {
            OVERRIDE_PARAM_KEYS
        } else {
            PARAM_KEYS
        },
    );
    Some(f)
}

fn read_method(
    cx: &mut Ctx<'_>,
    file: usize,
    t: &DeTable<'_>,
    offset: usize,
    overriding: bool,
) -> RawMethod {
    let what = if overriding { "override" } else { "method" };
    let mut tab = Tab::new(file, t, offset, what.to_owned());
    let name = if overriding {
        None
    } else {
        tab.req_string(cx, "name")
    };
    if !overriding {
        tab.context = context_of("method", &name);
    }
    let mut m = RawMethod {
        file,
        name,
        group: tab.string(cx, "group"),
        scope: tab.string(cx, "scope"),
        api: tab.string(cx, "api"),
        summary: tab.string(cx, "summary").map(|s| s.value),
        docs: tab.string(cx, "docs").map(|s| s.value),
        access: if overriding {
            tab.string(cx, "access")
        } else {
            tab.req_string(cx, "access")
        },
        deprecated: tab.string(cx, "deprecated").map(|s| s.value),
        batch: tab.bool(cx, "batch"),
        result: if overriding {
            tab.string(cx, "result")
        } else {
            tab.req_string(cx, "result")
        },
        result_doc: tab.string(cx, "result_doc").map(|s| s.value),
        rust_name: tab.string(cx, "rust_name"),
        why: tab.string(cx, "why").map(|s| s.value),
        ..RawMethod::default()
    };
    if !overriding && m.scope.is_none() {
        tab.req_string(cx, "scope");
    }
    if let Some(v) = tab.raw("requires") {
        let mut groups = Vec::new();
        let mut ok = true;
        match v.get_ref() {
            DeValue::Array(outer) => {
                for g in outer.iter() {
                    match g.get_ref() {
                        DeValue::Array(inner) => {
                            let mut names = Vec::new();
                            for n in inner.iter() {
                                match n.get_ref() {
                                    DeValue::String(s) => names.push(s.to_string()),
                                    _ => ok = false,
                                }
                            }
                            groups.push(names);
                        }
                        _ => ok = false,
                    }
                }
            }
            _ => ok = false,
        }
        if ok {
            m.requires = Some(At {
                value: groups,
                file,
                offset: v.span().start,
            });
        } else {
            cx.err(file, v.span().start, tab.context.clone(), "`requires` must be an array of arrays of param names, e.g. [[\"DIALOG_ID\"], [\"FROM_USER_ID\", \"TO_USER_ID\"]]", None);
        }
    }
    if let Some((lt, loff)) = tab.table(cx, "list") {
        let ctx = format!("{}, list", tab.context);
        let mut l = Tab::new(file, lt, loff, ctx);
        let list = RawList {
            items: l.string(cx, "items").map(|s| s.value),
            id: l.string(cx, "id").map(|s| s.value),
            answer_id: l.string(cx, "answer_id").map(|s| s.value),
            fast_scan: l.bool(cx, "fast_scan"),
            filter: l.string(cx, "filter").map(|s| s.value),
            order: l.string(cx, "order").map(|s| s.value),
            select: l.string(cx, "select").map(|s| s.value),
            start: l.string(cx, "start").map(|s| s.value),
        };
        l.finish(cx, LIST_KEYS);
        m.list = Some(At {
            value: list,
            file,
            offset: loff,
        });
    }
    let owner = tab.context.clone();
    for (pt, poff) in tab.tables(cx, "param") {
        if let Some(f) = read_field(cx, file, pt, poff, &owner, "param", overriding) {
            m.params.push(f);
        }
    }
    if overriding {
        tab.taken.push("method");
        let mut allowed: Vec<&'static str> = METHOD_KEYS
            .iter()
            .copied()
            .filter(|k| *k != "name")
            .collect();
        allowed.push("method");
        tab.finish(cx, &allowed);
    } else {
        tab.finish(cx, METHOD_KEYS);
    }
    m
}

fn read_type(cx: &mut Ctx<'_>, file: usize, t: &DeTable<'_>, offset: usize) -> Option<RawType> {
    let mut tab = Tab::new(file, t, offset, "type".into());
    let name = tab.req_string(cx, "name");
    tab.context = context_of("type", &name);
    let kind = tab.req_string(cx, "kind");
    let doc = tab.string(cx, "doc").map(|s| s.value).unwrap_or_default();
    let docs = tab.string(cx, "docs").map(|s| s.value);
    let values = tab.strings(cx, "values");
    let dynamic = tab
        .strings(cx, "dynamic")
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.value)
        .collect();
    let owner = tab.context.clone();
    let mut fields = Vec::new();
    for (ft, foff) in tab.tables(cx, "field") {
        if let Some(f) = read_field(cx, file, ft, foff, &owner, "field", false) {
            fields.push(f);
        }
    }
    tab.finish(cx, TYPE_KEYS);
    Some(RawType {
        file,
        name: name?,
        kind: kind?,
        doc,
        docs,
        fields,
        values,
        dynamic,
    })
}

fn read_event(cx: &mut Ctx<'_>, file: usize, t: &DeTable<'_>, offset: usize) -> Option<RawEvent> {
    let mut tab = Tab::new(file, t, offset, "event".into());
    let name = tab.req_string(cx, "name");
    tab.context = context_of("event", &name);
    let variant = tab.req_string(cx, "variant");
    let summary = tab
        .string(cx, "summary")
        .map(|s| s.value)
        .unwrap_or_default();
    let docs = tab.string(cx, "docs").map(|s| s.value);
    let data = tab.req_string(cx, "data");
    tab.finish(cx, EVENT_KEYS);
    Some(RawEvent {
        file,
        name: name?,
        variant: variant?,
        summary,
        docs,
        data: data?,
    })
}

#[derive(Default)]
struct RawSpec {
    types: Vec<RawType>,
    methods: Vec<RawMethod>,
    events: Vec<RawEvent>,
    overrides: Vec<RawOverride>,
}

fn read_all(cx: &mut Ctx<'_>) -> RawSpec {
    let mut raw = RawSpec::default();
    for file in 0..cx.files.len() {
        let Some(doc) = cx.parse(file) else {
            continue;
        };
        let imported = cx.files[file].text.starts_with(GENERATED_MARK);
        let mut top = Tab::new(file, doc.get_ref(), 0, String::new());
        if file > 0 && top.table.contains_key("include") {
            let at = top.table.get("include").map_or(0, |v| v.span().start);
            cx.err(
                file,
                at,
                "include",
                "only the root spec file may include other files",
                None,
            );
        }
        top.taken.push("include");
        top.taken.push("import");
        for (t, off) in top.tables(cx, "type") {
            if let Some(t) = read_type(cx, file, t, off) {
                raw.types.push(t);
            }
        }
        for (t, off) in top.tables(cx, "method") {
            let mut m = read_method(cx, file, t, off, false);
            m.imported = imported;
            raw.methods.push(m);
        }
        for (t, off) in top.tables(cx, "event") {
            if let Some(e) = read_event(cx, file, t, off) {
                raw.events.push(e);
            }
        }
        for (t, off) in top.tables(cx, "override") {
            let mut tab = Tab::new(file, t, off, "override".into());
            let method = tab.req_string(cx, "method");
            if let Some(method) = method {
                let mut patch = read_method(cx, file, t, off, true);
                patch.name = None;
                raw.overrides.push(RawOverride { method, patch });
            }
        }
        top.finish(cx, TOP_KEYS);
    }
    raw
}

// ---------------------------------------------------------------------------------------
// Merging hand entries, generated entries and overrides
// ---------------------------------------------------------------------------------------

fn merge(cx: &mut Ctx<'_>, raw: &mut RawSpec) {
    // Hand entries replace generated ones of the same name; two entries of the same kind
    // with one name are an error.
    // REST method names are case-insensitive: `imbot.Message.add` is `imbot.message.add`.
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut keep = vec![true; raw.methods.len()];
    for i in 0..raw.methods.len() {
        let Some(name) = raw.methods[i].name.clone() else {
            keep[i] = false;
            continue;
        };
        let key = name.value.to_ascii_lowercase();
        match by_name.get(&key) {
            None => {
                by_name.insert(key, i);
            }
            Some(&j) => {
                let (a, b) = (raw.methods[j].imported, raw.methods[i].imported);
                if a == b {
                    let first = raw.methods[j]
                        .name
                        .as_ref()
                        .map_or("", |n| n.value.as_str());
                    let help = if raw.methods[j].file == raw.methods[i].file {
                        None
                    } else {
                        Some(format!(
                            "the other is in {}",
                            cx.files[raw.methods[j].file].name
                        ))
                    };
                    cx.err(raw.methods[i].file, name.offset, format!("method `{}`", name.value), format!("duplicate method (already declared as `{first}`; REST method names are case-insensitive)"), help);
                    keep[i] = false;
                } else if a {
                    // The earlier one was generated: the hand entry wins.
                    keep[j] = false;
                    by_name.insert(key, i);
                } else {
                    keep[i] = false;
                }
            }
        }
    }
    let mut methods: Vec<RawMethod> = Vec::new();
    for (m, k) in raw.methods.drain(..).zip(keep) {
        if k {
            methods.push(m);
        }
    }
    // Hand entries first, in file order, then generated ones.
    methods.sort_by_key(|m| m.imported);
    raw.methods = methods;

    for o in std::mem::take(&mut raw.overrides) {
        let file = o.patch.file;
        let Some(m) = raw
            .methods
            .iter_mut()
            .find(|m| m.name.as_ref().is_some_and(|n| n.value == o.method.value))
        else {
            let names = raw
                .methods
                .iter()
                .filter_map(|m| m.name.as_ref().map(|n| n.value.as_str()))
                .collect::<Vec<_>>();
            let help = near_miss(&o.method.value, names.iter().copied());
            cx.err(
                file,
                o.method.offset,
                format!("override of `{}`", o.method.value),
                "no such method (a stale override?)",
                help,
            );
            continue;
        };
        let p = o.patch;
        macro_rules! patch {
            ($($f:ident),*) => {$( if p.$f.is_some() { m.$f = p.$f.clone(); } )*};
        }
        patch!(
            group, scope, api, summary, docs, access, deprecated, batch, result, result_doc,
            requires, list, rust_name
        );
        if let Some(why) = &p.why {
            m.why = Some(why.clone());
        }
        for pf in p.params {
            let ctx = format!(
                "override of `{}`, param `{}`",
                o.method.value, pf.name.value
            );
            let pos = m.params.iter().position(|x| x.name.value == pf.name.value);
            match (pos, pf.add, pf.remove) {
                (Some(i), _, true) => {
                    m.params.remove(i);
                }
                (Some(i), false, false) => {
                    let target = &mut m.params[i];
                    if pf.ty.is_some() {
                        target.ty = pf.ty.clone();
                    }
                    if pf.required.is_some() {
                        target.required = pf.required;
                    }
                    if pf.doc.is_some() {
                        target.doc = pf.doc.clone();
                    }
                    if pf.rust_name.is_some() {
                        target.rust_name = pf.rust_name.clone();
                    }
                    if pf.deprecated.is_some() {
                        target.deprecated = pf.deprecated;
                    }
                    target.why = pf.why.clone().or_else(|| p.why.clone());
                }
                (Some(_), true, false) => cx.err(
                    file,
                    pf.name.offset,
                    ctx,
                    "`add = true` but the method already has this param",
                    None,
                ),
                (None, true, false) => {
                    if pf.ty.is_none() {
                        cx.err(
                            file,
                            pf.name.offset,
                            ctx,
                            "an added param needs a `type`",
                            None,
                        );
                        continue;
                    }
                    let mut added = pf.clone();
                    added.why = pf.why.clone().or_else(|| p.why.clone());
                    m.params.push(added);
                }
                (None, _, _) => {
                    let help = near_miss(
                        &pf.name.value,
                        m.params.iter().map(|x| x.name.value.as_str()),
                    );
                    cx.err(
                        file,
                        pf.name.offset,
                        ctx,
                        "no such param (a stale override? set `add = true` to add one)",
                        help,
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// Parses and validates one spec file (no `include`).
///
/// # Errors
/// Every problem found, located.
pub fn parse(file: &str, text: &str) -> Result<Spec, SpecErrors> {
    parse_files(&[SpecFile {
        name: file.to_owned(),
        text: text.to_owned(),
    }])
}

/// Parses and validates a spec made of several files (the root first; its `include`s are
/// expected among the others, see [`read_files`]).
///
/// # Errors
/// Every problem found, located in the file it comes from. Never panics on any input.
pub fn parse_files(files: &[SpecFile]) -> Result<Spec, SpecErrors> {
    let mut cx = Ctx::new(files);
    let mut raw = read_all(&mut cx);
    merge(&mut cx, &mut raw);
    let spec = validate(&mut cx, &raw);
    if cx.errors.is_empty() {
        Ok(spec)
    } else {
        Err(SpecErrors(cx.errors))
    }
}

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

/// Group accessor names that would clash with `Client`'s own methods.
pub const RESERVED_ACCESSORS: &[&str] = &[
    "call",
    "call_raw",
    "tokens",
    "builder",
    "webhook",
    "oauth",
    "clone",
    "fmt",
    "batch",
    "execute",
    "post",
    "refresh",
    "refresh_flight",
    "request_tokens",
    "portal_moved",
    "start",
];

/// Deepest `list<map<...>>` nesting accepted.
const MAX_TYPE_DEPTH: usize = 8;

/// Names the generated API of a struct or request uses besides its fields' setters.
const STRUCT_METHODS: &[&str] = &["new", "send", "field", "param", "into_future"];

fn validate(cx: &mut Ctx<'_>, raw: &RawSpec) -> Spec {
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
        let list = m
            .list
            .as_ref()
            .map(|l| list_def(cx, &context, l, &params, paging_refused));
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

impl From<&str> for SpecFile {
    fn from(text: &str) -> Self {
        SpecFile {
            name: "methods.toml".into(),
            text: text.to_owned(),
        }
    }
}
