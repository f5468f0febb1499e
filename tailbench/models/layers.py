"""Layers that method parts put into a model (kept here so that the parts load without torch)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class CosineClassifier(nn.Module):
    """A linear layer without bias on L2-normalised features and L2-normalised class vectors:
    its outputs are cosine similarities in [-1, 1]."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, num_classes
        self.weight = nn.Parameter(torch.empty(num_classes, in_features).uniform_(-1.0, 1.0))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(features, dim=1), F.normalize(self.weight, dim=1))
