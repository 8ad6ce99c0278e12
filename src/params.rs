//! The parameters of a call, in wire form: what every generated request holds.
//!
//! A request is a set of named parameter values ([`Params`]), filled by its constructor and
//! setters. Setters take `impl IntoArg<T>`: anything that becomes a value of the parameter's
//! spec type `T` (`u64` for an `id`, anything `Into<String>` for a `string`, a generated
//! builder for a struct type...). Values are encoded exactly once, when set: integers as JSON
//! numbers, `yn` flags as `"Y"`/`"N"`, booleans as JSON `true`/`false`, dates as
//! `YYYY-MM-DD`, date-times as ISO 8601 with offset.
//!
//! Keeping parameters as values rather than as typed struct fields is what lets one
//! non-generic runtime serialize any request (JSON body, and later the PHP query strings of
//! `batch`), check conditional requirements by name, and, in a batch, put a reference to an
//! earlier command's result into any parameter: a later [`IntoArg`] impl for such a reference
//! needs no change to the 1,565 generated request types.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, TimeZone};
use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use crate::auth::Secret;
use crate::error::{Error, ErrorKind};

/// A value that can be written as JSON the way Bitrix24 expects it.
pub trait ToWire {
    /// The wire form.
    fn to_wire(&self) -> Value;

    /// Whether the value holds a [`Secret`] (anywhere inside): a parameter made from it is
    /// then never printed by `Debug`.
    fn contains_secret(&self) -> bool {
        false
    }
}

macro_rules! to_wire_via_from {
    ($($t:ty),*) => {$(
        impl ToWire for $t {
            fn to_wire(&self) -> Value {
                Value::from(self.clone())
            }
        }
    )*};
}
to_wire_via_from!(String, i64, u64, bool);

impl ToWire for f64 {
    fn to_wire(&self) -> Value {
        serde_json::Number::from_f64(*self).map_or(Value::Null, Value::Number)
    }
}

impl ToWire for str {
    fn to_wire(&self) -> Value {
        Value::String(self.to_owned())
    }
}

impl ToWire for NaiveDate {
    fn to_wire(&self) -> Value {
        Value::String(self.format("%Y-%m-%d").to_string())
    }
}

impl ToWire for DateTime<FixedOffset> {
    fn to_wire(&self) -> Value {
        Value::String(self.to_rfc3339_opts(SecondsFormat::Secs, false))
    }
}

impl ToWire for Secret {
    fn to_wire(&self) -> Value {
        Value::String(self.expose().to_owned())
    }

    fn contains_secret(&self) -> bool {
        true
    }
}

impl ToWire for Value {
    fn to_wire(&self) -> Value {
        self.clone()
    }
}

impl ToWire for Map<String, Value> {
    fn to_wire(&self) -> Value {
        Value::Object(self.clone())
    }
}

impl<T: ToWire> ToWire for Option<T> {
    fn to_wire(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToWire::to_wire)
    }

    fn contains_secret(&self) -> bool {
        self.as_ref().is_some_and(ToWire::contains_secret)
    }
}

impl<T: ToWire> ToWire for Vec<T> {
    fn to_wire(&self) -> Value {
        Value::Array(self.iter().map(ToWire::to_wire).collect())
    }

    fn contains_secret(&self) -> bool {
        self.iter().any(ToWire::contains_secret)
    }
}

impl<T: ToWire> ToWire for BTreeMap<String, T> {
    fn to_wire(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k.clone(), v.to_wire())).collect())
    }

    fn contains_secret(&self) -> bool {
        self.values().any(ToWire::contains_secret)
    }
}

impl<T: ToWire + ?Sized> ToWire for &T {
    fn to_wire(&self) -> Value {
        (**self).to_wire()
    }

    fn contains_secret(&self) -> bool {
        (**self).contains_secret()
    }
}

