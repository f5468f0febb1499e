"""Augerino: a learned uniform distribution over affine transforms (Benton et al., NeurIPS 2020).

The model is wrapped so that, in training, every image passes through one affine transform drawn
from the learned distribution before the network sees it:

- six Lie-algebra generators G_k of the affine group acting on homogeneous 2-D coordinates
  (translation x and y, scaled by 0.1; rotation; isotropic scale; stretch; shear);
- widths w = softplus(raw), raw initialised at 0; per image eps_k = w_k * (u_k - 0.5) with
  u_k ~ U(0, 1), i.e. eps_k ~ U(-w_k / 2, w_k / 2), written so that gradients reach ``raw``;
- T = matrix_exp(sum_k eps_k G_k) (3 x 3, batched), whose top two rows warp the image through
  ``affine_grid`` / ``grid_sample`` in normalised coordinates, zeros outside;
- optionally (``color=true``) two more learned ranges: an additive brightness offset and a
  log-contrast factor around each image's mean, the result clipped to [0, 1].

The loss is the spec's loss part plus ``-reg * ||w||_2`` (the ``regularizer`` hook), dropped once
any width reaches 10 so that widths cannot grow without bound. ``reg`` defaults to 0.01, the
paper's CIFAR value; it used 0.1 for rotated MNIST (``--hp augerino.reg=0.1``). The widths sit in
their own optimizer group without weight decay (decay would pull them towards softplus(0)).

Evaluation (accuracy and eKLD, both through the ``predict`` hook) draws ``copies`` transforms per
image (default 4) and averages the probabilities: log p = logsumexp_j log p_j - log J.

Randomness: in training the wrapper draws from the step's generator (``StepState.generator``),
which the ``augment`` hook hands to it right before the trainer's forward pass, so training draws
interleave deterministically with the trainer's own. Evaluation has no step generator: the part
owns one, seeded from the run seed on the images' device, and reuses it for every prediction
(test, val, then eKLD, in the harness's fixed order), so the same seed gives the same record. In
eval mode outside ``predict`` the wrapper is the plain network.

What was learned goes into the run record: ``augerino_widths`` (the widths w, in generator units)
per epoch, and in the summary, for the leaderboard:

- ``learned_translation_x`` / ``_y``: the full range of the shift as a fraction of the image
  width / height (0.1 * w / 2: normalised coordinates span 2);
- ``learned_rotation_deg``: the full range of the rotation angle in degrees (w in radians; 360
  or more means full rotation invariance);
- ``learned_scale``, ``learned_stretch``, ``learned_shear``: the full range w of each generator's
  coefficient (for scale, the range of the natural log of the zoom factor);
- with ``color``: ``learned_brightness`` (full range of the offset, in [0, 1] intensity units) and
  ``learned_contrast`` (full range of the log contrast factor).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from tailbench.errors import UserError
from tailbench.methods.base import Batch, LogProbs, MethodContext, MethodPart, StepState
from tailbench.methods.registry import register_method
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

    def __init__(self, net: nn.Module, color: bool = False, seed: int = 0) -> None:
        super().__init__()
        self.net = net
        self.color = color
        self.names = AFFINE_NAMES + (COLOR_NAMES if color else ())
        self.raw = nn.Parameter(torch.zeros(len(self.names)))
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


@register_method("augerino")
class Augerino(MethodPart):
    kind = "augmentation"
    description = "learned uniform distribution over affine transforms (6 Lie generators), J-copy averaged evaluation"
    paper = "Benton et al., NeurIPS 2020"
    hparams = {"reg": 0.01, "copies": 4, "color": False}
    overrides_predict = True
    # torch.linalg.matrix_exp reads the matrices' norms on the host to pick its approximation: a
    # sync no CUDA graph can hold. Augerino's steps run eagerly.
    capture_safe = False

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.reg = float(hp["reg"])  # type: ignore[arg-type]
        self.copies = int(hp["copies"])  # type: ignore[call-overload]
        self.color = bool(hp["color"])
        if self.copies < 1:
            raise UserError(f"--hp augerino.copies={self.copies}: the number of evaluation copies must be at least 1")
        self.wrapper: AugerinoAugment | None = None
        self._eval_seed = (ctx.seed * 1_000_003 + 0xA06E) % (2**63)
        self._eval_generator: torch.Generator | None = None

    def _find(self, model: nn.Module) -> AugerinoAugment:
        return self.wrapper if self.wrapper is not None else find_augerino(model)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        self.wrapper = AugerinoAugment(model, color=self.color, seed=self._eval_seed + 1)
        return self.wrapper

    def param_groups(self, model: nn.Module) -> list[dict]:
        return [{"params": [self._find(model).raw], "weight_decay": 0.0}]

    def augment(self, batch: Batch, state: StepState) -> Batch:
        if self.wrapper is not None:
            self.wrapper.generator = state.generator  # the forward pass that follows draws from it
        return batch

    def regularizer(self, model: nn.Module, epoch: int) -> torch.Tensor | None:
        widths = self._find(model).widths()
        penalty = -self.reg * torch.linalg.vector_norm(widths)
        return torch.where((widths >= PENALTY_OFF_WIDTH).any(), torch.zeros_like(penalty), penalty)

    def eval_generator(self, device: torch.device) -> torch.Generator:
        if self._eval_generator is None or self._eval_generator.device != device:
            self._eval_generator = torch.Generator(device=device).manual_seed(self._eval_seed)
        return self._eval_generator

    def predict(self, model: nn.Module, x: torch.Tensor, to_log_probs: LogProbs) -> torch.Tensor:
        wrapper = self._find(model)
        n, j = x.shape[0], self.copies
        with wrapper.sampling(self.eval_generator(x.device)):
            log_probs = to_log_probs(model(x.repeat(j, 1, 1, 1)))
        return torch.logsumexp(log_probs.view(j, n, -1), dim=0) - math.log(j)

    def widths_by_name(self, model: nn.Module) -> dict[str, float]:
        wrapper = self._find(model)
        return dict(zip(wrapper.names, wrapper.widths().detach().cpu().tolist()))

    def epoch_log(self, model: nn.Module, epoch: int) -> dict[str, object]:
        return {"augerino_widths": self.widths_by_name(model)}

    def final_summary(self, model: nn.Module) -> dict[str, float]:
        w = self.widths_by_name(model)
        summary = {
            "learned_translation_x": TRANSLATION_SCALE * w["translation_x"] / 2.0,
            "learned_translation_y": TRANSLATION_SCALE * w["translation_y"] / 2.0,
            "learned_rotation_deg": math.degrees(w["rotation"]),
            "learned_scale": w["scale"],
            "learned_stretch": w["stretch"],
            "learned_shear": w["shear"],
        }
        if self.color:
            summary["learned_brightness"] = w["brightness"]
            summary["learned_contrast"] = w["contrast"]
        return summary
