"""`tailbench submit RUN_DIR... [--results DIR] [--replace]`: validate run records, then copy them.

Each RUN_DIR is a run folder (holding result.json) or any folder above run folders (every folder
below it holding a result.json, per_class.csv or done is taken as one). Every record is checked
against the run-record schema (tailbench.results.schema) and this checkout's dataset registry.
A valid record is copied to RESULTS/<benchmark>/<method>/seed-<seed>/.

Safe under any interleaving of processes: each target record has an exclusive lock beside it
(`.seed-<seed>.lock`, tailbench.storage.locks), and everything from "what is there now" to the
copy happens while holding it. The files are written into a hidden staging folder whose name
belongs to this process (tailbench.storage.staging), and one rename makes the record appear; a
copy interrupted at any point leaves only hidden names that readers skip and the next submit of
the same record removes. Only result.json, per_class.csv and done are copied, byte for byte as
validated.

An invalid record is reported on one line (`rejected DIR: field: reason`) and nothing of it is
copied; the command then exits with code 2 (valid records in the same call are still copied).

When the target already holds a record: an identical one is left alone (reported as already
submitted); a different one is refused unless --replace, which swaps the new folder in by one
rename and then deletes the old one.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from tailbench import cli_options
from tailbench.errors import UserError
from tailbench.storage.locks import LockBusy, exclusive
from tailbench.results.store import RECORD_FILES, clean_leftovers, run_dir, stage_and_publish
from tailbench.storage.writable import check_writable
from tailbench.storage.folders import require_folder

if TYPE_CHECKING:  # the record models and readers load when the command runs, not at CLI start
    from tailbench.submission.validate import Checked

LOCK_WAIT_SECONDS = 120.0  # a copy takes milliseconds; a longer wait means a stuck holder


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("submit", help="validate run records and copy the valid ones into results/")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="a run folder, or a folder of run folders")
    cli_options.results(p)
    p.add_argument("--replace", action="store_true", help="replace a different record already at the target")
    p.set_defaults(func=cmd_submit)


def find_run_dirs(root: Path) -> list[Path]:
    """root itself when it is a run folder, else every run folder below it (sorted)."""
    from tailbench.results.records import visible_folders

    require_folder(root, str(root), "pass run folders (OUT/<benchmark>/<method>/seed-<seed>) or a folder above them")
    if any((root / name).exists() for name in RECORD_FILES):
        return [root]
    found = {folder for folder, files in visible_folders(root) if any(name in files for name in RECORD_FILES)}
    if not found:
        raise UserError(f"{root} holds no run records (no result.json, per_class.csv or done below it)")
    return sorted(found)


@dataclass
class Outcome:
    source: Path
    status: str  # "copied", "replaced", "unchanged", "rejected"
    detail: str
    problems: list[str] = field(default_factory=list)  # a rejected record's problems (up to 20, then how many more)
    problem_count: int = 0


def same_record(target: Path, checked: Checked) -> bool:
    try:
        names = sorted(p.name for p in target.iterdir())
        return names == sorted(checked.files) and all((target / name).read_bytes() == checked.files[name] for name in checked.files)
    except (FileNotFoundError, NotADirectoryError):
        return False


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def copy_record(checked: Checked, target: Path, replace: bool) -> tuple[str, str]:
    """Copy a validated record into place, deciding under the target's lock: returns
    (status, detail) with status 'copied', 'replaced', 'unchanged' or 'rejected'."""
    parent = target.parent
    created = [p for p in reversed([parent, *parent.parents]) if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive(lock_path(target), LOCK_WAIT_SECONDS):
            clean_leftovers(target)
            present = target.exists() or target.is_symlink()
            if present and same_record(target, checked):
                return "unchanged", f"{target} already holds this record"
            if present and not replace:
                return "rejected", f"target: {target} already holds a different record for {checked.record.describe()}; pass --replace to replace it"
            replaced = stage_and_publish(target, checked.files, "submit")
    except LockBusy as busy:
        raise UserError(f"{target} is being written by {busy.holder} for over {LOCK_WAIT_SECONDS:.0f} s; try again later") from None
    except BaseException:
        for folder in reversed(created):  # folders this copy made, deepest first, if still empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    return ("replaced" if replaced else "copied"), f"{checked.record.describe()} -> {target}"


def submit(run_dirs: list[Path], results: Path, replace: bool = False) -> list[Outcome]:
    from tailbench.submission.validate import validate_run

    sources = [d for root in run_dirs for d in find_run_dirs(root)]
    check_writable(results, "--results")
    outcomes: list[Outcome] = []
    targets: dict[Path, Path] = {}
    for source in sources:
        checked = validate_run(source)
        if not checked.ok:
            outcomes.append(Outcome(source, "rejected", checked.reason(), checked.reasons(), len(checked.problems)))
            continue
        record = checked.record
        target = run_dir(results, record.benchmark, record.entry, record.seed)
        if target in targets:
            outcomes.append(Outcome(source, "rejected", f"benchmark, method and seed: {record.describe()} is also submitted from {targets[target]}"))
            continue
        targets[target] = source
        status, detail = copy_record(checked, target, replace)
        outcomes.append(Outcome(source, status, detail))
    return outcomes


def cmd_submit(args: argparse.Namespace) -> int:
    outcomes = submit(args.run_dirs, args.results, args.replace)
    for outcome in outcomes:
        if outcome.status == "rejected" and outcome.problem_count > 1:
            print(f"{args.prog}: error: rejected {outcome.source}: {outcome.problem_count} problems", file=sys.stderr)
            for line in outcome.problems:
                print(f"  {line}", file=sys.stderr)
        elif outcome.status == "rejected":
            print(f"{args.prog}: error: rejected {outcome.source}: {outcome.detail}", file=sys.stderr)
        else:
            print(f"{outcome.status} {outcome.source}: {outcome.detail}")
    rejected = sum(o.status == "rejected" for o in outcomes)
    if rejected:
        return UserError.exit_code
    return 0
