"""Exclusive locks between processes (and hosts sharing a folder) on one record path.

A lock is a small file locked with ``fcntl.flock``: the kernel releases it when its holder
exits, is killed or is preempted, so a lock left behind by a dead process is stale by
construction and the next taker simply gets it. The file names its holder (pid, host, time) so
that a busy lock can be reported in one line. The holder removes the file on release; a taker
that finds it has locked a file already unlinked by the previous holder retries on the new one
(the classic flock + unlink race), so two processes can never both hold a path.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

POLL_SECONDS = 0.05


class LockBusy(Exception):
    """Another live process holds the lock; ``holder`` says who, as far as the file tells."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by {holder}")
        self.path, self.holder = path, holder


def holder_of(path: Path) -> str:
    try:
        info = json.loads(Path(path).read_text() or "{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _try_take(path: Path) -> int | None:
    """A locked descriptor of the file now at `path`, or None when a live process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the previous holder unlinked this file after we opened it: take the new one


@contextmanager
def exclusive(path: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold `path` exclusively for the block. Raises LockBusy when another process still holds it
    after `wait_seconds` (0: do not wait)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    fd = _try_take(path)
    while fd is None:
        if time.monotonic() >= deadline:
            raise LockBusy(path, holder_of(path))
        time.sleep(POLL_SECONDS)
        fd = _try_take(path)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)
