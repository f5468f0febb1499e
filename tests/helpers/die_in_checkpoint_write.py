"""`tailbench run ...`, but the process kills itself (SIGKILL) in the middle of writing its N-th
in-run checkpoint: the temporary file is written, the rename has not happened.

    python die_in_checkpoint_write.py N run --dataset ...
"""

import os
import signal
import sys

from tailbench.benchmarks import checkpoint

writes = 0
real_write_atomic = checkpoint.write_atomic


def dying_write(path, data):
    global writes
    writes += 1
    if writes == int(sys.argv[1]):
        temporary = path.parent / f".{path.name}.dying.tmp"
        temporary.write_bytes(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    real_write_atomic(path, data)


checkpoint.write_atomic = dying_write
from tailbench.cli import main  # noqa: E402

sys.exit(main(sys.argv[2:]))
