"""How fast the `tailbench` command answers: wall time of commands that should never need torch.

    python scripts/bench_startup.py [--repeat 5] [--importtime]

Runs each command below --repeat times in a fresh interpreter (`python -m tailbench ...`, from
this checkout) and prints the best and the median wall time, the exit code, and whether torch
was imported (read from `python -X importtime`). With --importtime it also prints, per command,
the ten slowest package imports (cumulative, as `-X importtime` reports them).

The commands are the CLI's quick answers: help, lists, describe, and bad input that must be
refused before anything heavy loads. Load on the machine changes the numbers; note `uptime`
next to them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = [
    ["--help"],
    ["--version"],
    ["run", "--help"],
    ["list", "methods"],
    ["list", "datasets"],
    ["list", "recipes"],
    ["describe", "fmnist-rot-lt"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce+nope"],
    ["run", "--dataset", "nope", "--method", "ce"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--hp", "ce.gamma=2"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--recipe", "nope"],
    ["run", "--dataset", "fmnist-rot-lt", "--method", "ce", "--dataset-opt", "colour=red"],
    ["sweep", "--datasets", "fmnist-rot-lt", "--methods", "ce,drw+ce", "--seeds", "0"],
]


def input_mistakes(folder: Path) -> list[list[str]]:
    """Bad input that needs files to show (made under `folder`): the answers that used to come
    only after torch had loaded (4.5 s here before 2026-12-04)."""
    (folder / "empty").mkdir(exist_ok=True)
    (folder / "afile").write_text("")
    (folder / "broken.py").write_text("import no_such_module\n")
    (folder / "clash.py").write_text("from tailbench.methods import MethodPart, register_method\n"
                                     "@register_method('ce')\nclass P(MethodPart):\n    kind = 'loss'\n")
    base = ["run", "--dataset", "fmnist-rot-lt", "--method", "ce"]
    return [
        [*base, "--data-dir", str(folder / "empty"), "--out", str(folder / "runs")],
        *(["run", "--dataset", name, "--method", "ce", "--data-dir", str(folder / "empty"), "--out", str(folder / "runs")]
          for name in ("cifar10-lt", "gtsrb-lt", "tinyimagenet-lt", "k49-rot-lt")),
        [*base, "--out", str(folder / "afile")],
        [*base, "--method-file", str(folder / "broken.py")],
        [*base, "--method-file", str(folder / "clash.py")],
    ]


def timed(args: list[str], importtime: bool = False) -> tuple[float, int, str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "tailbench", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="120")
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started, done.returncode, done.stderr


def imported(stderr: str) -> list[tuple[int, str]]:
    """(cumulative us, module) of every import in an -X importtime log."""
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            if cumulative.isdigit():
                rows.append((int(cumulative), name))
    return rows


def slowest_packages(stderr: str, top: int = 10) -> list[tuple[int, str]]:
    """The slowest imports of whole packages (names without a dot), wherever they were imported."""
    return sorted((row for row in imported(stderr) if "." not in row[1]), reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="runs per command (default 5)")
    p.add_argument("--importtime", action="store_true", help="also list each command's slowest imports")
    args = p.parse_args(argv)
    if args.repeat < 1:
        print("bench_startup: --repeat must be at least 1", file=sys.stderr)
        return 2
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; {args.repeat} runs each")
    print(f"{'command':<78} {'best s':>7} {'median s':>9} {'exit':>4}  torch")
    import tempfile

    fixtures = tempfile.TemporaryDirectory(prefix="bench-startup-")
    for command in COMMANDS + input_mistakes(Path(fixtures.name)):
        times, code = [], 0
        for _ in range(args.repeat):
            seconds, code, _ = timed(command)
            times.append(seconds)
        _, _, log = timed(command, importtime=True)
        torch_loaded = any(name == "torch" for _, name in imported(log))
        label = "tailbench " + " ".join(command)
        print(f"{label[:78]:<78} {min(times):7.2f} {statistics.median(times):9.2f} {code:4d}  {'yes' if torch_loaded else 'no'}")
        if args.importtime:
            for micros, name in slowest_packages(log):
                print(f"    {micros / 1e6:6.3f} s  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
