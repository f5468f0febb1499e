"""How a run executes on its device: memory layout, evaluation batch size, captured steps, determinism.

Every choice is a fixed rule of the device (and the method: captured steps), chosen from measurements
(docs/PERFORMANCE.md, scripts/bench_harness.py) and never timed at run time: a choice that
depended on the machine's load would make a record depend on it too. The choices are written to
result.json (`runtime`), since layout and batch size may change the last bits of a float.

- Layout: channels_last on the CPU (1.0x to 1.4x faster steps than NCHW on the idle 2-core
  machine for ResNet-8/20/32 on 1x28x28 and 3x32x32; docs/PERFORMANCE.md). NCHW on CUDA: there
  channels_last is unmeasured inside a captured step, and eagerly it went both ways (1.24x for
  ResNet-20 on 1x28x28, 0.92x for ResNet-32 on 3x32x32, H200).
- Evaluation batch: 256 on the CPU (batch 1024 page-faults on every large allocation: 1,250 ms per
  1,000 images against 490 ms at 256), 4096 on CUDA.
- Determinism on CUDA: deterministic algorithms, cuDNN autotuning off and a fixed cuBLAS
  workspace, so one seed on one kind of GPU gives byte-identical records. The CPU is
  deterministic without them.
"""

from __future__ import annotations

import functools
import os
import random
from dataclasses import dataclass

import numpy as np
import torch


EVAL_BATCH = {"cpu": 256, "cuda": 4096}
CUBLAS_WORKSPACE = ":4096:8"  # what cuBLAS needs for reproducible matmuls (CUDA docs)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_deterministic(device: torch.device) -> None:
    """Call before the first CUDA operation of the process (cuBLAS reads its workspace setting once)."""
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # costs time, protects nothing here
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    memory_format: str  # "channels_last" or "contiguous"
    eval_batch_size: int
    captured_steps: bool  # the training step replayed from CUDA graphs

    @property
    def torch_format(self) -> torch.memory_format:
        return torch.channels_last if self.memory_format == "channels_last" else torch.contiguous_format

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.torch_format)

    def to_json(self) -> dict[str, object]:
        return {
            "memory_format": self.memory_format,
            "eval_batch_size": self.eval_batch_size,
            "captured_steps": self.captured_steps,
            "deterministic": self.device.type == "cpu" or torch.are_deterministic_algorithms_enabled(),
        }


def choose_runtime(device: torch.device, capture_safe: bool) -> Runtime:
    channels_last = device.type == "cpu"
    return Runtime(
        device=device,
        memory_format="channels_last" if channels_last else "contiguous",
        eval_batch_size=EVAL_BATCH[device.type],
        captured_steps=device.type == "cuda" and capture_safe and torch_can_capture(device),
    )


@functools.lru_cache(maxsize=None)
def torch_can_capture(device: torch.device) -> bool:
    """Whether this torch has what captured steps need: graph-safe custom generators, and fused
    SGD that reads its learning rate from a device tensor (probed with one step)."""
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        return False
    try:
        weight = torch.nn.Parameter(torch.ones(2, device=device))
        weight.grad = torch.ones(2, device=device)
        probe = torch.optim.SGD([weight], lr=0.5, momentum=0.9, fused=True)
        probe.param_groups[0]["lr"] = torch.tensor(0.5, device=device)
        probe.step()
        return bool(torch.allclose(weight.detach(), torch.full((2,), 0.5, device=device)))
    except (RuntimeError, TypeError, ValueError, AssertionError):
        return False
