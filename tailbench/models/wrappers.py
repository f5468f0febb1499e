"""Wrappers around a backbone; each keeps the wrapped module as ``.net``."""

from __future__ import annotations

import torch
import torch.nn as nn


class InputNormalization(nn.Module):
    """Takes [0, 1] images, so that every augmentation and nuisance works in image space."""

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean.view(1, -1, 1, 1).clone())
        self.register_buffer("std", std.view(1, -1, 1, 1).clamp_min(1e-3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def backbone_of(model: nn.Module) -> nn.Module:
    """The innermost module under any chain of ``.net`` wrappers (the timm model)."""
    while hasattr(model, "net") and isinstance(model.net, nn.Module):
        model = model.net
    return model


def replace_classifier(model: nn.Module, new: nn.Module) -> None:
    """Swap the backbone's classifier (found through timm's get_classifier) for `new`."""
    backbone = backbone_of(model)
    old = backbone.get_classifier()
    for name, child in backbone.named_children():
        if child is old:
            setattr(backbone, name, new)
            return
    raise ValueError(f"{type(backbone).__name__}'s classifier is not a direct child; cannot replace it")
