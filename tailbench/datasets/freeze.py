"""Generate and commit the frozen manifests: `python -m tailbench.datasets.freeze [--check]`.

Each builder lists the option sets the leaderboard uses in ``frozen_option_sets``; their
manifests are generated from the official per-class totals and written (gzip, mtime 0) under
tailbench/datasets/manifests/. ``--check`` only verifies that the committed files are current.
"""

from __future__ import annotations

import argparse
import sys

from tailbench.datasets import dataset_names, get_dataset
from tailbench.datasets.manifest import load_frozen, write_frozen


def frozen_builders():
    for name in dataset_names():
        cls = type(get_dataset(name))
        for options in getattr(cls, "frozen_option_sets", [{}]):
            yield cls(**options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed manifest is missing or stale")
    args = parser.parse_args(argv)
    stale = []
    for builder in frozen_builders():
        totals = builder.official_totals()
        if totals is None:
            continue
        fresh = builder.make_manifest(totals)
        committed = load_frozen(builder.dataset_id)
        if committed is not None and committed.sha256 == fresh.sha256:
            print(f"{builder.dataset_id}: up to date ({fresh.sha256[:12]})")
            continue
        if args.check:
            stale.append(builder.dataset_id)
            continue
        print(f"{builder.dataset_id}: wrote {write_frozen(fresh)} ({fresh.sha256[:12]})")
    if stale:
        print(f"stale or missing frozen manifests: {', '.join(stale)}; run python -m tailbench.datasets.freeze", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
