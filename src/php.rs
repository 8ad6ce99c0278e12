//! PHP-style form encoding, the one implementation shared by the client, events and the fake
//! portal: [`encode`] writes what PHP's `http_build_query` writes, [`decode`] reads what PHP's
//! `parse_str` reads (PROTOCOL.md 2.3, 7.1).
//!
//! Bitrix24 delivers events as `application/x-www-form-urlencoded` bodies with bracket keys
//! (`data[PARAMS][MESSAGE]=hi`) and every scalar a string; `batch` commands carry their
//! parameters the same way (`crm.deal.list?filter[>ID]=5&select[]=ID`).
//!
//! The decoded tree is a [`serde_json::Value`]: maps are objects in input order, and a map
//! whose keys are exactly `0, 1, 2, ...` in order becomes an array (as PHP's `json_encode`
//! would print it). Every leaf is a string.

use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::fmt;

/// Bounds on what [`decode`] accepts, so that a hostile body cannot use unbounded memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest body, in bytes (default 1 MiB).
    pub max_bytes: usize,
    /// Deepest bracket nesting (`a[b][c]` is depth 3; default 32; PHP's own is 64).
    pub max_depth: usize,
    /// Most `key=value` pairs (default 10 000).
    pub max_pairs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_depth: 32,
            max_pairs: 10_000,
        }
    }
}

/// Why a form body was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormError {
    /// The body is larger than [`Limits::max_bytes`].
    TooLarge {
        /// The body's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A key nests deeper than [`Limits::max_depth`].
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// More pairs than [`Limits::max_pairs`].
    TooManyPairs {
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::TooLarge { size, max } => {
                write!(f, "form body of {size} bytes is over the {max}-byte limit")
            }
            FormError::TooDeep { max } => write!(f, "form key nests deeper than {max} levels"),
            FormError::TooManyPairs { max } => write!(f, "form body has more than {max} pairs"),
        }
    }
}

impl std::error::Error for FormError {}

/// A PHP array while it is being built: ordered keys plus the next automatic index.
#[derive(Default)]
struct Array {
    entries: IndexMap<String, Node>,
    next_index: u64,
}

enum Node {
    Leaf(String),
    Array(Array),
}

impl Array {
    /// The entry for `key` (`None` = `[]`, append), turned into an array if `nested`.
    fn slot(&mut self, key: Option<&str>) -> &mut Node {
        let key = match key {
            Some(k) => {
                if let Ok(i) = k.parse::<u64>() {
                    if i.to_string() == k && i >= self.next_index {
                        self.next_index = i.saturating_add(1);
                    }
                }
                k.to_owned()
            }
            None => {
                let k = self.next_index.to_string();
                self.next_index = self.next_index.saturating_add(1);
                k
            }
        };
        self.entries
            .entry(key)
            .or_insert_with(|| Node::Leaf(String::new()))
    }

    fn into_value(self) -> Value {
        let is_list = self
            .entries
            .keys()
            .enumerate()
            .all(|(i, k)| *k == i.to_string());
        if is_list && !self.entries.is_empty() {
            Value::Array(self.entries.into_values().map(Node::into_value).collect())
        } else {
            let mut map = Map::with_capacity(self.entries.len());
            for (k, v) in self.entries {
                map.insert(k, v.into_value());
            }
            Value::Object(map)
        }
    }
}

impl Node {
    fn into_value(self) -> Value {
        match self {
            Node::Leaf(s) => Value::String(s),
            Node::Array(a) => a.into_value(),
        }
    }

    fn as_array(&mut self) -> &mut Array {
        if let Node::Leaf(_) = self {
            // PHP replaces a scalar by an array when a later key nests below it.
            *self = Node::Array(Array::default());
        }
        match self {
            Node::Array(a) => a,
            Node::Leaf(_) => unreachable!("just replaced"),
        }
    }
}

/// Splits `name[a][b][]` into `name` and `[Some("a"), Some("b"), None]`. A key whose
/// brackets do not close is taken literally, as PHP does for the unmatched part.
fn split_key(key: &str) -> (&str, Vec<Option<&str>>) {
    let Some(open) = key.find('[') else {
        return (key, Vec::new());
    };
    if open == 0 {
        return (key, Vec::new());
    }
    let (name, mut rest) = key.split_at(open);
    let mut segments = Vec::new();
    while let Some(after) = rest.strip_prefix('[') {
        let Some(close) = after.find(']') else {
            if segments.is_empty() {
                return (key, Vec::new());
            }
            break;
        };
        let seg = &after[..close];
        segments.push(if seg.is_empty() { None } else { Some(seg) });
        rest = &after[close + 1..];
    }
    (name, segments)
}

