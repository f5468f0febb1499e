"""index.html: one self-contained static page (inline CSS, a small inline script, plots as data URIs).

Per benchmark: a sortable table of reproduced entries (mean ± std over seeds), a per-class
drill-down per entry (<details>), the eKLD-vs-class-size and accuracy-vs-class-size plots, and the
papers' numbers in their own table marked "reported". Every text that came from a record or from
reported.yaml goes through html.escape; the page has no external resource and no timestamp, so the
same records give the same bytes.
"""

from __future__ import annotations

import base64
import html
import re

from tailbench.leaderboard.aggregate import Entry, Stat
from tailbench.leaderboard.markdown import ACCURACY_COLUMNS, learned_label
from tailbench.leaderboard.reported import Reported

STYLE = """
:root { --fg: #1d2433; --muted: #5b6475; --line: #d8dde6; --head: #f2f4f8; --accent: #2457c5; --reported: #fff7e0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0; padding: 0 1.5rem 3rem; }
header { border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
h1 { font-size: 1.6rem; margin: 1.2rem 0 0.4rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 0.4rem; padding-top: 0.6rem; border-top: 2px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
p.note, p.recipe, figcaption { color: var(--muted); max-width: 75rem; }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 0.4rem 1rem; }
a { color: var(--accent); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.4rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
th { background: var(--head); font-weight: 600; }
td.text, th.text { text-align: left; }
td.wrap { white-space: normal; min-width: 18rem; max-width: 36rem; }
caption { caption-side: top; text-align: left; color: var(--muted); padding: 0.2rem 0; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 0.7em; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 0.7em; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.95em; }
details { margin: 0.3rem 0; }
summary { cursor: pointer; }
figure { display: inline-block; margin: 0.5rem 1rem 0.5rem 0; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
table.reported td, table.reported th { background: var(--reported); }
.badge { display: inline-block; font-size: 0.75rem; padding: 0.05rem 0.4rem; border-radius: 0.6rem; background: #f0c24b; color: #3b2c00; font-weight: 600; }
.badge.unverified { background: #e9a3a3; color: #4a0f0f; }
"""

# Sorts a table by the clicked column (again: the other way). Cells sort by their data-sort value,
# numerically when the column header says data-type="number"; missing values go last.
SCRIPT = """
(function () {
  "use strict";
  function sortKey(cell, numeric) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent; }
    if (!numeric) { return raw.toLowerCase(); }
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }
  function sortTable(table, index, header) {
    var numeric = header.getAttribute("data-type") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortKey(a.cells[index], numeric);
      var y = sortKey(b.cells[index], numeric);
      if (x === y) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      header.tabIndex = 0;
      header.title = "sort by this column";
      header.addEventListener("click", function () { sortTable(table, index, header); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortTable(table, index, header); }
      });
    });
    table.setAttribute("data-sortable", "ready");
  });
}());
"""


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def anchor(index: int, benchmark: str) -> str:
    return f"b{index}-" + re.sub(r"[^A-Za-z0-9_-]+", "_", benchmark)[:60]


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def stat_cell(value: Stat, scale: float, digits: int) -> str:
    if value.mean is None:
        return '<td data-sort="">—</td>'
    text = f"{value.mean * scale:.{digits}f}" + (f" ± {value.std * scale:.{digits}f}" if value.std is not None else "")
    return f'<td data-sort="{e(_number(value.mean))}">{e(text)}</td>'


def number_cell(value: float | None, scale: float, digits: int) -> str:
    if value is None or value != value:  # None or NaN
        return '<td data-sort="">—</td>'
    return f'<td data-sort="{e(_number(value))}">{value * scale:.{digits}f}</td>'


def text_cell(text: object, code: bool = False) -> str:
    inner = f"<code>{e(text)}</code>" if code else e(text)
    return f'<td class="text" data-sort="{e(text)}">{inner}</td>'


