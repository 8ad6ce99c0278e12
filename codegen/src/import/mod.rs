//! `bitrix24-codegen import`: turns the method catalog (`codegen/catalog/methods.json`) and
//! its docs texts (`codegen/catalog/docs.json`) into generated spec group files
//! (`methods/<group>.toml`), following the settings in `methods/import.toml`.
//!
//! - Every classic (`api_version = "v2"`) catalog method lands in the group file of its group
//!   (the first name segment; `basic` for names without a dot), unless a hand file (the root
//!   `methods.toml` or a hand file it includes) defines it: then it is skipped and every
//!   difference between the hand entry and what would have been imported is reported.
//! - Output is deterministic (methods sorted by name, types after their method) and
//!   re-importing the same inputs gives the same bytes.
//! - Files with the generated header are rewritten; hand files are never touched.
//! - `IMPORT_REPORT.md` lists what could not be typed and why, collisions, and hand/override
//!   differences.
//!
//! [`expected`] gives the params the importer maps from one catalog entry, for tests that hold
//! the final spec against the catalog.

pub mod catalog;
pub mod hand;
pub mod map;
mod report;
pub mod settings;
pub mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub use catalog::{Docs, DocsText, Entry, Param};
pub use hand::{HandSpec, GENERATED_MARK};
pub use map::{Context, ListModel, Loss, Notes, OutField, OutMethod, OutType, Registry};
pub use settings::Settings;

use crate::naming;

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why an import failed; every variant names the file (and method) concerned.
#[derive(Debug)]
pub enum ImportError {
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// An input file is malformed.
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing would overwrite a hand-written file.
    HandFile {
        /// The file.
        path: PathBuf,
    },
    /// `--check`: these files are not what an import would write.
    Stale {
        /// The files.
        paths: Vec<PathBuf>,
    },
}

impl ImportError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, error: std::io::Error) -> Self {
        ImportError::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    /// A malformed input file.
    pub fn spec(path: &Path, message: &str) -> Self {
        ImportError::Parse {
            path: path.to_path_buf(),
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            ImportError::Parse { path, message } => write!(f, "{}: {message}", path.display()),
            ImportError::HandFile { path } => write!(
                f,
                "{}: exists without the `{GENERATED_MARK}` header; the importer never overwrites hand files (move it or remove it)",
                path.display()
            ),
            ImportError::Stale { paths } => {
                f.write_str("out of date (run `cargo run -p bitrix24-codegen --features import -- import`):")?;
                for p in paths {
                    write!(f, " {}", p.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ImportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ImportError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

/// Reads `methods.json`.
///
/// # Errors
/// Unreadable file or malformed JSON.
pub fn load_catalog(path: &Path) -> Result<Vec<Entry>, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::io(path, e))?;
    parse_catalog(path, &text)
}

/// Parses catalog JSON text (`path` is only used in errors).
///
/// # Errors
/// Malformed JSON or a value of the wrong shape.
pub fn parse_catalog(path: &Path, text: &str) -> Result<Vec<Entry>, ImportError> {
    serde_json::from_str(text).map_err(|e| ImportError::spec(path, &e.to_string()))
}

/// Reads `docs.json`.
///
/// # Errors
/// Unreadable file or malformed JSON.
pub fn load_docs(path: &Path) -> Result<Docs, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::io(path, e))?;
    parse_docs(path, &text)
}

/// Parses docs JSON text (`path` is only used in errors).
///
/// # Errors
/// Malformed JSON or a value of the wrong shape.
pub fn parse_docs(path: &Path, text: &str) -> Result<Docs, ImportError> {
    serde_json::from_str(text).map_err(|e| ImportError::spec(path, &e.to_string()))
}

/// Reads `methods/import.toml`.
///
/// # Errors
/// Unreadable file, malformed TOML or an unknown key.
pub fn load_settings(path: &Path) -> Result<Settings, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::io(path, e))?;
    parse_settings(path, &text)
}

