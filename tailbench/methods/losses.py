"""Loss parts: the first part of every method spec.

Every loss takes optional per-class weights (from a rule such as ``rw`` or ``drw``) and, but
for ``focal``'s default form, reduces the same way as ``F.cross_entropy(weight=...)``: a weighted
mean over the batch, sum_i w[y_i] * l_i / sum_i w[y_i]. So weights change how the batch's
examples count relative to each other, not the loss's overall scale, and every loss with
weights = 1 is a plain mean. ``focal`` with ``form=ldam_drw`` (its default) follows LDAM-DRW's
code instead: the weight goes inside the modulation and the batch mean does not divide by the
weights (see ``Focal``).

Soft targets (``soft_targets = True``: ``ce``, ``bsce``): y may be a [B, C] probability matrix
t from a label-mixing augmentation. The loss of an image is then the cross-entropy against its
target distribution, l_i = -sum_c t_ic log p_ic, and its weight is the weight of its target
mixture, w_i = sum_c t_ic w_c: an image that is 70% class a and 30% class b counts with
0.7 w_a + 0.3 w_b. With one-hot targets both reduce to the hard-label definitions above.

Torch is imported inside the hooks: the CLI reads these classes without loading it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailbench.errors import UserError
from tailbench.methods.base import MethodContext, MethodPart
from tailbench.methods.registry import register_method

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


def sample_weights(y: torch.Tensor, weights: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Per-image weights: w[y] for class indices, t @ w (the target mixture's) for soft targets."""
    weights = weights.to(dtype)
    return weights[y] if y.ndim == 1 else y.to(dtype) @ weights