/// One parameter value as it will be sent.
///
/// Made by [`IntoArg::into_arg`]; a secret one (a bot token, a client id) is never printed.
///
/// A map made from pairs ([`Arg::map`], a generated `.order([("TITLE", "ASC"), ("ID",
/// "DESC")])` setter) and a struct parameter set from a generated builder go out with their
/// keys in the order given: PHP reads `order` in the order sent (the first key sorts first).
/// A [`serde_json::Value`] given as is, and the items of a list ([`Arg::list`], made through
/// [`ToWire`]), go out in the `Value`'s own key order, which is sorted unless serde_json's
/// `preserve_order` feature is on in your build.
#[derive(Clone, PartialEq)]
pub struct Arg {
    value: Value,
    /// The key order of the objects in `value`, where it was given in an order.
    shape: Shape,
    secret: bool,
    /// A value that has no JSON form (a NaN or infinite float, which JSON would carry as
    /// `null`: clearing the field): the call is refused before it is sent.
    invalid: bool,
    /// The batch commands whose results this value refers to (`$result[..]`, made from a
    /// [`BatchRef`](crate::BatchRef)); empty for ordinary values.
    refs: Vec<RefTo>,
}

/// What a `$result[..]` reference inside a value points at: a command of one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefTo {
    /// The batch (each `Client::batch()` gets its own number).
    pub batch: u64,
    /// The command's position in the batch.
    pub index: usize,
    /// A path segment that cannot be written inside `[..]`.
    pub bad: bool,
    /// The reference as sent (`$result[contact][ID]`).
    pub text: std::sync::Arc<str>,
}

/// The order the keys of the objects inside a value are sent in. A `serde_json::Map` sorts
/// its keys unless serde_json's `preserve_order` feature is on (this crate does not turn it
/// on), so the order set is kept beside the value.
#[derive(Clone, Debug, Default, PartialEq)]
enum Shape {
    /// The `Value`'s own order.
    #[default]
    Any,
    /// An object's keys in the order set, each with the shape of its value.
    Object(Vec<(String, Shape)>),
}

/// A value serialized with the key order of its shape.
struct Shaped<'a>(&'a Value, &'a Shape);

impl serde::Serialize for Shaped<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.0, self.1) {
            (Value::Object(map), Shape::Object(keys)) => {
                let mut out = s.serialize_map(Some(map.len()))?;
                let mut sent = 0;
                for (k, shape) in keys {
                    if let Some(v) = map.get(k) {
                        out.serialize_entry(k, &Shaped(v, shape))?;
                        sent += 1;
                    }
                }
                if sent < map.len() {
                    // Keys the shape does not know (not made by this module): after, as they
                    // come.
                    for (k, v) in map {
                        if !keys.iter().any(|(known, _)| known == k) {
                            out.serialize_entry(k, v)?;
                        }
                    }
                }
                out.end()
            }
            (value, _) => value.serialize(s),
        }
    }
}

impl Arg {
    /// A value, sent as given.
    pub fn new(value: Value) -> Arg {
        Arg {
            value,
            shape: Shape::Any,
            secret: false,
            invalid: false,
            refs: Vec::new(),
        }
    }

    /// A `$result[..]` reference to the command `to` of a batch, as text `value`; `bad` when
    /// its path cannot be written.
    pub(crate) fn reference(text: String, to: RefTo, bad: bool) -> Arg {
        let text: std::sync::Arc<str> = text.into();
        Arg {
            value: Value::String(text.to_string()),
            shape: Shape::Any,
            secret: false,
            invalid: false,
            refs: vec![RefTo { bad, text, ..to }],
        }
    }

    /// The wire form of `value`, secret when `value` holds a [`Secret`].
    pub fn of<T: ToWire + ?Sized>(value: &T) -> Arg {
        Arg {
            value: value.to_wire(),
            shape: Shape::Any,
            secret: value.contains_secret(),
            invalid: false,
            refs: Vec::new(),
        }
    }

    /// The same value, never printed by `Debug`.
    #[must_use]
    pub fn secret(mut self) -> Arg {
        self.secret = true;
        self
    }

