"""Class-agnostic nuisance transformation families as batched tensor operations.

Every family works on float images in [0, 1] of shape [N, C, H, W] on any device. Drawing and
applying are separate so that one draw can be fixed per image (to build a dataset) or fresh per
call (for eKLD and the oracle augmentation); both take an explicit ``torch.Generator`` so every
draw is seeded. The same objects build the ROT/BG/DIL datasets, draw the eKLD transforms and serve
the oracle method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tailbench.errors import UserError


def uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=generator.device)


def warp_affine(x: torch.Tensor, matrices: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Warp a batch with per-image 2x3 matrices in normalised coordinates, zeros outside."""
    grid = F.affine_grid(matrices.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def rotation_matrices(degrees: torch.Tensor) -> torch.Tensor:
    radians = degrees * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zeros = torch.zeros_like(cos)
    return torch.stack([torch.stack([cos, -sin, zeros], -1), torch.stack([sin, cos, zeros], -1)], 1)


class NuisanceFamily:
    """A named distribution over transformations, drawn per image."""

    name: str = ""
    description: str = ""

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(x, self.sample(x.shape[0], generator))


@dataclass(frozen=True)
class Rotation(NuisanceFamily):
    """Rotation by an angle drawn uniformly from [-max_degrees, max_degrees]."""

    name: str = "rot"
    max_degrees: float = 180.0
    mode: str = "bicubic"

    @property
    def description(self) -> str:
        return f"rotation, angle ~ U(-{self.max_degrees:g}, {self.max_degrees:g}) degrees, {self.mode}"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return uniform(n, -self.max_degrees, self.max_degrees, generator)

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return warp_affine(x, rotation_matrices(params), self.mode).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class Background(NuisanceFamily):
    """Pixels that are exactly 0 take one grey level per image, drawn from randint(0, 100)."""

    name: str = "bg"
    max_level: int = 100
    description: str = "background: zero pixels set to one intensity ~ randint(0, 100) / 255 per image"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.max_level, (n,), generator=generator, device=generator.device)

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        level = (params.to(x.dtype) / 255.0).view(-1, 1, 1, 1)
        return torch.where(x == 0, level, x)


def _max_filter(x: torch.Tensor, k: int, pad_value: float) -> torch.Tensor:
    if k == 1:
        return x
    # Even kernels have no centre: pad one more pixel on the right/bottom, as OpenCV anchors them.
    padded = F.pad(x, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2), value=pad_value)
    return F.max_pool2d(padded, kernel_size=k, stride=1)


@dataclass(frozen=True)
class DilationErosion(NuisanceFamily):
    """Stroke width: with p = 0.6 dilate with a k x k square, k in {2, 3, 4}; else erode, k in {1, 2}."""

    name: str = "dil"
    p_dilate: float = 0.6
    dilate_sizes: tuple[int, ...] = (2, 3, 4)
    erode_sizes: tuple[int, ...] = (1, 2)
    description: str = "stroke width: p=0.6 dilate k in {2,3,4}, else erode k in {1,2} (square kernels)"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """A code per image: 0..len(dilate)-1 dilate, the following codes erode."""
        dilate = torch.rand(n, generator=generator, device=generator.device) < self.p_dilate
        d = torch.randint(0, len(self.dilate_sizes), (n,), generator=generator, device=generator.device)
        e = torch.randint(0, len(self.erode_sizes), (n,), generator=generator, device=generator.device)
        return torch.where(dilate, d, len(self.dilate_sizes) + e)

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        variants = [_max_filter(x, k, 0.0) for k in self.dilate_sizes]
        variants += [-_max_filter(-x, k, -1.0) for k in self.erode_sizes]
        stacked = torch.stack(variants)  # [V, N, C, H, W]
        index = params.view(1, -1, 1, 1, 1).expand(1, *x.shape)
        return stacked.gather(0, index).squeeze(0)


FAMILIES: dict[str, NuisanceFamily] = {}


def register_family(family: NuisanceFamily) -> NuisanceFamily:
    if family.name in FAMILIES:
        raise ValueError(f"nuisance family {family.name!r} registered twice")
    FAMILIES[family.name] = family
    return family


for _family in (Rotation(), Background(), DilationErosion()):
    register_family(_family)


def get_family(name: str) -> NuisanceFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise UserError(f"unknown nuisance family {name!r}; known families: {known}") from None


def apply_fixed_draw(images: torch.Tensor, family: NuisanceFamily, seed: int, chunk: int = 4096) -> torch.Tensor:
    """One seeded draw per image applied to uint8 images, returned as uint8 (used to build datasets).

    All parameters are drawn before any image is transformed, so the result does not depend on the
    chunk size; the work runs on the CPU so a dataset is bit-identical wherever it is built.
    """
    generator = torch.Generator().manual_seed(seed)
    params = family.sample(images.shape[0], generator)
    out = torch.empty_like(images)
    for start in range(0, images.shape[0], chunk):
        stop = start + chunk
        x = images[start:stop].float().div_(255.0)
        out[start:stop] = family.apply(x, params[start:stop]).mul_(255.0).round_().to(torch.uint8)
    return out
