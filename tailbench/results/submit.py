"""`tailbench submit RUN_DIR... [--results DIR] [--replace]`: validate run records, then copy them.

Each RUN_DIR is a run folder (holding result.json) or any folder above run folders (every folder
below it holding a result.json, per_class.csv or done is taken as one). Every record is checked
against the run-record schema (tailbench.results.schema) and this checkout's dataset registry.
A valid record is copied to RESULTS/<benchmark>/<method>/seed-<seed>/: its files are written into
a hidden temporary folder next to the target and the folder is renamed into place, so a reader
never sees a partial copy and an interrupted copy leaves only a hidden folder that readers skip
and the next submit cleans up. Only result.json, per_class.csv and done are copied, byte for byte
as validated.

An invalid record is reported on one line (`rejected DIR: field: reason`) and nothing of it is
copied; the command then exits with code 2 (valid records in the same call are still copied).

When the target already holds a record: an identical one is left alone (reported as already
submitted); a different one is refused unless --replace, which swaps the new folder in by rename
and then deletes the old one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from tailbench import cli_options
from tailbench.errors import UserError
from tailbench.results.store import _UMASK, DONE, PER_CLASS, RESULT, run_dir, write_atomic

if TYPE_CHECKING:
    from tailbench.results.schema import Checked

RECORD_FILES = (RESULT, PER_CLASS, DONE)
TEMP_MARK = ".submit-"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("submit", help="validate run records and copy the valid ones into results/")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="a run folder, or a folder of run folders")
    cli_options.results(p)
    p.add_argument("--replace", action="store_true", help="replace a different record already at the target")
    p.set_defaults(func=cmd_submit)


def find_run_dirs(root: Path) -> list[Path]:
    """root itself when it is a run folder, else every run folder below it (sorted)."""
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; pass run folders (OUT/<benchmark>/<method>/seed-<seed>) or a folder above them")
    if any((root / name).exists() for name in RECORD_FILES):
        return [root]
    found = {p.parent for name in RECORD_FILES for p in root.rglob(name) if not _hidden(p.parent, root)}
    if not found:
        raise UserError(f"{root} holds no run records (no result.json, per_class.csv or done below it)")
    return sorted(found)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


@dataclass
class Outcome:
    source: Path
    status: str  # "copied", "replaced", "unchanged", "rejected"
    detail: str


def same_record(target: Path, checked: Checked) -> bool:
    return all((target / name).is_file() and (target / name).read_bytes() == checked.files[name] for name in RECORD_FILES) and sorted(
        p.name for p in target.iterdir()) == sorted(RECORD_FILES)


def copy_record(checked: Checked, target: Path, replace: bool) -> str:
    """Copy a validated record into place by rename; returns 'copied' or 'replaced'."""
    parent = target.parent
    created = [p for p in reversed([parent, *parent.parents]) if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(parent, target.name)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}{TEMP_MARK}"))
    old: Path | None = None
    try:
        os.chmod(staging, 0o777 & ~_UMASK)
        for name in RECORD_FILES:  # done last, as the harness writes it
            write_atomic(staging / name, checked.files[name])
        if target.exists() or target.is_symlink():
            if not replace:
                raise UserError(f"{target} appeared while copying; submit again (with --replace to replace it)")
            old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.old-"))
            old.rmdir()
            os.rename(target, old)
        try:
            os.rename(staging, target)
        except BaseException:
            if old is not None:
                os.rename(old, target)
                old = None
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):  # folders this copy made, deepest first, if still empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
        return "replaced"
    return "copied"


def _remove_stale_temporaries(parent: Path, name: str) -> None:
    """Hidden folders that an interrupted submit of the same target left behind."""
    for stale in parent.glob(f".{name}{TEMP_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)


def submit(run_dirs: list[Path], results: Path, replace: bool = False) -> list[Outcome]:
    from tailbench.results.schema import describe, validate_run

    sources = [d for root in run_dirs for d in find_run_dirs(root)]
    if results.exists() and not results.is_dir():
        raise UserError(f"--results {results} is not a folder")
    outcomes: list[Outcome] = []
    targets: dict[Path, Path] = {}
    for source in sources:
        checked = validate_run(source)
        if not checked.ok:
            outcomes.append(Outcome(source, "rejected", checked.reason()))
            continue
        record = checked.record
        target = run_dir(results, record.benchmark, record.entry, record.seed)
        if target in targets:
            outcomes.append(Outcome(source, "rejected", f"benchmark, method and seed: {describe(record)} is also submitted from {targets[target]}"))
            continue
        targets[target] = source
        if target.exists() and same_record(target, checked):
            outcomes.append(Outcome(source, "unchanged", f"{target} already holds this record"))
            continue
        if target.exists() and not replace:
            outcomes.append(Outcome(source, "rejected", f"target: {target} already holds a different record for {describe(record)}; pass --replace to replace it"))
            continue
        status = copy_record(checked, target, replace)
        outcomes.append(Outcome(source, status, f"{describe(record)} -> {target}"))
    return outcomes


def cmd_submit(args: argparse.Namespace) -> int:
    outcomes = submit(args.run_dirs, args.results, args.replace)
    for outcome in outcomes:
        if outcome.status == "rejected":
            print(f"tailbench submit: rejected {outcome.source}: {outcome.detail}", file=sys.stderr)
        else:
            print(f"{outcome.status} {outcome.source}: {outcome.detail}")
    rejected = sum(o.status == "rejected" for o in outcomes)
    if rejected:
        return UserError.exit_code
    return 0
