//! Tests of `bitrix24-codegen import` (feature `import`): the mapping rules on small catalog
//! snippets with the committed settings, determinism, hand entries, and the committed
//! generated files (up to date, valid TOML, every catalog method present, every type known).

#![cfg(feature = "import")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bitrix24_codegen::import::{
    self, map, Context, DocsText, Entry, HandSpec, Import, OutMethod, Registry,
};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen/ has a parent")
        .to_path_buf()
}

/// The committed settings, no docs texts.
fn cx() -> Context {
    Context {
        settings: import::load_settings(&repo().join("methods/import.toml")).unwrap(),
        docs: Default::default(),
    }
}

fn entry(json: &str) -> Entry {
    let mut v = import::parse_catalog(Path::new("test.json"), &format!("[{json}]")).unwrap();
    v.remove(0)
}

fn build(cx: &Context, e: &Entry) -> OutMethod {
    let mut reg = Registry::default();
    map::MethodBuilder::new(cx, e, &mut reg).build().0
}

fn param<'a>(m: &'a OutMethod, name: &str) -> &'a import::OutField {
    m.params
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no param {name} in {:?}", m.params))
}

fn ty<'a>(m: &'a OutMethod, name: &str) -> &'a import::OutType {
    m.types
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no type {name} in {:?}", m.types))
}

// -----------------------------------------------------------------------------------------
// Mapping rules
// -----------------------------------------------------------------------------------------

#[test]
fn char_is_yn_only_when_the_docs_say_y_n() {
    let mut cx = cx();
    let mut d = DocsText::default();
    d.flags.insert("OPENED".into(), "yn".into());
    d.flags.insert("ACTIVE".into(), "yn".into());
    d.flags.insert("HALT".into(), "bool".into());
    cx.docs.insert("x.thing.update".into(), d);
    let e = entry(
        r#"{"method": "x.thing.update", "api_version": "v2", "scope": "x", "doc": "a/b.md",
            "params": [
              {"name": "OPENED", "type": "char", "required": false},
              {"name": "CODE", "type": "char", "required": false},
              {"name": "ACTIVE", "type": "boolean", "required": false},
              {"name": "HALT", "type": "boolean", "required": false},
              {"name": "PLAIN", "type": "boolean", "required": false}
            ], "result": {"type": "boolean"}}"#,
    );
    let m = build(&cx, &e);
    assert_eq!(param(&m, "OPENED").ty, "yn");
    assert_eq!(param(&m, "CODE").ty, "string");
    assert_eq!(param(&m, "ACTIVE").ty, "yn");
    assert_eq!(param(&m, "HALT").ty, "boolean");
    assert_eq!(param(&m, "PLAIN").ty, "boolean");
    assert_eq!(m.result, "boolean");
}

#[test]
fn references_unions_and_lists() {
    let e = entry(
        r#"{"method": "x.thing.add", "api_version": "v2", "scope": "x", "doc": "a/b.md",
            "params": [
              {"name": "OWNER", "type": "user.id", "required": true},
              {"name": "PRODUCT", "type": "catalog_product.ID", "required": false},
              {"name": "CURRENCY", "type": "crm_currency.CURRENCY", "required": false},
              {"name": "RESPONSIBLE", "type": "user", "required": false},
              {"name": "STAGE", "type": "crm_status", "required": false},
              {"name": "CONTACTS", "type": "crm_contact[]", "required": false},
              {"name": "TITLE", "type": "string|null", "required": false},
              {"name": "KEY", "type": "integer|string", "required": false},
              {"name": "LABEL", "type": "string|lang_map", "required": false},
              {"name": "BODY", "type": "string|object", "required": false},
              {"name": "NAMES", "type": "lang_map", "required": false},
              {"name": "SKU", "type": "catalog_product.id|catalog_product_sku.id", "required": false},
              {"name": "WHATEVER", "type": "mystery_type", "required": false},
              {"name": "ITEMS", "type": "array", "required": false},
              {"name": "PRICE", "type": "double", "required": false},
              {"name": "NOTE", "type": "text", "required": false},
              {"name": "STATUS_ID", "type": "sale_status.id", "required": false},
              {"name": "COUNT", "type": "integer", "required": false},
              {"name": "PARENT_ID", "type": "integer", "required": false}
            ]}"#,
    );
    let m = build(&cx(), &e);
    let expect = [
        ("OWNER", "id"),
        ("PRODUCT", "id"),
        ("CURRENCY", "string"),
        ("RESPONSIBLE", "id"),
        ("STAGE", "string"),
        ("CONTACTS", "list<id>"),
        ("TITLE", "string"),
        ("KEY", "string"),
        ("LABEL", "json"),
        ("BODY", "json"),
        ("NAMES", "map<string>"),
        ("SKU", "id"),
        ("WHATEVER", "json"),
        ("ITEMS", "list<json>"),
        ("PRICE", "number"),
        ("NOTE", "string"),
        ("STATUS_ID", "string"),
        ("COUNT", "integer"),
        ("PARENT_ID", "id"),
    ];
    for (name, t) in expect {
        assert_eq!(param(&m, name).ty, t, "param {name}");
    }
    assert!(param(&m, "OWNER").required);
    assert!(!param(&m, "TITLE").required);
    assert!(m.list.is_none());
    assert_eq!(m.result, "json", "no result info");
}

#[test]
fn losses_are_recorded_with_the_docs_type() {
    let e = entry(
        r#"{"method": "x.thing.add", "api_version": "v2", "scope": "x", "doc": "a/b.md",
            "params": [
              {"name": "WHATEVER", "type": "mystery_type", "required": false},
              {"name": "PHOTO", "type": "file", "required": false},
              {"name": "DATA", "type": "object", "required": false},
              {"name": "BODY", "type": "string|object", "required": false}
            ]}"#,
    );
    let cx = cx();
    let mut reg = Registry::default();
    let (_, notes) = map::MethodBuilder::new(&cx, &e, &mut reg).build();
    let lost: BTreeMap<&str, &str> = notes
        .losses
        .iter()
        .map(|l| (l.path.as_str(), l.docs_type.as_str()))
        .collect();
    assert_eq!(lost.get("WHATEVER"), Some(&"mystery_type"));
    assert_eq!(lost.get("PHOTO"), Some(&"file"));
    assert!(!lost.contains_key("DATA"), "a docs `object` is not a loss");
    assert!(!lost.contains_key("BODY"), "a union of kinds is not a loss");
    assert!(notes.no_result.contains(&"x.thing.add".to_owned()));
}

