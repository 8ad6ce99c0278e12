//! Key order, where it means something on the wire.
//!
//! The fake keeps params and answers as `serde_json::Value`, whose objects sort their keys
//! (the workspace does not turn on serde_json's `preserve_order` feature: it would be on for
//! the client's own tests too, and hide order bugs). A real portal is PHP, whose arrays keep
//! the order written. Where that order matters it is kept here, locally:
//!
//! - requests: [`SentOrder`] reads the order of an object's keys again from the request's
//!   JSON text (a form body goes through [`bitrix24::php::decode_ordered`]), for `batch`'s
//!   `cmd` (commands run in the order sent) and a list's `order` (the first key sorts first);
//! - answers: [`Answer`] writes objects keyed by integers (`imbot.bot.list` by bot id, a
//!   batch's maps of a command list) in numeric order, as PHP built them, and the maps of a
//!   batch answer in the order its commands ran.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The JSON texts a request's params came from, in merge order (the query string first, the
/// body after: a later one wins, as in the merged `Value`).
#[derive(Clone, Debug, Default)]
pub(crate) struct SentOrder {
    sources: Vec<Box<RawValue>>,
}

impl SentOrder {
    /// Adds the params of one more source (later ones win).
    pub(crate) fn push(&mut self, json: Box<RawValue>) {
        self.sources.push(json);
    }

    /// The order of one source's params.
    pub(crate) fn of(json: Box<RawValue>) -> SentOrder {
        SentOrder {
            sources: vec![json],
        }
    }

    /// The keys of the object param `key` (matched like `util::get`: exactly, else ignoring
    /// ASCII case) in the order sent; a list gives its positions. `None` when no source has
    /// it as an object or list.
    pub(crate) fn keys(&self, key: &str) -> Option<Vec<String>> {
        self.sources.iter().rev().find_map(|json| {
            let mut de = serde_json::Deserializer::from_str(json.get());
            let found = Top { key }.deserialize(&mut de).ok()?;
            found.exact.or(found.folded)
        })
    }

    /// `map`'s entries in the order param `key` was sent in; keys the order does not know
    /// follow in map order.
    pub(crate) fn entries<'a>(
        &self,
        key: &str,
        map: &'a Map<String, Value>,
    ) -> Vec<(&'a String, &'a Value)> {
        in_order(map, self.keys(key).as_deref())
    }
}

/// `map`'s entries in `order` (unknown keys after, in map order; order keys not in the map
/// skipped).
pub(crate) fn in_order<'a>(
    map: &'a Map<String, Value>,
    order: Option<&[String]>,
) -> Vec<(&'a String, &'a Value)> {
    let Some(order) = order else {
        return map.iter().collect();
    };
    let mut out: Vec<_> = order.iter().filter_map(|k| map.get_key_value(k)).collect();
    if out.len() < map.len() {
        out.extend(map.iter().filter(|(k, _)| !order.contains(k)));
    }
    out
}

/// What the top-level visit found for the wanted key: an exact match wins over one that
/// differs in case; among equals the last wins (as serde_json's `Value` keeps the last).
struct Found {
    exact: Option<Vec<String>>,
    folded: Option<Vec<String>>,
}

struct Top<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = Found;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of params")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let mut found = Found {
            exact: None,
            folded: None,
        };
        while let Some(k) = map.next_key::<String>()? {
            if k == self.key {
                found.exact = map.next_value_seed(Keys)?;
            } else if k.eq_ignore_ascii_case(self.key) {
                found.folded = map.next_value_seed(Keys)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Found {
            exact: None,
            folded: None,
        })
    }
}

/// The keys of an object in order (a list: its positions); `None` for a scalar.
struct Keys;

impl<'de> DeserializeSeed<'de> for Keys {
    type Value = Option<Vec<String>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keys {
    type Value = Option<Vec<String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys: Vec<String> = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            // A key sent twice keeps its first place (PHP overwrites the value in place).
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        Ok(Some(keys))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut n = 0usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Some((0..n).map(|i| i.to_string()).collect()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A canonical non-negative integer key (`7`, not `07`), as PHP prints integer keys.
fn position(k: &str) -> Option<u64> {
    if !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = k.parse().ok()?;
    (n.to_string() == k).then_some(n)
}

/// An answer as JSON, in the order PHP would print it where the fake knows it: objects whose
/// keys are all integers in numeric order; an object whose keys all belong to `order` (the
/// command keys of a batch, in the order they ran) in that order; any other object in map
/// order.
pub(crate) struct Answer<'a> {
    pub value: &'a Value,
    pub order: Option<&'a [String]>,
}

impl Serialize for Answer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(map) = self.value else {
            return match self.value {
                Value::Array(items) => s.collect_seq(items.iter().map(|v| Answer {
                    value: v,
                    order: self.order,
                })),
                other => other.serialize(s),
            };
        };
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        if !entries.is_empty() && entries.iter().all(|(k, _)| position(k).is_some()) {
            entries.sort_by_key(|(k, _)| position(k));
        } else if let Some(order) = self.order {
            if map.keys().all(|k| order.contains(k)) {
                entries = in_order(map, Some(order));
            }
        }
        let mut out = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            out.serialize_entry(
                k,
                &Answer {
                    value: v,
                    order: self.order,
                },
            )?;
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn keys_come_in_the_order_sent() {
        let order = SentOrder::of(raw(
            r#"{"halt":0,"cmd":{"z":"a","b":"c","z":"d"},"ORDER":{"TITLE":"ASC","ID":"DESC"},"l":[1,2]}"#,
        ));
        assert_eq!(order.keys("cmd").unwrap(), ["z", "b"]);
        assert_eq!(order.keys("order").unwrap(), ["TITLE", "ID"]);
        assert_eq!(order.keys("l").unwrap(), ["0", "1"]);
        assert_eq!(order.keys("halt"), None);
        assert_eq!(order.keys("nope"), None);
        // A later source (the body over the query) wins.
        let mut both = SentOrder::of(raw(r#"{"cmd":{"a":"1","b":"2"}}"#));
        both.push(raw(r#"{"cmd":{"b":"2","a":"1"}}"#));
        assert_eq!(both.keys("cmd").unwrap(), ["b", "a"]);
        let m = json!({"a": 1, "b": 2, "c": 3});
        let e = both.entries("cmd", m.as_object().unwrap());
        let keys: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn answers_put_integer_keys_in_numeric_order_and_batch_maps_in_run_order() {
        let v = json!({"result": {"10": "x", "9": "y", "100": "z"}, "named": {"b": 1, "a": 2}});
        let text = serde_json::to_string(&Answer {
            value: &v,
            order: None,
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"named":{"a":2,"b":1},"result":{"9":"y","10":"x","100":"z"}}"#
        );
        let order = ["second".to_owned(), "first".to_owned()];
        let v = json!({"result": {"first": 1, "second": 2}, "result_error": {"first": 3}});
        let text = serde_json::to_string(&Answer {
            value: &v,
            order: Some(&order),
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"result":{"second":2,"first":1},"result_error":{"first":3}}"#
        );
    }
}
