"""SADE (Zhang et al., "Self-Supervised Aggregation of Diverse Experts for Test-Agnostic
Long-Tailed Recognition", NeurIPS 2022; Vanint/SADE-AgnosticLT).

- ``sade`` (a loss): three experts on a shared stem and first stage (models/multi_expert.py),
  trained together, each on its own target distribution (the official DiverseExpertLoss):
  expert 1 softmax cross-entropy on its logits z1 (the training prior), expert 2 balanced softmax
  CE(z2 + log pi) (uniform), expert 3 inverse softmax CE(z3 + log pi - tau log pi~) with
  tau = 2 (the CIFAR configs), pi~ the prior with the class ranks reversed (the largest class gets
  the smallest class's share). Predictions aggregate the experts' logits, uniformly by default.
- ``sade_tta`` (a stage): the test-time self-supervised aggregation. The expert weights
  w = softmax(a), a = 0 at first, are the only parameters trained, on the *unlabeled test images*
  (their labels are never read), to maximise the cosine similarity of the aggregated
  predictions softmax(sum_k w_k z_k) of two random views of each image; everything else is
  frozen and in eval mode. 5 epochs, stopping after the first in which an expert's weight falls
  below 0.05 (as the official loop does), batch as the recipe's, SGD at the recipe's lr with its
  momentum and weight decay (the official 0.1, 0.9, 5e-4 on CIFAR), plainly shuffled.

Departures, said here and in docs/METHODS.md: the experts are full-width copies of the later
stages with linear classifiers (the official CIFAR model narrows them, `reduce_dimension`, and uses
cosine classifiers); the two views are the recipe's crop-and-flip (pad 4) without the official
colour jitter, greyscale and blur, which do not apply to one-channel images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from tailbench.errors import UserError
from tailbench.methods.base import Batch, MethodContext, MethodPart, StepState
from tailbench.methods.registry import register_method
from tailbench.methods.stage import ClassifierStage

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

EXPERTS = 3
COLLAPSE = 0.05  # the official test-time loop stops once an expert's weight falls below it (test_training_cifar.py)


def inverse_prior(prior: torch.Tensor) -> torch.Tensor:
    """The prior with class ranks reversed: the class of size rank r gets the share of rank C - 1 - r."""
    values, order = prior.sort()
    ranks = order.argsort()
    return values[prior.numel() - 1 - ranks]


def multi_expert_of(model: nn.Module, part: str):
    from tailbench.models.multi_expert import MultiExpertResNet

    found = next((m for m in model.modules() if isinstance(m, MultiExpertResNet)), None)
    if found is None:
        raise UserError(f"{part} aggregates SADE's experts; train the network with the sade loss (e.g. sade+{part})")
    return found


@register_method("sade")
class DiverseExperts(MethodPart):
    kind = "loss"
    description = "SADE's three skill-diverse experts: softmax, balanced-softmax and inverse-softmax (tau) losses on a shared stem"
    paper = "Zhang et al., NeurIPS 2022"
    hparams = {"tau": 2.0}

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        if not 0 <= float(hp["tau"]) <= 10:  # type: ignore[arg-type]
            raise UserError(f"--hp sade.tau={hp['tau']} must be from 0 to 10 (the official CIFAR configs: 2)")

    @classmethod
    def check_spec(cls, spec: str, parts: list[type[MethodPart]]) -> None:
        stages = [p.name for p in parts if p.kind == "stage" and p.name != "sade_tta"]
        if stages:
            raise UserError(f"method spec {spec!r}: {stages[0]} works on one classifier, and sade's experts have three; "
                            "use sade_tta, SADE's own test-time aggregation, as its second stage")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        counts = ctx.class_counts.double()
        prior = counts / counts.sum()
        self.log_prior = prior.log().float()
        self.log_inverse_prior = inverse_prior(prior).log().float()
        self.tau = float(hp["tau"])  # type: ignore[arg-type]

    def wrap_model(self, model: nn.Module) -> nn.Module:
        from tailbench.models.cifar_resnet import CifarResNet
        from tailbench.models.multi_expert import MultiExpertResNet

        parent = model
        while hasattr(parent, "net") and not isinstance(parent.net, CifarResNet) and hasattr(parent.net, "net"):
            parent = parent.net
        if not isinstance(getattr(parent, "net", None), CifarResNet):
            raise UserError(f"sade builds its experts from a CIFAR ResNet (cifar_resnet8/20/32/56); the recipe's model is "
                            f"{type(getattr(parent, 'net', parent)).__name__}")
        parent.net = MultiExpertResNet(parent.net, EXPERTS)
        self.experts = parent.net
        return model

    def expert_targets(self, logits: torch.Tensor) -> list[torch.Tensor]:
        """Each expert's logits as its loss sees them: z1, z2 + log pi, z3 + log pi - tau log pi~."""
        prior, inverse = self.log_prior.to(logits.device), self.log_inverse_prior.to(logits.device)
        return [logits[:, 0], logits[:, 1] + prior, logits[:, 2] + prior - self.tau * inverse]

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        import torch.nn.functional as F

        experts = self.experts.expert_logits
        return sum(F.cross_entropy(z, y, weight=weights) for z in self.expert_targets(experts))


@register_method("sade_tta")
class TestTimeAggregation(ClassifierStage):
    description = "SADE's test-time self-supervised aggregation: expert weights learned on unlabeled test images by agreement of two views"
    paper = "Zhang et al., NeurIPS 2022"
    hparams = {"epochs": 5, "lr_scale": 1.0, "frozen_bn": True}
    trains_on = "test images, unlabeled"

    @classmethod
    def check_spec(cls, spec: str, parts: list[type[MethodPart]]) -> None:
        if parts[0].name != "sade":
            raise UserError(f"method spec {spec!r}: sade_tta aggregates SADE's experts; start the spec with the sade loss (sade+sade_tta)")

    def setup(self, model: nn.Module) -> list[torch.nn.Parameter]:
        self.experts = multi_expert_of(model, self.name)
        self.experts.aggregation.requires_grad_(True)
        return [self.experts.aggregation]

    def sampling_weights(self, epoch: int) -> torch.Tensor | None:
        return None

    def stage_augment(self, batch: Batch, state: StepState, view: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> Batch:
        """Two random views of every image, one after the other; the (hidden) labels are not used."""
        import torch

        x = torch.cat([view(batch.x, state.generator), view(batch.x, state.generator)])
        return Batch(x, torch.cat([batch.y, batch.y]), torch.cat([batch.idx, batch.idx]))

    def stage_loss(self, loss_part: MethodPart, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        first, second = logits.softmax(1).chunk(2)
        return -F.cosine_similarity(first, second, dim=1, eps=1e-6).mean()

    def stops_after(self, model: nn.Module, epoch: int) -> bool:
        """The official loop's stop: once any expert's weight is below 0.05, before collapsing onto one."""
        return bool((self.experts.expert_weights() < COLLAPSE).any())

    def finish(self, model: nn.Module, score) -> dict[str, object]:
        return {"expert_weights": [round(float(w), 6) for w in self.experts.expert_weights().detach().cpu()]}
