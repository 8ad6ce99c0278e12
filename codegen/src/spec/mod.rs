//! Parsing and validating the spec (`methods.toml` and the files it includes) into the
//! [`Spec`] model. The format is described in `codegen/SPEC.md`.
//!
//! Every problem is reported as a [`SpecError`] that names `FILE:LINE:COL`, the method (or
//! type) and the parameter (or field), and, for an unknown key or type, the closest known one.
//! The TOML is read into a spanned tree (`toml::de::DeTable`) and walked by hand, so that a
//! misspelt key is reported with the entry it belongs to.
//!
//! Here: the errors, the model, reading the files and [`parse_files`]. The three steps live in
//! `read` (TOML tables to raw entries, unknown and missing keys), `merge` (hand entries over
//! generated ones, overrides) and `validate` (raw entries to the model).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::DeValue;

use crate::naming::RustName;

mod merge;
mod read;
mod validate;

use read::{read_all, Ctx};
pub use validate::{default_group, local_name, parse_ty, RESERVED_ACCESSORS, RESERVED_GROUP_NAMES};

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

/// How JSON booleans are written when a method runs inside `batch` (a PHP query string).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolForm {
    /// `1` / `0` (`query_bool = "10"`, the default).
    OneZero,
    /// `Y` / `N` (`query_bool = "yn"`).
    YesNo,
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
    /// The type of one item of a page: the `T` of the `list<T>` at `items` in the result.
    /// `None` when the result (or its `items` field) is free JSON or a map: items are then
    /// `serde_json::Value`s.
    pub item: Option<Ty>,
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
    /// How its booleans are written inside `batch`.
    pub query_bool: BoolForm,
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
// Parsing
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
    merge::merge(&mut cx, &mut raw);
    let spec = validate::validate(&mut cx, &raw);
    if cx.errors.is_empty() {
        Ok(spec)
    } else {
        Err(SpecErrors(cx.errors))
    }
}

impl From<&str> for SpecFile {
    fn from(text: &str) -> Self {
        SpecFile {
            name: "methods.toml".into(),
            text: text.to_owned(),
        }
    }
}
