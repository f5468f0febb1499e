"""`tailbench list`: the registered datasets, method parts (with a method file's) and recipes."""

from __future__ import annotations

import argparse

from tailbench.errors import UserError


def load_method_files(paths: list[str] | None) -> None:
    from tailbench.methods import load_method_file

    for path in paths or []:
        load_method_file(path)


def cmd_list(args: argparse.Namespace) -> int:
    from tailbench.console import print_listing

    if args.method_file and args.what != "methods":
        raise UserError(f"--method-file lists the parts a file defines: use it with `tailbench list methods`, not {args.what}")
    if args.what == "datasets":
        from tailbench.datasets import dataset_names, get_dataset

        headers = ["dataset", "recipe", "nuisance", "eKLD families", "summary"]
        rows = []
        for name in dataset_names():
            builder = get_dataset(name)
            rows.append([name, builder.recipe, builder.nuisance or "—", ", ".join(builder.invariance_families), builder.summary])
    elif args.what == "methods":
        from tailbench.methods import method_parts, part_source

        load_method_files(args.method_file)
        headers = ["part", "kind", "description", "hyper-parameters", "paper", "code"]
        rows = []
        for name, part in method_parts().items():
            hp = ", ".join(f"{k}={v}" for k, v in part.hparams.items()) or "—"
            source = part_source(part)
            rows.append([name, part.kind, part.description, hp, part.paper, "built in" if source.origin == "builtin" else f"{source.file} ({source.origin})"])
    else:
        from tailbench.recipes.recipe import load_recipe, recipe_names

        headers = ["recipe", "model", "epochs", "batch", "lr", "milestones", "augment"]
        rows = []
        for name in recipe_names():
            r = load_recipe(name)
            rows.append([name, r.model, str(r.epochs), str(r.batch_size), f"{r.lr:g}", str(list(r.milestones)), ", ".join(r.augment) or "—"])
    print_listing(headers, rows)
    return 0
