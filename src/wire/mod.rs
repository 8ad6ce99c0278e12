//! Bitrix24 value conventions on the wire: the one place that knows how values are encoded.
//!
//! Generated code names these adapters in `#[serde(with = "As::<...>")]` attributes; they
//! are `serde_with` `SerializeAs`/`DeserializeAs` types, so they nest (`Opt<List<Int>>`).
//!
//! Decoding is tolerant, because portals are (PROTOCOL.md 2.4, 11): numbers may come as
//! strings (`"42"`), flags as `"Y"`/`"N"`, `true`/`false`, `"1"`/`"0"` or `1`/`0`, absent values
//! as `""` or `null`, and empty maps as `[]`. Encoding is exact: integers as JSON numbers,
//! Y/N flags as `"Y"`/`"N"`, booleans as JSON booleans.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
pub use serde_with::{As, DeserializeAs, Same, SerializeAs};

mod from;
pub use from::{decode, enum_str, Fields, FromWire, Serde, WireError};

/// A string; numbers and booleans sent where a string is expected are turned into text.
pub struct Str;
/// An integer (`i64` or `u64`); accepts `42`, `"42"`, `" 42 "` and `42.0`.
pub struct Int;
/// A float; accepts numbers and numeric strings.
pub struct Num;
/// A JSON boolean on the wire; reads `true`/`false`, `"Y"`/`"N"`, `"1"`/`"0"`, `1`/`0`.
pub struct Bool;
/// A `"Y"`/`"N"` flag on the wire; reads like [`Bool`], writes `"Y"`/`"N"`.
pub struct Yn;
/// A free JSON object; `[]` (PHP's empty array) reads as `{}`.
pub struct Obj;
/// `Option<T>`: `null`, `""` and an absent key read as `None`.
pub struct Opt<T>(PhantomData<T>);
/// `Vec<T>`: reads an array, an object keyed by position, or `null`/`""`/`false` as empty.
pub struct List<T>(PhantomData<T>);
/// `BTreeMap<String, T>`: reads an object, or an array (keys `"0"`, `"1"`...; `[]` is empty).
pub struct Map<T>(PhantomData<T>);

// ---------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------

impl SerializeAs<String> for Str {
    fn serialize_as<S: Serializer>(v: &String, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }
}

impl<'de> DeserializeAs<'de, String> for Str {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
                Ok(if v { "Y" } else { "N" }.to_owned())
            }
        }
        d.deserialize_any(V)
    }
}

macro_rules! int_as {
    ($($t:ty),*) => {$(
        impl SerializeAs<$t> for Int {
            fn serialize_as<S: Serializer>(v: &$t, s: S) -> Result<S::Ok, S::Error> {
                serde::Serialize::serialize(v, s)
            }
        }
        impl<'de> DeserializeAs<'de, $t> for Int {
            fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        write!(f, "an integer ({}) or a string holding one", stringify!($t))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$t, E> {
                        <$t>::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$t, E> {
                        <$t>::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$t, E> {
                        if v.fract() == 0.0 && v >= <$t>::MIN as f64 && v <= <$t>::MAX as f64 {
                            Ok(v as $t)
                        } else {
                            Err(E::invalid_value(de::Unexpected::Float(v), &self))
                        }
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        let t = v.trim();
                        if let Ok(n) = t.parse::<$t>() {
                            return Ok(n);
                        }
                        match t.parse::<f64>() {
                            Ok(f) => self.visit_f64(f),
                            Err(_) => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                        }
                    }
                }
                d.deserialize_any(V)
            }
        }
    )*};
}
int_as!(i64, u64);

impl SerializeAs<f64> for Num {
    fn serialize_as<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*v)
    }
}

impl<'de> DeserializeAs<'de, f64> for Num {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string holding one")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
                Ok(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
                Ok(v)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
                v.trim()
                    .parse()
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads any of Bitrix24's boolean spellings.
struct FlagVisitor;

impl Visitor<'_> for FlagVisitor {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flag: true/false, \"Y\"/\"N\", \"1\"/\"0\" or 1/0")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match v.trim() {
            "Y" | "y" | "1" | "true" | "TRUE" | "True" => Ok(true),
            "N" | "n" | "0" | "false" | "FALSE" | "False" | "" => Ok(false),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

impl SerializeAs<bool> for Bool {
    fn serialize_as<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*v)
    }
}