#[test]
fn nested_fields_make_named_structs_with_dynamic_keys() {
    let mut cx = cx();
    let mut d = DocsText::default();
    d.params
        .insert("fields".into(), "Values of the new thing.".into());
    d.params.insert("fields.TITLE".into(), "Title.".into());
    cx.docs.insert("crm.thing.add".into(), d);
    let e = entry(
        r#"{"method": "crm.thing.add", "api_version": "v2", "scope": "crm", "doc": "api-reference/crm/thing/add.md",
            "params": [
              {"name": "fields", "type": "object", "required": true, "fields": [
                {"name": "TITLE", "type": "string", "required": true},
                {"name": "PHONE", "type": "crm_multifield[]", "required": false},
                {"name": "ADDRESS", "type": "object", "required": false, "fields": [
                  {"name": "CITY", "type": "string", "required": false}
                ]},
                {"name": "UF_CRM_...", "type": null, "required": false, "dynamic_key": true},
                {"name": "PARENT_ID_...", "type": "crm_entity", "required": false, "dynamic_key": true}
              ]},
              {"name": "other", "type": "object", "required": false, "fields": [
                {"name": "CITY", "type": "string", "required": false}
              ]},
              {"name": "UF_*", "type": "any", "required": false},
              {"name": "rows", "type": "object[]", "required": false, "fields": [
                {"name": "PRODUCT_ID", "type": "catalog_product.id", "required": true}
              ]},
              {"name": "FIELDS", "type": "array", "required": false, "fields": [
                {"name": "NAME", "type": "string", "required": false}
              ]},
              {"name": "MESSAGES", "type": "array", "required": false, "fields": [
                {"name": "text", "type": "string", "required": false}
              ]},
              {"name": "rights", "type": "object|array", "required": false, "fields": [
                {"name": "<ACCESS_CODE>", "type": "string[]", "required": false, "dynamic_key": true}
              ]},
              {"name": "kind", "type": "string", "required": false, "fields": [
                {"name": "A", "type": null, "required": false}
              ]}
            ],
            "result": {"type": "integer"}}"#,
    );
    let m = build(&cx, &e);
    let fields = param(&m, "fields");
    assert_eq!(fields.ty, "CrmThingAddFields");
    assert!(fields.required);
    assert_eq!(fields.doc, "Values of the new thing.");
    let t = ty(&m, "CrmThingAddFields");
    assert_eq!(t.dynamic, ["UF_CRM_...", "PARENT_ID_..."]);
    let names: Vec<&str> = t.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["TITLE", "PHONE", "ADDRESS"]);
    assert_eq!(t.fields[0].doc, "Title.");
    assert!(t.fields[0].required);
    assert_eq!(t.fields[1].ty, "list<CrmMultifield>");
    assert_eq!(t.fields[2].ty, "CrmThingAddFieldsAddress");
    // The same structure twice in one method is one type.
    assert_eq!(param(&m, "other").ty, "CrmThingAddFieldsAddress");
    assert_eq!(m.dynamic, ["UF_*"]);
    assert_eq!(param(&m, "rows").ty, "list<CrmThingAddRows>");
    // `FIELDS` (array, one PHP associative array) -> a struct; its natural name is taken by
    // `fields`, so it gets a suffix.
    assert_eq!(param(&m, "FIELDS").ty, "CrmThingAddFieldsType");
    assert_eq!(param(&m, "MESSAGES").ty, "list<CrmThingAddMessages>");
    assert_eq!(param(&m, "rights").ty, "map<list<string>>");
    assert_eq!(
        param(&m, "kind").ty,
        "string",
        "fields under a scalar are values"
    );
    assert_eq!(m.result, "integer");
}

#[test]
fn field_variants_merge_into_one_struct_with_optional_fields() {
    let e = entry(
        r#"{"method": "x.userfield.add", "api_version": "v2", "scope": "x", "doc": "a/b.md",
            "params": [
              {"name": "fields", "type": "object", "required": true, "fields": [
                {"name": "SETTINGS", "type": "object", "required": false,
                 "fields": [{"name": "COMMON", "type": "string", "required": true}],
                 "field_variants": [
                   {"label": "string", "fields": [
                     {"name": "DEFAULT_VALUE", "type": "string", "required": true},
                     {"name": "ROWS", "type": "integer", "required": true}]},
                   {"label": "integer", "fields": [
                     {"name": "DEFAULT_VALUE", "type": "integer", "required": false}]}
                 ]}
              ]}
            ]}"#,
    );
    let m = build(&cx(), &e);
    let t = ty(&m, "XUserfieldAddFieldsSettings");
    let got: Vec<(&str, &str, bool)> = t
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.ty.as_str(), f.required))
        .collect();
    assert_eq!(
        got,
        [
            ("COMMON", "string", true),
            ("DEFAULT_VALUE", "json", false),
            ("ROWS", "integer", false)
        ]
    );
}

