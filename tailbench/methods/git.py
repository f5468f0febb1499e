"""Generative invariance transfer (GIT): a generator learns the nuisance and augments the batches.

Zhou, Tajwar, Robey, Knowles, Pappas, Hassani and Finn, "Do Deep Networks Transfer Invariances
Across Classes?", ICLR 2022. A MUNIT-style generator (``tailbench.generative``) is trained on the
whole long-tailed training set with class-balanced sampling (and, by default, the random
horizontal flips the reference's generator pipeline applies: generator option ``flip``, hp
``gen_flip``); ``decode(content(x), s)`` with ``s ~ N(0, I)`` keeps what ``x`` shows and redraws
its nuisance. With ``delayed``, generation starts in the epoch after the recipe's first lr step,
as the reference's ``epoch > steplr_epoch1`` does (0-based epochs; its lr decays from epoch
``steplr_epoch1`` on, so that epoch still trains on real images only): 19 of K49's 50 epochs
(lr step at 30). From then on a fraction ``gen_frac`` of every batch is replaced by such versions
of the batch's own images, so the generated part follows the run's sampler just as the real part
does.

With ``threshold`` > 0 a generated image is kept with probability
``max((threshold - n_y) / (threshold - n_min), 0)``, so only classes below the threshold get them.
A rejected one is replaced as the reference's ``weighted_gen`` does, by another image of the
run's sampler with its own label, as it is (not generated): the reference takes it from a second
loader over the same sampler; here it is the source image of another generated slot of the same
batch, drawn uniformly (each such slot holds a draw of the run's sampler that the batch does not
otherwise show as it is). With a single generated slot there is no other one, and the rejected
slot keeps its own real image.

The generator is a fixed asset of the dataset, like a pretrained network: every run seed uses
the same cached generator (``gen_seed`` 0, the seed `tailbench generator train` uses by
default), so it is trained once per dataset and config. The seed spread of an entry then
measures the classifier's variance; ``gen_seed=-1`` gives each run seed its own generator, which
adds the generator's variance at the cost of one generator per seed.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from tailbench.errors import UserError
from tailbench.methods.base import Batch, MethodContext, MethodPart, StepState
from tailbench.methods.registry import register_method

if TYPE_CHECKING:
    import torch


@register_method("git")
class GenerativeInvarianceTransfer(MethodPart):
    kind = "augmentation"
    capture_safe = True  # on CUDA every draw, gather and mix is a fixed tensor program (torch.where, no masks)
    description = "replace part of each batch by MUNIT-generated versions (same content, random style) of its images"
    paper = "Zhou et al., ICLR 2022 (GIT); generator: Huang et al., ECCV 2018 (MUNIT)"
    hparams = {
        "gen_frac": 0.5,  # fraction of each batch replaced by generated images
        "delayed": True,  # start in the epoch after the recipe's first lr step (the reference's epoch > steplr_epoch1)
        "threshold": 0,  # keep generated images only for classes smaller than this (0: all classes)
        "iters": 10_000,  # generator training iterations (the paper's K49 setting)
        "gen_batch": 32,  # generator training batch size (the paper's is 1)
        "dim": 64,
        "n_res": 4,
        "lr_step": 100_000,  # iterations between halvings of the generator's lr
        "gen_seed": 0,  # the generator's seed, shared by every run seed; -1: the run's seed
        "gen_flip": "auto",  # random horizontal flips of the generator's training images: auto (the reference's), on, off
    }

    @classmethod
    def check_hparams(cls, hp: dict[str, object]) -> None:
        if not 0.0 <= float(hp["gen_frac"]) <= 1.0:
            raise UserError(f"--hp git.gen_frac={hp['gen_frac']} must lie in [0, 1]")
        if int(hp["threshold"]) < 0:
            raise UserError(f"--hp git.threshold={hp['threshold']} must be 0 (off) or a positive class size")
        if int(hp["gen_seed"]) < -1:
            raise UserError(f"--hp git.gen_seed={hp['gen_seed']} must be -1 (the run's seed) or a seed")
        if hp["gen_flip"] not in ("auto", "on", "off"):
            raise UserError(f"--hp git.gen_flip={hp['gen_flip']} must be auto (the reference's choice for the dataset), on or off")

    def __init__(self, ctx: MethodContext, hp: dict[str, object]) -> None:
        super().__init__(ctx, hp)
        import torch

        from tailbench.generative.model import GeneratorConfig

        self.config = GeneratorConfig().with_options(
            {"iters": hp["iters"], "batch_size": hp["gen_batch"], "dim": hp["dim"], "n_res": hp["n_res"], "lr_step": hp["lr_step"],
             "flip": hp["gen_flip"]}
        )
        self.gen_seed = ctx.seed if int(hp["gen_seed"]) == -1 else int(hp["gen_seed"])
        counts = ctx.class_counts.to(ctx.device).float()
        threshold = float(hp["threshold"])
        if threshold > 0:
            n_min = counts[counts > 0].min()
            if threshold <= float(n_min):  # once, before training: the reference divides by threshold - n_min
                raise UserError(
                    f"--hp git.threshold={hp['threshold']} must exceed the smallest class's {int(n_min)} training images, "
                    "or no class keeps a generated image (0 turns the threshold off)"
                )
            self.keep_prob = ((threshold - counts) / (threshold - n_min)).clamp(0.0, 1.0)
        else:
            self.keep_prob = None
        self.model = None
        self.entry = ""
        # On the CPU a boolean gather costs no device sync: translate only the images kept.
        self.gather_kept = ctx.device.type == "cpu"
        # Device counters, read once per epoch: a captured step updates them on every replay.
        self.generated = torch.zeros((), device=ctx.device)
        self.seen = torch.zeros((), device=ctx.device)

    def prepare(self, data) -> None:
        from tailbench.generative.train import train_or_load  # refuses a gen_flip the dataset cannot take

        self.model, directory = train_or_load(
            data.train.x, data.train.y, data.dataset_id, data.manifest_sha256, self.config, self.gen_seed
        )
        self.entry = f"{directory.parent.name}/{directory.name}"

    def step_variant(self, epoch: int) -> bool:
        return self.waiting(epoch)

    def waiting(self, epoch: int) -> bool:
        """Epochs are 0-based, as the reference's; first_lr_step is the first epoch at the decayed
        lr, the reference's steplr_epoch1 (its lr decays where epoch + 1 > steplr_epoch1)."""
        return bool(self.hp["delayed"]) and epoch <= self.ctx.first_lr_step

    def _autocast(self):
        import torch

        if self.ctx.device.type == "cuda":  # no weight-cast cache: it cannot live across graph replays
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def augment(self, batch: Batch, state: StepState) -> Batch:
        import torch

        b = batch.x.shape[0]
        self.seen += b
        if self.waiting(state.epoch):
            return batch
        k = int(round(float(self.hp["gen_frac"]) * b))
        if k == 0:
            return batch
        if self.model is None:
            raise RuntimeError("git.augment called before prepare")
        real, labels = batch.x[:k], batch.y[:k]
        style = self.model.random_style(k, state.generator, real.device)
        if self.keep_prob is None:
            with torch.no_grad(), self._autocast():
                generated = self._translate(real, style)
            self.generated += k
            return Batch(torch.cat([generated, batch.x[k:]]), batch.y, batch.idx)
        keep = torch.rand(k, generator=state.generator, device=real.device) < self.keep_prob[labels]
        other = self.other_slots(k, state.generator, real.device)
        stand_in, stand_in_y = real[other], labels[other]  # what a rejected slot shows instead, with its label
        with torch.no_grad(), self._autocast():
            if self.gather_kept:
                mixed = stand_in.clone()
                mixed[keep] = self._translate(real[keep], style[keep])
            else:
                mixed = torch.where(keep[:, None, None, None], self._translate(real, style), stand_in)
        self.generated += keep.sum()
        y = torch.cat([torch.where(keep, labels, stand_in_y), batch.y[k:]])
        idx = torch.cat([torch.where(keep, batch.idx[:k], batch.idx[:k][other]), batch.idx[k:]])
        return Batch(torch.cat([mixed, batch.x[k:]]), y, idx)

    @staticmethod
    def other_slots(k: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """For each of the k generated slots, another one of them, uniformly (itself when k == 1)."""
        import torch

        slots = torch.arange(k, device=device)
        if k == 1:
            return slots
        return (slots + 1 + torch.randint(k - 1, (k,), generator=generator, device=device)) % k

    def _translate(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """[0, 1] images to [-1, 1], through the generator, and back."""
        out = self.model.translate(x * 2.0 - 1.0, style)
        return out.float().add(1.0).mul(0.5).clamp(0.0, 1.0)

    def epoch_log(self, model, epoch: int) -> dict[str, object]:
        fraction = float(self.generated) / max(float(self.seen), 1.0)
        self.generated.zero_()
        self.seen.zero_()
        log: dict[str, object] = {"git_generated_frac": fraction}
        if epoch == 0:
            log["git_generator"] = self.entry
        return log
