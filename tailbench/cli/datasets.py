"""The dataset commands: `describe` (per-class sizes and sources, no data needed), `export` (the
frozen splits as files) and `data fetch`."""

from __future__ import annotations

import argparse

from tailbench.errors import UserError
from tailbench.options import parse_assignments


def cmd_describe(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from tailbench.datasets import get_dataset
    from tailbench.datasets.imbalance import long_tailedness

    builder = get_dataset(args.dataset, parse_assignments("--dataset-opt", args.dataset_opt))
    manifest, frozen = builder.manifest(data_dir=args.data_dir)
    shape = long_tailedness(manifest.counts("train"))
    if args.json:
        import json

        splits = {split: manifest.counts(split) for split in ("train", "val", "test")}
        print(json.dumps({
            "dataset_id": builder.dataset_id, "classes": manifest.class_names, "counts": splits,
            "totals": {split: sum(counts) for split, counts in splits.items()},
            "long_tailedness": {"split": "train", **shape.as_dict()},
            "source": builder.source, "licence": builder.licence, "options": builder.opts, "recipe": builder.recipe,
            "nuisance": builder.nuisance, "ekld_families": list(builder.invariance_families),
            "manifest_sha256": manifest.sha256, "manifest_frozen": frozen,
        }, default=str))
        return 0
    table = Table("class", "name", "train", "val", "test", title=f"{builder.dataset_id}")
    train, val, test = manifest.counts("train"), manifest.counts("val"), manifest.counts("test")
    for c, name in enumerate(manifest.class_names):
        table.add_row(str(c), name, str(train[c]), str(val[c]), str(test[c]))
    table.add_row("all", "", f"{sum(train):,}", f"{sum(val):,}", f"{sum(test):,}")
    Console().print(table)
    print(f"source: {builder.source}")
    print(f"licence: {builder.licence}")
    print("options: " + ", ".join(f"{k}={v}" for k, v in builder.opts.items()))
    print(f"recipe: {builder.recipe}; nuisance: {builder.nuisance or 'none'}; eKLD families: {', '.join(builder.invariance_families) or 'none'}")
    print(f"manifest sha256: {manifest.sha256} ({'frozen, committed' if frozen else 'generated for this option set, not frozen'})")
    print(f"long-tailedness of the train split (HeroLT's measures): imbalance factor {shape.imbalance_factor:.1f}, "
          f"Gini {shape.gini_class_sizes:.3f}, Pareto-LT ratio {shape.pareto_lt_ratio:.3f}")
    print(f"  Gini over class sizes (over per-image labels, as HeroLT's table computes it: {shape.gini_labels:.3f}); "
          f"Pareto-LT: the {shape.tail_classes} smallest classes hold {1 - shape.pareto_alpha:.0%} of the images, "
          f"the {shape.head_classes} largest {shape.pareto_alpha:.0%}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tailbench.datasets import get_dataset

    builder = get_dataset(args.dataset, parse_assignments("--dataset-opt", args.dataset_opt))  # a bad name: said before any data loads
    if args.format not in ("npz", "imagefolder"):
        raise UserError(f"--format {args.format!r} is not one of npz, imagefolder")
    from tailbench.exports import check_target

    check_target(args.out)
    from tailbench.api import load_benchmark
    from tailbench.exports import export

    bench = load_benchmark(args.dataset, args.data_dir, options=parse_assignments("--dataset-opt", args.dataset_opt),
                           allow_unverified_data=args.allow_unverified_data)
    record = export(bench.data, bench.name, args.format, args.out)
    sizes = ", ".join(f"{split} {size:,}" for split, size in record["split_sizes"].items())
    print(f"wrote {args.out}: {builder.dataset_id} as {args.format} ({sizes} images, {len(record['files']):,} files), {args.out / 'MANIFEST.json'}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from tailbench.datasets import get_dataset
    from tailbench.datasets.sources import default_data_dir, removing_new_empty_folders

    builder = get_dataset(args.dataset)
    data_dir = args.data_dir or default_data_dir()
    with removing_new_empty_folders(data_dir):
        print(f"{args.dataset}: {builder.fetch(data_dir)}")
    return 0
