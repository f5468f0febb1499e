"""The oracle: augmentation with the dataset's own nuisance family, the invariance known exactly.

A nuisance dataset (``fmnist-rot-lt``, ``fmnist-bg-lt``, ``digits-rot-lt``, ...) bakes one fixed
draw of its family into every image. The oracle replaces each training image by a FRESH draw of
that family applied to the image before the fixed draw (``LongTailedData.train_clean``), with the
same ``NuisanceFamily`` objects that built the dataset and that eKLD measures. It cannot transform
the already-transformed image instead: a second background draw finds no zero pixels left, and a
second dilation compounds the first.

``max_class_size`` (default 0: every class) restricts it to classes with fewer training images
than that; images of larger classes keep the dataset's fixed draw.

Interaction with the recipe's standard augmentation: the trainer applies it (crop / flip) before
the method's ``augment`` hook, and the oracle recomputes the images it transforms from the clean
ones, so those images do not get the standard augmentation; images it leaves alone keep it. The
recipes of every nuisance dataset (``fmnist``, ``fmnist-cpu``, ``digits``) have no standard
augmentation, so nothing is lost there; with a recipe that has one, the oracle's images are the
nuisance alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailbench.errors import UserError
from tailbench.methods.base import Batch, MethodContext, MethodPart, StepState
from tailbench.methods.registry import register_method

if TYPE_CHECKING:
    import torch

    from tailbench.nuisance import NuisanceFamily


@register_method("oracle")
class OracleNuisance(MethodPart):
    kind = "augmentation"
    capture_safe = True
    description = "fresh draws of the dataset's own nuisance on the clean train images (all classes or small ones)"
    paper = "- (oracle reference)"
    hparams = {"max_class_size": 0}

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        if int(hp["max_class_size"]) < 0:  # type: ignore[call-overload]
            raise UserError(f"--hp oracle.max_class_size={hp['max_class_size']} must be >= 0 (0: every class)")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        self.max_class_size = int(hp["max_class_size"])  # type: ignore[call-overload]
        self.family: NuisanceFamily | None = None
        self.clean: torch.Tensor | None = None
        # Per class: True where the oracle transforms the images; None for every class.
        self.targets: torch.Tensor | None = None

    def prepare(self, data) -> None:
        from tailbench.nuisance import get_family

        if data.nuisance is None or data.train_clean is None:
            raise UserError(
                f"dataset {data.dataset_id} has no known nuisance; the oracle needs one (e.g. fmnist-rot-lt)"
            )
        self.family = get_family(data.nuisance)
        self.clean = data.train_clean
        if self.max_class_size > 0:
            self.targets = self.ctx.class_counts.to(self.clean.device) < self.max_class_size

    def augment(self, batch: Batch, state: StepState) -> Batch:
        import torch

        if self.family is None or self.clean is None:
            raise RuntimeError("the oracle's prepare(data) must run before training")
        clean = self.clean[batch.idx].to(batch.x.dtype).div_(255.0)
        fresh = self.family(clean, state.generator)
        if self.targets is not None:
            fresh = torch.where(self.targets[batch.y].view(-1, 1, 1, 1), fresh, batch.x)
        return Batch(fresh, batch.y, batch.idx)
