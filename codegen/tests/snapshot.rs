//! The generated code for the obstacle-course spec is committed in
//! `tests/snapshots/obstacle.rs` so that reviewers can read it; this test fails when the
//! generator's output changes. Update with `UPDATE_SNAPSHOTS=1 cargo test -p bitrix24-codegen`.
//! The snapshot is also compiled and exercised inside the `bitrix24` crate's tests.

use std::path::Path;

use bitrix24_codegen::{Options, SpecFile};

fn generate() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let text = std::fs::read_to_string(dir.join("fixtures/obstacle.toml")).unwrap();
    let files = [SpecFile {
        name: "obstacle.toml".into(),
        text,
    }];
    bitrix24_codegen::generate_files(&files, &Options::for_runtime(None))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn obstacle_snapshot_is_current() {
    let generated = generate();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/obstacle.rs");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "tests/snapshots/obstacle.rs is stale; rerun with UPDATE_SNAPSHOTS=1 and review the diff"
    );
}

#[test]
fn obstacle_names_are_sanitized() {
    let generated = generate();
    for expected in [
        "pub r#type: ::core::option::Option<::std::string::String>",
        "pub self_: ",
        "pub crate_: ",
        "pub send_value: ",
        "pub new_value: ",
        "pub field_value: ",
        "pub uf_crm_1476661442: ",
        "pub entity_type_id: ",
        "pub _1st: ",
        "pub id_lower: ",
        "pub order_lower: ",
        "pub fn field_value(",
        "pub fn param(",
        "pub fn timeout_value(",
        "pub fn stream_value(",
        "impl<C> rt::ListMethod for ObstacleItemList<C> {\n        type Item = super::types::ObstacleOnly;",
        "impl<C> rt::ListMethod for ObstacleTypeList<C> {\n        type Item = super::types::Obstacle;",
        "impl<C> rt::ListMethod for ObstacleEventsGet<C> {\n        type Item = rt::Value;",
        "pub fn stream(self) -> rt::ListStream<super::types::ObstacleOnly>",
        "OtherValue,",
        "V2,",
        "pub struct ObstacleV2ChatMessageSend<C = ()>",
        "pub fn v2_chat_message_send(",
        "pub fn obstacle_type(",
        "pub fn obstacle_events_get(",
        "pub fn new(&self",
        "pub mod obstacle_type {",
        ".requires(&[&[\"dialogId\"], &[\"fromUserId\", \"toUserId\"]])",
        ".list(rt::ListModel::new(\"events\").keys(\"FILTER\", \"\", \"\", \"START\"))",
        ".api(rt::ApiVersion::V3)",
        ".batch(false)",
        ".query_bool(rt::BoolForm::YesNo)",
        "rt::Access::ReadWithEffects",
    ] {
        assert!(
            generated.contains(expected),
            "generated code lacks `{expected}`"
        );
    }
    // A result doc that ends a sentence gets no second full stop.
    assert!(generated.contains("The obstacles. A list:"));
    assert!(!generated.contains(".. "), "a doubled full stop");
    // A type only read gets no builder; a type only sent gets no public fields.
    let only = generated.split("pub struct ObstacleOnly").nth(1).unwrap();
    let only = &only[..only.find("pub struct").unwrap_or(only.len())];
    assert!(!only.contains("impl rt::ToWire for ObstacleOnly"));
    assert!(generated.contains("pub struct ObstacleFields {\n        p: rt::Params,\n    }"));
}
