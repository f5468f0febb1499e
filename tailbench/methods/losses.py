"""Loss parts: the first part of every method spec."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tailbench.methods.base import MethodPart
from tailbench.methods.registry import register_method


@register_method("ce")
class CrossEntropy(MethodPart):
    kind = "loss"
    description = "cross-entropy (empirical risk minimisation)"
    paper = "-"

    def loss(self, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return F.cross_entropy(logits, y, weight=weights)
