"""N-way K-shot episodes from the head classes: clean support images, nuisance-transformed queries.

Every task draws N of the head classes, then K support and Q query images of each without
replacement. The support images are the clean ones (before the dataset's fixed nuisance draw);
every query image gets a fresh draw of the dataset's own nuisance family. The inner loop thus
never sees the nuisance, and only a network whose adapted features already ignore it does well
on the queries: the outer loop has to put that invariance into what it learns (MSR's setting
for learning equivariances from augmented data). Drawing is batched on the device; the labels
of a task are 0..N-1 in the order its classes were drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tailbench.nuisance import NuisanceFamily


@dataclass
class Episodes:
    support_x: torch.Tensor  # [T, N*K, C, H, W] floats in [0, 1]
    support_y: torch.Tensor  # [T, N*K]
    query_x: torch.Tensor  # [T, N*Q, C, H, W]
    query_y: torch.Tensor  # [T, N*Q]


class EpisodeSampler:
    def __init__(self, clean: torch.Tensor, labels: torch.Tensor, head_classes: list[int], ways: int, shots: int,
                 queries: int, family: NuisanceFamily) -> None:
        self.clean, self.family = clean, family
        self.ways, self.shots, self.queries = ways, shots, queries
        members = [torch.nonzero(labels == c).flatten() for c in head_classes]
        widest = max(int(m.numel()) for m in members)
        self.table = torch.zeros(len(members), widest, dtype=torch.long, device=labels.device)
        self.present = torch.zeros(len(members), widest, device=labels.device)
        for row, positions in enumerate(members):
            self.table[row, : positions.numel()] = positions
            self.present[row, : positions.numel()] = 1.0

    def sample(self, tasks: int, generator: torch.Generator) -> Episodes:
        device, n, k, q = self.table.device, self.ways, self.shots, self.queries
        classes = torch.rand(tasks, self.table.shape[0], generator=generator, device=device).argsort(1)[:, :n]
        weights = self.present[classes].flatten(0, 1)  # [T*N, widest]
        columns = torch.multinomial(weights, k + q, replacement=False, generator=generator)
        chosen = self.table[classes].flatten(0, 1).gather(1, columns).view(tasks, n, k + q)
        labels = torch.arange(n, device=device).view(1, n, 1)
        images = self.clean[chosen].float().div_(255.0)  # [T, N, K+Q, C, H, W]
        shape = images.shape[3:]
        query = images[:, :, k:].reshape(-1, *shape)
        query = self.family(query, generator).view(tasks, n * q, *shape)
        return Episodes(
            images[:, :, :k].reshape(tasks, n * k, *shape), labels.expand(tasks, n, k).reshape(tasks, n * k),
            query, labels.expand(tasks, n, q).reshape(tasks, n * q),
        )
