//! From one catalog entry to one spec method: docs types to spec types, nested fields to
//! named structs, results, lists, access and batch.
//!
//! Every rule that names docs types, methods or params reads [`Settings`]; the code holds
//! only the mechanics (unions, `x[]`, `x.id`, nesting, naming).

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{Docs, DocsText, Entry, Param};
use super::settings::{Settings, Target};
use crate::naming;

/// The docs site the catalog's `doc` paths live under.
pub const DOCS_BASE: &str = "https://apidocs.bitrix24.com/";

/// The settings and docs texts a mapping uses.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// `methods/import.toml`.
    pub settings: Settings,
    /// `codegen/catalog/docs.json`.
    pub docs: Docs,
}

/// A param of a method or a field of a named struct, as it will be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutField {
    /// Wire name, verbatim.
    pub name: String,
    /// Spec type.
    pub ty: String,
    /// Params: a constructor argument. Result fields: always `false`.
    pub required: bool,
    /// One sentence, possibly empty.
    pub doc: String,
    /// Set when the sanitized name collides with another member.
    pub rust_name: Option<String>,
    /// The docs mark it deprecated.
    pub deprecated: bool,
}

/// A named struct made from nested `fields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutType {
    /// PascalCase, unique in the spec.
    pub name: String,
    /// One sentence.
    pub doc: String,
    /// Docs page.
    pub docs: Option<String>,
    /// Documented dynamic keys (`UF_CRM_...`).
    pub dynamic: Vec<String>,
    /// Fields in docs order.
    pub fields: Vec<OutField>,
    /// Made for the result (else for a param).
    pub for_result: bool,
}

/// `list = { ... }` of a list method.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListModel {
    /// `""` for a bare array, else the key in `result`.
    pub items: String,
    /// Id field in `filter` / `order`.
    pub id: String,
    /// Id field in the items, when it differs from `id`.
    pub answer_id: Option<String>,
    /// `start = -1` supported.
    pub fast_scan: bool,
    /// Wire names of those params as the method spells them.
    pub filter: Option<String>,
    /// See `filter`.
    pub order: Option<String>,
    /// See `filter`.
    pub select: Option<String>,
    /// See `filter`.
    pub start: Option<String>,
}

/// One method as it will be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutMethod {
    /// Wire name.
    pub name: String,
    /// Output group (file `methods/<group>.toml`).
    pub group: String,
    /// Whether `group` differs from the default (then it is written).
    pub group_differs: bool,
    /// OAuth scope.
    pub scope: String,
    /// One sentence.
    pub summary: String,
    /// Docs URL.
    pub docs: String,
    /// `read`, `write` or `read_with_effects`.
    pub access: String,
    /// Successor or sentence.
    pub deprecated: Option<String>,
    /// `false` when it may not run inside `batch`.
    pub batch: bool,
    /// Its booleans travel as `Y`/`N` inside `batch` (`query_bool = "yn"`).
    pub query_bool_yn: bool,
    /// Result spec type.
    pub result: String,
    /// Result doc.
    pub result_doc: String,
    /// Params in docs order.
    pub params: Vec<OutField>,
    /// Top-level dynamic params (set with `.field(name, value)`).
    pub dynamic: Vec<String>,
    /// List model.
    pub list: Option<ListModel>,
    /// Conditional requirements (at least one group fully set), from `[params] one_of`.
    pub requires: Vec<Vec<String>>,
    /// Group function name, when the default collides.
    pub rust_name: Option<String>,
    /// Named types made for this method.
    pub types: Vec<OutType>,
}

/// A place where the spec type is free JSON although the docs name a more specific type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    /// Method.
    pub method: String,
    /// Param path (`fields.PHOTO`) or `result` / `result.x`.
    pub path: String,
    /// Docs type.
    pub docs_type: String,
    /// Spec type written.
    pub spec_type: String,
    /// Why.
    pub why: String,
    /// In the result (else in a param).
    pub in_result: bool,
}

/// What happened while mapping, for the report.
#[derive(Clone, Debug, Default)]
pub struct Notes {
    /// Free params/fields where the docs give no type or only a generic one, by docs type.
    pub free_generic: BTreeMap<String, usize>,
    /// Free where the docs give a more specific type.
    pub losses: Vec<Loss>,
    /// `(method, path, why)` of catalog rows that were not emitted.
    pub skipped: Vec<(String, String, String)>,
    /// Methods without any result info in the catalog.
    pub no_result: Vec<String>,
    /// `(method, what)`: result taken from the response example only, or left `json`.
    pub result_notes: Vec<(String, String)>,
    /// `(where, from, to)`: member names changed with `rust_name`.
    pub renamed: Vec<(String, String, String)>,
    /// `(method, note)` about list models.
    pub list_notes: Vec<(String, String)>,
}

impl Notes {
    /// Adds another method's notes.
    pub fn merge(&mut self, other: Notes) {
        for (k, v) in other.free_generic {
            *self.free_generic.entry(k).or_default() += v;
        }
        self.losses.extend(other.losses);
        self.skipped.extend(other.skipped);
        self.no_result.extend(other.no_result);
        self.result_notes.extend(other.result_notes);
        self.renamed.extend(other.renamed);
        self.list_notes.extend(other.list_notes);
    }
}

/// Whether a spec type is free JSON (no structure the generator can check).
pub fn is_free(ty: &str) -> bool {
    matches!(
        ty,
        "json" | "object" | "list<json>" | "map<json>" | "list<object>" | "map<object>"
    )
}

/// The docs URL of a catalog `doc` path.
pub fn docs_url(doc: &str) -> String {
    let page = doc.strip_suffix(".md").unwrap_or(doc);
    format!("{DOCS_BASE}{page}.html")
}

