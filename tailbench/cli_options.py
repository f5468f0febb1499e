"""Command-line options, each declared once as a `Flag` (spelling, help, how its text is read),
and the help formatter that shows every default.

A dataclass whose fields carry a flag (`option(...)`: RunConfig, LaunchSettings) is its own
command line: `add_fields` adds one argument per field, `from_args` reads them back by field name,
so a new run or launch option is one field. Imported when the CLI starts: no heavy imports here.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from tailbench.options import parse_assignments

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


@dataclass(frozen=True)
class Flag:
    """One option as the command line spells and reads it."""

    name: str  # "--data-dir"
    help: str
    type: Callable[[str], Any] | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    action: str | None = None  # "append" or "store_true"; None: one value
    convert: Callable[[Any], Any] | None = None  # the parsed value -> the field's value (KEY=VALUE items -> dict)

    def add(self, parser: argparse.ArgumentParser, dest: str | None = None, default: Any = None, help: str | None = None) -> None:
        kwargs: dict[str, Any] = {"help": help or self.help}
        if dest is not None:
            kwargs["dest"] = dest
        if self.action is not None:
            kwargs["action"] = self.action
        if self.action != "store_true":
            kwargs.update(default=default, metavar=self.metavar)
            if self.action is None and self.type is not None:
                kwargs["type"] = self.type
            if self.choices is not None:
                kwargs["choices"] = self.choices
        parser.add_argument(self.name, **kwargs)

    def value(self, parsed: Any) -> Any:
        return parsed if self.convert is None else self.convert(parsed)


def option(flag: Flag | None = None, default: Any = MISSING, default_factory: Any = MISSING, **metadata: Any) -> Any:
    """A dataclass field that is also a command-line option (`flag`; None: set by the command
    itself, e.g. the grid axes of `sweep`). Extra metadata (a launcher's `only_for`) rides along."""
    return field(default=default, default_factory=default_factory, metadata={"flag": flag, **metadata})


def flag_of(item: Field) -> Flag | None:
    return item.metadata.get("flag")


def add_fields(parser: argparse.ArgumentParser, cls: type) -> None:
    """One argument per flagged field of the dataclass `cls`, its dest the field's name."""
    for item in fields(cls):
        flag = flag_of(item)
        if flag is not None:
            flag.add(parser, dest=item.name, default=None if item.default is MISSING else item.default)


def from_args(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """An instance of `cls` from the parsed command line (each flagged field by its dest, read
    through its flag) and the values the command sets itself (`given`)."""
    values = dict(given)
    for item in fields(cls):
        if item.name not in values and hasattr(args, item.name):
            flag = flag_of(item)
            values[item.name] = getattr(args, item.name) if flag is None else flag.value(getattr(args, item.name))
    return cls(**values)


DATA_DIR = Flag("--data-dir", "folder of official dataset files (default: $TAILBENCH_DATA, else ~/.cache/tailbench)", type=Path, metavar="DIR")
DATASET_OPT = Flag("--dataset-opt", "dataset option, repeatable; `tailbench describe DATASET` lists a dataset's options",
                   metavar="KEY=VALUE", action="append", convert=lambda items: parse_assignments("--dataset-opt", items))
HP = Flag("--hp", "method hyper-parameter, repeatable; `tailbench list methods` shows the defaults",
          metavar="PART.KEY=VALUE", action="append", convert=lambda items: parse_assignments("--hp", items))
DEVICE = Flag("--device", "auto: CUDA when present, else the CPU", metavar="|".join(DEVICES))
METHOD_FILE = Flag("--method-file", "register the method parts a Python file defines (repeatable); see CONTRIBUTING.md",
                   metavar="FILE.py", action="append")
QUIET = Flag("--quiet", "no progress bar or tables", action="store_true")


def data_dir(p: argparse.ArgumentParser) -> None:
    DATA_DIR.add(p)


def dataset_opt(p: argparse.ArgumentParser) -> None:
    DATASET_OPT.add(p)


def device(p: argparse.ArgumentParser, default: str | None = "auto", what: str = "") -> None:
    choices = DEVICES if default == "auto" else DEVICES[1:]
    Flag(DEVICE.name, what or DEVICE.help, metavar="|".join(choices)).add(p, default=default)


def out(p: argparse.ArgumentParser, default: Path, what: str) -> None:
    p.add_argument("--out", type=Path, default=default, metavar="DIR", help=what)


def results(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=Path("results"), metavar="DIR", help="folder of run records to read")


def method_file(p: argparse.ArgumentParser) -> None:
    METHOD_FILE.add(p)
