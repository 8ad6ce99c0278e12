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
    // PHP reads `if ($halt)`: "false", "N" and "true" all halt; 0, "0", "", false do not.
    let halt = util::get(p, "halt").is_some_and(util::php_truthy);
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
                if let Err(e) = substitute(&mut v, &maps) {
                    maps.error.insert(key, e.body());
                    if halt {
                        break;
                    }
                    continue;
                }
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
        let queued = ctx
            .st
            .command_faults
            .get_mut(&crate::server::method_key(method))
            .and_then(|q| q.pop_front());
        if let Some(fault) = queued {
            let body = crate::faults::json_error(&fault)
                .map(|(_, body, _)| body)
                .unwrap_or_else(|| {
                    json!({"error": codes::INTERNAL_SERVER_ERROR, "error_description": "Internal server error"})
                });
            maps.error.insert(key, body);
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
/// A leaf that is exactly one reference takes the referenced value whole; a reference inside
/// a longer string must name a scalar, which is written into it.
///
/// A reference that cannot be resolved fails the command (`INVALID_ARG_VALUE`) instead of
/// becoming `null`: a real portal substitutes whatever its walk of the path reached (the whole
/// page of a list that has no row 49, say), and the method then fails on that value or, worse,
/// runs without the condition. So does a reference to a command that has not run (a later
/// one, an unknown key) or that failed.
fn substitute(v: &mut Value, maps: &Maps) -> Result<(), ApiError> {
    match v {
        Value::String(s) if s.contains('$') => {
            if let Some((value, consumed)) = reference(s, maps)? {
                if consumed == s.len() {
                    *v = value;
                    return Ok(());
                }
            }
            *s = replace_all(s, maps)?;
            Ok(())
        }
        Value::Array(a) => a.iter_mut().try_for_each(|x| substitute(x, maps)),
        Value::Object(m) => m.values_mut().try_for_each(|x| substitute(x, maps)),
        _ => Ok(()),
    }
}

fn unresolved(text: &str, why: String) -> ApiError {
    ApiError::new(
        codes::INVALID_ARG_VALUE,
        format!("Batch reference {text} cannot be resolved: {why}"),
    )
}

/// A reference at the start of `s`: its value and how many bytes it spans. `Ok(None)` when
/// `s` does not start with one (`$` and text that names none of the five maps, or brackets
/// that do not close, stay literal); `Err` when it names a map but the path does not resolve.
fn reference(s: &str, maps: &Maps) -> Result<Option<(Value, usize)>, ApiError> {
    let Some(rest) = s.strip_prefix('$') else {
        return Ok(None);
    };
    let Some(name_len) = rest.find('[') else {
        return Ok(None);
    };
    let name = &rest[..name_len];
    let Some(map) = maps.named(name) else {
        return Ok(None);
    };
    let mut pos = 1 + name_len;
    let mut segments = Vec::new();
    while s[pos..].starts_with('[') {
        let Some(close) = s[pos..].find(']') else {
            break;
        };
        segments.push(&s[pos + 1..pos + close]);
        pos += close + 1;
    }
    let Some((first, path)) = segments.split_first() else {
        return Ok(None);
    };
    let text = &s[..pos];
    let Some(mut cur) = map.get(*first) else {
        let why = if maps.error.contains_key(*first) {
            format!("command '{first}' failed")
        } else if maps.result.contains_key(*first) {
            format!("command '{first}' has no entry in ${name}")
        } else {
            format!("no command '{first}' has run before this one")
        };
        return Err(unresolved(text, why));
    };
    let mut walked = format!("${name}[{first}]");
    for seg in path {
        let next = match cur {
            Value::Object(m) => m.get(*seg),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        let Some(next) = next else {
            let what = match cur {
                Value::Array(a) => format!("a list of {} item(s)", a.len()),
                Value::Object(_) => "an object".to_owned(),
                other => format!("the scalar {other}"),
            };
            return Err(unresolved(
                text,
                format!("{walked} is {what}, with no [{seg}]"),
            ));
        };
        walked.push_str(&format!("[{seg}]"));
        cur = next;
    }
    Ok(Some((cur.clone(), pos)))
}

fn replace_all(s: &str, maps: &Maps) -> Result<String, ApiError> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i..].starts_with('$') {
            if let Some((value, len)) = reference(&s[i..], maps)? {
                let text = match &value {
                    Value::Null => String::new(),
                    v => util::text(v).ok_or_else(|| {
                        unresolved(
                            &s[i..i + len],
                            "it names a list or an object, which cannot be written inside a longer value".to_owned(),
                        )
                    })?,
                };
                out.push_str(&text);
                i += len;
                continue;
            }
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    Ok(out)
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
        maps.error.insert(
            "bad".into(),
            json!({"error": "", "error_description": "Not found"}),
        );
        let mut v = json!({"ID": "$result[u][UF_DEPARTMENT][1]", "x": "id=$result[l][1][ID]!", "d": "$result[u][UF_DEPARTMENT]", "lit": "$5 and $result and $other[x] and $result[open"});
        substitute(&mut v, &maps).unwrap();
        assert_eq!(
            v,
            json!({"ID": 4, "x": "id=11!", "d": [3, 4], "lit": "$5 and $result and $other[x] and $result[open"})
        );
        let fails = |text: &str| {
            let mut v = json!({"filter": {">ID": text}});
            let e = substitute(&mut v, &maps).unwrap_err();
            assert_eq!(e.code, codes::INVALID_ARG_VALUE, "{text}");
            e.description
        };
        // Past the end of a list: the walk stops at the list, and the command fails.
        let d = fails("$result[l][49][ID]");
        assert!(
            d.contains("$result[l] is a list of 2 item(s), with no [49]"),
            "{d}"
        );
        assert!(fails("$result[l][1][NOPE]").contains("$result[l][1] is an object"));
        assert!(fails("$result[u][ID][x]").contains("the scalar \"7\""));
        // Not run (later or unknown), or failed.
        assert!(fails("$result[later][ID]").contains("no command 'later' has run"));
        assert!(fails("$result[bad][ID]").contains("command 'bad' failed"));
        assert!(fails("$result_next[u]").contains("command 'u' has no entry in $result_next"));
        // Inside a longer string a reference must be a scalar.
        assert!(fails("ids: $result[u][UF_DEPARTMENT]").contains("cannot be written inside"));
    }

    #[test]
    fn halt_reads_as_php_truthiness() {
        for (v, want) in [
            (json!(true), true),
            (json!(1), true),
            (json!("1"), true),
            (json!("Y"), true),
            (json!("true"), true),
            (json!("false"), true),
            (json!("N"), true),
            (json!(false), false),
            (json!(0), false),
            (json!("0"), false),
            (json!(""), false),
            (json!(null), false),
            (json!([]), false),
        ] {
            assert_eq!(util::php_truthy(&v), want, "{v}");
        }
    }
}
