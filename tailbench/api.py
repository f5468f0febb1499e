"""The Python API: the registry, a benchmark's frozen splits, and the evaluation a harness run
does, for a model trained anywhere.

    import tailbench
    bench = tailbench.load_benchmark("fmnist-bg-lt")            # frozen splits, on the CPU
    train = bench.dataset("train")                                # a torch Dataset of (float image, label)
    result = tailbench.evaluate(model, bench)                     # per-class accuracy, eKLD, ...
    result.summary["tail_accuracy"], result.per_class

The model contract is the harness's: a batch of float images in [0, 1], shape [N, C, H, W] (the
split's uint8 pixels / 255, nuisance draws baked in), in, one logit per class out. The model does
its own input normalisation. `evaluate` computes exactly what a harness run computes after
training (tailbench.benchmarks.runner.evaluate: per-class accuracy on validation and test, eKLD
and consistency per invariance family under the recipe's protocol, the per-image evidence, the
summary of tailbench.results.metrics), so a harness-trained model gives the same numbers here as
in its own record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from tailbench.benchmarks.config import check_device_choice
from tailbench.benchmarks.runner import evaluate as evaluate_trained
from tailbench.benchmarks.runtime import choose_runtime, make_deterministic, seed_everything
from tailbench.datasets import dataset_names, get_dataset
from tailbench.datasets.base import LongTailedData, Split
from tailbench.datasets.sources import allow_unverified, default_data_dir
from tailbench.devices import resolve_device
from tailbench.errors import UserError
from tailbench.methods import ComposedMethod, MethodContext
from tailbench.methods.registry import method_parts
from tailbench.recipes.recipe import Recipe, load_recipe, with_overrides
from tailbench.results.metrics import RunTables, compute
from tailbench.results.store import benchmark_id

SPLITS = ("train", "val", "test")
EVALUATION_METHOD = "ce"  # a plain classifier: predictions are the log-softmax of the model's logits


def list_datasets() -> list[str]:
    """The registered dataset names (`tailbench list datasets`)."""
    return dataset_names()


def list_methods() -> dict[str, str]:
    """Registered method parts: name -> kind (loss, sampler, augmentation, ...)."""
    return {name: part.kind for name, part in sorted(method_parts().items())}


class SplitDataset(Dataset):
    """A split as a torch Dataset of (float image in [0, 1], int label); the tensors stay whole."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.split.x[index].float().div(255.0), int(self.split.y[index])


@dataclass(frozen=True)
class Benchmark:
    """A benchmark's frozen splits and what defines them."""

    name: str  # the benchmark id records use (dataset id, plus @recipe when not the default)
    data: LongTailedData
    recipe: Recipe  # the evaluation settings (eKLD images, transforms, protocol) come from it

    @property
    def dataset_id(self) -> str:
        return self.data.dataset_id

    @property
    def manifest_sha256(self) -> str:
        return self.data.manifest_sha256

    @property
    def class_names(self) -> list[str]:
        return list(self.data.class_names)

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.data.image_shape

    @property
    def invariance_families(self) -> tuple[str, ...]:
        return tuple(self.data.invariance_families)

    @property
    def train_counts(self) -> np.ndarray:
        return self.data.train_counts.cpu().numpy()

    def split(self, name: str) -> Split:
        """uint8 images [N, C, H, W] and int64 labels [N] of train, val or test."""
        if name not in SPLITS:
            raise UserError(f"split {name!r} is not one of {', '.join(SPLITS)}")
        return getattr(self.data, name)

    def tensors(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        split = self.split(name)
        return split.x, split.y

    def dataset(self, name: str) -> SplitDataset:
        return SplitDataset(self.split(name))


def load_benchmark(dataset: str, data_dir: Path | str | None = None, *, recipe: str | None = None,
                   options: dict[str, str] | None = None, allow_unverified_data: bool = False) -> Benchmark:
    """A benchmark's frozen splits (checked against the registry's manifest), on the CPU.

    dataset: a registered name (`tailbench.list_datasets()`); data_dir: where its files are (default:
    $TAILBENCH_DATA or ~/.cache/tailbench/data, as `tailbench data` uses); recipe: the evaluation
    settings' recipe (default: the dataset's own)."""
    builder = get_dataset(dataset, options or {})
    chosen = with_overrides(load_recipe(recipe or builder.recipe))
    with allow_unverified(allow_unverified_data):
        data = builder.load(Path(data_dir) if data_dir is not None else default_data_dir())
    return Benchmark(benchmark_id(builder.dataset_id, builder.recipe, chosen.name, chosen.overrides), data, chosen)


@dataclass(frozen=True)
class Evaluation:
    """What a harness run records after training: the per-class table (per_class.csv's rows),
    the stored summary, every metric of tailbench.results.metrics, and per_image.csv.gz's bytes."""

    benchmark: str
    per_class: pd.DataFrame
    summary: dict[str, float | None]
    metrics: dict[str, float | None]
    per_image: bytes
    runtime: dict  # how the device ran the evaluation (provenance.runtime of a record)


def evaluate(model: torch.nn.Module, benchmark: Benchmark, *, seed: int = 0, device: str = "auto") -> Evaluation:
    """Evaluate a trained model on the benchmark exactly as a harness run does after training.

    seed: the seed of the eKLD image and transform draws (a harness record uses its run seed)."""
    check_device_choice(device)
    target = resolve_device(device)
    make_deterministic(target)
    data = benchmark.data.to(target)
    ctx = MethodContext(num_classes=data.num_classes, class_counts=data.train_counts, epochs=benchmark.recipe.epochs,
                        first_lr_step=benchmark.recipe.first_lr_step, device=target, seed=seed,
                        image_shape=data.image_shape, nuisance=data.nuisance)
    method = ComposedMethod(EVALUATION_METHOD, ctx, {})
    runtime = choose_runtime(target, method.capture_safe)
    model = model.to(target, memory_format=runtime.torch_format)
    check_output(model, data, target)
    seed_everything(seed)
    rows, summary, evidence = evaluate_trained(method, model, data, benchmark.recipe, seed, runtime)
    per_class = pd.DataFrame(rows)
    from tailbench.results import per_image

    metrics = compute(RunTables(per_class, benchmark.invariance_families, per_image.decode(evidence)))
    return Evaluation(benchmark.name, per_class, summary, metrics, evidence, {**runtime.to_json(), "train_step": "none (evaluation only)"})


def check_output(model: torch.nn.Module, data: LongTailedData, device: torch.device) -> None:
    """One batch through the model: it must give [N, num_classes] finite logits."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(data.test.x[:2].to(device).float().div(255.0))
    except Exception as error:  # the user's model: any failure is theirs to fix, said in one line
        raise UserError(f"the model fails on a batch of shape {tuple(data.test.x[:2].shape)} (float in [0, 1]): "
                        f"{type(error).__name__}: {' '.join(str(error).split())[:200]}") from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.shape != (min(2, len(data.test)), data.num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UserError(f"the model returns {shape} for 2 images; the benchmark needs [2, {data.num_classes}] logits (one per class)")
