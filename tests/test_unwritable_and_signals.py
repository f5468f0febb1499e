"""Where records cannot be written, `run` says so in one line before training (and `submit` and
`leaderboard` before copying or rendering); SIGTERM ends a run like Ctrl-C, in one line; a
signal during start-up never prints a traceback."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from unprivileged import as_user, world_folder

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "1", "--device", "cpu", "--quiet"]


@pytest.fixture
def no_training(monkeypatch):
    """Training fails loudly: a check that comes before it must answer first."""
    def train(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr("tailbench.benchmarks.runner.train", train)


def test_out_is_a_file(cli, tmp_path, no_training):
    (tmp_path / "file").write_text("x")
    result = cli(*RUN, "--out", tmp_path / "file")
    assert result.code == 2 and "is a file, not a folder; choose another --out" in result.error_line()


def test_out_below_a_file(cli, tmp_path, no_training):
    (tmp_path / "file").write_text("x")
    result = cli(*RUN, "--out", tmp_path / "file" / "runs")
    line = result.error_line()
    assert result.code == 2 and f"{tmp_path / 'file'} is a file, not a folder" in line


def test_full_disk_is_found_before_training(cli, tmp_path, no_training, monkeypatch):
    import shutil

    monkeypatch.setattr("tailbench.storage.writable.shutil.disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 2**20, 2**20))
    result = cli(*RUN, "--out", tmp_path / "out")
    assert result.code == 2 and "only 1.0 MiB free on its disk" in result.error_line()
    assert not (tmp_path / "out").exists()


def _cli_as_unprivileged(args):
    """(exit code, stderr) of the CLI run in a child without root's rights."""
    from tailbench.cli import main

    def call():
        err = io.StringIO()
        with redirect_stderr(err):
            code = main([str(a) for a in args])
        return code, err.getvalue()

    kind, text = as_user(call)
    assert kind == "ok", text
    return eval(text)  # the repr of a (code, str) tuple, from our own child


@pytest.mark.parametrize("command", ["run", "submit", "leaderboard"])
def test_a_read_only_folder_is_one_line_before_any_work(digits_record, command, monkeypatch):
    import shutil

    import tailbench.leaderboard.build  # noqa: F401  (imported here: matplotlib cannot set itself up as another user)

    def train(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr("tailbench.benchmarks.runner.train", train)  # inherited by the forked child
    with world_folder() as folder:
        records = folder / "records"
        shutil.copytree(digits_record.parents[2], records)
        for path in [records, *records.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        locked = folder / "locked"
        locked.mkdir()
        os.chmod(locked, 0o555)
        args = {
            "run": [*RUN, "--out", locked / "runs"],
            "submit": ["submit", records, "--results", locked / "results"],
            "leaderboard": ["leaderboard", "--results", records, "--out", locked / "board"],
        }[command]
        code, err = _cli_as_unprivileged(args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert f"cannot create files in {locked}: permission denied" in lines[0]
        assert os.listdir(locked) == []


def test_an_immutable_folder_is_one_line_before_training(cli, tmp_path, no_training):
    folder = tmp_path / "immutable"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (needs root and a file system that supports it)")
    try:
        result = cli(*RUN, "--out", folder / "runs")
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert result.code == 2 and f"cannot create files in {folder}" in result.error_line()


def test_submit_and_leaderboard_into_a_file(cli, digits_record, tmp_path):
    (tmp_path / "file").write_text("x")
    submitted = cli("submit", digits_record, "--results", tmp_path / "file")
    assert submitted.code == 2 and "--results" in submitted.error_line() and "is a file, not a folder" in submitted.error_line()
    built = cli("leaderboard", "--results", digits_record.parents[2], "--out", tmp_path / "file")
    assert built.code == 2 and "--out" in built.error_line() and "is a file, not a folder" in built.error_line()


@pytest.mark.parametrize("earlier", [False, True], ids=["first-run", "force-over-a-record"])
def test_sigterm_during_training_is_one_line_and_writes_nothing(cli, tmp_path, monkeypatch, earlier):
    from tailbench.benchmarks import runner

    out = tmp_path / "out"
    if earlier:
        assert cli(*RUN, "--out", out).code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real_train = runner.train

    def train_then_terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # what a scheduler sends
        time.sleep(5)  # the signal arrives here
        return real_train(*args, **kwargs)

    monkeypatch.setattr(runner, "train", train_then_terminated)
    handler_before = signal.getsignal(signal.SIGTERM)
    result = cli(*RUN, "--out", out, *(["--force"] if earlier else []))
    assert result.code == 143
    assert result.error_line().startswith("tailbench run: terminated (SIGTERM); no partial record was written")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert signal.getsignal(signal.SIGTERM) == handler_before  # handlers are given back


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_start_up_never_prints_a_traceback(tmp_path, signum):
    """Signals sent at several moments of the first seconds (importing, parsing, loading)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outcomes = []
    # From 0.5 s: the interpreter's own start-up (before tailbench's first line installs its
    # handlers) takes up to 0.3 s on the 2 loaded cores, and a signal then is Python's, not ours.
    # torch's import alone lasts past 1.5 s, so every delay still lands while tailbench imports.
    for delay in (0.5, 1.0, 1.5):
        child = subprocess.Popen([sys.executable, "-m", "tailbench", *RUN, "--epochs", "30", "--out", str(tmp_path / "out")],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
        lines = [line for line in err.splitlines() if line.strip()]
        outcomes.append((delay, child.returncode, lines))
        assert "Traceback" not in err and len(lines) <= 1, (delay, err)
        assert child.returncode in (128 + signum, -signum), (delay, child.returncode, err)
        assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert any(lines for _, _, lines in outcomes), outcomes  # at least one was caught and explained


def test_sigterm_to_a_sweep_ends_its_worker_processes_too(tmp_path):
    """A scheduler signals the sweep's own process; its workers must stop with it, not go on with
    their runs and the runs already handed to them."""
    out = tmp_path / "out"
    sweep = ["sweep", "--datasets", "digits-lt", "--methods", "ce", "--seeds", "0,1,2,3", "--epochs", "400",
             "--device", "cpu", "--jobs", "2", "--cpus-per-run", "1", "--quiet", "--out", str(out)]
    child = subprocess.Popen([sys.executable, "-m", "tailbench", *sweep], env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(locks := list(out.rglob(".lock"))) < 2:  # both workers are in a run
        assert time.monotonic() < deadline and child.poll() is None, child.communicate()
        time.sleep(0.2)
    workers = {json.loads(lock.read_text())["pid"] for lock in locks}
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert "terminated (SIGTERM)" in err and "Traceback" not in err, err
    time.sleep(1)
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not list(out.rglob("done"))
