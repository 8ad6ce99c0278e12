//! Small helpers: tolerant parameter access, deterministic tokens.

use serde_json::{Map, Value};

/// The value of `key` in the params object, matched case-insensitively (portals read
/// `ID` and `id` alike).
pub(crate) fn get<'a>(p: &'a Value, key: &str) -> Option<&'a Value> {
    let map = p.as_object()?;
    if let Some(v) = map.get(key) {
        return Some(v);
    }
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// PHP's `empty()`: `null`, `false`, `0`, `0.0`, `""`, `"0"`, `[]` and `{}` are empty.
///
/// A call can come as a JSON body or as a PHP query string inside `batch`, where JSON
/// `null`, `[]` and `{}` all become `key=` (an empty string) and `false` becomes `0`; a
/// portal reading its params with `empty()` makes them all the same, and so does the fake.
pub(crate) fn php_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == "0",
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// PHP truthiness (`if ($v)`): the opposite of [`php_empty`], so `"false"`, `"N"` and
/// `"0.0"` are true.
pub(crate) fn php_truthy(v: &Value) -> bool {
    !php_empty(v)
}

/// The value of param `key` ([`get`]), `None` when it is absent or [`php_empty`]: a `select`
/// of `[]` or `""`, a `filter` of `{}` or `""` read as no select, no filter.
pub(crate) fn param<'a>(p: &'a Value, key: &str) -> Option<&'a Value> {
    get(p, key).filter(|v| !php_empty(v))
}

/// A scalar as text (`"5"`, `5`, `true` -> `"5"`, `"5"`, `"1"`); `None` for null, arrays
/// and objects.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        _ => None,
    }
}

/// A non-empty trimmed string parameter.
pub(crate) fn p_str(p: &Value, key: &str) -> Option<String> {
    get(p, key)
        .and_then(text)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// An unsigned integer parameter (`5`, `"5"`).
pub(crate) fn p_u64(p: &Value, key: &str) -> Option<u64> {
    get(p, key).and_then(as_u64)
}

/// An unsigned integer from a number or a numeric string.
pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A flag parameter: `Y`/`N`, `1`/`0`, `true`/`false`.
pub(crate) fn p_bool(p: &Value, key: &str) -> Option<bool> {
    get(p, key).and_then(as_bool)
}

/// A flag from any of its wire spellings: JSON `true`, `"1"`, `"Y"`, `"true"` (any case) are
/// true; `false`, `"0"`, `"N"`, `"false"`, `""`, and `null`, `[]`, `{}` (which a query string
/// sends as `key=`) are false; anything else is no flag (`None`, the caller's default).
pub(crate) fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Null => Some(false),
        Value::Array(a) if a.is_empty() => Some(false),
        Value::Object(m) if m.is_empty() => Some(false),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "y" | "1" | "true" | "yes" => Some(true),
            "n" | "0" | "false" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `Y` or `N`.
pub(crate) fn yn(b: bool) -> &'static str {
    if b {
        "Y"
    } else {
        "N"
    }
}

/// An object parameter (JSON object, or a PHP form map); a JSON string holding an object is
/// parsed too, as portals accept `KEYBOARD` both ways. `None` when absent or
/// [`php_empty`] (so `{}`, `[]`, `""` and `null` alike).
pub(crate) fn p_obj(p: &Value, key: &str) -> Option<Map<String, Value>> {
    match param(p, key)? {
        Value::Object(m) => Some(m.clone()),
        Value::String(s) => serde_json::from_str::<Value>(s).ok().and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        }),
        _ => None,
    }
}

/// A list parameter: a JSON array, a PHP form list, or an object keyed by positions (in
/// numeric order: a `Map` sorts "10" before "2"). Empty when absent or [`php_empty`].
pub(crate) fn p_list(p: &Value, key: &str) -> Vec<Value> {
    param(p, key).map(list_items).unwrap_or_default()
}

/// The items of a list value: an array, an object keyed by positions (numeric order), or a
/// single scalar; nothing for a [`php_empty`] value.
pub(crate) fn list_items(v: &Value) -> Vec<Value> {
    if php_empty(v) {
        return Vec::new();
    }
    match v {
        Value::Array(a) => a.clone(),
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            if entries.iter().all(|(k, _)| k.parse::<u64>().is_ok()) {
                entries.sort_by_key(|(k, _)| k.parse::<u64>().unwrap_or(u64::MAX));
            }
            entries.into_iter().map(|(_, v)| v.clone()).collect()
        }
        v @ (Value::String(_) | Value::Number(_)) => vec![v.clone()],
        _ => Vec::new(),
    }
}