/// The default group of a wire name: its first segment, `basic` for names without a dot.
pub fn default_group(name: &str) -> String {
    match name.split_once('.') {
        Some((first, _)) => first.to_owned(),
        None => "basic".to_owned(),
    }
}

/// The group function name the generator derives: the name without its group segment.
pub fn function_name(name: &str, group: &str) -> Option<String> {
    let prefix = format!("{}.", group.to_lowercase());
    let local = if name.to_lowercase().starts_with(&prefix) {
        &name[prefix.len()..]
    } else {
        name
    };
    naming::snake(local).map(|n| n.text)
}

/// A wire name that can be written as a param/field name (the generator's rule).
pub fn valid_wire_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
}

/// Whether a catalog row is a placeholder for a family of names, not a name.
pub fn is_dynamic(p: &Param) -> bool {
    p.dynamic_key
        || p.name.contains("...")
        || p.name.contains('*')
        || p.name.contains('<')
        || p.name.contains('{')
}

/// The members of a docs type (`string|null` -> `["string"]`), `null` dropped, duplicates
/// removed, order kept.
pub fn members(ty: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in ty.unwrap_or("").split('|') {
        let m = m.trim();
        if m.is_empty() || m.eq_ignore_ascii_case("null") {
            continue;
        }
        if !out.iter().any(|o| o == m) {
            out.push(m.to_owned());
        }
    }
    out
}

/// Docs type names of scalars: nested `fields` under them list allowed values, not fields.
const SCALARS: &[&str] = &[
    "string", "integer", "double", "boolean", "char", "text", "date", "datetime", "enum",
];

/// Where a docs type is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pos {
    /// A request param or a field of one.
    Param,
    /// The result or a field of it.
    Result,
}

/// A mapped type and, when it is free JSON though the docs say more, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// Spec type.
    pub ty: String,
    /// Set when the type is free JSON although the docs type is specific.
    pub loss: Option<String>,
}

impl Mapped {
    fn plain(ty: &str) -> Mapped {
        Mapped {
            ty: ty.to_owned(),
            loss: None,
        }
    }
}

impl Context {
    fn generic(&self, docs_type: &str) -> bool {
        self.settings.generic.iter().any(|g| g == docs_type)
    }

    fn target(&self, docs_type: &str, t: &Target) -> Mapped {
        let ty = t.ty().to_owned();
        let loss = (is_free(&ty) && !self.generic(docs_type)).then(|| {
            t.why()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("the settings map `{docs_type}` to `{ty}`"))
        });
        Mapped { ty, loss }
    }

    /// Maps a docs type (possibly a union) to a spec type. `flag` is the value flag from
    /// `docs.json` (`yn`, `bool`, `01`).
    pub fn map_docs_type(&self, docs_type: Option<&str>, flag: Option<&str>, pos: Pos) -> Mapped {
        let ms = members(docs_type);
        match ms.len() {
            0 => Mapped::plain("json"),
            1 => self.map_one(&ms[0], flag, pos),
            _ => {
                let key = ms.join("|");
                if let Some(t) = self.settings.unions.get(&key) {
                    return self.target(&key, t);
                }
                let mapped: Vec<Mapped> = ms.iter().map(|m| self.map_one(m, flag, pos)).collect();
                if mapped.iter().all(|m| m.ty == mapped[0].ty) {
                    return mapped[0].clone();
                }
                // A union of different kinds: `json` is exactly what the docs say (the spec
                // has no unions), so it is not a loss.
                Mapped::plain("json")
            }
        }
    }

    fn map_one(&self, m: &str, flag: Option<&str>, pos: Pos) -> Mapped {
        let s = &self.settings;
        if pos == Pos::Result {
            if let Some(t) = s.result_types.get(m) {
                return self.target(m, t);
            }
        }
        if let Some(t) = flag.and_then(|f| s.flagged.get(m).and_then(|x| x.get(f))) {
            return Mapped::plain(t);
        }
        if let Some(t) = s.types.get(m) {
            return self.target(m, t);
        }
        if let Some(e) = s.entities.get(m) {
            return Mapped::plain(e);
        }
        if let Some(inner) = m.strip_suffix("[]") {
            let i = self.map_one(inner, flag, pos);
            return Mapped {
                ty: format!("list<{}>", i.ty),
                loss: i.loss,
            };
        }
        if let Some((_, suffix)) = m.rsplit_once('.') {
            if let Some(t) = s.suffixes.get(suffix) {
                return self.target(m, t);
            }
        }
        if let Some(t) = s.types.get(&m.to_lowercase()) {
            return self.target(m, t);
        }
        Mapped {
            ty: "json".into(),
            loss: (!self.generic(m)).then(|| {
                format!("no spec type for docs type `{m}` (no rule in [types], [entities] or [suffixes])")
            }),
        }
    }

    /// The named type a `fields_ref` page stands for, if the settings know it.
    fn entity_of_ref(&self, r: Option<&str>) -> Option<String> {
        let r = r?;
        self.settings.refs.get(r).cloned()
    }

    /// The named type a docs type stands for (`deal[]` -> `Deal`, list-ness returned apart).
    fn entity_of_type(&self, ms: &[String]) -> Option<(String, bool)> {
        if ms.len() != 1 {
            return None;
        }
        let m = ms[0].as_str();
        let (base, list) = match m.strip_suffix("[]") {
            Some(b) => (b, true),
            None => (m, false),
        };
        self.settings.entities.get(base).map(|e| (e.clone(), list))
    }
}

