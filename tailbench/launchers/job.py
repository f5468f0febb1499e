"""What every launcher hands a worker (a Job) and gets back (an Outcome), and the one function a
worker calls, whichever engine started it: `execute(job)`."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tailbench.benchmarks.config import ResolvedRun

# Runs sharing one GPU when --jobs is not given (local: at once on this machine's GPU; ray: the
# fraction 1/N of a GPU that each run asks for). On a CPU the local default is 1.
DEFAULT_JOBS_PER_GPU = 4

COMPLETE, FAILED, CRASHED, BUSY = "complete", "failed", "crashed", "busy"


@dataclass(frozen=True)
class Job:
    """One run of a sweep, self-contained: a fresh worker process on another host can run it."""

    index: int  # position in the grid: outcomes are reported in grid order
    run: ResolvedRun  # absolute paths, quiet (a worker draws nothing itself); resolved again in a worker process
    method_files: tuple[str, ...] = ()  # absolute paths, loaded by the worker before the run
    threads: int | None = None  # CPU threads for torch in this run; None leaves torch's default

    @property
    def config(self):
        return self.run.config

    @property
    def label(self) -> str:
        return self.run.label


@dataclass(frozen=True)
class Outcome:
    index: int
    label: str
    status: str  # COMPLETE, FAILED (a UserError), CRASHED (any other error), BUSY (another process runs it)
    message: str = ""  # the one-line reason for FAILED, CRASHED and BUSY
    seconds: float = 0.0
    detail: str = field(default="", compare=False)  # the traceback of a crash, shown by the driver


def execute(job: Job) -> Outcome:
    """Run one job in this process; every error becomes an Outcome, so that one failed run never
    stops the others (an interrupt or a requeue's SystemExit still passes through)."""
    from tailbench.benchmarks.run_lock import RunBusy
    from tailbench.benchmarks.runner import run
    from tailbench.devices import torch_threads
    from tailbench.errors import UserError
    from tailbench.methods import load_method_file

    started = time.perf_counter()

    def outcome(status: str, message: str = "", detail: str = "") -> Outcome:
        return Outcome(job.index, job.label, status, message, time.perf_counter() - started, detail)

    try:
        for path in job.method_files:
            load_method_file(path)
        with torch_threads(job.threads):
            run(job.run)
    except RunBusy as busy:
        return outcome(BUSY, str(busy))
    except UserError as error:
        return outcome(FAILED, str(error))
    except Exception as error:  # a bug or an out-of-memory: reported with its traceback, the sweep goes on
        return outcome(CRASHED, f"{type(error).__name__}: {error}", traceback.format_exc())
    return outcome(COMPLETE)
