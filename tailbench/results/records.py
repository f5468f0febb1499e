"""Reading run records back: only complete runs, as typed records (JSON and CSV; nothing executed).

Readers run while writers work (a sweep, `tailbench submit`): hidden folders (a name starting
with '.', where writers stage and lock) are never entered, a folder that vanishes or is swapped
while being read is skipped or read again, and a record's files are read through one open handle
on its folder, so they always come from the same record.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import pandas as pd

from tailbench.errors import UserError
from tailbench.results import per_image
from tailbench.results.metrics import RunTables, compute
from tailbench.results.record import RunRecord
from tailbench.storage.safe_json import MAX_BYTES, JsonTooLarge, loads_bounded
from tailbench.results.store import DONE, PER_CLASS, PER_IMAGE, RESULT

_GONE = (FileNotFoundError, NotADirectoryError)


UNRECORDED_CPU = "CPU model not recorded"  # records made before 2026-12-04 name no CPU


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
    def machine_kind(self) -> str:
        """What decides a record's float sums besides code and seed: the device (with its CPU thread
        count) and, on a CPU, its model, whose vector instructions pick the kernels
        (docs/PERFORMANCE.md, "Determinism across machines")."""
        provenance = self.record.provenance
        if provenance.device_type != "cpu":
            return provenance.device
        return f"{provenance.device}, {provenance.machine.get('cpu') or UNRECORDED_CPU}"

    @cached_property
    def evidence(self) -> tuple[pd.DataFrame | None, str | None]:
        """The per-image table (None when the record has none or it is unusable) and, when the
        record lists one that cannot be used, the one-line reason."""
        listed = self.record.per_image
        if listed is None:
            return None, None
        try:
            data = (self.directory / PER_IMAGE).read_bytes()
        except OSError as error:
            return None, f"{self.directory / PER_IMAGE}: cannot be read ({error.strerror or error})"
        problems = per_image.check(data, listed.model_dump(), list(self.record.dataset.invariance_families), self.per_class)
        if problems:
            field, why = problems[0]
            return None, f"{self.directory}: {field} {why}; its per-image metrics show —"
        return per_image.decode(data), None

    @cached_property
    def metrics(self) -> dict[str, float | None]:
        """Every metric of tailbench.results.metrics computed from the record's tables, then the
        method's own summary numbers (learned_*) as stored."""
        values = compute(RunTables(self.per_class, tuple(self.record.dataset.invariance_families), self.evidence[0]))
        values.update({key: value for key, value in self.summary.items() if key not in values})
        return values

    @property
    def result(self) -> dict:
        """The record as the JSON object result.json holds (for code that reads it as a dict)."""
        return self.record.to_json()


def visible_folders(root: Path) -> Iterator[tuple[Path, set[str]]]:
    """(folder, names of its files) for root and every folder below it that is not hidden,
    without entering hidden folders; folders that vanish during the walk are skipped."""
    pending = [Path(root)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                files, subfolders = set(), []
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            subfolders.append(Path(entry.path))
                        else:
                            files.add(entry.name)
                    except _GONE:
                        continue
        except _GONE:
            continue
        yield folder, files
        pending.extend(sorted(subfolders, reverse=True))


def _read_at(folder_fd: int, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY, dir_fd=folder_fd)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise JsonTooLarge(f"is over {MAX_BYTES:,} bytes, the limit")
    return data


def read_record_files(directory: Path, attempts: int = 3) -> dict[str, bytes] | None:
    """result.json, per_class.csv and done, all from one folder; None when the folder is not (or
    no longer) a complete record. A record swapped for a newer one while read is read again."""
    for _ in range(attempts):
        try:
            folder_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except _GONE:
            return None
        try:
            return {name: _read_at(folder_fd, name) for name in (DONE, RESULT, PER_CLASS)}
        except _GONE:
            continue  # replaced or removed under us: look at the path again
        finally:
            os.close(folder_fd)
    return None


def record_from_json(path: Path, data: bytes) -> RunRecord:
    """A result.json's bytes as a validated RunRecord; a record that is not one is a one-line UserError."""
    from tailbench.results.schema import validate_record

    try:
        result = loads_bounded(data)
    except JsonTooLarge as error:
        raise UserError(f"{path} {error}; check it with `tailbench submit` or remove it") from None
    if not isinstance(result, dict):
        raise UserError(f"{path} is not a JSON object; check it with `tailbench submit` or remove it")
    record, problems = validate_record(result)
    if record is None:
        field, why = problems[0]
        raise UserError(f"{path}: {field}: {why}; a run record must pass `tailbench submit`'s checks")
    return record


def parse_run(directory: Path, files: dict[str, bytes]) -> StoredRun:
    record = record_from_json(directory / RESULT, files[RESULT])
    try:
        per_class = pd.read_csv(io.BytesIO(files[PER_CLASS]), dtype={"class_name": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise UserError(f"{directory / PER_CLASS} cannot be read as CSV ({' '.join(str(error).split())[:200]})") from None
    return StoredRun(directory, record, per_class)


def load_record(path: Path) -> RunRecord:
    """One result.json as a validated RunRecord."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror or error})") from None
    return record_from_json(Path(path), data)


def read_run(directory: Path) -> StoredRun:
    files = read_record_files(Path(directory))
    if files is None:
        raise UserError(f"{directory} is not a complete run record (result.json, per_class.csv and done)")
    return parse_run(Path(directory), files)


def iter_runs(root: Path) -> list[StoredRun]:
    """Every complete run under root (any depth), sorted by benchmark, method and seed."""
    runs = []
    for folder, files in visible_folders(Path(root)):
        if DONE in files and RESULT in files:
            record = read_record_files(folder)
            if record is not None:
                runs.append(parse_run(folder, record))
    return sorted(runs, key=lambda r: (r.benchmark, r.method, r.seed))
