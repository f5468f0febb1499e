"""`tailbench sweep --launcher local|ray|slurm`: the same grid, with one run that fails, writes the
same records and reports the failure the same way through each launcher; bad launcher options are
one line; a preempted Slurm task is requeued and its run finishes with the same record."""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tailbench.cli import main

METHOD_FILE = Path(__file__).parent / "method_files" / "refuse_rot.py"
FAILURE = "  failed: digits-rot-lt / ce+refuse_rot / seed 0: refuse_rot cannot train on a rotated dataset"
GRID = ["--datasets", "digits-lt,digits-rot-lt", "--methods", "ce+refuse_rot", "--epochs", "1", "--cpus-per-run", "1", "--quiet"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """The grid one run after another in this process: what every launcher must reproduce."""
    out = tmp_path_factory.mktemp("baseline")
    assert main(["sweep", *GRID, "--method-file", str(METHOD_FILE), "--out", str(out)]) == 1
    return out


def records(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("per_class.csv"))}


def check_same_grid(result, out: Path, baseline: Path) -> None:
    assert result.code == 1, result.err
    assert FAILURE in result.err.splitlines()
    assert "sweep: 1 of 2 runs complete" in result.err
    expected = records(baseline)
    assert len(expected) == 1 and records(out) == expected
    assert not (out / "digits-rot-lt@epochs=1" / "ce+refuse_rot").exists()


def test_local_jobs_2_writes_the_same_records_in_worker_processes(cli, tmp_path, baseline):
    result = cli("sweep", *GRID, "--method-file", METHOD_FILE, "--jobs", "2", "--out", tmp_path / "out")
    assert "2 runs, 2 at once in worker processes, 1 CPU thread(s) each" in result.err
    check_same_grid(result, tmp_path / "out", baseline)
    again = cli("sweep", *GRID, "--method-file", METHOD_FILE, "--jobs", "2", "--out", tmp_path / "out")
    assert "1 of 2 runs are complete already; skipped" in again.err and again.code == 1


def test_ray_launcher_on_a_local_two_cpu_cluster(cli, tmp_path, baseline):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, logging_level="ERROR")
    try:
        result = cli("sweep", *GRID, "--method-file", METHOD_FILE, "--launcher", "ray", "--out", tmp_path / "out")
    finally:
        ray.shutdown()
    assert "ray: 2 runs on 2 CPUs and 0 GPUs, each asking 1 CPU(s)" in result.err
    check_same_grid(result, tmp_path / "out", baseline)


def test_slurm_launcher_through_submitits_local_executor(cli, tmp_path, baseline):
    result = cli("sweep", *GRID, "--method-file", METHOD_FILE, "--launcher", "slurm", "--slurm-local", "--out", tmp_path / "out")
    assert "slurm: 2 runs submitted on this machine (submitit LocalExecutor)" in result.err
    check_same_grid(result, tmp_path / "out", baseline)
    assert list((tmp_path / "out" / ".submitit").glob("*_submitted.pkl"))


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def test_a_preempted_slurm_task_is_requeued_resumes_and_writes_the_same_record(tmp_path):
    import submitit

    from tailbench.benchmarks.checkpoint import FILE, PARTIAL
    from tailbench.benchmarks.runner import RunConfig, resolve, run
    from tailbench.devices import torch_threads
    from tailbench.launchers.job import Job
    from tailbench.launchers.slurm import RunTask

    def config(out: Path) -> RunConfig:
        return RunConfig(dataset="digits-lt", method="ce", seed=0, epochs=20, checkpoint_every=1, out=out)

    job = Job(0, resolve(config(tmp_path / "out")), threads=1)  # not quiet: the task's log says where it resumed
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="local")
    executor.update_parameters(timeout_min=60)  # well within its time: a preemption, not a timeout
    handle = executor.submit(RunTask(job))
    directory = tmp_path / "out" / "digits-lt@epochs=20" / "ce" / "seed-0"
    deadline = time.monotonic() + 120
    while not (directory / PARTIAL / FILE).exists():  # a checkpoint is written: preempt the task as Slurm would
        assert time.monotonic() < deadline and handle.state == "RUNNING", handle.stderr()
        time.sleep(0.01)
    [task] = child_pids(handle._process.pid)
    os.kill(task, signal.SIGUSR2)
    outcome = handle.result()
    log = (handle.stdout() or "") + (handle.stderr() or "")
    assert "this job is preempted" in log and "requeued to resume from its last checkpoint" in log, log
    assert "resuming from the checkpoint after epoch" in log, log
    assert outcome.status == "complete", outcome
    with torch_threads(1):
        uninterrupted = run(replace(config(tmp_path / "again"), quiet=True))
    assert (directory / "per_class.csv").read_bytes() == (uninterrupted / "per_class.csv").read_bytes()
    assert not (directory / PARTIAL).exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--ray-address", "auto"], "--ray-address applies to --launcher ray, not local"),
        (["--launcher", "ray", "--slurm-partition", "gpu"], "--slurm-partition applies to --launcher slurm, not ray"),
        (["--launcher", "slurm", "--slurm-local", "--jobs", "2"], "--jobs applies to --launcher local or ray, not slurm"),
        (["--jobs", "0"], "'0' is not a positive integer"),
        (["--launcher", "mpi"], "invalid choice: 'mpi'"),
    ],
)
def test_bad_launcher_options_are_one_line(cli, tmp_path, args, expected):
    result = cli("sweep", "--datasets", "digits-lt", "--methods", "ce", *args, "--out", tmp_path / "out")
    assert result.code == 2 and expected in result.error_line()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("launcher, module, extra", [("ray", "ray", "ray"), ("slurm", "submitit", "slurm")])
def test_a_missing_extra_names_the_pip_command(cli, tmp_path, monkeypatch, launcher, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    result = cli("sweep", "--datasets", "digits-lt", "--methods", "ce", "--launcher", launcher, "--out", tmp_path / "out")
    assert result.code == 2
    assert result.error_line() == f"tailbench sweep: error: --launcher {launcher} needs the {module!r} package: pip install 'tailbench[{extra}]'"


@pytest.mark.skipif(bool(__import__("shutil").which("srun")), reason="this machine has Slurm")
def test_slurm_without_a_cluster_says_how_to_run_it_here(cli, tmp_path):
    result = cli("sweep", "--datasets", "digits-lt", "--methods", "ce", "--launcher", "slurm", "--out", tmp_path / "out")
    assert result.code == 2 and "add --slurm-local" in result.error_line()
