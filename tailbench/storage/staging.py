"""Hidden working names beside a record, owned by one process, and the rename that publishes it.

A record is assembled in a hidden sibling folder (`.seed-0.write-<owner>-<random>`) and appears
only by one rename. Every hidden name tailbench makes carries its owner (a hash of the host
name and the pid), so a clean-up removes only what a dead process left: never another live
process's staging folder, whatever the interleaving. Names from another host are left alone
unless older than STALE_FOREIGN_SECONDS (that host's pids cannot be checked from here).

`publish(staging, target)` puts a finished folder in place. A target that already exists is
exchanged with it in one step (Linux renameat2 RENAME_EXCHANGE), so readers see the old record
or the new one and a crash leaves one of them in place; where the exchange is not available,
the old folder is first renamed to a hidden `.old-` name, which the next clean-up puts back if
the process died before the new folder took its place. Hidden files of the old folder (the run
lock, `<run dir>/.lock`) are hard-linked into the new one first (`carry_hidden_files`), so a
lock held across the swap stays held.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path

STALE_FOREIGN_SECONDS = 24 * 3600
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_OWNED = re.compile(r"[.-](?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}(?:\.tmp)?$")
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def owner_tag() -> str:
    """`<host hash>-<pid>-<random>`: unique to this call, and tells whether its owner lives."""
    return f"{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_dead(path: Path) -> bool:
    """True when the process that named `path` is gone (names without an owner count as dead:
    only tailbench versions before owner tags made them, and they hold no lock)."""
    match = _OWNED.search(path.name)
    if match is None:
        return True
    if match["host"] != _HOST:
        try:
            return time.time() - path.lstat().st_mtime > STALE_FOREIGN_SECONDS
        except FileNotFoundError:
            return False
    pid = int(match["pid"])
    return pid != os.getpid() and not _pid_alive(pid)


def staging_name(target: Path, kind: str) -> Path:
    """A fresh hidden sibling of target: `.<name>.<kind>-<owner tag>`."""
    return target.parent / f".{target.name}.{kind}-{owner_tag()}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def clean_stale(target: Path, kinds: tuple[str, ...]) -> list[Path]:
    """Remove hidden siblings `.<target>.<kind>-*` of dead owners; put back an `.old-` folder
    whose owner died between the two renames of a fallback publish. Returns what it removed."""
    removed = []
    try:
        siblings = list(target.parent.iterdir())
    except FileNotFoundError:
        return removed
    for path in sorted(siblings):
        for kind in (*kinds, "old"):
            if path.name.startswith(f".{target.name}.{kind}-") and owner_dead(path):
                if kind == "old" and not os.path.lexists(target):
                    try:
                        os.rename(path, target)
                        break
                    except OSError:
                        pass
                _remove(path)
                removed.append(path)
                break
    return removed


def clean_stale_files(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """Remove `.<name>.*.tmp` files (what an atomic write of `name` leaves when killed) of dead owners."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for path in entries:
        if path.name.endswith(".tmp") and any(path.name.startswith(f".{name}.") for name in names) and owner_dead(path):
            _remove(path)
            removed.append(path)
    return removed


def carry_hidden_files(old: Path, new: Path) -> None:
    """Hard-link the hidden files of the folder about to be replaced (the run lock its writer
    holds) into the replacement, so that they keep their identity (inode) through the swap and a
    lock is never free for a moment. Hidden folders (a finished run's checkpoints) and temporary
    files stay with the old folder and go with it."""
    try:
        entries = list(os.scandir(old))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if not entry.name.startswith(".") or entry.name.endswith(".tmp"):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.link(entry.path, new / entry.name)
        except FileNotFoundError:  # released meanwhile: nothing to carry
            continue
        except OSError:  # a file system without hard links: the file stays with the old folder
            continue


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system cannot (then nothing happened)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def publish(staging: Path, target: Path) -> Path | None:
    """Make the finished folder `staging` appear at `target` in one step. Returns the hidden
    path now holding the folder that was at target (to be deleted by the caller), or None."""
    try:
        os.rename(staging, target)  # also replaces an empty folder
        return None
    except OSError as error:
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    if _exchange(staging, target):
        return staging  # staging's name now holds the old folder
    old = staging_name(target, "old")
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    return old


def fsync_folder(folder: Path) -> None:
    """Make a rename inside folder durable (where the system allows opening folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