/// Parses settings text (`path` is only used in errors).
///
/// # Errors
/// Malformed TOML or an unknown key.
pub fn parse_settings(path: &Path, text: &str) -> Result<Settings, ImportError> {
    toml::from_str(text).map_err(|e| ImportError::spec(path, e.message().trim()))
}

impl Context {
    /// Loads settings and docs texts from their default places under `repo` (the
    /// repository root): `methods/import.toml`, `codegen/catalog/docs.json`.
    ///
    /// # Errors
    /// See [`load_settings`] and [`load_docs`].
    pub fn load(repo: &Path) -> Result<Context, ImportError> {
        Ok(Context {
            settings: load_settings(&repo.join("methods/import.toml"))?,
            docs: load_docs(&repo.join("codegen/catalog/docs.json"))?,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Expected params (for consistency tests)
// ---------------------------------------------------------------------------------------

/// One param (or nested field, path `fields.TITLE`) as the importer maps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedParam {
    /// Wire path: `ID`, `fields.TITLE`, `fields.PHONE.VALUE`.
    pub path: String,
    /// Spec type. Named types made by the importer are named as in a fresh import of this
    /// method alone; compare them by [`wire_kind`], not by name.
    pub ty: String,
    /// Required flag.
    pub required: bool,
}

/// The params (incl. nested fields of importer-made structs, depth first) the importer maps
/// from one catalog entry: `(path, spec type, required)`.
pub fn expected(entry: &Entry, cx: &Context) -> Vec<ExpectedParam> {
    let mut registry = Registry::default();
    let (m, _) = map::MethodBuilder::new(cx, entry, &mut registry).build();
    let mut out = Vec::new();
    flatten(&m.params, "", &m.types, &mut out, 0);
    out
}

fn named_inner(ty: &str) -> &str {
    let mut t = ty;
    loop {
        if let Some(i) = t.strip_prefix("list<").and_then(|r| r.strip_suffix('>')) {
            t = i;
        } else if let Some(i) = t.strip_prefix("map<").and_then(|r| r.strip_suffix('>')) {
            t = i;
        } else {
            return t;
        }
    }
}

fn flatten(
    fields: &[OutField],
    prefix: &str,
    types: &[OutType],
    out: &mut Vec<ExpectedParam>,
    depth: usize,
) {
    for f in fields {
        let path = if prefix.is_empty() {
            f.name.clone()
        } else {
            format!("{prefix}.{}", f.name)
        };
        out.push(ExpectedParam {
            path: path.clone(),
            ty: f.ty.clone(),
            required: f.required,
        });
        let inner = named_inner(&f.ty);
        if depth < 16 {
            if let Some(t) = types.iter().find(|t| t.name == inner) {
                flatten(&t.fields, &path, types, out, depth + 1);
            }
        }
    }
}

/// The wire kind of a spec type: `string`, `number`, `flag`, `object`, `array` or `any`.
/// `enums` are the names of enum types (they travel as strings); other named types are
/// objects.
pub fn wire_kind(ty: &str, enums: &BTreeSet<String>) -> &'static str {
    let t = ty.trim();
    if t.starts_with("list<") {
        return "array";
    }
    if t.starts_with("map<") {
        return "object";
    }
    match t {
        "string" | "yn" | "date" | "datetime" | "secret" => "string",
        "integer" | "id" | "number" => "number",
        "boolean" => "flag",
        "object" => "object",
        "json" | "" => "any",
        named if enums.contains(named) => "string",
        _ => "object",
    }
}

// ---------------------------------------------------------------------------------------
// The import
// ---------------------------------------------------------------------------------------

/// A difference between a hand entry (or an override) and the catalog.
#[derive(Clone, Debug, Default)]
pub struct HandDiff {
    /// Method.
    pub method: String,
    /// The hand file.
    pub file: PathBuf,
    /// The entry's `why`, if any.
    pub why: Option<String>,
    /// One line per difference.
    pub diffs: Vec<String>,
}

/// A group function name shared by several methods.
#[derive(Clone, Debug, Default)]
pub struct Collision {
    /// Group.
    pub group: String,
    /// The Rust name they share.
    pub name: String,
    /// `(method, rust_name given)`; `None` for the one that keeps the default.
    pub methods: Vec<(String, Option<String>)>,
}

/// Everything one import produces.
#[derive(Clone, Debug, Default)]
pub struct Import {
    /// Generated methods, sorted by name.
    pub methods: Vec<OutMethod>,
    /// Group -> file text.
    pub files: BTreeMap<String, String>,
    /// Catalog v2 entries seen.
    pub catalog_v2: usize,
    /// Catalog v2 methods written by hand (skipped), lower-case name -> (hand spelling, file).
    pub hand_covered: BTreeMap<String, (String, PathBuf)>,
    /// Hand methods that are not in the catalog.
    pub hand_extra: Vec<(String, PathBuf)>,
    /// Hand entries that differ from the catalog.
    pub hand_diffs: Vec<HandDiff>,
    /// What each override changes vs the catalog (and stale ones).
    pub override_diffs: Vec<HandDiff>,
    /// Group function names resolved with `rust_name`.
    pub collisions: Vec<Collision>,
    /// Request type names shared by methods (cannot be resolved by the importer).
    pub type_collisions: Vec<(String, Vec<String>)>,
    /// Generated types renamed to stay unique: `(method, wanted, given)`.
    pub type_renames: Vec<(String, String, String)>,
    /// Catalog entries dropped as duplicates (same name, any case): `(kept, dropped doc)`.
    pub duplicates: Vec<(String, String)>,
    /// Mapping notes.
    pub notes: Notes,
    /// Included files of the root that do not exist.
    pub missing_includes: Vec<PathBuf>,
    /// Generated files not listed in the root's `include`.
    pub not_included: Vec<String>,
}

/// Imports `catalog` (all entries; only `v2` ones are used) against the hand spec.
/// `out_dir` is the output directory as the root's `include` paths name it (for the include
/// check), e.g. `methods`.
pub fn import(catalog: &[Entry], cx: &Context, hand: &HandSpec, out_dir: &Path) -> Import {
    let mut out = Import::default();
    let mut entries: Vec<&Entry> = catalog.iter().filter(|e| e.api_version == "v2").collect();
    entries.sort_by(|a, b| a.method.cmp(&b.method).then(a.doc.cmp(&b.doc)));
    out.catalog_v2 = entries.len();

    // One entry per name (REST names are case-insensitive).
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    entries.retain(|e| match seen.get(&e.method.to_lowercase()) {
        Some(kept) => {
            out.duplicates.push((kept.clone(), e.doc.clone()));
            false
        }
        None => {
            seen.insert(e.method.to_lowercase(), e.method.clone());
            true
        }
    });

    // Names taken before any generated type: hand types, announced types, request types.
    let mut registry = Registry::default();
    registry.taken.extend(hand.type_names());
    registry.taken.extend(cx.settings.announced.iter().cloned());
    for name in entries
        .iter()
        .map(|e| e.method.as_str())
        .chain(hand.methods.values().map(|m| m.name.as_str()))
    {
        if let Some(p) = naming::pascal(name) {
            registry.taken.insert(p.text);
        }
    }

    let enums: BTreeSet<String> = hand
        .types
        .values()
        .filter(|t| t.kind == "enum")
        .map(|t| t.name.clone())
        .collect();

    for e in &entries {
        if let Some(h) = hand.methods.get(&e.method.to_lowercase()) {
            out.hand_covered
                .insert(e.method.to_lowercase(), (h.name.clone(), h.file.clone()));
            // What the import would have been, for the comparison only.
            let mut scratch = registry.clone();
            let (m, _) = map::MethodBuilder::new(cx, e, &mut scratch).build();
            let diffs = hand_diff(h, &m, hand, &enums);
            if !diffs.is_empty() {
                out.hand_diffs.push(HandDiff {
                    method: h.name.clone(),
                    file: h.file.clone(),
                    why: h.why.clone(),
                    diffs,
                });
            }
            continue;
        }
        let (m, notes) = map::MethodBuilder::new(cx, e, &mut registry).build();
        out.notes.merge(notes);
        out.methods.push(m);
    }
    out.type_renames = registry.renamed.clone();
    for h in hand.methods.values() {
        if !seen.contains_key(&h.name.to_lowercase()) {
            out.hand_extra.push((h.name.clone(), h.file.clone()));
        }
    }
    out.hand_extra.sort();

    resolve_collisions(&mut out, hand);
    request_type_collisions(&mut out, hand);
    out.override_diffs = override_diffs(&out.methods, hand, &enums);

    // Files.
    let mut groups: BTreeMap<String, Vec<&OutMethod>> = BTreeMap::new();
    for m in &out.methods {
        groups.entry(m.group.clone()).or_default().push(m);
    }
    for (g, ms) in &groups {
        out.files.insert(g.clone(), write::render_group(g, ms));
    }
    let included: BTreeSet<PathBuf> = hand.includes.iter().map(|p| normalize(p)).collect();
    let base = hand
        .files
        .first()
        .and_then(|f| f.parent())
        .unwrap_or(Path::new(""));
    let outputs: BTreeSet<PathBuf> = out
        .files
        .keys()
        .map(|g| normalize(&base.join(out_dir).join(format!("{g}.toml"))))
        .collect();
    for g in out.files.keys() {
        let p = normalize(&base.join(out_dir).join(format!("{g}.toml")));
        if !included.contains(&p) {
            out.not_included
                .push(format!("{}/{g}.toml", out_dir.display()));
        }
    }
    // Included files that do not exist, except the ones this import writes.
    out.missing_includes = hand
        .missing
        .iter()
        .filter(|p| !outputs.contains(&normalize(p)))
        .cloned()
        .collect();
    out
}

/// `a/./b` -> `a/b` (lexical only).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        if c != std::path::Component::CurDir {
            out.push(c);
        }
    }
    out
}

