//! Lints over the real spec (`../methods.toml` and its includes): method names that read
//! like writes are not marked as reads (a read is retried, a write never is), and every
//! method group has its Cargo feature in the `bitrix24` crate, all of them in `full`; every
//! credential is typed `secret`; chat-bots 2.0 methods send booleans as `Y`/`N` in batch.

use std::collections::BTreeSet;
use std::path::Path;

use bitrix24_codegen::spec::{self, Access, Spec};

fn real_spec() -> Spec {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../methods.toml");
    let files = spec::read_files(&root).unwrap_or_else(|e| panic!("{e}"));
    spec::parse_files(&files).unwrap_or_else(|e| panic!("{e}"))
}

/// Words that make a method a write when they start one of its name's segments (after the
/// group): `crm.deal.add`, `imbot.v2.Chat.Message.send`, `task.elapseditem.isActionAllowed`
/// is not one (`is`).
const WRITE_WORDS: &[&str] = &[
    "add",
    "update",
    "delete",
    "del",
    "remove",
    "set",
    "send",
    "register",
    "unregister",
    "bind",
    "unbind",
    "start",
    "stop",
    "complete",
    "renew",
    "approve",
    "disapprove",
    "defer",
    "delegate",
    "close",
    "finish",
    "transfer",
    "join",
    "leave",
    "mute",
    "pin",
    "unpin",
    "hide",
    "show",
    "import",
    "create",
    "upload",
    "move",
    "copy",
    "rename",
    "restore",
    "mark",
    "attach",
    "detach",
    "answer",
    "vote",
    "like",
    "enable",
    "disable",
    "install",
    "uninstall",
    "publish",
    "unpublish",
    "clear",
    "reset",
    "save",
    "sort",
    "apply",
];

fn first_word(segment: &str) -> String {
    segment
        .chars()
        .take_while(|c| c.is_ascii_lowercase())
        .collect::<String>()
        .or_whole(segment)
}

trait OrWhole {
    fn or_whole(self, whole: &str) -> String;
}

impl OrWhole for String {
    fn or_whole(self, whole: &str) -> String {
        if self.is_empty() {
            // `Chat`, `Message`: a capitalised segment; its first word in lower case.
            let mut chars = whole.chars();
            let first: String = chars
                .next()
                .into_iter()
                .chain(chars.take_while(|c| c.is_ascii_lowercase()))
                .collect();
            first.to_ascii_lowercase()
        } else {
            self
        }
    }
}

fn writes_marked_as_reads(spec: &Spec) -> Vec<String> {
    let mut bad = Vec::new();
    for m in &spec.methods {
        if m.access != Access::Read {
            continue;
        }
        let last = m.wire.rsplit('.').next().unwrap_or("");
        let word = first_word(last);
        if WRITE_WORDS.contains(&word.as_str()) {
            bad.push(format!(
                "{} ({}) reads like a write (`{word}`)",
                m.wire, m.file
            ));
        }
    }
    bad
}

#[test]
fn no_write_is_marked_as_a_read() {
    let bad = writes_marked_as_reads(&real_spec());
    assert!(
        bad.is_empty(),
        "marked `access = \"read\"`:\n{}",
        bad.join("\n")
    );
}

#[test]
fn a_spec_of_your_own_cannot_reuse_a_group_of_the_crate() {
    let own = "[[method]]\nname = \"user.current\"\nscope = \"user\"\naccess = \"read\"\nresult = \"json\"\n";
    let e = bitrix24_codegen::generate("my_methods.toml", own).unwrap_err();
    assert_eq!(
        e.to_string(),
        "my_methods.toml:2:8: method `user.current`: group `user` is a group of the bitrix24 crate: its own `client.user()` would be called instead of this spec's (set `group = \"...\"` to a name of your own)"
    );
    let renamed = own.replace("scope = ", "group = \"me\"\nscope = ");
    assert!(bitrix24_codegen::generate("my_methods.toml", &renamed).is_ok());
}

#[test]
fn the_lint_catches_writes_marked_as_reads() {
    assert_eq!(first_word("add"), "add");
    assert_eq!(first_word("getFields"), "get");
    assert_eq!(first_word("Send"), "send");
    assert_eq!(first_word("isActionAllowed"), "is");
    let text = r#"
[[method]]
name = "crm.deal.add"
scope = "crm"
access = "read"
result = "id"

[[method]]
name = "imbot.v2.Chat.Message.send"
scope = "imbot"
access = "read"
result = "json"

[[method]]
name = "crm.deal.get"
scope = "crm"
access = "read"
result = "json"
"#;
    let spec = spec::parse("lint.toml", text).unwrap();
    let bad = writes_marked_as_reads(&spec);
    assert_eq!(bad.len(), 2, "{bad:?}");
}

