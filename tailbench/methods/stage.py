"""A second stage of training on the network that stage 1 trained (decoupled training: Kang et
al., "Decoupling Representation and Classifier for Long-Tailed Recognition", ICLR 2020).

A stage part (kind ``stage``, last in its spec, at most one) says what stage 2 does; the harness
(benchmarks/stages.py) runs it on the stage-1 network, which the rest of the spec trains once per
dataset, recipe and seed and which every spec sharing that rest reuses from the asset cache.

- ``setup(model)``: change the network for stage 2 (re-initialise, rescale or wrap its
  classifier) and return the parameters stage 2 trains; every other parameter is frozen. A stage
  that trains every parameter is refused: it would be a second stage 1, not a decoupled one.
- ``stage_epochs(recipe_epochs)``: stage 2's epochs; 0 trains nothing (e.g. tau-normalisation).
- ``lr_scale``: stage 2's lr as a multiple of the recipe's, on the paper's cosine schedule to 0
  over its epochs; SGD with the recipe's momentum and weight decay.
- ``sampling_weights(epoch)``: per-class sampling weights; by default class-aware sampling
  (each class equally likely, each image uniform within its class: weight 1/n_c).
- ``trains_on``: the training split (default), or the test split's images with their labels
  hidden (SADE's test-time aggregation; the record says so);
- ``stage_augment(batch, state, view)``: stage 2's batch augmentation (SADE: two views);
- ``stage_loss(loss_part, logits, y)``: by default the spec's own loss, without class weights.
- ``frozen_batchnorm``: whether BatchNorm keeps stage 1's running statistics (True, the default:
  the features stay exactly stage 1's, which is what the benchmark asks about; the official
  classifier-balancing code leaves the network in train mode, so its statistics drift under the
  class-aware sampler; ``frozen_bn=false`` does that).
- ``stage1_recipe``: recipe fields stage 1 trains under instead of the recipe's (weight
  balancing's large weight decay); they are part of the stage-1 network's cache key and record.
- ``stage_weight_decay``: stage 2's weight decay (None: the recipe's).
- ``stops_after(model, epoch)``: end stage 2 after this epoch (an early stop the paper's code makes);
- ``after_step(model)``: after every stage-2 optimizer step (a projection such as MaxNorm), as
  tensor operations only.
- ``finish(model, score)``: after training, e.g. choose a hyper-parameter by ``score()``, the
  validation split's balanced accuracy of the method's predictions, never the test split's;
  returns what it chose, which the record keeps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, ClassVar

from tailbench.errors import UserError
from tailbench.methods.base import Batch, MethodPart, StepState

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

# The decoupling paper's stage 2: 10 epochs after a 90-epoch stage 1 (ImageNet-LT), at stage 1's
# lr, cosine to 0 (facebookresearch/classifier-balancing, config/ImageNet_LT/stage_2_crt.yaml).
PAPER_STAGE_EPOCHS, PAPER_STAGE1_EPOCHS = 10, 90
STAGE_HPARAMS = {"epochs": 0, "lr_scale": 1.0, "frozen_bn": True}


class ClassifierStage(MethodPart):
    kind = "stage"
    after_training = True
    capture_safe = True  # the stage-2 step is the spec's loss on a plain forward pass
    trains_parameters: ClassVar[bool] = True  # False for a stage that only rescales (no epochs)
    paper_epochs: ClassVar[tuple[int, int]] = (PAPER_STAGE_EPOCHS, PAPER_STAGE1_EPOCHS)  # stage 2 of stage 1 in the paper
    trains_on: ClassVar[str] = "train"  # or "test images, unlabeled" (SADE's test-time aggregation): the labels are hidden
    # What the stage does with the class vectors' norms, for a stage that needs a linear classifier
    # ("rescales", "balances"): refused after a loss whose cosine classifier normalises them away.
    uses_norms: ClassVar[str] = ""

    @classmethod
    def check_spec(cls, spec: str, parts: list[type[MethodPart]]) -> None:
        if cls.uses_norms and parts[0].name == "ldam":
            raise UserError(f"method spec {spec!r}: {cls.name} {cls.uses_norms} the norms of the classifier's class vectors, "
                            "which ldam's cosine classifier normalises away; use crt or lws after ldam")

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        if "epochs" in hp and int(hp["epochs"]) < 0:  # type: ignore[arg-type]
            raise UserError(f"--hp {cls.name}.epochs={hp['epochs']} must be 0 (the paper's share of the recipe's epochs) or more")
        if "lr_scale" in hp and not 0 < float(hp["lr_scale"]) <= 100:  # type: ignore[arg-type]
            raise UserError(f"--hp {cls.name}.lr_scale={hp['lr_scale']} must be above 0 and at most 100 (stage 2's lr over the recipe's)")

    def stage_epochs(self, recipe_epochs: int) -> int:
        if not self.trains_parameters:
            return 0
        chosen = int(self.hp.get("epochs", 0))  # type: ignore[arg-type]
        return chosen or paper_stage_epochs(recipe_epochs, *self.paper_epochs)

    @property
    def stage1_recipe(self) -> dict[str, object]:
        return {}

    @property
    def stage_weight_decay(self) -> float | None:
        return None

    def after_step(self, model: nn.Module) -> None:
        pass

    def stops_after(self, model: nn.Module, epoch: int) -> bool:
        """Whether stage 2 ends after this epoch, before its last (SADE's test-time stage stops once an
        expert's weight falls below 0.05, as the official loop does)."""
        return False

    @property
    def lr_scale(self) -> float:
        return float(self.hp.get("lr_scale", 1.0))  # type: ignore[arg-type]

    @property
    def frozen_batchnorm(self) -> bool:
        return bool(self.hp.get("frozen_bn", True))

    def setup(self, model: nn.Module) -> list[torch.nn.Parameter]:
        raise NotImplementedError(f"{self.name} does not say what stage 2 trains (setup)")

    def sampling_weights(self, epoch: int) -> torch.Tensor | None:
        return 1.0 / self.ctx.class_counts.double().clamp_min(1)

    def stage_augment(self, batch: Batch, state: StepState, view: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> Batch:
        """Stage 2's batch augmentation (default none); `view` is the recipes' crop-and-flip."""
        return batch

    def stage_loss(self, loss_part: MethodPart, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_part.loss(logits, y, None)

    def finish(self, model: nn.Module, score: Callable[[], float]) -> dict[str, object]:
        return {}


def paper_stage_epochs(recipe_epochs: int, stage: int = PAPER_STAGE_EPOCHS, stage1: int = PAPER_STAGE1_EPOCHS) -> int:
    """Stage 2's epochs at the paper's ratio (decoupling: 10 of 90), at least 1: the fmnist recipe's 50 give 6."""
    return max(1, round(recipe_epochs * stage / stage1))


def linear_classifier_of(model: nn.Module, part: str) -> nn.Linear:
    """The backbone's classifier, which must be linear (a stage that works on its class vectors)."""
    import torch.nn as nn

    classifier = classifier_of(model, part)
    if not isinstance(classifier, nn.Linear):
        raise UserError(f"{part} needs a linear classifier; the network has a {type(classifier).__name__}")
    return classifier


def classifier_of(model: nn.Module, part: str) -> nn.Module:
    """The backbone's classifier (timm's get_classifier), or one line saying there is none."""
    from tailbench.models.wrappers import backbone_of

    backbone = backbone_of(model)
    getter = getattr(backbone, "get_classifier", None)
    if getter is None:
        raise UserError(f"{part} works on the network's classifier; {type(backbone).__name__} has no get_classifier()")
    return getter()