impl<'de> DeserializeAs<'de, bool> for Bool {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_any(FlagVisitor)
    }
}

impl SerializeAs<bool> for Yn {
    fn serialize_as<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *v { "Y" } else { "N" })
    }
}

impl<'de> DeserializeAs<'de, bool> for Yn {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_any(FlagVisitor)
    }
}

impl SerializeAs<Value> for Obj {
    fn serialize_as<S: Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(v, s)
    }
}

impl<'de> DeserializeAs<'de, Value> for Obj {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        let v: Value = serde::Deserialize::deserialize(d)?;
        Ok(match v {
            Value::Array(a) if a.is_empty() => Value::Object(Default::default()),
            other => other,
        })
    }
}

/// Reads an enum's wire value as a string (numbers are accepted and turned into text).
pub fn enum_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    <Str as DeserializeAs<'de, String>>::deserialize_as(d)
}

// ---------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------

/// Deserializes one `T` through the adapter `U`.
struct AsSeed<T, U>(PhantomData<(T, U)>);

impl<'de, T, U: DeserializeAs<'de, T>> DeserializeSeed<'de> for AsSeed<T, U> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        U::deserialize_as(d)
    }
}

/// Serializes one `&T` through the adapter `U`.
struct AsRef<'a, T, U>(&'a T, PhantomData<U>);

impl<T, U: SerializeAs<T>> serde::Serialize for AsRef<'_, T, U> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        U::serialize_as(self.0, s)
    }
}

impl<T, U: SerializeAs<T>> SerializeAs<Option<T>> for Opt<U> {
    fn serialize_as<S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => U::serialize_as(v, s),
            None => s.serialize_none(),
        }
    }
}

impl<'de, T, U: DeserializeAs<'de, T>> DeserializeAs<'de, Option<T>> for Opt<U> {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        // Buffer the value once, so that "absent" spellings can be recognised first.
        let v: Value = serde::Deserialize::deserialize(d)?;
        match &v {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            _ => U::deserialize_as(v).map(Some).map_err(de::Error::custom),
        }
    }
}

impl<T, U: SerializeAs<T>> SerializeAs<Vec<T>> for List<U> {
    fn serialize_as<S: Serializer>(v: &Vec<T>, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for item in v {
            seq.serialize_element(&AsRef::<T, U>(item, PhantomData))?;
        }
        seq.end()
    }
}

impl<'de, T, U: DeserializeAs<'de, T>> DeserializeAs<'de, Vec<T>> for List<U> {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        struct V<T, U>(PhantomData<(T, U)>);
        impl<'de, T, U: DeserializeAs<'de, T>> Visitor<'de> for V<T, U> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(item) = seq.next_element_seed(AsSeed::<T, U>(PhantomData))? {
                    out.push(item);
                }
                Ok(out)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<T>, A::Error> {
                let mut out = Vec::new();
                while let Some((_, item)) =
                    map.next_entry_seed(PhantomData::<de::IgnoredAny>, AsSeed::<T, U>(PhantomData))?
                {
                    out.push(item);
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
                Ok(Vec::new())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Vec<T>, E> {
                if v {
                    Err(E::invalid_type(de::Unexpected::Bool(v), &self))
                } else {
                    Ok(Vec::new())
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
                if v.is_empty() {
                    Ok(Vec::new())
                } else {
                    Err(E::invalid_type(de::Unexpected::Str(v), &self))
                }
            }
        }
        d.deserialize_any(V::<T, U>(PhantomData))
    }
}

impl<T, U: SerializeAs<T>> SerializeAs<BTreeMap<String, T>> for Map<U> {
    fn serialize_as<S: Serializer>(v: &BTreeMap<String, T>, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(v.len()))?;
        for (k, item) in v {
            map.serialize_entry(k, &AsRef::<T, U>(item, PhantomData))?;
        }
        map.end()
    }
}

