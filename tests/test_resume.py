"""In-run checkpoints: a run killed at any point (kill -9, also while it writes a checkpoint) and
run again resumes and writes the record an uninterrupted run writes, byte for byte apart from
times; a checkpoint of another run or other code is not used; --force starts over."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = ["--dataset", "digits-lt", "--method", "ce+drs", "--epochs", "6", "--checkpoint-every", "1", "--device", "cpu", "--quiet"]
RUN = Path("digits-lt@epochs=6") / "ce+drs" / "seed-0"
TIMES = {"started", "finished", "wall_seconds"}


def without_times(result_json: Path) -> dict:
    result = json.loads(result_json.read_text())
    result["provenance"] = {k: v for k, v in result["provenance"].items() if k not in TIMES}
    for epoch in result["history"]:
        del epoch["seconds"], epoch["images_per_s"]
    return result


def assert_same_record(a: Path, b: Path) -> None:
    assert (a / "per_class.csv").read_bytes() == (b / "per_class.csv").read_bytes()
    assert (a / "per_image.csv.gz").read_bytes() == (b / "per_image.csv.gz").read_bytes()
    assert without_times(a / "result.json") == without_times(b / "result.json")
    assert sorted(p.name for p in b.iterdir()) == ["done", "per_class.csv", "per_image.csv.gz", "result.json"]  # no checkpoint, no lock, no temporary


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from tailbench.cli import main

    out = tmp_path_factory.mktemp("reference")
    assert main(["run", *ARGS, "--out", str(out)]) == 0
    return out / RUN


def finish(out: Path) -> None:
    from tailbench.cli import main

    assert main(["run", *ARGS, "--out", str(out)]) == 0


def paused_run(out: Path, marker: Path, after_checkpoints: int, steps_into_epoch: int) -> subprocess.Popen:
    """A run that has stopped itself (SIGSTOP) in the epoch after its N-th checkpoint, so that a
    signal sent now cannot come after the run has finished."""
    helper = Path(__file__).parent / "helpers" / "pause_mid_epoch.py"
    process = subprocess.Popen(
        [sys.executable, str(helper), str(after_checkpoints), str(steps_into_epoch), str(marker), "run", *ARGS, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert marker.exists(), "the run ended before it reached the point to stop it at"
    return process


@pytest.mark.parametrize("kill_after_checkpoints", [1, 3])
def test_killed_runs_resume_to_the_uninterrupted_record(reference, tmp_path, kill_after_checkpoints):
    steps_into_epoch = random.Random(kill_after_checkpoints).randint(1, 4)
    out = tmp_path / "runs"
    process = paused_run(out, tmp_path / "paused", kill_after_checkpoints, steps_into_epoch)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert (out / RUN / ".partial" / "checkpoint.pt").exists() and not (out / RUN / "done").exists()
    finish(out)
    assert_same_record(reference, out / RUN)


def test_a_run_killed_while_writing_a_checkpoint_resumes_from_the_one_before(reference, tmp_path):
    out = tmp_path / "runs"
    helper = Path(__file__).parent / "helpers" / "die_in_checkpoint_write.py"
    died = subprocess.run([sys.executable, str(helper), "3", "run", *ARGS, "--out", str(out)], capture_output=True)
    assert died.returncode == -signal.SIGKILL
    partial = out / RUN / ".partial"
    assert (partial / ".checkpoint.pt.dying.tmp").exists() and (partial / "checkpoint.pt").exists()
    import torch

    assert torch.load(partial / "checkpoint.pt", weights_only=True)["epoch"] == 1  # the second checkpoint, intact
    finish(out)
    assert_same_record(reference, out / RUN)


def test_a_checkpoint_of_other_code_is_not_resumed(reference, tmp_path, cli):
    from tailbench.benchmarks.checkpoint import Checkpointer

    out = tmp_path / "runs"
    stale = Checkpointer(out / RUN, {"benchmark": "other"}, "2026-01-01T00:00:00+00:00")
    stale.path.parent.mkdir(parents=True)
    stale.path.write_bytes(b"not a checkpoint")
    result = cli("run", *[a for a in ARGS if a != "--quiet"], "--out", out)
    assert result.code == 0 and "ignoring the checkpoint" in result.err and "unreadable" in result.err
    assert_same_record(reference, out / RUN)


def test_force_starts_over_without_the_checkpoint(reference, tmp_path, cli):
    out = tmp_path / "runs"
    helper = Path(__file__).parent / "helpers" / "die_in_checkpoint_write.py"
    subprocess.run([sys.executable, str(helper), "4", "run", *ARGS, "--out", str(out)], capture_output=True)
    assert (out / RUN / ".partial" / "checkpoint.pt").exists()
    result = cli("run", *[a for a in ARGS if a != "--quiet"], "--out", out, "--force")
    assert result.code == 0 and "resuming" not in result.err
    assert_same_record(reference, out / RUN)


@pytest.mark.parametrize("dataset, spec", [("digits-lt", "ce+drs+augerino"), ("digits-rot-lt", "ldam+drw+oracle")])
def test_every_kind_of_state_survives_an_interruption(tmp_path, monkeypatch, dataset, spec):
    """Interrupted in-process after the second checkpoint (learned augmentation widths, momentum,
    deferred rules, a nuisance drawn in the step): the resumed record is the uninterrupted one."""
    from tailbench.benchmarks import checkpoint
    from tailbench.cli import main

    args = ["run", "--dataset", dataset, "--method", spec, "--epochs", "4", "--checkpoint-every", "1", "--device", "cpu", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    real_save = checkpoint.Checkpointer.save

    def save_then_stop(self, epoch, *rest):
        real_save(self, epoch, *rest)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.Checkpointer, "save", save_then_stop)
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    monkeypatch.setattr(checkpoint.Checkpointer, "save", real_save)
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    run = Path(f"{dataset}@epochs=4") / spec / "seed-0"
    assert_same_record(tmp_path / "a" / run, tmp_path / "b" / run)


def test_sigterm_stops_a_run_in_one_line_and_the_rerun_resumes(reference, tmp_path):
    """What a scheduler sends before it preempts: one line, exit 143, the checkpoint kept."""
    out = tmp_path / "runs"
    process = paused_run(out, tmp_path / "paused", 1, 2)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGCONT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "terminated (SIGTERM)" in lines[0] and "the same command resumes from the checkpoint after epoch 1" in lines[0]
    assert (out / RUN / ".partial" / "checkpoint.pt").exists() and not (out / RUN / "done").exists()
    finish(out)
    assert_same_record(reference, out / RUN)


def test_a_signal_before_the_first_checkpoint_does_not_promise_one(tmp_path):
    out = tmp_path / "runs"
    process = paused_run(out, tmp_path / "paused", 0, 2)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGCONT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "no checkpoint had been made yet, so the same command starts the run over" in lines[0], lines
    assert not (out / RUN / ".partial" / "checkpoint.pt").exists()


def test_a_sweep_killed_mid_grid_skips_its_complete_runs_and_resumes_the_rest(tmp_path, cli):
    """kill -9 of a sweep while its second run trains: the same command again skips the first
    run, resumes the second from its checkpoint and runs the third; every record is the
    uninterrupted one."""
    from tailbench.cli import main

    grid = ["--datasets", "digits-lt", "--methods", "ce+drs", "--seeds", "0,1,2", "--epochs", "20", "--checkpoint-every", "1", "--device", "cpu", "--quiet"]
    assert main(["sweep", *grid, "--out", str(tmp_path / "uninterrupted")]) == 0
    out = tmp_path / "runs"
    sweep = subprocess.Popen([sys.executable, "-m", "tailbench", "sweep", *grid, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = [Path("digits-lt@epochs=20") / "ce+drs" / f"seed-{seed}" for seed in (0, 1, 2)]
    second = out / runs[1] / ".partial" / "checkpoint.pt"
    deadline = time.time() + 300
    while not second.exists() and sweep.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    assert (out / runs[0] / "done").exists() and not (out / runs[1] / "done").exists(), "killed outside the second run"
    assert second.exists()
    first_written = (out / runs[0] / "result.json").stat().st_mtime_ns
    again = cli("sweep", *[a for a in grid if a != "--quiet"], "--out", out)
    assert again.code == 0 and "1 of 3 runs are complete already" in again.err
    assert "resuming from the checkpoint after epoch" in again.err
    assert (out / runs[0] / "result.json").stat().st_mtime_ns == first_written  # skipped, not run again
    for run in runs:
        assert_same_record(tmp_path / "uninterrupted" / run, out / run)
