"""Per-benchmark per-class curves against training count: per-class eKLD (one grid per invariance
family) and per-class test accuracy, as small multiples, one panel per method on shared axes.

Each panel draws its method (mean over seeds, the seeds' range shaded) over the reference method (`ce`
when the benchmark has it, else the first entry) dashed and every other method in light grey, so
twenty methods stay as readable as two. Legends sit outside the axes. PNG bytes depend on the
records alone.
"""

from __future__ import annotations

import io
import math
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from PIL import Image  # noqa: E402

from tailbench.leaderboard.aggregate import Entry  # noqa: E402

REFERENCE_METHOD = "ce"
METHOD_COLOR = "#1f5fbf"
REFERENCE_COLOR = "#333333"
OTHERS_COLOR = "#c4c4c4"
PANEL_COLUMNS = 4
MIN_WIDTH = 8.0  # inches: room for the title and the legend even with one panel
TITLE_WIDTH = 34  # characters per line of a panel title: a long method spec wraps at its '@' and '+'


def _text(value: str) -> str:
    """Record text shown literally: '$' would start matplotlib mathtext."""
    return value.replace("$", r"\$")


def wrap_name(name: str, width: int = TITLE_WIDTH) -> str:
    """A method spec on lines of at most `width` characters, broken only before '@' or '+'
    (a single longer piece keeps its own line rather than being cut)."""
    pieces, current = [], ""
    for char in name:
        if char in "@+" and current:
            pieces.append(current)
            current = ""
        current += char
    pieces.append(current)
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(_text(line) for line in lines)


def entry_label(entry: Entry, width: int = TITLE_WIDTH) -> str:
    return f"{wrap_name(entry.method, width)} (n={len(entry.runs)})"


def new_figure(width: float, height: float):
    # constrained layout makes room for outside legends, wrapped titles and long tick labels
    return plt.figure(figsize=(width, height), layout="constrained")


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    # Fixed metadata keeps the PNG bytes a function of the records alone.
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    buffer.seek(0)
    # A 256-colour palette (no dithering) looks the same and is about 2.5 times smaller, which matters
    # because index.html carries every plot inline; Pillow writes no timestamp or other metadata.
    with Image.open(buffer) as image:
        paletted = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    paletted.save(out, format="PNG", optimize=True)
    return out.getvalue()


class Grid(NamedTuple):
    """One grid of small multiples: a per-class column (times scale) against class size."""

    column: str
    scale: float
    ylabel: str
    title: str
    log_y: bool = False  # eKLD spans orders of magnitude: one method's outlier must not flatten the rest
    ylim: tuple[float, float] | None = None


def reference_entry(entries: list[Entry]) -> Entry:
    return next((entry for entry in entries if entry.method == REFERENCE_METHOD), entries[0])


def plots_note(entries: list[Entry]) -> str:
    """How to read a benchmark's plots, shown next to them (plain text)."""
    return (
        "Head vs tail: bars are means over seeds of the largest third (head) and the smallest third (tail) of the "
        "classes, error bars ±1 sample sd over seeds. Per-class curves: one small panel per method on shared axes "
        "(eKLD on a log scale), "
        f"its mean over seeds in blue with the seeds' range shaded, the reference method {reference_entry(entries).method} dashed "
        "in every panel and the other methods in light grey, so many methods stay as readable as two."
    )


def per_class_curve(entry: Entry, column: str, scale: float = 1.0) -> pd.DataFrame:
    """train_count, mean, lowest and highest value over seeds of a per-class column, by class size."""
    frames = pd.concat([run.per_class[["class", "train_count", column]] for run in entry.runs])
    grouped = frames.groupby("class")
    table = pd.DataFrame({
        "train_count": grouped["train_count"].first(),
        "mean": grouped[column].mean() * scale,
        "low": grouped[column].min() * scale,
        "high": grouped[column].max() * scale,
    }).reset_index()
    return table.sort_values(["train_count", "class"], kind="stable")