/// Names already taken in the whole spec (request types, hand types, announced types,
/// generated types), so that every generated type gets a unique name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// Taken type names.
    pub taken: BTreeSet<String>,
    /// `(method, wanted, given)` for every generated type renamed to stay unique.
    pub renamed: Vec<(String, String, String)>,
}

impl Registry {
    fn claim(&mut self, method: &str, wanted: &str) -> String {
        let mut name = wanted.to_owned();
        let mut n = 1;
        while self.taken.contains(&name) {
            n += 1;
            name = if n == 2 {
                format!("{wanted}Type")
            } else {
                format!("{wanted}Type{n}")
            };
        }
        if name != wanted {
            self.renamed
                .push((method.to_owned(), wanted.to_owned(), name.clone()));
        }
        self.taken.insert(name.clone());
        name
    }
}

/// A PascalCase type name for `method` + `path` that the generator accepts as written.
pub fn type_name(method: &str, path: &str) -> String {
    let mut name = naming::pascal(&format!("{method}.{path}"))
        .map(|n| n.text)
        .unwrap_or_else(|| "Unnamed".to_owned());
    // heck is idempotent on its own output in practice; make sure.
    for _ in 0..3 {
        match naming::pascal(&name) {
            Some(p) if p.text != name => name = p.text,
            _ => break,
        }
    }
    name
}

/// Builds one method.
pub struct MethodBuilder<'a> {
    cx: &'a Context,
    entry: &'a Entry,
    docs: Option<&'a DocsText>,
    registry: &'a mut Registry,
    types: Vec<OutType>,
    is_list: bool,
    /// A path segment the result fields sit under besides `result.` (a wrapper key, `value`
    /// of keyed results), for finding their docs and flags.
    result_prefix: Option<String>,
    /// What happened.
    pub notes: Notes,
}

/// Some pages list a nested field as a row of its own, `fields.CONTACT_ID` next to `fields`:
/// such a row is a field of the parent param, not a param named with a dot (which would be
/// sent as the key `"fields.CONTACT_ID"`).
pub fn fold_dotted(params: Vec<Param>) -> Vec<Param> {
    let mut out: Vec<Param> = Vec::new();
    for p in params {
        if let Some((parent, child)) = p.name.split_once('.') {
            if let Some(owner) = out.iter_mut().find(|o| o.name == parent) {
                if !owner.fields.iter().any(|f| f.name == child) {
                    let mut field = p.clone();
                    field.name = child.to_owned();
                    owner.fields.push(field);
                }
                continue;
            }
        }
        out.push(p);
    }
    out
}

impl<'a> MethodBuilder<'a> {
    /// A builder for `entry`; generated type names are claimed in `registry`.
    pub fn new(cx: &'a Context, entry: &'a Entry, registry: &'a mut Registry) -> Self {
        let is_list = is_list_method(cx, entry);
        MethodBuilder {
            cx,
            entry,
            docs: cx.docs.get(&entry.method),
            registry,
            types: Vec::new(),
            is_list,
            result_prefix: None,
            notes: Notes::default(),
        }
    }

