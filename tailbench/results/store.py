"""Where run records live and how they are written: every file atomically, `done` last.

OUT/<benchmark>/<method>/seed-<seed>/ holds result.json, per_class.csv and an empty `done`. A
directory without `done` is an incomplete run and is never read by the leaderboard.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

RESULT, PER_CLASS, DONE = "result.json", "per_class.csv", "done"
_UMASK = os.umask(0)
os.umask(_UMASK)


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


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; records are for everyone to read
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def write_run(directory: Path, result: dict, per_class_rows: list[dict]) -> None:
    """Replace any earlier record in the directory; `done` appears only once both files are in place."""
    (directory / DONE).unlink(missing_ok=True)
    write_atomic(directory / PER_CLASS, csv_bytes(per_class_rows))
    write_atomic(directory / RESULT, json_bytes(result))
    write_atomic(directory / DONE, b"")