#[test]
fn every_group_has_its_cargo_feature_and_full_has_them_all() {
    let spec = real_spec();
    let groups: BTreeSet<String> = spec.groups().iter().map(|(g, _)| g.to_string()).collect();
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .unwrap();
    let features = manifest.split("[features]").nth(1).unwrap();
    let features = features.split("\n[").next().unwrap();
    let declared: BTreeSet<String> = features
        .lines()
        .filter_map(|l| l.split_once(" = []"))
        .map(|(name, _)| name.trim().to_owned())
        .collect();
    assert_eq!(declared, groups, "one `<group> = []` feature per group");
    let full = features.split("full = [").nth(1).unwrap();
    let full = &full[..full.find(']').unwrap()];
    let in_full: BTreeSet<String> = full
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(in_full, groups, "`full` enables every group");
    let known: BTreeSet<String> = bitrix24_codegen::RUNTIME_GROUPS
        .iter()
        .map(|g| g.to_string())
        .collect();
    assert_eq!(
        known, groups,
        "bitrix24_codegen::RUNTIME_GROUPS lists the crate's groups"
    );
    assert_eq!(groups.len(), 46);
    assert_eq!(spec.methods.len(), 1565);
}

/// Whether a wire name carries a credential: anything ending in `token`, a password, a
/// secret, `HASH` (the IFRAME signing secret of `imbot.app.register`) and `CLIENT_ID` (the
/// webhook caller's bot/app credential of classic `imbot.*`, `im.notify.*`,
/// `imopenlines.*`: whoever has it with the webhook acts as the bot). Not secret: colour and
/// paging tokens, the `SMTP_PASSWORD_AS_IMAP` flag, the OAuth app's public `client_id`.
fn is_secret_name(wire: &str) -> bool {
    const NOT_SECRET: &[&str] = &[
        "bg_color_token",
        "sync_token",
        "page_token",
        "smtp_password_as_imap",
    ];
    let l = wire.to_ascii_lowercase();
    if NOT_SECRET.contains(&l.as_str()) {
        return false;
    }
    l.ends_with("token")
        || l.contains("password")
        || l.contains("secret")
        || wire == "HASH"
        || wire == "CLIENT_ID"
}

fn leaf(ty: &spec::Ty) -> &spec::Ty {
    match ty {
        spec::Ty::List(t) | spec::Ty::Map(t) => leaf(t),
        other => other,
    }
}

fn secrets_not_typed_secret(spec: &Spec) -> Vec<String> {
    let mut bad = Vec::new();
    let mut check = |owner: String, f: &spec::Field| {
        if is_secret_name(&f.wire) && *leaf(&f.ty) != spec::Ty::Secret {
            bad.push(format!("{owner}: `{}` is `{}`", f.wire, f.ty_text));
        }
    };
    for m in &spec.methods {
        for p in &m.params {
            check(format!("method {} ({})", m.wire, m.file), p);
        }
    }
    for t in &spec.types {
        if let spec::TypeKind::Struct(fields) = &t.kind {
            for f in fields {
                check(format!("type {}", t.name), f);
            }
        }
    }
    bad
}

/// Requests derive `Debug` and results print their fields: a credential typed `string` is
/// printed by `{:?}` (logs, panics, error reports); typed `secret` it shows `[redacted]`.
#[test]
fn every_credential_is_typed_secret() {
    let bad = secrets_not_typed_secret(&real_spec());
    assert!(
        bad.is_empty(),
        "{} credentials not typed `secret`:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn the_lint_catches_credentials_typed_string() {
    let text = r#"
[[method]]
name = "imbot.v2.Bot.update"
scope = "imbot"
access = "write"
result = "boolean"
param = [
  { name = "botToken", type = "string" },
  { name = "CLIENT_ID", type = "secret" },
  { name = "BG_COLOR_TOKEN", type = "string" },
  { name = "PASSWORDS", type = "list<string>" },
]
"#;
    let bad = secrets_not_typed_secret(&spec::parse("lint.toml", text).unwrap());
    assert_eq!(bad.len(), 2, "{bad:?}");
}

/// Chat-bots 2.0 take booleans as JSON `true`/`false` or `"Y"`/`"N"`
/// (chat-bots/chat-bots-v2/index.md); inside `batch` (a PHP query string) `Y`/`N` is the
/// form their docs name, so every `imbot.v2.*` method says `query_bool = "yn"`.
#[test]
fn chat_bots_v2_send_booleans_as_y_n_inside_batch() {
    let bad: Vec<String> = real_spec()
        .methods
        .iter()
        .filter(|m| m.wire.starts_with("imbot.v2.") && m.query_bool != spec::BoolForm::YesNo)
        .map(|m| format!("{} ({})", m.wire, m.file))
        .collect();
    assert!(
        bad.is_empty(),
        "without `query_bool = \"yn\"`:\n{}",
        bad.join("\n")
    );
}
