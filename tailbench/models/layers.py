"""Layers that method parts put into a model (kept here so that the parts load without torch)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class CosineClassifier(nn.Module):
    """A linear layer without bias on L2-normalised features and L2-normalised class vectors:
    its outputs are cosine similarities in [-1, 1].

    The class vectors (the rows of ``weight``, [num_classes, in_features]) start with unit norm:
    entries drawn uniformly from [-1, 1], then each row rescaled to L2 norm 1, as LDAM-DRW's
    ``NormedLinear`` does (kaidic/LDAM-DRW, models/resnet_cifar.py: ``uniform_(-1, 1).renorm_(2, 1,
    1e-5).mul_(1e5)`` on its [in_features, out_features] weight, whose columns are the class
    vectors). The forward pass normalises them anyway, but their norm sets the step size: the
    gradient reaching a class direction, and so its change per step, scales as 1 / norm^2."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, num_classes
        weight = torch.empty(num_classes, in_features).uniform_(-1.0, 1.0)
        # renorm_ along dim 0 scales each row (one class vector) to norm 1e-5; times 1e5 gives 1.
        self.weight = nn.Parameter(weight.renorm_(2, 0, 1e-5).mul_(1e5))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(features, dim=1), F.normalize(self.weight, dim=1))
