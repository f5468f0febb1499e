"""One entry point to every architecture, through timm's registry."""

from __future__ import annotations

import timm
import torch.nn as nn

from tailbench.errors import UserError


def create_model(name: str, num_classes: int, in_chans: int, **kwargs) -> nn.Module:
    if not timm.is_model(name):
        raise UserError(f"unknown model {name!r}; use a timm model name such as cifar_resnet20 or cifar_resnet32")
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
