"""The Method API: the hooks the harness calls, with defaults that change nothing.

A method spec such as ``ldam+drw+augerino`` names parts; each part is one ``MethodPart``
subclass in one file, registered with ``@register_method(name)``. A part has a kind:

- ``loss``: defines ``loss`` and ``to_log_probs`` (exactly one per spec, first);
- ``rule``: per-class ``sampling_weights`` and/or ``loss_weights`` by epoch (at most one);
- ``augmentation``: ``augment`` batches, may ``wrap_model``, add ``param_groups``, a
  ``regularizer``, and override ``predict`` (at most one part may override predict);
- ``stage``: a second stage on the trained network (``tailbench.methods.stage.ClassifierStage``:
  what it trains, what it freezes, its sampling, loss, epochs and lr), last, at most one.

A part that acts only after training (``after_training = True``: every stage, and prediction-time
parts such as ``posthoc_la``) splits its spec in two: the rest of the spec (``ce`` for
``ce+crt``) is stage 1, trained once per dataset, recipe and seed and reused from the asset cache
by every spec that shares it (benchmarks/stages.py), and the after-training parts work on it.

Any part may declare the optimizer its method trains with (``make_optimizer``, e.g. Adam where
the paper used it); at most one part of a spec may. The harness still sets the learning rate each
epoch (each group's lr times the recipe's schedule factor) and checkpoints the optimizer's state.

Every hook works on device tensors for a whole batch; none may loop over samples in Python or
call ``.item()``: the harness calls them once per step.

On CUDA the harness captures each training step (recipe augmentation, ``augment``, the model's
forward, ``loss``, ``regularizer``, backward and the optimizer step) in a CUDA graph and replays
it, when every part of the spec sets ``capture_safe = True``. A part may say so when its step
hooks (and whatever ``wrap_model`` adds to the forward pass) are a fixed tensor program: no host
syncs (``.item()``, ``.cpu()``, boolean-mask indexing or other data-dependent shapes), no Python
state that changes from step to step, randomness only from ``state.generator``, and Python
branches on the epoch only through ``step_variant`` (the trainer captures one graph per distinct
value). Otherwise the spec runs eagerly, which is always correct; the CPU always runs eagerly.

Targets are class indices ``[B]`` (int64) or, once an augmentation mixes labels (mixup, cutmix,
remix), a probability matrix ``[B, C]`` (float, rows sum to 1). An augmentation whose ``augment``
may return soft targets sets ``mixes_labels = True``; a loss that accepts them sets
``soft_targets = True``. The spec parser refuses a label-mixing augmentation with a loss that
does not accept soft targets, and one that is not the last augmentation (augmentations after it
would see a matrix where they may index by class). Training accuracy counts ``argmax`` of soft
targets as the label.

This module, the registry and every built-in part module import torch only inside the hooks
that run it: the CLI checks specs, names and hyper-parameters without loading torch. A method
file of your own may import torch at its top as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Hashable

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from tailbench.recipes.recipe import Recipe
    from tailbench.datasets.base import LongTailedData

KINDS = ("loss", "rule", "augmentation", "stage")


@dataclass(frozen=True)
class MethodContext:
    """What a method may know about the run: sizes and schedule, never the dataset module."""

    num_classes: int
    class_counts: torch.Tensor  # training images per class, int64 on the run's device
    epochs: int
    first_lr_step: int  # the epoch (0-based) at which the recipe first decays the lr
    device: torch.device
    seed: int
    image_shape: tuple[int, int, int]
    nuisance: str | None  # the dataset's own nuisance family, if it declares one


@dataclass
class Batch:
    x: torch.Tensor  # float images in [0, 1], [B, C, H, W]
    y: torch.Tensor  # int64 class indices [B], or float class probabilities [B, C] (soft targets)
    idx: torch.Tensor  # positions of the images in the training split [B]


@dataclass
class StepState:
    epoch: int
    step: int
    generator: torch.Generator  # on the run's device; the only source of randomness for hooks


LogProbs = Callable[["torch.Tensor"], "torch.Tensor"]


class MethodPart:
    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    hparams: ClassVar[dict[str, object]] = {}
    overrides_predict: ClassVar[bool] = False
    capture_safe: ClassVar[bool] = False  # see the module docstring: may the step be a CUDA graph?
    soft_targets: ClassVar[bool] = False  # a loss: accepts y as [B, C] probabilities
    mixes_labels: ClassVar[bool] = False  # an augmentation: augment may return y as [B, C] probabilities
    after_training: ClassVar[bool] = False  # acts only on the trained network (see the module docstring)

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        self.ctx = ctx
        self.hp = hp

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        """Raise UserError for hyper-parameter values the part cannot run with (e.g. a negative
        width). Called when a spec is resolved, before torch or any data loads, so a bad --hp is
        answered at once; values arrive typed like the defaults."""

    @classmethod
    def check_spec(cls, spec: str, parts: list[type[MethodPart]]) -> None:
        """Raise UserError when the part cannot be meaningfully composed with the spec's other
        parts (e.g. a classifier-norm rescaling with a loss whose classifier normalises norms away)."""

    def prepare(self, data: "LongTailedData") -> None:
        """Once before training, with the dataset on the run's device (e.g. train a generator)."""

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return model

    def param_groups(self, model: nn.Module) -> list[dict]:
        """Extra optimizer groups ({"params": [...], **overrides}); the rest get the recipe's."""
        return []

    def make_optimizer(self, groups: list[dict], recipe: Recipe, device: torch.device) -> torch.optim.Optimizer | None:
        """The optimizer over `groups` (the model's own parameters first, then every part's
        ``param_groups``), when the method needs its own; None (the default): the recipe's SGD.
        Each group's lr when built is its base lr, which the harness multiplies by the recipe's
        schedule factor every epoch; on CUDA, a capture-safe part's optimizer must accept a
        tensor lr (e.g. fused kernels)."""
        return None

    def sampling_weights(self, epoch: int) -> torch.Tensor | None:
        """Per-class sampling weights for this epoch, or None for plain shuffling."""
        return None

    def loss_weights(self, epoch: int) -> torch.Tensor | None:
        """Per-class loss weights for this epoch, or None for unweighted."""
        return None

    def step_variant(self, epoch: int) -> Hashable:
        """What in this part's step hooks changes with the epoch (e.g. a delayed start), as a
        hashable: a captured step is reused only for epochs with the same value."""
        return None

    def augment(self, batch: Batch, state: StepState) -> Batch:
        return batch

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """y: class indices [B], or [B, C] probabilities when the part sets soft_targets."""
        raise NotImplementedError(f"{self.name} is not a loss")

    def to_log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.log_softmax(dim=1)

    def regularizer(self, model: nn.Module, epoch: int) -> torch.Tensor | None:
        return None

    def predict(self, model: nn.Module, x: torch.Tensor, to_log_probs: LogProbs) -> torch.Tensor:
        return to_log_probs(model(x))

    def epoch_log(self, model: nn.Module, epoch: int) -> dict[str, object]:
        """Numbers worth keeping per epoch in the run record (e.g. learned augmentation widths)."""
        return {}

    def final_summary(self, model: nn.Module) -> dict[str, float]:
        """Numbers for the leaderboard about what the method learned."""
        return {}

    def state_dict(self) -> dict:
        """Training state this part keeps outside the model (tensors, numbers, strings, lists,
        dicts), saved in the run's checkpoints at epoch ends. Parameters and buffers the part adds
        to the model are saved with the model."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict returned, when a run resumes from a checkpoint."""