def header_row(columns: list[tuple[str, str]]) -> str:
    """columns: (label, 'text' or 'number')."""
    cells = "".join(
        f'<th scope="col" class="text" data-type="text">{e(label)}</th>' if kind == "text" else f'<th scope="col" data-type="number">{e(label)}</th>'
        for label, kind in columns
    )
    return f"<thead><tr>{cells}</tr></thead>"


def entries_table(benchmark: str, entries: list[Entry]) -> str:
    families = entries[0].families
    learned = sorted({k for entry in entries for k in entry.learned_keys})
    columns = [("method", "text"), ("seeds", "number")] + [(f"{label} (%)", "number") for _, label in ACCURACY_COLUMNS]
    for family in families:
        columns += [(f"eKLD {family}", "number"), (f"tail eKLD {family}", "number"), (f"ρ(eKLD, n) {family}", "number")]
    if learned:
        columns.append(("learned invariance", "text"))
    rows = []
    for entry in entries:
        cells = [text_cell(entry.method, code=True), f'<td data-sort="{len(entry.runs)}">{len(entry.runs)}</td>']
        cells += [stat_cell(entry.metric(key), 100.0, 1) for key, _ in ACCURACY_COLUMNS]
        for family in families:
            cells += [
                stat_cell(entry.metric(f"ekld_{family}"), 1.0, 3),
                stat_cell(entry.metric(f"tail_ekld_{family}"), 1.0, 3),
                stat_cell(entry.metric(f"spearman_ekld_count_{family}"), 1.0, 2),
            ]
        if learned:
            parts = []
            for key in entry.learned_keys:
                value = entry.metric(key)
                text = "—" if value.mean is None else f"{value.mean:.3f}" + (f" ± {value.std:.3f}" if value.std is not None else "")
                parts.append(f"{learned_label(key)} {text}")
            cells.append(text_cell("; ".join(parts) or "—"))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"{benchmark}: reproduced from run records, mean ± std over seeds"
    return (f'<div class="scroll"><table class="sortable board"><caption class="text">{e(caption)}</caption>'
            + header_row(columns) + "<tbody>" + "".join(rows) + "</tbody></table></div>")


def per_class_details(entry: Entry) -> str:
    families = entry.families
    table = entry.per_class_mean()
    columns = [("class", "number"), ("name", "text"), ("train", "number"), ("test", "number"), ("val acc (%)", "number"), ("test acc (%)", "number")]
    for family in families:
        columns += [(f"eKLD {family}", "number"), (f"consistency {family} (%)", "number")]
    rows = []
    for record in table.to_dict("records"):
        cells = [
            f'<td data-sort="{int(record["class"])}">{int(record["class"])}</td>',
            text_cell(record["class_name"]),
            f'<td data-sort="{int(record["train_count"])}">{int(record["train_count"])}</td>',
            number_cell(record.get("test_count"), 1.0, 0),
            number_cell(record.get("val_acc"), 100.0, 1),
            number_cell(record.get("test_acc"), 100.0, 1),
        ]
        for family in families:
            cells += [number_cell(record.get(f"ekld_{family}"), 1.0, 3), number_cell(record.get(f"consistency_{family}"), 100.0, 1)]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    seeds = ", ".join(str(s) for s in entry.seeds)
    return (f"<details><summary><code>{e(entry.method)}</code>: per class, mean over seeds {e(seeds)}</summary>"
            f'<div class="scroll"><table class="sortable per-class">' + header_row(columns)
            + "<tbody>" + "".join(rows) + "</tbody></table></div></details>")


