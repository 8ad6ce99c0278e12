#!/usr/bin/env python3
"""Extracts short plain-text descriptions from the Bitrix24 REST docs for every classic (v2)
method of the catalog, into `codegen/catalog/docs.json` (read by `bitrix24-codegen import`).

Re-run (from the repository root), after updating `methods.json` from a newer docs commit:

    git clone https://github.com/bitrix24/b24restdocs /tmp/b24restdocs   # or any checkout
    git -C /tmp/b24restdocs checkout <commit named in codegen/catalog/SUMMARY.md>
    python3 codegen/catalog/extract_docs.py /tmp/b24restdocs

The argument is a docs checkout (a work tree) or a bare git repository (read with
`git show <rev>:<path>`, rev `HEAD` unless `--rev` says otherwise). Output is deterministic
(sorted keys, one method per line group), so re-running on the same commit gives the same file.

Per method (keyed by wire name) the output holds:
- `summary`: the first descriptive paragraph of the page (after notes and the scope quote),
  cut to its first sentence and at most ~200 characters, plain text (backticks kept);
- `params`: `{param path: description}`; nested fields as `fields.TITLE` (paths as in the
  catalog: the parent's name, a dot, the field's name);
- `flags`: `{param path: "yn" | "bool" | "01"}` for params typed `boolean`/`char` whose
  description (or, failing that, a code example on the page) shows the values: `Y`/`N`,
  `true`/`false` or `1`/`0`;
- `result`: the description of the `result` row of "Returned data" / "Response handling";
- `result_fields`: `{field name: description}` for the fields of the result structure;
- `result_flags`: like `flags`, for `boolean`/`char` result fields (top level);
- `list_id`: for methods with a `start` param, `ID` or `id` when the page's code examples
  spell the id key of `filter`/`order` one way only.

Only the Python standard library is used.
"""

import argparse
import json
import os
import re
import subprocess
import sys

MAX_LEN = 200


# --------------------------------------------------------------------------------------
# Reading pages
# --------------------------------------------------------------------------------------


class Pages:
    """Reads pages from a work tree or from a bare git repository."""

    def __init__(self, root, rev):
        self.root = root
        self.rev = rev
        self.bare = not os.path.isdir(os.path.join(root, "api-reference"))

    def read(self, path):
        if not self.bare:
            full = os.path.join(self.root, path)
            if not os.path.isfile(full):
                return None
            with open(full, encoding="utf-8") as f:
                return f.read()
        out = subprocess.run(
            ["git", "-C", self.root, "show", f"{self.rev}:{path}"],
            capture_output=True,
        )
        if out.returncode != 0:
            return None
        return out.stdout.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------
# Markdown / YFM helpers
# --------------------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*(\{#([^}]*)\})?\s*$")


def clean_inline(text):
    """Markdown/YFM/HTML -> plain text (backticks kept)."""
    t = text
    t = re.sub(r"```([^`\n]+?)```", r"`\1`", t)  # one-line triple-backtick code
    t = re.sub(r"\{%\s*note[^%]*%\}.*?\{%\s*endnote\s*%\}", " ", t, flags=re.S)
    t = re.sub(r"\{%\s*cut[^%]*%\}.*?\{%\s*endcut\s*%\}", " ", t, flags=re.S)
    t = re.sub(r"\{%.*?%\}", " ", t, flags=re.S)
    t = re.sub(r"```.*?```", " ", t, flags=re.S)
    t = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", t)  # images
    t = re.sub(r"\[\{#T\}\]\(([^)]*)\)", " ", t)  # auto-titled links
    t = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", t)  # links -> text
    t = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", t)
    t = re.sub(r"<br\s*/?>", " ", t, flags=re.I)
    t = re.sub(r"</?[A-Za-z][^>]*>", " ", t)  # HTML tags
    t = re.sub(r"\{#[^}]*\}", " ", t)  # anchors
    t = t.replace("**", "").replace("__", "")
    t = re.sub(r"(?<![\w`])_([^_`]+)_(?![\w`])", r"\1", t)  # _emphasis_
    t = re.sub(r"\\([_*\[\]<>|#])", r"\1", t)  # markdown escapes
    t = t.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    t = re.sub(r"^\s*[-*]\s+", "", t, flags=re.M)
    t = re.sub(r"^\s*>\s?", "", t, flags=re.M)
    t = re.sub(
        r"\s*\((?:detailed description|see below|details below|more details|described below)\)",
        "",
        t,
        flags=re.I,
    )
    t = re.sub(r"\s*[—-]+\s*read more in the article\.?", ".", t, flags=re.I)
    t = re.sub(r"\s+", " ", t).strip()
    # Unbalanced backticks would confuse readers of the generated docs.
    if t.count("`") % 2:
        t = t.replace("`", "")
    return t


SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"(])")
ABBREV = ("e.g.", "i.e.", "etc.", "approx.", "incl.", "No.", "vs.")


def first_sentence(text):
    """The first sentence of `text`, at most ~MAX_LEN characters."""
    if not text:
        return ""
    # Sentence ends inside code spans do not count.
    masked = re.sub(r"`[^`]*`", lambda m: "x" * len(m.group(0)), text)
    cut = len(text)
    for m in SENTENCE_END.finditer(masked):
        before = text[: m.start()]
        if before.endswith(ABBREV):
            continue
        cut = m.start()
        break
    s = text[:cut].strip()
    # "... in the following format: where." (the format itself was a code block)
    s = re.sub(r"[\s,:]*\bwhere[:.]?$", "", s)
    s = re.sub(r"\s+(?:in|of) the (?:following )?format:?$", "", s)
    s = re.sub(r"\s+(?:in the |of the )?format:?$", "", s) if len(s) > 20 else s
    s = re.sub(r"\s*\bmore details\.?$", "", s)
    if s and not s.endswith((".", "!", "?", ":")):
        s += "."
    if s.endswith(":"):
        s = s[:-1].rstrip() + "."
    if len(s) > MAX_LEN:
        s = s[:MAX_LEN]
        if s.count("`") % 2:
            s = s[: s.rfind("`")]
        sp = s.rfind(" ")
        if sp > MAX_LEN // 2:
            s = s[:sp]
        s = s.rstrip(",;:-— ") + "..."
        if s.count("`") % 2:
            s = s.replace("`", "")
    return s


def strip_code_blocks(lines):
    """Yields (line, in_code) for every line."""
    in_code = False
    for line in lines:
        if FENCE.match(line):
            yield line, True
            in_code = not in_code
            continue
        yield line, in_code


# --------------------------------------------------------------------------------------
# Page structure: headings and YFM tables
# --------------------------------------------------------------------------------------


class Table:
    def __init__(self, heading, anchor, order):
        self.heading = heading  # text of the nearest heading above
        self.anchor = anchor
        self.order = order
        self.rows = []  # (name, desc_raw)

    def names(self):
        return [n for n, _ in self.rows]


def parse_rows(body):
    """Splits the body of one YFM table (nested tables already removed) into rows."""
    # Protect code spans so that `|` and `||` inside them do not split anything.
    spans = []

    def protect(m):
        spans.append(m.group(0))
        return f"\x00{len(spans) - 1}\x00"

    b = body.replace("\\|", "\x01")  # escaped pipes are text
    b = re.sub(r"```.*?```", protect, b, flags=re.S)
    b = re.sub(r"`[^`\n]*`", protect, b)

    def restore(s):
        s = re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], s)
        return s.replace("\x01", "|")

    rows = []
    parts = b.split("||")
    # parts: [before, row1, between, row2, between, ...]
    for i in range(1, len(parts), 2):
        row = parts[i]
        if "|" not in row:
            continue
        name_cell, desc = row.split("|", 1)
        name_cell = restore(name_cell)
        desc = restore(desc)
        m = re.search(r"\*\*(.+?)\*\*", name_cell, flags=re.S)
        if not m:
            continue
        name = m.group(1).strip()
        name = re.sub(r"\\(.)", r"\1", name)
        name = name.strip("`").strip()
        rows.append((name, desc))
    return rows


