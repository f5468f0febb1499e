"""Build the leaderboard folder from a folder of run records."""

from __future__ import annotations

import re
from pathlib import Path

from tailbench.errors import UserError
from tailbench.leaderboard.aggregate import entries
from tailbench.leaderboard.markdown import benchmark_section, render
from tailbench.leaderboard.plots import ekld_vs_count_png
from tailbench.results.records import iter_runs
from tailbench.results.store import write_atomic


def safe_file_name(benchmark: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", benchmark)


def build_leaderboard(results: Path, out: Path) -> list[Path]:
    if not results.is_dir():
        raise UserError(f"--results {results} is not a folder of run records; run `tailbench run` first or point --results at one")
    grouped = entries(iter_runs(results))
    written, sections = [], []
    for benchmark, group in grouped.items():
        plot_name = f"ekld_vs_count_{safe_file_name(benchmark)}.png" if group[0].families else None
        if plot_name:
            write_atomic(out / plot_name, ekld_vs_count_png(benchmark, group))
            written.append(out / plot_name)
        sections.append(benchmark_section(benchmark, group, plot_name))
    write_atomic(out / "LEADERBOARD.md", render(sections).encode())
    written.append(out / "LEADERBOARD.md")
    return written