    /// The catalog params the method takes: the param table plus "Additional Parameters"
    /// tables (`event.offline.get`'s `clear`).
    pub fn catalog_params(entry: &Entry) -> Vec<Param> {
        let mut out = entry.params.clone();
        for t in &entry.extra_param_tables {
            if t.section
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("additional parameters"))
            {
                out.extend(t.fields.iter().cloned());
            }
        }
        fold_dotted(out)
    }

    /// Maps the whole method.
    pub fn build(mut self) -> (OutMethod, Notes) {
        let e = self.entry;
        let s = &self.cx.settings;
        let name = e.method.clone();
        let dgroup = default_group(&name);
        let group = group_of(s, &name).unwrap_or_else(|| dgroup.clone());
        let scope = e
            .scope
            .clone()
            .filter(|sc| !sc.is_empty() && sc != "(none)")
            .or_else(|| s.no_scope.get(&group).cloned())
            .unwrap_or_else(|| group.clone());
        let summary = self
            .docs
            .and_then(|d| d.summary.clone())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| fallback_summary(&name));
        let deprecated = e.deprecated.then(|| {
            e.replaced_by
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "Bitrix24 no longer develops this method.".to_owned())
        });

        let catalog_params = Self::catalog_params(e);
        let (params, dynamic) = self.fields_of(&catalog_params, "", Pos::Param, false);
        let mut params = self.dedupe_rust_names(&format!("method `{name}`"), params);
        let requires = one_of(s, &mut params);
        if self.is_list {
            self.start_param(&mut params);
        }
        let (result, result_doc) = self.result();
        let list = self.is_list.then(|| self.list_model(&params, &result));
        let access = access_of(s, e, &catalog_params).to_owned();
        let batch = batch_allowed(s, e, &catalog_params, &group);
        let query_bool_yn = s
            .batch
            .query_bool_yn
            .iter()
            .any(|p| name.starts_with(p.as_str()));

        let types = std::mem::take(&mut self.types);
        let method = OutMethod {
            group_differs: group != dgroup,
            name,
            group,
            scope,
            summary,
            docs: docs_url(&e.doc),
            access,
            deprecated,
            batch,
            query_bool_yn,
            result,
            result_doc,
            params,
            dynamic,
            list,
            requires,
            rust_name: None,
            types,
        };
        (method, self.notes)
    }

    fn method(&self) -> &str {
        &self.entry.method
    }

    fn param_doc(&self, path: &str) -> String {
        self.docs
            .and_then(|d| d.params.get(path))
            .cloned()
            .unwrap_or_default()
    }

    /// A result path as the docs name it: without `result.`/`item.` and without the wrapper
    /// key the docs table leaves out.
    fn result_local<'p>(&self, path: &'p str) -> &'p str {
        let local = path
            .strip_prefix("result.")
            .or_else(|| path.strip_prefix("item."))
            .unwrap_or(path);
        match &self.result_prefix {
            Some(p) => local
                .strip_prefix(p.as_str())
                .and_then(|l| l.strip_prefix('.'))
                .unwrap_or(local),
            None => local,
        }
    }

    fn result_field_doc(&self, path: &str) -> String {
        let Some(d) = self.docs else {
            return String::new();
        };
        let local = self.result_local(path);
        d.result_fields
            .get(local)
            .or_else(|| d.result_fields.get(&format!("result.{local}")))
            .cloned()
            .unwrap_or_default()
    }

    /// Maps a list of catalog rows; returns the fields and the dynamic keys.
    fn fields_of(
        &mut self,
        rows: &[Param],
        parent: &str,
        pos: Pos,
        force_optional: bool,
    ) -> (Vec<OutField>, Vec<String>) {
        let mut fields: Vec<OutField> = Vec::new();
        let mut dynamic: Vec<String> = Vec::new();
        for p in rows {
            let name = p.name.trim();
            let path = join(parent, name);
            if is_dynamic(p) {
                if !dynamic.iter().any(|d| d == name) {
                    dynamic.push(name.to_owned());
                }
                continue;
            }
            if !valid_wire_name(name) {
                self.notes.skipped.push((
                    self.method().to_owned(),
                    path,
                    "not a wire name (a sub-heading or a label inside the docs table)".into(),
                ));
                continue;
            }
            if parent.is_empty()
                && pos == Pos::Param
                && self.cx.settings.skip_params.iter().any(|s| s == name)
            {
                self.notes.skipped.push((
                    self.method().to_owned(),
                    path,
                    "sent by the client itself (skip_params)".into(),
                ));
                continue;
            }
            if fields.iter().any(|f| f.name == name) {
                self.notes.skipped.push((
                    self.method().to_owned(),
                    path,
                    "listed twice in the docs table; the first row is kept".into(),
                ));
                continue;
            }
            let mut mapped = self.type_of(p, &path, pos);
            if mapped.ty == "integer" && self.cx.settings.params.is_id_name(name) {
                mapped.ty = "id".into();
            }
            if mapped.ty == "string" && self.cx.settings.params.is_secret_name(name) {
                mapped.ty = "secret".into();
            }
            self.count(p, &path, &mapped, pos);
            let doc = match pos {
                Pos::Param => self.param_doc(&path),
                Pos::Result => self.result_field_doc(&path),
            };
            fields.push(OutField {
                name: name.to_owned(),
                ty: mapped.ty,
                required: pos == Pos::Param && p.required && !force_optional,
                doc,
                rust_name: None,
                deprecated: p.deprecated,
            });
        }
        (fields, dynamic)
    }

    fn count(&mut self, p: &Param, path: &str, mapped: &Mapped, pos: Pos) {
        if !is_free(&mapped.ty) {
            return;
        }
        match &mapped.loss {
            Some(why) => self.notes.losses.push(Loss {
                method: self.method().to_owned(),
                path: path.to_owned(),
                docs_type: p.ty.clone().unwrap_or_default(),
                spec_type: mapped.ty.clone(),
                why: why.clone(),
                in_result: pos == Pos::Result,
            }),
            None => {
                let key = p.ty.clone().unwrap_or_else(|| "(no type)".into());
                *self.notes.free_generic.entry(key).or_default() += 1;
            }
        }
    }

    fn flag(&self, path: &str, pos: Pos) -> Option<&'a str> {
        let d = self.docs?;
        match pos {
            Pos::Param => d.flags.get(path).map(String::as_str),
            Pos::Result => {
                let local = self.result_local(path);
                d.result_flags
                    .get(local)
                    .or_else(|| d.result_flags.get(&format!("result.{local}")))
                    .map(String::as_str)
            }
        }
    }

    /// The spec type of one row (building named structs for nested fields).
    fn type_of(&mut self, p: &Param, path: &str, pos: Pos) -> Mapped {
        let s = &self.cx.settings;
        let lname = p.name.to_lowercase();
        if pos == Pos::Param && !path.contains('.') {
            if lname == "select" {
                if let Some(t) = &s.params.select {
                    return Mapped::plain(t);
                }
            }
            // `order` of a list method is `{"FIELD": "ASC"}`, unless the page types it a
            // string: then it is the direction next to a `sort` field (department.get,
            // user.search, voximplant.*.get).
            let direction = p.ty.as_deref().is_some_and(|t| t.trim() == "string");
            if lname == "order" && self.is_list && !direction {
                if let Some(t) = &s.params.order {
                    return Mapped::plain(t);
                }
            }
            if lname == "start" && self.is_list {
                if let Some(t) = &s.params.start {
                    return Mapped::plain(t);
                }
            }
        }
        let ms = members(p.ty.as_deref());
        if pos == Pos::Result {
            if let Some(e) = self.cx.entity_of_ref(p.fields_ref.as_deref()) {
                let top_row = path.matches('.').count() == 1;
                let list = ms.iter().any(|m| m.ends_with("[]") || m == "array")
                    || (self.is_list && top_row);
                return Mapped::plain(&if list { format!("list<{e}>") } else { e });
            }
        }
        let nested = !p.fields.is_empty() || !p.field_variants.is_empty();
        let scalar = !ms.is_empty()
            && ms.iter().all(|m| {
                let base = m.strip_suffix("[]").unwrap_or(m);
                SCALARS.contains(&base)
            });
        if nested && !scalar {
            if let Some((e, list)) = self.cx.entity_of_type(&ms) {
                return Mapped::plain(&if list { format!("list<{e}>") } else { e });
            }
            let inner = self.struct_for(p, path, pos);
            let has_object = ms.iter().any(|m| m.eq_ignore_ascii_case("object"));
            let list_form = !has_object
                && (ms.iter().any(|m| m.ends_with("[]"))
                    || (ms.iter().any(|m| m == "array")
                        && !s.params.array_as_object.iter().any(|n| n == &p.name)));
            if list_form && !inner.ty.starts_with("map<") {
                return Mapped {
                    ty: format!("list<{}>", inner.ty),
                    loss: inner.loss,
                };
            }
            return inner;
        }
        let flag = self.flag(path, pos);
        self.cx.map_docs_type(p.ty.as_deref(), flag, pos)
    }

    /// A named struct for a row with nested fields (field variants merged, all optional).
    fn struct_for(&mut self, p: &Param, path: &str, pos: Pos) -> Mapped {
        let (mut fields, mut dynamic) = self.fields_of(&p.fields, path, pos, false);
        for v in &p.field_variants {
            let (vf, vd) = self.fields_of(&v.fields, path, pos, true);
            for f in vf {
                match fields.iter_mut().find(|x| x.name == f.name) {
                    Some(x) if x.ty == f.ty => {}
                    Some(x) => {
                        if x.ty != "json" {
                            self.notes.losses.push(Loss {
                                method: self.method().to_owned(),
                                path: join(path, &f.name),
                                docs_type: format!("{} / {}", x.ty, f.ty),
                                spec_type: "json".into(),
                                why: "the type differs between the docs' field variants".into(),
                                in_result: pos == Pos::Result,
                            });
                        }
                        x.ty = "json".into();
                        x.required = false;
                    }
                    None => {
                        let mut f = f;
                        f.required = false;
                        fields.push(f);
                    }
                }
            }
            for d in vd {
                if !dynamic.contains(&d) {
                    dynamic.push(d);
                }
            }
        }
        if fields.is_empty() {
            // Only dynamic keys: a map keyed by them.
            let dyn_rows: Vec<&Param> = p
                .fields
                .iter()
                .chain(p.field_variants.iter().flat_map(|v| v.fields.iter()))
                .filter(|f| is_dynamic(f))
                .collect();
            if dyn_rows.len() == 1 {
                let d = dyn_rows[0];
                let value = self.type_of(d, &join(path, "value"), pos);
                return Mapped::plain(&format!("map<{}>", value.ty));
            }
            if !dynamic.is_empty() {
                return Mapped::plain("map<json>");
            }
            return Mapped::plain("object");
        }
        let fields = self.dedupe_rust_names(&format!("`{}` {path}", self.method()), fields);
        let doc = match pos {
            Pos::Param => self.param_doc(path),
            Pos::Result => String::new(),
        };
        let doc = if doc.is_empty() {
            format!("`{path}` of `{}`.", self.method())
        } else {
            doc
        };
        // The same structure twice in one method: one type.
        if let Some(t) = self.types.iter().find(|t| {
            t.fields == fields && t.dynamic == dynamic && t.for_result == (pos == Pos::Result)
        }) {
            return Mapped::plain(&t.name);
        }
        let wanted = type_name(self.method(), path);
        let entry = self.entry;
        let name = self.registry.claim(&entry.method, &wanted);
        self.types.push(OutType {
            name: name.clone(),
            doc,
            docs: Some(docs_url(&self.entry.doc)),
            dynamic,
            fields,
            for_result: pos == Pos::Result,
        });
        Mapped::plain(&name)
    }

    /// Gives `rust_name`s to members whose sanitized names collide (`ID` / `id`), the same
    /// way the generator checks them: member names, and for optional members also the
    /// setter `set_x`, against each other and against `new`, `send`, `with_client`.
    fn dedupe_rust_names(&mut self, owner: &str, mut fields: Vec<OutField>) -> Vec<OutField> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut setters: BTreeSet<String> = ["new", "send", "with_client"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for f in &mut fields {
            let Some(base) = naming::member(&f.name) else {
                continue;
            };
            let fits = |n: &naming::RustName,
                        names: &BTreeSet<String>,
                        setters: &BTreeSet<String>| {
                !names.contains(&n.text)
                    && (f.required
                        || (!setters.contains(&n.text) && !setters.contains(&naming::setter(n))))
            };
            let mut chosen = base.clone();
            if !fits(&chosen, &names, &setters) {
                let lower = !f.name.chars().any(|c| c.is_ascii_uppercase());
                let upper = !f.name.chars().any(|c| c.is_ascii_lowercase());
                let mut candidates: Vec<String> = Vec::new();
                if lower {
                    candidates.push(format!("{}_lower", base.text));
                }
                if upper {
                    candidates.push(format!("{}_upper", base.text));
                }
                for n in 2..100 {
                    candidates.push(format!("{}_{n}", base.text));
                }
                for c in candidates {
                    if let Some(n) = naming::member(&c).filter(|n| n.text == c && !n.raw) {
                        if fits(&n, &names, &setters) {
                            chosen = n;
                            break;
                        }
                    }
                }
                if chosen != base {
                    f.rust_name = Some(chosen.text.clone());
                    self.notes.renamed.push((
                        format!("{owner}, `{}`", f.name),
                        base.text.clone(),
                        chosen.text.clone(),
                    ));
                }
            }
            names.insert(chosen.text.clone());
            if !f.required {
                setters.insert(chosen.text.clone());
                setters.insert(naming::setter(&chosen));
            }
        }
        fields
    }

    /// The result type and its doc.
    fn result(&mut self) -> (String, String) {
        let s = &self.cx.settings;
        let method = self.method().to_owned();
        let doc = self.docs.and_then(|d| d.result.clone()).unwrap_or_default();
        if let Some(t) = s.results.methods.get(&method) {
            return (t.ty().to_owned(), doc);
        }
        let Some(r) = self.entry.result.clone() else {
            self.notes.no_result.push(method);
            return ("json".into(), doc);
        };
        let ms = members(r.ty.as_deref());
        let envelope = |n: &str| s.results.envelope_rows.iter().any(|e| e == n);
        let rows: Vec<Param> = r
            .returned_data_rows
            .iter()
            .filter(|x| !envelope(&x.name))
            .cloned()
            .collect();
        // The response example's JSON kind decides where the docs type is a PHP `array`
        // (which may be an object on the wire).
        let arrayish = match r.example_kind.as_deref() {
            Some("array") => true,
            Some("object") => false,
            _ => {
                !ms.iter().any(|m| m.eq_ignore_ascii_case("object"))
                    && ms.iter().any(|m| m == "array" || m.ends_with("[]"))
            }
        };

        let last = method.rsplit('.').next().unwrap_or("").to_lowercase();
        let describes_fields = s
            .results
            .field_description_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&last));
        if describes_fields && rows.is_empty() && !arrayish {
            if let Some(t) = &s.results.field_description_type {
                return (t.clone(), doc);
            }
        }
        if let Some(e) = self.cx.entity_of_ref(r.fields_ref.as_deref()) {
            let list = arrayish || self.is_list;
            return (if list { format!("list<{e}>") } else { e }, doc);
        }
        if let Some((e, list)) = self.cx.entity_of_type(&ms) {
            return (if list { format!("list<{e}>") } else { e }, doc);
        }
        let fields = if !r.fields.is_empty() {
            r.fields.clone()
        } else if !rows.is_empty() {
            rows_tree(&rows)
        } else {
            Vec::new()
        };
        // Without a response example, the documented fields of a list method that hold no
        // list are those of one item: `result` is the array (tasks.api.scrum.sprint.list).
        let item_fields = self.is_list
            && r.example_kind.is_none()
            && !s.results.wrapped.contains_key(&method)
            && !s.results.keyed.iter().any(|m| m == &method)
            && !fields.iter().any(|f| {
                members(f.ty.as_deref())
                    .iter()
                    .any(|m| m == "array" || m.ends_with("[]"))
            });
        if item_fields && !arrayish && !fields.is_empty() {
            self.notes.list_notes.push((
                method.clone(),
                "no response example, and no documented result field is a list: the fields are those of one item, `result` is the array".into(),
            ));
        }
        let arrayish = arrayish || (item_fields && !fields.is_empty());
        let path = if fields.is_empty() {
            ""
        } else if arrayish {
            "item"
        } else {
            "result"
        };
        if !fields.is_empty() {
            let keyed = s.results.keyed.iter().any(|m| m == &method);
            let wrapped = s.results.wrapped.get(&method).cloned();
            // The documented fields are those of the object under the wrapper key, or of
            // each value of a keyed object; `result` itself is an object either way.
            let (path, fields, arrayish) = if let Some(w) = &wrapped {
                self.result_prefix = Some(w.key.clone());
                let inner = Param {
                    name: w.key.clone(),
                    ty: Some(if w.list { "object[]" } else { "object" }.into()),
                    fields,
                    ..Param::default()
                };
                ("result", vec![inner], false)
            } else if keyed {
                self.result_prefix = Some("value".into());
                ("result.value", fields, false)
            } else {
                (path, fields, arrayish)
            };
            let pseudo = Param {
                name: path.into(),
                ty: Some("object".into()),
                fields,
                ..Param::default()
            };
            let t = self.struct_for(&pseudo, path, Pos::Result);
            if let Some(renames) = s.results.renamed.get(&method) {
                if let Some(out) = self.types.iter_mut().find(|o| o.name == t.ty) {
                    for f in &mut out.fields {
                        if let Some(to) = renames.get(&f.name) {
                            f.name = to.clone();
                        }
                    }
                }
            }
            let ty = if keyed {
                format!("map<{}>", t.ty)
            } else if arrayish && !t.ty.starts_with("map<") {
                format!("list<{}>", t.ty)
            } else {
                t.ty
            };
            if wrapped.is_some() || keyed {
                self.notes.result_notes.push((
                    method.clone(),
                    match &wrapped {
                        Some(w) => format!(
                            "the documented fields are wrapped in `result.{}` (response example; [results.wrapped])",
                            w.key
                        ),
                        None => "`result` is keyed by ids or codes (response example; [results.keyed])".into(),
                    },
                ));
            }
            self.list_wrapper(&ty);
            return (ty, doc);
        }
        if r.ty.is_some() {
            let mut m = self.cx.map_docs_type(r.ty.as_deref(), None, Pos::Result);
            if arrayish && m.ty == "object" {
                // `object` in the table, an array in the example (PHP arrays).
                m.ty = "list<json>".into();
            }
            if m.ty == "integer" && s.results.id_words.iter().any(|w| doc.contains(w.as_str())) {
                m.ty = "id".into();
            }
            if let Some(why) = m.loss {
                self.notes.losses.push(Loss {
                    method: method.clone(),
                    path: "result".into(),
                    docs_type: r.ty.clone().unwrap_or_default(),
                    spec_type: m.ty.clone(),
                    why,
                    in_result: true,
                });
            }
            return (m.ty, doc);
        }
        let from_example = match r.example_kind.as_deref() {
            Some("object") => Some("object"),
            Some("array") => Some("list<json>"),
            Some("boolean") => Some("boolean"),
            Some("string") => Some("string"),
            Some("integer") => Some("integer"),
            Some("number") => Some("number"),
            _ => None,
        };
        match from_example {
            Some(t) => {
                self.notes.result_notes.push((
                    method,
                    format!("result type `{t}` taken from the response example only"),
                ));
                (t.to_owned(), doc)
            }
            None => {
                self.notes.no_result.push(method);
                ("json".into(), doc)
            }
        }
    }

    /// A list method whose result struct has one field only: that field is the page of
    /// items even where the docs type it `object` (`crm.automatedsolution.list`).
    fn list_wrapper(&mut self, result: &str) {
        if !self.is_list {
            return;
        }
        let method = self.entry.method.clone();
        if let Some(t) = self.types.iter_mut().find(|t| t.name == result) {
            if let [f] = t.fields.as_mut_slice() {
                if !f.ty.starts_with("list<") {
                    let inner = if f.ty == "object" {
                        "object"
                    } else {
                        f.ty.as_str()
                    };
                    let ty = format!("list<{inner}>");
                    self.notes.list_notes.push((
                        method,
                        format!(
                            "the only result field `{}` (`{}`) taken as the page of items: `{ty}`",
                            f.name, f.ty
                        ),
                    ));
                    f.ty = ty;
                }
            }
        }
    }

    /// The offset param of a list method under the name the REST server reads
    /// (`[lists] start_param`): renamed when the docs table spells it otherwise, added when
    /// the table has none (a list known by `total` in its answer). Methods paging with
    /// `offset` (and `limit`) keep that.
    fn start_param(&mut self, params: &mut Vec<OutField>) {
        let Some(name) = self.cx.settings.lists.start_param.clone() else {
            return;
        };
        let method = self.method().to_owned();
        if let Some(p) = params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(&name))
        {
            if p.name != name {
                self.notes.list_notes.push((
                    method,
                    format!(
                        "the docs table spells the offset param `{}`; written `{name}`, the name the REST server reads (`[lists] start_param`)",
                        p.name
                    ),
                ));
                p.name = name;
            }
            return;
        }
        if params.iter().any(|p| p.name.eq_ignore_ascii_case("offset")) {
            return;
        }
        let ty = self
            .cx
            .settings
            .params
            .start
            .clone()
            .unwrap_or_else(|| "integer".into());
        self.notes.list_notes.push((
            method,
            format!(
                "the answer lists `total` but the docs table has no offset param: `{name}` added (`[lists] start_param`)"
            ),
        ));
        params.push(OutField {
            name,
            ty,
            required: false,
            doc: "Offset of the page: `(N - 1) * 50`, or the `next` of the previous answer.".into(),
            rust_name: None,
            deprecated: false,
        });
    }

    fn list_model(&mut self, params: &[OutField], result: &str) -> ListModel {
        let s = &self.cx.settings;
        let method = self.method().to_owned();
        let find = |n: &str| {
            params
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(n))
                .map(|p| p.name.clone())
        };
        let items = if result.starts_with("list<") {
            String::new()
        } else if let Some(t) = self.types.iter().find(|t| t.name == result) {
            let lists: Vec<&OutField> = t
                .fields
                .iter()
                .filter(|f| f.ty.starts_with("list<"))
                .collect();
            match lists.as_slice() {
                [one] => one.name.clone(),
                _ => {
                    self.notes.list_notes.push((
                        method.clone(),
                        format!(
                            "items key unknown: result struct `{}` has {} list fields; `\"\"` written",
                            t.name,
                            lists.len()
                        ),
                    ));
                    String::new()
                }
            }
        } else {
            if result != "list<json>" {
                self.notes.list_notes.push((
                    method.clone(),
                    format!("items key unknown: result is `{result}`; `\"\"` written"),
                ));
            }
            String::new()
        };
        let id = self
            .docs
            .and_then(|d| d.list_id.clone())
            .or_else(|| longest_prefix(&s.lists.id_prefix, &method))
            .unwrap_or_else(|| "ID".into());
        // The order param of the list model takes `{"FIELD": "ASC"}`; a direction string
        // (`order = "DESC"` next to `sort`) is not one: `order = ""` says the method has none.
        let order = find("order").map(|n| {
            let map = params
                .iter()
                .any(|p| p.name == n && (p.ty.starts_with("map<") || p.ty == "object"));
            if map {
                n
            } else {
                String::new()
            }
        });
        let mut model = ListModel {
            items,
            id,
            answer_id: None,
            fast_scan: s.lists.fast_scan.iter().any(|m| m == &method),
            filter: find("filter"),
            order,
            select: find("select"),
            start: find("start"),
        };
        if let Some(m) = s.lists.models.get(&method) {
            if let Some(v) = &m.items {
                model.items = v.clone();
            }
            if let Some(v) = &m.id {
                model.id = v.clone();
            }
            if let Some(v) = &m.answer_id {
                model.answer_id = (v != &model.id).then(|| v.clone());
            }
            if let Some(v) = m.fast_scan {
                model.fast_scan = v;
            }
        }
        model
    }
}

