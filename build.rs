//! Generates the typed methods from `methods.toml` (see `codegen/`).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=methods.toml");
    println!("cargo:rerun-if-changed=build.rs");
    let text = std::fs::read_to_string("methods.toml").expect("read methods.toml");
    let code = match bitrix24_codegen::generate("methods.toml", &text) {
        Ok(code) => code,
        Err(errors) => {
            for e in &errors.0 {
                println!("cargo:warning={e}");
            }
            eprintln!("{errors}");
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("methods.rs");
    std::fs::write(&out, code).expect("write generated methods.rs");
}