#[test]
fn list_methods() {
    let deal = entry(
        r#"{"method": "crm.deal.list", "api_version": "v2", "scope": "crm", "doc": "a/b.md",
            "params": [
              {"name": "select", "type": "string[]", "required": false},
              {"name": "filter", "type": "object", "required": false},
              {"name": "order", "type": "object", "required": false},
              {"name": "start", "type": "integer", "required": false}
            ],
            "result": {"type": "deal[]", "returned_data_rows": [
              {"name": "total", "type": "integer"}, {"name": "next", "type": "integer"}],
              "example_kind": "array"}}"#,
    );
    let m = build(&cx(), &deal);
    assert_eq!(m.result, "list<Deal>");
    assert_eq!(param(&m, "order").ty, "map<string>");
    assert_eq!(param(&m, "select").ty, "list<string>");
    assert_eq!(param(&m, "filter").ty, "object");
    assert_eq!(m.access, "read");
    let l = m.list.expect("a list method");
    assert_eq!(l.items, "");
    assert_eq!(l.id, "ID");
    assert!(l.fast_scan);
    assert_eq!(l.start.as_deref(), Some("start"));

    let item = entry(
        r#"{"method": "crm.item.list", "api_version": "v2", "scope": "crm", "doc": "a/b.md",
            "params": [
              {"name": "entityTypeId", "type": "integer", "required": true},
              {"name": "FILTER", "type": "object", "required": false},
              {"name": "start", "type": "integer", "required": false}
            ],
            "result": {"type": "object", "returned_data_rows": [
              {"name": "items", "type": "item[]", "fields_ref": "api-reference/crm/universal/object-fields.md"},
              {"name": "total", "type": "integer"}, {"name": "next", "type": "integer"}],
              "example_kind": "object"}}"#,
    );
    let m = build(&cx(), &item);
    assert_eq!(m.result, "CrmItemListResult");
    let t = ty(&m, "CrmItemListResult");
    assert_eq!(t.fields.len(), 1, "total/next belong to the envelope");
    assert_eq!(t.fields[0].ty, "list<CrmItem>");
    let l = m.list.expect("a list method");
    assert_eq!(l.items, "items");
    assert_eq!(l.id, "id");
    assert!(l.fast_scan);
    assert_eq!(l.filter.as_deref(), Some("FILTER"));
    assert_eq!(l.order, None);

    let tasks = entry(
        r#"{"method": "tasks.task.list", "api_version": "v2", "scope": "task", "doc": "a/b.md",
            "params": [{"name": "start", "type": "integer", "required": false}],
            "result": {"type": "object", "returned_data_rows": [
              {"name": "tasks", "type": "object", "fields_ref": "api-reference/tasks/fields.md"},
              {"name": "total", "type": "integer"}], "example_kind": "object"}}"#,
    );
    let m = build(&cx(), &tasks);
    assert_eq!(ty(&m, "TasksTaskListResult").fields[0].ty, "list<Task>");
    let l = m.list.expect("a list method");
    assert_eq!((l.items.as_str(), l.id.as_str()), ("tasks", "ID"));
    assert_eq!(l.answer_id.as_deref(), Some("id"));
    assert!(!l.fast_scan);

    // `total` alone does not make a list method.
    let add = entry(
        r#"{"method": "sale.basketitem.add", "api_version": "v2", "scope": "sale", "doc": "a/b.md",
            "params": [], "result": {"type": "object", "returned_data_rows": [
              {"name": "basketItem", "type": "object"}, {"name": "total", "type": "integer"}]}}"#,
    );
    assert!(build(&cx(), &add).list.is_none());

    // `total` in the answer of a `*.list` read: a list paged by `start`, which the param
    // table omits (crm.status.list); the importer adds it.
    let status = entry(
        r#"{"method": "crm.status.list", "api_version": "v2", "scope": "crm", "doc": "a/b.md",
            "params": [{"name": "order", "type": "object"}, {"name": "filter", "type": "object"}],
            "result": {"type": "array", "returned_data_rows": [{"name": "total", "type": "integer"}],
              "example_kind": "array"}}"#,
    );
    let m = build(&cx(), &status);
    let l = m.list.clone().expect("a list method");
    assert_eq!(l.start.as_deref(), Some("start"));
    assert_eq!(param(&m, "start").ty, "integer");
    assert!(!param(&m, "start").required);
    assert_eq!(param(&m, "order").ty, "map<string>");

    // The table spells the offset `START` (department.get): the REST server reads `start`.
    let dept = entry(
        r#"{"method": "department.get", "api_version": "v2", "scope": "department", "doc": "a/b.md",
            "params": [{"name": "sort", "type": "string"}, {"name": "order", "type": "string"},
              {"name": "START", "type": "integer"}],
            "result": {"type": "department[]", "returned_data_rows": [{"name": "total", "type": "integer"}]}}"#,
    );
    let m = build(&cx(), &dept);
    assert_eq!(m.list.as_ref().unwrap().start.as_deref(), Some("start"));
    assert!(m.params.iter().all(|p| p.name != "START"), "{:?}", m.params);
    assert_eq!(
        param(&m, "order").ty,
        "string",
        "a direction next to `sort`"
    );

    // Offset + limit paging is another model: no list, no `start` added.
    let recent = entry(
        r#"{"method": "im.recent.list", "api_version": "v2", "scope": "im", "doc": "a/b.md",
            "params": [{"name": "OFFSET", "type": "integer"}, {"name": "LIMIT", "type": "integer"}],
            "result": {"type": "object", "returned_data_rows": [{"name": "total", "type": "integer"}]}}"#,
    );
    let m = build(&cx(), &recent);
    assert!(m.list.is_none());
    assert!(m.params.iter().all(|p| p.name != "start"));

    // No response example, and the documented fields hold no list: they are one item's.
    let sprints = entry(
        r#"{"method": "tasks.api.scrum.sprint.list", "api_version": "v2", "scope": "task", "doc": "a/b.md",
            "params": [{"name": "start", "type": "integer"}],
            "result": {"type": "object", "returned_data_rows": [
              {"name": "id", "type": "integer"}, {"name": "name", "type": "string"}]}}"#,
    );
    let m = build(&cx(), &sprints);
    assert_eq!(m.result, "list<TasksApiScrumSprintListItem>");
    assert_eq!(m.list.unwrap().items, "");
}

#[test]
fn chat_bots_v2_send_booleans_as_y_n_inside_batch() {
    let send = entry(
        r#"{"method": "imbot.v2.Chat.Message.send", "api_version": "v2", "scope": "imbot",
            "doc": "a/b.md", "params": [{"name": "botId", "type": "integer", "required": true}],
            "result": {"type": "integer"}}"#,
    );
    assert!(build(&cx(), &send).query_bool_yn);
    let old = entry(
        r#"{"method": "imbot.message.add", "api_version": "v2", "scope": "imbot",
            "doc": "a/b.md", "params": [], "result": {"type": "integer"}}"#,
    );
    assert!(!build(&cx(), &old).query_bool_yn);
    // A hand entry without the key is reported.
    let catalog = import::parse_catalog(
        Path::new("small.json"),
        r#"[{"method": "imbot.v2.Bot.get", "api_version": "v2", "scope": "imbot", "doc": "b.md",
             "params": [], "result": {"type": "object"}}]"#,
    )
    .unwrap();
    let hand = HandSpec::from_texts(&[(
        "methods.toml",
        "[[method]]\nname = \"imbot.v2.Bot.get\"\nscope = \"imbot\"\naccess = \"read\"\nresult = \"json\"\n",
    )])
    .unwrap();
    let imp = import::import(&catalog, &cx(), &hand, Path::new("methods"));
    let text = imp.hand_diffs[0].diffs.join("\n");
    assert!(text.contains("`query_bool`: (default) by hand"), "{text}");
}

