"""A record checked as a whole: its summary must be what its own per_class.csv gives.

`check_consistency(result, per_class_bytes, manifest)` recomputes every stored summary
metric from the per-class table with the very table the harness wrote it with
(tailbench.results.metrics, `stored=True`), and compares each with the stored number; metrics
added after a record was made are computed when it is read and never make it fail. The overall
accuracy comes from the per-class accuracies weighted by the test counts; every per-class
accuracy must itself be a whole number of correct images out of that class's count. A summary
number a method adds of its own (e.g. `learned_*`) is not derived from the table and is not
compared. Call it on a record whose structure and per_class.csv are already valid
(tailbench.submission.validate does); it returns (field, reason) problems.
"""

from __future__ import annotations

import csv
import io
import math

import pandas as pd

from tailbench.results.metrics import RunTables, stored_summary
from tailbench.results.store import PER_CLASS

# Both numbers come from the same float64 values through the same code; only the overall
# accuracy is rebuilt from per-class rates and may differ in the last bits.
ABSOLUTE, RELATIVE = 1e-9, 1e-9


def _floats(rows: list[dict[str, str]], column: str) -> list[float]:
    return [float(row[column]) if row[column] != "" else math.nan for row in rows]


def _whole_counts(rates: list[float], counts: list[int], column: str) -> list[tuple[str, str]]:
    """Each rate must be k / n for a whole k (missing exactly when the class has no images)."""
    for k, (rate, n) in enumerate(zip(rates, counts)):
        where = f"{PER_CLASS} row {k + 1} {column}"
        if n == 0:
            if not math.isnan(rate):
                return [(where, f"is {rate:g} though the class has no such images")]
            continue
        if math.isnan(rate):
            return [(where, f"is missing though the class has {n} such images")]
        hits = rate * n
        if abs(hits - round(hits)) > 1e-6:
            return [(where, f"{rate!r} is not a whole number of correct images out of {n}")]
    return []


def recomputed_summary(result: dict, rows: list[dict[str, str]]) -> dict[str, float | None]:
    """The stored metrics of the table (tailbench.results.metrics), from the per-class rows."""
    table = pd.DataFrame({column: _floats(rows, column) for column in rows[0] if column != "class_name"} if rows else {})
    return stored_summary(RunTables(table, tuple(result["dataset"]["invariance_families"])))


def _agree(stored: float | None, recomputed: float | None) -> bool:
    if stored is None or recomputed is None:
        return stored is None and recomputed is None
    return abs(stored - recomputed) <= ABSOLUTE + RELATIVE * abs(recomputed)


def _shown(value: float | None) -> str:
    return "null" if value is None else f"{value:.6g}"


def check_consistency(result: dict, per_class: bytes, manifest) -> list[tuple[str, str]]:
    rows = list(csv.DictReader(io.StringIO(per_class.decode("utf-8"), newline="")))
    problems = _whole_counts(_floats(rows, "test_acc"), [int(row["test_count"]) for row in rows], "test_acc")
    problems += _whole_counts(_floats(rows, "val_acc"), list(manifest.counts("val")), "val_acc")
    if problems:
        return problems
    summary = result["summary"]
    for key, value in recomputed_summary(result, rows).items():
        if not _agree(summary.get(key), value):
            problems.append((f"summary.{key}", f"{_shown(summary.get(key))} is not what {PER_CLASS} gives ({_shown(value)})"))
    return problems
