"""The one exception type that reaches the user as a single line and exit code 2, and how the
command line turns signals and operating-system errors into single lines too."""

from __future__ import annotations

import errno
import signal
from contextlib import contextmanager
from typing import Iterator


class UserError(Exception):
    """Bad input or missing data: the message says what was wrong and what to do."""

    exit_code = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM (what schedulers send): unwinds like Ctrl-C, through every clean-up."""

    exit_code = 128 + signal.SIGTERM


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextmanager
def run_signals() -> Iterator[None]:
    """Within the block Ctrl-C raises KeyboardInterrupt and SIGTERM raises Terminated (from the
    main thread; elsewhere signals cannot be handled and are left as they are)."""
    try:
        previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                    signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_terminated)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_ADVICE = {
    errno.ENOSPC: "free some space and run again",
    errno.EDQUOT: "free some space (your quota is full) and run again",
    errno.EROFS: "choose a folder on a writable file system",
    errno.EACCES: "fix the permissions or choose another folder",
    errno.EPERM: "(an immutable file or folder?) choose another folder",
    errno.ENAMETOOLONG: "choose shorter names",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EISDIR: "a folder stands where a file is needed",
}


def os_error_line(error: OSError) -> str:
    """An OSError as one line: which path, what happened, what to do."""
    where = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
    what = error.strerror or str(error) or type(error).__name__
    advice = _ADVICE.get(error.errno or -1)
    return f"{where + ': ' if where else ''}{what}" + (f"; {advice}" if advice else "")
