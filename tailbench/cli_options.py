"""The options several `tailbench` commands share, each declared once (name, type, help), and the
help formatter that shows every default. Imported when the CLI starts: no heavy imports here."""

from __future__ import annotations

import argparse
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda")


class HelpFormatter(argparse.HelpFormatter):
    """Appends `(default: X)` to an option's help when it has a default worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if "%(default)" in help_text or "(default" in help_text or not action.option_strings:
            return help_text
        if default is None or default is False or default is argparse.SUPPRESS or default == []:
            return help_text
        shown = ",".join(map(str, default)) if isinstance(default, list) else "%(default)s"
        return f"{help_text} (default: {shown})".strip()


def data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="folder of official dataset files (default: $TAILBENCH_DATA, else ~/.cache/tailbench)")


def dataset_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset-opt", action="append", metavar="KEY=VALUE",
                   help="dataset option, repeatable; `tailbench describe DATASET` lists a dataset's options")


def device(p: argparse.ArgumentParser, default: str | None = "auto", what: str = "") -> None:
    choices = DEVICES if default == "auto" else DEVICES[1:]
    p.add_argument("--device", default=default, metavar="|".join(choices),
                   help=what or "auto: CUDA when present, else the CPU")


def out(p: argparse.ArgumentParser, default: Path, what: str) -> None:
    p.add_argument("--out", type=Path, default=default, metavar="DIR", help=what)


def results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR", help="folder of run records to read")


def method_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method-file", action="append", metavar="FILE.py",
                   help="register the method parts a Python file defines (repeatable); see CONTRIBUTING.md")
