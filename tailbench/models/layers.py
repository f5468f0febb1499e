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


class TauNormalizedClassifier(nn.Module):
    """tau-normalisation of a trained linear classifier (Kang et al., ICLR 2020, eq. 3): class
    vector w_c becomes w_c / ||w_c||^tau, and the bias is dropped (the paper's classifier has
    none). tau = 0 keeps the weights (without bias), tau = 1 makes every class vector unit norm."""

    def __init__(self, weight: torch.Tensor, tau: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.register_buffer("weight", weight.detach().clone())
        self.tau = float(tau)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        norms = self.weight.norm(dim=1, keepdim=True)
        return F.linear(features, self.weight / norms.pow(self.tau))


class ScaledLogits(nn.Module):
    """Learnable weight scaling (LWS, Kang et al., ICLR 2020): a frozen classifier's logits
    times a learned per-class scale f_c, which starts at 1."""

    def __init__(self, classifier: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.classifier = classifier
        self.in_features, self.out_features = getattr(classifier, "in_features", None), num_classes
        self.scales = nn.Parameter(torch.ones(num_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features) * self.scales
