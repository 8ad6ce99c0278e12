//! The generated code for the obstacle-course spec is committed in
//! `tests/snapshots/obstacle.rs` so that reviewers can read it; this test fails when the
//! generator's output changes. Update with `UPDATE_SNAPSHOTS=1 cargo test -p bitrix24-codegen`.
//! The snapshot is also compiled and exercised inside the `bitrix24` crate's tests.

use std::path::Path;

#[test]
fn obstacle_snapshot_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let spec = std::fs::read_to_string(dir.join("fixtures/obstacle.toml")).unwrap();
    let generated =
        bitrix24_codegen::generate("obstacle.toml", &spec).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("snapshots/obstacle.rs");
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let spec = std::fs::read_to_string(dir.join("fixtures/obstacle.toml")).unwrap();
    let generated = bitrix24_codegen::generate("obstacle.toml", &spec).unwrap();
    for expected in [
        "pub r#type: ::core::option::Option<::std::string::String>",
        "pub self_: ",
        "pub crate_: ",
        "pub send_value: ",
        "pub new_value: ",
        "pub uf_crm_1476661442: ",
        "pub entity_type_id: ",
        "pub _1st: ",
        "pub id_lower: ",
        "pub order_lower: ",
        "rename = \"UF_CRM_1476661442\"",
        "rename = \"entityTypeId\"",
        "OtherValue,",
        "V2,",
        "pub struct ObstacleV2ChatMessageSend<C = ()>",
        "pub fn v2_chat_message_send(",
        "pub fn obstacle_type(",
        "pub fn new(&self",
        "pub mod obstacle_type {",
    ] {
        assert!(
            generated.contains(expected),
            "generated code lacks `{expected}`"
        );
    }
}
