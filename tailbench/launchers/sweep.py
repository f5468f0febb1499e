"""Many runs: every configuration is checked first, complete runs are skipped, the others go to a
launcher (local.py, ray.py, slurm.py beside this file), and a failed run does not stop the others:
each failure is one line at the end, and the exit code is 1."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from tailbench.console import console
from tailbench.benchmarks.config import ResolvedRun, RunConfig, resolve
from tailbench.launchers.job import Job
from tailbench.launchers.report import summarize
from tailbench.launchers.settings import LaunchSettings
from tailbench.results.store import is_complete


def sweep(configs: list[RunConfig] | list[ResolvedRun], method_files: list[str] | tuple[str, ...] = (), settings: LaunchSettings = LaunchSettings()) -> int:
    settings.check()
    jobs = plan(configs, method_files)  # every name and number, before hours of training
    already = len(configs) - len(jobs)
    if already:
        console.print(f"{already} of {len(configs)} runs are complete already; skipped (use --force to run them again)")
    started = time.perf_counter()
    outcomes = importlib.import_module(f"tailbench.launchers.{settings.launcher}").launch(jobs, settings) if jobs else []
    return summarize(outcomes, len(configs), already, time.perf_counter() - started)


def plan(configs: list[RunConfig] | list[ResolvedRun], method_files: list[str] | tuple[str, ...] = ()) -> list[Job]:
    """The jobs of the runs that are not complete, with absolute paths (a worker may start
    elsewhere) and quiet (a worker draws nothing itself). Configs the CLI resolved are not
    resolved again."""
    files = tuple(str(Path(f).absolute()) for f in method_files)
    jobs = []
    for index, planned in enumerate(configs):
        resolved = resolve(planned)
        config = resolved.config
        if is_complete(resolved.directory) and not config.force:
            continue
        absolute = resolved.with_config(
            out=Path(config.out).absolute(), quiet=True,
            data_dir=None if config.data_dir is None else Path(config.data_dir).absolute(),
        )
        jobs.append(Job(index, absolute, files))
    return jobs
