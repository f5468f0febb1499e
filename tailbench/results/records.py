"""Reading run records back: only complete runs, as plain data (JSON and CSV; nothing executed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tailbench.results.store import DONE, PER_CLASS, RESULT, record_method_id


@dataclass
class RunRecord:
    directory: Path
    result: dict
    per_class: pd.DataFrame

    @property
    def benchmark(self) -> str:
        return self.result["benchmark"]

    @property
    def method(self) -> str:
        """The leaderboard entry: the spec plus `@part.key=value` per changed hyper-parameter."""
        return record_method_id(self.result)

    @property
    def seed(self) -> int:
        return int(self.result["seed"])


def read_run(directory: Path) -> RunRecord:
    result = json.loads((directory / RESULT).read_text())
    per_class = pd.read_csv(directory / PER_CLASS, dtype={"class_name": str})
    return RunRecord(directory, result, per_class)


def iter_runs(root: Path) -> list[RunRecord]:
    """Every complete run under root (any depth), sorted by benchmark, method and seed.

    Hidden folders (a name starting with '.') are skipped: `tailbench submit` stages copies there.
    """
    root = Path(root)
    runs = [
        read_run(done.parent) for done in root.rglob(DONE)
        if (done.parent / RESULT).is_file() and not any(part.startswith(".") for part in done.parent.relative_to(root).parts)
    ]
    return sorted(runs, key=lambda r: (r.benchmark, r.method, r.seed))