fn resolve_collisions(out: &mut Import, hand: &HandSpec) {
    // (group, fn name) -> [(method, is_hand)]
    let mut by_fn: BTreeMap<(String, String), Vec<(String, bool)>> = BTreeMap::new();
    for h in hand.methods.values() {
        let group = h
            .group
            .clone()
            .unwrap_or_else(|| map::default_group(&h.name));
        let f = h
            .rust_name
            .clone()
            .or_else(|| map::function_name(&h.name, &group));
        if let Some(f) = f {
            by_fn
                .entry((group, f))
                .or_default()
                .push((h.name.clone(), true));
        }
    }
    for m in &out.methods {
        if let Some(f) = map::function_name(&m.name, &m.group) {
            by_fn
                .entry((m.group.clone(), f))
                .or_default()
                .push((m.name.clone(), false));
        }
    }
    let taken: BTreeSet<(String, String)> = by_fn.keys().cloned().collect();
    let mut given: BTreeSet<(String, String)> = BTreeSet::new();
    for ((group, f), mut ms) in by_fn {
        if ms.len() < 2 {
            continue;
        }
        // Hand entries keep their names; then the first generated one by name.
        ms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut c = Collision {
            group: group.clone(),
            name: f.clone(),
            methods: Vec::new(),
        };
        for (i, (name, is_hand)) in ms.iter().enumerate() {
            if i == 0 || *is_hand {
                c.methods.push((name.clone(), None));
                continue;
            }
            let mut n = 2;
            let chosen = loop {
                let cand = format!("{f}_{n}");
                let k = (group.clone(), cand.clone());
                if !taken.contains(&k) && !given.contains(&k) {
                    given.insert(k);
                    break cand;
                }
                n += 1;
            };
            if let Some(m) = out.methods.iter_mut().find(|m| &m.name == name) {
                m.rust_name = Some(chosen.clone());
            }
            c.methods.push((name.clone(), Some(chosen)));
        }
        out.collisions.push(c);
    }
}

