"""Augerino: a learned uniform distribution over affine transforms (Benton et al., NeurIPS 2020).

The model is wrapped so that, in training, every image passes through one affine transform drawn
from the learned distribution before the network sees it:

- six Lie-algebra generators G_k of the affine group acting on homogeneous 2-D coordinates
  (translation x and y, scaled by 0.1; rotation; isotropic scale; stretch; shear);
- widths w = softplus(raw); per image eps_k = w_k * (u_k - 0.5) with u_k ~ U(0, 1), i.e.
  eps_k ~ U(-w_k / 2, w_k / 2), written so that gradients reach ``raw``;
- T = matrix_exp(sum_k eps_k G_k) (3 x 3, batched), whose top two rows warp the image through
  ``affine_grid`` / ``grid_sample`` in normalised coordinates, zeros outside;
- optionally (``color=true``) two more learned ranges: an additive brightness offset and a
  log-contrast factor around each image's mean, the result clipped to [0, 1].

Where the widths start (``init``): ``zero`` (default) is raw = 0 for every generator, the
reference's ``UniformAug`` default (every width ln 2); ``rotmnist`` is the reference's
rotated-MNIST start (raw -5 for every generator but rotation, whose raw is 1: widths 0.0067 and
1.313 rad, about 75 degrees); a number starts every width at that value (in generator units).

The loss is the spec's loss part plus ``-reg * ||w||_2`` (the ``regularizer`` hook), dropped once
any width reaches 10 so that widths cannot grow without bound. ``reg`` defaults to 0.01, the
paper's CIFAR value; it used 0.1 for rotated MNIST (``--hp augerino.reg=0.1``). The widths sit in
their own optimizer group without weight decay (decay would pull them towards softplus(0)).

The optimizer (``optimizer``): ``adam`` (default) trains the model and the widths jointly with
Adam, as every one of the reference's training scripts does: betas (0.9, 0.999), eps 1e-8, one
learning rate for both (``lr``, default 0.01, the reference's CIFAR-10 default; its rotated-MNIST
script defaults to 0.1) and L2 weight decay ``weight_decay`` (default 1e-4, the reference's) on the
model, none on the widths. The recipe keeps the rest: epochs, batch size, and its lr schedule,
whose warmup and milestone factors multiply Adam's lr as they multiply SGD's (the reference ran a
constant lr; here every method on a benchmark shares the recipe's schedule, and DRW/DRS-style
rules switch at its first decay). ``recipe`` is tailbench's earlier behaviour: the recipe's SGD
(lr, momentum, Nesterov, weight decay) for the model and the widths alike; the recipe's ``--lr``
sets SGD's lr, not Adam's (use ``--hp augerino.lr``).

Evaluation (accuracy and eKLD, both through the ``predict`` hook) draws ``copies`` transforms per
image (default 4, the reference's ``ncopies``) and averages them (``average``):

- ``logprob`` (default): the mean of the J log-probabilities, as the reference's
  ``AugAveragedModel`` does in eval mode, renormalised, log p = log_softmax(mean_j log p_j) (a
  normalised geometric mean). The reference returns the mean unnormalised; renormalising shifts
  each image's row by one constant, so argmax and accuracy are the reference's, while eKLD and the
  confidences read a distribution that sums to 1, which a KL divergence needs;
- ``prob``: the mean of the probabilities, log p = logsumexp_j log p_j - log J (tailbench's earlier
  choice).

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

Reference: g-benton/learning-invariances (commit 7de74fe): Adam, ``weight_decay`` args.wd on the
model and 0 on the widths, one lr, in experiments/cifar10/train_augerino.py lines 34-40 (lr default
0.01, line 121; wd 1e-4, line 134) and experiments/rotmnist/runner.py lines 24-26 (lr 0.1, line 94;
wd 1e-4, line 107); the rotated-MNIST start in experiments/rotmnist/runner.py lines 15-17; the
eval-mode mean of log-softmaxes in augerino/models/aug_modules.py, ``AugAveragedModel.forward``
(lines 48-50).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tailbench.errors import UserError
from tailbench.methods.base import Batch, LogProbs, MethodContext, MethodPart, StepState
from tailbench.methods.registry import register_method

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from tailbench.recipes.recipe import Recipe
    from tailbench.models.augerino import AugerinoAugment

OPTIMIZERS = ("adam", "recipe")
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch's defaults, which the reference keeps
AVERAGES = ("logprob", "prob")
# Starting raw values (the widths are softplus(raw)) as (every other generator, rotation).
INIT_PRESETS: dict[str, tuple[float, float]] = {"zero": (0.0, 0.0), "rotmnist": (-5.0, 1.0)}


def parse_init(value: object) -> str | float:
    """A preset name from INIT_PRESETS, or the positive width every generator starts at."""
    name = str(value).strip().lower()
    if name in INIT_PRESETS:
        return name
    try:
        width = float(name)
    except ValueError:
        raise UserError(f"--hp augerino.init={value}: not a preset ({', '.join(INIT_PRESETS)}) nor a number (a starting width)") from None
    if not (math.isfinite(width) and width > 0):
        raise UserError(f"--hp augerino.init={value}: a starting width must be a finite number above 0")
    return width


def starting_raw(init: str | float, names: tuple[str, ...]) -> list[float]:
    """raw for each generator in `names` under a parsed ``init``."""
    if isinstance(init, float):
        return [init + math.log(-math.expm1(-init))] * len(names)  # softplus^-1
    others, rotation = INIT_PRESETS[init]
    return [rotation if name == "rotation" else others for name in names]


@register_method("augerino")
class Augerino(MethodPart):
    kind = "augmentation"
    description = "learned uniform distribution over affine transforms (6 Lie generators), J-copy averaged evaluation"
    paper = "Benton et al., NeurIPS 2020"
    hparams = {
        "reg": 0.01, "copies": 4, "color": False, "init": "zero",
        "optimizer": "adam", "lr": 0.01, "weight_decay": 1e-4, "average": "logprob",
    }
    overrides_predict = True
    # torch.linalg.matrix_exp reads the matrices' norms on the host to pick its approximation: a
    # sync no CUDA graph can hold. Augerino's steps run eagerly.
    capture_safe = False

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        if int(hp["copies"]) < 1:  # type: ignore[call-overload]
            raise UserError(f"--hp augerino.copies={hp['copies']}: the number of evaluation copies must be at least 1")
        if hp["optimizer"] not in OPTIMIZERS:
            raise UserError(f"--hp augerino.optimizer={hp['optimizer']}: not one of {', '.join(OPTIMIZERS)} (adam: the reference's; recipe: the recipe's SGD)")
        if hp["average"] not in AVERAGES:
            raise UserError(f"--hp augerino.average={hp['average']}: not one of {', '.join(AVERAGES)} (logprob: the reference's mean of log-probabilities; prob: mean of probabilities)")
        lr, decay = float(hp["lr"]), float(hp["weight_decay"])  # type: ignore[arg-type]
        if not (math.isfinite(lr) and lr > 0):
            raise UserError(f"--hp augerino.lr={hp['lr']}: Adam's learning rate must be a finite number above 0")
        if not (math.isfinite(decay) and decay >= 0):
            raise UserError(f"--hp augerino.weight_decay={hp['weight_decay']}: must be a finite number, 0 or more")
        parse_init(hp["init"])

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.reg = float(hp["reg"])  # type: ignore[arg-type]
        self.copies = int(hp["copies"])  # type: ignore[call-overload]
        self.color = bool(hp["color"])
        self.init = parse_init(hp["init"])
        self.optimizer_name = str(hp["optimizer"])
        self.lr = float(hp["lr"])  # type: ignore[arg-type]
        self.weight_decay = float(hp["weight_decay"])  # type: ignore[arg-type]
        self.average = str(hp["average"])
        self.wrapper: AugerinoAugment | None = None
        self._eval_seed = (ctx.seed * 1_000_003 + 0xA06E) % (2**63)
        self._eval_generator: torch.Generator | None = None

    def _find(self, model: nn.Module) -> AugerinoAugment:
        from tailbench.models.augerino import find_augerino

        return self.wrapper if self.wrapper is not None else find_augerino(model)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        from tailbench.models.augerino import AFFINE_NAMES, COLOR_NAMES, AugerinoAugment

        names = AFFINE_NAMES + (COLOR_NAMES if self.color else ())
        self.wrapper = AugerinoAugment(model, color=self.color, seed=self._eval_seed + 1, raw=starting_raw(self.init, names))
        return self.wrapper

    def param_groups(self, model: nn.Module) -> list[dict]:
        return [{"params": [self._find(model).raw], "weight_decay": 0.0}]

    def make_optimizer(self, groups: list[dict], recipe: Recipe, device: torch.device) -> torch.optim.Optimizer | None:
        """Adam over the model and the widths (whose group keeps weight decay 0), or None: the
        recipe's SGD."""
        if self.optimizer_name == "recipe":
            return None
        import torch

        fused = {"fused": True} if device.type == "cuda" else {}
        return torch.optim.Adam(groups, lr=self.lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=self.weight_decay, **fused)

    def augment(self, batch: Batch, state: StepState) -> Batch:
        if self.wrapper is not None:
            self.wrapper.generator = state.generator  # the forward pass that follows draws from it
        return batch

    def regularizer(self, model: nn.Module, epoch: int) -> torch.Tensor | None:
        import torch

        from tailbench.models.augerino import PENALTY_OFF_WIDTH

        widths = self._find(model).widths()
        penalty = -self.reg * torch.linalg.vector_norm(widths)
        return torch.where((widths >= PENALTY_OFF_WIDTH).any(), torch.zeros_like(penalty), penalty)

    def eval_generator(self, device: torch.device) -> torch.Generator:
        import torch

        if self._eval_generator is None or self._eval_generator.device != device:
            self._eval_generator = torch.Generator(device=device).manual_seed(self._eval_seed)
        return self._eval_generator

    def predict(self, model: nn.Module, x: torch.Tensor, to_log_probs: LogProbs) -> torch.Tensor:
        import torch

        wrapper = self._find(model)
        n, j = x.shape[0], self.copies
        with wrapper.sampling(self.eval_generator(x.device)):
            log_probs = to_log_probs(model(x.repeat(j, 1, 1, 1))).view(j, n, -1)  # copy-major, as the reference's cat
        if self.average == "prob":
            return torch.logsumexp(log_probs, dim=0) - math.log(j)
        return log_probs.mean(dim=0).log_softmax(dim=1)

    def widths_by_name(self, model: nn.Module) -> dict[str, float]:
        wrapper = self._find(model)
        return dict(zip(wrapper.names, wrapper.widths().detach().cpu().tolist()))

    def epoch_log(self, model: nn.Module, epoch: int) -> dict[str, object]:
        return {"augerino_widths": self.widths_by_name(model)}

    def final_summary(self, model: nn.Module) -> dict[str, float]:
        from tailbench.models.augerino import TRANSLATION_SCALE

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
