//! Reading spec files: a spanned TOML tree walked table by table ([`Tab`]), every key taken
//! remembered so that the rest are reported as unknown, into raw entries (not validated yet).

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{locate, SpecError, SpecFile, GENERATED_MARK};

// ---------------------------------------------------------------------------------------
// The walker
// ---------------------------------------------------------------------------------------

pub(super) struct Ctx<'f> {
    pub(super) files: &'f [SpecFile],
    pub(super) errors: Vec<SpecError>,
}

impl<'f> Ctx<'f> {
    pub(super) fn new(files: &'f [SpecFile]) -> Self {
        Ctx {
            files,
            errors: Vec::new(),
        }
    }

    pub(super) fn err(
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

    pub(super) fn parse(&mut self, file: usize) -> Option<Spanned<DeTable<'f>>> {
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
pub(super) fn near_miss<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
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
pub(super) struct At<T> {
    pub(super) value: T,
    pub(super) file: usize,
    pub(super) offset: usize,
}

/// One TOML table being read: every key taken is remembered, the rest are reported as
/// unknown by [`Tab::finish`].
pub(super) struct Tab<'t, 'f> {
    pub(super) file: usize,
    pub(super) table: &'t DeTable<'f>,
    pub(super) offset: usize,
    pub(super) context: String,
    pub(super) taken: Vec<&'static str>,
}

impl<'t, 'f> Tab<'t, 'f> {
    pub(super) fn new(file: usize, table: &'t DeTable<'f>, offset: usize, context: String) -> Self {
        Tab {
            file,
            table,
            offset,
            context,
            taken: Vec::new(),
        }
    }

    pub(super) fn raw(&mut self, key: &'static str) -> Option<&'t Spanned<DeValue<'f>>> {
        self.taken.push(key);
        self.table.get(key)
    }

    pub(super) fn string(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<At<String>> {
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

    pub(super) fn req_string(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<At<String>> {
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

    pub(super) fn bool(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<bool> {
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

    pub(super) fn strings(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<Vec<At<String>>> {
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
    pub(super) fn tables(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Vec<(&'t DeTable<'f>, usize)> {
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

    pub(super) fn table(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<(&'t DeTable<'f>, usize)> {
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
    pub(super) fn finish(self, cx: &mut Ctx<'_>, allowed: &[&'static str]) {
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
pub(super) struct RawField {
    pub(super) name: At<String>,
    pub(super) ty: Option<At<String>>,
    pub(super) required: Option<bool>,
    pub(super) doc: Option<String>,
    pub(super) rust_name: Option<At<String>>,
    pub(super) why: Option<String>,
    pub(super) deprecated: Option<bool>,
    /// Overrides only.
    pub(super) remove: bool,
    pub(super) add: bool,
}

#[derive(Clone, Debug, Default)]
pub(super) struct RawMethod {
    pub(super) file: usize,
    pub(super) name: Option<At<String>>,
    pub(super) group: Option<At<String>>,
    pub(super) scope: Option<At<String>>,
    pub(super) api: Option<At<String>>,
    pub(super) summary: Option<String>,
    pub(super) docs: Option<String>,
    pub(super) access: Option<At<String>>,
    pub(super) deprecated: Option<String>,
    pub(super) batch: Option<bool>,
    pub(super) query_bool: Option<At<String>>,
    pub(super) result: Option<At<String>>,
    pub(super) result_doc: Option<String>,
    pub(super) requires: Option<At<Vec<Vec<String>>>>,
    pub(super) list: Option<At<RawList>>,
    pub(super) rust_name: Option<At<String>>,
    pub(super) why: Option<String>,
    pub(super) params: Vec<RawField>,
    pub(super) imported: bool,
}

#[derive(Clone, Debug, Default)]
pub(super) struct RawList {
    pub(super) items: Option<String>,
    pub(super) id: Option<String>,
    pub(super) answer_id: Option<String>,
    pub(super) fast_scan: Option<bool>,
    pub(super) filter: Option<String>,
    pub(super) order: Option<String>,
    pub(super) select: Option<String>,
    pub(super) start: Option<String>,
}

#[derive(Clone, Debug)]
pub(super) struct RawType {
    pub(super) file: usize,
    pub(super) name: At<String>,
    pub(super) kind: At<String>,
    pub(super) doc: String,
    pub(super) docs: Option<String>,
    pub(super) fields: Vec<RawField>,
    pub(super) values: Option<Vec<At<String>>>,
    pub(super) dynamic: Vec<String>,
}

#[derive(Clone, Debug)]
pub(super) struct RawEvent {
    pub(super) file: usize,
    pub(super) name: At<String>,
    pub(super) variant: At<String>,
    pub(super) summary: String,
    pub(super) docs: Option<String>,
    pub(super) data: At<String>,
}

#[derive(Clone, Debug)]
pub(super) struct RawOverride {
    pub(super) method: At<String>,
    pub(super) patch: RawMethod,
}

pub(super) const METHOD_KEYS: &[&str] = &[
    "name",
    "group",
    "scope",
    "api",
    "summary",
    "docs",
    "access",
    "deprecated",
    "batch",
    "query_bool",
    "result",
    "result_doc",
    "requires",
    "list",
    "rust_name",
    "why",
    "param",
];
pub(super) const PARAM_KEYS: &[&str] = &[
    "name",
    "type",
    "required",
    "doc",
    "rust_name",
    "why",
    "deprecated",
];
pub(super) const OVERRIDE_PARAM_KEYS: &[&str] = &[
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
pub(super) const LIST_KEYS: &[&str] = &[
    "items",
    "id",
    "answer_id",
    "fast_scan",
    "filter",
    "order",
    "select",
    "start",
];
pub(super) const TYPE_KEYS: &[&str] =
    &["name", "kind", "doc", "docs", "field", "values", "dynamic"];
pub(super) const EVENT_KEYS: &[&str] = &["name", "variant", "summary", "docs", "data"];
pub(super) const TOP_KEYS: &[&str] = &["include", "type", "method", "event", "override", "import"];

pub(super) fn context_of(what: &str, name: &Option<At<String>>) -> String {
    match name {
        Some(n) => format!("{what} `{}`", n.value),
        None => what.to_owned(),
    }
}

pub(super) fn read_field(
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

pub(super) fn read_method(
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
        query_bool: tab.string(cx, "query_bool"),
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

pub(super) fn read_type(
    cx: &mut Ctx<'_>,
    file: usize,
    t: &DeTable<'_>,
    offset: usize,
) -> Option<RawType> {
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

pub(super) fn read_event(
    cx: &mut Ctx<'_>,
    file: usize,
    t: &DeTable<'_>,
    offset: usize,
) -> Option<RawEvent> {
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
pub(super) struct RawSpec {
    pub(super) types: Vec<RawType>,
    pub(super) methods: Vec<RawMethod>,
    pub(super) events: Vec<RawEvent>,
    pub(super) overrides: Vec<RawOverride>,
}

pub(super) fn read_all(cx: &mut Ctx<'_>) -> RawSpec {
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