#[test]
fn hand_entries_without_the_list_model_are_reported() {
    let catalog = import::parse_catalog(
        Path::new("small.json"),
        r#"[{"method": "user.get", "api_version": "v2", "scope": "user", "doc": "u.md",
             "params": [{"name": "start", "type": "integer"}],
             "result": {"type": "user[]", "returned_data_rows": [{"name": "total", "type": "integer"}]}}]"#,
    )
    .unwrap();
    let hand = HandSpec::from_texts(&[(
        "methods.toml",
        "[[method]]\nname = \"user.get\"\nscope = \"user\"\naccess = \"read\"\nresult = \"json\"\n\
         param = [{ name = \"start\", type = \"integer\" }]\n",
    )])
    .unwrap();
    let imp = import::import(&catalog, &cx(), &hand, Path::new("methods"));
    let text = imp.hand_diffs[0].diffs.join("\n");
    assert!(
        text.contains("the import makes it a list method") && text.contains("no `list`"),
        "{text}"
    );
}

#[test]
fn results() {
    let e = entry(
        r#"{"method": "imbot.v9.File.upload", "api_version": "v2", "scope": "imbot", "doc": "a/b.md",
            "params": [],
            "result": {"type": "object", "returned_data_rows": [
              {"name": "result.file", "type": "File", "fields_ref": "api-reference/chat-bots/chat-bots-v2/entities.md#file"},
              {"name": "result.messageId", "type": "integer"},
              {"name": "result.events", "type": "array"},
              {"name": "result.events[].eventId", "type": "integer"},
              {"name": "result.events[].date", "type": "datetime"}
            ], "example_kind": "object"}}"#,
    );
    let m = build(&cx(), &e);
    assert_eq!(m.result, "ImbotV9FileUploadResult");
    let t = ty(&m, "ImbotV9FileUploadResult");
    let got: Vec<(&str, &str, bool)> = t
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.ty.as_str(), f.required))
        .collect();
    assert_eq!(
        got,
        [
            ("file", "FileV2", false),
            ("messageId", "id", false),
            ("events", "list<ImbotV9FileUploadResultEvents>", false)
        ]
    );
    let ev = ty(&m, "ImbotV9FileUploadResultEvents");
    assert_eq!(ev.fields[0].ty, "id");
    assert_eq!(ev.fields[1].ty, "string", "result dates stay text");

    let fields = entry(
        r#"{"method": "crm.thing.fields", "api_version": "v2", "scope": "crm", "doc": "a/b.md",
            "params": [], "result": {"type": "object", "fields": [
              {"name": "ID", "type": "integer", "required": false}]}}"#,
    );
    assert_eq!(build(&cx(), &fields).result, "map<object>");

    let arr = entry(
        r#"{"method": "x.thing.get", "api_version": "v2", "scope": "x", "doc": "a/b.md",
            "params": [], "result": {"type": "array", "fields": [
              {"name": "ID", "type": "integer", "required": true}], "example_kind": "array"}}"#,
    );
    let m = build(&cx(), &arr);
    assert_eq!(m.result, "list<XThingGetItem>");
    assert!(
        !ty(&m, "XThingGetItem").fields[0].required,
        "result fields are never required"
    );

    let bare = entry(
        r#"{"method": "x.thing.delete", "api_version": "v2", "scope": null, "doc": "a/b.md",
            "params": [], "result": null, "deprecated": true, "replaced_by": "x.item.delete"}"#,
    );
    let m = build(&cx(), &bare);
    assert_eq!(m.result, "json");
    assert_eq!(m.scope, "x", "no scope: the group");
    assert_eq!(m.deprecated.as_deref(), Some("x.item.delete"));
    assert!(!m.summary.is_empty());
    assert_eq!(m.docs, "https://apidocs.bitrix24.com/a/b.html");
}

fn with_params(name: &str, params: &str) -> Entry {
    entry(&format!(
        r#"{{"method": "{name}", "api_version": "v2", "scope": "x", "doc": "a/b.md", "params": [{params}]}}"#
    ))
}

#[test]
fn access_rules() {
    let cx = cx();
    let access = |name: &str, params: &str| build(&cx, &with_params(name, params)).access;
    assert_eq!(access("crm.deal.get", ""), "read");
    assert_eq!(access("crm.deal.list", ""), "read");
    assert_eq!(access("sale.order.getFields", ""), "read");
    assert_eq!(access("task.item.getlist", ""), "read");
    assert_eq!(access("task.elapseditem.isActionAllowed", ""), "read");
    assert_eq!(access("crm.deal.add", ""), "write");
    assert_eq!(access("crm.deal.update", ""), "write");
    assert_eq!(access("landing.site.setSettings", ""), "write");
    assert_eq!(access("im.dialog.read", ""), "write");
    assert_eq!(access("im.notify.read.list", ""), "write");
    assert_eq!(access("something.unknown.frobnicate", ""), "write");
    assert_eq!(access("event.offline.get", ""), "read_with_effects");
    assert_eq!(
        access(
            "x.queue.get",
            r#"{"name": "clear", "type": "integer", "required": false}"#
        ),
        "read_with_effects"
    );
}

#[test]
fn batch_rules() {
    let cx = cx();
    let batch = |name: &str, params: &str| build(&cx, &with_params(name, params)).batch;
    assert!(!batch("batch", ""));
    assert!(!batch("disk.folder.uploadfile", ""));
    assert!(!batch("catalog.product.download", ""));
    assert!(!batch(
        "crm.timeline.logo.add",
        r#"{"name": "fileContent", "type": "string", "required": true}"#
    ));
    assert!(batch(
        "crm.company.add",
        r#"{"name": "fields", "type": "object", "required": true, "fields": [
            {"name": "LOGO", "type": "file", "required": false}]}"#
    ));
    assert!(batch("crm.deal.add", ""));
}

#[test]
fn member_name_collisions_get_rust_names() {
    let e = with_params(
        "x.thing.list",
        r#"{"name": "ID", "type": "integer", "required": false},
           {"name": "id", "type": "integer", "required": false},
           {"name": "title", "type": "string", "required": false},
           {"name": "set_title", "type": "string", "required": false},
           {"name": "new", "type": "string", "required": false}"#,
    );
    let cx = cx();
    let mut reg = Registry::default();
    let (m, notes) = map::MethodBuilder::new(&cx, &e, &mut reg).build();
    assert_eq!(param(&m, "ID").rust_name, None);
    assert_eq!(param(&m, "id").rust_name.as_deref(), Some("id_lower"));
    assert_eq!(param(&m, "title").rust_name, None);
    assert_eq!(
        param(&m, "set_title").rust_name.as_deref(),
        Some("set_title_lower")
    );
    assert_eq!(
        param(&m, "new").rust_name,
        None,
        "the sanitizer already gives new_value"
    );
    assert_eq!(notes.renamed.len(), 2);
}

