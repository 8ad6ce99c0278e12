//! Reading typed values out of decoded JSON: the [`FromWire`] trait.
//!
//! Every generated result type and every primitive the spec uses implements it. Decoding is
//! tolerant in the ways Bitrix24 portals are loose (PROTOCOL.md 2.4): numbers sent as strings
//! (`"42"`), flags as `Y`/`N`, `1`/`0` or `true`/`false`, absent values as `""` or `null`, and
//! PHP's empty array `[]` where an object or a map is expected. Errors name the JSON path of
//! the value that did not fit (`items[3].ID`), never the value itself (it may be a secret).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::{Map, Value};

use crate::auth::Secret;

/// A value that can be read from the JSON Bitrix24 sends.
///
/// Implemented for `String`, `i64`, `u64`, `f64`, `bool`, [`NaiveDate`], [`DateTime`]`<FixedOffset>`,
/// [`Secret`], [`serde_json::Value`], `serde_json::Map` (a JSON object, `[]` read as empty),
/// `Option<T>`, `Vec<T>`, `BTreeMap<String, T>` and every generated type. To decode a result
/// into a type of your own, implement it (or wrap a serde type in [`Serde`]).
pub trait FromWire: Sized {
    /// Reads the value.
    ///
    /// # Errors
    /// A [`WireError`] naming what was expected and where (the path is filled in by the
    /// containers on the way out).
    fn from_wire(value: &Value) -> Result<Self, WireError>;

    /// The value of a key that is absent, or `None` if the key is required. `Option<T>`
    /// answers `Some(None)`.
    fn absent() -> Option<Self> {
        None
    }

    /// Whether an empty JSON array is a value of this type (a list, a map) rather than
    /// PHP's way of saying "nothing" (for a struct, a number...). `Option<T>` reads `[]` as
    /// `None` unless this is `true`.
    const COLLECTION: bool = false;

    /// Whether JSON `false` is a value of this type (a flag, any JSON) rather than PHP's way
    /// of saying "nothing" (for a string, a struct...). `Option<T>` reads `false` as `None`
    /// unless this (or [`COLLECTION`](Self::COLLECTION)) is `true`.
    const FLAG: bool = false;
}

/// A decode failure: what was expected, what came, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    /// Path segments from the outside in.
    path: Vec<Segment>,
    message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl WireError {
    /// `expected` a thing, found this JSON value (only its kind is kept).
    pub fn expected(expected: &str, found: &Value) -> WireError {
        WireError {
            path: Vec::new(),
            message: format!("expected {expected}, found {}", kind(found)),
        }
    }

    /// A failure described in words.
    pub fn custom(message: impl Into<String>) -> WireError {
        WireError {
            path: Vec::new(),
            message: message.into(),
        }
    }

    /// A required key that is missing.
    pub fn missing(key: &str) -> WireError {
        WireError {
            path: Vec::new(),
            message: format!("missing field `{key}`"),
        }
    }

    /// The same error one object level further out.
    #[must_use]
    pub fn in_key(mut self, key: &str) -> WireError {
        self.path.insert(0, Segment::Key(key.to_owned()));
        self
    }

    /// The same error one list level further out.
    #[must_use]
    pub fn in_index(mut self, index: usize) -> WireError {
        self.path.insert(0, Segment::Index(index));
        self
    }

    /// The JSON path, `.` for the top: `items[3].ID`.
    pub fn path(&self) -> String {
        if self.path.is_empty() {
            return ".".into();
        }
        let mut out = String::new();
        for s in &self.path {
            match s {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => {
                    out.push_str(&format!("[{i}]"));
                }
            }
        }
        out
    }

    /// What was wrong, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at `{}`: {}", self.path(), self.message)
    }
}

impl std::error::Error for WireError {}

/// The kind of a JSON value, for messages (never its content).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(a) if a.is_empty() => "an empty array",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes `T` from a whole value (a method's `result`, an event's tree).
///
/// # Errors
/// As for [`FromWire::from_wire`].
pub fn decode<T: FromWire>(value: &Value) -> Result<T, WireError> {
    T::from_wire(value)
}

// ---------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------

impl FromWire for String {
    fn from_wire(v: &Value) -> Result<Self, WireError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(if *b { "Y" } else { "N" }.to_owned()),
            other => Err(WireError::expected("a string", other)),
        }
    }
}

