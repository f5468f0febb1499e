"""Collects what scripts/gpu_check.sh measured into OUT/gpu_check.json and prints it against the
targets of the GPU-pace issue.

    python scripts/gpu_check_summary.py OUT JOBS
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGETS = {
    "resnet20_harness_over_bare_graph": (">=", 0.85),
    "resnet32_harness_over_bare_graph": (">=", 0.85),
    "fmnist_full_harness_s": ("<=", 12.0),
    "synthetic_200_epochs_train_s": ("<=", 90.0),
    "jobs_speedup": (">=", 2.5),
}


def records(folder: Path) -> dict[str, Path]:
    """Run folder (relative) -> folder, for every complete record under `folder`."""
    return {str(done.parent.relative_to(folder)): done.parent for done in folder.rglob("done")} if folder.is_dir() else {}


def one_record(folder: Path) -> dict | None:
    found = list(records(folder).values())
    return json.loads((found[0] / "result.json").read_text()) if len(found) == 1 else None


def identical(a: Path, b: Path) -> bool:
    return (a / "per_class.csv").read_bytes() == (b / "per_class.csv").read_bytes()


def main(out: Path, jobs: int) -> dict:
    figures: dict[str, object] = {}
    steps = {}
    for line in (out / "steps.tsv").read_text().splitlines():
        name, rc, ms = line.split("\t")
        steps[name] = {"exit": int(rc), "seconds": int(ms) / 1000}
    figures["steps"] = steps
    gpu = out / "gpu.txt"
    figures["gpu"] = gpu.read_text().strip() if gpu.is_file() else None
    for model in ("resnet20", "resnet32"):
        path = out / f"bench_{model}.json"
        if path.is_file():
            bench = json.loads(path.read_text())
            figures[f"{model}_bench"] = bench
            if "harness_over_bare_graph" in bench:
                figures[f"{model}_harness_over_bare_graph"] = bench["harness_over_bare_graph"]
    check = out / "check"
    for name, benchmark in (("fmnist_full", "fmnist-rot-lt"), ("synthetic_200", "synthetic-lt")):
        result = one_record(check / benchmark)
        if result is None:
            continue
        train_s = sum(h["seconds"] for h in result["history"])
        figures[f"{name}_harness_s"] = result["provenance"]["wall_seconds"]
        figures[f"{name}_epochs_train_s"] = train_s
        figures[f"{name}_with_startup_s"] = steps.get(name, {}).get("seconds")
        figures[f"{name}_runtime"] = result["provenance"].get("runtime")
        figures[f"{name}_summary"] = {k: result["summary"][k] for k in ("balanced_accuracy", "tail_accuracy") if k in result["summary"]}
    figures["synthetic_200_epochs_train_s"] = figures.get("synthetic_200_epochs_train_s")
    one, many = records(out / "jobs-1"), records(out / f"jobs-{jobs}")
    if one and many and steps.get("jobs_1", {}).get("exit") == 0 and steps.get(f"jobs_{jobs}", {}).get("exit") == 0:
        figures["jobs_runs"] = len(one)
        figures["jobs_speedup"] = steps["jobs_1"]["seconds"] / steps[f"jobs_{jobs}"]["seconds"]
        figures["jobs_records_identical"] = sorted(one) == sorted(many) and all(identical(one[k], many[k]) for k in one)
    pairs = {}
    for spec in ("ce+drs", "ce+oracle"):
        a = [p for k, p in records(out / "det-a").items() if f"/{spec}/" in f"/{k}/"]
        b = [p for k, p in records(out / "det-b").items() if f"/{spec}/" in f"/{k}/"]
        if len(a) == 1 and len(b) == 1:
            pairs[spec] = identical(a[0], b[0])
    figures["determinism_identical"] = pairs
    verdicts = {}
    for key, (op, bound) in TARGETS.items():
        value = figures.get(key)
        if isinstance(value, (int, float)):
            verdicts[key] = {"value": value, "target": f"{op} {bound}", "met": value >= bound if op == ">=" else value <= bound}
    figures["targets"] = verdicts
    (out / "gpu_check.json").write_text(json.dumps(figures, indent=1) + "\n")
    for key, verdict in verdicts.items():
        print(f"{key:40s} {verdict['value']:10.3f}  target {verdict['target']:8s}  {'met' if verdict['met'] else 'NOT MET'}")
    print(f"{'jobs_records_identical':40s} {figures.get('jobs_records_identical')}")
    print(f"{'determinism_identical':40s} {pairs}")
    return figures


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: gpu_check_summary.py OUT JOBS", file=sys.stderr)
        sys.exit(2)
    main(Path(sys.argv[1]), int(sys.argv[2]))