#[test]
fn skipped_rows() {
    let e = with_params(
        "task.item.addtofavorite",
        r#"{"name": "TASK_ID", "type": "integer", "required": true},
           {"name": "auth", "type": "string", "required": false},
           {"name": "Automation rule name", "type": "string", "required": false},
           {"name": "TASK_ID", "type": "string", "required": false}"#,
    );
    let cx = cx();
    let mut reg = Registry::default();
    let (m, notes) = map::MethodBuilder::new(&cx, &e, &mut reg).build();
    let names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["TASK_ID"]);
    assert_eq!(m.params[0].ty, "id");
    assert_eq!(notes.skipped.len(), 3);
}

#[test]
fn event_offline_get_takes_additional_parameters() {
    let e = entry(
        r#"{"method": "event.offline.get", "api_version": "v2", "scope": null, "doc": "a/b.md",
            "params": [{"name": "limit", "type": "integer", "required": false}],
            "extra_param_tables": [{"section": "Additional Parameters", "fields": [
              {"name": "clear", "type": "integer", "required": false}]},
              {"section": "Allowed Tag Values", "fields": [
              {"name": "h1", "type": "string", "required": false}]}]}"#,
    );
    let m = build(&cx(), &e);
    let names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["limit", "clear"]);
    assert_eq!(m.access, "read_with_effects");
    assert_eq!(import::expected(&e, &cx()).len(), 2);
}

#[test]
fn expected_flattens_nested_fields() {
    let e = with_params(
        "crm.thing.add",
        r#"{"name": "fields", "type": "object", "required": true, "fields": [
             {"name": "TITLE", "type": "string", "required": true},
             {"name": "ADDRESS", "type": "object", "required": false, "fields": [
               {"name": "CITY", "type": "string", "required": false}]}]},
           {"name": "id", "type": "integer", "required": true}"#,
    );
    let got: Vec<(String, String, bool)> = import::expected(&e, &cx())
        .into_iter()
        .map(|p| (p.path, p.ty, p.required))
        .collect();
    let want: Vec<(String, String, bool)> = [
        ("fields", "CrmThingAddFields", true),
        ("fields.TITLE", "string", true),
        ("fields.ADDRESS", "CrmThingAddFieldsAddress", false),
        ("fields.ADDRESS.CITY", "string", false),
        ("id", "id", true),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
    .collect();
    assert_eq!(got, want);
    let none = BTreeSet::new();
    assert_eq!(import::wire_kind("CrmThingAddFields", &none), "object");
    assert_eq!(import::wire_kind("yn", &none), "string");
    assert_eq!(import::wire_kind("boolean", &none), "flag");
    assert_eq!(import::wire_kind("id", &none), "number");
    assert_eq!(import::wire_kind("list<id>", &none), "array");
    assert_eq!(import::wire_kind("map<string>", &none), "object");
    assert_eq!(import::wire_kind("json", &none), "any");
}

// -----------------------------------------------------------------------------------------
// Whole imports
// -----------------------------------------------------------------------------------------

const SMALL_CATALOG: &str = r#"[
  {"method": "crm.deal.add", "api_version": "v2", "scope": "crm", "doc": "api-reference/crm/deals/crm-deal-add.md",
   "params": [{"name": "fields", "type": "object", "required": true, "fields": [
     {"name": "TITLE", "type": "string", "required": false}]}], "result": {"type": "integer"}},
  {"method": "crm.deal.get", "api_version": "v2", "scope": "crm", "doc": "api-reference/crm/deals/crm-deal-get.md",
   "params": [{"name": "id", "type": "integer", "required": true}], "result": {"type": "deal"}},
  {"method": "crm.deal.getList", "api_version": "v2", "scope": "crm", "doc": "x/a.md", "params": []},
  {"method": "crm.deal.get_list", "api_version": "v2", "scope": "crm", "doc": "x/b.md", "params": []},
  {"method": "batch", "api_version": "v2", "scope": "basic", "doc": "settings/batch.md",
   "params": [{"name": "cmd", "type": "array", "required": true}]},
  {"method": "profile", "api_version": "v2", "scope": "basic", "doc": "p.md", "params": []},
  {"method": "crm.deal.add", "api_version": "v3", "scope": "crm", "doc": "v3.md", "params": []}
]"#;

const HAND_ROOT: &str = r#"
include = ["methods/entities.toml", "methods/crm.toml"]

[[type]]
name = "Profile"
kind = "struct"
field = [{ name = "ID", type = "id" }]

[[method]]
name = "crm.deal.get"
scope = "crm"
access = "read"
result = "Deal"
param = [{ name = "ID", type = "string" }, { name = "extra", type = "string", why = "test" }]

[[override]]
method = "crm.deal.add"
why = "test"
result = "id"
[[override.param]]
name = "fields"
required = false

[[override]]
method = "crm.nothing"
"#;

const OLD_GENERATED: &str =
    "# @generated by bitrix24-codegen import ...\n[[method]]\nname = \"crm.old\"\n";

fn small_import() -> Import {
    let catalog = import::parse_catalog(Path::new("small.json"), SMALL_CATALOG).unwrap();
    let hand = HandSpec::from_texts(&[
        ("methods.toml", HAND_ROOT),
        ("methods/crm.toml", OLD_GENERATED),
    ])
    .unwrap();
    import::import(&catalog, &cx(), &hand, Path::new("methods"))
}

#[test]
fn hand_entries_win_and_differences_are_reported() {
    let imp = small_import();
    let names: Vec<&str> = imp.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "batch",
            "crm.deal.add",
            "crm.deal.getList",
            "crm.deal.get_list",
            "profile"
        ],
        "v3 entries and hand methods are not generated; sorted by name"
    );
    assert!(imp.hand_covered.contains_key("crm.deal.get"));
    assert!(
        imp.hand_extra.is_empty(),
        "generated files are not hand files: {:?}",
        imp.hand_extra
    );
    let d = &imp.hand_diffs[0];
    assert_eq!(d.method, "crm.deal.get");
    let text = d.diffs.join("\n");
    assert!(text.contains("spelled `ID` by hand"), "{text}");
    assert!(
        text.contains("`extra` (`string`) is in the hand entry"),
        "{text}"
    );
    assert!(text.contains("why: test"), "{text}");
    // Overrides: one real, one stale.
    assert_eq!(imp.override_diffs.len(), 2);
    let o = imp.override_diffs[0].diffs.join("\n");
    assert!(o.contains("`result`: \"integer\" -> \"id\""), "{o}");
    assert!(o.contains("param `fields`: required true -> false"), "{o}");
    assert!(imp.override_diffs[1].diffs[0].starts_with("STALE"));
}

