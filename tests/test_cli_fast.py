"""The CLI answers without torch: help, lists, describe and bad input never import it (speed itself
is measured by scripts/bench_startup.py, not here), and the options it shares read the same."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "label_smoothing.py"

PROBE = """
import contextlib, io, os, sys
from tailbench.cli import main
os.makedirs("empty", exist_ok=True)
open("afile", "w").close()
with open("clash.py", "w") as f:
    f.write("from tailbench.methods import MethodPart, register_method\\n@register_method('ce')\\nclass P(MethodPart):\\n    kind = 'loss'\\n")
commands = [
    ["--help"], ["--version"], ["run", "--help"], ["list", "methods"], ["list", "datasets"], ["list", "recipes"],
    ["describe", "fmnist-rot-lt"], ["describe", "cifar10-lt", "--dataset-opt", "ratio=10"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce+nope"],
    ["run", "--dataset", "nope", "--method", "ce"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "drw+ce"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ldam+mixup"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce+remix", "--hp", "remix.kappa=0.5"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce+drw", "--hp", "drw.beta=1.5"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--device", "tpu"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--recipe", "nope"],
    ["sweep", "--datasets", "fmnist-rot-lt,fmnist-bg-lt", "--methods", "ce,ce+drs+augerino", "--hp", "augerino.copies=0"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--data-dir", "empty", "--out", "runs"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--out", "afile"],
    ["sweep", "--datasets", "fmnist-rot-lt", "--methods", "ce", "--seeds", "0,1", "--data-dir", "empty", "--out", "runs"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--method-file", "clash.py"],
    ["run", "--dataset", "k49-rot-lt", "--method", "ce", "--data-dir", "empty", "--out", "runs"],
    *(["run", "--dataset", name, "--method", "ce", "--data-dir", "empty", "--out", "runs"]
      for name in ("cifar10-lt", "cifar100-lt", "gtsrb-lt", "tinyimagenet-lt")),
]
codes = []
for command in commands:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            codes.append(main(command))
        except SystemExit as exit_:
            codes.append(exit_.code)
heavy = sorted(m for m in ("torch", "torchvision", "timm", "matplotlib", "pandas") if m in sys.modules)
print(codes, heavy)
"""


def test_quick_commands_and_bad_input_never_import_torch(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2] []", done.stdout


def test_version_and_defaults_in_help(cli):
    version = cli("--version")
    assert version.code == 0 and version.out.startswith("tailbench 0.")
    run_help = cli("run", "--help").out
    assert "(default: runs)" in " ".join(run_help.split()) and "(default: auto)" in run_help and "(default: 0)" in run_help
    assert "(default: results)" in cli("submit", "--help").out and "(default: leaderboard)" in cli("leaderboard", "--help").out


def test_an_unknown_argument_is_named_by_the_command_it_was_given_to(cli):
    for command, prog in ((("run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--cpus-per-run", "1"), "tailbench run"),
                          (("data", "fetch", "fmnist-rot-lt", "--zzz"), "tailbench data fetch")):
        result = cli(*command)
        assert result.code == 2 and result.out == ""
        assert result.err.startswith(f"{prog}: error: unrecognized arguments: ") and result.err.count("\n") == 1, result.err
        assert result.err.rstrip().endswith(f"(see {prog} --help)")


def test_shared_options_read_the_same_in_every_command(cli):
    def help_of(*command: str, option: str) -> str:
        text = " ".join(cli(*command, "--help").out.split())
        start = text.index(option + " ", text.index("options:"))
        return text[start:start + 60]

    assert help_of("run", option="--data-dir DIR") == help_of("sweep", option="--data-dir DIR") == help_of("rerun", "x", "y", option="--data-dir DIR") \
        == help_of("data", "fetch", option="--data-dir DIR") == help_of("generator", "train", option="--data-dir DIR")
    assert help_of("run", option="--dataset-opt KEY=VALUE") == help_of("describe", "x", option="--dataset-opt KEY=VALUE")
    assert help_of("submit", option="--results DIR") == help_of("compare", "a", "b", "c", option="--results DIR") \
        == help_of("leaderboard", option="--results DIR")


def test_list_methods_shows_the_parts_of_a_method_file(cli):
    listed = cli("list", "methods", "--method-file", EXAMPLE)  # not a terminal: one block per part
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    block = lines[lines.index("ls"):lines.index("ls") + 6]
    assert block[1] == "  kind: loss" and block[2].startswith("  description: cross-entropy against labels smoothed"), block
    assert "  hyper-parameters: eps=0.1" in block and any("label_smoothing.py" in line for line in block)
    refused = cli("list", "datasets", "--method-file", EXAMPLE)
    assert refused.code == 2 and "use it with `tailbench list methods`" in refused.error_line()


def test_an_unknown_part_hints_at_the_method_file(cli, tmp_path):
    result = cli("run", "--dataset", "digits-lt", "--method", "tb_not_a_part+drs", "--out", tmp_path / "out")
    assert result.code == 2 and "--method-file FILE.py" in result.error_line()


def test_the_natural_family_names_are_the_registered_families():
    from tailbench.families import NATURAL_FAMILIES
    from tailbench.nuisance import FAMILIES

    assert set(NATURAL_FAMILIES) <= set(FAMILIES)


def test_a_listing_is_never_cut_when_piped_or_narrow():
    import io

    from rich.console import Console

    from tailbench.console import print_listing

    rows = [["tau_norm", "stage", "a description long enough that an 80-column table would cut it to an ellipsis"]]
    narrow = Console(file=io.StringIO(), width=80, force_terminal=True)
    import contextlib

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        print_listing(["part", "kind", "description"], rows, narrow)
    assert printed.getvalue().splitlines() == ["tau_norm", "  kind: stage", "  description: " + rows[0][2]]
    wide = Console(file=io.StringIO(), width=200, force_terminal=True, color_system=None)
    print_listing(["part", "kind", "description"], rows, wide)
    assert rows[0][2] in wide.file.getvalue() and "┃ part" in wide.file.getvalue()
