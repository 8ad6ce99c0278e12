//! Bitrix24 value conventions on the wire: the one place that knows how values are read.
//!
//! [`FromWire`] reads every value the spec's types describe (generated result types use it).
//! Decoding is tolerant, because portals are (PROTOCOL.md 2.4, 11): numbers may come as
//! strings (`"42"`), flags as `"Y"`/`"N"`, `true`/`false`, `"1"`/`"0"` or `1`/`0`, absent values
//! as `""`, `null` or `false`, and empty maps as `[]`.
//!
//! The `serde_with` adapters below ([`Str`], [`Int`], [`Num`], [`Bool`], [`Yn`], [`Opt`])
//! apply the same rules, by calling [`FromWire`], inside hand-written serde types
//! (`#[serde(with = "As::<Opt<Int>>")]`): one set of rules for both. Encoding is exact:
//! integers as JSON numbers, Y/N flags as `"Y"`/`"N"`, booleans as JSON booleans.

use std::marker::PhantomData;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
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
/// `Option<T>`: read as [`FromWire`] reads an `Option` (`null`, `""`, `[]` and, for
/// anything but a flag, `false` are `None`); written with the adapter `T`.
pub struct Opt<T>(PhantomData<T>);

/// Reads a `T` through [`FromWire`], from whatever the deserializer holds.
fn via_wire<'de, T: FromWire, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    let v: Value = serde::Deserialize::deserialize(d)?;
    T::from_wire(&v).map_err(de::Error::custom)
}

macro_rules! adapter {
    ($adapter:ty => $($t:ty),*) => {$(
        impl<'de> DeserializeAs<'de, $t> for $adapter {
            fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                via_wire(d)
            }
        }
        impl SerializeAs<$t> for $adapter {
            fn serialize_as<S: Serializer>(v: &$t, s: S) -> Result<S::Ok, S::Error> {
                serde::Serialize::serialize(v, s)
            }
        }
    )*};
}
adapter!(Str => String);
adapter!(Int => i64, u64);
adapter!(Num => f64);
adapter!(Bool => bool);

impl<'de> DeserializeAs<'de, bool> for Yn {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        via_wire(d)
    }
}

impl SerializeAs<bool> for Yn {
    fn serialize_as<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *v { "Y" } else { "N" })
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

impl<'de, T: FromWire, U> DeserializeAs<'de, Option<T>> for Opt<U> {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        via_wire(d)
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

impl Time {
    /// `time` from its JSON object; `None` for anything else.
    pub(crate) fn from_value(v: &Value) -> Option<Time> {
        <Time as serde::Deserialize>::deserialize(v).ok()
    }

    /// Only what the operating-time budget needs (`finish`, `duration`, `processing`,
    /// `operating`, `operating_reset_at`), read without the full decoding: this runs on
    /// every answer.
    pub(crate) fn budget_of(v: &Value) -> Option<Time> {
        let o = v.as_object()?;
        let num = |k: &str| o.get(k).and_then(|v| f64::from_wire(v).ok());
        Some(Time {
            finish: num("finish"),
            duration: num("duration"),
            processing: num("processing"),
            operating: num("operating"),
            operating_reset_at: o
                .get("operating_reset_at")
                .and_then(|v| i64::from_wire(v).ok()),
            ..Time::default()
        })
    }
}

/// A decoded REST 1/2 response body: either a result with its paging data or an error.
///
/// Only `result` and `error` decide what the answer is; `total`, `next` and `time` are read
/// leniently (an odd value is ignored), so that a call that ran is never reported as failed
/// because of its metadata.
#[derive(serde::Deserialize)]
pub(crate) struct Envelope {
    /// `Some` when the key is present, even as `null`. Parsed in the same pass as the rest
    /// of the body (one JSON parse per answer).
    #[serde(default, deserialize_with = "present")]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default)]
    pub error_description: Option<Value>,
    #[serde(default)]
    total: Option<Value>,
    #[serde(default)]
    next: Option<Value>,
    #[serde(default)]
    pub time: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(d).map(Some)
}

impl Envelope {
    /// Parses a body as an envelope; `None` unless it is a JSON object.
    pub fn parse(body: &[u8]) -> Option<Envelope> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
        if *first != b'{' {
            return None;
        }
        serde_json::from_slice(body).ok()
    }

    /// `total`, when it is a non-negative integer (or a string holding one).
    pub fn total(&self) -> Option<u64> {
        self.total.as_ref().and_then(|v| u64::from_wire(v).ok())
    }

    /// `next`, when it is a non-negative integer (or a string holding one).
    pub fn next(&self) -> Option<u64> {
        self.next.as_ref().and_then(|v| u64::from_wire(v).ok())
    }

    /// `time`, when it is an object of the documented shape.
    pub fn time(&self) -> Option<Time> {
        self.time.as_ref().and_then(Time::from_value)
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
        // The list and map rules live in FromWire (generated types use them directly).
        use std::collections::BTreeMap;
        assert!(BTreeMap::<String, u64>::from_wire(&json!([]))
            .unwrap()
            .is_empty());
        let m = BTreeMap::<String, u64>::from_wire(&json!({"41": "7"})).unwrap();
        assert_eq!(m["41"], 7);
        assert_eq!(
            Vec::<u64>::from_wire(&json!({"0": "1", "1": 2})).unwrap(),
            vec![1, 2]
        );
        assert_eq!(
            Vec::<u64>::from_wire(&json!(false)).unwrap(),
            Vec::<u64>::new()
        );
        assert_eq!(
            serde_json::Map::<String, Value>::from_wire(&json!([])).unwrap(),
            serde_json::Map::new()
        );
    }

    #[test]
    fn adapters_and_from_wire_agree() {
        // PHP's `false` for an absent string: no value, as in generated types.
        assert_eq!(de::<Option<String>, Opt<Str>>(json!(false)).unwrap(), None);
        assert_eq!(
            de::<Option<bool>, Opt<Yn>>(json!(false)).unwrap(),
            Some(false)
        );
        assert_eq!(de::<String, Str>(json!(5)).unwrap(), "5");
        assert_eq!(de::<f64, Num>(json!("19999.99")).unwrap(), 19999.99);
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
