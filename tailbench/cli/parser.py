"""The `tailbench` argument parser: every command, its options (the run and launch options made
from their declarations, cli_options.add_fields) and the function that runs it."""

from __future__ import annotations

import argparse
from pathlib import Path

from tailbench import __version__, cli_options, limits
from tailbench.benchmarks import rerun as rerun_command
from tailbench.cli.catalogue import cmd_list
from tailbench.cli.datasets import cmd_data, cmd_describe, cmd_export
from tailbench.cli.records import cmd_leaderboard
from tailbench.cli.runs import cmd_evaluate, cmd_rerun, cmd_run, cmd_sweep
from tailbench.leaderboard import compare as compare_command
from tailbench.submission import submit as submit_command


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 2, and help shows defaults."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", cli_options.HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.usage_error(self.prog, message)

    def usage_error(self, prog: str, message: str) -> None:
        self.exit(2, f"{prog}: error: {message} (see {prog} --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """argparse leaves arguments no command knows to the top parser, which would name itself;
        the command they were given to names them instead."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            self.usage_error(getattr(parsed, "prog", self.prog), f"unrecognized arguments: {' '.join(extra)}")
        return parsed


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
