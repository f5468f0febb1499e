"""Training the generator on a long-tailed training set, with checkpoints that resume exactly.

Each iteration draws a class-balanced batch (``torch.multinomial`` with weight 1/n_y per image,
with replacement, on the device), flips each image horizontally with probability 1/2 where the
config's ``flip`` says so (``input_flip``: by default as the reference's generator pipeline for
the dataset does), then

1. updates the discriminator on real images and on ``decode(content(x), s)``, ``s ~ N(0, I)``
   (LSGAN: real -> 1, generated -> 0);
2. updates the encoders and decoder on the weighted sum of the LSGAN loss of those generated
   images (-> 1), L1 image reconstruction ``decode(content(x), style(x))`` vs ``x``, L1 style
   reconstruction ``style(generated)`` vs ``s`` and L1 content reconstruction
   ``content(generated)`` vs ``content(x)``.

Both use Adam with a step decay of the lr per iteration. All randomness after initialisation
comes from one ``torch.Generator`` on the device, saved in every checkpoint, so an interrupted
run resumed from its last checkpoint ends in the same state as an uninterrupted one.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from tailbench.errors import UserError
from tailbench.asset_cache import ensure_final
from tailbench.generative import cache
from tailbench.generative.model import GeneratorConfig, Munit, build_munit

LOSSES = ("adv", "img", "sty", "con", "dis")  # LSGAN (G), image, style, content reconstruction, LSGAN (D)
DISPLAY_EVERY = 10  # iterations between reads of the running losses (one device sync each)
CHECKPOINT_EVERY = 500
TRAINING_LOCK_WAIT = 7 * 24 * 3600.0  # seconds a process waits for another one training the same generator


# flip=auto, by the dataset's recipe: what the reference (AllanYangZhou/generative-invariance-
# transfer) feeds its generator. K49: core/munit/utils.py get_k49_data_loaders, RandomHorizontalFlip
# always; CIFAR-LT: core/munit/configs/cifar*_0.01.yaml flip_aug: True, and
# core/datasets/cifar_lt_dataset.py get_cifar_transform flips but crops only for the classifier.
# The Fashion-MNIST-LT variants and digits run K49's recipe; Tiny ImageNet-LT (no reference code)
# takes CIFAR's, as its classifier recipe does.
FLIP_BY_RECIPE = {"k49": True, "fmnist": True, "digits": True, "cifar-lt": True, "tinyimagenet-lt": True}
# Datasets whose classes a mirror turns into one another: flip=on does not apply, auto is off.
NO_FLIP = {"gtsrb-lt": "a mirrored traffic sign is often another class (keep left / keep right, turn left / turn right ahead)"}


def input_flip(config: GeneratorConfig, dataset_id: str) -> bool:
    """Whether the generator's training images are flipped at random; a UserError where the
    config's choice does not apply to the dataset."""
    from tailbench.datasets import get_dataset

    name = dataset_id.split("--", 1)[0]  # the options follow as --key=value
    recipe = type(get_dataset(name)).recipe
    if recipe in NO_FLIP:
        if config.flip == "on":
            raise UserError(f"generator option flip=on does not apply to {name}: {NO_FLIP[recipe]}; use flip=auto or flip=off")
        return False
    if config.flip != "auto":
        return config.flip == "on"
    if recipe not in FLIP_BY_RECIPE:
        raise UserError(f"generator option flip=auto has no choice for {name} (recipe {recipe}); give flip=on or flip=off")
    return FLIP_BY_RECIPE[recipe]


def to_signed(x_uint8_or_unit: torch.Tensor, scale: float) -> torch.Tensor:
    """uint8 (scale 255) or [0, 1] floats (scale 1) to [-1, 1]."""
    return x_uint8_or_unit.float().mul(2.0 / scale).sub_(1.0)


