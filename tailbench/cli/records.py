"""`tailbench leaderboard`: the pages built from a folder of run records."""

from __future__ import annotations

import argparse
import sys

from tailbench.storage.folders import require_folder


def cmd_leaderboard(args: argparse.Namespace) -> int:
    require_folder(args.results, f"--results {args.results}", "run `tailbench run` first or point --results at a folder of run records")
    from tailbench.leaderboard.build import build_leaderboard

    problems: list[str] = []
    for path in build_leaderboard(args.results, args.out, problems):
        print(f"wrote {path}")
    for problem in problems:
        print(f"{args.prog}: error: {problem}", file=sys.stderr)
    return 2 if problems else 0