#[test]
fn function_name_collisions_are_resolved() {
    let imp = small_import();
    assert_eq!(imp.collisions.len(), 1);
    let c = &imp.collisions[0];
    assert_eq!(
        (c.group.as_str(), c.name.as_str()),
        ("crm", "deal_get_list")
    );
    let m = imp
        .methods
        .iter()
        .find(|m| m.name == "crm.deal.get_list")
        .unwrap();
    assert_eq!(m.rust_name.as_deref(), Some("deal_get_list_2"));
    assert!(imp.files["crm"].contains("rust_name = \"deal_get_list_2\""));
}

#[test]
fn groups_and_headers() {
    let imp = small_import();
    assert_eq!(imp.files.keys().collect::<Vec<_>>(), ["basic", "crm"]);
    for text in imp.files.values() {
        assert!(text.starts_with(
            "# @generated by bitrix24-codegen import from codegen/catalog/methods.json; do not edit"
        ));
        toml::from_str::<toml::Table>(text).unwrap();
    }
    assert!(imp.files["basic"].contains("name = \"batch\"\nscope = \"basic\""));
    assert!(imp.files["basic"].contains("batch = false"));
    assert!(imp.files["crm"]
        .contains("{ name = \"fields\", type = \"CrmDealAddFields\", required = true }"));
    // The root includes crm.toml but not basic.toml.
    assert_eq!(imp.not_included, ["methods/basic.toml"]);
}

#[test]
fn import_is_deterministic() {
    let a = small_import();
    let b = small_import();
    assert_eq!(a.files, b.files);
}

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p =
            std::env::temp_dir().join(format!("bitrix24-import-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("methods")).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_options(dir: &Path) -> import::Options {
    std::fs::write(dir.join("methods.json"), SMALL_CATALOG).unwrap();
    std::fs::write(dir.join("docs.json"), "{}").unwrap();
    std::fs::copy(repo().join("methods/import.toml"), dir.join("import.toml")).unwrap();
    std::fs::write(dir.join("methods.toml"), HAND_ROOT).unwrap();
    import::Options {
        catalog: dir.join("methods.json"),
        docs: dir.join("docs.json"),
        settings: dir.join("import.toml"),
        root: dir.join("methods.toml"),
        out_dir: dir.join("methods"),
        report: None,
        check: false,
    }
}

#[test]
fn run_writes_is_idempotent_and_never_overwrites_hand_files() {
    let s = Scratch::new("run");
    let opts = scratch_options(&s.0);
    // A stale generated file of a group that no longer exists is removed.
    let gone = s.0.join("methods/gone.toml");
    std::fs::write(&gone, "# @generated by bitrix24-codegen import from x\n").unwrap();
    let first = import::run(&opts).unwrap();
    assert_eq!(first.removed, [gone]);
    let crm = std::fs::read(s.0.join("methods/crm.toml")).unwrap();
    let report = std::fs::read_to_string(s.0.join("methods/IMPORT_REPORT.md")).unwrap();
    assert!(report.contains("| generated | 5 |"), "{report}");

    let second = import::run(&opts).unwrap();
    assert!(second.written.is_empty(), "{:?}", second.written);
    assert_eq!(std::fs::read(s.0.join("methods/crm.toml")).unwrap(), crm);
    let check = import::Options {
        check: true,
        ..opts.clone()
    };
    import::run(&check).unwrap();

    // `--check` notices a change.
    std::fs::write(
        s.0.join("methods/crm.toml"),
        "# @generated by bitrix24-codegen import\n",
    )
    .unwrap();
    assert!(matches!(
        import::run(&check),
        Err(import::ImportError::Stale { .. })
    ));

    // A hand file where a group file would go is an error, and is left alone.
    std::fs::write(s.0.join("methods/basic.toml"), "# hand\n").unwrap();
    let err = import::run(&opts).unwrap_err();
    assert!(matches!(err, import::ImportError::HandFile { .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(s.0.join("methods/basic.toml")).unwrap(),
        "# hand\n"
    );
}

#[test]
fn bad_inputs_are_errors_naming_the_file() {
    let s = Scratch::new("bad");
    let opts = scratch_options(&s.0);
    std::fs::write(&opts.catalog, "[{\"method\": 1}]").unwrap();
    let e = import::run(&opts).unwrap_err().to_string();
    assert!(e.contains("methods.json"), "{e}");
    let opts = scratch_options(&s.0);
    std::fs::write(&opts.settings, "nonsense = 1\n").unwrap();
    let e = import::run(&opts).unwrap_err().to_string();
    assert!(e.contains("import.toml") && e.contains("nonsense"), "{e}");
    let opts = scratch_options(&s.0);
    std::fs::write(&opts.root, "[[method]]\nscope = \"x\"\n").unwrap();
    let e = import::run(&opts).unwrap_err().to_string();
    assert!(
        e.contains("methods.toml") && e.contains("without `name`"),
        "{e}"
    );
}

// -----------------------------------------------------------------------------------------
// The committed files
// -----------------------------------------------------------------------------------------

fn committed_import() -> (Import, Vec<Entry>) {
    let r = repo();
    let catalog = import::load_catalog(&r.join("codegen/catalog/methods.json")).unwrap();
    let cx = Context::load(&r).unwrap();
    let hand = HandSpec::load(&r.join("methods.toml")).unwrap();
    (
        import::import(&catalog, &cx, &hand, Path::new("methods")),
        catalog,
    )
}

#[test]
fn committed_group_files_are_up_to_date() {
    let (imp, _) = committed_import();
    let dir = repo().join("methods");
    for (group, text) in &imp.files {
        let path = dir.join(format!("{group}.toml"));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            &committed == text,
            "{} is stale: run `cargo run -p bitrix24-codegen --features import -- import`",
            path.display()
        );
    }
    // And a second import gives the same bytes.
    let (again, _) = committed_import();
    assert_eq!(imp.files, again.files);
}

/// Every generated file in `methods/`, parsed.
fn generated_files() -> Vec<(PathBuf, toml::Table)> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join("methods"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        if !import::hand::is_generated(&text) {
            continue;
        }
        let t: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: not TOML: {e}", p.display()));
        out.push((p, t));
    }
    out
}

fn tables<'a>(t: &'a toml::Table, key: &str) -> Vec<&'a toml::Table> {
    t.get(key)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_table()).collect())
        .unwrap_or_default()
}

