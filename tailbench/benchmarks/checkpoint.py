"""In-run checkpoints: the whole training state at an epoch boundary, so that a run killed, stopped
(SIGTERM) or preempted resumes where it was and ends with the record an uninterrupted run writes.

`<run dir>/.partial/checkpoint.pt` holds the model, the optimizer, the method parts' own training
state, every random stream (the run's generator, torch's global CPU and CUDA streams, Python's
and NumPy's), the epoch and the history so far. It is written atomically (temporary file, fsync,
rename), read with `torch.load(weights_only=True)` (tensors, numbers, strings, lists and dicts
only), and removed once the record is complete. A checkpoint made by other code, for another run
or on another kind of device is not resumed: the run says so and starts over.
"""

from __future__ import annotations

import io
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from tailbench.storage.atomic import write_atomic

PARTIAL, FILE = ".partial", "checkpoint.pt"
AUTO_SECONDS = 5.0  # by default, a checkpoint once this much training has passed since the last one


class TrainingProgress:
    """This process's training so far, for the line a signal ends it with (cli.resume_note):
    whether a run began, and the epoch after which its latest checkpoint was saved or resumed."""

    started: str | None = None
    last_epoch: int | None = None


TRAINING = TrainingProgress()


class Checkpointer:
    """Saves at epoch ends (every `every` epochs; None: after AUTO_SECONDS of training) and restores."""

    def __init__(self, run_directory: Path, identity: dict, started: str, every: int | None = None, quiet: bool = False,
                 file: str = FILE) -> None:
        self.path = Path(run_directory) / PARTIAL / file
        self.identity, self.every, self.quiet = identity, every, quiet
        self.since = self.clock = time.perf_counter()
        # When the run began and how long its earlier processes ran: a resumed run's record
        # reports the whole run's start and wall time.
        self.started, self.earlier_seconds = started, 0.0
        self.resumed_at: int | None = None  # the first epoch this process trains, when it resumed
        TRAINING.started, TRAINING.last_epoch = started, None

    def wall_seconds(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.clock

    def due(self, epoch: int) -> bool:
        if self.every is not None:
            return self.every > 0 and (epoch + 1) % self.every == 0
        return time.perf_counter() - self.since >= AUTO_SECONDS

    def save(self, epoch: int, model, optimizer, method, generator: torch.Generator, history: list) -> None:
        state = {
            "identity": self.identity, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "method": method.state_dict(), "rng": rng_state(generator), "history": [h.model_dump() for h in history],
            "started": self.started, "wall_seconds": self.wall_seconds(),
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_atomic(self.path, buffer.getvalue())
        self.since = time.perf_counter()
        TRAINING.last_epoch = epoch + 1

    def restore(self, model, optimizer, method, generator: torch.Generator) -> tuple[int, list[dict]] | None:
        """Load the checkpoint into the objects; (first epoch to train, history so far), or None."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location=generator.device, weights_only=True)
        except Exception as error:  # a foreign or damaged file: never unpickle it, never trust it
            self._discard(f"unreadable ({type(error).__name__})")
            return None
        if not isinstance(state, dict) or state.get("identity") != self.identity:
            self._discard("made by other code, for another run or on another kind of device")
            return None
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        method.load_state_dict(state["method"])
        set_rng_state(generator, state["rng"])
        self.started, self.earlier_seconds = state["started"], float(state["wall_seconds"])
        self.resumed_at = int(state["epoch"]) + 1
        TRAINING.last_epoch = self.resumed_at
        if not self.quiet:
            from tailbench.console import console

            console.print(f"resuming from the checkpoint after epoch {self.resumed_at} ({self.path.parent})", soft_wrap=True)
        return self.resumed_at, state["history"]

    def clear(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)

    def _discard(self, why: str) -> None:
        if not self.quiet:
            from tailbench.console import console

            console.print(f"ignoring the checkpoint in {self.path.parent}: {why}; starting over", soft_wrap=True)
        self.clear()


def rng_state(generator: torch.Generator) -> dict:
    version, keys, gauss = random.getstate()
    kind, mt, pos, has_gauss, cached = np.random.get_state()
    return {
        "run": generator.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "python": [version, list(keys), gauss],
        "numpy": [kind, torch.from_numpy(mt.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
    }


def set_rng_state(generator: torch.Generator, state: dict) -> None:
    generator.set_state(state["run"].cpu())
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"]:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    kind, mt, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, mt.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
