//! `bitrix24-codegen`: command-line tools for the spec. One subcommand so far:
//!
//! ```text
//! bitrix24-codegen import [--catalog FILE] [--docs FILE] [--settings FILE] [--root FILE]
//!                         [--out DIR] [--report FILE] [--check]
//! ```
//!
//! Run from the repository root: `cargo run -p bitrix24-codegen --features import -- import`.

use std::path::PathBuf;
use std::process::ExitCode;

use bitrix24_codegen::import::{self, Options};

const USAGE: &str = "usage: bitrix24-codegen import [options]

Turns codegen/catalog/methods.json into the generated spec files methods/<group>.toml.

options (paths relative to the working directory; defaults for the repository root):
  --catalog FILE    method catalog           [codegen/catalog/methods.json]
  --docs FILE       docs texts               [codegen/catalog/docs.json]
  --settings FILE   importer settings        [methods/import.toml]
  --root FILE       root spec (hand entries) [methods.toml]
  --out DIR         output directory         [methods]
  --report FILE     report                   [<out>/IMPORT_REPORT.md]
  --check           write nothing; fail if any output file would change
  -h, --help        this text";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("import") => {}
        Some("-h" | "--help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown subcommand `{other}`")),
    }
    let mut o = Options::default();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .map(PathBuf::from)
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match a.as_str() {
            "--catalog" => o.catalog = value(a)?,
            "--docs" => o.docs = value(a)?,
            "--settings" => o.settings = value(a)?,
            "--root" => o.root = value(a)?,
            "--out" => o.out_dir = value(a)?,
            "--report" => o.report = Some(value(a)?),
            "--check" => o.check = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(msg) => {
            if msg.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match import::run(&opts) {
        Ok(out) => {
            let imp = &out.import;
            if opts.check {
                println!(
                    "up to date: {} methods in {} group files; {} catalog methods are written by hand",
                    imp.methods.len(),
                    imp.files.len(),
                    imp.hand_covered.len()
                );
            } else {
                println!(
                    "imported {} methods into {} group files; {} files written, {} unchanged, {} removed; {} catalog methods are written by hand",
                    imp.methods.len(),
                    imp.files.len(),
                    out.written.len(),
                    out.unchanged.len(),
                    out.removed.len(),
                    imp.hand_covered.len(),
                );
            }
            if !imp.not_included.is_empty() {
                println!(
                    "note: {} generated files are not in the root `include` yet (see the report)",
                    imp.not_included.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