fn s<'a>(t: &'a toml::Table, key: &str) -> Option<&'a str> {
    t.get(key).and_then(|v| v.as_str())
}

/// Parses a spec type expression; collects the named types it uses.
fn parse_type(text: &str, named: &mut Vec<String>) -> Result<(), String> {
    let t = text.trim();
    for prefix in ["list<", "map<"] {
        if let Some(rest) = t.strip_prefix(prefix) {
            let inner = rest
                .strip_suffix('>')
                .ok_or_else(|| format!("unclosed `<` in `{t}`"))?;
            return parse_type(inner, named);
        }
    }
    const PRIMITIVES: &[&str] = &[
        "string", "integer", "id", "number", "boolean", "yn", "date", "datetime", "object", "json",
        "secret",
    ];
    if PRIMITIVES.contains(&t) {
        return Ok(());
    }
    let pascal = bitrix24_codegen::naming::pascal(t).is_some_and(|p| p.text == t);
    if !pascal {
        return Err(format!(
            "`{t}` is neither a primitive nor a PascalCase type name"
        ));
    }
    named.push(t.to_owned());
    Ok(())
}

#[test]
fn committed_group_files_are_valid_specs() {
    let files = generated_files();
    assert!(files.len() > 10, "generated files are committed");
    let cx = Context::load(&repo()).unwrap();
    let hand = HandSpec::load(&repo().join("methods.toml")).unwrap();
    let mut outside: BTreeSet<String> = cx.settings.announced.iter().cloned().collect();
    outside.extend(hand.type_names());
    let mut all_types: BTreeSet<String> = BTreeSet::new();
    let mut problems: Vec<String> = Vec::new();
    for (path, t) in &files {
        let f = path.file_name().unwrap().to_string_lossy().to_string();
        let local: BTreeSet<String> = tables(t, "type")
            .iter()
            .filter_map(|x| s(x, "name").map(str::to_owned))
            .collect();
        for name in &local {
            if !all_types.insert(name.clone()) || outside.contains(name) {
                problems.push(format!("{f}: type `{name}` declared twice in the spec"));
            }
        }
        let check = |what: String, ty: Option<&str>| -> Vec<String> {
            let Some(ty) = ty else {
                return vec![format!("{f}: {what}: no type")];
            };
            let mut out = Vec::new();
            let mut named = Vec::new();
            if let Err(e) = parse_type(ty, &mut named) {
                out.push(format!("{f}: {what}: {e}"));
            }
            for n in named {
                if !local.contains(&n) && !outside.contains(&n) {
                    out.push(format!("{f}: {what}: unknown type `{n}`"));
                }
            }
            out
        };
        for m in tables(t, "method") {
            let name = s(m, "name").unwrap_or("?").to_owned();
            for key in ["name", "scope", "access", "result", "summary", "docs"] {
                if s(m, key).is_none_or(str::is_empty) {
                    problems.push(format!("{f}: method `{name}`: no `{key}`"));
                }
            }
            if !matches!(s(m, "access"), Some("read" | "write" | "read_with_effects")) {
                problems.push(format!("{f}: method `{name}`: bad access"));
            }
            problems.extend(check(format!("method `{name}`, result"), s(m, "result")));
            for p in tables(m, "param") {
                problems.extend(check(
                    format!("method `{name}`, param `{}`", s(p, "name").unwrap_or("?")),
                    s(p, "type"),
                ));
            }
        }
        for ty in tables(t, "type") {
            let name = s(ty, "name").unwrap_or("?").to_owned();
            if s(ty, "kind") != Some("struct") {
                problems.push(format!("{f}: type `{name}`: not a struct"));
            }
            for fl in tables(ty, "field") {
                problems.extend(check(
                    format!("type `{name}`, field `{}`", s(fl, "name").unwrap_or("?")),
                    s(fl, "type"),
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_catalog_method_is_lost() {
    let (_, catalog) = committed_import();
    let hand = HandSpec::load(&repo().join("methods.toml")).unwrap();
    let mut generated: BTreeSet<String> = BTreeSet::new();
    for (_, t) in generated_files() {
        for m in tables(&t, "method") {
            if let Some(n) = s(m, "name") {
                generated.insert(n.to_lowercase());
            }
        }
    }
    let mut lost = Vec::new();
    let mut v2 = 0;
    for e in catalog.iter().filter(|e| e.api_version == "v2") {
        v2 += 1;
        let in_generated = generated.contains(&e.method.to_lowercase());
        let in_hand = hand.has_method(&e.method);
        if in_generated == in_hand {
            let where_ = if in_hand { "in both" } else { "in neither" };
            lost.push(format!("{} ({where_})", e.method));
        }
    }
    assert_eq!(v2, 1565);
    assert!(lost.is_empty(), "{}", lost.join("\n"));
}

#[test]
fn reads_never_look_like_writes() {
    let cx = Context::load(&repo()).unwrap();
    let write_words: BTreeSet<&str> = cx
        .settings
        .access
        .write_words
        .iter()
        .map(String::as_str)
        .collect();
    let forced: BTreeSet<&str> = cx.settings.access.read.iter().map(String::as_str).collect();
    for (_, t) in generated_files() {
        for m in tables(&t, "method") {
            let name = s(m, "name").unwrap();
            if s(m, "access") == Some("write") || forced.contains(name) {
                continue;
            }
            // The first word of the last segment (`getFields` -> `get`), and for all-lower-case
            // segments any write word it starts with (`setowner`), except nouns that happen to
            // start with one (`settings`, `download`, `addresstype`, `important`).
            let last = name.rsplit('.').next().unwrap();
            let first = map::first_word(last);
            assert!(
                !write_words.contains(first.as_str()),
                "`{name}` is a read but its name starts with the write word `{first}`"
            );
            if last.chars().all(|c| c.is_ascii_lowercase())
                && !matches!(last, "settings" | "download" | "addresstype" | "important")
            {
                for w in &write_words {
                    assert!(
                        !last.starts_with(w),
                        "`{name}` is a read but its name starts with the write word `{w}`"
                    );
                }
            }
        }
    }
}

/// Results the docs table describes without the key the answer wraps them in, keyed results
/// and misspelt result keys ([results.wrapped], [results.keyed], [results.renamed] found by
/// comparing the pages' response examples with the generated result types); `start` of a
/// list method is a number even where the page types it `string`.
#[test]
fn wrapped_keyed_and_renamed_results() {
    let mut cx = cx();
    let r = &mut cx.settings.results;
    r.wrapped.insert(
        "x.thing.list".into(),
        import::settings::Wrapped {
            key: "things".into(),
            list: true,
        },
    );
    r.wrapped.insert(
        "x.thing.get".into(),
        import::settings::Wrapped {
            key: "thing".into(),
            list: false,
        },
    );
    r.keyed.push("x.thing.counters".into());
    r.renamed.insert(
        "x.row.set".into(),
        BTreeMap::from([("row".to_owned(), "rows".to_owned())]),
    );
    let fields = r#"[{"name": "id", "type": "integer"}, {"name": "title", "type": "string"}]"#;
    let list = build(
        &cx,
        &entry(&format!(
            r#"{{"method": "x.thing.list", "api_version": "v2", "scope": "x", "doc": "a/b.md",
                "params": [{{"name": "start", "type": "string"}}],
                "result": {{"type": "object", "example_kind": "object", "fields": {fields}}}}}"#
        )),
    );
    assert_eq!(list.result, "XThingListResult");
    assert_eq!(
        ty(&list, "XThingListResult").fields[0].ty,
        "list<XThingListResultThings>"
    );
    assert_eq!(ty(&list, "XThingListResultThings").fields.len(), 2);
    assert_eq!(list.list.as_ref().unwrap().items, "things");
    assert_eq!(param(&list, "start").ty, "integer");

    let get = build(
        &cx,
        &entry(&format!(
            r#"{{"method": "x.thing.get", "api_version": "v2", "scope": "x", "doc": "a/b.md",
                "result": {{"type": "object", "fields": {fields}}}}}"#
        )),
    );
    assert_eq!(
        ty(&get, "XThingGetResult").fields[0].ty,
        "XThingGetResultThing"
    );

    let keyed = build(
        &cx,
        &entry(&format!(
            r#"{{"method": "x.thing.counters", "api_version": "v2", "scope": "x", "doc": "a/b.md",
                "result": {{"type": "object", "fields": {fields}}}}}"#
        )),
    );
    assert_eq!(keyed.result, "map<XThingCountersResultValue>");

    let renamed = build(
        &cx,
        &entry(
            r#"{"method": "x.row.set", "api_version": "v2", "scope": "x", "doc": "a/b.md",
                "result": {"type": "object", "fields": [{"name": "row", "type": "object[]"}]}}"#,
        ),
    );
    assert_eq!(ty(&renamed, "XRowSetResult").fields[0].name, "rows");
}