/// Decodes an `application/x-www-form-urlencoded` body with PHP bracket keys into a tree
/// (an object at the top), as PHP's `parse_str` does: later duplicates win, `a[]` appends,
/// `+` is a space. Invalid percent-escapes and UTF-8 are kept lossily, never an error.
///
/// # Errors
/// [`FormError`] when the body breaks one of `limits`.
pub fn decode(body: &[u8], limits: Limits) -> Result<Value, FormError> {
    if body.len() > limits.max_bytes {
        return Err(FormError::TooLarge {
            size: body.len(),
            max: limits.max_bytes,
        });
    }
    let mut root = Array::default();
    for (count, (key, value)) in url::form_urlencoded::parse(body).enumerate() {
        if count >= limits.max_pairs {
            return Err(FormError::TooManyPairs {
                max: limits.max_pairs,
            });
        }
        if key.is_empty() {
            continue;
        }
        let (name, segments) = split_key(&key);
        if segments.len() + 1 > limits.max_depth {
            return Err(FormError::TooDeep {
                max: limits.max_depth,
            });
        }
        let mut node = root.slot(Some(name));
        for seg in segments {
            node = node.as_array().slot(seg);
        }
        *node = Node::Leaf(value.into_owned());
    }
    Ok(match root.into_value() {
        Value::Array(items) => {
            // Top-level keys "0", "1"... stay an object: the top is a set of named fields.
            Value::Object(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v))
                    .collect(),
            )
        }
        other => other,
    })
}

/// PHP's `urlencode`: letters, digits and `-_.` stay, space is `+`, everything else `%XX`.
fn urlencode(text: &str, out: &mut String) {
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
}

/// The `key=value` pairs PHP's `http_build_query` makes of `value`, not yet percent-encoded:
/// objects and arrays nest as `key[sub]` / `key[0]`, `true`/`false` become `1`/`0`, `null`
/// and empty arrays are left out. A scalar at the top has no key and gives no pairs.
pub fn pairs(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Null => {}
            Value::Bool(b) => out.push((prefix.to_owned(), if *b { "1" } else { "0" }.to_owned())),
            Value::Number(n) => out.push((prefix.to_owned(), n.to_string())),
            Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    walk(&format!("{prefix}[{k}]"), v, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                walk(k, v, &mut out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(&i.to_string(), v, &mut out);
            }
        }
        _ => {}
    }
    out
}

/// Encodes `value` as PHP's `http_build_query` does (see [`pairs`]), percent-encoding with
/// PHP's `urlencode` (brackets as `%5B`/`%5D`, space as `+`).
pub fn encode(value: &Value) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs(value).iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        urlencode(k, &mut out);
        out.push('=');
        urlencode(v, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/shared/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn decodes_the_event_fixture_into_the_documented_tree() {
        let body = fixture("event-onimbotmessageadd.form-urlencoded.txt");
        let tree = decode(body.trim_end().as_bytes(), Limits::default()).unwrap();
        let expected: Value =
            serde_json::from_str(&fixture("event-onimbotmessageadd.as-json.json")).unwrap();
        assert_eq!(tree, expected);
        assert_eq!(tree["data"]["BOT"]["41"]["AUTH"]["user_id"], "41");
    }

    #[test]
    fn encodes_the_tree_back_byte_for_byte() {
        let tree: Value =
            serde_json::from_str(&fixture("event-onimbotmessageadd.as-json.json")).unwrap();
        let body = fixture("event-onimbotmessageadd.form-urlencoded.txt");
        assert_eq!(encode(&tree), body.trim_end());
    }

    #[test]
    fn php_semantics() {
        let t = decode(
            b"a[]=x&a[]=y&b[5]=p&b[]=q&c=1&c=2&d=s&d[k]=v&e+f=g%20h&s[=1",
            Limits::default(),
        )
        .unwrap();
        assert_eq!(
            t,
            json!({"a": ["x", "y"], "b": {"5": "p", "6": "q"}, "c": "2", "d": {"k": "v"}, "e f": "g h", "s[": "1"})
        );
        assert_eq!(
            encode(&json!({"select": ["ID", "TITLE"], "filter": {">ID": 5}, "x": null, "y": true})),
            "select%5B0%5D=ID&select%5B1%5D=TITLE&filter%5B%3EID%5D=5&y=1"
        );
    }

    #[test]
    fn limits_are_typed_errors() {
        let small = Limits {
            max_bytes: 10,
            max_depth: 3,
            max_pairs: 2,
        };
        assert_eq!(
            decode(b"a=12345678901", small),
            Err(FormError::TooLarge { size: 13, max: 10 })
        );
        assert_eq!(
            decode(
                b"a[b][c][d]=1",
                Limits {
                    max_bytes: 100,
                    ..small
                }
            ),
            Err(FormError::TooDeep { max: 3 })
        );
        assert_eq!(
            decode(
                b"a=1&b=2&c=3",
                Limits {
                    max_bytes: 100,
                    ..small
                }
            ),
            Err(FormError::TooManyPairs { max: 2 })
        );
        // Garbage is data, not an error.
        assert!(decode(b"%ZZ=%FF&&=&[x]=1", Limits::default()).is_ok());
    }
}