def parse_page(text):
    """Returns (title, intro_lines, sections, tables, code_text)."""
    lines = text.split("\n")
    title = ""
    headings = []  # (line index, level, text, anchor)
    code = []
    plain = []  # line index -> text outside code (None inside code)
    for idx, (line, in_code) in enumerate(strip_code_blocks(lines)):
        if in_code:
            code.append(line)
            plain.append(None)
            continue
        plain.append(line)
        m = HEADING.match(line)
        if m:
            level = len(m.group(1))
            htext = m.group(2).strip()
            if level == 1 and not title:
                title = htext
            headings.append((idx, level, htext, m.group(4) or ""))

    # Tables, with nesting: `#|` opens, `|#` closes.
    tables = []
    stack = []  # (start line, heading text, anchor, collected lines)
    heading_at = {}
    cur_heading = ("", "")
    hi = 0
    for idx, line in enumerate(plain):
        while hi < len(headings) and headings[hi][0] <= idx:
            cur_heading = (headings[hi][2], headings[hi][3])
            hi += 1
        heading_at[idx] = cur_heading
        if line is None:
            if stack:
                stack[-1][3].append(lines[idx])
            continue
        s = line.strip()
        opens = s.startswith("#|")
        closes = s.endswith("|#") and not (opens and s == "#|")
        if opens:
            stack.append([idx, cur_heading[0], cur_heading[1], []])
            rest = s[2:]
            if closes and rest.endswith("|#"):
                rest = rest[:-2]
                start, h, a, body = stack.pop()
                t = Table(h, a, len(tables))
                t.rows = parse_rows("\n".join(body + [rest]))
                tables.append(t)
            else:
                stack[-1][3].append(rest)
            continue
        if closes and stack:
            stack[-1][3].append(line.rstrip()[:-2] if line.rstrip().endswith("|#") else line)
            start, h, a, body = stack.pop()
            t = Table(h, a, len(tables))
            t.rows = parse_rows("\n".join(body))
            tables.append(t)
            if stack:
                # The nested table stays out of the outer table's body.
                stack[-1][3].append(" ")
            continue
        if stack:
            stack[-1][3].append(line)
    tables.sort(key=lambda t: t.order)

    # Intro: lines after the title and before the first `##` heading.
    intro = []
    seen_title = False
    for idx, line in enumerate(plain):
        if line is None:
            intro.append("")
            continue
        m = HEADING.match(line)
        if m:
            if len(m.group(1)) == 1 and not seen_title:
                seen_title = True
                continue
            break
        if seen_title:
            intro.append(line)
    return title, intro, headings, tables, "\n".join(code)


def summary_of(title, intro, method):
    text = "\n".join(intro)
    text = re.sub(r"\{%\s*note[^%]*%\}.*?\{%\s*endnote\s*%\}", "\n\n", text, flags=re.S)
    text = re.sub(r"\{%\s*cut[^%]*%\}.*?\{%\s*endcut\s*%\}", "\n\n", text, flags=re.S)
    text = re.sub(r"\{%.*?%\}", "\n\n", text, flags=re.S)
    paras = re.split(r"\n\s*\n", text)
    for p in paras:
        lines = [l for l in p.split("\n") if l.strip()]
        if not lines:
            continue
        if all(l.lstrip().startswith(">") for l in lines):
            continue  # scope / who can execute
        if all(l.lstrip().startswith(("!", "#|", "||", "|#")) for l in lines):
            continue
        s = tidy_summary(first_sentence(clean_inline(before_list(p))))
        if len(s) >= 8:
            return s
    # Fallback: the page title without the method name.
    t = clean_inline(title)
    t = t.replace(method, "").strip(" :—-")
    if t:
        return t[0].upper() + t[1:] + ("" if t.endswith(".") else ".")
    return ""


# --------------------------------------------------------------------------------------
# Matching catalog params to table rows
# --------------------------------------------------------------------------------------


def norm(name):
    return name.strip().strip("`").strip()


def best_table(tables, names, parent=None, exclude=()):
    """The table whose row names overlap most with `names`."""
    want = set(norm(n) for n in names if n)
    best, best_score = None, 0.0
    for t in tables:
        if t.order in exclude:
            continue
        have = set(norm(n) for n in t.names())
        hit = len(want & have)
        if hit == 0:
            continue
        score = hit + 0.001 * hit / max(len(have), 1)
        if parent:
            h = (t.heading + " " + t.anchor).lower()
            if parent.lower() in h:
                score += 0.5
        if score > best_score:
            best, best_score = t, score
    return best


