"""Label-mixing augmentations: mixup, CutMix and Remix. Each returns soft targets [B, C].

All three pair every image of the batch with the image at the mirrored position (i with
B - 1 - i) and draw one mixing coefficient lambda ~ Beta(alpha, alpha) per batch, as the papers do.
The trainer's batches are already in random order (a shuffle, or i.i.d. class-weighted draws), so
the mirrored partner is a uniformly random one; unlike a fresh permutation it costs no random
draw and no gather, and the step stays a fixed tensor program (``capture_safe``).

- ``mixup`` (Zhang et al., ICLR 2018): x = lambda x_i + (1 - lambda) x_j, target
  lambda e(y_i) + (1 - lambda) e(y_j); alpha = 1 (the paper's CIFAR setting).
- ``cutmix`` (Yun et al., ICCV 2019): a box of the partner image pasted in: box sides
  H sqrt(1 - lambda), W sqrt(1 - lambda), centre uniform over the image, clipped at the border;
  the target weight of the partner is the box's share of the pixels. Applied to a batch with
  probability ``prob``; alpha = 1, prob = 0.5 (the paper's CIFAR settings).
- ``remix`` (Chou, Chang, Pan, Wei and Juan, "Remix: Rebalanced Mixup", ECCV 2020 Workshops):
  images mixed as in mixup, labels rebalanced towards the minority class. With n the training
  counts, the label weight of image i is 0 when n_i / n_j >= kappa and lambda < tau, 1 when
  n_i / n_j <= 1 / kappa and 1 - lambda < tau, and lambda otherwise; kappa = 3, tau = 0.5 and
  alpha = 1 (the paper's settings).

Every draw comes from the step's generator. These parts need class indices, so each must be the
last augmentation of a spec, with a loss that accepts soft targets (``ce``, ``bsce``); the spec
parser says so before training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailbench.errors import UserError
from tailbench.methods.base import Batch, MethodContext, MethodPart, StepState
from tailbench.methods.registry import register_method

if TYPE_CHECKING:
    import torch


def one_hot(y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """[B] class indices as [B, C] rows (a comparison, so no device sync to check the range)."""
    import torch

    return (y[:, None] == torch.arange(num_classes, device=y.device)).to(dtype)


def beta(alpha: float, generator: torch.Generator) -> torch.Tensor:
    """One draw of Beta(alpha, alpha) as a 0-d tensor on the generator's device."""
    import torch

    device = generator.device
    if alpha == 1.0:  # Beta(1, 1) is uniform
        return torch.rand((), generator=generator, device=device)
    gammas = torch._standard_gamma(torch.full((2,), alpha, device=device), generator=generator)
    return gammas[0] / gammas.sum()


def mirrored(t: torch.Tensor) -> torch.Tensor:
    """Each image's partner: the image at the mirrored position of the batch."""
    return t.flip(0)


class LabelMixing(MethodPart):
    """What the three share: checks, the batch's hard labels, and the mixed Batch."""

    kind = "augmentation"
    mixes_labels = True
    capture_safe = True

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        if not float(hp["alpha"]) > 0.0:
            raise UserError(f"--hp {cls.name}.alpha={hp['alpha']} must be positive (lambda ~ Beta(alpha, alpha))")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.alpha = float(hp["alpha"])

    def hard_labels(self, batch: Batch) -> torch.Tensor:
        if batch.y.ndim != 1:
            raise UserError(f"{self.name} needs class indices but got soft targets; it must be the spec's last augmentation")
        return batch.y

    def mixed(self, batch: Batch, x: torch.Tensor, weight_own: torch.Tensor) -> Batch:
        """The batch with images x and targets weight_own e(y_i) + (1 - weight_own) e(y_j)."""
        y = self.hard_labels(batch)
        own = one_hot(y, self.ctx.num_classes, x.dtype)
        weight = weight_own.to(x.dtype).reshape(-1, 1)
        return Batch(x, weight * own + (1.0 - weight) * mirrored(own), batch.idx)