/// Integers up to 2^53 are exact in a float; beyond, `1e19` or `9007199254740993.0` as a
/// float may be another integer than the one sent.
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

fn parse_int(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_EXACT_FLOAT)
                    .map(|f| f as i128)
            }),
        Value::String(s) => {
            // Digits, optionally with a zero fraction (`"42.00"`), read exactly; no exponents,
            // hex or other float spellings.
            let t = s.trim();
            let t = match t.split_once('.') {
                Some((int, frac)) if frac.bytes().all(|b| b == b'0') => int,
                Some(_) => return None,
                None => t,
            };
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse::<i128>().ok()
        }
        _ => None,
    }
}

impl FromWire for i64 {
    fn from_wire(v: &Value) -> Result<Self, WireError> {
        parse_int(v)
            .and_then(|n| i64::try_from(n).ok())
            .ok_or_else(|| WireError::expected("an integer", v))
    }
}

impl FromWire for u64 {
    fn from_wire(v: &Value) -> Result<Self, WireError> {
        parse_int(v)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| WireError::expected("a non-negative integer", v))
    }
}

impl FromWire for f64 {
    fn from_wire(v: &Value) -> Result<Self, WireError> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
            _ => None,
        }
        .ok_or_else(|| WireError::expected("a number", v))
    }
}

impl FromWire for bool {
    const FLAG: bool = true;

    fn from_wire(v: &Value) -> Result<Self, WireError> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Value::String(s) => match s.trim() {
                "Y" | "y" | "1" | "true" | "TRUE" | "True" => Some(true),
                "N" | "n" | "0" | "false" | "FALSE" | "False" | "" => Some(false),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| WireError::expected("a flag (Y/N, 1/0, true/false)", v))
    }
}

impl FromWire for NaiveDate {
    fn from_wire(v: &Value) -> Result<Self, WireError> {
        let Value::String(s) = v else {
            return Err(WireError::expected("a date (YYYY-MM-DD)", v));
        };
        let s = s.trim();
        // A date-time where a date is expected: keep its date part.
        let date = s.get(..10).unwrap_or(s);
        NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(date, "%d.%m.%Y"))
            .map_err(|_| WireError::expected("a date (YYYY-MM-DD)", v))
    }
}

impl FromWire for DateTime<FixedOffset> {
    fn from_wire(v: &Value) -> Result<Self, WireError> {
        let Value::String(s) = v else {
            return Err(WireError::expected("a date-time (ISO 8601 with offset)", v));
        };
        let s = s.trim();
        DateTime::parse_from_rfc3339(s)
            .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
            .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z"))
            .map_err(|_| WireError::expected("a date-time (ISO 8601 with offset)", v))
    }
}

impl FromWire for Secret {
    fn from_wire(v: &Value) -> Result<Self, WireError> {
        String::from_wire(v).map(Secret::new)
    }
}

impl FromWire for Value {
    const COLLECTION: bool = true;
    const FLAG: bool = true;

    fn from_wire(v: &Value) -> Result<Self, WireError> {
        Ok(v.clone())
    }

    fn absent() -> Option<Self> {
        Some(Value::Null)
    }
}

impl FromWire for Map<String, Value> {
    const COLLECTION: bool = true;

    fn from_wire(v: &Value) -> Result<Self, WireError> {
        match v {
            Value::Object(o) => Ok(o.clone()),
            Value::Array(a) if a.is_empty() => Ok(Map::new()),
            Value::Array(a) => Ok(a
                .iter()
                .enumerate()
                .map(|(i, x)| (i.to_string(), x.clone()))
                .collect()),
            Value::Null => Ok(Map::new()),
            other => Err(WireError::expected("an object", other)),
        }
    }
}

impl FromWire for () {
    fn from_wire(_: &Value) -> Result<Self, WireError> {
        Ok(())
    }

    fn absent() -> Option<Self> {
        Some(())
    }
}

// ---------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------

