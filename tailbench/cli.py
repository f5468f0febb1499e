"""The `tailbench` command line.

It answers at once: this module and the parsers of every command import nothing heavy, and each
command checks every name and option (datasets, recipes, method specs, hyper-parameters, devices)
before torch loads, so help, lists, `describe` and bad input take a fraction of a second
(`scripts/bench_startup.py` measures it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tailbench import __version__, cli_options, limits
from tailbench.benchmarks import rerun as rerun_command
from tailbench.errors import Terminated, UserError, os_error_line, run_signals
from tailbench.leaderboard import compare as compare_command
from tailbench.options import parse_assignments
from tailbench.submission import submit as submit_command
from tailbench.storage.folders import require_folder


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 2, and help shows defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", cli_options.HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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


def checked_configs(args: argparse.Namespace, datasets: list[str], methods: list[str], seeds: list[int], here: bool = True) -> list:
    """Every run of the grid, resolved and checked (names, options, spec, hyper-parameters, a
    writable --out and, for runs on this machine, the dataset's files) before torch loads: the
    resolved runs are what the runner and the sweep go on with."""
    from tailbench.benchmarks.config import RunConfig, resolve
    from tailbench.datasets.sources import default_data_dir
    from tailbench.results.store import is_complete
    from tailbench.storage.writable import check_writable

    load_method_files(args.method_file)
    runs = [resolve(cli_options.from_args(RunConfig, args, dataset=d, method=m, seed=s)) for d in datasets for m in methods for s in seeds]
    checked_data: set[str] = set()
    for run in runs:
        if is_complete(run.directory) and not run.config.force:
            continue  # skipped by the run itself; nothing to write, no data to read
        check_writable(run.directory, "--out")  # a file, a read-only folder or a full disk: before torch loads
        if here and run.builder.dataset_id not in checked_data:  # Ray and Slurm tasks may see other files
            run.builder.check_files(run.config.data_dir or default_data_dir())  # files not there: before torch loads
            checked_data.add(run.builder.dataset_id)
    return runs


def cmd_run(args: argparse.Namespace) -> int:
    resolved, = checked_configs(args, [args.dataset], [args.method], [args.seed])
    from tailbench.benchmarks.runner import run

    run(resolved)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    runs = checked_configs(args, args.datasets, args.methods, args.seeds, here=args.launcher == "local")
    from tailbench.launchers.settings import LaunchSettings
    from tailbench.launchers.sweep import sweep

    return sweep(runs, args.method_file or [], cli_options.from_args(LaunchSettings, args))


def cmd_leaderboard(args: argparse.Namespace) -> int:
    require_folder(args.results, f"--results {args.results}", "run `tailbench run` first or point --results at a folder of run records")
    from tailbench.leaderboard.build import build_leaderboard

    problems: list[str] = []
    for path in build_leaderboard(args.results, args.out, problems):
        print(f"wrote {path}")
    for problem in problems:
        print(f"{args.prog}: error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def cmd_rerun(args: argparse.Namespace) -> int:
    """A harness run is retrained (benchmarks/rerun.py); a model trained outside tailbench is
    re-evaluated from its checkpoint (outside.py)."""
    from tailbench.benchmarks.rerun import chosen_run, entry_runs

    if args.device is not None and args.device not in cli_options.DEVICES[1:]:
        raise UserError(f"--device {args.device!r} is not one of {', '.join(cli_options.DEVICES[1:])} (default: the record's device type)")
    run = chosen_run(entry_runs(args.results, args.benchmark, args.method), args.benchmark, args.method, args.seed)
    if run.record.outside is None:
        if args.checkpoint is not None:
            raise UserError(f"--checkpoint is for models trained outside tailbench; {run.record.describe()} was trained by tailbench")
        return rerun_command.cmd_rerun(args)
    from tailbench.outside import reevaluate

    return 0 if reevaluate(run, args.checkpoint, args.device, args.data_dir) else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tailbench.datasets import get_dataset
    from tailbench.outside import model_options, parse_card

    card = parse_card(args.card)  # every cheap check before torch loads
    get_dataset(args.dataset)
    from tailbench.benchmarks.config import check_device_choice

    check_device_choice(args.device)
    from tailbench.outside import evaluate_outside

    directory = evaluate_outside(
        args.dataset, args.model_file, args.checkpoint, card, model_options=model_options(parse_assignments("--model-opt", args.model_opt)),
        seed=args.seed, device=args.device, out=args.out, data_dir=args.data_dir, recipe=args.recipe,
        allow_unverified_data=args.allow_unverified_data, force=args.force,
    )
    print(f"wrote {directory} (a model trained outside tailbench; submit it with `tailbench submit {directory}`)")
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


def comma_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing")
    return items


def comma_ints(text: str) -> list[int]:
    return [limits.seed(t) for t in comma_list(text)]


def add_run_options(p: argparse.ArgumentParser) -> None:
    """RunConfig's options (benchmarks/config.py declares each one), and --method-file."""
    from tailbench.benchmarks.config import RunConfig

    cli_options.add_fields(p, RunConfig)
    cli_options.method_file(p)


def add_launch_options(p: argparse.ArgumentParser) -> None:
    from tailbench.launchers.settings import LaunchSettings

    cli_options.add_fields(p, LaunchSettings)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="tailbench", description="Per-class accuracy and invariance benchmarks for long-tailed classification.")
    parser.add_argument("--version", action="version", version=f"tailbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("list", help="list registered datasets, method parts or recipes")
    p.add_argument("what", choices=["datasets", "methods", "recipes"])
    cli_options.method_file(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("describe", help="per-class split sizes, sources and manifest of a dataset (no data needed)")
    p.add_argument("dataset")
    cli_options.dataset_opt(p)
    cli_options.data_dir(p)
    p.add_argument("--json", action="store_true", help="print everything as one JSON object instead")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("run", help="train and evaluate one method on one dataset with one seed")
    p.add_argument("--dataset", required=True, help="a dataset name; see `tailbench list datasets`")
    p.add_argument("--method", required=True, help="a spec: loss[+rule][+augmentation...], e.g. ce+drs")
    p.add_argument("--seed", type=limits.seed, default=0, help=f"the run's seed, 0 to {limits.MAX_SEED}")
    add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="run every dataset x method x seed combination, skipping finished runs")
    p.add_argument("--datasets", required=True, type=comma_list, help="comma-separated dataset names")
    p.add_argument("--methods", required=True, type=comma_list, help="comma-separated method specs")
    p.add_argument("--seeds", default=[0], type=comma_ints, help="comma-separated seeds")
    add_run_options(p)
    add_launch_options(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("leaderboard", help="build LEADERBOARD.md, index.html, CSV exports and plots from run records")
    cli_options.results(p)
    cli_options.out(p, Path("leaderboard"), "folder to write the leaderboard into")
    p.set_defaults(func=cmd_leaderboard)
    submit_command.add_parser(sub)
    rerun_command.add_parser(sub)
    sub.choices["rerun"].set_defaults(func=cmd_rerun)  # outside models are re-evaluated, not retrained
    compare_command.add_parser(sub)
    __import__("tailbench.generative.cli", fromlist=["add_parser"]).add_parser(sub)  # tailbench generator train|show

    p = sub.add_parser("evaluate", help="evaluate a checkpoint trained elsewhere and write a record marked as trained outside tailbench")
    p.add_argument("--dataset", required=True, help="a dataset name; see `tailbench list datasets`")
    p.add_argument("--model-file", required=True, metavar="FILE.py|timm:NAME", help="a Python file defining build_model(num_classes, image_shape, **options), or timm:NAME")
    p.add_argument("--checkpoint", required=True, type=Path, metavar="FILE", help="the weights: a state dict saved by torch.save (loaded with weights_only)")
    p.add_argument("--model-opt", action="append", metavar="KEY=VALUE", help="an option for build_model or timm.create_model, repeatable")
    p.add_argument("--card", action="append", metavar="KEY=VALUE",
                   help="model card, all required: name=, url=, training_data=, test_used_for_selection=yes|no")
    p.add_argument("--seed", type=limits.seed, default=0, help="the seed of the eKLD draws")
    p.add_argument("--recipe", help="the recipe whose evaluation settings apply (default: the dataset's)")
    cli_options.device(p)
    cli_options.out(p, Path("runs"), "folder to write the record into")
    cli_options.data_dir(p)
    p.add_argument("--allow-unverified-data", action="store_true", help="use dataset files whose checksums are not pinned")
    p.add_argument("--force", action="store_true", help="evaluate again over an existing record")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write a benchmark's frozen splits as npz arrays or an image folder, with a checksum manifest")
    p.add_argument("dataset")
    p.add_argument("--format", required=True, metavar="npz|imagefolder", help="npz: x, y arrays per split; imagefolder: PNGs in class folders")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="a new or empty folder")
    cli_options.dataset_opt(p)
    cli_options.data_dir(p)
    p.add_argument("--allow-unverified-data", action="store_true", help="use dataset files whose checksums are not pinned")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("data", help="dataset files")
    data_sub = p.add_subparsers(dest="action", required=True, parser_class=OneLineParser)
    fetch = data_sub.add_parser("fetch", help="install or download a dataset's official files")
    fetch.add_argument("dataset")
    cli_options.data_dir(fetch)
    fetch.set_defaults(func=cmd_data)
    name_commands(parser)
    return parser


def name_commands(parser: argparse.ArgumentParser) -> None:
    """Every command's parsed arguments carry `prog`, the command as typed ("tailbench data fetch"):
    every message a command prints starts with it, as argparse's own usage errors do."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.set_defaults(prog=child.prog)
                name_commands(child)


def main(argv: list[str] | None = None) -> int:
    """Every line a command ends with starts `PROG: ` (the command as typed): `error: ...` for a
    mistake (exit code 2), `interrupted; ...` or `terminated (SIGTERM); ...` for a signal."""
    args = build_parser().parse_args(argv)
    prog = args.prog
    try:
        with run_signals():  # Ctrl-C and SIGTERM end the work through the same clean-up
            return args.func(args)
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except BrokenPipeError:  # `tailbench list methods | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error while Python flushes stdout
        return 0
    except OSError as error:  # the disk, permissions or the file system, met during the work
        print(f"{prog}: error: {os_error_line(error)}", file=sys.stderr)
        return UserError.exit_code
    except Terminated:
        print(f"{prog}: terminated (SIGTERM); no partial record was written{resume_note()}", file=sys.stderr)
        return Terminated.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no partial record was written{resume_note()}", file=sys.stderr)
        return 130


def resume_note() -> str:
    """What running the command again does, from the checkpoints this process made or resumed."""
    checkpoint = sys.modules.get("tailbench.benchmarks.checkpoint")  # never imported (with torch) just for this
    if checkpoint is None or checkpoint.TRAINING.started is None:
        return ""
    if checkpoint.TRAINING.last_epoch is None:
        return "; no checkpoint had been made yet, so the same command starts the run over"
    return f"; the same command resumes from the checkpoint after epoch {checkpoint.TRAINING.last_epoch}"
