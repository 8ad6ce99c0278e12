//! `methods/IMPORT_REPORT.md`: what an import did, what it could not type and why, and
//! every hand entry / override that differs from the catalog.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::map::{is_free, Context};
use super::{Import, Options};

/// Counts over the generated files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Params incl. nested fields of param structs (dynamic keys excluded).
    pub params: usize,
    /// Of those, free JSON.
    pub params_free: usize,
    /// Fields of result structs.
    pub result_fields: usize,
    /// Of those, free JSON.
    pub result_free: usize,
    /// Named types generated.
    pub types: usize,
}

/// Counts params and fields of the generated files.
pub fn totals(imp: &Import) -> Totals {
    let mut t = Totals::default();
    for m in &imp.methods {
        t.params += m.params.len();
        t.params_free += m.params.iter().filter(|p| is_free(&p.ty)).count();
        for ty in &m.types {
            t.types += 1;
            let free = ty.fields.iter().filter(|f| is_free(&f.ty)).count();
            if ty.for_result {
                t.result_fields += ty.fields.len();
                t.result_free += free;
            } else {
                t.params += ty.fields.len();
                t.params_free += free;
            }
        }
    }
    t
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        return "0.0 %".into();
    }
    format!("{:.1} %", a as f64 * 100.0 / b as f64)
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the report.
pub fn render(imp: &Import, opts: &Options, cx: &Context) -> String {
    let mut o = String::new();
    let t = totals(imp);
    let _ = writeln!(o, "# Import report\n");
    let _ = writeln!(
        o,
        "Written by `bitrix24-codegen import` from `{}` (docs texts `{}`, settings `{}`, hand spec `{}`). \
Every run rewrites this file; do not edit it.\n",
        opts.catalog.display(),
        opts.docs.display(),
        opts.settings.display(),
        opts.root.display()
    );

    // ---------------------------------------------------------------- totals
    let deprecated = imp
        .methods
        .iter()
        .filter(|m| m.deprecated.is_some())
        .count();
    let param_losses: Vec<_> = imp.notes.losses.iter().filter(|l| !l.in_result).collect();
    let result_losses: Vec<_> = imp.notes.losses.iter().filter(|l| l.in_result).collect();
    let mut access: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &imp.methods {
        *access.entry(m.access.as_str()).or_default() += 1;
    }
    let lists = imp.methods.iter().filter(|m| m.list.is_some()).count();
    let fast = imp
        .methods
        .iter()
        .filter(|m| m.list.as_ref().is_some_and(|l| l.fast_scan))
        .count();
    let _ = writeln!(o, "## Totals\n");
    let _ = writeln!(o, "| what | count |\n| --- | --- |");
    let _ = writeln!(
        o,
        "| catalog methods (`api_version = \"v2\"`) | {} |",
        imp.catalog_v2
    );
    let _ = writeln!(o, "| generated | {} |", imp.methods.len());
    let _ = writeln!(
        o,
        "| written by hand (skipped) | {} |",
        imp.hand_covered.len()
    );
    let _ = writeln!(
        o,
        "| duplicates dropped (same name, other case) | {} |",
        imp.duplicates.len()
    );
    let _ = writeln!(o, "| generated and deprecated | {deprecated} |");
    let _ = writeln!(o, "| named types generated | {} |", t.types);
    let _ = writeln!(o, "| params incl. nested fields | {} |", t.params);
    let _ = writeln!(
        o,
        "| params typed | {} ({}) |",
        t.params - t.params_free,
        pct(t.params - t.params_free, t.params)
    );
    let _ = writeln!(
        o,
        "| params free (`json`, `object`, `list<json>`, `map<json>`...) | {} ({}) |",
        t.params_free,
        pct(t.params_free, t.params)
    );
    let _ = writeln!(
        o,
        "| params free although the docs name a more specific type | {} ({}) |",
        param_losses.len(),
        pct(param_losses.len(), t.params)
    );
    let _ = writeln!(
        o,
        "| result struct fields | {} (free: {}) |",
        t.result_fields, t.result_free
    );
    let _ = writeln!(
        o,
        "| result fields / results free although the docs name a type | {} |",
        result_losses.len()
    );
    for (a, n) in &access {
        let _ = writeln!(o, "| access `{a}` | {n} |");
    }
    let _ = writeln!(
        o,
        "| `batch = false` | {} |",
        imp.methods.iter().filter(|m| !m.batch).count()
    );
    let _ = writeln!(
        o,
        "| `query_bool = \"yn\"` (booleans as `Y`/`N` inside batch) | {} |",
        imp.methods.iter().filter(|m| m.query_bool_yn).count()
    );
    let _ = writeln!(
        o,
        "| list methods (`list = {{...}}`) | {lists} (fast_scan: {fast}) |"
    );
    let _ = writeln!(
        o,
        "| methods without result info (`result = \"json\"`) | {} |",
        imp.notes.no_result.len()
    );
    let _ = writeln!(
        o,
        "| group function names resolved with `rust_name` | {} |",
        imp.collisions
            .iter()
            .map(|c| c.methods.iter().filter(|m| m.1.is_some()).count())
            .sum::<usize>()
    );
    let _ = writeln!(
        o,
        "| member names resolved with `rust_name` | {} |",
        imp.notes.renamed.len()
    );
    let _ = writeln!(
        o,
        "| hand entries that differ from the catalog | {} |",
        imp.hand_diffs.len()
    );
    let _ = writeln!(o, "| overrides | {} |", imp.override_diffs.len());

    // ---------------------------------------------------------------- groups
    let _ = writeln!(o, "\n### Methods per group\n");
    let _ = writeln!(o, "| group | generated | by hand | deprecated | types | params |\n| --- | --- | --- | --- | --- | --- |");
    let mut groups: BTreeMap<String, (usize, usize, usize, usize, usize)> = BTreeMap::new();
    for m in &imp.methods {
        let g = groups.entry(m.group.clone()).or_default();
        g.0 += 1;
        if m.deprecated.is_some() {
            g.2 += 1;
        }
        g.3 += m.types.len();
        g.4 += m.params.len()
            + m.types
                .iter()
                .filter(|t| !t.for_result)
                .map(|t| t.fields.len())
                .sum::<usize>();
    }
    for name in imp.hand_covered.keys() {
        let g = super::map::default_group(name);
        groups.entry(g).or_default().1 += 1;
    }
    for (g, (n, h, d, ty, p)) in &groups {
        let file = if *n > 0 {
            format!("[`{g}`]({g}.toml)")
        } else {
            format!("`{g}`")
        };
        let _ = writeln!(o, "| {file} | {n} | {h} | {d} | {ty} | {p} |");
    }

    // ---------------------------------------------------------------- losses
    let _ = writeln!(
        o,
        "\n## Params left free although the docs name a more specific type\n"
    );
    let _ = writeln!(
        o,
        "Each row is a param (or nested field) whose spec type is free JSON while the docs give a type; \
the reason comes from `methods/import.toml` or from the importer. Fix the settings, or give the method a \
hand entry / `[[override]]`.\n"
    );
    loss_table(&mut o, &param_losses);
    let _ = writeln!(o, "\n### Results and result fields\n");
    loss_table(&mut o, &result_losses);

    let _ = writeln!(
        o,
        "\n## Free types where the docs give no single specific type\n"
    );
    let _ = writeln!(
        o,
        "Not a loss: the docs themselves say only `object`, `array`, `any` or nothing, or a union of \
different kinds (the spec has no unions). Counted by docs type (params and result fields).\n"
    );
    let _ = writeln!(o, "| docs type | count |\n| --- | --- |");
    for (k, n) in &imp.notes.free_generic {
        let _ = writeln!(o, "| `{}` | {n} |", cell(k));
    }

    // ---------------------------------------------------------------- results
    let _ = writeln!(o, "\n## Methods without result info\n");
    let _ = writeln!(
        o,
        "The catalog has no result type and no response example: `result = \"json\"`.\n"
    );
    for m in &imp.notes.no_result {
        let _ = writeln!(o, "- `{m}`");
    }
    if !imp.notes.result_notes.is_empty() {
        let _ = writeln!(o, "\n### Results taken from the response example only\n");
        for (m, n) in &imp.notes.result_notes {
            let _ = writeln!(o, "- `{m}`: {n}");
        }
    }

    // ---------------------------------------------------------------- lists
    let _ = writeln!(o, "\n## List methods\n");
    let _ = writeln!(
        o,
        "`items` = where the items are (`\"\"`: `result` is the array), `id` / `answer_id` = id field in \
requests / answers, `fast_scan` = `start = -1` supported (settings `[lists]`).\n"
    );
    let _ = writeln!(
        o,
        "| method | items | id | answer_id | fast_scan |\n| --- | --- | --- | --- | --- |"
    );
    for m in &imp.methods {
        if let Some(l) = &m.list {
            let _ = writeln!(
                o,
                "| `{}` | `{:?}` | `{}` | {} | {} |",
                m.name,
                l.items,
                l.id,
                l.answer_id
                    .as_deref()
                    .map_or(String::new(), |a| format!("`{a}`")),
                if l.fast_scan { "yes" } else { "" }
            );
        }
    }
    if !imp.notes.list_notes.is_empty() {
        let _ = writeln!(o, "\nNotes:\n");
        for (m, n) in &imp.notes.list_notes {
            let _ = writeln!(o, "- `{m}`: {n}");
        }
    }

    // ---------------------------------------------------------------- access / batch
    let _ = writeln!(o, "\n## Access and batch\n");
    let _ = writeln!(
        o,
        "Rules: `methods/import.toml`, `[access]` and `[batch]`.\n"
    );
    let _ = writeln!(o, "`read_with_effects`:\n");
    for m in imp
        .methods
        .iter()
        .filter(|m| m.access == "read_with_effects")
    {
        let _ = writeln!(o, "- `{}`", m.name);
    }
    let _ = writeln!(o, "\n`batch = false`:\n");
    for m in imp.methods.iter().filter(|m| !m.batch) {
        let _ = writeln!(o, "- `{}`", m.name);
    }

    // ---------------------------------------------------------------- names
    let _ = writeln!(o, "\n## Name collisions\n");
    let _ = writeln!(
        o,
        "### Group function names (resolved with `rust_name` on the method)\n"
    );
    if imp.collisions.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for c in &imp.collisions {
        let ms: Vec<String> = c
            .methods
            .iter()
            .map(|(m, r)| match r {
                Some(r) => format!("`{m}` -> `{r}`"),
                None => format!("`{m}` keeps it"),
            })
            .collect();
        let _ = writeln!(o, "- group `{}`, `{}`: {}", c.group, c.name, ms.join(", "));
    }
    let _ = writeln!(
        o,
        "\n### Member names (resolved with `rust_name` on the param / field)\n"
    );
    if imp.notes.renamed.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for (w, from, to) in &imp.notes.renamed {
        let _ = writeln!(o, "- {w}: `{from}` -> `{to}`");
    }
    let _ = writeln!(o, "\n### Generated type names made unique\n");
    if imp.type_renames.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for (m, from, to) in &imp.type_renames {
        let _ = writeln!(o, "- `{m}`: `{from}` -> `{to}`");
    }
    let _ = writeln!(
        o,
        "\n### Request type names shared by several methods (not resolvable here)\n"
    );
    if imp.type_collisions.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for (t, ms) in &imp.type_collisions {
        let _ = writeln!(
            o,
            "- `{t}`: {}",
            ms.iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !imp.duplicates.is_empty() {
        let _ = writeln!(o, "\n### Catalog duplicates dropped\n");
        for (kept, doc) in &imp.duplicates {
            let _ = writeln!(o, "- `{kept}` kept; the entry from `{doc}` dropped");
        }
    }

    // ---------------------------------------------------------------- skipped
    let _ = writeln!(o, "\n## Catalog rows not emitted\n");
    if imp.notes.skipped.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for (m, p, why) in &imp.notes.skipped {
        let _ = writeln!(o, "- `{m}` `{}`: {why}", cell(p));
    }

    // ---------------------------------------------------------------- hand
    let _ = writeln!(o, "\n## Hand entries vs the catalog\n");
    let _ = writeln!(
        o,
        "{} catalog methods are written by hand and were not generated. Differences by param name, \
wire kind of the type (string, number, flag, object, array, any) and required flag; one level into \
structs on both sides.\n",
        imp.hand_covered.len()
    );
    for d in &imp.hand_diffs {
        let _ = writeln!(o, "### `{}` ({})\n", d.method, d.file.display());
        if let Some(w) = &d.why {
            let _ = writeln!(o, "why: {w}\n");
        }
        for x in &d.diffs {
            let _ = writeln!(o, "- {x}");
        }
        o.push('\n');
    }
    let same: Vec<&String> = imp
        .hand_covered
        .iter()
        .filter(|(k, _)| {
            !imp.hand_diffs
                .iter()
                .any(|d| &d.method.to_lowercase() == *k)
        })
        .map(|(_, (name, _))| name)
        .collect();
    if !same.is_empty() {
        let _ = writeln!(
            o,
            "Same as the catalog: {}.\n",
            same.iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !imp.hand_extra.is_empty() {
        let _ = writeln!(o, "Hand methods that are not in the catalog:\n");
        for (m, f) in &imp.hand_extra {
            let _ = writeln!(o, "- `{m}` ({})", f.display());
        }
    }

    let _ = writeln!(o, "\n## Overrides vs the catalog\n");
    if imp.override_diffs.is_empty() {
        let _ = writeln!(o, "No `[[override]]` in the hand files.");
    }
    for d in &imp.override_diffs {
        let _ = writeln!(o, "### `{}` ({})\n", d.method, d.file.display());
        if let Some(w) = &d.why {
            let _ = writeln!(o, "why: {w}\n");
        }
        for x in &d.diffs {
            let _ = writeln!(o, "- {x}");
        }
        o.push('\n');
    }

    // ---------------------------------------------------------------- include
    let _ = writeln!(o, "\n## Root `include`\n");
    if imp.not_included.is_empty() {
        let _ = writeln!(
            o,
            "Every generated file is included by `{}`.",
            opts.root.display()
        );
    } else {
        let _ = writeln!(
            o,
            "Generated files the root `{}` does not include yet (the build will not see them):\n",
            opts.root.display()
        );
        let mut items: Vec<String> = Vec::new();
        for a in &cx.settings.announced_files {
            items.push(format!("  \"{a}\","));
        }
        for f in &imp.not_included {
            items.push(format!("  \"{f}\","));
        }
        let _ = writeln!(o, "```toml\ninclude = [\n{}\n]\n```", items.join("\n"));
    }
    if !imp.missing_includes.is_empty() {
        let _ = writeln!(o, "\nIncluded but missing:\n");
        for p in &imp.missing_includes {
            let _ = writeln!(o, "- `{}`", p.display());
        }
    }
    o
}

fn loss_table(o: &mut String, losses: &[&super::map::Loss]) {
    if losses.is_empty() {
        let _ = writeln!(o, "None.");
        return;
    }
    let _ = writeln!(
        o,
        "| method | path | docs type | spec type | why |\n| --- | --- | --- | --- | --- |"
    );
    for l in losses {
        let _ = writeln!(
            o,
            "| `{}` | `{}` | `{}` | `{}` | {} |",
            l.method,
            cell(&l.path),
            cell(&l.docs_type),
            cell(&l.spec_type),
            cell(&l.why)
        );
    }
}