def weighted_mean(per_sample: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """The batch mean of per-sample losses, weighted by their classes' weights if given."""
    if weights is None:
        return per_sample.mean()
    w = sample_weights(y, weights, per_sample.dtype)
    return (w * per_sample).sum() / w.sum()


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy against class indices or soft targets, reduced as the module docstring says."""
    import torch.nn.functional as F

    if y.ndim == 1:
        return F.cross_entropy(logits, y, weight=weights)
    per_sample = -(y.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1)
    return weighted_mean(per_sample, y, weights)


def class_counts(ctx: MethodContext) -> torch.Tensor:
    """Training images per class as float64 on the run's device, at least 1 (empty classes stay finite)."""
    import torch

    return ctx.class_counts.to(device=ctx.device, dtype=torch.float64).clamp_min(1.0)


@register_method("ce")
class CrossEntropy(MethodPart):
    kind = "loss"
    capture_safe = True
    description = "cross-entropy (empirical risk minimisation)"
    paper = "-"
    soft_targets = True

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return cross_entropy(logits, y, weights)


FOCAL_FORMS = ("ldam_drw", "lin")


@register_method("focal")
class Focal(MethodPart):
    """Focal loss, in one of two forms (``--hp focal.form=...``); p_t is the predicted probability
    of the true class, w = w[y] its class weight from a rule (1 without one), B the batch size.

    ``ldam_drw`` (default, for comparability with LDAM-DRW's tables): the form of Cao et al.'s code
    (kaidic/LDAM-DRW, losses.py ``focal_loss`` lines 7-11, ``FocalLoss.forward`` line 21), where
    the class weight enters through ``F.cross_entropy(reduction='none', weight=w)``:
        ce_i = -w_i log p_t,i,   loss = (1/B) sum_i (1 - exp(-ce_i))^gamma * ce_i
             = (1/B) sum_i (1 - p_t,i^w_i)^gamma * w_i * (-log p_t,i).
    The modulation sees p_t^w rather than p_t, and the mean divides by B, not by sum_i w_i.

    ``lin``: Lin et al., ICCV 2017, FL(p_t) = -(1 - p_t)^gamma log p_t, reduced like every other
    tailbench loss, sum_i w_i FL_i / sum_i w_i.

    Without weights the two forms are the same loss. gamma = 0 gives cross-entropy: unweighted, or
    weighted with sum_i w_i ce_i / B (``ldam_drw``) or / sum_i w_i (``lin``).
    """

    kind = "loss"
    capture_safe = True
    description = "focal loss: cross-entropy times (1 - p_true)^gamma, down-weighting easy examples (form: ldam_drw | lin)"
    paper = "Lin et al., ICCV 2017 (focal loss); default form as in Cao et al.'s LDAM-DRW code"
    hparams = {"gamma": 1.0, "form": "ldam_drw"}

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        if hp["form"] not in FOCAL_FORMS:
            raise UserError(f"--hp {cls.name}.form={hp['form']}: unknown focal form; use one of {', '.join(FOCAL_FORMS)}")
        if not float(hp["gamma"]) >= 0.0:
            raise UserError(f"--hp {cls.name}.gamma={hp['gamma']}: the focusing parameter gamma must be >= 0")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.gamma = float(hp["gamma"])
        self.form = str(hp["form"])

    def modulation(self, log_q: torch.Tensor) -> torch.Tensor:
        """(1 - q)^gamma from log q, with 1 - q as -expm1(log q) (exact near q = 1); the floor keeps
        the gradient finite for gamma < 1 when q rounds to 1."""
        import torch

        return (-torch.expm1(log_q)).clamp_min(1e-12).pow(self.gamma)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        import torch.nn.functional as F

        log_p = F.log_softmax(logits, dim=1).gather(1, y[:, None]).squeeze(1)
        if self.form == "lin":
            return weighted_mean(-self.modulation(log_p) * log_p, y, weights)
        ce = -log_p if weights is None else -sample_weights(y, weights, log_p.dtype) * log_p
        return (self.modulation(-ce) * ce).mean()  # exp(-ce) = p_t^w


@register_method("ldam")
class LDAM(MethodPart):
    """Label-distribution-aware margin loss: CE(s * (cos - m_y 1_y), y) with m_c = C * n_c^(-1/4),
    C chosen so that the largest margin (the smallest class's) is max_m.

    As in Cao et al.'s code (kaidic/LDAM-DRW, losses.py ``LDAMLoss``, lines 23-45): margins at
    lines 27-28, and a rule's class weights through ``F.cross_entropy(s * output, target,
    weight=w)`` with the default mean reduction (line 45), sum_i w_i l_i / sum_i w_i. The cosine
    classifier starts with unit-norm class vectors as its ``NormedLinear`` does (see
    ``tailbench.models.layers.CosineClassifier``)."""

    kind = "loss"
    capture_safe = True
    description = "label-distribution-aware margins (m_c ~ n_c^-1/4, largest max_m) on an s-scaled cosine classifier"
    paper = "Cao et al., NeurIPS 2019 (LDAM-DRW)"
    hparams = {"max_m": 0.5, "s": 30.0}

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.s = float(hp["s"])
        raw = class_counts(ctx).pow(-0.25)
        self.margins = (raw * (float(hp["max_m"]) / raw.max())).float()

    def wrap_model(self, model: nn.Module) -> nn.Module:
        import torch.nn as nn

        from tailbench.models.layers import CosineClassifier
        from tailbench.models.wrappers import backbone_of, replace_classifier

        old = backbone_of(model).get_classifier()
        if not isinstance(old, nn.Linear):
            raise UserError(f"ldam needs a linear classifier to make cosine-normalised; {type(backbone_of(model)).__name__} has a {type(old).__name__}")
        new = CosineClassifier(old.in_features, old.out_features).to(device=old.weight.device, dtype=old.weight.dtype)
        replace_classifier(model, new)
        return model

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        true_class = F.one_hot(y, logits.shape[1]).to(torch.bool)
        margin = self.margins.to(logits.dtype)[y][:, None]
        adjusted = torch.where(true_class, logits - margin, logits)
        return F.cross_entropy(self.s * adjusted, y, weight=weights)

    def to_log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """The model outputs cosines; probabilities are on the scale the loss trained (s * cos)."""
        return (self.s * logits).log_softmax(dim=1)


@register_method("bsce")
class BalancedSoftmax(MethodPart):
    """Training loss CE(logits + tau * log prior, y); prediction uses the plain logits."""

    kind = "loss"
    capture_safe = True
    description = "balanced softmax / logit adjustment: tau * log(prior) added to the logits in the training loss only"
    paper = "Ren et al., NeurIPS 2020; Menon et al., ICLR 2021"
    hparams = {"tau": 1.0}
    soft_targets = True

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        counts = class_counts(ctx)
        self.log_prior = (float(hp["tau"]) * (counts / counts.sum()).log()).float()

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return cross_entropy(logits + self.log_prior.to(logits.dtype), y, weights)
