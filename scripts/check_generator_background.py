"""Does GIT's generator redraw the background of a BG dataset? A check of what the style code learned.

    python scripts/check_generator_background.py --dataset fmnist-bg-lt --opt dim=32 --opt batch_size=8 --iters 3000

On a BG dataset every image's zero pixels carry one grey level drawn from 0..99 (out of 255), so
an image's background level is the median of its four 3x3 corners. For the tail classes' training
images (fewer than --tail-below images), this prints the distribution of that level in the real
images and in their generated versions (one random style code per version), the spread of the
level over the versions of one image, and the correlation of the generated level with the input's.
A generator whose style code has captured the nuisance redraws the level from the real
distribution, independently of the input (correlation near 0); one that has not copies it.

The generator must already be in the cache (`tailbench generator train` with the same options).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench_common import run_script


def corner_level(images):
    """[N, C, H, W] in [0, 1] -> [N]: the median of the means of the four 3x3 corners."""
    import torch

    corners = [images[..., :3, :3], images[..., :3, -3:], images[..., -3:, :3], images[..., -3:, -3:]]
    return torch.stack([c.mean(dim=(1, 2, 3)) for c in corners]).median(dim=0).values


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fmnist-bg-lt")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="generator option, as for `generator train`")
    p.add_argument("--iters", type=int)
    p.add_argument("--seed", type=int, default=0, help="the generator's seed")
    p.add_argument("--tail-below", type=int, default=100, help="classes with fewer training images count as tail (default 100)")
    p.add_argument("--images", type=int, default=200, help="tail images to use (default 200)")
    p.add_argument("--styles", type=int, default=8, help="generated versions per image (default 8)")
    p.add_argument("--data-dir", type=Path)
    args = p.parse_args(argv)

    import torch

    from tailbench.datasets import get_dataset
    from tailbench.datasets.sources import default_data_dir
    from tailbench.generative import cache
    from tailbench.generative.model import GeneratorConfig
    from tailbench.generative.train import load_final
    from tailbench.options import parse_assignments

    options = parse_assignments("--opt", args.opt)
    if args.iters is not None:
        options["iters"] = str(args.iters)
    config = GeneratorConfig().with_options(options)
    data = get_dataset(args.dataset, {}).load(args.data_dir or default_data_dir())
    ident = cache.identity(data.dataset_id, data.manifest_sha256, config, args.seed, data.image_shape)
    path = cache.entry_dir(cache.cache_root(), data.dataset_id, data.manifest_sha256, config, args.seed) / cache.FINAL
    if not path.is_file():
        print(f"no trained generator at {path}; run `tailbench generator train` with the same options first", file=sys.stderr)
        return 2
    model = load_final(path, ident, "cpu")

    tail = torch.nonzero(data.train_counts < args.tail_below).flatten()
    chosen = torch.nonzero(torch.isin(data.train.y, tail)).flatten()[: args.images]
    real = data.train.x[chosen].float().div(255.0)
    generator = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        content = model.content(real * 2 - 1)
        levels = torch.stack([
            corner_level(model.decoder(content, model.random_style(len(chosen), generator, torch.device("cpu"))).add(1).mul(0.5).clamp(0, 1))
            for _ in range(args.styles)
        ])  # [styles, N]
    real_level = corner_level(real)
    correlation = torch.corrcoef(torch.stack([real_level.repeat(args.styles), levels.flatten()]))[0, 1]
    print(f"{args.dataset}: {len(chosen)} training images of the {len(tail)} classes below {args.tail_below} images")
    print(f"real background level:      mean {real_level.mean():.3f}, 5-95 % {real_level.quantile(0.05):.3f} .. {real_level.quantile(0.95):.3f}")
    print(f"generated background level: mean {levels.mean():.3f}, 5-95 % {levels.quantile(0.05):.3f} .. {levels.quantile(0.95):.3f}")
    print(f"spread over {args.styles} styles of one image (max - min), mean: {(levels.max(0).values - levels.min(0).values).mean():.3f}")
    print(f"correlation of the generated level with the input's: {correlation:.3f}")
    return 0


if __name__ == "__main__":
    run_script(main, __file__)
