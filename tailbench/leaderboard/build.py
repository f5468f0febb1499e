"""Build the leaderboard folder from a folder of run records (and reported.yaml), nothing else.

Writes LEADERBOARD.md, index.html, summary.csv (one row per entry), per_class.csv (one row per
entry and class, means over seeds), reported.csv (the papers' numbers) and per benchmark the
plots head_tail_<benchmark>.png (head vs tail third, bars over methods), ekld_vs_count_<benchmark>.png
and acc_vs_count_<benchmark>.png (per-class curves, one panel per method) and, for entries that
keep per-image evidence, reliability_<benchmark>.png (reliability diagrams). Plots of benchmarks that
no longer have records are removed. The bytes depend on the records alone (sorted everywhere, no
timestamps, fixed PNG metadata), so the committed leaderboard can be checked to be current.

The CSV files are data for spreadsheets too: a text cell that begins with =, +, -, @ (or a tab or
carriage return) gets a leading apostrophe so that no spreadsheet runs it as a formula (formula
injection through a method or paper name); numbers, negative ones included, are written as numbers.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from pathlib import Path

from tailbench.leaderboard.aggregate import Entry, entries
from tailbench.leaderboard.findings import recipe_rank
from tailbench.leaderboard.findings import render as render_findings
from tailbench.leaderboard.head_tail import head_tail_png
from tailbench.leaderboard.html import benchmark_section as html_section
from tailbench.leaderboard.html import render_html
from tailbench.leaderboard.markdown import benchmark_section, render
from tailbench.leaderboard.overview import SIGNIFICANCE_HEADER, render_overview, significance_rows, sorted_entries
from tailbench.leaderboard.plots import accuracy_vs_count_png, ekld_vs_count_png
from tailbench.leaderboard.reliability import drawable, reliability_png
from tailbench.leaderboard.reported import Reported, by_benchmark, load_reported
from tailbench.results.records import iter_runs
from tailbench.storage.atomic import write_atomic
from tailbench.storage.writable import check_writable
from tailbench.storage.folders import require_folder

PLOT_PREFIXES = ("head_tail_", "ekld_vs_count_", "acc_vs_count_", "reliability_")  # every plot benchmark_plots draws


def safe_file_name(benchmark: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", benchmark)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def csv_text(header: list[str], rows: list[list[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue().encode()


def _ordered_union(lists) -> list[str]:
    seen: dict[str, None] = {}
    for items in lists:
        for item in items:
            seen.setdefault(item, None)
    return list(seen)


def summary_csv(grouped: dict[str, list[Entry]]) -> bytes:
    all_entries = [entry for group in grouped.values() for entry in group]
    keys = _ordered_union(run.metrics for entry in all_entries for run in entry.runs)
    header = ["benchmark", "method", "n_seeds", "seeds", "per_image"]
    header += [f"{k}_{s}" for k in keys for s in ("mean", "std", "ci_low", "ci_high", "ci_kind")]
    rows = []
    for entry in all_entries:
        row: list[object] = [entry.benchmark, entry.method, len(entry.runs), " ".join(str(s) for s in entry.seeds), str(entry.has_images).lower()]
        for key in keys:
            value = entry.metric(key)
            row += [value.mean, value.std, value.low, value.high, value.interval_kind if value.mean is not None else None]
        rows.append(row)
    return csv_text(header, rows)


def per_class_csv(grouped: dict[str, list[Entry]]) -> bytes:
    all_entries = [entry for group in grouped.values() for entry in group]
    tables = [(entry, entry.per_class_mean()) for entry in all_entries]
    fixed = ["class", "class_name", "train_count", "test_count", "val_acc", "test_acc"]
    extra = [c for c in _ordered_union(list(t.columns) for _, t in tables) if c not in fixed]
    header = ["benchmark", "method", "n_seeds"] + fixed + extra
    rows = []
    for entry, table in tables:
        for record in table.to_dict("records"):
            row: list[object] = [entry.benchmark, entry.method, len(entry.runs)]
            for column in fixed + extra:
                value = record.get(column)
                if column in {"class", "train_count", "test_count"} and isinstance(value, float) and value.is_integer():
                    value = int(value)
                row.append(value)
            rows.append(row)
    return csv_text(header, rows)


def reported_csv(rows: list[Reported]) -> bytes:
    header = ["benchmark", "method", "paper_method", "metric", "value", "accuracy", "verified", "source", "citation", "url", "note"]
    return csv_text(header, [[r.benchmark, r.method, r.paper_method, r.metric, r.value, r.accuracy, str(r.verified).lower(),
                              r.source, r.citation, r.url, r.note] for r in rows])


def benchmark_plots(benchmark: str, group: list[Entry]) -> list[tuple[str, Callable[[str, list[Entry]], bytes], str]]:
    """(file prefix, drawing function, alt text) of each plot a benchmark with these entries gets."""
    if not group:
        return []
    plots = [("head_tail_", head_tail_png, f"head-third vs tail-third eKLD and accuracy per method on {benchmark}")]
    if group[0].families:
        plots.append(("ekld_vs_count_", ekld_vs_count_png, f"per-class eKLD against class size on {benchmark}"))
    plots.append(("acc_vs_count_", accuracy_vs_count_png, f"per-class test accuracy against class size on {benchmark}"))
    if drawable(group):
        plots.append(("reliability_", reliability_png, f"reliability diagrams (accuracy against confidence) per method on {benchmark}"))
    return plots


def render_files(results: Path, problems: list[str] | None = None) -> dict[str, bytes]:
    """File name -> bytes of the whole leaderboard folder. A record whose per-image evidence cannot
    be used still shows, with — for the metrics that need it; its one-line reason is appended to
    `problems`."""
    require_folder(results, f"--results {results}", "run `tailbench run` first or point --results at a folder of run records")
    runs = iter_runs(results)
    if problems is not None:
        problems.extend(reason for run in runs if (reason := run.evidence[1]))
    grouped = entries(runs)
    reported_rows = load_reported()
    reported = by_benchmark(reported_rows)
    files: dict[str, bytes] = {}
    md_sections, html_sections = [], []
    # benchmarks with run records first, the paper recipes' leading, then those with only papers' numbers
    order = sorted(grouped, key=recipe_rank) + sorted(set(reported) - set(grouped))
    md_sections.append(render_overview(grouped))
    for index, benchmark in enumerate(order):
        group = sorted_entries(grouped.get(benchmark, []))
        plot_names: list[tuple[str, str]] = []
        plots: list[tuple[bytes, str]] = []
        for prefix, draw, alt in benchmark_plots(benchmark, group):
            name = f"{prefix}{safe_file_name(benchmark)}.png"
            files[name] = draw(benchmark, group)
            plot_names.append((name, alt))
            plots.append((files[name], alt))
        md_sections.append(benchmark_section(benchmark, group, plot_names, reported.get(benchmark)))
        html_sections.append(html_section(index, benchmark, group, plots, reported.get(benchmark, [])))
    files["LEADERBOARD.md"] = render(md_sections).encode()
    files["index.html"] = render_html(html_sections).encode()
    files["summary.csv"] = summary_csv(grouped)
    files["per_class.csv"] = per_class_csv(grouped)
    files["reported.csv"] = reported_csv(reported_rows)
    files["significance.csv"] = csv_text(SIGNIFICANCE_HEADER, significance_rows(grouped))
    files["FINDINGS.md"] = render_findings(grouped, "findings_full.md.j2").encode()
    return files


def build_leaderboard(results: Path, out: Path, problems: list[str] | None = None) -> list[Path]:
    check_writable(out, "--out")
    files = render_files(results, problems)
    written = []
    for name in sorted(files):
        write_atomic(out / name, files[name])
        written.append(out / name)
    for stale in sorted(out.glob("*.png")):  # plots of benchmarks that have no records any more
        if stale.name.startswith(PLOT_PREFIXES) and stale.name not in files:
            stale.unlink()
    return written
