"""The training step: recipe augmentation, the method's hooks, forward, loss, backward, optimizer step.

`EagerStep` runs it op by op: on the CPU, and for a spec with a part that is not capture-safe.
`CapturedStep` records it as a CUDA graph once per (batch size, loss weights on or off, the
method's step variant) and replays it with the batch's indices copied into a static buffer: one
launch per step instead of hundreds, which is what small CIFAR ResNets are bound by on a GPU.
Both give the same updates: a graph replays the very kernels an eager step launches.
"""

from __future__ import annotations

from typing import Callable, Hashable

import torch
import torch.nn as nn

from tailbench.benchmarks.runtime import Runtime
from tailbench.datasets.base import Split
from tailbench.methods import Batch, ComposedMethod, StepState

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class EagerStep:
    """One optimisation step per call; the epoch's loss and correct-prediction sums stay on the device."""

    def __init__(
        self, model: nn.Module, method: ComposedMethod, optimizer: torch.optim.Optimizer, augment: Augmentation,
        train: Split, generator: torch.Generator, runtime: Runtime,
    ) -> None:
        self.model, self.method, self.optimizer, self.augment = model, method, optimizer, augment
        self.train, self.generator, self.runtime = train, generator, runtime
        device = train.y.device
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        # A captured graph needs gradients that stay allocated; eagerly on the CPU freeing them is
        # what the records so far were made with.
        self.set_to_none = device.type == "cpu"

    def reset_sums(self) -> None:
        self.loss_sum.zero_()
        self.correct.zero_()

    def body(self, idx: torch.Tensor, epoch: int, step: int, loss_weights: torch.Tensor | None) -> None:
        x = self.augment(self.train.x[idx].float().div_(255.0), self.generator)
        batch = self.method.augment(Batch(x, self.train.y[idx], idx), StepState(epoch, step, self.generator))
        logits = self.model(self.runtime.layout(batch.x))
        loss = self.method.loss(self.model, logits, batch.y, loss_weights, epoch)
        self.optimizer.zero_grad(set_to_none=self.set_to_none)
        loss.backward()
        self.optimizer.step()
        self.method.after_step(self.model)
        target = batch.y if batch.y.ndim == 1 else batch.y.argmax(1)  # soft targets: their most likely class
        self.loss_sum += loss.detach() * idx.shape[0]  # per training image drawn (SADE's test-time views are two rows each)
        self.correct += (logits.detach().argmax(1) == target).sum()

    def __call__(self, idx: torch.Tensor, epoch: int, step: int, loss_weights: torch.Tensor | None) -> None:
        self.body(idx, epoch, step, loss_weights)

    def describe(self) -> str:
        return "eager"


class CudaGraphs:
    """The CUDA side of capture and replay (a test substitutes a recorder that replays callables)."""

    def __init__(self, device: torch.device) -> None:
        self.side_stream = torch.cuda.Stream(device=device)
        self.pool = None  # every graph of a run shares one memory pool: they never run at once

    def on_side_stream(self, fn: Callable[[], None]) -> None:
        self.side_stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side_stream):
            fn()
        torch.cuda.current_stream().wait_stream(self.side_stream)

    def capture(self, fn: Callable[[], None], generator: torch.Generator) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(generator)  # its draws then advance on every replay
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, pool=self.pool):
            fn()
        if self.pool is None:
            self.pool = graph.pool()
        return graph

    def failed(self) -> None:
        torch.cuda.synchronize()


class _Graph:
    def __init__(self, idx: torch.Tensor, weights: torch.Tensor | None) -> None:
        self.idx, self.weights, self.graph = idx, weights, None

    def replay(self, idx: torch.Tensor, loss_weights: torch.Tensor | None) -> None:
        self.idx.copy_(idx)
        if self.weights is not None:
            self.weights.copy_(loss_weights)
        self.graph.replay()


class CapturedStep(EagerStep):
    """The eager step, captured per key after WARMUP eager calls of that key, then replayed.

    The warm-up calls are real steps (they train), run on a side stream as CUDA graph capture
    requires: they create the optimizer's momentum buffers and the gradients, which the graphs
    then update in place. The learning rate is a device tensor (fused SGD reads it there), so the
    per-epoch schedule needs no new graph. If capture fails (an op that syncs with the host),
    training goes on eagerly and `describe()` says why.
    """

    WARMUP = 2

    def __init__(self, *args, graphs=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backend = graphs if graphs is not None else CudaGraphs(self.train.y.device)
        self.graphs: dict[Hashable, _Graph] = {}
        self.warmed: dict[Hashable, int] = {}
        self.fallback: str | None = None

    def __call__(self, idx: torch.Tensor, epoch: int, step: int, loss_weights: torch.Tensor | None) -> None:
        if self.fallback is not None:
            return self.body(idx, epoch, step, loss_weights)
        key = (idx.numel(), loss_weights is not None, self.method.step_variant(epoch))
        if key not in self.graphs:
            if self.warmed.get(key, 0) < self.WARMUP:
                self.warmed[key] = self.warmed.get(key, 0) + 1
                return self.backend.on_side_stream(lambda: self.body(idx, epoch, step, loss_weights))
            if not self._capture(key, idx, epoch, step, loss_weights):
                return self.body(idx, epoch, step, loss_weights)
        self.graphs[key].replay(idx, loss_weights)  # after a capture, this runs the captured step

    def _capture(self, key: Hashable, idx: torch.Tensor, epoch: int, step: int, loss_weights: torch.Tensor | None) -> bool:
        entry = _Graph(idx.clone(), None if loss_weights is None else loss_weights.clone())
        try:
            entry.graph = self.backend.capture(lambda: self.body(entry.idx, epoch, step, entry.weights), self.generator)
        except (RuntimeError, AttributeError) as error:  # a host sync; or a torch without graph-safe generators
            self.backend.failed()
            self.fallback = f"eager (CUDA graph capture failed: {' '.join(str(error).split())[:200]})"
            return False
        self.graphs[key] = entry
        return True

    def describe(self) -> str:
        return self.fallback or f"cuda graphs ({len(self.graphs)} captured)"