fn request_type_collisions(out: &mut Import, hand: &HandSpec) {
    let mut by_type: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in out
        .methods
        .iter()
        .map(|m| m.name.clone())
        .chain(hand.methods.values().map(|m| m.name.clone()))
    {
        if let Some(p) = naming::pascal(&name) {
            by_type.entry(p.text).or_default().insert(name);
        }
    }
    for (t, ms) in by_type {
        if ms.len() > 1 {
            out.type_collisions.push((t, ms.into_iter().collect()));
        }
    }
}

fn hand_diff(
    h: &hand::HandMethod,
    m: &OutMethod,
    hand: &HandSpec,
    enums: &BTreeSet<String>,
) -> Vec<String> {
    let mut diffs = Vec::new();
    compare_fields(
        "param", &h.params, &m.params, &m.types, hand, enums, &mut diffs, 0, "",
    );
    match (&m.list, h.list) {
        (Some(l), false) => diffs.push(format!(
            "the import makes it a list method (items {:?}, id {:?}); the hand entry has no `list`",
            l.items, l.id
        )),
        (None, true) => diffs.push("a list method by hand; the import does not make it one".into()),
        _ => {}
    }
    let hand_yn = h.query_bool.as_deref() == Some("yn");
    if hand_yn != m.query_bool_yn {
        diffs.push(format!(
            "`query_bool`: {} by hand, {} from the import (`[batch] query_bool_yn`)",
            h.query_bool
                .as_deref()
                .map_or("(default)".into(), |q| format!("{q:?}")),
            if m.query_bool_yn {
                "\"yn\""
            } else {
                "the default"
            }
        ));
    }
    diffs
}