def small_multiples(fig, entries: list[Entry], grid: Grid) -> None:
    """One panel per entry on shared axes in `fig` (a figure or a subfigure)."""
    column, scale = grid.column, grid.scale
    curves = [per_class_curve(entry, column, scale) for entry in entries]
    reference = reference_entry(entries)
    reference_curve = curves[entries.index(reference)]
    columns = min(PANEL_COLUMNS, len(entries))
    rows = math.ceil(len(entries) / columns)
    axes = fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
    for index, (ax, entry, curve) in enumerate(zip(axes, entries, curves)):
        for other, other_curve in zip(entries, curves):
            if other is not entry and other is not reference:
                ax.plot(other_curve["train_count"], other_curve["mean"], color=OTHERS_COLOR, linewidth=0.7, zorder=1)
        if entry is not reference:
            ax.plot(reference_curve["train_count"], reference_curve["mean"], color=REFERENCE_COLOR, linestyle="--",
                    linewidth=1.1, zorder=2)
        if len(entry.runs) > 1:  # the seeds' range, not mean ± sd: it stays positive on a log axis
            ax.fill_between(curve["train_count"], curve["low"], curve["high"], color=METHOD_COLOR, alpha=0.2, linewidth=0, zorder=3)
        ax.plot(curve["train_count"], curve["mean"], color=METHOD_COLOR, marker="o", markersize=3, linewidth=1.7, zorder=4)
        ax.set_title(entry_label(entry), fontsize=8.5)
        ax.set_xscale("log")
        if grid.log_y:
            ax.set_yscale("log", nonpositive="clip")
        ax.grid(True, which="major", alpha=0.35)
        ax.tick_params(labelsize=8)
        if index + columns >= len(entries):  # no panel below: this one carries the x tick labels
            ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[len(entries):]:
        ax.set_visible(False)
    fig.suptitle(grid.title, fontsize=11)
    fig.supxlabel("training images in class (log scale)", fontsize=9)
    fig.supylabel(grid.ylabel, fontsize=9)
    if grid.ylim:
        axes[0].set_ylim(*grid.ylim)


def curve_legend(fig, entries: list[Entry]) -> None:
    reference = reference_entry(entries)
    handles = [(Line2D([], [], color=METHOD_COLOR, marker="o", markersize=3, linewidth=1.7), "this panel's method, mean over seeds")]
    if any(len(entry.runs) > 1 for entry in entries):
        handles.append((Patch(color=METHOD_COLOR, alpha=0.2), "range over seeds (lowest to highest)"))
    if len(entries) > 1:
        handles.append((Line2D([], [], color=REFERENCE_COLOR, linestyle="--", linewidth=1.1), f"reference: {wrap_name(reference.method)}"))
        handles.append((Line2D([], [], color=OTHERS_COLOR, linewidth=0.7), "the other methods"))
    columns = len(handles) if len(entries) >= PANEL_COLUMNS else 2  # a narrow figure stacks its legend
    fig.legend([h for h, _ in handles], [label for _, label in handles], loc="outside lower center",
               ncols=columns, fontsize=8.5, frameon=False)


def _grid_size(entries: list[Entry]) -> tuple[float, float]:
    columns = min(PANEL_COLUMNS, len(entries))
    rows = math.ceil(len(entries) / columns)
    title_lines = max(entry_label(entry).count("\n") + 1 for entry in entries)
    return max(MIN_WIDTH, 1.0 + 2.9 * columns), 0.7 + rows * (2.0 + 0.17 * title_lines)


def curves_figure(entries: list[Entry], grids: list[Grid]):
    """One grid of panels per Grid, stacked; the legend goes below them all (each grid is a
    subfigure, so the legend never meets a grid's own x label)."""
    width, height = _grid_size(entries)
    fig = new_figure(width, height * len(grids) + 0.4)
    for subfigure, grid in zip(fig.subfigures(len(grids), 1, squeeze=False).ravel(), grids):
        small_multiples(subfigure, entries, grid)
    curve_legend(fig, entries)
    return fig


def ekld_vs_count_figure(benchmark: str, entries: list[Entry]):
    return curves_figure(entries, [
        Grid(f"ekld_{family}", 1.0, _text(f"eKLD under {family} (log scale; lower = more invariant)"),
             _text(f"{benchmark}: per-class eKLD under {family} against class size"), log_y=True)
        for family in entries[0].families
    ])


def accuracy_vs_count_figure(benchmark: str, entries: list[Entry]):
    return curves_figure(entries, [
        Grid("test_acc", 100.0, "test accuracy of the class (%)", _text(f"{benchmark}: per-class test accuracy against class size"),
             ylim=(-3, 103)),
    ])


def ekld_vs_count_png(benchmark: str, entries: list[Entry]) -> bytes:
    return png_bytes(ekld_vs_count_figure(benchmark, entries))


def accuracy_vs_count_png(benchmark: str, entries: list[Entry]) -> bytes:
    return png_bytes(accuracy_vs_count_figure(benchmark, entries))
