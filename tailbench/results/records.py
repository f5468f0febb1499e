"""Reading run records back: only complete runs, as typed records (JSON and CSV; nothing executed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tailbench.errors import UserError
from tailbench.results.record import RunRecord
from tailbench.results.store import DONE, PER_CLASS, RESULT


@dataclass
class StoredRun:
    directory: Path
    record: RunRecord
    per_class: pd.DataFrame

    @property
    def benchmark(self) -> str:
        return self.record.benchmark

    @property
    def method(self) -> str:
        """The leaderboard entry: the spec plus `@part.key=value` per changed hyper-parameter."""
        return self.record.entry

    @property
    def seed(self) -> int:
        return self.record.seed

    @property
    def summary(self) -> dict[str, float | None]:
        return self.record.summary.as_dict()

    @property
    def result(self) -> dict:
        """The record as the JSON object result.json holds (for code that reads it as a dict)."""
        return self.record.to_json()


def _no_constants(token: str) -> object:
    raise ValueError(f"{token} is not allowed")


def load_record(path: Path) -> RunRecord:
    """A result.json as a validated RunRecord; a record that is not one is a one-line UserError."""
    from tailbench.results.schema import validate_record

    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_no_constants)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"{path}: cannot be read as JSON ({' '.join(str(error).split())})") from None
    if not isinstance(result, dict):
        raise UserError(f"{path}: expected a JSON object")
    record, problems = validate_record(result)
    if record is None:
        field, why = problems[0]
        raise UserError(f"{path}: {field}: {why}; a run record must pass `tailbench submit`'s checks")
    return record


def read_run(directory: Path) -> StoredRun:
    record = load_record(directory / RESULT)
    per_class = pd.read_csv(directory / PER_CLASS, dtype={"class_name": str})
    return StoredRun(directory, record, per_class)


def iter_runs(root: Path) -> list[StoredRun]:
    """Every complete run under root (any depth), sorted by benchmark, method and seed.

    Hidden folders (a name starting with '.') are skipped: `tailbench submit` stages copies there.
    """
    root = Path(root)
    runs = [
        read_run(done.parent) for done in root.rglob(DONE)
        if (done.parent / RESULT).is_file() and not any(part.startswith(".") for part in done.parent.relative_to(root).parts)
    ]
    return sorted(runs, key=lambda r: (r.benchmark, r.method, r.seed))