@register_method("mixup")
class Mixup(LabelMixing):
    description = "mixup: convex combinations of image pairs and of their labels, lambda ~ Beta(alpha, alpha)"
    paper = "Zhang et al., ICLR 2018 (mixup)"
    hparams = {"alpha": 1.0}

    def augment(self, batch: Batch, state: StepState) -> Batch:
        lam = beta(self.alpha, state.generator).to(batch.x.dtype)
        x = lam * batch.x + (1.0 - lam) * mirrored(batch.x)
        return self.mixed(batch, x, lam)


@register_method("cutmix")
class CutMix(LabelMixing):
    description = "CutMix: a box of the partner image pasted in, labels mixed by area; on a batch with probability prob"
    paper = "Yun et al., ICCV 2019 (CutMix)"
    hparams = {"alpha": 1.0, "prob": 0.5}

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        super().check_hparams(hp)
        if not 0.0 <= float(hp["prob"]) <= 1.0:
            raise UserError(f"--hp cutmix.prob={hp['prob']} must lie in [0, 1]")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.prob = float(hp["prob"])

    def box(self, lam: torch.Tensor, size: int, centre: torch.Tensor) -> torch.Tensor:
        """[size] bool: the positions the box covers along one side (centre in [0, 1))."""
        import torch

        half = (size * (1.0 - lam).sqrt()).floor().div(2.0).floor()
        middle = (centre * size).floor()
        positions = torch.arange(size, device=lam.device)
        return (positions >= (middle - half).clamp(0, size)) & (positions < (middle + half).clamp(0, size))

    def augment(self, batch: Batch, state: StepState) -> Batch:
        import torch

        generator, height, width = state.generator, batch.x.shape[2], batch.x.shape[3]
        lam = beta(self.alpha, generator)
        draws = torch.rand(3, generator=generator, device=generator.device)  # centre y, centre x, apply?
        mask = self.box(lam, height, draws[0])[:, None] & self.box(lam, width, draws[1])[None, :]
        mask = mask & (draws[2] < self.prob)
        x = torch.where(mask, mirrored(batch.x), batch.x)
        weight_own = 1.0 - mask.sum() / (height * width)  # the box's actual share of the pixels
        return self.mixed(batch, x, weight_own)


@register_method("remix")
class Remix(LabelMixing):
    description = "Remix: mixup images, labels moved to the minority class when n_i/n_j >= kappa and its share < tau"
    paper = "Chou et al., ECCV 2020 Workshops (Remix)"
    hparams = {"alpha": 1.0, "kappa": 3.0, "tau": 0.5}

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        super().check_hparams(hp)
        if not float(hp["kappa"]) >= 1.0:
            raise UserError(f"--hp remix.kappa={hp['kappa']} must be at least 1 (a class-size ratio)")
        if not 0.0 <= float(hp["tau"]) <= 1.0:
            raise UserError(f"--hp remix.tau={hp['tau']} must lie in [0, 1]")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        from tailbench.methods.losses import class_counts

        self.kappa, self.tau = float(hp["kappa"]), float(hp["tau"])
        self.counts = class_counts(ctx).float()

    def label_weight(self, lam: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """[B] weight of each image's own label, from lambda and the pair's class-size ratio."""
        import torch

        ratio = self.counts[y] / mirrored(self.counts[y])
        lam = lam.expand(y.shape[0])
        weight = torch.where((ratio >= self.kappa) & (lam < self.tau), torch.zeros_like(lam), lam)
        return torch.where((ratio <= 1.0 / self.kappa) & (1.0 - lam < self.tau), torch.ones_like(lam), weight)

    def augment(self, batch: Batch, state: StepState) -> Batch:
        lam = beta(self.alpha, state.generator).to(batch.x.dtype)
        x = lam * batch.x + (1.0 - lam) * mirrored(batch.x)
        return self.mixed(batch, x, self.label_weight(lam, self.hard_labels(batch)))
