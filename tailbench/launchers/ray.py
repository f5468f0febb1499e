"""`--launcher ray`: each run one Ray task, on the cluster at --ray-address (or RAY_ADDRESS), or on
a new local Ray cluster when neither is given.

A task asks for --cpus-per-run CPUs and, when the cluster has GPUs, 1/--jobs of a GPU, so that
--jobs runs share each GPU. Records land in the shared --out folder (give a path every node sees).
Ray retries a task whose worker or node died; a driver that dies takes its tasks with it, and
rerunning the sweep skips the complete runs and starts the others again (a rerun of a run resumes
it from its in-run checkpoint).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from tailbench.errors import UserError
from tailbench.launchers import import_extra
from tailbench.launchers.job import CRASHED, DEFAULT_JOBS_PER_GPU, Job, Outcome, execute
from tailbench.launchers.report import announce, say
from tailbench.launchers.settings import LaunchSettings

RETRIES = 3  # a task is retried when its worker process or node dies, not when the run fails


def launch(jobs: list[Job], settings: LaunchSettings) -> list[Outcome]:
    ray = import_extra("ray", "ray", "ray")
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=settings.ray_address, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = settings.ray_address or "RAY_ADDRESS"
            raise UserError(f"could not start or reach the Ray cluster ({where}): {error}; check --ray-address or RAY_ADDRESS") from None
    try:
        return run_tasks(ray, jobs, settings)
    finally:
        if started_here:
            ray.shutdown()


def run_tasks(ray, jobs: list[Job], settings: LaunchSettings) -> list[Outcome]:
    resources = ray.cluster_resources()
    threads = settings.cpus_per_run or 1
    per_gpu = settings.jobs or DEFAULT_JOBS_PER_GPU
    gpu_share = 1.0 / per_gpu if resources.get("GPU", 0) > 0 else 0.0
    # Declared with its GPU share, a task gets a fresh worker process each time (Ray's max_calls=1
    # for GPU tasks): a reused one would keep the GPU its CUDA context was made on.
    task = ray.remote(num_cpus=threads, num_gpus=gpu_share, max_retries=RETRIES)(execute)
    say(
        f"ray: {len(jobs)} runs on {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs, "
        f"each asking {threads} CPU(s)" + (f" and 1/{per_gpu} GPU" if gpu_share else "")
    )
    pending = {task.remote(replace(job, threads=threads)): job for job in jobs}
    outcomes: list[Outcome] = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            job = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as error:  # the task's worker died more often than it was retried
                outcome = Outcome(job.index, job.label, CRASHED, f"{type(error).__name__}: {first_line(str(error))}")
            outcomes.append(outcome)
            announce(outcome, len(outcomes), len(jobs))
    return outcomes


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
