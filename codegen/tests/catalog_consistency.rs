//! Holds the final spec (generated group files, hand entries, overrides) against the method
//! catalog: every classic catalog method is in the spec, and every top-level param has the
//! name, required flag and wire kind of type (string, number, flag, object, array) the importer
//! maps from the catalog, unless a `why` in the spec says why not. Refinements inside one wire
//! kind (`integer` -> `id`, `string` -> an enum, `object` -> a named struct) and anything
//! where the catalog gives no type (`json`) need no `why`.
#![cfg(feature = "import")]

use std::collections::BTreeSet;
use std::path::Path;

use bitrix24_codegen::import;
use bitrix24_codegen::spec::{self, TypeKind};

#[test]
fn the_spec_matches_the_catalog_unless_a_why_says_otherwise() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = spec::read_files(&repo.join("methods.toml")).unwrap_or_else(|e| panic!("{e}"));
    let spec = spec::parse_files(&files).unwrap_or_else(|e| panic!("{e}"));
    let cx = import::Context::load(&repo).unwrap();
    let catalog = import::load_catalog(&repo.join("codegen/catalog/methods.json")).unwrap();
    let enums: BTreeSet<String> = spec
        .types
        .iter()
        .filter(|t| matches!(t.kind, TypeKind::Enum(_)))
        .map(|t| t.name.clone())
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut justified = 0;
    for entry in catalog.iter().filter(|e| e.api_version == "v2") {
        let Some(m) = spec
            .methods
            .iter()
            .find(|m| m.wire.eq_ignore_ascii_case(&entry.method))
        else {
            problems.push(format!("{}: in the catalog, not in the spec", entry.method));
            continue;
        };
        checked += 1;
        let expected: Vec<import::ExpectedParam> = import::expected(entry, &cx)
            .into_iter()
            .filter(|p| !p.path.contains('.'))
            .collect();
        let mut differs = |what: String, why: Option<&String>| match why.or(m.why.as_ref()) {
            Some(_) => justified += 1,
            None => problems.push(format!(
                "{} ({}): {what}, and no `why` says why",
                m.wire, m.file
            )),
        };
        for x in &expected {
            match m.params.iter().find(|p| p.wire == x.path) {
                None => differs(format!("catalog param `{}` is missing", x.path), None),
                Some(p) => {
                    let (want, got) = (
                        import::wire_kind(&x.ty, &enums),
                        import::wire_kind(&p.ty_text, &enums),
                    );
                    if want != "any" && want != got {
                        differs(
                            format!(
                                "param `{}` is `{}` ({got}), the catalog's `{}` is {want}",
                                p.wire, p.ty_text, x.ty
                            ),
                            p.why.as_ref(),
                        );
                    }
                    if p.required != x.required {
                        differs(
                            format!(
                                "param `{}` has required = {}, the catalog {}",
                                p.wire, p.required, x.required
                            ),
                            p.why.as_ref(),
                        );
                    }
                }
            }
        }
        for p in &m.params {
            if !expected.iter().any(|x| x.path == p.wire) {
                differs(
                    format!("param `{}` is not in the catalog", p.wire),
                    p.why.as_ref(),
                );
            }
        }
    }
    for m in &spec.methods {
        let known = catalog
            .iter()
            .any(|e| e.api_version == "v2" && e.method.eq_ignore_ascii_case(&m.wire));
        if !known && m.why.is_none() {
            problems.push(format!(
                "{} ({}): not in the catalog, and no `why`",
                m.wire, m.file
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences from the catalog lack a `why`:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(checked, 1565, "every classic catalog method is in the spec");
    eprintln!("{checked} methods checked, {justified} differences justified by a `why`");
}