/// Applies `[params] one_of`: alternatives that are all there and all marked required become
/// optional, and the method requires one of each set (the product, for several sets:
/// `[[IBLOCK_ID, ELEMENT_ID], [IBLOCK_ID, ELEMENT_CODE], ...]`).
fn one_of(s: &Settings, params: &mut [OutField]) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = vec![Vec::new()];
    let mut any = false;
    for alternatives in &s.params.one_of {
        let all_required = alternatives.len() >= 2
            && alternatives
                .iter()
                .all(|a| params.iter().any(|p| &p.name == a && p.required));
        if !all_required {
            continue;
        }
        any = true;
        for p in params.iter_mut() {
            if alternatives.contains(&p.name) {
                p.required = false;
            }
        }
        groups = groups
            .iter()
            .flat_map(|g| {
                alternatives.iter().map(move |a| {
                    let mut g = g.clone();
                    g.push(a.clone());
                    g
                })
            })
            .collect();
    }
    if any {
        groups
    } else {
        Vec::new()
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn longest_prefix(table: &BTreeMap<String, String>, name: &str) -> Option<String> {
    table
        .iter()
        .filter(|(p, _)| name.starts_with(p.as_str()))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, v)| v.clone())
}

/// The group a settings prefix assigns, if any.
pub fn group_of(s: &Settings, name: &str) -> Option<String> {
    longest_prefix(&s.groups, name)
}

