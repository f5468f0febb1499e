"""The training loop: epochs, the lr schedule, sample orders, the per-epoch record; the step itself is in step.py."""

from __future__ import annotations

import math
import time

import torch
import torch.nn as nn

from tailbench.recipes.augment import compose
from tailbench.benchmarks.checkpoint import Checkpointer
from tailbench.benchmarks.progress import EpochProgress
from tailbench.recipes.recipe import Recipe
from tailbench.benchmarks.runtime import Runtime
from tailbench.benchmarks.step import CapturedStep, EagerStep
from tailbench.datasets.base import Split
from tailbench.errors import UserError
from tailbench.methods import ComposedMethod
from tailbench.results.record_parts import EpochRecord

DISPLAY_EVERY = 20  # steps between progress-bar updates (each one reads the running sums)


def epoch_record(**fields: object) -> EpochRecord:
    """One epoch of the record's history, built as the record's own model (results/record.py),
    checked with the whole record when it is written (a method's log may hold values that only
    json_safe makes JSON)."""
    return EpochRecord.model_construct(**fields)


def build_optimizer(model: nn.Module, method: ComposedMethod, recipe: Recipe, device: torch.device, tensor_lr: bool = False) -> torch.optim.Optimizer:
    """The optimizer a method part declares, else the recipe's SGD (on CUDA the fused kernel, a few
    launches per step), over the model and the method's extra groups. With `tensor_lr` the learning
    rate is a device tensor, so a captured step reads the current one."""
    extra = method.param_groups(model)
    claimed = {id(p) for group in extra for p in group["params"]}
    main = [p for p in model.parameters() if id(p) not in claimed and p.requires_grad]
    groups = [{"params": main}] + extra
    optimizer = method.make_optimizer(groups, recipe, device)
    if optimizer is None:
        fused = {"fused": True} if device.type == "cuda" else {}
        optimizer = torch.optim.SGD(
            groups, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay, nesterov=recipe.nesterov, **fused
        )
    for group in optimizer.param_groups:
        group["base_lr"] = float(group["lr"])
        if tensor_lr:
            group["lr"] = torch.tensor(group["base_lr"], device=device)
    return optimizer


def use_lr_tensors(optimizer: torch.optim.Optimizer, runtime: Runtime) -> None:
    """After loading a state dict: the learning rate as the kind of value this run's steps read
    (a device tensor for captured steps, else a number)."""
    for group in optimizer.param_groups:
        value = float(group["lr"])
        group["lr"] = torch.tensor(value, device=runtime.device) if runtime.captured_steps else value


def set_lr_factor(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(group["base_lr"] * factor)
        else:
            group["lr"] = group["base_lr"] * factor


def epoch_order(method: ComposedMethod, train: Split, epoch: int, generator: torch.Generator) -> torch.Tensor:
    """This epoch's sample order: a permutation, or class-weighted draws with replacement."""
    n = len(train)
    weights = method.sampling_weights(epoch)
    if weights is None:
        return torch.randperm(n, generator=generator, device=train.y.device)
    per_sample = weights.to(device=train.y.device, dtype=torch.float)[train.y]
    return torch.multinomial(per_sample, n, replacement=True, generator=generator)


def make_step(model: nn.Module, method: ComposedMethod, train_split: Split, recipe: Recipe, generator: torch.Generator, runtime: Runtime) -> EagerStep:
    optimizer = build_optimizer(model, method, recipe, runtime.device, tensor_lr=runtime.captured_steps)
    kind = CapturedStep if runtime.captured_steps else EagerStep
    return kind(model, method, optimizer, compose(recipe.augment), train_split, generator, runtime)


def train(
    model: nn.Module, method: ComposedMethod, train_split: Split, recipe: Recipe, generator: torch.Generator,
    runtime: Runtime, quiet: bool = False, checkpointer: Checkpointer | None = None,
) -> tuple[list[EpochRecord], str]:
    """The recipe's epochs, resumed from the checkpointer's last checkpoint if it has one; returns
    the per-epoch records and how the steps ran (eagerly or from CUDA graphs)."""
    step_fn = make_step(model, method, train_split, recipe, generator, runtime)
    n, batch_size = len(train_split), recipe.batch_size
    steps = (n + batch_size - 1) // batch_size
    history: list[EpochRecord] = []
    first = 0
    resumed = None if checkpointer is None else checkpointer.restore(model, step_fn.optimizer, method, generator)
    if resumed is not None:
        first, saved = resumed
        history = [epoch_record(**h) for h in saved]
        use_lr_tensors(step_fn.optimizer, runtime)
    progress = EpochProgress(recipe.epochs, steps, quiet)
    with progress:
        for epoch in range(first, recipe.epochs):
            factor = recipe.lr_factor(epoch)
            set_lr_factor(step_fn.optimizer, factor)
            order = epoch_order(method, train_split, epoch, generator)
            loss_weights = method.loss_weights(epoch)
            step_fn.reset_sums()
            method.set_train_mode(model)
            progress.start_epoch(epoch)
            started = time.perf_counter()
            for step in range(steps):
                step_fn(order[step * batch_size : (step + 1) * batch_size], epoch, step, loss_weights)
                if progress.live and (step + 1) % DISPLAY_EVERY == 0:  # reading the sums waits for the GPU
                    seen = min((step + 1) * batch_size, n)
                    shown = math.nan if method.labels_hidden else float(step_fn.correct) / seen
                    progress.update(step + 1, float(step_fn.loss_sum) / seen, shown, seen / (time.perf_counter() - started))
            loss, correct = float(step_fn.loss_sum) / n, float(step_fn.correct) / n
            seconds = time.perf_counter() - started
            progress.update(steps, loss, math.nan if method.labels_hidden else correct, n / seconds)
            base_lr = step_fn.optimizer.param_groups[0]["base_lr"]  # the model's: the recipe's, or its method's own optimizer's
            record = epoch_record(
                epoch=epoch, lr=base_lr * factor, loss=loss, train_acc=None if method.labels_hidden else correct, images_per_s=n / seconds, seconds=seconds,
                method=method.epoch_log(model, epoch),
            )
            if not math.isfinite(record.loss):
                raise UserError(f"training diverged in epoch {epoch + 1} (loss {record.loss}); lower the lr (--lr) or check the method's hyper-parameters")
            history.append(record)
            if method.stops_after(model, epoch):  # e.g. SADE's test-time aggregation once an expert's weight collapses
                break
            if checkpointer is not None and epoch + 1 < recipe.epochs and checkpointer.due(epoch):
                checkpointer.save(epoch, model, step_fn.optimizer, method, generator, history)
    return history, step_fn.describe()
