"""One process trains a run at a time: the lock on a run folder, and what a second process is told.

The lock is `<run dir>/.lock` (tailbench.storage.locks: fcntl, released by the kernel when its
holder dies, so a crashed or preempted run never blocks its rerun). A second process does not
wait for it: a run can take hours, so `tailbench run` says who holds it and exits with code 3,
and a sweep reports the run as running elsewhere and goes on with the others.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from tailbench.errors import UserError
from tailbench.storage.locks import LockBusy, exclusive

LOCK = ".lock"
ATTEMPTS = 3


class RunBusy(UserError):
    """Another live process is training this run."""

    exit_code = 3


@contextmanager
def holding(directory: Path) -> Iterator[None]:
    """Hold the run folder's lock for the block, or raise RunBusy naming the holder. The folders
    that taking the lock created and that the block leaves empty (a run that failed before
    writing anything) are removed afterwards: bad input leaves nothing on disk."""
    directory = Path(directory)
    created = topmost_missing(directory)
    try:
        with ExitStack() as stack:
            take(stack, directory)
            yield
    finally:
        if created is not None:
            remove_empty_folders(directory, created)


def take(stack: ExitStack, directory: Path) -> None:
    for attempt in range(ATTEMPTS):
        try:
            stack.enter_context(exclusive(directory / LOCK))
            return
        except LockBusy as busy:
            raise RunBusy(f"{directory} is already running ({busy.holder}); wait for it to finish or stop that process") from None
        except FileNotFoundError:  # another run's clean-up removed the folder we had just made: make it again
            if attempt + 1 == ATTEMPTS:
                raise


def topmost_missing(directory: Path) -> Path | None:
    missing = None
    for folder in (directory, *directory.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def remove_empty_folders(directory: Path, last: Path) -> None:
    """Remove `directory` and its parents up to `last` while they are empty."""
    while True:
        try:
            directory.rmdir()
        except OSError:  # not empty (a record, a checkpoint, another run's lock) or gone already
            return
        if directory == last:
            return
        directory = directory.parent
