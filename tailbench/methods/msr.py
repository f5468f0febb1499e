"""MSR: a meta-learned parameter-sharing pattern for the network's first convolution.

Zhou, Knowles and Finn, "Meta-learning Symmetries by Reparameterization", ICLR 2021. A layer's
weights are W = reshape(U v) (``tailbench.msr.layers``); U, learned across tasks, fixes which
weights are tied, and v, learned per task, fills them in. Used here to move the invariance the
head classes show to the tail:

1. ``prepare`` meta-trains (or loads from the cache, ``tailbench.msr.train``) the sharing matrix
   U_s of a convolution with ``copies`` copies per filter, on N-way K-shot episodes drawn from
   the classes with at least ``threshold`` training images. Support images are clean, query
   images get fresh draws of the dataset's own nuisance (``tailbench.msr.episodes``); the inner
   loop adapts v and the classifier, the outer loop U_s, v's initialisation and the rest of the
   small episode network (``tailbench.msr.meta``; ``order`` 2 differentiates through the inner
   steps, 1 does not).
2. ``wrap_model`` replaces the model's first convolution (the stem) by the same layer
   reparameterized with the learned U_s, frozen (a buffer), and v drawn afresh at the ordinary
   layer's scale. The run then trains v with the rest of the network on the whole long-tailed
   set under the recipe, so the spec's rule (drs, drw) applies as usual.

Defaults, by measurement (``ce+drs+msr``, fmnist-cpu recipe, seed 0, one CPU thread): first
order, because it learned the more equivariant sharing on both nuisances where one was measured
(``learned_nuisance_change`` 0.369 against 0.428 for second order on fmnist-rot-lt, 0.394 against
0.453 on fmnist-bg-lt, the ordinary layer 0.519 and 0.426) at three quarters of the cost (69 and
67 s of meta-training against 89 and 91 s), though second order fits the episodes better (final
query accuracy 0.47 against 0.39 on rot). 300 outer steps: on 900, the figure stops improving
after about 200 on rot and slowly worsens after 200 on bg.

The sharing matrix is a fixed asset of the dataset, like GIT's generator: every run seed uses
the same cached one (``meta_seed`` 0); ``meta_seed=-1`` gives each run seed its own.

What was learned goes into the record. In the first epoch's log: ``msr_meta_curve`` (per window
of outer steps, the mean query loss and accuracy after adaptation), ``msr_sharing`` (the cache
entry), ``msr_meta_seconds`` (what meta-training cost when it ran) and ``msr_meta_loaded``
(whether this run found it cached). In the summary, for the leaderboard:

- ``learned_nuisance_change``: how far the stem's responses fail to follow the nuisance
  (equivariance error relative to the change another image makes; 0: exactly) for random v
  under the learned U_s (``tailbench.msr.equivariance``), on 512 clean training images;
- ``learned_nuisance_change_ordinary``: the same for U_s = I, the ordinary layer;
- ``learned_sharing_rank``: how many of U_s's singular values exceed a tenth of the largest
  (``copies * kernel**2`` for the identity; fewer: weights tied together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailbench.errors import UserError
from tailbench.methods.base import MethodContext, MethodPart
from tailbench.methods.registry import register_method

if TYPE_CHECKING:  # torch and the MSR modules load with the run, not with the registry
    import torch
    import torch.nn as nn

    from tailbench.msr.layers import SharedConv2d

PROBE_IMAGES = 512  # clean training images the learned-invariance figures are measured on
PROBE_FILTERS = 64  # random filter parameters v per figure
POSITIVE_INTS = ("ways", "shots", "queries", "tasks", "meta_steps", "inner_steps", "copies", "kernel", "width", "threshold")


@register_method("msr")
class MetaLearnedSharing(MethodPart):
    kind = "augmentation"
    description = "meta-learned weight sharing (W = U v) for the first convolution: U from head-class episodes, then frozen"
    paper = "Zhou, Knowles & Finn, ICLR 2021 (MSR)"
    capture_safe = True  # no step hooks; the stem's forward is an einsum and a convolution
    hparams = {
        "threshold": 100,  # head classes: at least this many training images
        "ways": 5,  # classes per task
        "shots": 5,  # clean support images per class
        "queries": 10,  # nuisance-transformed query images per class
        "tasks": 4,  # tasks per outer step
        "meta_steps": 300,  # outer steps
        "inner_steps": 3,  # SGD steps on the support set per task
        "inner_lr": 0.1,
        "meta_lr": 0.001,  # Adam, outer loop: the episode network and v's initial values
        "sharing_lr": 0.01,  # Adam, outer loop: the sharing matrix (from the identity to a pattern)
        "order": 1,  # 1: first-order; 2: differentiate through the inner steps (see the module docstring)
        "copies": 4,  # copies of each filter the sharing may tie together
        "kernel": 3,  # the stem's kernel size (the CIFAR ResNets': 3)
        "width": 32,  # the episode network's trunk width
        "meta_seed": 0,  # shared by every run seed; -1: the run's seed
    }

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        for key in POSITIVE_INTS:
            if int(hp[key]) < 1:  # type: ignore[call-overload]
                raise UserError(f"--hp msr.{key}={hp[key]} must be a positive integer")
        if int(hp["ways"]) < 2:  # type: ignore[call-overload]
            raise UserError(f"--hp msr.ways={hp['ways']}: a task needs at least 2 classes")
        if int(hp["kernel"]) % 2 == 0:  # type: ignore[call-overload]
            raise UserError(f"--hp msr.kernel={hp['kernel']} must be odd (the stem pads kernel // 2 on each side)")
        for key in ("inner_lr", "meta_lr", "sharing_lr"):
            if not float(hp[key]) > 0:  # type: ignore[arg-type]
                raise UserError(f"--hp msr.{key}={hp[key]} must be positive")
        if int(hp["order"]) not in (1, 2):  # type: ignore[call-overload]
            raise UserError(f"--hp msr.order={hp['order']} must be 1 (first-order) or 2 (second-order)")
        if int(hp["meta_seed"]) < -1:  # type: ignore[call-overload]
            raise UserError(f"--hp msr.meta_seed={hp['meta_seed']} must be -1 (the run's seed) or a seed")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        import torch

        from tailbench.msr.meta import MetaConfig

        if ctx.nuisance is None:
            raise UserError("msr meta-trains on nuisance-transformed queries: use a dataset with a known nuisance (e.g. fmnist-rot-lt)")
        counts = ctx.class_counts.cpu()
        threshold, largest = int(hp["threshold"]), int(counts.max())  # type: ignore[call-overload]
        def named(key: str) -> str:  # the setting as the user gave it, or as the default it is
            return f"--hp msr.{key}={hp[key]}" if hp[key] != type(self).hparams[key] else f"msr's default {key}={hp[key]}"

        if threshold > largest:
            raise UserError(f"{named('threshold')} is above the largest class ({largest} training images): "
                            f"no head class to meta-train on; pass --hp msr.threshold={largest} or less")
        self.head_classes = [int(c) for c in torch.nonzero(counts >= threshold).flatten()]
        if int(hp["ways"]) > len(self.head_classes):  # type: ignore[call-overload]
            lower = sorted(counts.tolist(), reverse=True)[min(int(hp["ways"]), len(counts)) - 1]  # type: ignore[call-overload]
            raise UserError(f"{named('ways')} needs that many head classes to meta-train on, and this dataset has "
                            f"{len(self.head_classes)} with {named('threshold')} training images or more; pass "
                            f"--hp msr.threshold={lower} (so that its {int(hp['ways'])} largest classes count) or a smaller --hp msr.ways")
        per_class = int(hp["shots"]) + int(hp["queries"])  # type: ignore[call-overload]
        smallest = int(counts[self.head_classes].min())
        if per_class > smallest:
            raise UserError(f"{named('shots')} + {named('queries')} = {per_class} images per class, but the smallest head class "
                            f"has {smallest}; lower them or raise --hp msr.threshold")
        ints = {key: int(hp[key]) for key in POSITIVE_INTS + ("order",)}  # type: ignore[call-overload]
        self.config = MetaConfig(
            ways=ints["ways"], shots=ints["shots"], queries=ints["queries"], tasks=ints["tasks"],
            steps=ints["meta_steps"], inner_steps=ints["inner_steps"], inner_lr=float(hp["inner_lr"]),  # type: ignore[arg-type]
            meta_lr=float(hp["meta_lr"]), sharing_lr=float(hp["sharing_lr"]), order=ints["order"],  # type: ignore[arg-type]
            copies=ints["copies"], kernel=ints["kernel"], width=ints["width"], threshold=threshold,
        )
        self.meta_seed = ctx.seed if int(hp["meta_seed"]) == -1 else int(hp["meta_seed"])  # type: ignore[call-overload]
        self.result = None
        self.figures: dict[str, float] = {}
        self.stem: SharedConv2d | None = None

    def prepare(self, data) -> None:
        from tailbench.msr.episodes import EpisodeSampler
        from tailbench.msr.train import train_or_load
        from tailbench.nuisance import get_family

        if data.nuisance is None or data.train_clean is None:
            raise UserError(f"dataset {data.dataset_id} has no known nuisance; msr needs one (e.g. fmnist-rot-lt)")
        family = get_family(data.nuisance)
        clean = data.train_clean
        pixels = clean.float().div(255.0).transpose(0, 1).flatten(1)
        mean, std = pixels.mean(1), pixels.std(1)
        sampler = EpisodeSampler(clean, data.train.y, self.head_classes, self.config.ways, self.config.shots,
                                 self.config.queries, family)
        self.result = train_or_load(sampler, data.image_shape, mean, std, data.dataset_id, data.manifest_sha256,
                                    self.config, self.meta_seed)
        self.figures = self._measure(clean, family, mean, std)

    def _measure(self, clean: torch.Tensor, family, mean: torch.Tensor, std: torch.Tensor) -> dict[str, float]:
        import torch

        from tailbench.msr.equivariance import equivariance_error
        from tailbench.msr.layers import sharing_rank

        device = clean.device
        draws = torch.Generator(device=device).manual_seed(self.meta_seed)
        chosen = torch.randperm(clean.shape[0], generator=draws, device=device)[:PROBE_IMAGES]
        images = clean[chosen].float().div(255.0)
        params = family.sample(images.shape[0], draws)

        def error(sharing: torch.Tensor) -> float:
            filters = torch.Generator().manual_seed(self.meta_seed)  # the same random v for both figures
            return equivariance_error(sharing, self.config.copies, self.config.kernel, images, family, params,
                                      mean, std, PROBE_FILTERS, filters)

        sharing = self.result.sharing
        return {
            "learned_nuisance_change": error(sharing),
            "learned_nuisance_change_ordinary": error(torch.eye(sharing.shape[0])),
            "learned_sharing_rank": float(sharing_rank(sharing)),
        }

    def wrap_model(self, model: nn.Module) -> nn.Module:
        import torch
        import torch.nn as nn

        from tailbench.msr.layers import SharedConv2d

        if self.result is None:
            raise RuntimeError("msr.wrap_model called before prepare")
        name, conv = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), (None, None))
        if conv is None:
            raise UserError("msr reparameterizes the model's first convolution, and this model has none")
        k, copies = self.config.kernel, self.config.copies
        if conv.kernel_size != (k, k) or conv.out_channels % copies or conv.groups != 1:
            raise UserError(
                f"msr: the model's first convolution ({name}: {conv.out_channels} channels, kernel {conv.kernel_size}) "
                f"does not take sharing meta-learned for kernel {k} with {copies} copies; set msr.kernel / msr.copies to fit"
            )
        shared = SharedConv2d.from_conv(conv, copies)
        generator = torch.Generator(device=conv.weight.device).manual_seed(self.ctx.seed)
        shared.freeze_sharing(self.result.sharing, generator)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, shared)
        self.stem = shared
        return model

    def epoch_log(self, model: nn.Module, epoch: int) -> dict[str, object]:
        if epoch != 0 or self.result is None:
            return {}
        directory = self.result.directory
        return {
            "msr_meta_curve": self.result.curve,
            "msr_sharing": f"{directory.parent.name}/{directory.name}",
            "msr_meta_seconds": self.result.seconds,
            "msr_meta_loaded": self.result.loaded,
        }

    def final_summary(self, model: nn.Module) -> dict[str, float]:
        return dict(self.figures)
