import torch
import torch.nn as nn

from tailbench.benchmarks.invariance import measure_invariance
from tailbench.benchmarks.runtime import Runtime
from tailbench.methods import ComposedMethod, MethodContext
from tailbench.nuisance import get_family


class ConstantModel(nn.Module):
    """Ignores its input entirely."""

    def __init__(self, num_classes):
        super().__init__()
        self.logits = nn.Parameter(torch.randn(num_classes))

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


class BrightnessModel(nn.Module):
    """Logits depend on where the image's mass is, so rotation changes them."""

    def forward(self, x):
        rows = x.mean(dim=(1, 3))  # [N, H]
        return torch.stack([rows[:, :14].sum(1), rows[:, 14:].sum(1)], 1) * 10


def method(num_classes):
    ctx = MethodContext(num_classes, torch.ones(num_classes, dtype=torch.long), 1, 1, torch.device("cpu"), 0, (1, 28, 28), None)
    return ComposedMethod("ce", ctx)


def data(n_per_class=6, num_classes=2):
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(n_per_class * num_classes, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 2:12, 6:22] = torch.randint(100, 255, (x.shape[0], 1, 10, 16), generator=g, dtype=torch.uint8)
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    return x, y


def measure(model, family="rot", batch_size=32, seed=0, transforms=5):
    x, y = data()
    runtime = Runtime(torch.device("cpu"), "contiguous", batch_size, captured_steps=False)
    return measure_invariance(method(2), model, get_family(family), x, x, y, 2,
                              images_per_class=4, transforms=transforms, runtime=runtime, seed=seed, protocol="drawn")


def test_a_model_that_ignores_its_input_has_zero_ekld_and_full_consistency():
    result = measure(ConstantModel(2))
    assert torch.allclose(result.ekld, torch.zeros(2, dtype=torch.float64), atol=1e-7)
    assert torch.equal(result.consistency, torch.ones(2, dtype=torch.float64))
    assert result.images.tolist() == [4, 4]


def test_a_model_that_sees_rotation_has_positive_ekld():
    result = measure(BrightnessModel())
    assert torch.all(result.ekld > 0.01)
    assert torch.all(result.consistency < 1)


def test_ekld_is_seeded():
    a, b = measure(BrightnessModel(), seed=3), measure(BrightnessModel(), seed=3)
    assert torch.equal(a.ekld, b.ekld)
    assert not torch.equal(a.ekld, measure(BrightnessModel(), seed=4).ekld)


def test_small_batches_stream_the_same_pairs():
    """Memory is bounded by the batch: a batch smaller than the pair count gives a valid result."""
    small = measure(BrightnessModel(), batch_size=3, transforms=7)
    large = measure(BrightnessModel(), batch_size=1000, transforms=7)
    assert torch.all(torch.isfinite(small.ekld)) and torch.all(small.ekld > 0)
    assert torch.allclose(small.ekld, large.ekld, rtol=0.5)