def reported_section(rows: list[Reported]) -> str:
    columns = [("", "text"), ("method", "text"), ("paper's name", "text"), ("top-1 error (%)", "number"),
               ("accuracy (%) = 100 - error", "number"), ("source", "text"), ("note", "text")]
    body = []
    for row in rows:
        badge = '<span class="badge">reported</span>' + ("" if row.verified else ' <span class="badge unverified">unverified</span>')
        source = e(row.citation) + (f' <a href="{e(row.url)}">{e(row.url)}</a>' if row.url.startswith("https://") else "")
        body.append(
            "<tr>"
            + f'<td class="text" data-sort="reported">{badge}</td>'
            + text_cell(row.method, code=True) + text_cell(row.paper_method)
            + f'<td data-sort="{e(_number(row.value))}">{row.value:.2f}</td>'
            + f'<td data-sort="{e(_number(row.accuracy))}">{row.accuracy:.2f}</td>'
            + f'<td class="text wrap" data-sort="{e(row.citation)}">{source}</td>'
            + f'<td class="text wrap" data-sort="{e(row.note)}">{e(row.note)}</td>'
            + "</tr>"
        )
    return (
        '<h3>Reported in papers <span class="badge">reported</span></h3>'
        '<p class="note">Numbers copied from papers, not from run records: not reproduced by tailbench and never '
        "mixed into the reproduced tables (the papers also selected checkpoints on the test set).</p>"
        '<div class="scroll"><table class="sortable reported">' + header_row(columns)
        + "<tbody>" + "".join(body) + "</tbody></table></div>"
    )


def figure(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{e(alt)}" src="data:image/png;base64,{data}"><figcaption>{e(alt)}</figcaption></figure>'


def benchmark_html(index: int, benchmark: str, entries: list[Entry], plots: list[tuple[bytes, str]], reported: list[Reported]) -> str:
    parts = [f'<section class="benchmark" id="{anchor(index, benchmark)}">', f"<h2>{e(benchmark)}</h2>"]
    if entries:
        first = entries[0].runs[0].record
        recipe = first.recipe
        parts.append(
            f'<p class="recipe">Recipe <code>{e(recipe.name)}</code>: {e(recipe.model)}, {e(recipe.epochs)} epochs, '
            f'batch {e(recipe.batch_size)}; eKLD over {e(recipe.ekld_images_per_class)} test images per class x '
            f'{e(recipe.ekld_transforms)} transforms. Manifest <code>{e(str(first.dataset.manifest_sha256)[:16])}</code>.</p>'
        )
        parts.append("<h3>Reproduced</h3>")
        parts.append(entries_table(benchmark, entries))
        parts.append("<h3>Per class</h3>")
        parts += [per_class_details(entry) for entry in entries]
        if plots:
            parts.append("<h3>Against class size</h3>")
            parts += [figure(png, alt) for png, alt in plots]
    else:
        parts.append('<p class="note">No run records yet.</p>')
    if reported:
        parts.append(reported_section(reported))
    parts.append("</section>")
    return "\n".join(parts)


PREAMBLE = (
    "Generated by <code>tailbench leaderboard</code> from run records only. Accuracies are percentages on the test "
    "split, mean ± sample standard deviation (ddof = 1) over seeds; many / medium / few: classes with &gt; 100, "
    "20..100, &lt; 20 training images; tail third: the smallest third of the classes. eKLD: mean "
    "KL(p(.|x) || p(.|t(x))) over classes (lower is more invariant); ρ(eKLD, n): Spearman correlation of per-class "
    "eKLD with training count. Click a column header to sort. Numbers from papers appear only in the tables marked "
    '<span class="badge">reported</span>.'
)


def render_html(sections: list[tuple[str, str]]) -> str:
    """sections: (benchmark, its rendered <section>), in order."""
    nav = "".join(f'<li><a href="#{anchor(i, b)}">{e(b)}</a></li>' for i, (b, _) in enumerate(sections))
    body = "\n".join(s for _, s in sections) if sections else '<p class="note">No complete run records yet.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>tailbench leaderboard</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<header><h1>tailbench leaderboard</h1><p class="note">{PREAMBLE}</p>'
        f'<p class="note">Exports: <a href="summary.csv">summary.csv</a>, <a href="per_class.csv">per_class.csv</a>, '
        f'<a href="reported.csv">reported.csv</a>.</p>'
        f"<nav><ul>{nav}</ul></nav></header>\n<main>\n{body}\n</main>\n"
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
