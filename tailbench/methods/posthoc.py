"""Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021).

The network trains as its loss says; only its predictions change: class y's log-probability
becomes log p(y|x) - tau * log pi_y, renormalised, with pi the training class prior. For a
softmax loss that is exactly the paper's rule, argmax_y f_y(x) - tau * log pi_y, because
log_softmax shifts every logit by the same constant. It is applied to the log-probabilities the
loss defines (for `ldam`, those of its s-scaled cosines), and every evaluation, eKLD included,
uses the adjusted predictions. tau = 1 is the paper's default (google-research/logit_adjustment).

With `bsce`, whose training already adds log pi to the logits, a post-hoc adjustment subtracts the
prior a second time; it is allowed, not advised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailbench.errors import UserError
from tailbench.methods.base import LogProbs, MethodContext, MethodPart
from tailbench.methods.registry import register_method

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

TAU_RANGE = (0.0, 10.0)


@register_method("posthoc_la")
class PosthocLogitAdjustment(MethodPart):
    kind = "augmentation"
    overrides_predict = True
    after_training = True  # training is the rest of the spec's: its stage-1 network is shared (benchmarks/stages.py)
    capture_safe = True  # no training hook: the training step is the loss's own
    description = "post-hoc logit adjustment: predictions from log p(y|x) - tau log(train prior), training unchanged"
    paper = "Menon et al., ICLR 2021"
    hparams = {"tau": 1.0}

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        tau = float(hp["tau"])  # type: ignore[arg-type]
        low, high = TAU_RANGE
        if not low <= tau <= high:
            raise UserError(f"--hp posthoc_la.tau={hp['tau']} must be between {low:g} and {high:g} (the paper's default: 1)")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.tau = float(hp["tau"])  # type: ignore[arg-type]
        counts = ctx.class_counts.double()
        self.log_prior = (counts / counts.sum()).log().float()

    def predict(self, model: nn.Module, x: torch.Tensor, to_log_probs: LogProbs) -> torch.Tensor:
        log_probs = to_log_probs(model(x))
        if self.tau == 0.0:  # no adjustment: the loss's own predictions, bit for bit
            return log_probs
        adjusted = log_probs - self.tau * self.log_prior.to(x.device)
        return adjusted.log_softmax(dim=1)
