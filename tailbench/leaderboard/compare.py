"""`tailbench compare DATASET METHOD_A METHOD_B [--results DIR]`: two entries of one benchmark.

Prints (1) per class: test accuracy and eKLD per invariance family of A and B, each the mean over
that entry's seeds, and their difference B - A; (2) for each metric of the leaderboard's table
(tailbench.results.metrics) and the method-own numbers: A's and B's mean with its 95 % bootstrap
interval (tailbench.leaderboard.intervals), and, paired over the seeds both entries share, the
mean and sample standard deviation (ddof = 1) of the differences B - A, the paired t-test's 95 %
interval of that mean and its p-value (stats.paired_seed_test). Reads run records only.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tailbench import cli_options
from tailbench.errors import UserError
from tailbench.storage.folders import require_folder

if TYPE_CHECKING:  # pandas and the records load only when the command runs, not at CLI start
    import pandas as pd

    from tailbench.leaderboard.aggregate import Entry, Stat
    from tailbench.leaderboard.stats import PairedTest

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
    a: Stat | None = None  # each side's mean with its 95 % interval
    b: Stat | None = None
    test: PairedTest | None = None  # None with fewer than two shared seeds
    higher_is_better: bool | None = None


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

    require_folder(results, f"--results {results}", "point --results at a folder of run records")
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


def compared_metrics(a: Entry, b: Entry) -> dict[str, bool | None]:
    """Metric key -> which way is better: the leaderboard's columns and stored numbers, then the
    method-own numbers (learned_*, neither way better)."""
    from tailbench.results.metrics import metrics_for

    keys = {m.key: m.higher_is_better for m in metrics_for(a.families) if m.column or m.stored}
    keys.update({k: None for k in sorted(set(a.learned_keys) | set(b.learned_keys))})
    return keys


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
    from tailbench.leaderboard.stats import paired_seed_test

    better = compared_metrics(a, b)
    keys = list(better)
    values_a = a.summaries.reindex(index=shared, columns=keys)
    values_b = b.summaries.reindex(index=shared, columns=keys)
    both = values_a.notna() & values_b.notna()  # a seed counts for a number when both entries have it
    values_a, values_b = values_a.where(both), values_b.where(both)
    diffs = values_b - values_a
    paired = []
    for key in keys:
        pairs_b, pairs_a = values_b[key].dropna().to_dict(), values_a[key].dropna().to_dict()
        test = paired_seed_test(pairs_b, pairs_a, higher_is_better=better[key] is not False) if better[key] is not None else None
        paired.append(Paired(key, _float(values_a[key].mean()), _float(values_b[key].mean()), _float(diffs[key].mean()),
                             _float(diffs[key].std(ddof=1)), int(diffs[key].count()), a.metric(key), b.metric(key), test, better[key]))
    return Comparison(benchmark, a, b, per_class, shared, paired)


def _num(value: float | None, scale: float, digits: int, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * scale:{'+' if signed else ''}.{digits}f}"


def _scale(metric: str, families) -> tuple[float, int]:
    """As the leaderboard shows the metric (percent for accuracies); method-own numbers as they are."""
    from tailbench.results.metrics import by_key

    found = by_key(families).get(metric)
    return (found.display.scale, found.display.digits) if found else (1.0, 3)


def _with_interval(value: Stat | None, scale: float, digits: int) -> str:
    if value is None or value.mean is None:
        return "—"
    text = _num(value.mean, scale, digits)
    return text + (f" [{_num(value.low, scale, digits)}, {_num(value.high, scale, digits)}]" if value.low is not None else "")


def print_comparison(result: Comparison) -> None:
    from rich.console import Console
    from rich.markup import escape
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
    paired = Table("metric", "A [95 % interval]", "B [95 % interval]", "mean Δ (B - A)", "std Δ", "95 % interval of Δ", "p", "B vs A", "seeds",
                   title=escape(f"A and B: mean over all their seeds [95 % bootstrap interval]; Δ paired over shared seeds "
                                f"{', '.join(map(str, result.shared_seeds))} (paired t-test, p < 0.05); accuracies in %"))
    for p in result.paired:
        scale, digits = _scale(p.metric, families)
        test = p.test
        paired.add_row(p.metric, _with_interval(p.a, scale, digits), _with_interval(p.b, scale, digits),
                       _num(p.mean_diff, scale, digits, True), _num(p.std_diff, scale, digits),
                       f"[{_num(test.low, scale, digits, True)}, {_num(test.high, scale, digits, True)}]" if test else "—",
                       f"{test.p_value:.3g}" if test else "—", test.verdict if test else "—", str(p.n))
    console.print(paired)


def cmd_compare(args: argparse.Namespace) -> int:
    print_comparison(compare(args.results, args.benchmark, args.method_a, args.method_b))
    return 0
