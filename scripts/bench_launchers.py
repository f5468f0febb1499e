"""The launchers side by side on a 12-run digits grid: the same records, the same failures, and
what each costs per run.

    python scripts/bench_launchers.py [--epochs 1] [--skip ray,slurm] [--keep DIR]

The grid is digits-lt and digits-rot-lt x ce, ce+drs, ce+refuse_rot x seeds 0, 1: 12 runs, of
which the two ce+refuse_rot runs on digits-rot-lt fail on purpose (tests/method_files). It runs
through, in this order, each into its own folder:

1. local, one after another in this process, torch's default threads (today's `sweep`);
2. local, one after another, 1 thread per run (the records every launcher below must reproduce);
3. local --jobs 2 (two worker processes, 1 thread each);
4. ray, on a new local Ray cluster of this machine's CPUs, 1 CPU per run;
5. slurm --slurm-local: the job array through submitit's LocalExecutor (every task at once);

and times one cold `tailbench run` of one grid run in a fresh process (the in-process variants
time a warm process: one untimed run goes first). It prints wall time per grid
and per run, checks that 3-5 wrote per_class.csv files byte-identical to 2 and reported the same
failure lines, and exits 1 if they did not.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHOD_FILE = ROOT / "tests" / "method_files" / "refuse_rot.py"
DATASETS, METHODS, SEEDS = "digits-lt,digits-rot-lt", "ce,ce+drs,ce+refuse_rot", "0,1"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--skip", default="", help="comma-separated launchers to leave out: ray, slurm")
    p.add_argument("--keep", type=Path, help="write the records here instead of a temporary folder")
    args = p.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    sys.path.insert(0, str(ROOT))
    from tailbench.benchmarks.runner import RunConfig, run
    from tailbench.cli import main as tailbench

    grid = ["--datasets", DATASETS, "--methods", METHODS, "--seeds", SEEDS, "--epochs", str(args.epochs),
            "--method-file", str(METHOD_FILE), "--quiet"]
    variants = {
        "local, in process, default threads": ["--out", "{}/local-default"],
        "local, in process, 1 thread": ["--cpus-per-run", "1", "--out", "{}/local-1"],
        "local --jobs 2": ["--jobs", "2", "--cpus-per-run", "1", "--out", "{}/jobs-2"],
        "ray (local cluster)": ["--launcher", "ray", "--cpus-per-run", "1", "--out", "{}/ray"],
        "slurm --slurm-local": ["--launcher", "slurm", "--slurm-local", "--cpus-per-run", "1", "--out", "{}/slurm"],
    }
    variants = {k: v for k, v in variants.items() if not any(k.startswith(s) for s in skip)}
    with contextlib.ExitStack() as stack:
        folder = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        # One run before the clock starts: the in-process variants then time a warm process.
        run(RunConfig(dataset="digits-lt", method="ce", epochs=args.epochs, out=folder / "warm-up", quiet=True))
        results = {}
        for name, extra in variants.items():
            extra = [e.format(folder) for e in extra]
            log = io.StringIO()
            started = time.perf_counter()
            with contextlib.redirect_stderr(log):
                code = tailbench(["sweep", *grid, *extra])
            wall = time.perf_counter() - started
            failures = sorted(line for line in log.getvalue().splitlines() if line.startswith("  failed: "))
            out = Path(extra[extra.index("--out") + 1])
            results[name] = (code, wall, failures, {str(f.relative_to(out)): f.read_bytes() for f in out.rglob("per_class.csv")})
            print(f"{name}: exit {code}, {wall:.1f} s, {len(results[name][3])} records, {len(failures)} failures", flush=True)
        cold = cold_run(folder / "cold", args.epochs)

    print(f"\n{args.epochs} epoch(s) per run on {os.cpu_count()} CPUs")
    print("| launcher | 12-run grid wall (s) | per run (s) |\n|---|---|---|")
    for name, (_, wall, _, _) in results.items():
        print(f"| {name} | {wall:.1f} | {wall / 12:.2f} |")
    print(f"| one cold `tailbench run` (fresh process) | – | {cold:.2f} |")
    reference = results["local, in process, 1 thread"]
    ok = True
    for name, (code, _, failures, records) in results.items():
        if name.startswith("local, in process, default"):
            continue
        same = code == reference[0] == 1 and failures == reference[2] and records == reference[3] and len(records) == 10
        ok &= same
        print(f"{name}: {'same 10 records and 2 failure lines as in process' if same else 'DIFFERS from the in-process records'}")
    for line in reference[2]:
        print(line)
    return 0 if ok else 1


def cold_run(out: Path, epochs: int) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tailbench", "run", "--dataset", "digits-lt", "--method", "ce", "--epochs", str(epochs),
                    "--out", str(out), "--quiet"], check=True, env=env)
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
