"""Two processes on one run never both train it: the second is told who holds it (exit 3), and a
sweep reports such a run as running elsewhere and goes on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tailbench.benchmarks.run_lock import LOCK
from tailbench.storage.locks import exclusive

RUN = ["--dataset", "digits-lt", "--method", "ce", "--epochs", "1"]


def test_a_run_held_by_another_process_is_refused_in_one_line(cli, tmp_path):
    directory = tmp_path / "out" / "digits-lt@epochs=1" / "ce" / "seed-0"
    with exclusive(directory / LOCK):
        result = cli("run", *RUN, "--out", tmp_path / "out", "--quiet")
    assert result.code == 3
    line = result.error_line()
    assert f"already running (pid {os.getpid()} on {socket.gethostname()} since" in line
    assert not (directory / "done").exists()
    assert cli("run", *RUN, "--out", tmp_path / "out", "--quiet").code == 0  # released: it runs
    assert (directory / "done").exists() and not (directory / LOCK).exists()


def test_a_sweep_reports_a_run_held_elsewhere_and_runs_the_others(cli, tmp_path):
    held = tmp_path / "out" / "digits-lt@epochs=1" / "ce" / "seed-0"
    with exclusive(held / LOCK):
        result = cli("sweep", "--datasets", "digits-lt", "--methods", "ce", "--seeds", "0,1", "--epochs", "1",
                     "--out", tmp_path / "out", "--quiet")
    assert result.code == 0, result.err
    assert f"running elsewhere: digits-lt / ce / seed 0: {held} is already running (pid {os.getpid()}" in result.err
    assert "sweep: 1 of 2 runs complete" in result.err
    assert (held.parent / "seed-1" / "done").exists() and not (held / "done").exists()


def test_a_failed_run_leaves_no_empty_folders(cli, tmp_path):
    result = cli("run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "1", "--lr", "1e9", "--out", tmp_path / "out", "--quiet")
    assert result.code == 2 and "diverged" in result.error_line()
    assert not (tmp_path / "out").exists()


def test_two_identical_runs_started_at_once_train_it_once(tmp_path):
    command = [sys.executable, "-m", "tailbench", "run", *RUN, "--out", str(tmp_path / "out")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    first, second = (subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2))
    outputs = [(p.wait(300), p.stderr.read()) for p in (first, second)]
    trained = [err for code, err in outputs if code == 0 and "wrote " in err]
    assert len(trained) == 1, outputs
    [(code, err)] = [o for o in outputs if o[1] is not trained[0]]
    busy = code == 3 and "is already running (pid" in err and len(err.strip().splitlines()) == 1
    skipped = code == 0 and ("already complete; skipped" in err or "completed by another process meanwhile" in err)
    assert busy or skipped, (code, err)