/// SplitMix64: a deterministic 64-bit mix.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A deterministic hash of a few numbers.
pub(crate) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED_u64, |acc, p| mix(acc ^ mix(*p)))
}

/// A hash of a string.
pub(crate) fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `len` characters of lower-case letters and digits drawn from `seed`.
pub(crate) fn token(seed: u64, len: usize) -> String {
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut state = seed;
    while out.len() < len {
        state = mix(state);
        let mut x = state;
        for _ in 0..10 {
            if out.len() == len {
                break;
            }
            out.push(ALPHA[(x % ALPHA.len() as u64) as usize] as char);
            x /= ALPHA.len() as u64;
        }
    }
    out
}

/// `len` hex digits drawn from `seed`.
pub(crate) fn hex(seed: u64, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut state = seed;
    while out.len() < len {
        state = mix(state);
        out.push_str(&format!("{state:016x}"));
    }
    out.truncate(len);
    out
}

/// A map with keys `0..n` in order becomes a JSON array, and an empty map `[]`, as PHP's
/// `json_encode` prints them; other maps stay objects.
///
/// The keys are checked as a set, in numeric order: a `Map` sorts them as text ("10" before
/// "2"), and the fake fills these maps in key order (commands of a list, ids ascending).
pub(crate) fn php_array(mut map: Map<String, Value>) -> Value {
    if map.is_empty() {
        return Value::Array(Vec::new());
    }
    let n = map.len();
    let is_list = (0..n).all(|i| map.contains_key(&i.to_string()));
    if is_list {
        Value::Array((0..n).filter_map(|i| map.remove(&i.to_string())).collect())
    } else {
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_are_tolerant() {
        let p = json!({"ID": "5", "flag": "Y", "n": 7, "obj": "{\"a\":1}"});
        assert_eq!(p_u64(&p, "id"), Some(5));
        assert_eq!(p_bool(&p, "FLAG"), Some(true));
        assert_eq!(p_u64(&p, "n"), Some(7));
        assert_eq!(p_obj(&p, "obj").unwrap()["a"], 1);
        assert_eq!(token(1, 32).len(), 32);
        assert_eq!(token(1, 32), token(1, 32));
        assert_eq!(php_array(Map::new()), json!([]));
        // Eleven and more: "10" sorts before "2" as text, still a list in numeric order.
        let map: Map<String, Value> = (0..12).map(|i| (i.to_string(), json!(i))).collect();
        assert_eq!(
            php_array(map),
            json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        );
        let holes: Map<String, Value> = [("0", 1), ("2", 2)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        assert!(php_array(holes).is_object());
        let p = json!({"s": {"10": "c", "2": "b", "0": "a"}});
        assert_eq!(p_list(&p, "s"), [json!("a"), json!("b"), json!("c")]);
    }

    #[test]
    fn empty_values_read_alike_and_flags_in_every_spelling() {
        // What a query string makes of JSON null, [], {}: `key=`, an empty string.
        let p = json!({"a": null, "b": [], "c": {}, "d": "", "e": "0", "f": false, "g": 0, "h": ["x"], "i": "x"});
        for k in ["a", "b", "c", "d", "e", "f", "g"] {
            assert!(param(&p, k).is_none(), "{k}");
            assert!(p_list(&p, k).is_empty(), "{k}");
            assert!(p_obj(&p, k).is_none(), "{k}");
        }
        assert_eq!(p_list(&p, "h"), [json!("x")]);
        assert_eq!(p_list(&p, "i"), [json!("x")]);
        for (v, want) in [
            (json!(true), Some(true)),
            (json!("1"), Some(true)),
            (json!("Y"), Some(true)),
            (json!("true"), Some(true)),
            (json!(1), Some(true)),
            (json!(false), Some(false)),
            (json!("0"), Some(false)),
            (json!("N"), Some(false)),
            (json!("false"), Some(false)),
            (json!(""), Some(false)),
            (json!(null), Some(false)),
            (json!([]), Some(false)),
            (json!({}), Some(false)),
            (json!("maybe"), None),
            (json!(["Y"]), None),
        ] {
            assert_eq!(as_bool(&v), want, "{v}");
        }
    }
}
