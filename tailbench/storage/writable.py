"""Can records be written under a folder? Asked before any work, answered in one line.

`check_writable(folder, option)` finds the deepest part of the path that exists, and refuses,
with a UserError naming the path: a file where a folder must be, a folder this process cannot
create files in (permissions, an immutable or read-only file system: found by creating and
removing a hidden probe file, since permission bits do not tell the whole story, e.g. for root),
and a disk with less than `need_bytes` free. Nothing is left behind.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from tailbench.errors import UserError
from tailbench.storage.staging import owner_tag

PROBE = "tailbench-probe"  # `.tailbench-probe.<owner>.tmp`; tailbench.results.store removes one a killed process left

NEED_BYTES = 64 * 2**20  # a record is kilobytes; checkpoints and the leaderboard's plots are more


def _deepest_existing(folder: Path) -> Path:
    path = folder.absolute()
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _reason(error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied ({error.strerror})"
    if error.errno == errno.EROFS:
        return "it is on a read-only file system"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk (or your quota) is full"
    return error.strerror or str(error)


def check_writable(folder: Path, option: str = "--out", need_bytes: int = NEED_BYTES) -> None:
    folder = Path(folder)
    existing = _deepest_existing(folder)
    if not existing.is_dir():
        what = "a file" if existing.exists() else "a broken link" if existing.is_symlink() else "not a folder"
        where = f"{option} {folder}" if existing == folder.absolute() else f"{option} {folder}: {existing}"
        raise UserError(f"{where} is {what}, not a folder; choose another {option}")
    probe = existing / f".{PROBE}.{owner_tag()}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as error:
        raise UserError(f"{option} {folder}: cannot create files in {existing}: {_reason(error)}; choose another {option} or fix its permissions") from None
    free = shutil.disk_usage(existing).free
    if free < need_bytes:
        raise UserError(
            f"{option} {folder}: only {free / 2**20:.1f} MiB free on its disk ({existing}); tailbench needs at least "
            f"{need_bytes / 2**20:.0f} MiB to write safely: free some space or choose another {option}"
        )
