"""Sampling and weighting rules: per-class sampling weights and loss weights by epoch.

Each rule computes its per-class tensor once, on the run's device; the hooks only pick it or
None by epoch. The deferred rules (``drs``, ``drw``) switch on at ``ctx.first_lr_step``, the
recipe's first lr decay (Cao et al. 2019's deferred schedule).

Loss weights meet soft targets (a label-mixing augmentation) in the loss: an image's weight is
its target mixture's, sum_c t_c w_c (see ``losses.py``). Sampling weights act on the images'
own labels, before any mixing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailbench.errors import UserError
from tailbench.methods.base import MethodContext, MethodPart
from tailbench.methods.losses import class_counts
from tailbench.methods.registry import register_method

if TYPE_CHECKING:
    import torch


def balanced_sampling_weights(ctx: MethodContext) -> torch.Tensor:
    """1 / n_c per class: with per-sample weight 1 / n_y every class is drawn equally often."""
    return (1.0 / class_counts(ctx)).float()


def check_beta(part: str, hp: dict[str, object]) -> None:
    if not 0.0 <= float(hp["beta"]) < 1.0:
        raise UserError(f"--hp {part}.beta={hp['beta']}: the effective-number beta must lie in [0, 1)")


def effective_number_weights(ctx: MethodContext, beta: float) -> torch.Tensor:
    """w_c = (1 - beta) / (1 - beta^n_c), normalised to sum to the number of classes (0 <= beta < 1)."""
    import torch

    n = class_counts(ctx)
    beta_t = torch.tensor(beta, dtype=torch.float64, device=n.device)
    w = (1.0 - beta_t) / (1.0 - beta_t.pow(n))
    return (w * (ctx.num_classes / w.sum())).float()


@register_method("rs")
class Resampling(MethodPart):
    kind = "rule"
    capture_safe = True  # rules act between steps: sample orders and loss weights per epoch
    description = "class-balanced resampling from the first epoch (sample weight 1 / n_y)"
    paper = "Buda et al., Neural Networks 2018 (class-balanced oversampling)"

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.weights = balanced_sampling_weights(ctx)

    def sampling_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights


@register_method("drs")
class DeferredResampling(MethodPart):
    kind = "rule"
    capture_safe = True  # rules act between steps: sample orders and loss weights per epoch
    description = "plain sampling until the recipe's first lr step, class-balanced resampling after"
    paper = "Cao et al., NeurIPS 2019 (deferred schedule)"

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.weights = balanced_sampling_weights(ctx)

    def sampling_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights if epoch >= self.ctx.first_lr_step else None


@register_method("rw")
class Reweighting(MethodPart):
    kind = "rule"
    capture_safe = True  # rules act between steps: sample orders and loss weights per epoch
    description = "class-balanced loss weights from effective numbers, (1 - beta) / (1 - beta^n_c), summing to C"
    paper = "Cui et al., CVPR 2019 (effective number)"
    hparams = {"beta": 0.9999}

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        check_beta(cls.name, hp)

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.weights = effective_number_weights(ctx, float(hp["beta"]))

    def loss_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights


@register_method("drw")
class DeferredReweighting(MethodPart):
    kind = "rule"
    capture_safe = True  # rules act between steps: sample orders and loss weights per epoch
    description = "unweighted loss until the recipe's first lr step, rw's effective-number weights after"
    paper = "Cao et al., NeurIPS 2019; weights of Cui et al., CVPR 2019"
    hparams = {"beta": 0.9999}

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        check_beta(cls.name, hp)

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.weights = effective_number_weights(ctx, float(hp["beta"]))

    def loss_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights if epoch >= self.ctx.first_lr_step else None