impl<'de, T, U: DeserializeAs<'de, T>> DeserializeAs<'de, BTreeMap<String, T>> for Map<U> {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, T>, D::Error> {
        struct V<T, U>(PhantomData<(T, U)>);
        impl<'de, T, U: DeserializeAs<'de, T>> Visitor<'de> for V<T, U> {
            type Value = BTreeMap<String, T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map (an object, or `[]` for an empty one)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value_seed(AsSeed::<T, U>(PhantomData))?;
                    out.insert(key, value);
                }
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                let mut i = 0usize;
                while let Some(item) = seq.next_element_seed(AsSeed::<T, U>(PhantomData))? {
                    out.insert(i.to_string(), item);
                    i += 1;
                }
                Ok(out)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BTreeMap::new())
            }
        }
        d.deserialize_any(V::<T, U>(PhantomData))
    }
}

// ---------------------------------------------------------------------------------------
// The response envelope (PROTOCOL.md 3.1-3.3)
// ---------------------------------------------------------------------------------------

/// The `time` object of a response (PROTOCOL.md 3.2). Every key is optional: portals vary.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Time {
    /// Request start, unix time in seconds (fractional).
    #[serde(
        default,
        with = "As::<Opt<Num>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<f64>,
    /// Request end, unix time in seconds (fractional).
    #[serde(
        default,
        with = "As::<Opt<Num>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub finish: Option<f64>,
    /// `finish - start`, seconds.
    #[serde(
        default,
        with = "As::<Opt<Num>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<f64>,
    /// Processing time on the portal, seconds.
    #[serde(
        default,
        with = "As::<Opt<Num>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub processing: Option<f64>,
    /// `start` as an ISO 8601 string.
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_start: Option<String>,
    /// `finish` as an ISO 8601 string.
    #[serde(
        default,
        with = "As::<Opt<Str>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub date_finish: Option<String>,
    /// Seconds this method has run for this app/webhook over the sliding 10 minutes
    /// (the per-method operating-time limit, PROTOCOL.md 4.2).
    #[serde(
        default,
        with = "As::<Opt<Num>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub operating: Option<f64>,
    /// Unix time (seconds) when the oldest one-minute bucket of `operating` drops out.
    #[serde(
        default,
        with = "As::<Opt<Int>>",
        skip_serializing_if = "Option::is_none"
    )]
    pub operating_reset_at: Option<i64>,
}

/// A decoded REST 1/2 response body: either a result with its paging data or an error.
///
/// Only `result` and `error` decide what the answer is; `total`, `next` and `time` are read
/// leniently (an odd value is ignored), so that a call that ran is never reported as failed
/// because of its metadata.
#[derive(serde::Deserialize)]
pub(crate) struct Envelope<'a> {
    /// `Some` when the key is present, even as `null`.
    #[serde(borrow, default, deserialize_with = "present")]
    pub result: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub error_description: Option<Value>,
    #[serde(default)]
    total: Option<Value>,
    #[serde(default)]
    next: Option<Value>,
    #[serde(default)]
    time: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<&'de serde_json::value::RawValue>, D::Error> {
    <&serde_json::value::RawValue as serde::Deserialize>::deserialize(d).map(Some)
}

impl<'a> Envelope<'a> {
    /// Parses a body as an envelope; `None` unless it is a JSON object.
    pub fn parse(body: &'a [u8]) -> Option<Envelope<'a>> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
        if *first != b'{' {
            return None;
        }
        serde_json::from_slice(body).ok()
    }

    /// `total`, when it is a non-negative integer (or a string holding one).
    pub fn total(&self) -> Option<u64> {
        self.total
            .as_ref()
            .and_then(|v| <Int as DeserializeAs<u64>>::deserialize_as(v).ok())
    }

    /// `next`, when it is a non-negative integer (or a string holding one).
    pub fn next(&self) -> Option<u64> {
        self.next
            .as_ref()
            .and_then(|v| <Int as DeserializeAs<u64>>::deserialize_as(v).ok())
    }

    /// `time`, when it is an object of the documented shape.
    pub fn time(&self) -> Option<Time> {
        self.time
            .as_ref()
            .and_then(|v| <Time as serde::Deserialize>::deserialize(v).ok())
    }

