"""Meta-training the stem's sharing matrix, or loading it: cached, resumable, one process at a time.

The result for a dataset, manifest, meta-training config and seed is computed once and kept in
the cache (``tailbench.msr.cache``). While meta-training runs, a checkpoint is written every
``checkpoint_every`` outer steps; an interrupted run resumes from it and ends in the same state
as an uninterrupted one. Runs that need the same entry at the same time (a sweep's seeds share
the meta-seed) take a lock on it: the first meta-trains, the others wait and load its result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from tailbench.msr import cache
from tailbench.msr.episodes import EpisodeSampler
from tailbench.msr.meta import MetaConfig, MetaTrainer
from tailbench.asset_cache import ensure_final

CHECKPOINT_EVERY = 100
CURVE_POINTS = 20  # the meta-training curve keeps this many window means
LOCK_WAIT_SECONDS = 6 * 3600.0


@dataclass
class MetaResult:
    sharing: torch.Tensor  # U_s, [copies * k * k] square, on the CPU
    curve: list[dict[str, float]]  # per window of outer steps: last step, mean query loss and accuracy
    seconds: float  # wall time meta-training took when it ran (in this process or an earlier one)
    directory: Path
    loaded: bool  # found in the cache rather than meta-trained by this call


def train_or_load(
    sampler: EpisodeSampler, image_shape: tuple[int, int, int], mean: torch.Tensor, std: torch.Tensor,
    dataset_id: str, manifest_sha256: str, config: MetaConfig, seed: int,
    root: Path | None = None, checkpoint_every: int = CHECKPOINT_EVERY, quiet: bool = False,
    on_checkpoint: Callable[[int], None] | None = None,
) -> MetaResult:
    directory = cache.entry_dir(root or cache.cache_root(), dataset_id, manifest_sha256, config, seed)
    ident = cache.identity(dataset_id, manifest_sha256, config, seed, image_shape)
    loaded = ensure_final(cache.SHARING, directory, lambda: _meta_train(
        sampler, image_shape, mean, std, config, seed, directory, ident, checkpoint_every, quiet, dataset_id, on_checkpoint,
    ), LOCK_WAIT_SECONDS)
    payload = cache.load(directory / cache.FINAL, ident)
    curve = [dict(zip(("step", "loss", "acc"), row)) for row in payload["curve"]]
    return MetaResult(payload["sharing"].float(), curve, float(payload["seconds"]), directory, loaded)


def _meta_train(sampler, image_shape, mean, std, config: MetaConfig, seed: int, directory: Path, ident: dict,
                checkpoint_every: int, quiet: bool, dataset_id: str, on_checkpoint: Callable[[int], None] | None) -> None:
    trainer = MetaTrainer(sampler, image_shape, mean, std, config, seed)
    checkpoint = directory / cache.CHECKPOINT
    curve: list[list[float]] = []
    seconds = 0.0
    if checkpoint.is_file():
        state = cache.load(checkpoint, ident, sampler.clean.device)
        trainer.load_state_dict(state["state"])
        curve, seconds = [list(map(float, row)) for row in state["curve"]], float(state["seconds"])
    else:
        cache.write_config(directory, ident, {"device": str(sampler.clean.device)})
    if not quiet:
        from tailbench.console import console

        start = f"resuming at step {trainer.iteration}" if trainer.iteration else "from scratch"
        console.print(f"meta-training MSR's sharing for {dataset_id} (seed {seed}, {config.steps} outer steps of "
                      f"{config.tasks} {config.ways}-way {config.shots}-shot tasks, order {config.order}, {start}) into {directory}")
    window = max(config.steps // CURVE_POINTS, 1)
    sums = torch.zeros(2, device=sampler.clean.device)
    count, started, saved_at = 0, time.perf_counter(), trainer.iteration
    while trainer.iteration < config.steps:
        sums += trainer.step()
        count += 1
        it = trainer.iteration
        if it % window == 0 or it == config.steps:
            loss, acc = (sums / count).tolist()
            curve.append([float(it), loss, acc])
            sums.zero_()
            count = 0
            if not quiet:
                console.print(f"msr meta-step {it}/{config.steps}  query loss {loss:.4f}  acc {acc:.3f}")
            # Checkpoints fall on window boundaries, so a resumed run's curve matches too.
            if it - saved_at >= checkpoint_every and it < config.steps:
                elapsed = seconds + time.perf_counter() - started
                cache.save(checkpoint, {"identity": ident, "state": trainer.state_dict(), "curve": curve, "seconds": elapsed})
                saved_at = it
                if on_checkpoint is not None:
                    on_checkpoint(it)
    seconds += time.perf_counter() - started
    cache.save(directory / cache.FINAL, {"identity": ident, "sharing": trainer.sharing().cpu(), "curve": curve, "seconds": seconds})
    checkpoint.unlink(missing_ok=True)
