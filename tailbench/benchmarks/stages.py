"""Two-stage runs: the stage-1 network that a spec's after-training parts work on (``ce`` for
``ce+crt``, ``ce+tau_norm`` or ``ce+posthoc_la``), trained once and shared through the asset
cache, then the spec's second stage (methods/stage.py) on it.

``<cache>/stage1/<dataset id>/<manifest sha256[:16]>-<key[:16]>-seed<seed>/model.pt`` holds a
finished stage-1 network: its weights, its per-epoch history and the sha256 of its weights. The
key covers everything that determines the network bit for bit: the dataset and its manifest, the
seed, the stage-1 spec with its hyper-parameters and the code of any part from outside tailbench,
the recipe's training fields, tailbench's code digest, torch's version, the device with its thread
count and, on the CPU, its vector instructions (docs/PERFORMANCE.md). Stage 1 runs exactly the
steps of a plain run of the stage-1 spec, so ``ce+posthoc_la@posthoc_la.tau=0`` reproduces the
``ce`` record, and a plain run offers its finished network to the cache as well (``publish``), so
``sade+sade_tta`` after ``sade`` trains only its own stage. While stage 1 trains, its checkpoints
live in the cache folder, so whichever run takes it up next resumes it; one process trains it and
the others wait for it. Stage 2 starts from the run's seed again, so it gives the same numbers
whether stage 1 was trained or loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable

import torch
import torch.nn as nn

from tailbench import asset_cache
from tailbench.benchmarks import provenance
from tailbench.benchmarks.checkpoint import Checkpointer
from tailbench.benchmarks.evaluation import per_class_accuracy, predict_log_probs
from tailbench.benchmarks.runtime import Runtime, seed_everything
from tailbench.benchmarks.trainer import epoch_record, train
from tailbench.datasets.base import LongTailedData, Split
from tailbench.devices import device_name
from tailbench.errors import UserError
from tailbench.methods import Batch, ComposedMethod, StepState
from tailbench.methods.registry import part_source
from tailbench.methods.stage import ClassifierStage
from tailbench.recipes.augment import crop_flip
from tailbench.recipes.recipe import Recipe
from tailbench.results.record_parts import EpochRecord
from tailbench.storage.locks import LockBusy, exclusive

STAGE1 = asset_cache.AssetKind(folder="stage1", final="model.pt", what="stage-1 model", redo="train stage 1 again")
TRAINING_FIELDS = ("model", "epochs", "batch_size", "lr", "momentum", "weight_decay", "nesterov",
                   "warmup_epochs", "milestones", "factors", "augment")
LOCK_WAIT = 7 * 24 * 3600.0  # seconds a run waits for another one training the same stage-1 network

Place = Callable[[], "tuple[nn.Module, Runtime]"]  # builds the stage-1 network on the run's device


@dataclass(frozen=True)
class Stage1Config:
    """What determines a stage-1 network, as the asset cache keys it."""

    fields: dict

    @property
    def digest(self) -> str:
        return asset_cache.config_digest(self.fields)

    def to_json(self) -> dict:
        return dict(self.fields)


def stage1_config(training: ComposedMethod, recipe: Recipe, device: torch.device) -> Stage1Config:
    recipe_fields = recipe.to_json()
    outside_code = {p.name: part_source(type(p)).sha256 for p in training.parts if part_source(type(p)).origin != "builtin"}
    fields = {
        "spec": training.spec,
        "hparams": json.dumps(training.hparams, sort_keys=True),
        "outside_code": json.dumps(outside_code, sort_keys=True),
        "recipe": json.dumps({k: recipe_fields[k] for k in TRAINING_FIELDS}, sort_keys=True),
        "code_sha256": provenance.code_digest(),
        "torch": str(torch.__version__),
        "device": device_name(device),
        "cpu_vector_isa": provenance.machine()["cpu_vector_isa"] if device.type == "cpu" else "",
    }
    return Stage1Config(fields)


def weights_sha256(model: nn.Module) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor of the state dict, in its order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class Stage1:
    model: nn.Module
    runtime: Runtime
    history: list[EpochRecord]
    step_kind: str
    record: dict  # the record's stages.representation


def stage1(
    training: ComposedMethod, data: LongTailedData, recipe: Recipe, device: torch.device, seed: int, place: Place,
    quiet: bool, reuse: bool, checkpoint_every: int | None, recipe_changes: dict[str, object] | None = None,
) -> Stage1:
    """The stage-1 network, from the cache or trained now (and then cached), under the recipe with
    the stage's `recipe_changes` (weight balancing's weight decay). With reuse=False (a rerun) it is
    trained afresh and the cache is neither read nor written."""
    recipe_changes = recipe_changes or {}
    recipe = replace(recipe, **recipe_changes)
    config, directory, ident = _cache_entry(training, data, recipe, device, seed)
    final = directory / STAGE1.final

    def record(sha: str) -> dict:
        return {"spec": training.spec, "hparams": training.hparams, "recipe_changes": dict(recipe_changes),
                "key": config.digest, "sha256": sha, "epochs": recipe.epochs}

    def trained(checkpointer: Checkpointer | None) -> Stage1:
        training.prepare(data)  # the very steps of a plain run of the stage-1 spec, in its order
        model, runtime = place()
        generator = torch.Generator(device=device).manual_seed(seed)
        history, step_kind = train(model, training, data.train, recipe, generator, runtime, quiet, checkpointer)
        return Stage1(model, runtime, history, step_kind, record(weights_sha256(model)))

    if not reuse:
        return trained(None)
    made: list[Stage1] = []

    def train_into_cache() -> None:
        asset_cache.write_config(directory, ident, {"device": str(device)})
        checkpointer = Checkpointer(directory, ident, datetime.now(timezone.utc).isoformat(), checkpoint_every, quiet)
        if not quiet:
            from tailbench.console import console

            console.print(f"stage 1: training {training.spec} (seed {seed}) into {directory}", soft_wrap=True)
        done = trained(checkpointer)
        _save(final, ident, done.model, done.record["sha256"], done.history, done.step_kind)
        checkpointer.clear()
        made.append(done)

    asset_cache.ensure_final(STAGE1, directory, train_into_cache, LOCK_WAIT)
    return made[0] if made else _load(final, ident, place, record)


def publish(training: ComposedMethod, data: LongTailedData, recipe: Recipe, device: torch.device, seed: int,
            model: nn.Module, history: list[EpochRecord], step_kind: str) -> bool:
    """Offer a plain run's trained network to the cache as the stage-1 network of its spec: a plain
    run takes exactly stage 1's steps (tests/test_two_stage.py), so a later run that adds
    after-training parts to the spec (`sade+sade_tta` after `sade`) trains only its own stage.
    Returns whether it was written: not when the cache holds it already or another process is
    training it (that one writes the same network)."""
    config, directory, ident = _cache_entry(training, data, recipe, device, seed)
    final = directory / STAGE1.final
    if final.is_file():
        return False
    try:
        with exclusive(asset_cache.entry_lock(directory)):
            if final.is_file():
                return False
            asset_cache.write_config(directory, ident, {"device": str(device)})
            _save(final, ident, model, weights_sha256(model), history, step_kind)
            return True
    except LockBusy:
        return False


def _cache_entry(training: ComposedMethod, data: LongTailedData, recipe: Recipe, device: torch.device, seed: int):
    config = stage1_config(training, recipe, device)
    directory = STAGE1.entry_dir(asset_cache.cache_root(), data.dataset_id, data.manifest_sha256, config, seed)
    return config, directory, asset_cache.identity(data.dataset_id, data.manifest_sha256, config, seed, data.image_shape)


def _save(final, ident: dict, model: nn.Module, sha256: str, history: list[EpochRecord], step_kind: str) -> None:
    asset_cache.save(final, {"identity": ident, "model": model.state_dict(), "sha256": sha256,
                             "history": [h.model_dump() for h in history], "step_kind": step_kind})


def _load(final, ident: dict, place: Place, record: Callable[[str], dict]) -> Stage1:
    model, runtime = place()
    payload = STAGE1.load(final, ident, next(model.parameters()).device)
    model.load_state_dict(payload["model"])
    sha = weights_sha256(model)
    if sha != payload["sha256"]:
        raise UserError(f"{final} holds weights whose sha256 is not the one it records; delete it to {STAGE1.redo}")
    return Stage1(model, runtime, [epoch_record(**h) for h in payload["history"]], str(payload["step_kind"]), record(sha))


# -- stage 2 ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageSchedule:
    """Stage 2's training settings, read by the trainer as it reads a recipe's: the recipe's batch,
    augmentation, momentum and weight decay; the stage's epochs; lr on a cosine schedule to 0."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    nesterov: bool
    augment: tuple[str, ...]

    @classmethod
    def of(cls, recipe: Recipe, stage: ClassifierStage, epochs: int) -> StageSchedule:
        decay = recipe.weight_decay if stage.stage_weight_decay is None else stage.stage_weight_decay
        return cls(epochs, recipe.batch_size, recipe.lr * stage.lr_scale, recipe.momentum, decay, recipe.nesterov, recipe.augment)

    def lr_factor(self, epoch: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))


