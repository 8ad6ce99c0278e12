//! The one sanitizer that turns Bitrix24 wire names into Rust identifiers.
//!
//! Rules (also in README.md, "Naming"):
//! - characters that cannot appear in an identifier (`.`, `-`, `[`, ` `...) separate words;
//! - `heck` converts case: fields, setters, functions and modules are `snake_case`
//!   (`entityTypeId` -> `entity_type_id`, `UF_CRM_1476661442` -> `uf_crm_1476661442`), types
//!   and enum variants `PascalCase` (`imbot.message.add` -> `ImbotMessageAdd`);
//! - a name that starts with a digit gets a `_` prefix (`_1c_field`), or a `V` prefix for
//!   types and variants (`V2`);
//! - Rust keywords become raw identifiers (`type` -> `r#type`), except those that cannot be
//!   raw (`self`, `super`, `crate`, `Self`), which get a `_` suffix;
//! - names that would clash with the generated API itself (`new`, `send`, `client`, `extra`,
//!   `into_future`, `field`, `p`, `retry`, `timeout`, `send_with_meta`, `stream`,
//!   `collect_all`, an enum variant `Other`) get a `_value` / `Value` suffix.
//!
//! The wire name itself is always kept verbatim in `#[serde(rename = "...")]`.

use heck::{ToSnakeCase, ToUpperCamelCase};

/// Keywords of every Rust edition (strict and reserved), all of which can be raw identifiers.
const RAW_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static",
    "struct", "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn",
    "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized",
    "virtual", "yield", "try", "gen",
];

/// Keywords that cannot be raw identifiers.
const NON_RAW_KEYWORDS: &[&str] = &["self", "super", "crate", "Self", "_"];

/// Field and setter names the generated API already uses for itself (`p` is the local the
/// generated constructors fill: a constructor argument of that name would shadow it;
/// `stream` and `collect_all` are the methods of list requests).
const RESERVED_MEMBERS: &[&str] = &[
    "p",
    "new",
    "send",
    "client",
    "extra",
    "into_future",
    "field",
    "retry",
    "timeout",
    "send_with_meta",
    "stream",
    "collect_all",
];

/// A Rust identifier chosen for a wire name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RustName {
    /// The identifier without any `r#` prefix (`type`, `entity_type_id`).
    pub text: String,
    /// Whether it must be written as a raw identifier (`r#type`).
    pub raw: bool,
}

impl RustName {
    /// The identifier as it is written in source (`r#type` for raw identifiers).
    pub fn source(&self) -> String {
        if self.raw {
            format!("r#{}", self.text)
        } else {
            self.text.clone()
        }
    }

    /// A `proc_macro2::Ident` for this name.
    pub fn ident(&self) -> proc_macro2::Ident {
        if self.raw {
            proc_macro2::Ident::new_raw(&self.text, proc_macro2::Span::call_site())
        } else {
            proc_macro2::Ident::new(&self.text, proc_macro2::Span::call_site())
        }
    }
}

/// Replaces every character that cannot be part of an identifier by `_`, so that heck sees
/// word boundaries there.
fn words(wire: &str) -> String {
    wire.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The `snake_case` name used for struct fields, setters and group functions.
///
/// Returns `None` when nothing usable is left (a wire name made only of symbols).
pub fn snake(wire: &str) -> Option<RustName> {
    let mut s = words(wire).to_snake_case();
    if s.is_empty() || s.chars().all(|c| c == '_') {
        return None;
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    Some(keyword_safe(s))
}

/// A `snake_case` name for a struct member: [`snake`] plus a `_value` suffix for names the
/// generated API reserves (`new`, `send`, `client`, `extra`, `into_future`, `stream`, ...).
pub fn member(wire: &str) -> Option<RustName> {
    let name = snake(wire)?;
    if RESERVED_MEMBERS.contains(&name.text.as_str()) {
        return Some(RustName {
            text: format!("{}_value", name.text),
            raw: false,
        });
    }
    Some(name)
}

/// A module name: `snake_case`, keywords get a `_` suffix (raw module names read badly).
pub fn module(wire: &str) -> Option<RustName> {
    let name = snake(wire)?;
    if name.raw {
        return Some(RustName {
            text: format!("{}_", name.text),
            raw: false,
        });
    }
    Some(name)
}

/// The `PascalCase` name used for types and enum variants.
pub fn pascal(wire: &str) -> Option<RustName> {
    let mut s = words(wire).to_upper_camel_case();
    s.retain(|c| c != '_');
    if s.is_empty() {
        return None;
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'V');
    }
    if s == "Self" {
        s.push('_');
    }
    Some(RustName {
        text: s,
        raw: false,
    })
}

/// The variant name for an enum wire value; `Other` is kept for the catch-all variant.
pub fn variant(wire: &str) -> Option<RustName> {
    let name = pascal(wire)?;
    if name.text == "Other" {
        return Some(RustName {
            text: "OtherValue".into(),
            raw: false,
        });
    }
    Some(name)
}

/// The name of the `Option` setter for a member: `set_` + the name without leading `_`
/// (`set_title`, `set_1st` for `_1st`, `set_type` for `r#type`).
pub fn setter(member: &RustName) -> String {
    format!("set_{}", member.text.trim_start_matches('_'))
}

fn keyword_safe(s: String) -> RustName {
    if NON_RAW_KEYWORDS.contains(&s.as_str()) {
        RustName {
            text: format!("{s}_"),
            raw: false,
        }
    } else if RAW_KEYWORDS.contains(&s.as_str()) {
        RustName { text: s, raw: true }
    } else {
        RustName {
            text: s,
            raw: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(w: &str) -> String {
        member(w).unwrap().source()
    }

    #[test]
    fn snake_names() {
        assert_eq!(m("entityTypeId"), "entity_type_id");
        assert_eq!(m("UF_CRM_1476661442"), "uf_crm_1476661442");
        assert_eq!(m("ID"), "id");
        assert_eq!(m("DIALOG_ID"), "dialog_id");
        assert_eq!(m("type"), "r#type");
        assert_eq!(m("TYPE"), "r#type");
        assert_eq!(m("self"), "self_");
        assert_eq!(m("crate"), "crate_");
        assert_eq!(m("1st"), "_1st");
        assert_eq!(m("new"), "new_value");
        assert_eq!(m("send"), "send_value");
        assert_eq!(m("p"), "p_value");
        assert_eq!(m("stream"), "stream_value");
        assert_eq!(m("collectAll"), "collect_all_value");
        assert_eq!(m("fields[TITLE]"), "fields_title");
        assert_eq!(m("gen"), "r#gen");
        assert!(member("[]").is_none());
    }

    #[test]
    fn pascal_names() {
        assert_eq!(pascal("imbot.message.add").unwrap().text, "ImbotMessageAdd");
        assert_eq!(
            pascal("imbot.v2.Chat.Message.send").unwrap().text,
            "ImbotV2ChatMessageSend"
        );
        assert_eq!(
            pascal("crm.item.productrow.set").unwrap().text,
            "CrmItemProductrowSet"
        );
        assert_eq!(variant("LIGHT_BLUE").unwrap().text, "LightBlue");
        assert_eq!(variant("2").unwrap().text, "V2");
        assert_eq!(variant("OTHER").unwrap().text, "OtherValue");
    }

    #[test]
    fn module_names() {
        assert_eq!(module("imbot").unwrap().source(), "imbot");
        assert_eq!(
            module("humanresources.hcmlink").unwrap().source(),
            "humanresources_hcmlink"
        );
        assert_eq!(module("type").unwrap().source(), "type_");
    }
}
