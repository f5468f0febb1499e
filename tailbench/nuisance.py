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
from tailbench.families import NATURAL_FAMILIES  # noqa: F401  (re-exported: the names of the families below)


def uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=generator.device)


def warp_affine(x: torch.Tensor, matrices: torch.Tensor, mode: str = "bilinear", padding_mode: str = "zeros") -> torch.Tensor:
    """Warp a batch with per-image 2x3 matrices in normalised coordinates (zeros outside by default)."""
    grid = F.affine_grid(matrices.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


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


def _max_filter(x: torch.Tensor, k: int) -> torch.Tensor:
    """Maximum over a k x k square anchored as cv2.dilate / cv2.erode anchor it by default.

    OpenCV resolves the default anchor (-1, -1) to (k // 2, k // 2), so output pixel (i, j) takes
    rows i - k // 2 .. i + (k - 1) // 2 and the same span of columns: for even k the window reaches
    one pixel further up / left than down / right. Pixels outside the image never win (OpenCV's
    morphologyDefaultBorderValue), hence the -inf padding.
    """
    if k == 1:
        return x
    before, after = k // 2, (k - 1) // 2
    padded = F.pad(x, (before, after, before, after), value=float("-inf"))
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
        variants = [_max_filter(x, k) for k in self.dilate_sizes]
        variants += [-_max_filter(-x, k) for k in self.erode_sizes]  # erosion: the same window, minimum
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


# -- Natural-image families (CIFAR-LT, GTSRB-LT, TinyImageNet-LT) ----------------------------------
# Small, label-preserving changes of viewing conditions, each drawn independently per image. The
# geometric ones reflect the image at its border, so they do not add black corners (a second
# nuisance) to photographs; every draw is one batched affine_grid / grid_sample call.


@dataclass(frozen=True)
class Lighting(NuisanceFamily):
    """Brightness then contrast, as torchvision's ColorJitter(brightness=0.4, contrast=0.4) draws them:
    x * b, then (x - m) * c + m with m the image's mean grey level; b, c ~ U(0.6, 1.4)."""

    name: str = "light"
    brightness: float = 0.4
    contrast: float = 0.4

    @property
    def description(self) -> str:
        b, c = self.brightness, self.contrast
        return f"lighting: brightness x U({1 - b:g}, {1 + b:g}), contrast x U({1 - c:g}, {1 + c:g}) around the mean grey"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        b = uniform(n, 1 - self.brightness, 1 + self.brightness, generator)
        c = uniform(n, 1 - self.contrast, 1 + self.contrast, generator)
        return torch.stack([b, c], 1)

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        params = params.to(x.dtype)
        brightness, contrast = params[:, 0].view(-1, 1, 1, 1), params[:, 1].view(-1, 1, 1, 1)
        lit = (x * brightness).clamp_(0.0, 1.0)
        grey = lit.mean(1, keepdim=True) if x.shape[1] != 3 else (lit * _LUMA.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)
        mean = grey.mean((2, 3), keepdim=True)
        return ((lit - mean) * contrast + mean).clamp_(0.0, 1.0)


_LUMA = torch.tensor([0.299, 0.587, 0.114])  # ITU-R 601 grey, as PIL's convert("L") and torchvision use


@dataclass(frozen=True)
class SmallRotation(NuisanceFamily):
    """Rotation by an angle ~ U(-max_degrees, max_degrees), bilinear, reflected at the border."""

    name: str = "rot15"
    max_degrees: float = 15.0

    @property
    def description(self) -> str:
        return f"small rotation, angle ~ U(-{self.max_degrees:g}, {self.max_degrees:g}) degrees, bilinear, reflected border"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return uniform(n, -self.max_degrees, self.max_degrees, generator)

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return warp_affine(x, rotation_matrices(params.to(x.dtype)), "bilinear", "reflection").clamp_(0.0, 1.0)


@dataclass(frozen=True)
class Translation(NuisanceFamily):
    """Shift by (dx, dy), each ~ U(-max_fraction, max_fraction) of the image side (4 px at 32, 8 px at 64)."""

    name: str = "shift"
    max_fraction: float = 0.125

    @property
    def description(self) -> str:
        f = self.max_fraction
        return f"translation, dx, dy ~ U(-{f:g}, {f:g}) x image side, bilinear, reflected border"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.stack([uniform(n, -self.max_fraction, self.max_fraction, generator) for _ in range(2)], 1)

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        matrices = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
        matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
        # affine_grid maps output to input coordinates on [-1, 1]: moving the content by a
        # fraction f of the side means reading from 2 f further back.
        matrices[:, :, 2] = -2.0 * params.to(x.dtype)
        return warp_affine(x, matrices, "bilinear", "reflection").clamp_(0.0, 1.0)


@dataclass(frozen=True)
class Scale(NuisanceFamily):
    """Isotropic zoom about the centre by s, log-uniform in [1 / max_factor, max_factor]."""

    name: str = "scale"
    max_factor: float = 1.25

    @property
    def description(self) -> str:
        return f"scale, zoom s log-uniform in [{1 / self.max_factor:g}, {self.max_factor:g}] about the centre, bilinear, reflected border"

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        log_max = math.log(self.max_factor)
        return uniform(n, -log_max, log_max, generator).exp()

    def apply(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        inverse = 1.0 / params.to(x.dtype)  # content grows by s: read from coordinates / s
        matrices = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
        matrices[:, 0, 0] = inverse
        matrices[:, 1, 1] = inverse
        return warp_affine(x, matrices, "bilinear", "reflection").clamp_(0.0, 1.0)


for _family in (Lighting(), SmallRotation(), Translation(), Scale()):
    register_family(_family)
