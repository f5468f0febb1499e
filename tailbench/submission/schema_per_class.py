"""The per_class.csv half of the run-record schema: its columns, row per class, cell types and
ranges, agreement with the dataset's manifest, and the summary means it must reproduce.

Read as plain CSV text (nothing executed); `check_per_class` returns (field, reason) problems,
stopping at the first bad row, as `tailbench submit` reports them.
"""

from __future__ import annotations

import csv
import io
import math

from typing import TYPE_CHECKING

from tailbench.results.store import PER_CLASS

if TYPE_CHECKING:
    from tailbench.results.record import RunRecord

PROBABILITY = (0.0, 1.0)
NON_NEGATIVE = (0.0, None)


def per_class_columns(families: list[str]) -> list[str]:
    columns = ["class", "class_name", "train_count", "test_count", "val_acc", "test_acc"]
    for family in families:
        columns += [f"ekld_{family}", f"consistency_{family}"]
    return columns


def _cell(text: str, kind: str) -> tuple[float | int | None, str | None]:
    """Parse one CSV cell: 'int', 'float' (empty = missing) or 'text'."""
    if kind == "int":
        try:
            return int(text), None
        except ValueError:
            return None, f"{text[:30]!r} is not an integer"
    if text == "":
        return None, None
    try:
        value = float(text)
    except ValueError:
        return None, f"{text[:30]!r} is not a number"
    if not math.isfinite(value):
        return None, f"{text[:30]!r} is not finite"
    return value, None


def check_per_class(record: RunRecord, data: bytes, manifest) -> list[tuple[str, str]]:
    from tailbench.results.record_types import range_problems

    dataset = record.dataset
    families = list(dataset.invariance_families)
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error) as error:
        return [(PER_CLASS, f"is not a readable CSV file ({error})")]
    if not rows:
        return [(PER_CLASS, "is empty")]
    header, body = rows[0], [r for r in rows[1:] if r]
    expected = per_class_columns(families)
    if header != expected:
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        detail = (f"missing {', '.join(missing)}" if missing else "") + ("; " if missing and extra else "") + (f"unexpected {', '.join(extra)}" if extra else "")
        return [(f"{PER_CLASS} columns", f"{detail or 'out of order'}; expected {','.join(expected)}")]
    if len(body) != dataset.num_classes:
        return [(f"{PER_CLASS} rows", f"{len(body)} rows; the dataset has {dataset.num_classes} classes")]
    train, test, names = manifest.counts("train"), manifest.counts("test"), list(manifest.class_names)
    kinds = {"class": "int", "class_name": "text", "train_count": "int", "test_count": "int"}
    ranges = {"val_acc": PROBABILITY, "test_acc": PROBABILITY}
    for family in families:
        ranges[f"ekld_{family}"] = NON_NEGATIVE
        ranges[f"consistency_{family}"] = PROBABILITY
    columns: dict[str, list] = {c: [] for c in header}
    for k, row in enumerate(body):
        where = f"{PER_CLASS} row {k + 1}"
        problems: list[tuple[str, str]] = []
        if len(row) != len(header):
            return [(where, f"has {len(row)} cells; the header has {len(header)}")]
        for column, text in zip(header, row):
            kind = kinds.get(column, "float")
            value, bad = (text, None) if kind == "text" else _cell(text, kind)
            if bad:
                problems.append((f"{where} {column}", bad))
            elif value is not None and column in ranges:
                problems += range_problems(f"{where} {column}", value, *ranges[column])
            columns[column].append(value)
        if problems:
            return problems
        got = {column: columns[column][-1] for column in header}
        if got["class"] != k:
            problems.append((f"{where} class", f"is {got['class']}, expected {k} (rows in class order)"))
        if got["class_name"] != names[k]:
            problems.append((f"{where} class_name", f"{got['class_name']!r} is not the manifest's name {names[k]!r}"))
        if got["train_count"] != train[k]:
            problems.append((f"{where} train_count", f"is {got['train_count']}; the manifest has {train[k]} training images in class {k}"))
        if got["test_count"] != test[k]:
            problems.append((f"{where} test_count", f"is {got['test_count']}; the manifest has {test[k]} test images in class {k}"))
        if got["test_acc"] is None and test[k] > 0:
            problems.append((f"{where} test_acc", "is missing though the class has test images"))
        if problems:
            return problems
    return _check_summary_matches_table(record.summary.as_dict(), columns, families)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 + 1e-9 * abs(b)


def _check_summary_matches_table(summary: dict, columns: dict[str, list], families: list[str]) -> list[tuple[str, str]]:
    """The summary's means must be the means of the per-class table it came with."""
    pairs = [("balanced_accuracy", "test_acc")] + [(f"ekld_{f}", f"ekld_{f}") for f in families]
    problems = []
    for key, column in pairs:
        values = [v for v in columns[column] if v is not None]
        if summary.get(key) is None or not values:
            continue
        mean = math.fsum(values) / len(values)
        if not _close(summary[key], mean):
            problems.append((f"summary.{key}", f"{summary[key]:.6g} is not the mean of {PER_CLASS} {column} ({mean:.6g})"))
    return problems
