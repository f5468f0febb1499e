"""CIFAR-style ResNets (He et al., 2016, section 4.2), registered in timm's model registry.

Three stages of n basic blocks with 16 / 32 / 64 channels on a 3x3 stem, depth 6n + 2
(ResNet-20: n = 3, ResNet-32: n = 5). Downsampling shortcuts are parameter-free (option A:
subsample and zero-pad the channels), as in the LDAM-DRW and GIT code bases. Same constructor
arguments as every timm model: num_classes, in_chans, drop_rate.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models import register_model


class PadShortcut(nn.Module):
    def __init__(self, extra_channels: int) -> None:
        super().__init__()
        self.extra_channels = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.extra_channels // 2
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, half, self.extra_channels - half))


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        changes_shape = stride != 1 or in_channels != channels
        self.shortcut = PadShortcut(channels - in_channels) if changes_shape else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0, widths=(16, 32, 64)) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.stem = nn.Sequential(nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages, channels = [], widths[0]
        for index, width in enumerate(widths):
            stride = 1 if index == 0 else 2
            blocks = [BasicBlock(channels, width, stride)]
            blocks += [BasicBlock(width, width, 1) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.num_features = channels
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        if self.drop_rate:
            x = F.dropout(x, self.drop_rate, self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _build(blocks_per_stage: int, pretrained: bool, **kwargs) -> CifarResNet:
    if pretrained:
        raise ValueError("tailbench's CIFAR ResNets have no pretrained weights")
    kwargs.pop("pretrained_cfg", None)
    kwargs.pop("pretrained_cfg_overlay", None)
    kwargs.pop("cache_dir", None)
    return CifarResNet(blocks_per_stage, **kwargs)


@register_model
def cifar_resnet8(pretrained: bool = False, **kwargs) -> CifarResNet:
    """ResNet-8 for CPU-sized recipes (1 block per stage)."""
    return _build(1, pretrained, **kwargs)


@register_model
def cifar_resnet20(pretrained: bool = False, **kwargs) -> CifarResNet:
    return _build(3, pretrained, **kwargs)


@register_model
def cifar_resnet32(pretrained: bool = False, **kwargs) -> CifarResNet:
    return _build(5, pretrained, **kwargs)


@register_model
def cifar_resnet56(pretrained: bool = False, **kwargs) -> CifarResNet:
    return _build(9, pretrained, **kwargs)
