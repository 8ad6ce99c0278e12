//! `batch` (PROTOCOL.md 5): `cmd` as a map or list of `method?query` strings, `halt`,
//! `$result[key][...]` references, the 50-command cap, nested batch refused.

use bitrix24::codes;
use serde_json::{json, Map, Value};

use super::{run, ApiError, Ctx, Outcome, Reply};
use crate::order::SentOrder;
use crate::util;

/// Most commands in one batch.
pub(crate) const MAX_COMMANDS: usize = 50;

/// The five maps of a batch answer.
#[derive(Default)]
struct Maps {
    result: Map<String, Value>,
    error: Map<String, Value>,
    total: Map<String, Value>,
    next: Map<String, Value>,
    time: Map<String, Value>,
}

impl Maps {
    fn named(&self, name: &str) -> Option<&Map<String, Value>> {
        match name {
            "result" => Some(&self.result),
            "result_error" => Some(&self.error),
            "result_total" => Some(&self.total),
            "result_next" => Some(&self.next),
            "result_time" => Some(&self.time),
            _ => None,
        }
    }
}

pub(crate) fn batch(ctx: &mut Ctx<'_>, p: &Value) -> Outcome {
    let halt = util::get(p, "halt")
        .and_then(util::as_bool)
        .unwrap_or(false);
    // Commands run in the order sent (a `Value` sorts the keys of `cmd`).
    let commands: Vec<(String, Value)> = match util::get(p, "cmd") {
        Some(Value::Object(m)) => ctx
            .order
            .entries("cmd", m)
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v.clone()))
            .collect(),
        _ => Vec::new(),
    };
    if commands.len() > MAX_COMMANDS {
        return Err(ApiError::new(
            codes::ERROR_BATCH_LENGTH_EXCEEDED,
            "Max batch length exceeded",
        ));
    }
    let mut maps = Maps::default();
    let mut elapsed = 0.0;
    let was_in_batch = ctx.in_batch;
    ctx.in_batch = true;
    // The answer's maps list the commands in this order, as PHP's arrays would.
    let ran: Vec<String> = commands.iter().map(|(k, _)| k.clone()).collect();
    let batch_order = std::mem::take(&mut ctx.order);
    for (key, command) in commands {
        let Some(command) = command.as_str().map(str::to_owned) else {
            maps.error.insert(
                key,
                ApiError::new(codes::INVALID_REQUEST, "Command must be a string").body(),
            );
            if halt {
                break;
            }
            continue;
        };
        let (method, query) = command.split_once('?').unwrap_or((command.as_str(), ""));
        let method = method.trim().trim_end_matches(".json");
        let limits = bitrix24::php::Limits::default();
        let decoded = bitrix24::php::decode(query.as_bytes(), limits).and_then(|v| {
            let sent = bitrix24::php::decode_ordered(query.as_bytes(), limits)?;
            Ok((v, sent))
        });
        let params = match decoded {
            Ok((mut v, sent)) => {
                substitute(&mut v, &maps);
                // The command's own params, in the order its query string lists them.
                ctx.order = SentOrder::of(sent);
                v
            }
            Err(e) => {
                maps.error.insert(
                    key,
                    ApiError::new(codes::INVALID_REQUEST, e.to_string()).body(),
                );
                if halt {
                    break;
                }
                continue;
            }
        };
        if method.eq_ignore_ascii_case("batch") {
            maps.error.insert(
                key,
                ApiError::new(
                    codes::ERROR_BATCH_METHOD_NOT_ALLOWED,
                    "Method is not allowed for batch usage",
                )
                .body(),
            );
            if halt {
                break;
            }
            continue;
        }
        let (outcome, time) = run(ctx, method, &params, ctx.now + elapsed);
        elapsed += time.processing.unwrap_or(0.0);
        let ran = !matches!(&outcome, Err(e) if [codes::INSUFFICIENT_SCOPE, codes::ERROR_METHOD_NOT_FOUND, codes::OPERATION_TIME_LIMIT].iter().any(|c| c.eq_ignore_ascii_case(&e.code)));
        let failed = outcome.is_err();
        match outcome {
            Ok(reply) => {
                maps.result.insert(key.clone(), reply.result);
                if let Some(t) = reply.total {
                    maps.total.insert(key.clone(), json!(t));
                }
                if let Some(n) = reply.next {
                    maps.next.insert(key.clone(), json!(n));
                }
            }
            Err(e) => {
                maps.error.insert(key.clone(), e.body());
            }
        }
        if ran {
            maps.time
                .insert(key, serde_json::to_value(&time).unwrap_or(Value::Null));
        }
        if failed && halt {
            break;
        }
    }
    ctx.in_batch = was_in_batch;
    ctx.order = batch_order;
    ctx.ran_order = Some(ran);
    ctx.cost = elapsed;
    Ok(Reply::ok(json!({
        "result": util::php_array(maps.result),
        "result_error": util::php_array(maps.error),
        "result_total": util::php_array(maps.total),
        "result_next": util::php_array(maps.next),
        "result_time": util::php_array(maps.time),
    })))
}

/// Replaces `$result[key][path...]` (and `$result_total[...]` etc.) in every string leaf.
/// A leaf that is exactly one reference takes the referenced value whole.
fn substitute(v: &mut Value, maps: &Maps) {
    match v {
        Value::String(s) if s.contains('$') => {
            if let Some((value, consumed)) = reference(s, maps) {
                if consumed == s.len() {
                    *v = value;
                    return;
                }
            }
            *s = replace_all(s, maps);
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, maps)),
        Value::Object(m) => m.values_mut().for_each(|x| substitute(x, maps)),
        _ => {}
    }
}

/// A reference at the start of `s`: its value and how many bytes it spans.
fn reference(s: &str, maps: &Maps) -> Option<(Value, usize)> {
    let rest = s.strip_prefix('$')?;
    let name_len = rest.find('[')?;
    let name = &rest[..name_len];
    let map = maps.named(name)?;
    let mut pos = 1 + name_len;
    let mut segments = Vec::new();
    while s[pos..].starts_with('[') {
        let close = s[pos..].find(']')?;
        segments.push(&s[pos + 1..pos + close]);
        pos += close + 1;
    }
    let (first, path) = segments.split_first()?;
    let mut cur = map.get(*first).cloned().unwrap_or(Value::Null);
    for seg in path {
        cur = match cur {
            Value::Object(mut m) => m.remove(*seg).unwrap_or(Value::Null),
            Value::Array(mut a) => match seg.parse::<usize>() {
                Ok(i) if i < a.len() => a.swap_remove(i),
                _ => Value::Null,
            },
            _ => Value::Null,
        };
    }
    Some((cur, pos))
}

fn replace_all(s: &str, maps: &Maps) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with('$') {
            if let Some((value, len)) = reference(&s[i..], maps) {
                out.push_str(&util::text(&value).unwrap_or_default());
                i += len;
                continue;
            }
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve() {
        let mut maps = Maps::default();
        maps.result
            .insert("u".into(), json!({"ID": "7", "UF_DEPARTMENT": [3, 4]}));
        maps.result
            .insert("l".into(), json!([{"ID": "10"}, {"ID": "11"}]));
        let mut v = json!({"ID": "$result[u][UF_DEPARTMENT][1]", "x": "id=$result[l][1][ID]!", "d": "$result[u][UF_DEPARTMENT]", "m": "$result[nope][x]"});
        substitute(&mut v, &maps);
        assert_eq!(v, json!({"ID": 4, "x": "id=11!", "d": [3, 4], "m": null}));
    }
}
