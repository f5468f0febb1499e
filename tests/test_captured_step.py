"""The captured training step, with CUDA graphs replaced by a recorder that replays the step's
closure: what the plumbing around the graphs (static buffers, keys, warm-up, fallback) must get
right is checked on the CPU by comparing with the eager step, bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from tailbench.recipes.augment import compose
from tailbench.benchmarks.runtime import Runtime, choose_runtime
from tailbench.benchmarks.step import CapturedStep, EagerStep
from tailbench.benchmarks.trainer import build_optimizer, epoch_order
from tailbench.recipes.recipe import load_recipe
from tailbench.datasets.base import Split
from tailbench.methods import ComposedMethod, MethodContext, method_parts


class Recorder:
    """Capture records the step; replay runs it again, reading the static buffers then."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.captures, self.replays, self.side = fail, 0, 0, 0

    def on_side_stream(self, fn) -> None:
        self.side += 1
        fn()

    def capture(self, fn, generator):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        self.captures += 1
        recorder = self

        class Graph:
            def replay(self) -> None:
                recorder.replays += 1
                fn()

        return Graph()

    def failed(self) -> None:
        pass


def setup(spec: str, seed: int = 0):
    torch.manual_seed(seed)
    counts = torch.tensor([40, 12, 5])
    y = torch.arange(3).repeat_interleave(counts)
    x = (torch.rand(len(y), 1, 8, 8) * 255).to(torch.uint8)
    ctx = MethodContext(num_classes=3, class_counts=counts, epochs=4, first_lr_step=2, device=torch.device("cpu"),
                        seed=seed, image_shape=(1, 8, 8), nuisance=None)
    method = ComposedMethod(spec, ctx)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    optimizer = build_optimizer(model, method, load_recipe("digits"), torch.device("cpu"))
    runtime = Runtime(torch.device("cpu"), "contiguous", 64, captured_steps=True)
    return model, method, optimizer, Split(x, y), runtime


def train_with(kind, spec: str, **kwargs):
    model, method, optimizer, split, runtime = setup(spec)
    generator = torch.Generator().manual_seed(0)
    step = kind(model, method, optimizer, compose(()), split, generator, runtime, **kwargs)
    sums = []
    for epoch in range(4):
        weights = method.loss_weights(epoch)
        order = epoch_order(method, split, epoch, generator)
        step.reset_sums()
        for i, start in enumerate(range(0, len(split), 16)):  # 57 images: 3 full batches and one of 9
            step(order[start : start + 16], epoch, i, weights)
        sums.append((step.loss_sum.item(), step.correct.item()))
    return [p.detach().clone() for p in model.parameters()], sums, step


@pytest.mark.parametrize("spec", ["ce", "ce+drw", "ldam+drs", "bsce+rs", "ce+mixup", "bsce+drw+cutmix", "ce+drs+remix"])
def test_replayed_steps_train_exactly_as_eager_steps(spec):
    eager_params, eager_sums, _ = train_with(EagerStep, spec)
    recorder = Recorder()
    params, sums, step = train_with(CapturedStep, spec, graphs=recorder)
    assert sums == eager_sums
    assert all(torch.equal(a, b) for a, b in zip(params, eager_params))
    assert recorder.captures >= 1 and recorder.replays > recorder.captures
    assert step.describe().startswith("cuda graphs")


def test_one_graph_per_batch_size_and_loss_weighting():
    recorder = Recorder()
    _, _, step = train_with(CapturedStep, "ce+drw", graphs=recorder)
    # Full batches: unweighted in epochs 0-1, weighted in 2-3; the last batch of 9 is seen once an
    # epoch, so it is warmed up twice per weighting and never captured in four epochs.
    assert sorted(step.graphs) == [(16, False, (None, None)), (16, True, (None, None))]
    assert recorder.side == 2 + 2 + 2 + 2  # two warm-ups per key, the partial keys included


def test_a_failed_capture_falls_back_to_eager_and_says_why():
    eager_params, eager_sums, _ = train_with(EagerStep, "ce+drs")
    params, sums, step = train_with(CapturedStep, "ce+drs", graphs=Recorder(fail=True))
    assert sums == eager_sums and all(torch.equal(a, b) for a, b in zip(params, eager_params))
    assert step.describe().startswith("eager (CUDA graph capture failed: operation not permitted")


def test_every_builtin_part_declares_whether_it_can_be_captured():
    for name, part in method_parts().items():
        assert isinstance(part.capture_safe, bool), name
    assert method_parts()["augerino"].capture_safe is False  # matrix_exp syncs with the host


def test_a_spec_with_a_part_that_is_not_capture_safe_runs_eagerly_on_cuda(monkeypatch):
    import tailbench.benchmarks.runtime as runtime

    monkeypatch.setattr(runtime, "torch_can_capture", lambda device: True)
    cuda = torch.device("cuda")
    assert choose_runtime(cuda, capture_safe=True).captured_steps
    assert not choose_runtime(cuda, capture_safe=False).captured_steps
    assert not choose_runtime(torch.device("cpu"), capture_safe=True).captured_steps
    ctx = MethodContext(num_classes=3, class_counts=torch.tensor([5, 4, 3]), epochs=2, first_lr_step=1,
                        device=torch.device("cpu"), seed=0, image_shape=(1, 8, 8), nuisance=None)
    assert ComposedMethod("ce+drs", ctx).capture_safe
    augerino = ComposedMethod("ce+drs+augerino", ctx)
    assert not augerino.capture_safe and augerino.not_capture_safe() == ["augerino"]


def test_loss_weights_that_change_between_epochs_reach_the_captured_step():
    def varying(epoch: int) -> torch.Tensor:
        return torch.tensor([1.0, 2.0 + epoch, 5.0 - epoch])

    results = []
    for kind, kwargs in ((EagerStep, {}), (CapturedStep, {"graphs": Recorder()})):
        model, method, optimizer, split, runtime = setup("ce")
        method.loss_weights = varying
        generator = torch.Generator().manual_seed(0)
        step = kind(model, method, optimizer, compose(()), split, generator, runtime, **kwargs)
        for epoch in range(4):
            order = epoch_order(method, split, epoch, generator)
            for i, start in enumerate(range(0, 48, 16)):
                step(order[start : start + 16], epoch, i, method.loss_weights(epoch))
        results.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*results))
