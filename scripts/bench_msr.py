"""Speed of MSR's meta-training: seconds per outer step, first- and second-order, on one dataset.

    python scripts/bench_msr.py --dataset fmnist-rot-lt [--device auto] [--steps 10] [--hp msr.tasks=4 ...]

With the `msr` part's hyper-parameters (defaults, or --hp overrides), times --steps outer steps
after two warm-up steps for ``order`` 1 and 2, and prints what the part's ``meta_steps`` outer
steps would take at each. Nothing is written anywhere (the meta-trainer runs in memory).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fmnist-rot-lt")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=10, help="timed outer steps per order (default 10)")
    p.add_argument("--hp", action="append", default=[], metavar="msr.KEY=VALUE", help="msr hyper-parameter, repeatable")
    p.add_argument("--data-dir", type=Path)
    args = p.parse_args(argv)

    import torch

    from tailbench.benchmarks.device import device_name, resolve_device
    from tailbench.datasets import get_dataset
    from tailbench.datasets.sources import default_data_dir
    from tailbench.methods import ComposedMethod, MethodContext
    from tailbench.msr.episodes import EpisodeSampler
    from tailbench.msr.meta import MetaTrainer
    from tailbench.nuisance import get_family
    from tailbench.options import parse_assignments

    device = resolve_device(args.device)
    data = get_dataset(args.dataset, {}).load(args.data_dir or default_data_dir()).to(device)
    overrides = parse_assignments("--hp", args.hp)
    print(f"{args.dataset} on {device_name(device)}, {torch.get_num_threads()} CPU threads")
    for order in (1, 2):
        ctx = MethodContext(
            num_classes=data.num_classes, class_counts=data.train_counts, epochs=1, first_lr_step=0,
            device=device, seed=0, image_shape=data.image_shape, nuisance=data.nuisance,
        )
        part = ComposedMethod("ce+msr", ctx, {**overrides, "msr.order": str(order)}).augmentations[0]
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
    return 0


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


if __name__ == "__main__":
    from tailbench.errors import UserError

    try:
        sys.exit(main())
    except UserError as error:  # bad names, options or missing data: one line, as the CLI says it
        print(f"{Path(__file__).name}: error: {error}", file=sys.stderr)
        sys.exit(UserError.exit_code)
