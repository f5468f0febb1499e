"""The recipes' standard training augmentations, as batched tensor ops on the batch's device."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from tailbench.errors import UserError

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def random_crop(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Zero-pad by `padding` and crop back to the original size at a random offset per image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=x.device)
    rows = (dy + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channels = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channels, rows, cols]


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return random_hflip(random_crop(x, generator), generator)


def crop8_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The 64x64 analogue of crop_flip (Tiny ImageNet): pad 8, random crop back, horizontal flip."""
    return random_hflip(random_crop(x, generator, padding=8), generator)


AUGMENTATIONS: dict[str, Augmentation] = {
    "crop_flip": crop_flip, "crop": random_crop, "hflip": random_hflip, "crop8_flip": crop8_flip,
}


def compose(names: tuple[str, ...]) -> Augmentation:
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise UserError(f"unknown recipe augmentation {unknown[0]!r}; known: {', '.join(sorted(AUGMENTATIONS))}")
    steps = [AUGMENTATIONS[n] for n in names]

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for step in steps:
            x = step(x, generator)
        return x

    return apply
