"""The `tailbench` console script: signals are handled from the first instant.

While the command line is still starting (importing its modules), Ctrl-C or SIGTERM ends the
process at once with one line: nothing has been done yet, and an exception raised in the middle
of an import could leave modules half-initialised. Once a command runs, tailbench.cli.main turns
both signals into exceptions that unwind through every clean-up.
"""

from __future__ import annotations

import os
import signal


def _stop_while_starting(signum, frame) -> None:
    name = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    os.write(2, f"tailbench: {name} while starting; nothing was done\n".encode())
    os._exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop_while_starting)
    from tailbench.cli import main as cli_main

    return cli_main(argv)
