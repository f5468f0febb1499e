"""Faults during a record write: a writer killed (SIGKILL) at every step of write_run, with and
without an earlier record (--force), and a disk that fills up. Readers must always find the old
record or the new one, whole; what the killed writer left is hidden and removed by the next
write of the same record."""

from __future__ import annotations

import errno
import json
import os
import signal

import pytest

from fake_records import fake_result
from tailbench.results import store
from tailbench.storage import staging
from tailbench.results.records import iter_runs
from tailbench.results.store import run_dir, write_run

ROWS = [{"class": 0, "class_name": "a", "train_count": 3, "test_acc": 0.5}, {"class": 1, "class_name": "b", "train_count": 1, "test_acc": 0.25}]


def record(seed_marker: int) -> dict:
    result, _ = fake_result("b", "ce", 0)
    result["summary"]["marker"] = seed_marker
    return result


def killed_while(step: str, directory) -> None:
    """Run write_run(marker 2) in a child that SIGKILLs itself at `step`."""
    pid = os.fork()
    if pid == 0:
        try:
            die = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
            calls = {"n": 0}
            real_fsync = os.fsync

            def fsync_then_die(fd, at):
                calls["n"] += 1
                if calls["n"] == at:
                    die()
                real_fsync(fd)

            if step.startswith("fsync"):
                at = int(step[len("fsync"):])
                os.fsync = lambda fd: fsync_then_die(fd, at)
            elif step == "publish":
                staging.publish = die
                store.publish = die
            elif step == "delete-old":
                store.shutil.rmtree = die
            elif step == "fallback-between-renames":
                staging._exchange = lambda a, b: False
                real_rename, count = os.rename, {"n": 0}

                def rename(a, b):
                    count["n"] += 1
                    if count["n"] == 3:  # staging -> target (the 1st failed, the 2nd moved the old away)
                        die()
                    real_rename(a, b)

                os.rename = rename
            write_run(directory, record(2), ROWS)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"the writer was not killed at {step}"


STEPS = ["fsync1", "fsync2", "fsync3", "publish", "delete-old", "fallback-between-renames"]


# a first write has no old folder to delete or move away
CASES = [(step, False) for step in STEPS[:4]] + [(step, True) for step in STEPS]


@pytest.mark.parametrize("step, earlier", CASES, ids=[f"{step}-{'force' if earlier else 'first'}" for step, earlier in CASES])
def test_a_writer_killed_at_any_step_loses_nothing_and_the_next_write_cleans_up(tmp_path, step, earlier):
    directory = run_dir(tmp_path, "b", "ce", 0)
    if earlier:
        write_run(directory, record(1), ROWS)
    killed_while(step, directory)
    store.clean_leftovers(directory)  # what the next run of the record does first (restores a moved-away record)
    markers = [run.result["summary"]["marker"] for run in iter_runs(tmp_path)]
    if step == "delete-old":
        assert markers == [2]  # the new record was in place when the writer died
    elif earlier:
        assert markers == [1]  # the old record survived the crash, whole
    else:
        assert markers == []
    assert sorted(p.name for p in directory.parent.iterdir()) == (["seed-0"] if markers else []), "leftovers after clean-up"
    write_run(directory, record(3), ROWS)
    assert [run.result["summary"]["marker"] for run in iter_runs(tmp_path)] == [3]
    assert sorted(p.name for p in directory.parent.iterdir()) == ["seed-0"]
    assert sorted(p.name for p in directory.iterdir()) == ["done", "per_class.csv", "result.json"]


def test_legacy_temporary_files_in_the_run_folder_are_removed_by_the_next_write(tmp_path):
    """What a run killed during its record write left before staging folders existed."""
    directory = run_dir(tmp_path, "b", "ce", 0)
    write_run(directory, record(1), ROWS)
    for name in (".per_class.csv.k2j3h4.tmp", ".result.json.x8y7z6.tmp", ".done.abcdef.tmp"):
        (directory / name).write_text("partial")
    (directory / ".checkpoint-of-someone-else").mkdir()
    mine = directory / f".per_class.csv.{staging.owner_tag()}.tmp"  # a live writer's (this process's)
    mine.write_text("being written")
    removed = store.clean_leftovers(directory)
    assert sorted(p.name for p in removed) == [".done.abcdef.tmp", ".per_class.csv.k2j3h4.tmp", ".result.json.x8y7z6.tmp"]
    assert mine.exists() and (directory / ".checkpoint-of-someone-else").is_dir()


def test_another_live_processs_staging_folder_is_never_removed(tmp_path):
    directory = run_dir(tmp_path, "b", "ce", 0)
    directory.parent.mkdir(parents=True)
    live = directory.parent / f".seed-0.submit-{staging.owner_tag()}"  # this process: alive
    dead = directory.parent / f".seed-0.write-{staging.owner_tag().split('-')[0]}-999999999-0badc0de"  # no such pid
    foreign = directory.parent / ".seed-0.submit-0badc0de-12345-0badc0de"  # another host's, recent: cannot tell
    for folder in (live, dead, foreign):
        folder.mkdir()
    assert store.clean_leftovers(directory) == [dead]
    assert live.is_dir() and foreign.is_dir() and not dead.exists()


@pytest.mark.parametrize("earlier", [False, True], ids=["first-run", "force-over-a-record"])
def test_a_full_disk_during_the_record_write_is_one_line_and_leaves_the_old_record(cli, tmp_path, monkeypatch, earlier):
    out = tmp_path / "out"
    args = ["run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "1", "--device", "cpu", "--out", out, "--quiet"]
    if earlier:
        assert cli(*args).code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    result = cli(*args, *(["--force"] if earlier else []))
    assert result.code == 2
    line = result.error_line()
    assert "result.json: No space left on device; free some space and run again" in line or "per_class.csv: No space" in line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing half-written, nothing lost
    assert not [p for p in out.rglob(".*")]


def test_force_writes_beside_the_old_record_and_swaps_it_in(tmp_path, monkeypatch):
    directory = run_dir(tmp_path, "b", "ce", 0)
    write_run(directory, record(1), ROWS)
    seen = []
    real_publish = store.publish

    def look_then_publish(staging_folder, target):
        seen.append((json.loads((target / "result.json").read_text())["summary"]["marker"], (target / "done").exists(),
                     sorted(p.name for p in staging_folder.iterdir())))
        return real_publish(staging_folder, target)

    monkeypatch.setattr(store, "publish", look_then_publish)
    write_run(directory, record(2), ROWS)
    assert seen == [(1, True, ["done", "per_class.csv", "result.json"])]  # old record whole until the swap
    assert [run.result["summary"]["marker"] for run in iter_runs(tmp_path)] == [2]


def test_a_run_lock_held_across_a_forced_write_stays_held(tmp_path):
    """The lock in the run folder (`<run dir>/.lock`) keeps its identity when the folder is swapped."""
    from tailbench.storage.locks import LockBusy, exclusive

    directory = run_dir(tmp_path, "b", "ce", 0)
    write_run(directory, record(1), ROWS)
    (directory / ".partial").mkdir()  # a checkpoint of the run being finished
    with exclusive(directory / ".lock"):
        write_run(directory, record(2), ROWS)
        assert sorted(p.name for p in directory.iterdir()) == [".lock", "done", "per_class.csv", "result.json"]
        pid = os.fork()
        if pid == 0:
            try:
                with exclusive(directory / ".lock"):
                    os._exit(1)  # taken: the lock was free for a moment
            except LockBusy:
                os._exit(0)
            os._exit(2)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert sorted(p.name for p in directory.iterdir()) == ["done", "per_class.csv", "result.json"]
