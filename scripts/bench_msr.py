"""Speed of MSR: meta-training seconds per outer step (first and second order), and an epoch.

    python scripts/bench_msr.py --dataset fmnist-rot-lt [--recipe fmnist-cpu] [--device auto] [--steps 10] [--hp msr.tasks=4 ...]

1. With the `msr` part's hyper-parameters (defaults, or --hp overrides), times --steps outer
   steps after two warm-up steps for ``order`` 1 and 2, and prints what the part's
   ``meta_steps`` outer steps would take at each (the meta-trainer runs in memory);
2. times one training epoch of the recipe for `ce+drs` and for `ce+drs+msr` (the stem's
   W = U v computed at every step), after a warm-up epoch each, and their ratio. Speed does not
   depend on what U learned, so the part meta-trains for one outer step into a temporary cache.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from bench_common import epoch_seconds, method_context, run_script, sync


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fmnist-rot-lt")
    p.add_argument("--recipe", help="recipe for the epoch timing (default: the dataset's own)")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=10, help="timed outer steps per order (default 10)")
    p.add_argument("--hp", action="append", default=[], metavar="msr.KEY=VALUE", help="msr hyper-parameter, repeatable")
    p.add_argument("--data-dir", type=Path)
    args = p.parse_args(argv)

    import torch

    from tailbench.recipes.recipe import load_recipe
    from tailbench.devices import device_name, resolve_device
    from tailbench.datasets import get_dataset
    from tailbench.datasets.sources import default_data_dir
    from tailbench.methods import ComposedMethod
    from tailbench.msr.episodes import EpisodeSampler
    from tailbench.msr.meta import MetaTrainer
    from tailbench.nuisance import get_family
    from tailbench.options import parse_assignments

    device = resolve_device(args.device)
    builder = get_dataset(args.dataset, {})
    data = builder.load(args.data_dir or default_data_dir()).to(device)
    overrides = parse_assignments("--hp", args.hp)
    print(f"{args.dataset} on {device_name(device)}, {torch.get_num_threads()} CPU threads")
    for order in (1, 2):
        part = ComposedMethod("ce+msr", method_context(data, device), {**overrides, "msr.order": str(order)}).augmentations[0]
        config = part.config
        clean = data.train_clean
        pixels = clean.float().div(255.0).transpose(0, 1).flatten(1)
        sampler = EpisodeSampler(clean, data.train.y, part.head_classes, config.ways, config.shots, config.queries,
                                 get_family(data.nuisance))
        trainer = MetaTrainer(sampler, data.image_shape, pixels.mean(1), pixels.std(1), config, seed=0)
        for _ in range(2):
            trainer.step()
        sync(device)
        started = time.perf_counter()
        for _ in range(args.steps):
            trainer.step()
        sync(device)
        per_step = (time.perf_counter() - started) / args.steps
        print(f"order {order}: {per_step:.3f} s per outer step ({config.tasks} tasks of {config.ways}-way {config.shots}-shot, "
              f"{config.queries} queries, {config.inner_steps} inner steps); {config.steps} steps take about "
              f"{per_step * config.steps / 60:.1f} min")

    recipe = replace(load_recipe(args.recipe or builder.recipe), epochs=1, warmup_epochs=0, milestones=(), factors=())
    seconds = epoch_seconds(data, recipe, device, {"ce+drs": {}, "ce+drs+msr": {**overrides, "msr.meta_steps": "1"}})
    print(f"MSR epoch / plain epoch: {seconds['ce+drs+msr'] / seconds['ce+drs']:.2f}x")
    return 0


if __name__ == "__main__":
    run_script(main, __file__)
