"""The record lock: one holder at a time, released when its holder dies, never held twice."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import pytest

from tailbench.storage.locks import LockBusy, exclusive


def _hold(path: str, ready, seconds: float) -> None:
    with exclusive(path):
        ready.set()
        time.sleep(seconds)


def _count_holders(path: str, counter, rounds: int) -> None:
    for _ in range(rounds):
        with exclusive(path, wait_seconds=30):
            with counter.get_lock():
                counter.value += 1
                assert counter.value == 1, "two processes held the lock at once"
            time.sleep(0.001)
            with counter.get_lock():
                counter.value -= 1


def test_busy_lock_names_its_holder(tmp_path):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path / "x.lock"), ready, 30))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(LockBusy) as busy:
            with exclusive(tmp_path / "x.lock"):
                pass
        assert f"pid {holder.pid}" in str(busy.value)
    finally:
        holder.kill()
        holder.join()


def test_lock_of_a_killed_holder_is_free(tmp_path):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path / "x.lock"), ready, 60))
    holder.start()
    assert ready.wait(30)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    assert (tmp_path / "x.lock").exists()  # the stale file is still there...
    with exclusive(tmp_path / "x.lock"):  # ...and taking it does not wait
        pass
    assert not (tmp_path / "x.lock").exists()


def test_racing_processes_never_hold_it_together(tmp_path):
    ctx = mp.get_context("spawn")
    counter = ctx.Value("i", 0)
    workers = [ctx.Process(target=_count_holders, args=(str(tmp_path / "x.lock"), counter, 40)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
