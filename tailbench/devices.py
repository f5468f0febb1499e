"""The device a run uses: `--device` resolved, the name a record stores, what must match for two
runs to be bit-identical, and the CPU thread count (it changes float reductions, hence records)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import torch

from tailbench.errors import UserError


def resolve_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available; use --device auto or cpu")
    if choice not in {"cpu", "cuda"}:
        raise UserError(f"--device {choice!r} is not one of auto, cpu, cuda")
    return torch.device(choice)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def recorded_cpu_threads(name: str) -> int | None:
    """The thread count in a CPU record's device name (what `device_name` wrote), or None."""
    match = re.fullmatch(r"cpu \((\d+) threads?\)", name)
    return int(match.group(1)) if match else None


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """A run's CPU thread count: it changes float reductions, hence the record, so every launcher
    sets it the same way for the same --cpus-per-run, and a rerun uses the record's."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def device_kind(device_type: str, name: str) -> str:
    """What must match for two runs to be bit-identical: the GPU model, or just "cpu"."""
    return "cpu" if device_type == "cpu" else name
