"""Run records grouped into leaderboard entries: one per (benchmark, method), over seeds."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from tailbench.leaderboard.intervals import MetricInterval, entry_intervals
from tailbench.results.records import UNRECORDED_CPU, StoredRun


@dataclass
class Stat:
    mean: float | None
    std: float | None  # sample standard deviation (ddof = 1); None for fewer than two values
    n: int
    low: float | None = None  # the 95 % interval of the mean (tailbench.leaderboard.intervals)
    high: float | None = None
    interval_kind: str | None = None


@dataclass
class Entry:
    benchmark: str
    method: str
    runs: list[StoredRun]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @cached_property
    def summaries(self) -> pd.DataFrame:
        """One row per seed, one column per metric (tailbench.results.metrics, computed from each
        record's tables) and per method-own summary number; missing: NaN."""
        return pd.DataFrame([r.metrics for r in self.runs], index=self.seeds, dtype=float)

    @cached_property
    def stats(self) -> pd.DataFrame:
        """Per summary number: mean and sample standard deviation (ddof = 1) over the seeds that have it, and their count."""
        values = self.summaries
        return pd.DataFrame({"mean": values.mean(), "std": values.std(ddof=1), "n": values.count()})

    @cached_property
    def intervals(self) -> dict[str, MetricInterval]:
        return entry_intervals(self)

    def metric(self, key: str) -> Stat:
        if key not in self.stats.index:
            return Stat(None, None, 0)
        row = self.stats.loc[key]
        n = int(row["n"])
        if not n:
            return Stat(None, None, 0)
        found = self.intervals.get(key)
        interval = found.interval if found else None
        return Stat(float(row["mean"]), float(row["std"]) if n > 1 else None, n,
                    interval.low if interval else None, interval.high if interval else None, found.kind if found else None)

    @property
    def external_code(self) -> list[str]:
        """`part (file)` for each part whose code came from outside tailbench (a --method-file or a package)."""
        found = {f"{part.name} ({part.code.file})": None for run in self.runs for part in run.record.method.external_parts if part.code}
        return list(found)

    def per_class_mean(self) -> pd.DataFrame:
        """Per-class columns averaged over seeds (train counts are the same in every seed)."""
        frames = [r.per_class.set_index("class") for r in self.runs]
        numeric = pd.concat(frames).drop(columns="class_name").select_dtypes("number").groupby(level=0).mean()
        numeric.insert(0, "class_name", frames[0]["class_name"])
        return numeric.reset_index()

    @property
    def sees_test_images(self) -> bool:
        """Whether a second stage trained on the test split's (unlabeled) images, as SADE's test-time aggregation does."""
        return any(run.record.stages is not None and run.record.stages.classifier is not None
                   and run.record.stages.classifier.trained_on != "train" for run in self.runs)

    @property
    def machines(self) -> list[str]:
        """The machine kinds its seeds ran on (StoredRun.machine_kind), most records first."""
        counts = pd.Series([run.machine_kind for run in self.runs]).value_counts(sort=False)
        return sorted(counts.index, key=lambda kind: (-counts[kind], kind))

    @property
    def outside(self):
        """The OutsideModel of an entry trained outside tailbench (its first seed's), else None."""
        return self.runs[0].record.outside

    @property
    def has_images(self) -> bool:
        """Every run keeps usable per-image evidence."""
        return all(run.evidence[0] is not None for run in self.runs)

    @property
    def families(self) -> list[str]:
        return list(self.runs[0].record.dataset.invariance_families)

    @property
    def learned_keys(self) -> list[str]:
        """Summary numbers about what a method learned (e.g. Augerino's learned_rotation_deg)."""
        return sorted({k for r in self.runs for k in r.summary if k.startswith("learned_")})


def machine_counts(entries: list[Entry]) -> list[tuple[str, int]]:
    """A table's machine kinds and their record counts, most records first."""
    counts = pd.Series([run.machine_kind for entry in entries for run in entry.runs]).value_counts()
    return sorted(((str(kind), int(n)) for kind, n in counts.items()), key=lambda item: (-item[1], item[0]))


def usual_machine(entries: list[Entry]) -> str | None:
    """The known machine kind most of a table's records name (records that name no CPU model are
    not counted as another kind: they cannot say), or None when they name none or only one."""
    known = [(kind, n) for kind, n in machine_counts(entries) if UNRECORDED_CPU not in kind]
    return known[0][0] if len(known) > 1 else None


def off_machine(entries: list[Entry]) -> dict[str, list[str]]:
    """Entry -> the known machine kinds of its records other than the table's usual one (empty
    when a table names one kind at most): numbers from another kind differ by float noise that can
    reach a seed's spread, so a comparison across kinds is not a paired one."""
    usual = usual_machine(entries)
    if usual is None:
        return {}
    other = {entry.method: [k for k in entry.machines if k != usual and UNRECORDED_CPU not in k] for entry in entries}
    return {method: kinds for method, kinds in other.items() if kinds}


def entries(runs: list[StoredRun]) -> dict[str, list[Entry]]:
    """Benchmark -> its entries, sorted by method name."""
    grouped: dict[str, dict[str, list[StoredRun]]] = {}
    for run in runs:
        grouped.setdefault(run.benchmark, {}).setdefault(run.method, []).append(run)
    return {
        benchmark: [Entry(benchmark, method, sorted(group, key=lambda r: r.seed)) for method, group in sorted(methods.items())]
        for benchmark, methods in sorted(grouped.items())
    }
