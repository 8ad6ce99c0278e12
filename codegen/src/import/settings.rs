//! `methods/import.toml`: the hand-written settings that drive the mapping from docs types
//! to spec types, access, batch and list rules. Every table is documented in the file itself.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A spec type, optionally with the reason it is less specific than the docs type.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Target {
    /// Just the spec type.
    Plain(String),
    /// The spec type and why (shown in the report when the type is free JSON).
    Explained {
        /// The spec type.
        #[serde(rename = "type")]
        ty: String,
        /// Why.
        why: String,
    },
}

impl Target {
    /// The spec type.
    pub fn ty(&self) -> &str {
        match self {
            Target::Plain(t) => t,
            Target::Explained { ty, .. } => ty,
        }
    }

    /// The reason, when given.
    pub fn why(&self) -> Option<&str> {
        match self {
            Target::Plain(_) => None,
            Target::Explained { why, .. } => Some(why),
        }
    }
}

/// The whole settings file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Named types another file (`methods/entities.toml`) declares; generated files may use them.
    #[serde(default)]
    pub announced: Vec<String>,
    /// Hand files (paths as the root's `include` names them) that declare `announced`;
    /// listed first in the `include` the report suggests.
    #[serde(default)]
    pub announced_files: Vec<String>,
    /// Docs types that say no more than "some object/array/value": mapping them to
    /// `json`/`object`/`list<json>` loses nothing.
    #[serde(default)]
    pub generic: Vec<String>,
    /// Param/field wire names never emitted (the client sends them itself).
    #[serde(default)]
    pub skip_params: Vec<String>,
    /// Docs type -> spec type.
    #[serde(default)]
    pub types: BTreeMap<String, Target>,
    /// Docs type -> spec type, for results only (checked before `types`).
    #[serde(default)]
    pub result_types: BTreeMap<String, Target>,
    /// Docs type -> value flag found in the description (`yn`, `bool`, `01`) -> spec type.
    #[serde(default)]
    pub flagged: BTreeMap<String, BTreeMap<String, String>>,
    /// Unions (members as written, `null` dropped, joined with `|`) -> spec type.
    #[serde(default)]
    pub unions: BTreeMap<String, Target>,
    /// The part after the last `.` of `x.y` reference types -> spec type.
    #[serde(default)]
    pub suffixes: BTreeMap<String, Target>,
    /// Docs type names -> hand-written named types (any position).
    #[serde(default)]
    pub entities: BTreeMap<String, String>,
    /// `fields_ref` pages (with anchor, as the catalog writes them) -> named types (results).
    #[serde(default)]
    pub refs: BTreeMap<String, String>,
    /// Rules keyed by param name.
    #[serde(default)]
    pub params: ParamRules,
    /// Access rules.
    #[serde(default)]
    pub access: Access,
    /// Batch rules.
    #[serde(default)]
    pub batch: Batch,
    /// List-method rules.
    #[serde(default)]
    pub lists: Lists,
    /// Result rules.
    #[serde(default)]
    pub results: Results,
    /// Group -> scope for methods whose page names no scope (default: the group).
    #[serde(default)]
    pub no_scope: BTreeMap<String, String>,
    /// Method-name prefix -> group (longest prefix wins); default: the first name segment.
    #[serde(default)]
    pub groups: BTreeMap<String, String>,
}

/// Rules keyed by param name.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamRules {
    /// Spec type of `order` / `ORDER` params of list methods.
    #[serde(default)]
    pub order: Option<String>,
    /// Spec type of `select` / `SELECT` params.
    #[serde(default)]
    pub select: Option<String>,
    /// Spec type of `start` / `START` params of list methods (the offset; `-1` for fast scans).
    #[serde(default)]
    pub start: Option<String>,
    /// Names of `array` params with nested fields that are one object (a PHP associative
    /// array), not a list of objects.
    #[serde(default)]
    pub array_as_object: Vec<String>,
    /// Params/fields typed `integer` whose name is one of these become `id`.
    #[serde(default)]
    pub id_names: Vec<String>,
    /// Params/fields typed `integer` whose name ends with one of these become `id`.
    #[serde(default)]
    pub id_suffixes: Vec<String>,
    /// Alternatives the docs ask for at least one of ("At least one of the parameters must be
    /// specified: `IBLOCK_ID` or `IBLOCK_CODE`") while marking each required: when a method
    /// has all of them required, they become optional and the method `requires` one.
    #[serde(default)]
    pub one_of: Vec<Vec<String>>,
    /// Params/fields typed `string` with one of these names carry a credential and become
    /// `secret` (never printed by `Debug`).
    #[serde(default)]
    pub secret_names: Vec<String>,
}

