"""`tailbench run ...`, but the process stops itself (SIGSTOP) at the M-th training step after its
N-th in-run checkpoint, having first created MARKER, so that a test can kill it there (kill -9)
without racing the run to its end.

    python pause_mid_epoch.py N M MARKER run --dataset ...
"""

import os
import signal
import sys
from pathlib import Path

from tailbench.benchmarks import checkpoint, step

after_checkpoints, after_steps, marker = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
saves = steps = 0
real_save, real_step = checkpoint.Checkpointer.save, step.EagerStep.__call__


def counting_save(self, *args, **kwargs):
    global saves
    real_save(self, *args, **kwargs)
    saves += 1


def pausing_step(self, *args, **kwargs):
    global steps
    real_step(self, *args, **kwargs)
    if saves >= after_checkpoints:
        steps += 1
        if steps == after_steps:
            marker.touch()
            os.kill(os.getpid(), signal.SIGSTOP)


checkpoint.Checkpointer.save = counting_save
step.EagerStep.__call__ = pausing_step
from tailbench.cli import main  # noqa: E402

sys.exit(main(sys.argv[4:]))
