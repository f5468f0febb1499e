"""index.html: one self-contained static page rendered from templates/index.html.j2 (Jinja2,
autoescaping on), with its CSS and sorting script inline and the plots as data URIs.

Per benchmark: a sortable table of reproduced entries (mean ± std over seeds), a per-class
drill-down per entry (<details>), the plots (head-vs-tail chart, per-class eKLD and accuracy
curves) and the papers' numbers in their own table marked "reported". This module only formats numbers into
cells; the template lays them out and escapes every text that came from a record or from
reported.yaml. The page has no external resource and no timestamp, so the same records give the
same bytes.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from tailbench.leaderboard.aggregate import Entry, Stat, off_machine
from tailbench.leaderboard.intervals import interval_kind
from tailbench.leaderboard.markdown import SEES_TEST_IMAGES, card_text, learned_label, machines_text, with_interval
from tailbench.leaderboard.plots import plots_note
from tailbench.leaderboard.reported import Reported
from tailbench.results.metrics import Display, table_columns

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class Column:
    label: str
    kind: str  # "text" or "number": how the page's script sorts it


@dataclass(frozen=True)
class Cell:
    text: str
    sort: str
    kind: str = "number"
    code: bool = False
    wrap: bool = False
    external: str = ""  # for an entry's method cell: the parts from outside tailbench
    outside: str = ""  # for an entry's method cell: the model card of a model trained outside tailbench
    sees_test: str = ""  # for an entry's method cell: it adapted on the test split's unlabeled images
    other_machine: str = ""  # for an entry's method cell: records made on another machine kind than most of its table


@lru_cache(maxsize=1)
def environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )


def anchor(index: int, benchmark: str) -> str:
    return f"b{index}-" + re.sub(r"[^A-Za-z0-9_-]+", "_", benchmark)[:60]


def _number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def stat_cell(value: Stat, display: Display) -> Cell:
    """mean [95 % interval], sorted by the mean."""
    if value.mean is None:
        return Cell("—", "")
    return Cell(with_interval(value, display), _number(value.mean))


def number_cell(value: float | None, scale: float, digits: int) -> Cell:
    if value is None or value != value:  # None or NaN
        return Cell("—", "")
    return Cell(f"{value * scale:.{digits}f}", _number(value))


def text_cell(text: object, code: bool = False, wrap: bool = False, external: str = "") -> Cell:
    return Cell(str(text), str(text), "text", code, wrap, external)


def count_cell(value: float) -> Cell:
    return Cell(str(int(value)), str(int(value)))


def entries_table(benchmark: str, entries: list[Entry]) -> dict:
    families = entries[0].families
    learned = sorted({k for entry in entries for k in entry.learned_keys})
    metrics = table_columns(families)
    columns = [Column("method", "text"), Column("seeds", "number")]
    columns += [Column(m.label + (f" ({m.display.unit})" if m.display.unit else ""), "number") for m in metrics]
    if learned:
        columns.append(Column("learned invariance", "text"))
    rows = []
    elsewhere = off_machine(entries)
    for entry in entries:
        external = "; ".join(entry.external_code)
        method_cell = text_cell(entry.method, code=True, external=external)
        if entry.outside is not None:
            method_cell = replace(method_cell, outside=card_text(entry.outside))
        if entry.sees_test_images:
            method_cell = replace(method_cell, sees_test=SEES_TEST_IMAGES)
        if entry.method in elsewhere:
            method_cell = replace(method_cell, other_machine=machines_text(entries, elsewhere))
        cells = [method_cell, count_cell(len(entry.runs))]
        cells += [stat_cell(entry.metric(m.key), m.display) for m in metrics]
        if learned:
            parts = []
            for key in entry.learned_keys:
                value = entry.metric(key)
                text = "—" if value.mean is None else f"{value.mean:.3f}" + (f" ± {value.std:.3f}" if value.std is not None else "")
                parts.append(f"{learned_label(key)} {text}")
            cells.append(text_cell("; ".join(parts) or "—"))
        rows.append(cells)
    return {"columns": columns, "rows": rows, "caption": f"{benchmark}: reproduced from run records, mean over seeds [95 % bootstrap interval: {interval_kind(entries)}]"}


def per_class_details(entry: Entry) -> dict:
    families = entry.families
    columns = [Column("class", "number"), Column("name", "text"), Column("train", "number"), Column("test", "number"),
               Column("val acc (%)", "number"), Column("test acc (%)", "number")]
    for family in families:
        columns += [Column(f"eKLD {family}", "number"), Column(f"consistency {family} (%)", "number")]
    rows = []
    for record in entry.per_class_mean().to_dict("records"):
        cells = [
            count_cell(record["class"]), text_cell(record["class_name"]), count_cell(record["train_count"]),
            number_cell(record.get("test_count"), 1.0, 0), number_cell(record.get("val_acc"), 100.0, 1),
            number_cell(record.get("test_acc"), 100.0, 1),
        ]
        for family in families:
            cells += [number_cell(record.get(f"ekld_{family}"), 1.0, 3), number_cell(record.get(f"consistency_{family}"), 100.0, 1)]
        rows.append(cells)
    return {"method": entry.method, "seeds": ", ".join(str(s) for s in entry.seeds), "columns": columns, "rows": rows}


def reported_rows(rows: list[Reported]) -> dict:
    columns = [Column("", "text"), Column("method", "text"), Column("paper's name", "text"), Column("top-1 error (%)", "number"),
               Column("accuracy (%) = 100 - error", "number"), Column("source", "text"), Column("note", "text")]
    return {"columns": columns, "rows": [
        {
            "verified": row.verified, "method": text_cell(row.method, code=True), "paper_method": text_cell(row.paper_method),
            "value": Cell(f"{row.value:.2f}", _number(row.value)), "accuracy": Cell(f"{row.accuracy:.2f}", _number(row.accuracy)),
            "citation": row.citation, "url": row.url, "note": text_cell(row.note, wrap=True),
        }
        for row in rows
    ]}


def benchmark_section(index: int, benchmark: str, entries: list[Entry], plots: list[tuple[bytes, str]], reported: list[Reported]) -> dict:
    section: dict = {"anchor": anchor(index, benchmark), "benchmark": benchmark, "board": None,
                     "reported": reported_rows(reported) if reported else None}
    if entries:
        first = entries[0].runs[0].record
        section.update(
            recipe=first.recipe, manifest=first.dataset.manifest_sha256[:16], board=entries_table(benchmark, entries),
            per_class=[per_class_details(entry) for entry in entries],
            figures=[{"alt": alt, "data": base64.b64encode(png).decode("ascii")} for png, alt in plots],
            plots_note=plots_note(entries),
        )
    return section


def render_html(sections: list[dict]) -> str:
    """sections: benchmark_section()s, in order."""
    return environment().get_template("index.html.j2").render(sections=sections)