class GeneratorTrainer:
    """flip: flip each drawn image horizontally with probability 1/2 (``input_flip`` decides it)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, config: GeneratorConfig, seed: int, flip: bool = False) -> None:
        device = images.device
        self.images, self.config, self.seed, self.flip = images, config, seed, flip
        self.model = build_munit(tuple(images.shape[1:]), config, seed).to(device)
        adam = dict(lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay)
        self.opt_gen = torch.optim.Adam(self.model.generator_parameters(), **adam)
        self.opt_dis = torch.optim.Adam(self.model.dis.parameters(), **adam)
        self.sched_gen = torch.optim.lr_scheduler.StepLR(self.opt_gen, config.lr_step, config.lr_gamma)
        self.sched_dis = torch.optim.lr_scheduler.StepLR(self.opt_dis, config.lr_step, config.lr_gamma)
        counts = torch.bincount(labels).float()
        self.weights = (1.0 / counts)[labels]  # class-balanced: every class drawn equally often
        self.rng = torch.Generator(device=device).manual_seed(seed)
        self.iteration = 0

    def draw(self) -> torch.Tensor:
        """The next training batch in [-1, 1]: class-balanced draws, each flipped horizontally with
        probability 1/2 when ``flip`` (one batched draw from the training's generator; without
        flips nothing more is drawn, so those trainings are what they were before flips existed)."""
        idx = torch.multinomial(self.weights, self.config.batch_size, replacement=True, generator=self.rng)
        x = to_signed(self.images[idx], 255.0)
        if self.flip:
            mirrored = torch.rand(x.shape[0], generator=self.rng, device=x.device) < 0.5
            x = torch.where(mirrored.view(-1, 1, 1, 1), x.flip(3), x)
        return x

    def step(self) -> torch.Tensor:
        """One discriminator and one generator update; returns the five losses as a tensor."""
        cfg, model = self.config, self.model
        model.train()
        x = self.draw()
        content, style = model.content(x), model.style(x)
        s_random = model.random_style(x.shape[0], self.rng, x.device)
        fake = model.decoder(content, s_random)

        model.dis.requires_grad_(True)
        real_score, fake_score = model.dis(x), model.dis(fake.detach())
        dis_loss = (real_score - 1).pow(2).mean() + fake_score.pow(2).mean()
        self.opt_dis.zero_grad(set_to_none=True)
        dis_loss.backward()
        self.opt_dis.step()
        self.sched_dis.step()

        model.dis.requires_grad_(False)  # the generator's loss needs gradients through D, not for it
        adv = (model.dis(fake) - 1).pow(2).mean()
        img = F.l1_loss(model.decoder(content, style), x)
        style_rec = F.l1_loss(model.style(fake), s_random)
        content_rec = F.l1_loss(model.content(fake), content)
        total = cfg.w_gan * adv + cfg.w_img * img + cfg.w_style * style_rec + cfg.w_content * content_rec
        self.opt_gen.zero_grad(set_to_none=True)
        total.backward()
        self.opt_gen.step()
        self.sched_gen.step()
        model.dis.requires_grad_(True)
        self.iteration += 1
        return torch.stack([adv, img, style_rec, content_rec, dis_loss]).detach()

    def state_dict(self) -> dict:
        return {
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "opt_gen": self.opt_gen.state_dict(), "opt_dis": self.opt_dis.state_dict(),
            "sched_gen": self.sched_gen.state_dict(), "sched_dis": self.sched_dis.state_dict(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
        self.model.load_state_dict(state["model"])
        self.opt_gen.load_state_dict(state["opt_gen"])
        self.opt_dis.load_state_dict(state["opt_dis"])
        self.sched_gen.load_state_dict(state["sched_gen"])
        self.sched_dis.load_state_dict(state["sched_dis"])
        self.rng.set_state(state["rng"].cpu())


class TrainProgress:
    """A rich bar with the running losses and iterations/s; one line per checkpoint without a terminal."""

    def __init__(self, title: str, total: int, start: int, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from tailbench.console import console

        self.console, self.quiet, self.live = console, quiet, sys.stderr.isatty() and not quiet
        from rich.table import Column

        self.progress = Progress(  # the losses last: a narrow terminal crops them, not the counts
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=16), MofNCompleteColumn(),
            TextColumn("{task.fields[ips]:.2f} it/s"), TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}", table_column=Column(no_wrap=True, overflow="crop", min_width=1, ratio=1)),
            console=console, disable=not self.live,
        )
        self.task = self.progress.add_task(title, total=total, completed=start, losses="", ips=0.0)
        self.text = ""

    def __enter__(self) -> "TrainProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, iteration: int, means: list[float], ips: float) -> None:
        self.text = " ".join(f"{name} {value:.3f}" for name, value in zip(LOSSES, means))
        self.progress.update(self.task, completed=iteration, losses=self.text, ips=ips)
        self.ips = ips

    def checkpoint(self, iteration: int, total: int) -> None:
        if not self.live and not self.quiet:
            self.console.print(f"generator {iteration}/{total}  {self.text}  {getattr(self, 'ips', 0.0):.2f} it/s  (checkpoint)")


def train_or_load(
    images: torch.Tensor, labels: torch.Tensor, dataset_id: str, manifest_sha256: str, config: GeneratorConfig, seed: int,
    root: Path | None = None, checkpoint_every: int = CHECKPOINT_EVERY, quiet: bool = False,
    on_checkpoint: Callable[[int], None] | None = None, keep_at: tuple[int, ...] = (),
) -> tuple[Munit, Path]:
    """The cached finished generator for this dataset, config and seed, or train it (resuming).

    keep_at: iterations at which the model is also stored as the finished generator of the same
    config with that many iterations (nothing in training depends on the total, so training to
    10,000 passes through the 3,000-iteration generator on the way)."""
    device = images.device
    flip = input_flip(config, dataset_id)  # refuses a flip that does not apply, before any training
    directory = cache.entry_dir(root or cache.cache_root(), dataset_id, manifest_sha256, config, seed)
    ident = cache.identity(dataset_id, manifest_sha256, config, seed, tuple(images.shape[1:]))
    final = directory / cache.FINAL

    def train() -> None:
        config.check_image(tuple(images.shape[1:]))
        keep = {}
        for k in sorted(set(keep_at)):
            shorter = replace(config, iters=k)
            target = cache.entry_dir(root or cache.cache_root(), dataset_id, manifest_sha256, shorter, seed)
            if k < config.iters and not (target / cache.FINAL).is_file():
                keep[k] = (target, cache.identity(dataset_id, manifest_sha256, shorter, seed, tuple(images.shape[1:])))
        train_to_final(images, labels, config, seed, directory, ident, checkpoint_every, quiet, on_checkpoint, keep, flip)

    ensure_final(cache.GENERATORS, directory, train, TRAINING_LOCK_WAIT)  # a second process waits for the trainer, then loads
    return load_final(final, ident, device), directory


def train_to_final(
    images: torch.Tensor, labels: torch.Tensor, config: GeneratorConfig, seed: int, directory: Path, ident: dict,
    checkpoint_every: int, quiet: bool, on_checkpoint: Callable[[int], None] | None, keep: dict[int, tuple[Path, dict]],
    flip: bool = False,
) -> None:
    """Train (resuming from the folder's checkpoint) and write the finished generator."""
    trainer = GeneratorTrainer(images, labels, config, seed, flip=flip)
    checkpoint = directory / cache.CHECKPOINT
    if checkpoint.is_file():
        trainer.load_state_dict(cache.load(checkpoint, ident, images.device)["state"])
    else:
        cache.write_config(directory, ident, {"device": str(images.device), "train_size": int(labels.shape[0]), "flip": flip})
    if not quiet:
        from tailbench.console import console

        start = f"resuming at iteration {trainer.iteration}" if trainer.iteration else "from scratch"
        console.print(f"training GIT's generator for {ident['dataset_id']} (seed {seed}, {config.iters} iterations at batch "
                      f"{config.batch_size}{', random horizontal flips' if trainer.flip else ''}, {start}) into {directory}")
    run_training(trainer, config.iters, "generator", checkpoint, ident, checkpoint_every, quiet, on_checkpoint, keep)
    cache.save(directory / cache.FINAL, {"identity": ident, "iteration": trainer.iteration, "model": trainer.model.state_dict()})
    checkpoint.unlink(missing_ok=True)


def run_training(
    trainer: GeneratorTrainer, until: int, title: str, checkpoint: Path | None, ident: dict,
    checkpoint_every: int, quiet: bool, on_checkpoint: Callable[[int], None] | None = None,
    keep: dict[int, tuple[Path, dict]] | None = None,
) -> None:
    sums = torch.zeros(len(LOSSES), device=trainer.images.device)
    window, started, start_iter = 0, time.perf_counter(), trainer.iteration
    with TrainProgress(title, until, trainer.iteration, quiet) as progress:
        while trainer.iteration < until:
            sums += trainer.step()
            window += 1
            it = trainer.iteration
            if it % DISPLAY_EVERY == 0 or it == until:
                means = (sums / window).tolist()
                sums.zero_()
                window = 0
                progress.update(it, means, (it - start_iter) / (time.perf_counter() - started))
            if keep and it in keep:
                target, kept = keep[it]
                cache.write_config(target, kept, {"device": str(trainer.images.device), "train_size": int(trainer.images.shape[0]),
                                                   "flip": trainer.flip, "kept_from": ident["config_digest"]})
                cache.save(target / cache.FINAL, {"identity": kept, "iteration": it, "model": trainer.model.state_dict()})
            if checkpoint is not None and it % checkpoint_every == 0 and it < until:
                cache.save(checkpoint, {"identity": ident, "state": trainer.state_dict()})
                progress.checkpoint(it, until)
                if on_checkpoint is not None:
                    on_checkpoint(it)


def load_final(path: Path, ident: dict, device: torch.device | str) -> Munit:
    payload = cache.load(path, ident, device)
    config = GeneratorConfig.from_json(ident["config"])
    model = build_munit(tuple(ident["image_shape"]), config, ident["seed"]).to(device)
    model.load_state_dict(payload["model"])
    return model.eval().requires_grad_(False)
