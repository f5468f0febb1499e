"""Speed of GIT: generator training iterations/s, and a training epoch with and without generation.

    python scripts/bench_git.py --dataset fmnist-bg-lt [--device auto] [--opt dim=32 ...]

Measures, on one device and one dataset, with the generator config given by --opt (the
`tailbench generator train --opt` keys; default: the paper-sized config `+git` uses):

1. generator training: seconds per iteration and iterations/s over --gen-iters iterations
   after a warm-up, at the config's batch size;
2. one classifier training epoch of the dataset's recipe for `ce+drs` and for `ce+drs+git` with
   generation switched on from the first step (`git.delayed=false`), i.e. the epochs where GIT
   costs the most, and their ratio (the issue's bound: about 2x).

Speed does not depend on what the generator has learned, so step 2 uses a generator trained for
one iteration into a temporary cache. Nothing is written outside that temporary folder.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from bench_common import epoch_seconds, run_script, sync


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fmnist-bg-lt")
    p.add_argument("--recipe", help="recipe for the epoch timing (default: the dataset's own)")
    p.add_argument("--device", default="auto")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="generator option, repeatable")
    p.add_argument("--gen-iters", type=int, default=20, help="timed generator iterations (default 20)")
    p.add_argument("--data-dir", type=Path)
    args = p.parse_args(argv)

    from tailbench.recipes.recipe import load_recipe
    from tailbench.devices import device_name, resolve_device
    from tailbench.datasets import get_dataset
    from tailbench.datasets.sources import default_data_dir
    from tailbench.generative.model import GeneratorConfig
    from tailbench.generative.train import GeneratorTrainer
    from tailbench.options import parse_assignments

    device = resolve_device(args.device)
    builder = get_dataset(args.dataset, {})
    data = builder.load(args.data_dir or default_data_dir()).to(device)
    options = parse_assignments("--opt", args.opt)
    config = GeneratorConfig().with_options(options)
    print(f"{args.dataset} on {device_name(device)}; generator {config.to_json()}")

    trainer = GeneratorTrainer(data.train.x, data.train.y, config, seed=0)
    for _ in range(3):
        trainer.step()
    sync(device)
    started = time.perf_counter()
    for _ in range(args.gen_iters):
        trainer.step()
    sync(device)
    per_iter = (time.perf_counter() - started) / args.gen_iters
    print(f"generator training: {per_iter:.3f} s/iteration, {1 / per_iter:.2f} it/s at batch {config.batch_size}; "
          f"{config.iters} iterations take about {per_iter * config.iters / 60:.1f} min")

    recipe = replace(load_recipe(args.recipe or builder.recipe), epochs=1, warmup_epochs=0, milestones=(), factors=())
    # Generation speed depends on the architecture only: dim and n_res are the `git` part's knobs.
    git_hp = {f"git.{k}": v for k, v in options.items() if k in ("dim", "n_res")}
    git_hp.update({"git.iters": "1", "git.delayed": "false"})
    seconds = epoch_seconds(data, recipe, device, {"ce+drs": {}, "ce+drs+git": git_hp})
    ratio = seconds["ce+drs+git"] / seconds["ce+drs"]
    print(f"GIT epoch / plain epoch: {ratio:.2f}x (generating {recipe.batch_size // 2} of every {recipe.batch_size} images)")
    return 0


if __name__ == "__main__":
    run_script(main, __file__)
