"""The small network MSR meta-trains on episodes: a reparameterized stem, a plain trunk, a head.

Only the stem's sharing matrix leaves meta-training (it is frozen into the run's model); the
trunk and head exist to give the stem's features a task to serve. No normalisation layers: a
task's few images are its whole batch, and functional calls under ``vmap`` want a model whose
forward pass has no running state.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from tailbench.msr.layers import SharedConv2d

STEM_CHANNELS = 16  # the CIFAR ResNets' stem width; the learned U_s does not depend on it
FAST = ("stem.v", "head.weight", "head.bias")  # what the inner loop adapts per task


class EpisodeNet(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], ways: int, copies: int, kernel: int, width: int,
                 mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        channels = image_shape[0]
        self.register_buffer("mean", mean.reshape(1, channels, 1, 1).clone())
        self.register_buffer("std", std.reshape(1, channels, 1, 1).clamp_min(1e-3).clone())
        self.stem = SharedConv2d(channels, STEM_CHANNELS, kernel, copies, stride=1, padding=kernel // 2)
        self.conv1 = nn.Conv2d(STEM_CHANNELS, width, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.head = nn.Linear(2 * width, ways)
        for module in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem((x - self.mean) / self.std))
        h = F.relu(self.conv1(h))
        h = F.relu(self.conv2(h))
        return self.head(h.mean((2, 3)))


def build_episode_net(image_shape, ways, copies, kernel, width, mean, std, seed: int) -> EpisodeNet:
    """A freshly initialised network; the initialisation is seeded without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return EpisodeNet(image_shape, ways, copies, kernel, width, mean, std)