    /// The same value with every JSON boolean in it written as a `"Y"`/`"N"` flag (spec
    /// type `yn`).
    #[must_use]
    pub fn yn(mut self) -> Arg {
        fn walk(v: &mut Value) {
            match v {
                Value::Bool(b) => *v = Value::String(if *b { "Y" } else { "N" }.into()),
                Value::Array(items) => items.iter_mut().for_each(walk),
                Value::Object(o) => o.values_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut self.value);
        self
    }

    /// The wire value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Whether this value is a secret.
    pub fn is_secret(&self) -> bool {
        self.secret
    }

    /// A list of values (secret when any of them holds a [`Secret`]).
    pub fn list<T, I>(items: I) -> Arg
    where
        T: ToWire,
        I: IntoIterator,
        I::Item: Into<T>,
    {
        let mut secret = false;
        let value = Value::Array(
            items
                .into_iter()
                .map(|x| {
                    let x = x.into();
                    secret |= x.contains_secret();
                    x.to_wire()
                })
                .collect(),
        );
        Arg {
            value,
            shape: Shape::Any,
            secret,
            invalid: false,
            refs: Vec::new(),
        }
    }

    /// A map of values (secret when any of them holds a [`Secret`]), sent with its keys in
    /// the order given (a key given twice keeps its first place and its last value).
    pub fn map<T, K, V, I>(entries: I) -> Arg
    where
        T: ToWire,
        K: Into<String>,
        V: Into<T>,
        I: IntoIterator<Item = (K, V)>,
    {
        let mut secret = false;
        let mut map = Map::new();
        let mut keys = Vec::new();
        for (k, v) in entries {
            let (k, v): (String, T) = (k.into(), v.into());
            secret |= v.contains_secret();
            if map.insert(k.clone(), v.to_wire()).is_none() {
                keys.push((k, Shape::Any));
            }
        }
        Arg {
            value: Value::Object(map),
            shape: Shape::Object(keys),
            secret,
            invalid: false,
            refs: Vec::new(),
        }
    }
}

impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.secret {
            return f.write_str("[redacted]");
        }
        let text = self.value.to_string();
        const MAX: usize = 120;
        if text.len() > MAX {
            let cut = (0..=MAX)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            write!(f, "{}... ({} bytes)", &text[..cut], text.len())
        } else {
            f.write_str(&text)
        }
    }
}

/// Converts a setter's or constructor's argument into the value of a parameter of spec type
/// `T`.
///
/// Implemented for the Rust type of each spec type (`u64` for `id`, `i64`, `f64`, `bool`,
/// [`NaiveDate`], any `DateTime<Tz>` for `datetime`, [`serde_json::Value`] and anything
/// `Into<Value>` for `object`/`json`), for anything `Into<String>` (`&str`, `String`) for
/// `string`, anything `Into<Secret>` for `secret`, and for each generated struct and enum.
#[diagnostic::on_unimplemented(
    message = "a parameter of type `{T}` cannot be set from a `{Self}`",
    label = "expected a `{T}` here",
    note = "setters take the parameter's own type: `u64` for an id, `i64` for an integer, anything `Into<String>` for a string, the generated type for a struct or enum"
)]
pub trait IntoArg<T> {
    /// The value as it will be sent.
    fn into_arg(self) -> Arg;
}

macro_rules! into_arg_exact {
    ($($t:ty),*) => {$(
        impl IntoArg<$t> for $t {
            fn into_arg(self) -> Arg {
                Arg::new(self.to_wire())
            }
        }
    )*};
}
into_arg_exact!(u64, i64, bool, NaiveDate);

impl IntoArg<f64> for f64 {
    fn into_arg(self) -> Arg {
        Arg {
            value: self.to_wire(),
            shape: Shape::Any,
            secret: false,
            invalid: !self.is_finite(),
            refs: Vec::new(),
        }
    }
}

impl<S: Into<String>> IntoArg<String> for S {
    fn into_arg(self) -> Arg {
        Arg::new(Value::String(self.into()))
    }
}

impl<V: Into<Value>> IntoArg<Value> for V {
    fn into_arg(self) -> Arg {
        Arg::new(self.into())
    }
}

impl<Tz: TimeZone> IntoArg<DateTime<FixedOffset>> for DateTime<Tz> {
    fn into_arg(self) -> Arg {
        Arg::new(self.fixed_offset().to_wire())
    }
}

impl<S: Into<Secret>> IntoArg<Secret> for S {
    fn into_arg(self) -> Arg {
        Arg::new(self.into().to_wire()).secret()
    }
}

/// Writes `value` under `key` unless it is `null` (an unset optional field).
#[doc(hidden)]
pub fn put<T: ToWire + ?Sized>(object: &mut Map<String, Value>, key: &str, value: &T) {
    let v = value.to_wire();
    if !v.is_null() {
        object.insert(key.to_owned(), v);
    }
}

/// [`put`] for a `yn` field: booleans written as `"Y"`/`"N"`.
#[doc(hidden)]
pub fn put_yn<T: ToWire + ?Sized>(object: &mut Map<String, Value>, key: &str, value: &T) {
    let v = Arg::new(value.to_wire()).yn().value;
    if !v.is_null() {
        object.insert(key.to_owned(), v);
    }
}

