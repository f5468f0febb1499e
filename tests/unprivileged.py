"""Run a check as a user without special rights, so that permission bits really apply.

Tests run as root in some containers, and root reads any file whatever its mode. `as_user(fn)`
calls fn in a forked child that, when this process is root, first drops to the `nobody` user;
it returns ("ok", repr of the value), ("error", the UserError's text) or ("crash", a traceback).
`world_folder()` makes a folder every user may enter, for the data such a child must reach.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

NOBODY = 65534


@contextmanager
def world_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="tailbench-perm-"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:  # give back what a test locked away
            try:
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
            except OSError:
                pass
        shutil.rmtree(folder, ignore_errors=True)


def as_user(fn: Callable[[], object]) -> tuple[str, str]:
    from tailbench.errors import UserError

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read)
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            outcome = ("ok", repr(fn()))
        except UserError as error:
            outcome = ("error", str(error))
        except BaseException:
            outcome = ("crash", traceback.format_exc())
        os.write(write, json.dumps(outcome).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while True:
        chunk = os.read(read, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    kind, text = json.loads(b"".join(chunks) or b'["crash", "the child died without a word"]')
    return kind, text