#[allow(clippy::too_many_arguments)]
fn compare_fields(
    what: &str,
    hand_fields: &[hand::HandField],
    imported: &[OutField],
    types: &[OutType],
    hand: &HandSpec,
    enums: &BTreeSet<String>,
    diffs: &mut Vec<String>,
    depth: usize,
    prefix: &str,
) {
    let at = |n: &str| {
        if prefix.is_empty() {
            n.to_owned()
        } else {
            format!("{prefix}.{n}")
        }
    };
    for f in imported {
        let Some(hf) = hand_fields.iter().find(|x| x.name == f.name) else {
            match hand_fields
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(&f.name))
            {
                Some(x) => diffs.push(format!(
                    "{what} `{}`: spelled `{}` by hand",
                    at(&f.name),
                    x.name
                )),
                None => diffs.push(format!(
                    "{what} `{}` (`{}`{}) is in the catalog, not in the hand entry",
                    at(&f.name),
                    f.ty,
                    if f.required { ", required" } else { "" }
                )),
            }
            continue;
        };
        let why = hf
            .why
            .as_deref()
            .map(|w| format!(" (why: {w})"))
            .unwrap_or_default();
        let hk = wire_kind(&hf.ty, enums);
        let ik = wire_kind(&f.ty, enums);
        if hk != ik {
            diffs.push(format!(
                "{what} `{}`: type `{}` ({hk}) by hand, `{}` ({ik}) from the catalog{why}",
                at(&f.name),
                hf.ty,
                f.ty
            ));
        }
        if hf.required != f.required {
            diffs.push(format!(
                "{what} `{}`: required = {} by hand, {} in the catalog{why}",
                at(&f.name),
                hf.required,
                f.required
            ));
        }
        // One level into structs on both sides.
        if depth == 0 {
            let hn = named_inner(&hf.ty);
            let inn = named_inner(&f.ty);
            if let (Some(ht), Some(it)) = (hand.types.get(hn), types.iter().find(|t| t.name == inn))
            {
                compare_fields(
                    "field",
                    &ht.fields,
                    &it.fields,
                    types,
                    hand,
                    enums,
                    diffs,
                    depth + 1,
                    &at(&f.name),
                );
            }
        }
    }
    for hf in hand_fields {
        let known = imported
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(&hf.name));
        if !known {
            let why = hf
                .why
                .as_deref()
                .map(|w| format!(" (why: {w})"))
                .unwrap_or_default();
            diffs.push(format!(
                "{what} `{}` (`{}`) is in the hand entry, not in the catalog{why}",
                at(&hf.name),
                hf.ty
            ));
        }
    }
}