/// The parameters of one call: names (verbatim wire names) and values, in the order set.
///
/// Generated requests hold one and fill it from their constructor and setters; a request
/// type of your own returns one from [`Method::wire_params`](crate::Method::wire_params).
///
/// ```
/// use bitrix24::{Arg, Params};
/// let p = Params::new().with("ID", Arg::new(42.into())).with("select", Arg::new(serde_json::json!(["ID"])));
/// assert_eq!(p.to_value(), serde_json::json!({"ID": 42, "select": ["ID"]}));
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Params {
    entries: Vec<(Cow<'static, str>, Arg)>,
    /// Per-request call settings (retry, deadline); not sent.
    options: Option<Box<crate::client::CallOptions>>,
}

impl Params {
    /// No parameters.
    pub fn new() -> Params {
        Params::default()
    }

    /// Sets `name` (replacing an earlier value of the same name). Replacing a secret value
    /// keeps the new one secret too: an untyped `.extra(name, ..)` over a typed secret
    /// parameter is not printed either.
    pub fn set(&mut self, name: impl Into<Cow<'static, str>>, mut value: Arg) {
        let name = name.into();
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some(entry) => {
                value.secret |= entry.1.secret;
                entry.1 = value;
            }
            None => self.entries.push((name, value)),
        }
    }

    /// How the call carrying these parameters is retried, instead of the client's
    /// [`Retry`](crate::Retry). Not sent to the portal.
    pub fn set_retry(&mut self, retry: crate::Retry) {
        self.options.get_or_insert_with(Default::default).retry = Some(retry);
    }

    /// The deadline of the whole call carrying these parameters (waits and retries included),
    /// instead of the client's [`timeout`](crate::ClientBuilder::timeout). Not sent
    /// to the portal.
    pub fn set_timeout(&mut self, timeout: std::time::Duration) {
        self.options.get_or_insert_with(Default::default).timeout = Some(timeout);
    }

    pub(crate) fn options(&self) -> Option<&crate::client::CallOptions> {
        self.options.as_deref()
    }

    pub(crate) fn take_options(&mut self) -> crate::client::CallOptions {
        self.options.take().map(|o| *o).unwrap_or_default()
    }

    /// The first parameter whose value has no JSON form (a NaN or infinite number, also
    /// inside a struct parameter).
    pub(crate) fn unsendable(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, v)| v.invalid)
            .map(|(k, _)| k.as_ref())
    }

    /// The batch commands these parameters refer to through `$result[..]` references.
    pub(crate) fn refs(&self) -> impl Iterator<Item = &RefTo> + '_ {
        self.entries.iter().flat_map(|(_, v)| v.refs.iter())
    }

    /// The first string value (its path, `fields[TITLE]`) that holds text the portal
    /// replaces inside a batch ([`batch_would_replace`]) but is not one of the references set
    /// (nor in `allowed`): it would not reach the method as written.
    pub(crate) fn stray_reference(&self, allowed: &[&str]) -> Option<String> {
        fn walk(path: &str, v: &Value, ok: &dyn Fn(&str) -> bool) -> Option<String> {
            match v {
                Value::String(s) if batch_would_replace(s) && !ok(s) => Some(path.to_owned()),
                Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .find_map(|(i, v)| walk(&format!("{path}[{i}]"), v, ok)),
                Value::Object(o) => o
                    .iter()
                    .find_map(|(k, v)| walk(&format!("{path}[{k}]"), v, ok)),
                _ => None,
            }
        }
        let ok = |s: &str| allowed.contains(&s) || self.refs().any(|r| &*r.text == s);
        self.entries
            .iter()
            .find_map(|(k, v)| walk(k, &v.value, &ok))
    }

    /// Whether a reference in these parameters has a path that cannot be written.
    pub(crate) fn has_bad_ref(&self) -> bool {
        self.refs().any(|r| r.bad)
    }

    /// Whether any value is secret (never printed by `Debug`).
    pub fn contains_secret(&self) -> bool {
        self.entries.iter().any(|(_, v)| v.secret)
    }

    /// [`set`](Self::set), by value.
    #[must_use]
    pub fn with(mut self, name: impl Into<Cow<'static, str>>, value: Arg) -> Params {
        self.set(name, value);
        self
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| &v.value)
    }

    /// Whether `name` is set to something other than `null`.
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.is_null())
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| k == name)?;
        Some(self.entries.remove(i).1.value)
    }

    /// The parameters in the order set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arg)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// How many parameters are set.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The parameters as one JSON object. Its key order is the `Value`'s (sorted unless
    /// serde_json's `preserve_order` feature is on); serializing the `Params` themselves
    /// (what the client sends) keeps the order set, nested maps included.
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.value.clone()))
                .collect(),
        )
    }

    /// The parameters as the value of a parameter of struct type (secret if any part is),
    /// keeping the order set.
    pub fn into_arg(self) -> Arg {
        let secret = self.entries.iter().any(|(_, v)| v.secret);
        let invalid = self.entries.iter().any(|(_, v)| v.invalid);
        let refs = self
            .entries
            .iter()
            .flat_map(|(_, v)| v.refs.iter().cloned())
            .collect();
        let mut object = Map::new();
        let mut keys = Vec::with_capacity(self.entries.len());
        for (k, v) in self.entries {
            let k = k.into_owned();
            object.insert(k.clone(), v.value);
            keys.push((k, v.shape));
        }
        Arg {
            value: Value::Object(object),
            shape: Shape::Object(keys),
            secret,
            invalid,
            refs,
        }
    }

    /// Parameters from a JSON object (`null` is none).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for any other JSON value.
    pub fn from_value(value: Value) -> Result<Params, Error> {
        match value {
            Value::Null => Ok(Params::new()),
            Value::Object(o) => Ok(Params {
                entries: o
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Arg::new(v)))
                    .collect(),
                options: None,
            }),
            _ => Err(Error::new(ErrorKind::InvalidInput)
                .with_message("parameters must be a JSON object")),
        }
    }

    /// Parameters from anything that serializes to a JSON object (a `serde` struct of yours).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when it does not serialize, or not to an object.
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Params, Error> {
        let value = serde_json::to_value(value)
            .map_err(|e| Error::new(ErrorKind::InvalidInput).with_message(e.to_string()))?;
        Params::from_value(value)
    }
}

