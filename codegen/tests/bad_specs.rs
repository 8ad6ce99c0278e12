//! Every spec under `tests/bad/` must fail with exactly the message in its first line
//! (`# expect: ...`), located as `methods.toml:LINE:COL`, and never panic.

use std::path::Path;

#[test]
fn bad_specs_fail_with_located_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `# expect:` first line", path.display()));
        let errors = match bitrix24_codegen::generate("methods.toml", &text) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e,
        };
        let first = errors
            .0
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert_eq!(first, expected, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} bad specs found");
}

#[test]
fn garbage_never_panics() {
    // Truncations and mutations of a valid spec must give errors or code, never a panic.
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/obstacle.toml"),
    )
    .unwrap();
    let bytes = good.as_bytes();
    for cut in (0..bytes.len()).step_by(7) {
        if let Ok(prefix) = std::str::from_utf8(&bytes[..cut]) {
            let _ = bitrix24_codegen::generate("methods.toml", prefix);
        }
    }
    for (from, to) in [
        ("id", "ID"),
        ("string", "strng"),
        ("list<", "list<<"),
        ("\"", ""),
        ("read", ""),
    ] {
        let _ = bitrix24_codegen::generate("methods.toml", &good.replacen(from, to, 3));
    }
}