BOILERPLATE = re.compile(
    r"^(an? )?(object|array|format object|object format|array format)( in the( following)? format)?[.:]",
    re.I,
)
KV = re.compile(r"`field_n` — (.+?) `value_n` — (.+?)(?=$| [A-Z][a-z]|:|, equal to| equal to)")
METHOD_INTRO = re.compile(
    r"^(?:The|This)\s+(?:`[\w.]+`\s+)?method(?:\s+`[\w.]+`)?\s+(?!is\b|was\b|has\b|can\b|allows\b)([a-z]+s)\b"
)


LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.M)


def before_list(text):
    """The text before the first list item, when there is text before it."""
    m = LIST_ITEM.search(text)
    if m and text[: m.start()].strip():
        return text[: m.start()]
    return text


def describe(raw):
    """A one-sentence description of a table cell."""
    full = clean_inline(raw)
    text = clean_inline(before_list(raw))
    if BOILERPLATE.match(full):
        m = KV.search(full)
        if m:
            k = m.group(1).strip().rstrip(".,;")
            v = m.group(2).strip().rstrip(".,;")
            return first_sentence(f"An object: keys — {k}, values — {v}.")
        return "An object of `field: value` pairs."
    return first_sentence(text)


ROOT_ELEMENT = re.compile(
    r"^(?:The )?root element of the response(?: object)?(?:[,.:;]\s*|\s+(?=contain|with))(?:(?:it |which )?contains?\s+|with\s+)?",
    re.I,
)


USELESS_RESULT = re.compile(
    r"^(?:the )?(?:root (?:element|object) of the response|response root element|root element)\.?$",
    re.I,
)


def tidy_result(s):
    """`Root element of the response, contains the ID` -> `The ID`; bare "root element of the
    response" -> empty."""
    if USELESS_RESULT.match(s.strip()):
        return ""
    rest = ROOT_ELEMENT.sub("", s, count=1).strip()
    if rest and rest != s and len(rest) > 3:
        return rest[0].upper() + rest[1:]
    return s


def tidy_summary(s):
    """`The method `x` creates a deal.` -> `Creates a deal.`"""
    m = METHOD_INTRO.match(s)
    if m:
        rest = s[m.start(1):]
        return rest[0].upper() + rest[1:]
    return s


def flag_of(desc, code_text, name):
    """`yn`, `bool` or `01` when the description (or an example) shows the values."""
    d = desc or ""
    if (re.search(r"[`'\"]Y[`'\"]", d) and re.search(r"[`'\"]N[`'\"]", d)) or re.search(
        r"\bY\s*/\s*N\b|\bY\s*\|\s*N\b|\bY or N\b", d
    ):
        return "yn"
    if re.search(r"`true`|`false`", d):
        return "bool"
    # Only `Y` listed as a value ("`Y` — yes; to pass No, omit the parameter or pass `0`":
    # crm.contact.add `params.IMPORT`).
    if re.search(r"[`'\"]Y[`'\"]\s*[—–-]", d):
        return "yn"
    if (re.search(r"`1`", d) and re.search(r"`0`", d)) or re.search(r"`[01]\|[01]`", d):
        return "01"
    if len(name) >= 3 and code_text:
        n = re.escape(name)
        if re.search(rf"[\"']?\b{n}\b[\"']?\s*(?::|=>|=)\s*[\"'][YN][\"']", code_text):
            return "yn"
        if re.search(rf"[\"']?\b{n}\b[\"']?\s*(?::|=>|=)\s*(?:true|false)\b", code_text):
            return "bool"
    return None


def walk_params(params, tables, code_text, prefix, parent, out, flags, exclude=()):
    if not params:
        return
    names = [p.get("name") or "" for p in params]
    t = best_table(tables, names, parent=parent, exclude=exclude)
    rows = {}
    if t is not None:
        for n, d in t.rows:
            rows.setdefault(norm(n), d)
    for p in params:
        name = p.get("name") or ""
        path = prefix + name
        raw = rows.get(norm(name))
        if raw is not None:
            text = describe(raw)
            if text:
                out[path] = text
        ty = p.get("type") or ""
        if re.search(r"\b(boolean|char)\b", ty):
            f = flag_of(raw, code_text, name)
            if f:
                flags[path] = f
        sub_exclude = (t.order,) if t is not None else ()
        if p.get("fields"):
            walk_params(p["fields"], tables, code_text, path + ".", name, out, flags, sub_exclude)
        for v in p.get("field_variants") or []:
            walk_params(v.get("fields"), tables, code_text, path + ".", name, out, flags, sub_exclude)