/// A JSON object of the parameters in the order set, and the maps inside them in the order
/// their keys were given: the body the client sends.
impl serde::Serialize for Params {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k.as_ref(), &Shaped(&v.value, &v.shape))?;
        }
        map.end()
    }
}

/// Whether the portal rewrites `text` when it is a value of a `batch` command: Bitrix's
/// `CRestUtil::processBatchElement` matches `/\$(result|next|total|time|error)([^\s]*)/i`
/// in every value and replaces the match when a `[..]` (`\[([^\]]+)\]`) follows the name
/// before the next whitespace: `$result[a]`, but also `$RESULT[a]`, `$total[a]`,
/// `$error['code']`, `$results[2024]`, `$result_total[a]`.
pub(crate) fn batch_would_replace(text: &str) -> bool {
    // PCRE's `\s` without the `u` flag: ASCII whitespace, vertical tab included.
    let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r');
    let mut from = 0;
    while let Some(at) = text[from..].find('$') {
        let rest = &text[from + at + 1..];
        from += at + 1;
        for name in ["result", "next", "total", "time", "error"] {
            let named = rest
                .get(..name.len())
                .is_some_and(|n| n.eq_ignore_ascii_case(name));
            if !named {
                continue;
            }
            let run = rest[name.len()..].split(space).next().unwrap_or("");
            // A `[` with at least one character before the next `]`.
            let mut tail = run;
            while let Some(open) = tail.find('[') {
                let after = &tail[open + 1..];
                match after.find(']') {
                    Some(close) if close > 0 => return true,
                    Some(_) => tail = after,
                    None => break,
                }
            }
        }
    }
    false
}