fn override_diffs(
    methods: &[OutMethod],
    hand: &HandSpec,
    enums: &BTreeSet<String>,
) -> Vec<HandDiff> {
    let mut out = Vec::new();
    for o in &hand.overrides {
        let mut d = HandDiff {
            method: o.method.clone(),
            file: o.file.clone(),
            why: o.why.clone(),
            diffs: Vec::new(),
        };
        let Some(m) = methods
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(&o.method))
        else {
            if hand.has_method(&o.method) {
                d.diffs.push(
                    "STALE: the method is written by hand; overrides patch generated methods only"
                        .into(),
                );
            } else {
                d.diffs
                    .push("STALE: no such method in the generated files".into());
            }
            out.push(d);
            continue;
        };
        for (k, v) in &o.keys {
            let before = match k.as_str() {
                "result" => format!("{:?}", m.result),
                "access" => format!("{:?}", m.access),
                "batch" => m.batch.to_string(),
                "summary" => format!("{:?}", m.summary),
                "deprecated" => m
                    .deprecated
                    .as_ref()
                    .map_or("(none)".into(), |d| format!("{d:?}")),
                "result_doc" => format!("{:?}", m.result_doc),
                "scope" => format!("{:?}", m.scope),
                "rust_name" => m
                    .rust_name
                    .as_ref()
                    .map_or("(none)".into(), |d| format!("{d:?}")),
                "list" => m.list.as_ref().map_or("(none)".into(), |l| {
                    format!("items {:?}, id {:?}", l.items, l.id)
                }),
                _ => "(not set by the import)".into(),
            };
            if &before == v {
                d.diffs.push(format!(
                    "`{k}`: {v} (what the import gives already: redundant)"
                ));
            } else {
                d.diffs.push(format!("`{k}`: {before} -> {v}"));
            }
        }
        for p in &o.params {
            let why = p
                .why
                .as_deref()
                .map(|w| format!(" (why: {w})"))
                .unwrap_or_default();
            let found = m.params.iter().find(|x| x.name == p.name);
            match (found, p.add, p.remove) {
                (None, true, _) => d.diffs.push(format!(
                    "param `{}` added{}{why}",
                    p.name,
                    p.ty.as_deref()
                        .map(|t| format!(" as `{t}`"))
                        .unwrap_or_default()
                )),
                (None, false, _) => d.diffs.push(format!(
                    "STALE: param `{}` does not exist (set `add = true` to add it)",
                    p.name
                )),
                (Some(_), true, _) => d.diffs.push(format!(
                    "param `{}`: `add = true` but the catalog has it",
                    p.name
                )),
                (Some(_), false, true) => d.diffs.push(format!("param `{}` removed{why}", p.name)),
                (Some(x), false, false) => {
                    if let Some(t) = &p.ty {
                        let kind = if wire_kind(t, enums) == wire_kind(&x.ty, enums) {
                            "same wire kind"
                        } else {
                            "wire kind changes"
                        };
                        d.diffs.push(format!(
                            "param `{}`: type `{}` -> `{t}` ({kind}){why}",
                            p.name, x.ty
                        ));
                    }
                    if let Some(r) = p.required {
                        if r != x.required {
                            d.diffs.push(format!(
                                "param `{}`: required {} -> {r}{why}",
                                p.name, x.required
                            ));
                        }
                    }
                }
            }
        }
        out.push(d);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Running against files
// ---------------------------------------------------------------------------------------

/// Where the importer reads and writes (paths relative to the working directory).
#[derive(Clone, Debug)]
pub struct Options {
    /// `codegen/catalog/methods.json`.
    pub catalog: PathBuf,
    /// `codegen/catalog/docs.json`.
    pub docs: PathBuf,
    /// `methods/import.toml`.
    pub settings: PathBuf,
    /// `methods.toml`.
    pub root: PathBuf,
    /// `methods/`.
    pub out_dir: PathBuf,
    /// `methods/IMPORT_REPORT.md`; `None`: `<out_dir>/IMPORT_REPORT.md`.
    pub report: Option<PathBuf>,
    /// Only compare; fail with [`ImportError::Stale`] when a file would change.
    pub check: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            catalog: "codegen/catalog/methods.json".into(),
            docs: "codegen/catalog/docs.json".into(),
            settings: "methods/import.toml".into(),
            root: "methods.toml".into(),
            out_dir: "methods".into(),
            report: None,
            check: false,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Files written (changed).
    pub written: Vec<PathBuf>,
    /// Files already up to date.
    pub unchanged: Vec<PathBuf>,
    /// Stale generated files removed (groups that no longer exist).
    pub removed: Vec<PathBuf>,
    /// The import itself.
    pub import: Import,
}

/// Reads the inputs, imports, writes group files and the report.
///
/// # Errors
/// Unreadable or malformed inputs, a hand file where a group file would go, I/O errors,
/// or (with `check`) files that are out of date.
pub fn run(opts: &Options) -> Result<Outcome, ImportError> {
    let catalog = load_catalog(&opts.catalog)?;
    let cx = Context {
        settings: load_settings(&opts.settings)?,
        docs: load_docs(&opts.docs)?,
    };
    let hand = HandSpec::load(&opts.root)?;
    let out_rel = relative_to_root(&opts.root, &opts.out_dir);
    let imp = import(&catalog, &cx, &hand, &out_rel);
    let report_text = report::render(&imp, opts, &cx);

    let mut outcome = Outcome::default();
    let mut planned: Vec<(PathBuf, String)> = imp
        .files
        .iter()
        .map(|(g, text)| (opts.out_dir.join(format!("{g}.toml")), text.clone()))
        .collect();
    let report_path = opts
        .report
        .clone()
        .unwrap_or_else(|| opts.out_dir.join("IMPORT_REPORT.md"));
    planned.push((report_path.clone(), report_text));

    // Never overwrite a hand file.
    for (path, _) in &planned {
        if path == &report_path {
            continue;
        }
        match std::fs::read_to_string(path) {
            Ok(old) if !hand::is_generated(&old) => {
                return Err(ImportError::HandFile { path: path.clone() })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImportError::io(path, e)),
        }
    }
    // Generated files of groups that no longer exist.
    let mut stale_generated = Vec::new();
    if let Ok(dir) = std::fs::read_dir(&opts.out_dir) {
        let mut paths: Vec<PathBuf> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            if planned.iter().any(|(q, _)| q == &p) {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&p) {
                if hand::is_generated(&text) {
                    stale_generated.push(p);
                }
            }
        }
    }

    let mut differ = Vec::new();
    for (path, text) in &planned {
        let same = std::fs::read_to_string(path).is_ok_and(|old| &old == text);
        if same {
            outcome.unchanged.push(path.clone());
        } else {
            differ.push(path.clone());
        }
    }
    if opts.check {
        let mut all = differ;
        all.extend(stale_generated);
        if !all.is_empty() {
            return Err(ImportError::Stale { paths: all });
        }
        outcome.import = imp;
        return Ok(outcome);
    }
    if !opts.out_dir.as_os_str().is_empty() {
        std::fs::create_dir_all(&opts.out_dir).map_err(|e| ImportError::io(&opts.out_dir, e))?;
    }
    for (path, text) in &planned {
        if differ.contains(path) {
            std::fs::write(path, text).map_err(|e| ImportError::io(path, e))?;
            outcome.written.push(path.clone());
        }
    }
    for p in stale_generated {
        std::fs::remove_file(&p).map_err(|e| ImportError::io(&p, e))?;
        outcome.removed.push(p);
    }
    outcome.import = imp;
    Ok(outcome)
}

/// `out_dir` as the root file's `include` paths would name it (relative to the root's
/// directory), lexically.
fn relative_to_root(root: &Path, out_dir: &Path) -> PathBuf {
    let base = root.parent().unwrap_or(Path::new(""));
    match out_dir.strip_prefix(base) {
        Ok(rel) if !base.as_os_str().is_empty() => rel.to_path_buf(),
        _ => out_dir.to_path_buf(),
    }
}