/// "Returned data" rows as a tree of params: `result.events[].eventId` becomes field
/// `eventId` of `events`; the `result.` prefix is dropped.
fn rows_tree(rows: &[Param]) -> Vec<Param> {
    let mut root: Vec<Param> = Vec::new();
    for r in rows {
        let path = r.name.strip_prefix("result.").unwrap_or(&r.name);
        let segs: Vec<&str> = path.split('.').collect();
        insert_row(&mut root, &segs, r);
    }
    root
}

fn insert_row(level: &mut Vec<Param>, segs: &[&str], row: &Param) {
    let Some((first, rest)) = segs.split_first() else {
        return;
    };
    let (name, list) = match first.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (*first, false),
    };
    let idx = match level.iter().position(|p| p.name == name) {
        Some(i) => i,
        None => {
            level.push(Param {
                name: name.to_owned(),
                ty: Some(if list { "array" } else { "object" }.to_owned()),
                ..Param::default()
            });
            level.len() - 1
        }
    };
    if rest.is_empty() {
        let p = &mut level[idx];
        p.ty = row.ty.clone();
        p.fields_ref = row.fields_ref.clone();
        if !row.fields.is_empty() {
            p.fields = row.fields.clone();
        }
    } else {
        insert_row(&mut level[idx].fields, rest, row);
    }
}

