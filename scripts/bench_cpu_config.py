"""The CPU configurations a paper-recipe grid could run with, timed side by side and checked for determinism.

    nice -n 5 python scripts/bench_cpu_config.py [--epochs 3] [--repeats 2] [--images N] [--json OUT]

Paper recipe `fmnist` (ResNet-20, batch 128) on the real fmnist-bg-lt training set (7,437 images),
method `ce`, seed 0, trained by the harness (`tailbench.benchmarks.trainer.train`) for --epochs
epochs in a fresh process per run; the first epoch (warm-up, and compilation where there is
one) is not timed. It is a `train` call of its own, as in bench_common.epoch_seconds, so that
the CPU time of the timed epochs is read alone (each call builds its SGD optimizer afresh). --images N trains on the first N images only: a fixed ceil(N / 128) steps an
epoch, for a loaded machine (1,293 = 10 full batches and a last one of 13, as the full epoch ends).
Speed does not depend on which images. Measured, repeats interleaved so that a change of load hits both alike:

(a) one process, 2 threads (`torch.set_num_threads(2)`, as `--cpus-per-run 2` sets it): images/s;
(b) two processes at once, 1 thread each (`--jobs 2 --cpus-per-run 1`), started together after
    both have loaded their data: the sum of their images/s;
(c) `torch.compile(model, dynamic=False)` at 2 threads: the model's forward and, through
    AOTAutograd, its backward compiled by inductor (loss and SGD step stay eager), in the same
    harness loop: once with an empty TORCHINDUCTOR_CACHE_DIR (cold) and once with the cache the
    first run filled (warm). Compile time = first epoch minus a steady epoch (it includes the
    recompilation for the last, 13-image batch);
(e) two compiled processes at once, 1 thread each, on that same cache;
(d) determinism: every run hashes its model's parameters and buffers after all its steps
    (sha256 of the bytes); runs of one configuration must match bit for bit, and compiled runs
    are compared with eager ones (equal or not, and the largest parameter difference).

The load average (/proc/loadavg) is read before and after each measurement, and each run's CPU
seconds per wall second shows how much of the machine it got (under `sched_autogroup`, another
session's runs take their share whatever their nice value); images per CPU second is the rate
that is left when that share is divided out (for 1-thread runs; 2 threads spin at OpenMP barriers
when one of them is descheduled, which counts as CPU time). Workers run a copy of this script
taken at the start. Nothing is written outside a temporary folder, except --json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import method_context, run_script

SCRIPT = Path(__file__).resolve()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fmnist-bg-lt")
    p.add_argument("--recipe", default="fmnist")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run, the first not timed (default 3)")
    p.add_argument("--repeats", type=int, default=2, help="runs of (a) and of (b), interleaved (default 2)")
    p.add_argument("--no-compile", action="store_true", help="leave out (c) and (e)")
    p.add_argument("--no-compiled-pair", action="store_true", help="leave out (e)")
    p.add_argument("--images", type=int, help="train on the first N images of the training set (default: all)")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    if args.epochs < 2:
        p.error(f"--epochs {args.epochs}: the first epoch is not timed, so at least 2 are needed")
    if args.repeats < 1:
        p.error("--repeats must be at least 1")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_cpu_config.") as tmp:
        tmp = Path(tmp)
        base = {"dataset": args.dataset, "recipe": args.recipe, "epochs": args.epochs, "images": args.images, "seed": 0}
        bench = Bench(base, tmp)
        for r in range(args.repeats):
            bench.measure("a", f"(a) 2 threads, eager, run {r + 1}", [{"threads": 2}])
            bench.measure("b", f"(b) 2 x 1 thread, eager, run {r + 1}", [{"threads": 1}, {"threads": 1}])
        if not args.no_compile:
            cache = {"TORCHINDUCTOR_CACHE_DIR": str(tmp / "inductor")}
            bench.measure("c_cold", "(c) 2 threads, compiled, cold cache", [{"threads": 2, "compile": True}], cache)
            bench.measure("c_warm", "(c) 2 threads, compiled, warm cache", [{"threads": 2, "compile": True}], cache)
            if not args.no_compiled_pair:
                pair = [{"threads": 1, "compile": True}, {"threads": 1, "compile": True}]
                bench.measure("e", "(e) 2 x 1 thread, compiled, same cache", pair, cache)
        figures = summarize(bench, args)
    figures["script_seconds"] = time.perf_counter() - started
    print(f"\nscript time {figures['script_seconds'] / 60:.1f} min")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


def load_average() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def loads(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


class Bench:
    """Runs workers (fresh processes of a copy of this script), a measurement's workers all at once."""

    def __init__(self, base: dict, tmp: Path) -> None:
        self.base, self.tmp = base, tmp
        self.script = tmp / "worker.py"
        shutil.copyfile(SCRIPT, self.script)
        path = os.environ.get("PYTHONPATH")
        self.pythonpath = str(SCRIPT.parent) + (os.pathsep + path if path else "")  # bench_common
        self.measurements: list[dict] = []

    def measure(self, kind: str, label: str, specs: list[dict], env: dict[str, str] | None = None) -> dict:
        load_before = load_average()
        print(f"{label}: load average {loads(load_before)} ...", flush=True)
        n = len(self.measurements)
        procs = []
        for i, spec in enumerate(specs):
            spec = {**self.base, "compile": False, **spec, "state": str(self.tmp / f"state-{n}-{i}.pt")}
            err = open(self.tmp / f"stderr-{n}-{i}.txt", "w+")
            proc = subprocess.Popen(
                [sys.executable, str(self.script), "--worker", json.dumps(spec)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, text=True, env={**os.environ, "PYTHONPATH": self.pythonpath, **(env or {})},
            )
            procs.append((proc, err, spec))
        for proc, err, _ in procs:  # every worker has its data and model: start them together
            seen = ""
            while (line := proc.stdout.readline()) and line.strip() != "ready":
                seen += line
            if not line:
                fail(procs, err, seen)
        for proc, _, _ in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc, err, spec in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0 or not out.strip():
                fail(procs, err, out)
            results.append({**json.loads(out.strip().splitlines()[-1]), "state": spec["state"]})
            err.close()
        m = {"kind": kind, "label": label, "load_before": load_before, "load_after": load_average(), "runs": results}
        if len(results) > 1:  # how much of the timed epochs ran at the same time
            starts = [r["timed_window"][0] for r in results]
            ends = [r["timed_window"][1] for r in results]
            m["overlap"] = max(0.0, min(ends) - max(starts)) / max(e - s for s, e in zip(starts, ends))
        m["images_per_s"] = sum(r["timed_images_per_s"] for r in results)
        m["images_per_cpu_s"] = m["images_per_s"] / sum(r["cpu_over_wall"] for r in results)
        self.measurements.append(m)
        per_run = " + ".join(f"{r['timed_images_per_s']:.0f}" for r in results)
        overlap = f", timed epochs overlap {m['overlap']:.0%}" if "overlap" in m else ""
        cpu = ", ".join(f"{r['cpu_over_wall']:.2f}" for r in results)
        extra = "".join(f"; compile {r['compile_s']:.1f} s" for r in results if r["compile_s"] is not None)
        digests = ", ".join(r["digest"][:12] for r in results)
        print(f"    {m['images_per_s']:.0f} img/s ({per_run}{overlap}; CPU s per wall s {cpu}){extra}; "
              f"digest {digests}; load after {loads(m['load_after'])}", flush=True)
        return m


def fail(procs: list, err, out: str) -> None:
    """Stop this measurement's workers and say what the failed one wrote."""
    for proc, _, _ in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    err.seek(0)
    tail = err.read()[-3000:]
    raise SystemExit(f"bench_cpu_config.py: error: a worker failed; its output: {out[-500:]!r}\n{tail}")


def worker(spec: dict) -> int:
    """One run: threads set first (as the launchers set them), data, model, then wait for "go"
    on stdin, train, and print the figures as one JSON line."""
    import torch

    torch.set_num_threads(spec["threads"])
    from dataclasses import replace

    from tailbench.recipes.recipe import load_recipe
    from tailbench.benchmarks.runner import place_model
    from tailbench.benchmarks.runtime import seed_everything
    from tailbench.benchmarks.trainer import train
    from tailbench.datasets import get_dataset
    from tailbench.datasets.base import Split
    from tailbench.datasets.sources import default_data_dir
    from tailbench.methods import ComposedMethod

    device = torch.device("cpu")
    seed_everything(spec["seed"])  # as the runner does, before the data and the model
    data = get_dataset(spec["dataset"], {}).load(default_data_dir())
    if spec["images"]:
        data.train = Split(data.train.x[: spec["images"]], data.train.y[: spec["images"]])
    recipe = load_recipe(spec["recipe"])
    method = ComposedMethod("ce", method_context(data, device))
    method.prepare(data)
    model, runtime = place_model(recipe, data, method, device)
    trained = torch.compile(model, dynamic=False) if spec["compile"] else model
    generator = torch.Generator(device=device).manual_seed(spec["seed"])
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    warm_up, _ = train(trained, method, data.train, replace(recipe, epochs=1), generator, runtime, quiet=True)
    cpu0, start = time.process_time(), time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    timed, kind = train(trained, method, data.train, replace(recipe, epochs=spec["epochs"] - 1), generator, runtime, quiet=True)
    cpu, end = time.process_time() - cpu0, time.monotonic()  # no compiling here: no compile workers' CPU time missed
    history = warm_up + timed
    timed_s = sum(h.seconds for h in timed)
    digest = hashlib.sha256()
    state = {}
    for name, tensor in model.state_dict().items():  # the uncompiled module: the same names either way
        value = tensor.detach().contiguous()
        state[name] = value.clone()
        digest.update(name.encode())
        digest.update(value.numpy().tobytes())
    torch.save(state, spec["state"])
    counters = {}
    if spec["compile"]:
        from torch._dynamo.utils import counters as dynamo_counters

        counters = {k: v for k, v in dynamo_counters["inductor"].items() if "cache" in k}
        counters.update({f"aot_autograd_{k}": v for k, v in dynamo_counters["aot_autograd"].items() if "cache" in k})
    print(json.dumps({
        "threads": spec["threads"], "compile": spec["compile"], "train_step": kind, "images": len(data.train),
        "epoch_seconds": [h.seconds for h in history], "epoch_images_per_s": [h.images_per_s for h in history],
        "timed_images_per_s": len(data.train) * len(timed) / timed_s, "timed_window": [start, end],
        "compile_s": history[0].seconds - timed_s / len(timed) if spec["compile"] else None, "cpu_over_wall": cpu / (end - start),
        "loss": [h.loss for h in history], "digest": digest.hexdigest(), "cache_counters": counters,
    }))
    return 0


NAMES = {
    "a": "(a) 1 process x 2 threads, eager", "b": "(b) 2 processes x 1 thread, eager (sum)",
    "c_cold": "(c) 2 threads, compiled, cold cache", "c_warm": "(c) 2 threads, compiled, warm cache",
    "e": "(e) 2 processes x 1 thread, compiled (sum)",
}


def summarize(bench: Bench, args) -> dict:
    import torch

    by_kind: dict[str, list[dict]] = {}
    for m in bench.measurements:
        by_kind.setdefault(m["kind"], []).append(m)
    first = bench.measurements[0]["runs"][0]
    timed_epochs = args.epochs - 1
    print(f"\nfmnist recipe (ResNet-20, batch 128), {args.dataset}, {first['images']} images an epoch, ce, seed 0; "
          f"{args.epochs} epochs a run, the last {timed_epochs} timed; torch {torch.__version__}")
    print(f"{'configuration':44s} {'runs':>4s} {'best img/s':>10s} {'median':>8s} {'vs (a)':>7s} {'img/CPU-s':>9s} {'compile s':>10s} {'identical':>9s}  1-min load before")
    states, rows = {}, {}
    for kind, ms in by_kind.items():
        rates = [m["images_per_s"] for m in ms]
        runs = [r for m in ms for r in m["runs"]]
        digests = {r["digest"] for r in runs}
        compile_s = [r["compile_s"] for r in runs if r["compile_s"] is not None]
        row = {
            "label": NAMES[kind], "measurements": len(ms), "images_per_s": rates, "best": max(rates), "median": statistics.median(rates),
            "median_images_per_cpu_s": statistics.median(m["images_per_cpu_s"] for m in ms),
            "compile_s": compile_s, "self_identical": len(digests) == 1, "digests": sorted(digests),
            "load_before": [m["load_before"] for m in ms], "load_after": [m["load_after"] for m in ms],
            "overlap": [m["overlap"] for m in ms if "overlap" in m], "cpu_over_wall": [r["cpu_over_wall"] for r in runs],
            "epoch_images_per_s": [r["epoch_images_per_s"] for r in runs], "loss": [r["loss"] for r in runs],
            "cache_counters": [r["cache_counters"] for r in runs if r["cache_counters"]],
        }
        if "a" in rows:
            row["best_over_a"] = row["best"] / rows["a"]["best"]
            row["median_over_a"] = row["median"] / rows["a"]["median"]
        states[kind] = torch.load(runs[0]["state"])
        rows[kind] = row
        ratio = f"{row['best_over_a']:.2f}x" if "best_over_a" in row else ""
        comp = " / ".join(f"{c:.0f}" for c in compile_s) if compile_s else "-"
        before = "; ".join(f"{m['load_before'][0]:.2f}" for m in ms)
        print(f"{NAMES[kind]:44s} {len(ms):4d} {row['best']:10.0f} {row['median']:8.0f} {ratio:>7s} "
              f"{row['median_images_per_cpu_s']:9.0f} {comp:>10s} "
              f"{'yes' if row['self_identical'] else 'NO':>9s}  {before}")
    if "c_cold" in rows and "c_warm" in rows:
        same = rows["c_cold"]["digests"] == rows["c_warm"]["digests"]
        rows["c_warm"]["identical_to_cold"] = same
        print(f"compiled, cold-cache run and warm-cache run identical: {'yes' if same else 'NO'}")
    for compiled, eager in (("c_cold", "a"), ("e", "b")):
        if compiled in rows and eager in rows:
            equal = rows[compiled]["digests"] == rows[eager]["digests"]
            diff = max(float((states[compiled][k].double() - states[eager][k].double()).abs().max())
                       for k in states[eager] if states[eager][k].is_floating_point())
            rows[compiled]["equal_to_eager"], rows[compiled]["max_abs_diff_to_eager"] = equal, diff
            print(f"{NAMES[compiled]} equal to {NAMES[eager]}: {'yes' if equal else 'no'} (largest parameter or buffer "
                  f"difference {diff:.3g}; last epoch's loss {rows[compiled]['loss'][0][-1]:.6f} against {rows[eager]['loss'][0][-1]:.6f})")
    if "a" in rows and "b" in rows:
        print(f"1 thread and 2 threads give different parameters (as documented): {'yes' if rows['a']['digests'] != rows['b']['digests'] else 'no'}")
    return {"dataset": args.dataset, "recipe": args.recipe, "epochs_per_run": args.epochs, "timed_epochs": timed_epochs,
            "images_per_epoch": first["images"], "torch": torch.__version__, "rows": rows, "measurements": bench.measurements}


if __name__ == "__main__":
    run_script(main, __file__)
