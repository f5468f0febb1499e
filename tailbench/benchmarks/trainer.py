"""The training loop: index gathers from device tensors, method hooks, one sync per display tick."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from tailbench.benchmarks.augment import compose
from tailbench.benchmarks.progress import EpochProgress
from tailbench.benchmarks.recipe import Recipe
from tailbench.datasets.base import Split
from tailbench.errors import UserError
from tailbench.methods import Batch, ComposedMethod, StepState

DISPLAY_EVERY = 20  # steps between progress-bar updates (each one reads the running sums)


@dataclass
class EpochRecord:
    epoch: int
    lr: float
    loss: float
    train_acc: float
    images_per_s: float
    seconds: float
    method: dict[str, object] = field(default_factory=dict)


def build_optimizer(model: nn.Module, method: ComposedMethod, recipe: Recipe) -> torch.optim.SGD:
    extra = method.param_groups(model)
    claimed = {id(p) for group in extra for p in group["params"]}
    main = [p for p in model.parameters() if id(p) not in claimed and p.requires_grad]
    groups = [{"params": main}] + extra
    optimizer = torch.optim.SGD(
        groups, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=recipe.nesterov
    )
    for group in optimizer.param_groups:
        group["base_lr"] = group["lr"]
    return optimizer


def epoch_order(method: ComposedMethod, train: Split, epoch: int, generator: torch.Generator) -> torch.Tensor:
    """This epoch's sample order: a permutation, or class-weighted draws with replacement."""
    n = len(train)
    weights = method.sampling_weights(epoch)
    if weights is None:
        return torch.randperm(n, generator=generator, device=train.y.device)
    per_sample = weights.to(device=train.y.device, dtype=torch.float)[train.y]
    return torch.multinomial(per_sample, n, replacement=True, generator=generator)


def train(
    model: nn.Module, method: ComposedMethod, train_split: Split, recipe: Recipe, generator: torch.Generator, quiet: bool = False
) -> list[EpochRecord]:
    optimizer = build_optimizer(model, method, recipe)
    augment = compose(recipe.augment)
    n, batch_size = len(train_split), recipe.batch_size
    steps = (n + batch_size - 1) // batch_size
    history: list[EpochRecord] = []
    progress = EpochProgress(recipe.epochs, steps, quiet)
    with progress:
        for epoch in range(recipe.epochs):
            factor = recipe.lr_factor(epoch)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            order = epoch_order(method, train_split, epoch, generator)
            loss_weights = method.loss_weights(epoch)
            loss_sum = torch.zeros((), device=train_split.y.device)
            correct = torch.zeros((), device=train_split.y.device, dtype=torch.long)
            seen = 0
            model.train()
            progress.start_epoch(epoch)
            started = time.perf_counter()
            for step in range(steps):
                idx = order[step * batch_size : (step + 1) * batch_size]
                x = augment(train_split.x[idx].float().div_(255.0), generator)
                batch = method.augment(Batch(x, train_split.y[idx], idx), StepState(epoch, step, generator))
                logits = model(batch.x)
                loss = method.loss(model, logits, batch.y, loss_weights, epoch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * batch.y.shape[0]
                correct += (logits.detach().argmax(1) == batch.y).sum()
                seen += batch.y.shape[0]
                if (step + 1) % DISPLAY_EVERY == 0 or step + 1 == steps:
                    elapsed = time.perf_counter() - started
                    progress.update(step + 1, float(loss_sum) / seen, float(correct) / seen, seen / elapsed)
            seconds = time.perf_counter() - started
            record = EpochRecord(
                epoch=epoch,
                lr=recipe.lr * factor,
                loss=float(loss_sum) / seen,
                train_acc=float(correct) / seen,
                images_per_s=seen / seconds,
                seconds=seconds,
                method=method.epoch_log(model, epoch),
            )
            if not math.isfinite(record.loss):
                raise UserError(f"training diverged in epoch {epoch + 1} (loss {record.loss}); lower the lr (--lr) or check the method's hyper-parameters")
            history.append(record)
    return history
