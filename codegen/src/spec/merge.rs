//! Merging the raw entries of all files: hand entries replace generated ones, overrides
//! patch what they name (and a stale override is an error).

use std::collections::HashMap;

use super::read::{near_miss, Ctx, RawMethod, RawSpec};

// ---------------------------------------------------------------------------------------
// Merging hand entries, generated entries and overrides
// ---------------------------------------------------------------------------------------

pub(super) fn merge(cx: &mut Ctx<'_>, raw: &mut RawSpec) {
    // Hand entries replace generated ones of the same name; two entries of the same kind
    // with one name are an error.
    // REST method names are case-insensitive: `imbot.Message.add` is `imbot.message.add`.
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let mut keep = vec![true; raw.methods.len()];
    for i in 0..raw.methods.len() {
        let Some(name) = raw.methods[i].name.clone() else {
            keep[i] = false;
            continue;
        };
        let key = name.value.to_ascii_lowercase();
        match by_name.get(&key) {
            None => {
                by_name.insert(key, i);
            }
            Some(&j) => {
                let (a, b) = (raw.methods[j].imported, raw.methods[i].imported);
                if a == b {
                    let first = raw.methods[j]
                        .name
                        .as_ref()
                        .map_or("", |n| n.value.as_str());
                    let help = if raw.methods[j].file == raw.methods[i].file {
                        None
                    } else {
                        Some(format!(
                            "the other is in {}",
                            cx.files[raw.methods[j].file].name
                        ))
                    };
                    cx.err(raw.methods[i].file, name.offset, format!("method `{}`", name.value), format!("duplicate method (already declared as `{first}`; REST method names are case-insensitive)"), help);
                    keep[i] = false;
                } else if a {
                    // The earlier one was generated: the hand entry wins.
                    keep[j] = false;
                    by_name.insert(key, i);
                } else {
                    keep[i] = false;
                }
            }
        }
    }
    let mut methods: Vec<RawMethod> = Vec::new();
    for (m, k) in raw.methods.drain(..).zip(keep) {
        if k {
            methods.push(m);
        }
    }
    // Hand entries first, in file order, then generated ones.
    methods.sort_by_key(|m| m.imported);
    raw.methods = methods;

    for o in std::mem::take(&mut raw.overrides) {
        let file = o.patch.file;
        let Some(m) = raw
            .methods
            .iter_mut()
            .find(|m| m.name.as_ref().is_some_and(|n| n.value == o.method.value))
        else {
            let names = raw
                .methods
                .iter()
                .filter_map(|m| m.name.as_ref().map(|n| n.value.as_str()))
                .collect::<Vec<_>>();
            let help = near_miss(&o.method.value, names.iter().copied());
            cx.err(
                file,
                o.method.offset,
                format!("override of `{}`", o.method.value),
                "no such method (a stale override?)",
                help,
            );
            continue;
        };
        let p = o.patch;
        macro_rules! patch {
            ($($f:ident),*) => {$( if p.$f.is_some() { m.$f = p.$f.clone(); } )*};
        }
        patch!(
            group, scope, api, summary, docs, access, deprecated, batch, query_bool, result,
            result_doc, requires, list, rust_name
        );
        if let Some(why) = &p.why {
            m.why = Some(why.clone());
        }
        for pf in p.params {
            let ctx = format!(
                "override of `{}`, param `{}`",
                o.method.value, pf.name.value
            );
            let pos = m.params.iter().position(|x| x.name.value == pf.name.value);
            match (pos, pf.add, pf.remove) {
                (Some(i), _, true) => {
                    m.params.remove(i);
                }
                (Some(i), false, false) => {
                    let target = &mut m.params[i];
                    if pf.ty.is_some() {
                        target.ty = pf.ty.clone();
                    }
                    if pf.required.is_some() {
                        target.required = pf.required;
                    }
                    if pf.doc.is_some() {
                        target.doc = pf.doc.clone();
                    }
                    if pf.rust_name.is_some() {
                        target.rust_name = pf.rust_name.clone();
                    }
                    if pf.deprecated.is_some() {
                        target.deprecated = pf.deprecated;
                    }
                    target.why = pf.why.clone().or_else(|| p.why.clone());
                }
                (Some(_), true, false) => cx.err(
                    file,
                    pf.name.offset,
                    ctx,
                    "`add = true` but the method already has this param",
                    None,
                ),
                (None, true, false) => {
                    if pf.ty.is_none() {
                        cx.err(
                            file,
                            pf.name.offset,
                            ctx,
                            "an added param needs a `type`",
                            None,
                        );
                        continue;
                    }
                    let mut added = pf.clone();
                    added.why = pf.why.clone().or_else(|| p.why.clone());
                    m.params.push(added);
                }
                (None, _, _) => {
                    let help = near_miss(
                        &pf.name.value,
                        m.params.iter().map(|x| x.name.value.as_str()),
                    );
                    cx.err(
                        file,
                        pf.name.offset,
                        ctx,
                        "no such param (a stale override? set `add = true` to add one)",
                        help,
                    );
                }
            }
        }
    }
}