class StageTraining:
    """The trainer's view of a second stage: the stage's sampling and loss, no batch augmentation
    from the spec's parts, the optimizer over the parameters the stage trains."""

    capture_safe = True

    def __init__(self, method: ComposedMethod, stage: ClassifierStage) -> None:
        self.method, self.stage = method, stage

    def not_capture_safe(self) -> list[str]:
        return []

    def step_variant(self, epoch: int) -> tuple:
        return ()

    def param_groups(self, model: nn.Module) -> list[dict]:
        return []

    def make_optimizer(self, groups: list[dict], recipe, device: torch.device) -> None:
        return None  # the recipe's SGD over the parameters that still require gradients

    def sampling_weights(self, epoch: int) -> torch.Tensor | None:
        return self.stage.sampling_weights(epoch)

    def loss_weights(self, epoch: int) -> None:
        return None

    def augment(self, batch: Batch, state: StepState) -> Batch:
        return self.stage.stage_augment(batch, state, crop_flip)

    def loss(self, model: nn.Module, logits: torch.Tensor, y: torch.Tensor, weights, epoch: int) -> torch.Tensor:
        return self.stage.stage_loss(self.method.loss_part, logits, y)

    def after_step(self, model: nn.Module) -> None:
        self.stage.after_step(model)

    def stops_after(self, model: nn.Module, epoch: int) -> bool:
        return self.stage.stops_after(model, epoch)

    @property
    def labels_hidden(self) -> bool:
        """Training accuracy means nothing against hidden (zeroed) labels: not shown, not kept."""
        return self.stage.trains_on != "train"

    def set_train_mode(self, model: nn.Module) -> None:
        model.train()
        if self.stage.frozen_batchnorm:
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def epoch_log(self, model: nn.Module, epoch: int) -> dict[str, object]:
        return dict(self.stage.epoch_log(model, epoch))

    def state_dict(self) -> dict:
        return {self.stage.name: self.stage.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.stage.load_state_dict(state.get(self.stage.name, {}))


def trainable_after_setup(stage: ClassifierStage, model: nn.Module) -> list[str]:
    """Run the stage's setup, freeze every other parameter, and return the trained parameters'
    names; one line when the stage freezes nothing or trains nothing over its epochs."""
    trainable = {id(p) for p in stage.setup(model)}
    names = [name for name, p in model.named_parameters() if id(p) in trainable]
    everything = [name for name, _ in model.named_parameters()]
    if everything and len(names) == len(everything):
        raise UserError(f"stage {stage.name} trains every parameter of the network (it freezes nothing); a second stage must "
                        "freeze the stage-1 network, at least in part: return only what it retrains from setup()")
    if len(names) != len(trainable):
        raise UserError(f"stage {stage.name}'s setup() returned parameters that are not the network's; install the new layer in it first")
    if stage.trains_parameters and not names:
        raise UserError(f"stage {stage.name} trains for epochs but its setup() returned no parameters; return what it trains, "
                        "or set trains_parameters = False")
    for name, p in model.named_parameters():
        p.requires_grad_(name in names)
    return names


def training_split(stage: ClassifierStage, data: LongTailedData) -> Split:
    """What stage 2 trains on: the training split, or the test images with their labels hidden."""
    if stage.trains_on == "train":
        return data.train
    return Split(data.test.x, torch.zeros_like(data.test.y))


def check_stage(stage: ClassifierStage, place: Place) -> None:
    """The stage's setup on a throwaway network, before stage 1 trains: a stage that freezes
    nothing is refused at once. Torch's random streams are left as they were."""
    with torch.random.fork_rng(devices=[]):
        model, _ = place()
        trainable_after_setup(stage, model)


def stage2(
    method: ComposedMethod, model: nn.Module, data: LongTailedData, recipe: Recipe, runtime: Runtime, seed: int,
    quiet: bool, checkpointer: Checkpointer | None,
) -> dict:
    """Run the spec's stage on the stage-1 network; the record's stages.classifier."""
    stage = method.stage
    assert stage is not None
    seed_everything(seed)
    generator = torch.Generator(device=runtime.device).manual_seed(seed)
    names = trainable_after_setup(stage, model)
    model.to(runtime.device, memory_format=runtime.torch_format)
    epochs = stage.stage_epochs(recipe.epochs)
    schedule = StageSchedule.of(recipe, stage, max(epochs, 1))
    history: list[EpochRecord] = []
    if epochs:
        if not quiet:
            from tailbench.console import console

            console.print(f"stage 2: {stage.name}, {epochs} epochs, training {', '.join(names)}", soft_wrap=True)
        history, _ = train(model, StageTraining(method, stage), training_split(stage, data), schedule, generator, runtime, quiet, checkpointer)

    def validation_balanced_accuracy() -> float:
        log_probs = predict_log_probs(method, model, data.val.x, runtime)
        return float(per_class_accuracy(log_probs, data.val.y, data.num_classes).nanmean())

    chosen = stage.finish(model, validation_balanced_accuracy)
    return {
        "part": stage.name, "epochs": epochs, "lr": schedule.lr if epochs else 0.0, "weight_decay": schedule.weight_decay if epochs else 0.0,
        "trains": names,
        "stopped_early": len(history) < epochs, "frozen_batchnorm": stage.frozen_batchnorm, "trained_on": stage.trains_on, "chosen": chosen, "history": [h.model_dump() for h in history],
    }