/// Whether a value is one of the ways portals spell "nothing": `null`, `""`, `false`, `[]`.
fn is_nothing(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

impl<T: FromWire> FromWire for Option<T> {
    fn from_wire(v: &Value) -> Result<Self, WireError> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::Array(a) if a.is_empty() && !T::COLLECTION => Ok(None),
            // `"idle": false`: no value, not the text "N" nor a struct with nothing set.
            Value::Bool(false) if !T::FLAG && !T::COLLECTION => Ok(None),
            _ => match T::from_wire(v) {
                Ok(t) => Ok(Some(t)),
                // `false` or `[]` where a value was expected: PHP's way of saying "none".
                Err(_) if is_nothing(v) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    fn absent() -> Option<Self> {
        Some(None)
    }
}

impl<T: FromWire> FromWire for Vec<T> {
    const COLLECTION: bool = true;

    fn from_wire(v: &Value) -> Result<Self, WireError> {
        match v {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, x)| T::from_wire(x).map_err(|e| e.in_index(i)))
                .collect(),
            // PHP arrays with non-sequential keys arrive as objects keyed by position. A
            // `Map` may have sorted the keys as text ("10" before "2"; serde_json sorts
            // unless its `preserve_order` feature is on), so positions go in numeric order.
            Value::Object(o) => by_position(o)
                .into_iter()
                .map(|(k, x)| T::from_wire(x).map_err(|e| e.in_key(k)))
                .collect(),
            other if is_nothing(other) => Ok(Vec::new()),
            other => Err(WireError::expected("a list", other)),
        }
    }
}

/// The entries of a PHP array that came as an object, in list order: by numeric position
/// when every key is a position (`0`, `7`, `12`), else in the map's order.
fn by_position(o: &Map<String, Value>) -> Vec<(&String, &Value)> {
    // A canonical decimal (`7`, not `07` or `+7`), as PHP's integer keys print.
    let position = |k: &str| -> Option<u64> {
        if !k.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = k.parse().ok()?;
        (n.to_string() == k).then_some(n)
    };
    let mut entries: Vec<_> = o.iter().collect();
    if entries.iter().all(|(k, _)| position(k).is_some()) {
        entries.sort_by_key(|(k, _)| position(k));
    }
    entries
}

impl<T: FromWire> FromWire for BTreeMap<String, T> {
    const COLLECTION: bool = true;

    fn from_wire(v: &Value) -> Result<Self, WireError> {
        match v {
            Value::Object(o) => o
                .iter()
                .map(|(k, x)| Ok((k.clone(), T::from_wire(x).map_err(|e| e.in_key(k))?)))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, x)| Ok((i.to_string(), T::from_wire(x).map_err(|e| e.in_index(i))?)))
                .collect(),
            other if is_nothing(other) => Ok(BTreeMap::new()),
            other => Err(WireError::expected("a map", other)),
        }
    }
}

impl<T: FromWire> FromWire for Box<T> {
    const COLLECTION: bool = T::COLLECTION;
    const FLAG: bool = T::FLAG;

    fn from_wire(v: &Value) -> Result<Self, WireError> {
        T::from_wire(v).map(Box::new)
    }

    fn absent() -> Option<Self> {
        T::absent().map(Box::new)
    }
}

/// Decodes any `serde` type through [`FromWire`]: `Client::call` with a method whose
/// `Output = Serde<MyType>` reads `result` with `MyType`'s own `Deserialize` (strict serde
/// rules, none of the tolerance above).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Serde<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromWire for Serde<T> {
    // Strict serde rules: `false` goes to `T`'s own `Deserialize`.
    const FLAG: bool = true;

    fn from_wire(v: &Value) -> Result<Self, WireError> {
        T::deserialize(v)
            .map(Serde)
            .map_err(|e| WireError::custom(e.to_string()))
    }
}

// ---------------------------------------------------------------------------------------
// Structs
// ---------------------------------------------------------------------------------------

