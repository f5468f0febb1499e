"""`--launcher slurm`: one Slurm job array through submitit, one array task per run.

Each task is a `RunTask`, submitit's checkpointable callable: when Slurm preempts the task or its
time runs out, submitit signals it, calls `checkpoint()`, and requeues the returned submission,
which is the same run again; rerunning a run resumes it from its in-run checkpoint. With
--slurm-local the same pickled tasks run on this machine through submitit's LocalExecutor (no
cluster: a way to check a grid, and what the tests use). This process waits for the array and
reports every failure at the end; killing it leaves the array running on the cluster.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tailbench.errors import UserError
from tailbench.launchers import import_extra
from tailbench.launchers.job import CRASHED, Job, Outcome, execute
from tailbench.launchers.report import announce, say
from tailbench.launchers.settings import LaunchSettings

DEFAULT_MINUTES = 60


class RunTask:
    """One run as a submitit job: calling it runs the job; `checkpoint` requeues the same run."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self) -> Outcome:
        return execute(self.job)

    def checkpoint(self):
        from submitit.helpers import DelayedSubmission

        print(f"{self.job.label}: preempted or out of time; requeued to resume from its last checkpoint", flush=True)
        return DelayedSubmission(RunTask(self.job))


def launch(jobs: list[Job], settings: LaunchSettings) -> list[Outcome]:
    submitit = import_extra("submitit", "slurm", "slurm")
    folder = Path(settings.slurm_folder or jobs[0].config.out / ".submitit").absolute()
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster="local" if settings.slurm_local else "slurm")
    except RuntimeError as error:
        raise UserError(f"--launcher slurm found no Slurm cluster here ({error}); submit from a login node, "
                        "or add --slurm-local to run the job array on this machine") from None
    threads = settings.cpus_per_run or 1
    parameters = dict(
        name="tailbench", timeout_min=settings.slurm_time or DEFAULT_MINUTES, nodes=1, tasks_per_node=1,
        cpus_per_task=threads, gpus_per_node=settings.slurm_gpus_per_task or 0,
    )
    if settings.slurm_partition:
        parameters["slurm_partition"] = settings.slurm_partition
    if settings.slurm_max_parallel:
        parameters["slurm_array_parallelism"] = settings.slurm_max_parallel
    executor.update_parameters(**parameters)
    with executor.batch():
        handles = [executor.submit(RunTask(replace(job, threads=threads))) for job in jobs]
    kind = "on this machine (submitit LocalExecutor)" if settings.slurm_local else f"as Slurm job array {handles[0].job_id.split('_')[0]}"
    say(f"slurm: {len(jobs)} runs submitted {kind}; logs in {folder}")
    job_of = {handle.job_id: job for handle, job in zip(handles, jobs)}
    outcomes: list[Outcome] = []
    poll_seconds = 1 if settings.slurm_local else 10  # on a cluster each poll asks Slurm (sacct)
    for handle in submitit.helpers.as_completed(handles, poll_frequency=poll_seconds):
        job = job_of[handle.job_id]
        try:
            outcome = handle.result()
        except Exception as error:  # the task died or its time ran out too often: submitit says why
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(error).__name__
            outcome = Outcome(job.index, job.label, CRASHED, f"{reason} (log: {handle.paths.stderr})")
        outcomes.append(outcome)
        announce(outcome, len(outcomes), len(jobs))
    return outcomes
