//! Generates the typed methods from `methods.toml` and the files it includes (see `codegen/`),
//! for the groups whose Cargo feature is on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bitrix24_codegen::{spec, Options, SpecErrors};

/// Reports each spec error once, as a Cargo error (`error: bitrix24@0.1.0: methods/crm.toml:..`),
/// which fails the build after the script ends.
fn fail(errors: SpecErrors) -> ! {
    for e in &errors.0 {
        println!("cargo::error={e}");
    }
    std::process::exit(0);
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let files = spec::read_files(Path::new("methods.toml")).unwrap_or_else(|e| fail(e));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.name);
    }
    let spec = spec::parse_files(&files).unwrap_or_else(|e| fail(e));
    // Cargo sets CARGO_FEATURE_<NAME> for every enabled feature, `full` included.
    let groups: BTreeSet<String> = spec
        .groups()
        .into_iter()
        .map(|(g, _)| g.to_owned())
        .filter(|g| std::env::var_os(format!("CARGO_FEATURE_{}", g.to_uppercase())).is_some())
        .collect();
    let code = bitrix24_codegen::render(&spec, &Options::for_runtime(Some(groups)));
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("methods.rs");
    if let Err(e) = bitrix24_codegen::write_if_changed(&out, &code) {
        eprintln!("cannot write {}: {e}", out.display());
        std::process::exit(1);
    }
}