    /// The error code and description when the body is an error, for both the REST 1/2 shape
    /// (`{"error": "CODE", "error_description": "..."}`) and REST 3.0
    /// (`{"error": {"code", "message"}}`). The code may be empty.
    pub fn error(&self) -> Option<(String, String)> {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let description = self
            .error_description
            .as_ref()
            .map(text)
            .unwrap_or_default();
        match self.error.as_ref()? {
            Value::Object(o) => {
                let code = o.get("code").map(text).unwrap_or_default();
                let message = o.get("message").map(text).unwrap_or(description);
                Some((code, message))
            }
            Value::Null => None,
            other => Some((text(other), description)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn de<T, U>(v: Value) -> Result<T, serde_json::Error>
    where
        U: for<'de> DeserializeAs<'de, T>,
    {
        U::deserialize_as(v)
    }

    #[test]
    fn ints_accept_strings_and_floats() {
        assert_eq!(de::<u64, Int>(json!("42")).unwrap(), 42);
        assert_eq!(de::<u64, Int>(json!(" 42 ")).unwrap(), 42);
        assert_eq!(de::<u64, Int>(json!(42.0)).unwrap(), 42);
        assert_eq!(de::<i64, Int>(json!("-7")).unwrap(), -7);
        assert!(de::<u64, Int>(json!("-7")).is_err());
        assert!(de::<u64, Int>(json!("abc")).is_err());
        assert!(de::<u64, Int>(json!(1.5)).is_err());
    }

    #[test]
    fn flags_accept_every_spelling() {
        for t in [json!(true), json!("Y"), json!("1"), json!(1), json!("true")] {
            assert!(de::<bool, Yn>(t.clone()).unwrap(), "{t}");
            assert!(de::<bool, Bool>(t).unwrap());
        }
        for f in [json!(false), json!("N"), json!("0"), json!(0), json!("")] {
            assert!(!de::<bool, Yn>(f.clone()).unwrap(), "{f}");
        }
        assert!(de::<bool, Yn>(json!("maybe")).is_err());
        assert_eq!(
            serde_json::to_value(
                As::<Yn>::serialize(&true, serde_json::value::Serializer).unwrap()
            )
            .unwrap(),
            json!("Y")
        );
    }

    #[test]
    fn options_treat_empty_as_absent() {
        assert_eq!(de::<Option<u64>, Opt<Int>>(json!("")).unwrap(), None);
        assert_eq!(de::<Option<u64>, Opt<Int>>(json!(null)).unwrap(), None);
        assert_eq!(de::<Option<u64>, Opt<Int>>(json!("5")).unwrap(), Some(5));
    }

    #[test]
    fn maps_and_lists_accept_php_arrays() {
        assert!(de::<BTreeMap<String, u64>, Map<Int>>(json!([]))
            .unwrap()
            .is_empty());
        let m = de::<BTreeMap<String, u64>, Map<Int>>(json!({"41": "7"})).unwrap();
        assert_eq!(m["41"], 7);
        assert_eq!(
            de::<Vec<u64>, List<Int>>(json!({"0": "1", "1": 2})).unwrap(),
            vec![1, 2]
        );
        assert_eq!(
            de::<Vec<u64>, List<Int>>(json!(false)).unwrap(),
            Vec::<u64>::new()
        );
        assert_eq!(de::<Value, Obj>(json!([])).unwrap(), json!({}));
    }

    #[test]
    fn envelope_errors_of_both_generations() {
        let e: Envelope =
            serde_json::from_str(r#"{"error":"","error_description":"Not found"}"#).unwrap();
        assert_eq!(e.error(), Some((String::new(), "Not found".into())));
        let e: Envelope =
            serde_json::from_str(r#"{"error":{"code":"BITRIX_REST_V3_X","message":"bad"}}"#)
                .unwrap();
        assert_eq!(e.error(), Some(("BITRIX_REST_V3_X".into(), "bad".into())));
        let e: Envelope = serde_json::from_str(r#"{"result":[1],"total":"2","next":50}"#).unwrap();
        assert_eq!((e.error(), e.total(), e.next()), (None, Some(2), Some(50)));
    }
}
