"""`--launcher local`: this machine. One run after another in this process (--jobs 1, the default
on a CPU), or N runs at once on its one device, each in a worker process.

Workers are spawned, not forked (CUDA cannot be forked), and each one runs job after job, so torch
and the harness are imported once per worker. They send their epoch progress through a
multiprocessing queue; this process shows it together (board.py).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace

from tailbench.benchmarks.progress import reporting_to
from tailbench.console import console
from tailbench.launchers.board import Board
from tailbench.launchers.job import CRASHED, DEFAULT_JOBS_PER_GPU, Job, Outcome, execute
from tailbench.launchers.report import announce, say
from tailbench.launchers.settings import LaunchSettings


def launch(jobs: list[Job], settings: LaunchSettings) -> list[Outcome]:
    n = min(settings.jobs or default_jobs(jobs), len(jobs))
    if n <= 1:
        return one_after_another(jobs, settings)
    return at_once(jobs, n, settings)


def default_jobs(jobs: list[Job]) -> int:
    import torch

    on_cuda = any(job.config.device == "cuda" or (job.config.device == "auto" and torch.cuda.is_available()) for job in jobs)
    return DEFAULT_JOBS_PER_GPU if on_cuda else 1


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def one_after_another(jobs: list[Job], settings: LaunchSettings) -> list[Outcome]:
    """In this process, with each run's own progress bar and tables (as `tailbench run` shows)."""
    outcomes = []
    for position, job in enumerate(jobs, 1):
        console.rule(f"[{position}/{len(jobs)}] {job.label}")
        job = replace(job, run=job.run.with_config(quiet=settings.quiet), threads=settings.cpus_per_run)
        outcomes.append(execute(job))
        announce(outcomes[-1], position, len(jobs))
    return outcomes


def at_once(jobs: list[Job], n: int, settings: LaunchSettings) -> list[Outcome]:
    threads = settings.cpus_per_run or max(1, usable_cpus() // n)
    say(f"{len(jobs)} runs, {n} at once in worker processes, {threads} CPU thread(s) each")
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    outcomes: list[Outcome] = []
    with Board(len(jobs), settings.quiet) as board, ProcessPoolExecutor(n, mp_context=context, initializer=start_worker, initargs=(events,)) as pool:
        pending: dict[Future, Job] = {pool.submit(run_in_worker, replace(job, threads=threads)): job for job in jobs}
        labels = {job.index: job.label for job in jobs}
        try:
            while pending:
                done, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                show_events(events, board, labels)
                for future in done:
                    job = pending.pop(future)
                    outcome = result_of(future, job)
                    outcomes.append(outcome)
                    board.finish(outcome)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            stop_workers()
            raise
    return outcomes


def stop_workers() -> None:
    """End the runs the workers are in. A SIGTERM sent to this process alone (a scheduler's, or
    `kill`) does not reach them, and the pool would let them finish those runs and the ones already
    handed to them; a run ended so keeps its checkpoint and writes no record."""
    for child in multiprocessing.active_children():
        child.terminate()


def result_of(future: Future, job: Job) -> Outcome:
    try:
        return future.result()
    except Exception as error:  # the worker process died (killed, out of memory): the pool cannot go on
        message = f"its worker process died ({type(error).__name__}: {error}); rerun the sweep to run it again"
        return Outcome(job.index, job.label, CRASHED, message)


def show_events(events, board: Board, labels: dict[int, str]) -> None:
    while True:
        try:
            index, event = events.get_nowait()
        except queue.Empty:
            return
        if event is None:
            board.start(index, labels[index])
        else:
            board.progress(index, event)


_events = None  # the worker's end of the progress queue


def start_worker(events) -> None:
    global _events
    _events = events
    import tailbench.benchmarks.runner  # noqa: F401  torch and the harness, once per worker


def run_in_worker(job: Job) -> Outcome:
    _events.put((job.index, None))
    with reporting_to(lambda event: _events.put((job.index, event))):
        return execute(job)
