"""The commands that train or evaluate: `run`, `sweep`, `rerun` and `evaluate`, each checking every
name, option and file it can before torch loads."""

from __future__ import annotations

import argparse

from tailbench import cli_options
from tailbench.benchmarks import rerun as rerun_command
from tailbench.cli.catalogue import load_method_files
from tailbench.errors import UserError
from tailbench.options import parse_assignments


def checked_runs(args: argparse.Namespace, datasets: list[str], methods: list[str], seeds: list[int], here: bool = True) -> list:
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
    resolved, = checked_runs(args, [args.dataset], [args.method], [args.seed])
    from tailbench.benchmarks.runner import run

    run(resolved)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    runs = checked_runs(args, args.datasets, args.methods, args.seeds, here=args.launcher == "local")
    from tailbench.launchers.settings import LaunchSettings
    from tailbench.launchers.sweep import sweep

    return sweep(runs, args.method_file or [], cli_options.from_args(LaunchSettings, args))


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