ID_KEY = re.compile(r"""["']?(?:>=?|<=?|!|@)?(ID|id)["']?\s*(?::|=>)\s*["']?(?:asc|desc|ASC|DESC|\$|\d)""")


def list_id_hint(code_text):
    """`ID` or `id`: the spelling of the id key the page's examples use in filter/order."""
    found = set(m.group(1) for m in ID_KEY.finditer(code_text or ""))
    if len(found) == 1:
        return found.pop()
    return None


RESULT_HEADINGS = re.compile(r"return|response|result", re.I)


def result_docs(entry, headings, tables):
    res_tables = [t for t in tables if RESULT_HEADINGS.search(t.heading or "")]
    result = None
    for t in res_tables:
        for n, d in t.rows:
            if norm(n) == "result":
                result = tidy_result(describe(d)) or None
                break
        if result:
            break
    fields = {}
    flags = {}
    r = entry.get("result") or {}
    names = [f.get("name") for f in (r.get("fields") or [])]
    rows_names = [f.get("name") for f in (r.get("returned_data_rows") or [])]
    for group in (names, rows_names):
        if not group:
            continue
        t = best_table(res_tables or tables, group)
        if t is None:
            continue
        rows = {norm(n): d for n, d in reversed(t.rows)}
        types = {f.get("name"): f.get("type") or "" for f in (r.get("fields") or [])}
        types.update({f.get("name"): f.get("type") or "" for f in (r.get("returned_data_rows") or [])})
        for n in group:
            d = rows.get(norm(n))
            if d is not None:
                s = describe(d)
                if s:
                    fields[n] = s
                if re.search(r"\b(boolean|char)\b", types.get(n) or ""):
                    f = flag_of(d, "", n)
                    if f:
                        flags[n] = f
    return result, fields, flags


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("docs", help="b24restdocs checkout or bare git repository")
    ap.add_argument("--rev", default="HEAD", help="revision of a bare repository")
    ap.add_argument("--catalog", default=os.path.join(here, "methods.json"))
    ap.add_argument("--out", default=os.path.join(here, "docs.json"))
    args = ap.parse_args()

    with open(args.catalog, encoding="utf-8") as f:
        catalog = json.load(f)
    pages = Pages(args.docs, args.rev)
    out = {}
    missing = 0
    stats = {"methods": 0, "summaries": 0, "params": 0, "param_docs": 0, "results": 0}
    for entry in catalog:
        if entry.get("api_version") != "v2":
            continue
        method = entry["method"]
        stats["methods"] += 1
        text = pages.read(entry["doc"])
        if text is None:
            missing += 1
            print(f"warning: {method}: page {entry['doc']} not found", file=sys.stderr)
            continue
        title, intro, headings, tables, code_text = parse_page(text)
        rec = {}
        s = summary_of(title, intro, method)
        if s:
            rec["summary"] = s
            stats["summaries"] += 1
        params, flags = {}, {}
        plist = list(entry.get("params") or [])
        for extra in entry.get("extra_param_tables") or []:
            if (extra.get("section") or "").lower() == "additional parameters":
                plist.extend(extra.get("fields") or [])
        walk_params(plist, tables, code_text, "", None, params, flags)
        if params:
            rec["params"] = params
        if flags:
            rec["flags"] = flags
        stats["param_docs"] += len(params)
        result, rfields, rflags = result_docs(entry, headings, tables)
        if result:
            rec["result"] = result
            stats["results"] += 1
        if rfields:
            rec["result_fields"] = rfields
        if rflags:
            rec["result_flags"] = rflags
        if any((x.get("name") or "").lower() == "start" for x in plist):
            hint = list_id_hint(code_text)
            if hint:
                rec["list_id"] = hint
        out[method] = rec

    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    print(
        f"{stats['methods']} methods, {stats['summaries']} summaries, "
        f"{stats['param_docs']} param descriptions, {stats['results']} result descriptions, "
        f"{missing} pages missing -> {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