impl ParamRules {
    /// Whether an `integer` param/field of this name is an id.
    pub fn is_id_name(&self, name: &str) -> bool {
        self.id_names.iter().any(|n| n == name)
            || self.id_suffixes.iter().any(|s| name.ends_with(s.as_str()))
    }

    /// Whether a `string` param/field of this name is a credential.
    pub fn is_secret_name(&self, name: &str) -> bool {
        self.secret_names.iter().any(|n| n == name)
    }
}

/// Access rules (see the settings file for the order they apply in).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// Last name segments (case-insensitive) of reads.
    #[serde(default)]
    pub read_last: Vec<String>,
    /// First word of the last segment (camelCase or lower case prefix) of reads.
    #[serde(default)]
    pub read_prefixes: Vec<String>,
    /// First words of the last segment that always mean a write.
    #[serde(default)]
    pub write_words: Vec<String>,
    /// Methods that are reads whatever their name says.
    #[serde(default)]
    pub read: Vec<String>,
    /// Methods that are writes whatever their name says.
    #[serde(default)]
    pub write: Vec<String>,
    /// Reads that change state (never retried).
    #[serde(default)]
    pub read_with_effects: Vec<String>,
    /// Param names that make a read change state (`clear`).
    #[serde(default)]
    pub effect_params: Vec<String>,
}

/// Batch rules: which methods may not run inside `batch`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Methods never allowed in batch.
    #[serde(default)]
    pub never: Vec<String>,
    /// Words (case-insensitive) in the name after the group that mean a file transfer.
    #[serde(default)]
    pub name_words: Vec<String>,
    /// Top-level param names that carry file content.
    #[serde(default)]
    pub param_names: Vec<String>,
    /// Method-name prefixes whose booleans travel as `Y`/`N` inside `batch`
    /// (`query_bool = "yn"`).
    #[serde(default)]
    pub query_bool_yn: Vec<String>,
}

/// List-method rules.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lists {
    /// Methods that support `start = -1` with an `>ID` filter.
    #[serde(default)]
    pub fast_scan: Vec<String>,
    /// Method-name prefix -> id field (longest prefix wins), before the docs examples' hint.
    #[serde(default)]
    pub id_prefix: BTreeMap<String, String>,
    /// Per-method list models (override everything found).
    #[serde(default)]
    pub models: BTreeMap<String, ListModelSetting>,
    /// Methods with a `start` param (or `next`/`total` in their answer) that are not list
    /// methods.
    #[serde(default)]
    pub not_lists: Vec<String>,
    /// Last name segments (case-insensitive) that make a method whose answer lists `total` a
    /// list method even when its param table has no `start`.
    #[serde(default)]
    pub total_names: Vec<String>,
    /// The wire name of the offset param of list methods (`start`): a param table spelling
    /// it in another letter case is renamed, a list method without one gets it.
    #[serde(default)]
    pub start_param: Option<String>,
}

/// A hand-set list model; unset keys keep what the importer found.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListModelSetting {
    /// Where the items are (`""` for a bare array).
    #[serde(default)]
    pub items: Option<String>,
    /// Id field in requests.
    #[serde(default)]
    pub id: Option<String>,
    /// Id field in answers.
    #[serde(default)]
    pub answer_id: Option<String>,
    /// `start = -1` supported.
    #[serde(default)]
    pub fast_scan: Option<bool>,
}

/// Result rules.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// Row names of "Returned data" that belong to the envelope, not to `result`.
    #[serde(default)]
    pub envelope_rows: Vec<String>,
    /// Last name segments (case-insensitive) of methods that describe an entity's fields:
    /// their result is a map of field name -> field description.
    #[serde(default)]
    pub field_description_methods: Vec<String>,
    /// Spec type of those results.
    #[serde(default)]
    pub field_description_type: Option<String>,
    /// An `integer` result whose description contains one of these words is an `id`.
    #[serde(default)]
    pub id_words: Vec<String>,
    /// Per-method result type (wins over everything found).
    #[serde(default)]
    pub methods: BTreeMap<String, Target>,
    /// Methods whose answer wraps the documented result fields in one key
    /// (`{"booking": {...}}`) that the docs table leaves out.
    #[serde(default)]
    pub wrapped: BTreeMap<String, Wrapped>,
    /// Methods whose result is an object keyed by ids or codes (`{"5": {...}, "6": {...}}`),
    /// each value having the documented fields: `map<...>`.
    #[serde(default)]
    pub keyed: Vec<String>,
    /// Per method, top-level result keys the docs table misspells -> the key the answer has.
    #[serde(default)]
    pub renamed: BTreeMap<String, BTreeMap<String, String>>,
}

/// The key a result is wrapped in.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wrapped {
    /// The one key of `result`.
    pub key: String,
    /// Whether it holds a list of the documented objects (else one object).
    #[serde(default)]
    pub list: bool,
}
