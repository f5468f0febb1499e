"""`tailbench generator train|show`: train GIT's generator into the cache, or draw what it learned.

Module-level imports stay light: ``tailbench --help`` builds this parser without torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tailbench import cli_options
from tailbench.errors import UserError


def add_parser(subparsers) -> None:
    """Add the `generator` command to the `tailbench` subparsers."""
    p = subparsers.add_parser("generator", help="GIT's MUNIT-style generator: train it into the cache, or show a sample grid")
    actions = p.add_subparsers(dest="action", required=True, parser_class=type(p))

    train = actions.add_parser("train", help="train (or resume training) the generator of a dataset's training set")
    _identity_arguments(train)
    train.add_argument("--checkpoint-every", type=int, default=500, metavar="N", help="iterations between checkpoints (default 500)")
    train.add_argument("--keep-at", type=int, action="append", default=[], metavar="N",
                       help="also store the generator reached at iteration N as the finished N-iteration one (repeatable)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    show = actions.add_parser("show", help="a PNG grid: real images, head to tail classes, next to generated versions")
    _identity_arguments(show)
    show.add_argument("--out", type=Path, help="PNG file to write (default generator-<dataset>-seed<seed>.png)")
    show.add_argument("--styles", type=int, default=6, help="generated versions per image (default 6; one style code per column)")
    show.add_argument("--per-class", type=int, default=1, help="real images per class (default 1)")
    show.set_defaults(func=cmd_show)


def _identity_arguments(p: argparse.ArgumentParser) -> None:
    """What names a cached generator: dataset (and options), generator config, iterations, seed."""
    p.add_argument("--dataset", required=True)
    cli_options.dataset_opt(p)
    p.add_argument("--iters", type=int, help="training iterations (default 10000, the paper's K49 setting)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0: the one every `+git` run uses unless git.gen_seed is set)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE", help="generator option (dim, n_res, batch_size, lr_step, ...), repeatable")
    cli_options.device(p)
    cli_options.data_dir(p)
    p.add_argument("--cache-dir", type=Path, help="cache root (default: $TAILBENCH_CACHE or ~/.cache/tailbench); generators go under generators/")


def _resolve(args: argparse.Namespace):
    """Check every argument before reading any data; return (builder, config)."""
    from tailbench.datasets import get_dataset
    from tailbench.generative.model import GeneratorConfig
    from tailbench.options import parse_assignments

    if args.seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.iters is not None and args.iters < 1:
        raise UserError(f"--iters must be a positive integer, got {args.iters}")
    options = parse_assignments("--opt", args.opt)
    if args.iters is not None:
        if "iters" in options:
            raise UserError("give the iterations once: --iters or --opt iters=..., not both")
        options["iters"] = str(args.iters)
    config = GeneratorConfig().with_options(options)
    builder = get_dataset(args.dataset, parse_assignments("--dataset-opt", args.dataset_opt))
    return builder, config


def _load_data(builder, device_choice: str, data_dir: Path | None):
    from tailbench.devices import resolve_device
    from tailbench.datasets.sources import default_data_dir

    device = resolve_device(device_choice)
    return builder.load(data_dir or default_data_dir()).to(device), device


def cmd_train(args: argparse.Namespace) -> int:
    import time

    from tailbench.console import console
    from tailbench.generative.train import train_or_load

    if args.checkpoint_every < 1:
        raise UserError(f"--checkpoint-every must be a positive integer, got {args.checkpoint_every}")
    builder, config = _resolve(args)
    bad = [k for k in args.keep_at if not 1 <= k < config.iters]
    if bad:
        raise UserError(f"--keep-at {bad[0]} must lie between 1 and the {config.iters} training iterations")
    data, device = _load_data(builder, args.device, args.data_dir)
    started = time.perf_counter()
    try:
        _, directory = train_or_load(
            data.train.x, data.train.y, data.dataset_id, data.manifest_sha256, config, args.seed,
            root=args.cache_dir, checkpoint_every=args.checkpoint_every, quiet=args.quiet, keep_at=tuple(args.keep_at),
        )
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (tailbench.errors.Terminated)
        print(f"{args.prog}: interrupted; the same command resumes from the last checkpoint", file=sys.stderr)
        return getattr(stop, "exit_code", 130)
    console.print(f"generator for {data.dataset_id} (seed {args.seed}, {config.iters} iterations): {directory} "
                  f"[{time.perf_counter() - started:.0f} s in this call, {device.type}]")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tailbench.generative import cache

    if not 1 <= args.styles <= 32:
        raise UserError(f"--styles must lie in 1..32, got {args.styles}")
    if not 1 <= args.per_class <= 16:
        raise UserError(f"--per-class must lie in 1..16, got {args.per_class}")
    if args.out is not None and args.out.suffix.lower() != ".png":
        raise UserError(f"--out {args.out}: the grid is written as PNG; give a .png file name")
    builder, config = _resolve(args)
    data, device = _load_data(builder, args.device, args.data_dir)
    directory = cache.entry_dir(args.cache_dir or cache.cache_root(), data.dataset_id, data.manifest_sha256, config, args.seed)
    model, note = _cached_model(directory, data, config, args.seed, device)
    out = args.out or Path(f"generator-{data.dataset_id}-seed{args.seed}.png")
    draw_grid(model, data, out, args.styles, args.per_class, args.seed, f"{data.dataset_id}, seed {args.seed}, {note}")
    print(f"wrote {out} ({note})")
    return 0


def _cached_model(directory: Path, data, config, seed: int, device):
    from tailbench.generative import cache
    from tailbench.generative.model import build_munit
    from tailbench.generative.train import load_final

    ident = cache.identity(data.dataset_id, data.manifest_sha256, config, seed, data.image_shape)
    if (directory / cache.FINAL).is_file():
        return load_final(directory / cache.FINAL, ident, device), f"{config.iters} iterations"
    if (directory / cache.CHECKPOINT).is_file():  # training still running or interrupted: show progress so far
        state = cache.load(directory / cache.CHECKPOINT, ident, device)["state"]
        model = build_munit(data.image_shape, config, seed).to(device)
        model.load_state_dict(state["model"])
        return model.eval().requires_grad_(False), f"checkpoint at iteration {int(state['iteration'])} of {config.iters}"
    raise UserError(
        f"no trained generator for {data.dataset_id} (seed {seed}, this config) under {directory.parent}; "
        f"run `tailbench generator train --dataset {data.name}` with the same options first"
    )


def draw_grid(model, data, out: Path, styles: int, per_class: int, seed: int, title: str) -> None:
    """Rows: classes from the largest to the smallest; columns: the real image, then one column per
    style code (the same code down a column, so a column shows one nuisance setting on every class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from torchvision.utils import make_grid

    from tailbench.storage.atomic import write_atomic

    device = data.train.x.device
    counts = data.train_counts.cpu()
    order = torch.argsort(counts, descending=True, stable=True).tolist()
    rng = torch.Generator().manual_seed(seed)
    picks, labels = [], []
    for c in order:
        members = torch.nonzero(data.train.y.cpu() == c).flatten()
        if len(members) == 0:
            continue
        chosen = members[torch.randperm(len(members), generator=rng)[:per_class]]
        picks.append(chosen)
        labels += [f"{data.class_names[c]} (n={int(counts[c])})"] * len(chosen)
    idx = torch.cat(picks).to(device)
    real = data.train.x[idx].float().div(255.0)
    style = torch.randn(styles, model.config.style_dim, generator=rng).to(device)
    with torch.no_grad():
        content = model.content(real * 2 - 1)
        columns = [real] + [model.decoder(content, s.expand(len(idx), -1)).add(1).mul(0.5).clamp(0, 1) for s in style]
    tiles = torch.stack(columns, dim=1).flatten(0, 1).cpu()  # row-major: image, then its versions
    if tiles.shape[1] not in (1, 3):
        tiles = tiles[:, :3] if tiles.shape[1] > 3 else tiles[:, :1]
    pad = 2
    grid = make_grid(tiles, nrow=styles + 1, padding=pad, pad_value=1.0).permute(1, 2, 0).numpy()
    h, w = data.image_shape[1] + pad, data.image_shape[2] + pad
    fig_w = max(4.0, (styles + 1) * 0.9 + 2.5)
    fig_h = max(2.5, len(idx) * 0.9 * h / w + 1.0)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h), dpi=100)
    ax.imshow(grid, interpolation="nearest")
    ax.set_yticks([pad + i * h + h / 2 - pad / 2 for i in range(len(idx))], labels, fontsize=8)
    ax.set_xticks([pad + j * w + w / 2 - pad / 2 for j in range(styles + 1)], ["real"] + [f"s{j + 1}" for j in range(styles)], fontsize=8)
    ax.axvline(w + pad / 2, color="red", linewidth=1)
    ax.set_title(f"GIT generator: {title}\nrows head to tail; columns: real, then decode(content, s_j), s_j ~ N(0, I)", fontsize=8)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_atomic(out, buffer.getvalue())
