"""A method spec's parts composed into the single object the harness talks to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tailbench.errors import UserError
from tailbench.methods.base import Batch, MethodContext, MethodPart, StepState
from tailbench.methods.registry import changed_hparams, parse_spec, part_source, resolve_hparams

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

    from tailbench.recipes.recipe import Recipe


class ComposedMethod:
    def __init__(self, spec: str, ctx: MethodContext, hp_overrides: dict[str, str] | None = None) -> None:
        classes = parse_spec(spec)
        self.spec = spec
        self.hparams = resolve_hparams(classes, hp_overrides or {})
        self.changed = changed_hparams(classes, self.hparams)  # what makes this run a variant of the spec
        self._use([cls(ctx, self.hparams[cls.name]) for cls in classes])

    def _use(self, parts: list[MethodPart]) -> None:
        self.parts = parts
        self.loss_part = parts[0]
        self.rule = next((p for p in parts if p.kind == "rule"), None)
        self.augmentations = [p for p in parts if p.kind == "augmentation" and not p.after_training]
        self.predictor = next((p for p in parts if p.overrides_predict), self.loss_part)
        self.stage = next((p for p in parts if p.kind == "stage"), None)
        self.after_training = [p for p in parts if p.after_training]

    def training_view(self) -> ComposedMethod:
        """The spec without its after-training parts (stage 1; the same part objects), or itself."""
        if not self.after_training:
            return self
        view = object.__new__(ComposedMethod)
        kept = [p for p in self.parts if not p.after_training]
        names = {p.name for p in kept}
        view.spec = "+".join(p.name for p in kept)
        view.hparams = {name: hp for name, hp in self.hparams.items() if name in names}
        view.changed = {k: v for k, v in self.changed.items() if k.partition(".")[0] in names}
        view._use(kept)
        return view

    labels_hidden = False  # a spec's own training reads its labels (a second stage may train on unlabeled images)

    def stops_after(self, model: nn.Module, epoch: int) -> bool:
        """Whether training ends after this epoch, before the recipe's last: never for a spec's own training."""
        return False

    def after_step(self, model: nn.Module) -> None:
        """After each optimizer step: nothing for a spec's own training (a second stage may project)."""

    def set_train_mode(self, model: nn.Module) -> None:
        """Put the model in training mode for an epoch (a second stage may keep parts of it in eval mode)."""
        model.train()

    @property
    def capture_safe(self) -> bool:
        return all(part.capture_safe for part in self.parts)

    def not_capture_safe(self) -> list[str]:
        return [part.name for part in self.parts if not part.capture_safe]

    def step_variant(self, epoch: int) -> tuple:
        return tuple(part.step_variant(epoch) for part in self.parts)

    def prepare(self, data) -> None:
        for part in self.parts:
            part.prepare(data)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        for part in self.parts:
            model = part.wrap_model(model)
        return model

    def param_groups(self, model: nn.Module) -> list[dict]:
        return [group for part in self.parts for group in part.param_groups(model)]

    def make_optimizer(self, groups: list[dict], recipe: Recipe, device: torch.device) -> torch.optim.Optimizer | None:
        """The optimizer a part declares, or None for the recipe's."""
        made = [(part.name, opt) for part in self.parts if (opt := part.make_optimizer(groups, recipe, device)) is not None]
        if len(made) > 1:
            raise UserError(f"method spec {self.spec!r}: {' and '.join(name for name, _ in made)} each bring their own optimizer; at most one part may")
        return made[0][1] if made else None

    def sampling_weights(self, epoch: int) -> torch.Tensor | None:
        return None if self.rule is None else self.rule.sampling_weights(epoch)

    def loss_weights(self, epoch: int) -> torch.Tensor | None:
        return None if self.rule is None else self.rule.loss_weights(epoch)

    def augment(self, batch: Batch, state: StepState) -> Batch:
        for part in self.augmentations:
            labels = batch.y.ndim
            batch = part.augment(batch, state)
            if batch.y.ndim != labels and not part.mixes_labels:  # shapes only: no host sync
                raise UserError(
                    f"method part {part.name!r} turned the batch's labels from [B] class indices into a {tuple(batch.y.shape)} "
                    "matrix without declaring it; set mixes_labels = True on the part (and use a loss with soft_targets)"
                )
        return batch

    def loss(self, model: nn.Module, logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None, epoch: int) -> torch.Tensor:
        total = self.loss_part.loss(logits, y, weights)
        for part in self.parts:
            term = part.regularizer(model, epoch)
            if term is not None:
                total = total + term
        return total

    def predict(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities for a batch of [0, 1] images (eval mode is the caller's job)."""
        return self.predictor.predict(model, x, self.loss_part.to_log_probs)

    def epoch_log(self, model: nn.Module, epoch: int) -> dict[str, object]:
        return {k: v for part in self.parts for k, v in part.epoch_log(model, epoch).items()}

    def final_summary(self, model: nn.Module) -> dict[str, float]:
        return {k: v for part in self.parts for k, v in part.final_summary(model).items()}

    def state_dict(self) -> dict:
        return {part.name: part.state_dict() for part in self.parts}

    def load_state_dict(self, state: dict) -> None:
        for part in self.parts:
            part.load_state_dict(state.get(part.name, {}))

    def describe(self) -> dict[str, object]:
        return {
            "spec": self.spec,
            "parts": [{"name": p.name, "kind": p.kind, "paper": p.paper, **part_source(type(p)).to_record()} for p in self.parts],
            "hparams": self.hparams,
            "changed": self.changed,
        }
