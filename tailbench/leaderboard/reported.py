"""Numbers reported in papers (reported.yaml): loaded with yaml.safe_load, checked, kept apart.

These never come from a run record; the leaderboard shows them in their own tables, marked
"reported", and never averages or sorts them together with reproduced entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from tailbench.errors import UserError

REPORTED_FILE = Path(__file__).with_name("reported.yaml")
METRICS = {"top1_error": "top-1 error (%)"}


@dataclass(frozen=True)
class Reported:
    benchmark: str
    method: str
    paper_method: str
    metric: str
    value: float
    source: str
    citation: str
    url: str
    verified: bool
    note: str

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy in percent (100 - the reported top-1 error)."""
        return round(100.0 - self.value, 6)


def load_reported(path: Path = REPORTED_FILE) -> list[Reported]:
    """Every reported row, sorted by benchmark, then as listed in the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"{path}: cannot read the reported numbers ({' '.join(str(error).split())})") from None
    if not isinstance(raw, dict) or raw.get("version") != 1 or not isinstance(raw.get("sources"), dict) or not isinstance(raw.get("rows"), list):
        raise UserError(f"{path}: expected version: 1, a `sources` mapping and a `rows` list")
    rows = []
    for i, row in enumerate(raw["rows"]):
        where = f"{path.name} rows[{i}]"
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a mapping")
        for key, kind in (("benchmark", str), ("method", str), ("paper_method", str), ("metric", str), ("value", (int, float)), ("source", str), ("verified", bool)):
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool) is not (kind is bool):
                raise UserError(f"{where}.{key}: missing or of the wrong type")
        if row["metric"] not in METRICS:
            raise UserError(f"{where}.metric: {row['metric']!r} is not one of {', '.join(METRICS)}")
        if not 0 <= row["value"] <= 100:
            raise UserError(f"{where}.value: {row['value']} is not a percentage")
        source = raw["sources"].get(row["source"])
        if not isinstance(source, dict) or not isinstance(source.get("citation"), str):
            raise UserError(f"{where}.source: {row['source']!r} has no citation under `sources`")
        rows.append(Reported(
            benchmark=row["benchmark"], method=row["method"], paper_method=row["paper_method"], metric=row["metric"],
            value=float(row["value"]), source=row["source"], citation=source["citation"], url=str(source.get("url", "")),
            verified=row["verified"], note=str(row.get("note", "")),
        ))
    return sorted(rows, key=lambda r: r.benchmark)


def by_benchmark(rows: list[Reported]) -> dict[str, list[Reported]]:
    grouped: dict[str, list[Reported]] = {}
    for row in rows:
        grouped.setdefault(row.benchmark, []).append(row)
    return grouped
