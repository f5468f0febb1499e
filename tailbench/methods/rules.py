"""Sampling and weighting rules: per-class sampling weights and loss weights by epoch.

Each rule computes its per-class tensor once, on the run's device; the hooks only pick it or
None by epoch. The deferred rules (``drs``, ``drw``) switch on at ``ctx.first_lr_step``, the
recipe's first lr decay (Cao et al. 2019's deferred schedule).

Loss weights meet soft targets (a label-mixing augmentation) in the loss: an image's weight is
its target mixture's, sum_c t_c w_c (see ``losses.py``). Sampling weights act on the images'
own labels, before any mixing.

Effective-number weights (Cui et al., CVPR 2019) are w_c = (1 - beta) / (1 - beta^n_c), scaled
to sum to C, as LDAM-DRW's 'Reweight' and 'DRW' train rules compute them (kaidic/LDAM-DRW,
cifar_train.py lines 192-198 and 199-206, beta = 0.9999; its DRW uses beta = 0 before the switch,
which gives all-ones weights, the same as none). ``rs``/``drs`` draw images with weight 1 / n_y by
default (class-balanced sampling); ``weights=effective`` draws them with the effective-number
weights instead, as LDAM-DRW's 'Resample' rule's ``ImbalancedDatasetSampler`` does (utils.py
lines 31-38, beta = 0.9999, drawn with ``torch.multinomial(..., replacement=True)`` at line 44;
it leaves the weights unscaled, which changes no draw).
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


SAMPLING_WEIGHTS = ("inverse", "effective")
RESAMPLING_HPARAMS: dict[str, object] = {"weights": "inverse", "beta": 0.9999}


class ResamplingRule(MethodPart):
    """What ``rs`` and ``drs`` share: per-class sampling weights, 1 / n_c (``weights=inverse``,
    the default) or the effective-number weights (``weights=effective``, with ``beta``)."""

    kind = "rule"
    capture_safe = True  # rules act between steps: sample orders and loss weights per epoch
    hparams = RESAMPLING_HPARAMS

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        weights, beta = hp["weights"], float(hp["beta"])
        if weights not in SAMPLING_WEIGHTS:
            raise UserError(f"--hp {cls.name}.weights={weights}: unknown sampling weights; use one of {', '.join(SAMPLING_WEIGHTS)}")
        if weights == "inverse" and beta != RESAMPLING_HPARAMS["beta"]:
            raise UserError(f"--hp {cls.name}.beta={hp['beta']}: beta applies only with {cls.name}.weights=effective (the inverse weights 1 / n_c have none)")
        if not 0.0 < beta < 1.0:
            raise UserError(f"--hp {cls.name}.beta={hp['beta']}: the effective-number beta for resampling must lie in (0, 1)")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        if hp["weights"] == "effective":
            self.weights = effective_number_weights(ctx, float(hp["beta"]))
        else:
            self.weights = balanced_sampling_weights(ctx)


@register_method("rs")
class Resampling(ResamplingRule):
    """Resampling from the first epoch: each image drawn (with replacement) with its class's weight,
    1 / n_y (class-balanced; default) or (1 - beta) / (1 - beta^n_y) (``weights=effective``, the
    weights of LDAM-DRW's 'Resample' rule, kaidic/LDAM-DRW utils.py lines 31-38)."""

    description = "resampling from the first epoch: sample weight 1 / n_y (weights=inverse) or effective-number (weights=effective, beta)"
    paper = "Buda et al., Neural Networks 2018 (class-balanced oversampling)"

    def sampling_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights


@register_method("drs")
class DeferredResampling(ResamplingRule):
    """Plain sampling until the recipe's first lr step, then ``rs``'s resampling (same weights)."""

    description = "plain sampling until the recipe's first lr step, then resampling (weights=inverse | effective, as rs)"
    paper = "Cao et al., NeurIPS 2019 (deferred schedule)"

    def sampling_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights if epoch >= self.ctx.first_lr_step else None


class ReweightingRule(MethodPart):
    """What ``rw`` and ``drw`` share: the effective-number loss weights (with ``beta``)."""

    kind = "rule"
    capture_safe = True  # rules act between steps: sample orders and loss weights per epoch
    hparams = {"beta": 0.9999}

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        check_beta(cls.name, hp)

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.weights = effective_number_weights(ctx, float(hp["beta"]))


@register_method("rw")
class Reweighting(ReweightingRule):
    """Loss weights w_c = (1 - beta) / (1 - beta^n_c), scaled to sum to C, from the first epoch
    (Cui et al. 2019; LDAM-DRW's 'Reweight' rule, kaidic/LDAM-DRW cifar_train.py lines 192-198)."""

    description = "class-balanced loss weights from effective numbers, (1 - beta) / (1 - beta^n_c), summing to C"
    paper = "Cui et al., CVPR 2019 (effective number)"

    def loss_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights


@register_method("drw")
class DeferredReweighting(ReweightingRule):
    """No loss weights until the recipe's first lr step, ``rw``'s weights after (LDAM-DRW's 'DRW'
    rule, kaidic/LDAM-DRW cifar_train.py lines 199-206: beta = 0, i.e. all-ones weights, before
    epoch 160, its first lr decay; beta = 0.9999 after)."""

    description = "unweighted loss until the recipe's first lr step, rw's effective-number weights after"
    paper = "Cao et al., NeurIPS 2019; weights of Cui et al., CVPR 2019"

    def loss_weights(self, epoch: int) -> torch.Tensor | None:
        return self.weights if epoch >= self.ctx.first_lr_step else None
