"""The multi-expert network of SADE (Zhang et al., NeurIPS 2022), after RIDE's CIFAR ResNet: the
stem and first stage shared, then for each expert its own later stages and linear classifier.

The output is the aggregation of the experts' logits, sum_k w_k z_k with w = softmax(aggregation):
uniform (1/3 each: the experts' mean, SADE's prediction without test-time aggregation) until
SADE's test-time stage learns `aggregation` on unlabeled test images. Each forward pass leaves the
experts' logits [B, experts, C] in `expert_logits` for the loss, which trains each expert on its
own target distribution.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F


def reinitialise(module: nn.Module) -> None:
    """Fresh weights as tailbench's CIFAR ResNets draw them (Kaiming-normal convolutions and
    linear layers, BatchNorm at 1 and 0), so that the experts start apart."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.reset_parameters()


class MultiExpertResNet(nn.Module):
    def __init__(self, backbone: nn.Module, experts: int = 3) -> None:
        super().__init__()
        stages = list(backbone.stages)
        self.stem, self.shared = backbone.stem, stages[0]
        self.branches = nn.ModuleList()
        self.heads = nn.ModuleList()
        for index in range(experts):
            branch, head = nn.Sequential(*copy.deepcopy(stages[1:])), copy.deepcopy(backbone.fc)
            if index:  # the first expert keeps the backbone's own draw; the others draw their own
                reinitialise(branch)
                reinitialise(head)
            self.branches.append(branch)
            self.heads.append(head)
        self.num_classes, self.num_features = backbone.num_classes, backbone.num_features
        self.aggregation = nn.Parameter(torch.zeros(experts), requires_grad=False)  # softmax: uniform
        self.expert_logits: torch.Tensor | None = None

    def expert_weights(self) -> torch.Tensor:
        return self.aggregation.softmax(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.shared(self.stem(x))
        logits = [head(F.adaptive_avg_pool2d(branch(shared), 1).flatten(1)) for branch, head in zip(self.branches, self.heads)]
        self.expert_logits = torch.stack(logits, dim=1)
        return (self.expert_logits * self.expert_weights().view(1, -1, 1)).sum(1)
