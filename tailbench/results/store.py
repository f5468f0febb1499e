"""Where run records live and how they are written: every file atomically, `done` last.

OUT/<benchmark>/<method>/seed-<seed>/ holds result.json, per_class.csv and an empty `done`. A
directory without `done` is an incomplete run and is never read by the leaderboard.

A record is written whole into a hidden sibling folder and swapped in by one rename
(tailbench.storage.staging), so a crash or a full disk at any point leaves the earlier record, or
nothing, never a half-written one; what a killed writer left behind is removed by the next
write of the same record.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

from tailbench.storage.staging import (
    carry_hidden_files,
    clean_stale,
    clean_stale_files,
    fsync_folder,
    publish,
    staging_name,
)
from tailbench.storage.atomic import write_atomic
from tailbench.storage.writable import (
    PROBE,  # its probe file, removed here if its process died
)

RESULT, PER_CLASS, DONE = "result.json", "per_class.csv", "done"
PER_IMAGE = "per_image.csv.gz"  # per-image evidence (tailbench.results.per_image), optional


def benchmark_id(dataset_id: str, default_recipe: str, recipe: str, overrides: dict[str, object]) -> str:
    """The leaderboard table a run belongs to: the dataset id, then `@<recipe>` when the recipe is
    not the dataset's own and `@key=value` per command-line override."""
    name = dataset_id if recipe == default_recipe else f"{dataset_id}@{recipe}"
    return name + "".join(f"@{k}={v}" for k, v in sorted(overrides.items()))


def method_id(spec: str, changed_hparams: dict[str, object]) -> str:
    """The leaderboard entry a run belongs to: the method spec, then `@part.key=value` per
    hyper-parameter that differs from its default, so that `--hp` variants never share an entry."""
    return spec + "".join(f"@{k}={format_value(v)}" for k, v in sorted(changed_hparams.items()))


def format_value(value: object) -> str:
    """A hyper-parameter as the command line writes it (`true`, not Python's `True`)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def record_method_id(result: dict) -> str:
    """The entry a stored result.json belongs to (records without `method.changed` changed nothing)."""
    method = result["method"]
    return method_id(method["spec"], method.get("changed") or {})


def path_component_problem(value: str) -> str | None:
    """Why `value` cannot name one folder of a run record's path, or None when it can."""
    if value in {".", ".."} or value.startswith(".") or "/" in value or "\\" in value or "\x00" in value:
        return f"{value[:60]!r} cannot name a folder (no '/', '\\', NUL or leading '.')"
    if len(value.encode()) > 200:
        return "is longer than 200 bytes"
    return None


def run_dir(out: Path, benchmark: str, method: str, seed: int) -> Path:
    return Path(out) / benchmark / method / f"seed-{seed}"


def is_complete(directory: Path) -> bool:
    return (directory / DONE).is_file()


def json_safe(value):
    """Non-finite floats as null (a missing number), in any nesting of dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def json_bytes(obj: object) -> bytes:
    return (json.dumps(json_safe(obj), indent=2, sort_keys=False, allow_nan=False) + "\n").encode()


def csv_bytes(rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue().encode()


RECORD_FILES = (RESULT, PER_CLASS, DONE)
EVIDENCE_FILES = (PER_IMAGE,)  # optional; result.json lists each one present
STAGING_KINDS = ("write", "submit")  # the hidden siblings the harness and `tailbench submit` stage in


def clean_leftovers(directory: Path) -> list[Path]:
    """What killed writers of this record left: staging folders beside it and temporary files in
    it (only those of dead processes, and only names tailbench makes)."""
    return clean_stale(directory, STAGING_KINDS) + clean_stale_files(directory, (*RECORD_FILES, *EVIDENCE_FILES, PROBE))


def write_record_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write the record files (and the evidence files given) into a fresh staging folder, `done`
    last, as a reader expects."""
    for name in (RESULT, PER_CLASS, *EVIDENCE_FILES, DONE):
        if name in files:
            write_atomic(folder / name, files[name])


def stage_and_publish(target: Path, files: dict[str, bytes], kind: str) -> bool:
    """Write the record beside target and swap it in by one rename; True when it replaced a folder."""
    staging = staging_name(target, kind)
    staging.mkdir()
    try:
        write_record_files(staging, files)
        carry_hidden_files(target, staging)
        old = publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_folder(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return old is not None


def write_run(directory: Path, result: dict, per_class_rows: list[dict], evidence: dict[str, bytes] | None = None) -> None:
    """Write a complete record to directory: the earlier record (with --force) stays in place
    until the new one, complete, takes its place in one rename. evidence: optional files by name
    (EVIDENCE_FILES), which result.json lists."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(directory)
    files = {PER_CLASS: csv_bytes(per_class_rows), RESULT: json_bytes(result), DONE: b"", **(evidence or {})}
    stage_and_publish(directory, files, "write")
