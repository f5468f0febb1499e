"""Run records grouped into leaderboard entries: one per (benchmark, method), over seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailbench.results.records import StoredRun


@dataclass
class Stat:
    mean: float | None
    std: float | None  # sample standard deviation (ddof = 1); None for fewer than two values
    n: int


def stat(values: list[float | None]) -> Stat:
    present = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not present:
        return Stat(None, None, 0)
    std = float(np.std(present, ddof=1)) if len(present) > 1 else None
    return Stat(float(np.mean(present)), std, len(present))


@dataclass
class Entry:
    benchmark: str
    method: str
    runs: list[StoredRun]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    def metric(self, key: str) -> Stat:
        return stat([r.summary.get(key) for r in self.runs])

    def per_class_mean(self) -> pd.DataFrame:
        """Per-class columns averaged over seeds (train counts are the same in every seed)."""
        frames = [r.per_class.set_index("class") for r in self.runs]
        numeric = pd.concat(frames).drop(columns="class_name").select_dtypes("number").groupby(level=0).mean()
        numeric.insert(0, "class_name", frames[0]["class_name"])
        return numeric.reset_index()

    @property
    def families(self) -> list[str]:
        return list(self.runs[0].record.dataset.invariance_families)

    @property
    def learned_keys(self) -> list[str]:
        """Summary numbers about what a method learned (e.g. Augerino's learned_rotation_deg)."""
        return sorted({k for r in self.runs for k in r.summary if k.startswith("learned_")})


def entries(runs: list[StoredRun]) -> dict[str, list[Entry]]:
    """Benchmark -> its entries, sorted by method name."""
    grouped: dict[str, dict[str, list[StoredRun]]] = {}
    for run in runs:
        grouped.setdefault(run.benchmark, {}).setdefault(run.method, []).append(run)
    return {
        benchmark: [Entry(benchmark, method, sorted(group, key=lambda r: r.seed)) for method, group in sorted(methods.items())]
        for benchmark, methods in sorted(grouped.items())
    }
