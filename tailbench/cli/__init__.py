"""The `tailbench` command line.

It answers at once: this module and the parsers of every command import nothing heavy, and each
command checks every name and option (datasets, recipes, method specs, hyper-parameters, devices)
before torch loads, so help, lists, `describe` and bad input take a fraction of a second
(`scripts/bench_startup.py` measures it).

This module runs a command and turns its end (a mistake, a signal, a closed pipe) into one line;
parser.py declares the commands, and catalogue.py, datasets.py, runs.py and records.py hold them.
"""

from __future__ import annotations

import os
import sys

from tailbench.cli.parser import build_parser
from tailbench.errors import Terminated, UserError, os_error_line, run_signals

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Every line a command ends with starts `PROG: ` (the command as typed): `error: ...` for a
    mistake (exit code 2), `interrupted; ...` or `terminated (SIGTERM); ...` for a signal."""
    args = build_parser().parse_args(argv)
    prog = args.prog
    try:
        with run_signals():  # Ctrl-C and SIGTERM end the work through the same clean-up
            return args.func(args)
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # `tailbench list methods | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error while Python flushes stdout
        return 0
    except OSError as error:  # the disk, permissions or the file system, met during the work
        print(f"{prog}: error: {os_error_line(error)}", file=sys.stderr)
        return UserError.exit_code
    except Terminated:
        print(f"{prog}: terminated (SIGTERM); no partial record was written{resume_note()}", file=sys.stderr)
        return Terminated.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no partial record was written{resume_note()}", file=sys.stderr)
        return 130


def resume_note() -> str:
    """What running the command again does, from the checkpoints this process made or resumed."""
    checkpoint = sys.modules.get("tailbench.benchmarks.checkpoint")  # never imported (with torch) just for this
    if checkpoint is None or checkpoint.TRAINING.started is None:
        return ""
    if checkpoint.TRAINING.last_epoch is None:
        return "; no checkpoint had been made yet, so the same command starts the run over"
    return f"; the same command resumes from the checkpoint after epoch {checkpoint.TRAINING.last_epoch}"
