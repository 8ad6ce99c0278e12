//! PHP-style form encoding, the one implementation shared by the client, events and the fake
//! portal: [`encode`] writes what PHP's `http_build_query` writes, [`decode`] reads what PHP's
//! `parse_str` reads (PROTOCOL.md 2.3, 7.1).
//!
//! Bitrix24 delivers events as `application/x-www-form-urlencoded` bodies with bracket keys
//! (`data[PARAMS][MESSAGE]=hi`) and every scalar a string; `batch` commands carry their
//! parameters the same way (`crm.deal.list?filter[>ID]=5&select[]=ID`).
//!
//! The decoded tree is a [`serde_json::Value`]: a map whose keys are exactly `0, 1, 2, ...`
//! in order becomes an array (as PHP's `json_encode` would print it), any other map an
//! object; every leaf is a string.
//!
//! **Key order.** A PHP array keeps the order its keys were written in, and that order can
//! mean something (the sort priority of `order[...]`, the execution order of a batch's
//! `cmd[...]`). A `serde_json::Map` sorts its keys unless serde_json's `preserve_order`
//! feature is on, which this crate does not turn on for you. So [`decode`] and [`encode`]
//! keep the order only as far as the `Value` does; [`decode_ordered`] and
//! [`encode_ordered`] keep it always: they go through JSON text, whose order is the order
//! written.

use indexmap::IndexMap;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;
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

    /// Whether PHP's `json_encode` prints this array as a JSON list: keys `0, 1, 2, ...` in
    /// this order, and at least one.
    fn is_list(&self) -> bool {
        !self.entries.is_empty()
            && self
                .entries
                .keys()
                .enumerate()
                .all(|(i, k)| *k == i.to_string())
    }

    fn into_value(self) -> Value {
        if self.is_list() {
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

/// The tree in input order, as JSON: lists as arrays, other maps as objects.
impl Serialize for Array {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_list() {
            let mut seq = s.serialize_seq(Some(self.entries.len()))?;
            for v in self.entries.values() {
                seq.serialize_element(v)?;
            }
            seq.end()
        } else {
            self.serialize_as_map(s)
        }
    }
}

impl Array {
    fn serialize_as_map<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Leaf(text) => s.serialize_str(text),
            Node::Array(a) => a.serialize(s),
        }
    }
}

/// The top of a decoded body: always an object (named fields), even with keys `0, 1, ...`.
struct Top<'a>(&'a Array);

