//! The machine-readable method catalog (`codegen/catalog/methods.json`) and its docs text
//! supplement (`codegen/catalog/docs.json`), as the importer reads them.
//!
//! The schema is described in `codegen/catalog/SUMMARY.md`; unknown keys are ignored so that
//! a newer catalog with more keys still loads.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One method page of the catalog.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Entry {
    /// REST method name as the docs spell it.
    pub method: String,
    /// `v2` (classic `/rest/`) or `v3` (REST 3.0).
    #[serde(default)]
    pub api_version: String,
    /// Scope from the page's `Scope:` line; `None` when the page has none.
    #[serde(default)]
    pub scope: Option<String>,
    /// All scopes, when the page names several.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Page path in the docs repository (`api-reference/crm/deals/crm-deal-add.md`).
    #[serde(default)]
    pub doc: String,
    /// The page marks the method deprecated.
    #[serde(default)]
    pub deprecated: bool,
    /// Why it counts as deprecated (`note`, `outdated-section`, ...).
    #[serde(default)]
    pub deprecated_by: Vec<String>,
    /// The successor method, when the note names one.
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// Top-level parameters in page order.
    #[serde(default)]
    pub params: Vec<Param>,
    /// A parameter table was parsed.
    #[serde(default)]
    pub has_param_table: bool,
    /// The page says the method takes no parameters.
    #[serde(default)]
    pub no_params: bool,
    /// Parameter-section tables not tied to one parameter.
    #[serde(default)]
    pub extra_param_tables: Vec<ExtraTable>,
    /// What the `result` of the response is.
    #[serde(default)]
    pub result: Option<ResultInfo>,
    /// Parser notes.
    #[serde(default)]
    pub issues: Vec<String>,
}

/// A parameter, a nested field of one, or a result field.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Param {
    /// Wire name as the docs write it.
    pub name: String,
    /// Docs type (`string`, `crm_status`, `user.id`, `integer[]`, `string|null`), if any.
    #[serde(default, rename = "type")]
    pub ty: Option<String>,
    /// Marked required.
    #[serde(default)]
    pub required: bool,
    /// Marked required under conditions only.
    #[serde(default)]
    pub conditionally_required: bool,
    /// Other accepted names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Marked deprecated.
    #[serde(default)]
    pub deprecated: bool,
    /// A placeholder for a family of names (`UF_CRM_...`), not a name.
    #[serde(default)]
    pub dynamic_key: bool,
    /// Nested fields.
    #[serde(default)]
    pub fields: Vec<Param>,
    /// Alternative nested tables (per field type, per entity type...).
    #[serde(default)]
    pub field_variants: Vec<Variant>,
    /// The structure is described on another page (`api-reference/tasks/fields.md`).
    #[serde(default)]
    pub fields_ref: Option<String>,
    /// The sub-heading of the table the row came from, when the page groups rows.
    #[serde(default)]
    pub group: Option<String>,
}

/// One alternative nested table.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Variant {
    /// The tab title.
    #[serde(default)]
    pub label: Option<String>,
    /// Its fields.
    #[serde(default)]
    pub fields: Vec<Param>,
}

/// A parameter-section table not tied to one parameter.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExtraTable {
    /// The heading above it.
    #[serde(default)]
    pub section: Option<String>,
    /// A tab title.
    #[serde(default)]
    pub label: Option<String>,
    /// Its rows.
    #[serde(default)]
    pub fields: Vec<Param>,
}

/// The `result` row of "Returned data" and what is linked from it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ResultInfo {
    /// Docs type of `result`.
    #[serde(default, rename = "type")]
    pub ty: Option<String>,
    /// The linked result structure.
    #[serde(default)]
    pub fields: Vec<Param>,
    /// The structure is described on another page.
    #[serde(default)]
    pub fields_ref: Option<String>,
    /// Other rows of the table (`total`, `next`, or keys listed flat as `result.file`).
    #[serde(default)]
    pub returned_data_rows: Vec<Param>,
    /// JSON kind of `result` in the response example.
    #[serde(default)]
    pub example_kind: Option<String>,
}

/// Descriptions taken from one docs page (`docs.json`, written by `extract_docs.py`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DocsText {
    /// One sentence.
    #[serde(default)]
    pub summary: Option<String>,
    /// Param path (`fields.TITLE`) -> one sentence.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Param path -> the values the description shows: `yn`, `bool` or `01`.
    #[serde(default)]
    pub flags: BTreeMap<String, String>,
    /// Description of the `result` row.
    #[serde(default)]
    pub result: Option<String>,
    /// Result field name (as in the catalog: `result.file`, `ID`) -> one sentence.
    #[serde(default)]
    pub result_fields: BTreeMap<String, String>,
    /// Result field name -> value flag, like `flags`.
    #[serde(default)]
    pub result_flags: BTreeMap<String, String>,
    /// `ID` or `id`: how the page's examples spell the id key of `filter` / `order`.
    #[serde(default)]
    pub list_id: Option<String>,
}

/// `docs.json`: method wire name -> its texts.
pub type Docs = BTreeMap<String, DocsText>;
