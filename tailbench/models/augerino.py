"""The Augerino model wrapper: a learned uniform distribution over affine (and colour) transforms
applied to every image before the wrapped network (the method part is ``methods/augerino.py``,
whose docstring describes the whole method)."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from tailbench.nuisance import warp_affine

AFFINE_NAMES = ("translation_x", "translation_y", "rotation", "scale", "stretch", "shear")
COLOR_NAMES = ("brightness", "contrast")
TRANSLATION_SCALE = 0.1
PENALTY_OFF_WIDTH = 10.0


def lie_generators() -> torch.Tensor:
    """The six affine generators as [6, 3, 3] matrices on homogeneous (x, y, 1) coordinates."""
    g = torch.zeros(len(AFFINE_NAMES), 3, 3)
    g[0, 0, 2] = TRANSLATION_SCALE  # translation x
    g[1, 1, 2] = TRANSLATION_SCALE  # translation y
    g[2, 0, 1], g[2, 1, 0] = -1.0, 1.0  # rotation
    g[3, 0, 0], g[3, 1, 1] = 1.0, 1.0  # isotropic scale
    g[4, 0, 0], g[4, 1, 1] = 1.0, -1.0  # stretch (squeeze)
    g[5, 0, 1], g[5, 1, 0] = 1.0, 1.0  # shear
    return g


def affine_matrices(eps: torch.Tensor, generators: torch.Tensor) -> torch.Tensor:
    """[N, 6] coefficients -> [N, 2, 3] matrices exp(sum_k eps_k G_k), top two rows."""
    algebra = torch.einsum("nk,kij->nij", eps, generators.to(eps.dtype))
    return torch.linalg.matrix_exp(algebra)[:, :2, :]


def inverse_softplus(width: float) -> float:
    """The raw value whose softplus is `width` (> 0)."""
    return width + math.log(-math.expm1(-width))


class AugerinoAugment(nn.Module):
    """Wraps ``net``: in training (or inside ``sampling``) each image gets one drawn transform."""

    def __init__(self, net: nn.Module, color: bool = False, seed: int = 0, raw: Sequence[float] | None = None) -> None:
        super().__init__()
        self.net = net
        self.color = color
        self.names = AFFINE_NAMES + (COLOR_NAMES if color else ())
        if raw is not None and len(raw) != len(self.names):
            raise ValueError(f"{len(raw)} starting values for {len(self.names)} generators")
        # The widths are softplus(raw); raw starts at 0 (UniformAug's default) unless given.
        self.raw = nn.Parameter(torch.zeros(len(self.names)) if raw is None else torch.tensor([float(r) for r in raw]))
        self.register_buffer("generators", lie_generators(), persistent=False)
        # Where the next draws come from; the Augerino part sets it (the step's generator in
        # training, its evaluation generator in predict). None: a fallback seeded from `seed`.
        self.generator: torch.Generator | None = None
        self.sample_in_eval = False
        self._seed = seed
        self._fallback: torch.Generator | None = None

    def widths(self) -> torch.Tensor:
        return F.softplus(self.raw)

    def _generator(self) -> torch.Generator:
        if self.generator is not None:
            return self.generator
        if self._fallback is None or self._fallback.device != self.raw.device:
            self._fallback = torch.Generator(device=self.raw.device).manual_seed(self._seed)
        return self._fallback

    def sample_eps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """[n, K] coefficients eps = w * (u - 0.5), u ~ U(0, 1): differentiable in ``raw``."""
        u = torch.rand(n, self.raw.numel(), generator=generator, device=self.raw.device)
        return self.widths() * (u - 0.5)

    def matrices(self, eps: torch.Tensor) -> torch.Tensor:
        return affine_matrices(eps[:, : len(AFFINE_NAMES)], self.generators)

    def transform(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Apply per-image coefficients [N, K] to [0, 1] images [N, C, H, W]."""
        x = warp_affine(x, self.matrices(eps))
        if self.color:
            brightness = eps[:, len(AFFINE_NAMES)].view(-1, 1, 1, 1).to(x.dtype)
            contrast = eps[:, len(AFFINE_NAMES) + 1].view(-1, 1, 1, 1).to(x.dtype)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * contrast.exp() + mean + brightness).clamp(0.0, 1.0)
        return x

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x, self.sample_eps(x.shape[0], self._generator()))

    @contextmanager
    def sampling(self, generator: torch.Generator) -> Iterator[None]:
        """Draw transforms from `generator` even in eval mode (for averaged predictions)."""
        saved = self.generator, self.sample_in_eval
        self.generator, self.sample_in_eval = generator, True
        try:
            yield
        finally:
            self.generator, self.sample_in_eval = saved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.sample_in_eval:
            x = self.augment(x)
        return self.net(x)


def find_augerino(model: nn.Module) -> AugerinoAugment:
    for module in model.modules():
        if isinstance(module, AugerinoAugment):
            return module
    raise ValueError("the model has no Augerino wrapper; wrap it with the augerino part's wrap_model first")