/// Whether the method pages: a `start` param, or `next` in the returned data, or `total`
/// in the returned data of a method named like a list (`[lists] total_names`; `total`
/// alone is not enough: `sale.basketitem.add` lists it for no paging).
pub fn is_list_method(cx: &Context, e: &Entry) -> bool {
    let l = &cx.settings.lists;
    if l.not_lists.iter().any(|m| m == &e.method) {
        return false;
    }
    let start = MethodBuilder::catalog_params(e)
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case("start"));
    let row = |name: &str| {
        e.result
            .as_ref()
            .is_some_and(|r| r.returned_data_rows.iter().any(|x| x.name == name))
    };
    let last = e.method.rsplit('.').next().unwrap_or("");
    let named_like_a_list = l.total_names.iter().any(|n| n.eq_ignore_ascii_case(last));
    start || row("next") || (row("total") && named_like_a_list)
}

/// The first word of a name segment: `getFields` -> `get`, `getfields` -> `getfields`.
pub fn first_word(segment: &str) -> String {
    let mut out = String::new();
    for (i, c) in segment.chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            break;
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The camelCase words of a segment, lower-cased: `setOwner` -> `set`, `owner`.
pub fn words(segment: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in segment.chars() {
        if (c.is_ascii_uppercase() && !cur.is_empty()) || c == '_' {
            out.push(std::mem::take(&mut cur));
        }
        if c != '_' {
            cur.push(c.to_ascii_lowercase());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|w| !w.is_empty());
    out
}

/// `read`, `write` or `read_with_effects` (rules in `methods/import.toml`, `[access]`).
pub fn access_of(s: &Settings, e: &Entry, params: &[Param]) -> &'static str {
    let a = &s.access;
    let name = e.method.as_str();
    if a.read_with_effects.iter().any(|m| m == name) {
        return "read_with_effects";
    }
    if a.write.iter().any(|m| m == name) {
        return "write";
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let lower = last.to_lowercase();
    let forced_read = a.read.iter().any(|m| m == name);
    if !forced_read {
        let first = first_word(last);
        let writes = a.write_words.iter().any(|w| *w == first || *w == lower);
        if writes {
            return "write";
        }
        let reads = a.read_last.iter().any(|r| r.eq_ignore_ascii_case(last))
            || a.read_prefixes
                .iter()
                .any(|p| lower.starts_with(p.as_str()));
        if !reads {
            return "write";
        }
    }
    let effects = params.iter().any(|p| {
        a.effect_params
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&p.name))
    });
    if effects {
        "read_with_effects"
    } else {
        "read"
    }
}

/// Whether the method may run inside `batch` (rules in `methods/import.toml`, `[batch]`).
pub fn batch_allowed(s: &Settings, e: &Entry, params: &[Param], group: &str) -> bool {
    let b = &s.batch;
    if b.never.iter().any(|m| m == &e.method) {
        return false;
    }
    let prefix = format!("{}.", group.to_lowercase());
    let lower = e.method.to_lowercase();
    let local = lower.strip_prefix(&prefix).unwrap_or(&lower);
    if b.name_words
        .iter()
        .any(|w| local.contains(&w.to_lowercase()))
    {
        return false;
    }
    !params
        .iter()
        .any(|p| b.param_names.iter().any(|n| n == &p.name))
}

/// A summary made from the name when the docs give none.
pub fn fallback_summary(name: &str) -> String {
    format!("Calls the Bitrix24 REST method `{name}`.")
}
