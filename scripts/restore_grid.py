"""Seed a fresh reference-grid folder with the committed records that are still current, so that
`scripts/reference_grid.sh OUT` skips them and makes only what is missing or stale.

Each session starts on a fresh machine, and the grid's own folder (OUT) is lost with it; the
committed records are what survives. A committed record counts as done unless it was made by a
commit whose records no longer rerun under the current code (STALE_COMMITS, with the reason):
those are left out, so the grid remakes them.

Usage, from the project root:  python scripts/restore_grid.py OUT [--results results]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

# commit prefix -> why its records are remade rather than restored
STALE_COMMITS = {
    "c72456b": "the fmnist-cpu smoke records of 2026-11-26: the reference-fidelity fixes since change their numbers",
}


def stale_reason(record: dict) -> str | None:
    commit = str(record.get("provenance", {}).get("git", {}).get("commit") or "")
    return next((why for prefix, why in STALE_COMMITS.items() if commit.startswith(prefix)), None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the grid's folder (records go to OUT/results)")
    p.add_argument("--results", type=Path, default=Path("results"), help="the committed records (default: results)")
    args = p.parse_args(argv)
    if not args.results.is_dir():
        print(f"restore_grid: --results {args.results} is not a folder of records", file=sys.stderr)
        return 2
    restored = skipped = present = 0
    for result in sorted(args.results.glob("*/*/seed-*/result.json")):
        run = result.parent
        if not (run / "done").is_file():
            continue
        if stale_reason(json.loads(result.read_text())):
            skipped += 1
            continue
        target = args.out / "results" / run.relative_to(args.results)
        if target.exists():
            present += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(run, target)
        restored += 1
    print(f"restored {restored} records into {args.out / 'results'} ({present} there already; "
          f"{skipped} stale ones left for the grid to remake)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