/// A value shown as `[redacted]`.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Secret values, and the values of parameters named like credentials (`botToken`,
/// `password`, `CLIENT_ID`... set through `.extra(..)` or [`Params::from_value`]), are shown
/// as `[redacted]`.
impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.entries {
            if !v.secret && crate::error::looks_secret(k) {
                map.entry(&k.as_ref(), &Redacted);
            } else {
                map.entry(&k.as_ref(), v);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_encoded_once_when_set() {
        let when = DateTime::parse_from_rfc3339("2024-05-01T10:00:00+03:00").unwrap();
        let p = Params::new()
            .with("ID", IntoArg::<u64>::into_arg(42u64))
            .with("TITLE", IntoArg::<String>::into_arg("Deal"))
            .with("SYSTEM", IntoArg::<bool>::into_arg(true).yn())
            .with("FLAGS", Arg::list::<bool, _>([true, false]).yn())
            .with("WHEN", IntoArg::<DateTime<FixedOffset>>::into_arg(when))
            .with(
                "DAY",
                IntoArg::<NaiveDate>::into_arg(NaiveDate::from_ymd_opt(2024, 5, 1).unwrap()),
            )
            .with("select", Arg::list::<String, _>(["ID", "TITLE"]))
            .with("order", Arg::map::<String, _, _, _>([("ID", "ASC")]));
        assert_eq!(
            p.to_value(),
            json!({"ID": 42, "TITLE": "Deal", "SYSTEM": "Y", "FLAGS": ["Y", "N"],
                   "WHEN": "2024-05-01T10:00:00+03:00", "DAY": "2024-05-01",
                   "select": ["ID", "TITLE"], "order": {"ID": "ASC"}})
        );
        assert_eq!(serde_json::to_value(&p).unwrap(), p.to_value());
    }

    #[test]
    fn setting_twice_replaces_and_secrets_are_not_printed() {
        let mut p = Params::new();
        p.set("botToken", IntoArg::<Secret>::into_arg("s3cr3t"));
        p.set("ID", IntoArg::<u64>::into_arg(1u64));
        p.set("ID", IntoArg::<u64>::into_arg(2u64));
        assert_eq!(p.len(), 2);
        assert_eq!(p.get("ID"), Some(&json!(2)));
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("[redacted]"));
        let nested = Params::new().with("fields", p.into_arg());
        assert!(!format!("{nested:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_body_keeps_the_order_set_at_every_level() {
        let fields = Params::new()
            .with("TITLE", Arg::new(json!("Deal")))
            .with(
                "ORDER",
                Arg::map::<String, _, _, _>([("Z", "1"), ("A", "2")]),
            )
            .with("BEGINDATE", Arg::new(json!("2024-05-01")));
        let p = Params::new()
            .with(
                "order",
                Arg::map::<String, _, _, _>([("TITLE", "ASC"), ("ID", "DESC")]),
            )
            .with(
                "filter",
                Arg::map::<Value, _, _, _>([(">ID", json!(5)), ("<ID", json!(9))]),
            )
            .with("fields", fields.into_arg())
            .with("ID", Arg::new(json!(7)))
            .with(
                "dup",
                Arg::map::<String, _, _, _>([("b", "1"), ("a", "2"), ("b", "3")]),
            );
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"order":{"TITLE":"ASC","ID":"DESC"},"filter":{">ID":5,"<ID":9},"fields":{"TITLE":"Deal","ORDER":{"Z":"1","A":"2"},"BEGINDATE":"2024-05-01"},"ID":7,"dup":{"b":"3","a":"2"}}"#
        );
        // The values are the same either way.
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), p.to_value());
        // A `yn` map keeps its order too.
        let flags = Params::new().with(
            "F",
            Arg::map::<bool, _, _, _>([("Y_LAST", true), ("A_FIRST", false)]).yn(),
        );
        assert_eq!(
            serde_json::to_string(&flags).unwrap(),
            r#"{"F":{"Y_LAST":"Y","A_FIRST":"N"}}"#
        );
    }

    #[test]
    fn text_the_portal_replaces_in_a_batch() {
        for text in [
            "$result[a]",
            "$RESULT[a]",
            "x $total[a] y",
            "$next[0]",
            "$time[a]",
            "echo $error['code'];",
            "$results[2024]",
            "$result_total[a]",
            "$result[[a]",
            "$resultx]y[z]",
        ] {
            assert!(batch_would_replace(text), "{text}");
        }
        for text in [
            "$result is [not] a reference",
            "$result[]",
            "$result[open",
            "$5 [note]",
            "Totals $Totals [EU]",
            "$resul[a]",
            "price: 5$",
            "Ёж $",
            "",
        ] {
            assert!(!batch_would_replace(text), "{text}");
        }
    }

    #[test]
    fn long_values_are_cut_in_debug() {
        let p = Params::new().with("CONTENT", Arg::new(Value::String("x".repeat(5000))));
        let shown = format!("{p:?}");
        assert!(shown.len() < 300, "{}", shown.len());
        assert!(shown.contains("5002 bytes"));
    }
}