/// A list method's `order` typed `string` by its page is the direction next to `sort`
/// (department.get, user.search, voximplant.*.get), not a `{"FIELD": "ASC"}` map, and the
/// list model names no order param then; alternatives the page asks one of while marking
/// each required (`IBLOCK_ID` or `IBLOCK_CODE`) are optional with a `requires`.
#[test]
fn direction_orders_and_one_of_alternatives() {
    let m = build(
        &cx(),
        &entry(
            r#"{"method": "x.thing.list", "api_version": "v2", "scope": "x", "doc": "a/b.md",
                "params": [
                  {"name": "sort", "type": "string"}, {"name": "order", "type": "string"},
                  {"name": "start", "type": "integer"}
                ], "result": {"type": "array"}}"#,
        ),
    );
    assert_eq!(param(&m, "order").ty, "string");
    assert_eq!(m.list.as_ref().unwrap().order.as_deref(), Some(""));
    let maps = build(
        &cx(),
        &entry(
            r#"{"method": "x.thing.list", "api_version": "v2", "scope": "x", "doc": "a/b.md",
                "params": [{"name": "order", "type": "object"}, {"name": "start", "type": "integer"}],
                "result": {"type": "array"}}"#,
        ),
    );
    assert_eq!(param(&maps, "order").ty, "map<string>");
    assert_eq!(maps.list.as_ref().unwrap().order.as_deref(), Some("order"));

    let m = build(
        &cx(),
        &entry(
            r#"{"method": "x.element.delete", "api_version": "v2", "scope": "x", "doc": "a/b.md",
                "params": [
                  {"name": "IBLOCK_TYPE_ID", "type": "string", "required": true},
                  {"name": "IBLOCK_ID", "type": "integer", "required": true},
                  {"name": "IBLOCK_CODE", "type": "string", "required": true},
                  {"name": "ELEMENT_ID", "type": "integer", "required": true},
                  {"name": "ELEMENT_CODE", "type": "string", "required": true}
                ], "result": {"type": "boolean"}}"#,
        ),
    );
    assert!(param(&m, "IBLOCK_TYPE_ID").required);
    for p in ["IBLOCK_ID", "IBLOCK_CODE", "ELEMENT_ID", "ELEMENT_CODE"] {
        assert!(!param(&m, p).required, "{p}");
    }
    assert_eq!(m.requires.len(), 4);
    assert_eq!(m.requires[1], ["IBLOCK_ID", "ELEMENT_CODE"]);
    // Only one of them in the method, or not both required: nothing changes.
    let m = build(
        &cx(),
        &entry(
            r#"{"method": "x.element.add", "api_version": "v2", "scope": "x", "doc": "a/b.md",
                "params": [{"name": "ELEMENT_CODE", "type": "string", "required": true}],
                "result": {"type": "integer"}}"#,
        ),
    );
    assert!(param(&m, "ELEMENT_CODE").required);
    assert!(m.requires.is_empty());
}

/// `params.IMPORT` of crm.contact.add: the page lists only `Y` ("to pass No, omit it"); the
/// portal compares with `Y`, so a JSON `true` would not switch import mode on.
#[test]
fn a_flag_documented_by_its_y_value_alone_is_yn() {
    let cx = Context::load(&repo()).unwrap();
    let catalog = import::load_catalog(&repo().join("codegen/catalog/methods.json")).unwrap();
    let e = catalog
        .iter()
        .find(|e| e.method == "crm.contact.add")
        .unwrap();
    let m = build(&cx, e);
    let params = ty(&m, "CrmContactAddParams");
    let import = params.fields.iter().find(|f| f.name == "IMPORT").unwrap();
    assert_eq!(import.ty, "yn");
}