impl Serialize for Top<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_as_map(s)
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
/// The objects of the tree keep the input's key order only if serde_json's `preserve_order`
/// feature is on; [`decode_ordered`] keeps it always.
///
/// # Errors
/// [`FormError`] when the body breaks one of `limits`.
pub fn decode(body: &[u8], limits: Limits) -> Result<Value, FormError> {
    let root = parse(body, limits)?;
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

/// Decodes a form body like [`decode`], as JSON text that keeps the order of every key as
/// written (PHP arrays are ordered maps): deserialize it into a type that keeps order, or
/// read it with [`encode_ordered`]. `decode_ordered(body)` parsed into a `Value` equals
/// `decode(body)`.
///
/// ```
/// use bitrix24::php::{decode_ordered, Limits};
/// let tree = decode_ordered(b"cmd[b]=user.current&cmd[a]=profile&halt=0", Limits::default())?;
/// assert_eq!(tree.get(), r#"{"cmd":{"b":"user.current","a":"profile"},"halt":"0"}"#);
/// # Ok::<(), bitrix24::php::FormError>(())
/// ```
///
/// # Errors
/// [`FormError`] when the body breaks one of `limits`.
pub fn decode_ordered(body: &[u8], limits: Limits) -> Result<Box<RawValue>, FormError> {
    let root = parse(body, limits)?;
    let text = serde_json::to_string(&Top(&root)).unwrap_or_else(|_| "{}".to_owned());
    Ok(RawValue::from_string(text).unwrap_or_else(|_| empty_object()))
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("`{}` is JSON")
}

/// The ordered tree of a form body, as PHP's `parse_str` builds it.
fn parse(body: &[u8], limits: Limits) -> Result<Array, FormError> {
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
    Ok(root)
}

/// PHP's `urlencode`: letters, digits and `-_.` stay, space is `+`, everything else `%XX`.
pub(crate) fn urlencode(text: &str, out: &mut String) {
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
///
/// Objects are walked in the `Value`'s key order (sorted unless serde_json's
/// `preserve_order` feature is on); [`encode_ordered`] keeps any order.
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
/// PHP's `urlencode` (brackets as `%5B`/`%5D`, space as `+`). Objects go out in the
/// `Value`'s key order; use [`encode_ordered`] where the order matters.
pub fn encode(value: &Value) -> String {
    join(&pairs(value))
}

/// `k=v&k=v`, each side percent-encoded with PHP's `urlencode`.
fn join(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        urlencode(k, &mut out);
        out.push('=');
        urlencode(v, &mut out);
    }
    out
}

/// Encodes anything serializable as [`encode`] does, keeping the order in which it
/// serializes its map keys at every level: the order set for a [`Params`](crate::Params),
/// the field order of a struct, an `IndexMap`'s order, the text order of a
/// [`RawValue`] (what [`decode_ordered`] gives). So `order[...]` keeps its sort priority
/// and a batch's `cmd[...]` its execution order.
///
/// ```
/// use bitrix24::{Arg, Params};
/// let p = Params::new()
///     .with("order", Arg::map::<String, _, _, _>([("TITLE", "ASC"), ("ID", "DESC")]))
///     .with("select", Arg::list::<String, _>(["ID"]));
/// assert_eq!(
///     bitrix24::php::encode_ordered(&p)?,
///     "order%5BTITLE%5D=ASC&order%5BID%5D=DESC&select%5B0%5D=ID"
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// # Errors
/// A [`serde_json::Error`] when `value` does not serialize to JSON (a map with keys that are
/// not strings, a failing `Serialize` impl).
pub fn encode_ordered<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    encode_with(value, Opts::HTTP_BUILD_QUERY)
}

/// Encodes the parameters of one `batch` command (`method?query`), so that each value means
/// on the server what it means in a JSON body, as far as a query string can say it:
/// booleans as `bools` says, and `null`, `[]` and `{}` as `key=` (an empty value, which PHP's
/// `empty()` reads like the JSON value), never left out. The order set is kept at every level.
pub(crate) fn encode_command<T: Serialize + ?Sized>(
    value: &T,
    bools: crate::meta::BoolForm,
) -> Result<String, serde_json::Error> {
    encode_with(
        value,
        Opts {
            bools,
            keep_empty: true,
        },
    )
}

fn encode_with<T: Serialize + ?Sized>(value: &T, opts: Opts) -> Result<String, serde_json::Error> {
    let text = serde_json::to_string(value)?;
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_str(&text);
    Walk {
        prefix: None,
        out: &mut out,
        opts,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(join(&out))
}

/// How values without a query-string form are written.
#[derive(Clone, Copy)]
struct Opts {
    bools: crate::meta::BoolForm,
    /// `null`, `[]` and `{}` as `key=` instead of nothing.
    keep_empty: bool,
}

impl Opts {
    /// PHP's `http_build_query`: `1`/`0`, empties left out.
    const HTTP_BUILD_QUERY: Opts = Opts {
        bools: crate::meta::BoolForm::OneZero,
        keep_empty: false,
    };
}

/// Walks JSON text in order, pushing the `http_build_query` pairs of what it reads under
/// `prefix` (`None` at the top, where only maps and lists give pairs).
struct Walk<'a> {
    prefix: Option<String>,
    out: &'a mut Vec<(String, String)>,
    opts: Opts,
}