/// Reads the fields of one JSON object for a generated struct: each key is taken once; what
/// is left (unknown keys, custom fields, optional values that did not fit their type) is
/// kept for the struct's `extra` map, so nothing the portal sent is lost.
#[doc(hidden)]
pub struct Fields<'a> {
    map: Option<&'a Map<String, Value>>,
    taken: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    /// Starts reading an object; `[]`, `null` and `false` read as an empty object.
    ///
    /// # Errors
    /// When the value is a scalar or a non-empty array.
    pub fn new(v: &'a Value) -> Result<Fields<'a>, WireError> {
        match v {
            Value::Object(o) => Ok(Fields {
                map: Some(o),
                taken: Vec::with_capacity(o.len()),
            }),
            other if is_nothing(other) => Ok(Fields {
                map: None,
                taken: Vec::new(),
            }),
            other => Err(WireError::expected("an object", other)),
        }
    }

    fn take(&mut self, key: &str) -> Option<(&'a str, &'a Value)> {
        let (k, v) = self.map?.get_key_value(key)?;
        Some((k.as_str(), v))
    }

    /// A field that must be present (or whose type has an [`absent`](FromWire::absent) value).
    ///
    /// # Errors
    /// When the key is missing or its value does not fit `T`.
    pub fn req<T: FromWire>(&mut self, key: &str) -> Result<T, WireError> {
        match self.take(key) {
            Some((k, v)) => {
                self.taken.push(k);
                T::from_wire(v).map_err(|e| e.in_key(key))
            }
            None => T::absent().ok_or_else(|| WireError::missing(key)),
        }
    }

    /// An optional field: absent, `null`, `""` (and `false`/`[]` where they are not values of
    /// `T`) read as `None`.
    /// A value that does not fit `T` also reads as `None` and stays in [`rest`](Self::rest).
    pub fn opt<T: FromWire>(&mut self, key: &str) -> Option<T> {
        let (k, v) = self.take(key)?;
        match Option::<T>::from_wire(v) {
            Ok(t) => {
                self.taken.push(k);
                t
            }
            Err(_) => None,
        }
    }

    /// The keys not taken, as sent.
    pub fn rest(self) -> Map<String, Value> {
        let Some(map) = self.map else {
            return Map::new();
        };
        if self.taken.len() == map.len() {
            // Every key was read (each key is taken at most once): nothing is left.
            return Map::new();
        }
        // The taken keys point into this map's own key strings: compare addresses, not text.
        map.iter()
            .filter(|(k, _)| {
                !self
                    .taken
                    .iter()
                    .any(|t| std::ptr::eq(t.as_ptr(), k.as_ptr()))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Reads a string enum's wire value (numbers are turned into text).
#[doc(hidden)]
pub fn enum_str(v: &Value) -> Result<String, WireError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(WireError::expected("a string", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_are_tolerant() {
        assert_eq!(u64::from_wire(&json!("42")).unwrap(), 42);
        assert_eq!(u64::from_wire(&json!(" 42 ")).unwrap(), 42);
        assert_eq!(u64::from_wire(&json!(42.0)).unwrap(), 42);
        assert!(u64::from_wire(&json!("-1")).is_err());
        assert_eq!(i64::from_wire(&json!("-7")).unwrap(), -7);
        assert_eq!(f64::from_wire(&json!("19999.99")).unwrap(), 19999.99);
        for t in [json!(true), json!("Y"), json!("1"), json!(1)] {
            assert!(bool::from_wire(&t).unwrap());
        }
        for f in [json!(false), json!("N"), json!("0"), json!(0), json!("")] {
            assert!(!bool::from_wire(&f).unwrap());
        }
        assert_eq!(String::from_wire(&json!(5)).unwrap(), "5");
        assert_eq!(
            NaiveDate::from_wire(&json!("2024-07-25T13:06:54+03:00")).unwrap(),
            NaiveDate::from_ymd_opt(2024, 7, 25).unwrap()
        );
        let dt = DateTime::<FixedOffset>::from_wire(&json!("2023-12-28T14:05:48+03:00")).unwrap();
        assert_eq!(dt.offset().local_minus_utc(), 3 * 3600);
    }

    #[test]
    fn integers_are_exact_or_refused() {
        // Beyond 2^53 a float is not an exact integer: refuse rather than be off by one; a
        // string with a zero fraction is read exactly.
        assert_eq!(
            u64::from_wire(&json!("9007199254740993.0")).unwrap(),
            9007199254740993
        );
        assert!(u64::from_wire(&json!(1.0e17)).is_err());
        assert_eq!(
            u64::from_wire(&json!("9007199254740993")).unwrap(),
            9007199254740993
        );
        assert_eq!(u64::from_wire(&json!(u64::MAX)).unwrap(), u64::MAX);
        assert_eq!(i64::from_wire(&json!("-12.000")).unwrap(), -12);
        assert_eq!(u64::from_wire(&json!(1e3)).unwrap(), 1000, "a JSON number");
        for junk in ["1e3", "0x10", "12abc", "1.5", "NaN", "inf", ""] {
            assert!(u64::from_wire(&json!(junk)).is_err(), "{junk}");
        }
        assert!(u64::from_wire(&json!(-1)).is_err());
        assert!(i64::from_wire(&json!(u64::MAX)).is_err());
    }

    #[test]
    fn empty_spellings_are_none_and_php_arrays_are_maps() {
        assert_eq!(Option::<u64>::from_wire(&json!("")).unwrap(), None);
        assert_eq!(Option::<u64>::from_wire(&json!(null)).unwrap(), None);
        assert_eq!(
            Option::<Vec<u64>>::from_wire(&json!(false)).unwrap(),
            Some(vec![])
        );
        assert_eq!(Option::<NaiveDate>::from_wire(&json!(false)).unwrap(), None);
        assert!(Map::<String, Value>::from_wire(&json!([]))
            .unwrap()
            .is_empty());
        assert!(BTreeMap::<String, u64>::from_wire(&json!([]))
            .unwrap()
            .is_empty());
        assert_eq!(
            Vec::<u64>::from_wire(&json!({"0": "1", "1": 2})).unwrap(),
            vec![1, 2]
        );
        // Positions in numeric order, whatever order the `Map` keeps ("10" sorts before
        // "2" as text).
        let holes = json!({"0": "a", "2": "b", "10": "c", "11": "d", "3": "e"});
        assert_eq!(
            Vec::<String>::from_wire(&holes).unwrap(),
            ["a", "b", "e", "c", "d"]
        );
        // Keys that are not all positions keep the map's order.
        let named = json!({"x": 1, "10": 2});
        let want: Vec<u64> = named
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(Vec::<u64>::from_wire(&named).unwrap(), want);
        assert_eq!(
            Vec::<u64>::from_wire(&json!({"01": 1, "1": 2}))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn false_is_nothing_unless_the_type_holds_flags() {
        assert_eq!(Option::<String>::from_wire(&json!(false)).unwrap(), None);
        assert_eq!(Option::<Secret>::from_wire(&json!(false)).unwrap(), None);
        assert_eq!(
            Option::<bool>::from_wire(&json!(false)).unwrap(),
            Some(false)
        );
        assert_eq!(
            Option::<Value>::from_wire(&json!(false)).unwrap(),
            Some(json!(false)),
            "any JSON keeps `false`"
        );
        assert_eq!(
            Option::<String>::from_wire(&json!(true))
                .unwrap()
                .as_deref(),
            Some("Y")
        );
        let v = json!({"idle": false});
        let mut f = Fields::new(&v).unwrap();
        assert_eq!(f.opt::<String>("idle"), None);
        assert!(f.rest().is_empty(), "`false` is nothing, not a misfit");
    }

    #[test]
    fn errors_carry_the_path_but_not_the_value() {
        let e = Vec::<BTreeMap<String, u64>>::from_wire(&json!([{"a": 1}, {"b": "secret"}]))
            .unwrap_err();
        assert_eq!(e.path(), "[1].b");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn fields_keep_what_they_do_not_take() {
        let v = json!({"ID": "7", "TITLE": "x", "OPPORTUNITY": "n/a", "UF_CRM_1": "u"});
        let mut f = Fields::new(&v).unwrap();
        let id: u64 = f.req("ID").unwrap();
        let title: Option<String> = f.opt("TITLE");
        let opp: Option<f64> = f.opt("OPPORTUNITY");
        let missing: Option<String> = f.opt("NOPE");
        let rest = f.rest();
        assert_eq!(
            (id, title.as_deref(), opp, missing),
            (7, Some("x"), None, None)
        );
        assert_eq!(rest.len(), 2);
        assert_eq!(rest["OPPORTUNITY"], "n/a");
        assert_eq!(rest["UF_CRM_1"], "u");
        let empty = json!([]);
        let mut f = Fields::new(&empty).unwrap();
        assert_eq!(
            f.req::<u64>("ID").unwrap_err().to_string(),
            "at `.`: missing field `ID`"
        );
        assert!(Fields::new(&json!(3)).is_err());
    }
}
