"""Decoupled classifiers on a stage-1 network (Kang et al., "Decoupling Representation and
Classifier for Long-Tailed Recognition", ICLR 2020; facebookresearch/classifier-balancing):

- ``crt``: the classifier re-initialised and retrained with class-aware sampling, the features
  frozen;
- ``tau_norm``: the classifier's class vectors divided by their norm to the power tau, bias
  dropped, tau chosen on the validation split from a grid (the paper's 0 to 2 in 21 steps);
- ``lws``: a learned per-class scale on the frozen classifier's logits, trained with
  class-aware sampling.

cRT and LWS train for the paper's 10 of 90 epochs scaled to the recipe (stage.py), at the
recipe's lr on a cosine schedule. The classifier keeps its type: after ``ldam`` (a cosine
classifier) cRT re-initialises a cosine classifier and retrains it with LDAM's loss.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Callable

from tailbench.errors import UserError
from tailbench.methods.registry import register_method
from tailbench.methods.stage import STAGE_HPARAMS, ClassifierStage, classifier_of, linear_classifier_of

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

TAU_GRID_MAX = 10.0


def _install(model: nn.Module, new: nn.Module, old: nn.Module) -> nn.Module:
    from tailbench.models.wrappers import replace_classifier

    device = next(itertools.chain(old.parameters(), old.buffers())).device
    new = new.to(device=device)
    replace_classifier(model, new)
    return new


@register_method("crt")
class ClassifierRetraining(ClassifierStage):
    description = "classifier re-training: the classifier re-initialised and retrained on frozen features with class-aware sampling"
    paper = "Kang et al., ICLR 2020"
    hparams = dict(STAGE_HPARAMS)

    def setup(self, model: nn.Module) -> list[torch.nn.Parameter]:
        old = classifier_of(model, self.name)
        try:
            fresh = type(old)(old.in_features, old.out_features)
        except (AttributeError, TypeError):
            raise UserError(f"crt re-initialises the classifier; {type(old).__name__} cannot be rebuilt from (in_features, out_features)") from None
        return list(_install(model, fresh, old).parameters())


@register_method("tau_norm")
class TauNormalization(ClassifierStage):
    description = "tau-normalisation: class vectors w_c / ||w_c||^tau, bias dropped; tau chosen on the validation split"
    paper = "Kang et al., ICLR 2020"
    hparams = {"tau_max": 2.0, "steps": 21}
    trains_parameters = False
    uses_norms = "rescales"

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        tau_max, steps = float(hp["tau_max"]), int(hp["steps"])  # type: ignore[arg-type]
        if not 0 < tau_max <= TAU_GRID_MAX:
            raise UserError(f"--hp tau_norm.tau_max={hp['tau_max']} must be above 0 and at most {TAU_GRID_MAX:g} (the paper's grid: 0 to 2)")
        if not 2 <= steps <= 201:
            raise UserError(f"--hp tau_norm.steps={hp['steps']} must be from 2 to 201 (the paper's grid: 21 values)")

    def setup(self, model: nn.Module) -> list[torch.nn.Parameter]:
        from tailbench.models.layers import TauNormalizedClassifier

        old = linear_classifier_of(model, self.name)
        self.classifier = _install(model, TauNormalizedClassifier(old.weight), old)
        return []

    def tau_grid(self) -> list[float]:
        tau_max, steps = float(self.hp["tau_max"]), int(self.hp["steps"])  # type: ignore[arg-type]
        return [tau_max * i / (steps - 1) for i in range(steps)]

    def finish(self, model: nn.Module, score: Callable[[], float]) -> dict[str, object]:
        """The tau with the best validation balanced accuracy (the smallest such tau on a tie)."""
        best_tau, best = 0.0, float("-inf")
        for tau in self.tau_grid():
            self.classifier.tau = tau
            value = score()
            if value > best:
                best_tau, best = tau, value
        self.classifier.tau = best_tau
        return {"tau": best_tau, "val_balanced_accuracy": best}

    def final_summary(self, model: nn.Module) -> dict[str, float]:
        return {"tau_norm_tau": float(self.classifier.tau)}


@register_method("lws")
class LearnableWeightScaling(ClassifierStage):
    description = "learnable weight scaling: a per-class scale on the frozen classifier's logits, trained with class-aware sampling"
    paper = "Kang et al., ICLR 2020"
    hparams = dict(STAGE_HPARAMS)

    def setup(self, model: nn.Module) -> list[torch.nn.Parameter]:
        from tailbench.models.layers import ScaledLogits

        old = classifier_of(model, self.name)
        self.scaled = _install(model, ScaledLogits(old, self.ctx.num_classes), old)
        return [self.scaled.scales]

    def finish(self, model: nn.Module, score: Callable[[], float]) -> dict[str, object]:
        return {"scales": [round(float(v), 6) for v in self.scaled.scales.detach().cpu()]}