impl Walk<'_> {
    fn leaf(self, text: String) {
        if let Some(key) = self.prefix {
            self.out.push((key, text));
        }
    }

    fn key(&self, sub: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}[{sub}]"),
            None => sub.to_owned(),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        let text = match (self.opts.bools, b) {
            (crate::meta::BoolForm::OneZero, true) => "1",
            (crate::meta::BoolForm::OneZero, false) => "0",
            (crate::meta::BoolForm::YesNo, true) => "Y",
            (crate::meta::BoolForm::YesNo, false) => "N",
        };
        self.leaf(text.to_owned());
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<(), E> {
        self.leaf(n.to_string());
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        self.leaf(n.to_string());
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<(), E> {
        // As `Value`'s own number text, so that `encode` and `encode_ordered` agree.
        if let Some(n) = serde_json::Number::from_f64(n) {
            self.leaf(n.to_string());
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.leaf(s.to_owned());
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.opts.keep_empty {
            self.leaf(String::new());
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let key = self.key(&i.to_string());
            let walk = Walk {
                prefix: Some(key),
                out: &mut *self.out,
                opts: self.opts,
            };
            if seq.next_element_seed(walk)?.is_none() {
                break;
            }
            i += 1;
        }
        if i == 0 && self.opts.keep_empty {
            self.leaf(String::new());
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        while let Some(k) = map.next_key::<String>()? {
            let key = self.key(&k);
            map.next_value_seed(Walk {
                prefix: Some(key),
                out: &mut *self.out,
                opts: self.opts,
            })?;
            n += 1;
        }
        if n == 0 && self.opts.keep_empty {
            self.leaf(String::new());
        }
        Ok(())
    }
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
        // The ordered decoding is the same tree.
        let ordered = decode_ordered(body.trim_end().as_bytes(), Limits::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(ordered.get()).unwrap(),
            expected
        );
    }

    #[test]
    fn encodes_the_tree_back_byte_for_byte() {
        let body = fixture("event-onimbotmessageadd.form-urlencoded.txt");
        let body = body.trim_end();
        // The fixture's JSON text is in the form's order: encoding it in order gives the
        // form back exactly, and so does a round trip through the ordered decoding.
        let text = fixture("event-onimbotmessageadd.as-json.json");
        let raw = RawValue::from_string(text.clone()).unwrap();
        assert_eq!(encode_ordered(&raw).unwrap(), body);
        let ordered = decode_ordered(body.as_bytes(), Limits::default()).unwrap();
        assert_eq!(encode_ordered(&ordered).unwrap(), body);
        // Through a `Value`, the order is the `Value`'s, but the pairs are the same.
        let tree: Value = serde_json::from_str(&text).unwrap();
        let mut sent = pairs(&tree);
        let mut want: Vec<_> = url::form_urlencoded::parse(body.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        sent.sort();
        want.sort();
        assert_eq!(sent, want);
        assert_eq!(
            decode(encode(&tree).as_bytes(), Limits::default()).unwrap(),
            tree
        );
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
        let tree = json!({"select": ["ID", "TITLE"], "filter": {">ID": 5}, "x": null, "y": true});
        let want = "select%5B0%5D=ID&select%5B1%5D=TITLE&filter%5B%3EID%5D=5&y=1";
        let raw_text = RawValue::from_string(
            r#"{"select": ["ID", "TITLE"], "filter": {">ID": 5}, "x": null, "y": true}"#.into(),
        )
        .unwrap();
        assert_eq!(encode_ordered(&raw_text).unwrap(), want);
        // Whatever the Value's order, the same pairs go out.
        let back = decode(encode(&tree).as_bytes(), Limits::default()).unwrap();
        assert_eq!(back, decode(want.as_bytes(), Limits::default()).unwrap());
        assert_eq!(encode_ordered(&tree).unwrap().len(), want.len());
        // Scalars at the top give nothing; numbers read as `Value` prints them.
        assert_eq!(encode_ordered(&json!("x")).unwrap(), "");
        assert_eq!(encode_ordered(&[1.5, 2.0]).unwrap(), "0=1.5&1=2.0");
        assert_eq!(encode(&json!([1.5, 2.0])), "0=1.5&1=2.0");
    }

    #[test]
    fn ordered_decoding_keeps_the_order_written() {
        // Not alphabetical, with numeric keys out of order and a list in between.
        let body = b"cmd[zeta]=user.current&cmd[alpha]=profile&order[TITLE]=ASC&order[ID]=DESC\
                     &ids[10]=a&ids[2]=b&select[]=ID&select[]=NAME&halt=1";
        let tree = decode_ordered(body, Limits::default()).unwrap();
        assert_eq!(
            tree.get(),
            r#"{"cmd":{"zeta":"user.current","alpha":"profile"},"order":{"TITLE":"ASC","ID":"DESC"},"ids":{"10":"a","2":"b"},"select":["ID","NAME"],"halt":"1"}"#
        );
        // And back to the same form, in the same order.
        assert_eq!(
            encode_ordered(&tree).unwrap(),
            "cmd%5Bzeta%5D=user.current&cmd%5Balpha%5D=profile&order%5BTITLE%5D=ASC\
             &order%5BID%5D=DESC&ids%5B10%5D=a&ids%5B2%5D=b&select%5B0%5D=ID&select%5B1%5D=NAME\
             &halt=1"
        );
        // The top stays an object even with positional keys.
        assert_eq!(
            decode_ordered(b"1=b&0=a", Limits::default()).unwrap().get(),
            r#"{"1":"b","0":"a"}"#
        );
        assert_eq!(
            decode_ordered(b"0=a&1=b", Limits::default()).unwrap().get(),
            r#"{"0":"a","1":"b"}"#
        );
    }

    #[test]
    fn batch_commands_keep_every_value() {
        use crate::meta::BoolForm;
        use crate::{Arg, Params};
        let p = Params::new()
            .with(
                "fields",
                Arg::new(json!({
                    "NAME": "Иван+Ёж & Co=1",
                    "OPENED": true,
                    "EXPORT": false,
                    "PHONE": [{"VALUE": "+7 999", "VALUE_TYPE": "WORK"}],
                    "EMAIL": [],
                    "WEB": {},
                    "COMMENTS": null,
                    "BIRTHDATE": "1990-01-02T03:04:05+03:00",
                })),
            )
            .with(
                "order",
                Arg::map::<String, _, _, _>([("TITLE", "ASC"), ("ID", "DESC")]),
            )
            .with(
                "filter",
                Arg::new(json!({">=ID": 5, "!STAGE_ID": "WON", "%TITLE": "a b"})),
            );
        let q = encode_command(&p, BoolForm::OneZero).unwrap();
        let decoded: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |k: &str| {
            decoded
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{k} missing from {q}"))
        };
        assert_eq!(get("fields[NAME]"), "Иван+Ёж & Co=1");
        assert_eq!(get("fields[OPENED]"), "1");
        assert_eq!(get("fields[EXPORT]"), "0");
        assert_eq!(get("fields[PHONE][0][VALUE]"), "+7 999");
        assert_eq!(get("fields[PHONE][0][VALUE_TYPE]"), "WORK");
        // Empties are sent empty, never dropped.
        assert_eq!(get("fields[EMAIL]"), "");
        assert_eq!(get("fields[WEB]"), "");
        assert_eq!(get("fields[COMMENTS]"), "");
        assert_eq!(get("fields[BIRTHDATE]"), "1990-01-02T03:04:05+03:00");
        assert_eq!(get("filter[>=ID]"), "5");
        assert_eq!(get("filter[!STAGE_ID]"), "WON");
        assert_eq!(get("filter[%TITLE]"), "a b");
        // `order` keeps the order set: TITLE sorts first.
        let order: Vec<&str> = decoded
            .iter()
            .filter(|(k, _)| k.starts_with("order["))
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(order, ["order[TITLE]", "order[ID]"]);
        // A `+` in a value is escaped, a space is `+`.
        assert!(q.contains("%2B7+999"), "{q}");
        // PHP reads the query back into the same tree (empties as "").
        let back = decode(q.as_bytes(), Limits::default()).unwrap();
        assert_eq!(back["fields"]["PHONE"][0]["VALUE"], "+7 999");
        assert_eq!(back["fields"]["EMAIL"], "");
        let yn = encode_command(&p, BoolForm::YesNo).unwrap();
        assert!(yn.contains("fields%5BOPENED%5D=Y&"), "{yn}");
        assert!(yn.contains("fields%5BEXPORT%5D=N&"), "{yn}");
        // http_build_query itself still leaves empties out.
        let hbq = encode_ordered(&p).unwrap();
        assert!(!hbq.contains("EMAIL"), "{hbq}");
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
