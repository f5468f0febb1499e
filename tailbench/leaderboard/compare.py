"""`tailbench compare DATASET METHOD_A METHOD_B [--results DIR]`: two entries of one benchmark.

Prints (1) per class: test accuracy and eKLD per invariance family of A and B, each the mean over
that entry's seeds, and their difference B - A; (2) paired over the seeds both entries share: for
each summary number, the mean and the sample standard deviation (ddof = 1) of the per-seed
differences B - A. Reads run records only (JSON and CSV).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tailbench import cli_options
from tailbench.errors import UserError

if TYPE_CHECKING:  # pandas and the records load only when the command runs, not at CLI start
    import pandas as pd

    from tailbench.leaderboard.aggregate import Entry

ACCURACY_KEYS = [
    "accuracy", "balanced_accuracy", "many_shot_accuracy", "medium_shot_accuracy", "few_shot_accuracy",
    "tail_accuracy", "worst_class_accuracy",
]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("compare", help="per-class and paired per-seed differences between two methods on one benchmark")
    p.add_argument("benchmark", metavar="DATASET", help="the benchmark id, as in the run folder")
    p.add_argument("method_a", metavar="METHOD_A", help="an entry: the method spec, plus @part.key=value for changed hyper-parameters")
    p.add_argument("method_b", metavar="METHOD_B")
    cli_options.results(p)
    p.set_defaults(func=cmd_compare)


@dataclass
class Paired:
    metric: str
    mean_a: float | None
    mean_b: float | None
    mean_diff: float | None  # B - A
    std_diff: float | None  # ddof = 1; None with fewer than two shared seeds
    n: int


@dataclass
class Comparison:
    benchmark: str
    a: Entry
    b: Entry
    per_class: pd.DataFrame
    shared_seeds: list[int]
    paired: list[Paired]


def find_entries(results: Path, benchmark: str, method_a: str, method_b: str) -> tuple[Entry, Entry]:
    from tailbench.leaderboard.aggregate import entries
    from tailbench.results.records import iter_runs

    if not results.is_dir():
        raise UserError(f"--results {results} is not a folder of run records")
    grouped = entries(iter_runs(results))
    if benchmark not in grouped:
        known = ", ".join(grouped) or "none"
        raise UserError(f"no run records for benchmark {benchmark!r} under {results}; benchmarks: {known}")
    by_method = {e.method: e for e in grouped[benchmark]}
    for method in (method_a, method_b):
        if method not in by_method:
            raise UserError(f"{benchmark} has no entry for method {method!r}; its methods: {', '.join(by_method)}")
    if method_a == method_b:
        raise UserError("METHOD_A and METHOD_B are the same entry; name two different methods")
    return by_method[method_a], by_method[method_b]


def summary_keys(a: Entry, b: Entry) -> list[str]:
    keys = list(ACCURACY_KEYS)
    for family in a.families:
        keys += [f"ekld_{family}", f"tail_ekld_{family}", f"consistency_{family}", f"spearman_ekld_count_{family}"]
    learned = sorted({k for e in (a, b) for r in e.runs for k in r.summary if k.startswith("learned_")})
    return keys + learned


def _float(value: float) -> float | None:
    """A pandas statistic as a float, None where it is undefined (NaN: too few values)."""
    return None if math.isnan(value) else float(value)


def compare(results: Path, benchmark: str, method_a: str, method_b: str) -> Comparison:
    import pandas as pd

    a, b = find_entries(results, benchmark, method_a, method_b)
    families = a.families
    table_a, table_b = a.per_class_mean(), b.per_class_mean()
    per_class = pd.DataFrame({"class": table_a["class"], "class_name": table_a["class_name"], "train_count": table_a["train_count"]})
    for column in ["test_acc"] + [f"ekld_{f}" for f in families]:
        per_class[f"{column}_a"] = table_a[column].to_numpy()
        per_class[f"{column}_b"] = table_b[column].to_numpy()
        per_class[f"{column}_diff"] = per_class[f"{column}_b"] - per_class[f"{column}_a"]
    shared = sorted(set(a.seeds) & set(b.seeds))
    keys = summary_keys(a, b)
    values_a = a.summaries.reindex(index=shared, columns=keys)
    values_b = b.summaries.reindex(index=shared, columns=keys)
    both = values_a.notna() & values_b.notna()  # a seed counts for a number when both entries have it
    values_a, values_b = values_a.where(both), values_b.where(both)
    diffs = values_b - values_a
    paired = [
        Paired(key, _float(values_a[key].mean()), _float(values_b[key].mean()), _float(diffs[key].mean()),
               _float(diffs[key].std(ddof=1)), int(diffs[key].count()))
        for key in keys
    ]
    return Comparison(benchmark, a, b, per_class, shared, paired)


def _num(value: float | None, scale: float, digits: int, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * scale:{'+' if signed else ''}.{digits}f}"


def _scale(metric: str) -> tuple[float, int]:
    """Accuracies and consistencies in percent; eKLD and correlations as they are."""
    if metric.endswith("accuracy") or metric.startswith("consistency_"):
        return 100.0, 1
    return 1.0, 3


def print_comparison(result: Comparison) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    a, b = result.a.method, result.b.method
    families = result.a.families
    table = Table("class", "name", "train", "acc A", "acc B", "Δ acc", title=f"{result.benchmark}: per class, A = {a} ({len(result.a.runs)} seeds), B = {b} ({len(result.b.runs)} seeds); means over seeds, Δ = B - A")
    for family in families:
        table.add_column(f"eKLD {family} A")
        table.add_column(f"eKLD {family} B")
        table.add_column(f"Δ eKLD {family}")
    for values in result.per_class.to_dict("records"):
        cells = [str(values["class"]), str(values["class_name"]), str(int(values["train_count"]))]
        cells += [_num(values["test_acc_a"], 100, 1), _num(values["test_acc_b"], 100, 1), _num(values["test_acc_diff"], 100, 1, True)]
        for family in families:
            cells += [_num(values[f"ekld_{family}_a"], 1, 3), _num(values[f"ekld_{family}_b"], 1, 3), _num(values[f"ekld_{family}_diff"], 1, 3, True)]
        table.add_row(*cells)
    console.print(table)
    if not result.shared_seeds:
        print(f"no shared seeds (A: {result.a.seeds}, B: {result.b.seeds}): no paired differences")
        return
    paired = Table("metric", "A", "B", "mean Δ (B - A)", "std Δ", "seeds",
                   title=f"paired over shared seeds {', '.join(map(str, result.shared_seeds))} (accuracy and consistency in %)")
    for p in result.paired:
        scale, digits = _scale(p.metric)
        paired.add_row(p.metric, _num(p.mean_a, scale, digits), _num(p.mean_b, scale, digits),
                       _num(p.mean_diff, scale, digits, True), _num(p.std_diff, scale, digits), str(p.n))
    console.print(paired)


def cmd_compare(args: argparse.Namespace) -> int:
    print_comparison(compare(args.results, args.benchmark, args.method_a, args.method_b))
    return 0
