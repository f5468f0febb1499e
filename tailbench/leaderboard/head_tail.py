"""Per-benchmark head-vs-tail chart: for every method, the head third's and the tail third's eKLD
(one panel per invariance family) and accuracy as bars (mean over seeds) with ±1 sample sd error
bars over seeds. Bars run horizontally so that long method specs are readable tick labels."""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from tailbench.leaderboard.aggregate import Entry
from tailbench.leaderboard.plots import _text, entry_label, new_figure, png_bytes

PARTS = (("head", "head third (largest classes)", "#4c78a8"), ("tail", "tail third (smallest classes)", "#e4772a"))
BAR_HEIGHT = 0.38
LABEL_WIDTH = 40


@dataclass
class Bar:
    method: str
    part: str  # "head" or "tail"
    mean: float | None
    std: float | None  # sample sd over the entry's seeds; None with one seed


@dataclass
class Panel:
    title: str
    scale: float
    bars: list[Bar]  # per entry: head, then tail


def panels(entries: list[Entry]) -> list[Panel]:
    """The numbers the chart draws: summary keys head_/tail_ekld_<family> and head_/tail_accuracy."""
    specs = [(f"eKLD under {family} (lower = more invariant)", 1.0, f"_ekld_{family}") for family in entries[0].families]
    specs.append(("test accuracy (%)", 100.0, "_accuracy"))
    result = []
    for title, scale, suffix in specs:
        bars = []
        for entry in entries:
            for part, _, _ in PARTS:
                value = entry.metric(part + suffix)
                bars.append(Bar(entry.method, part, value.mean, value.std))
        result.append(Panel(title, scale, bars))
    return result


def _nan(value: float | None, scale: float) -> float:
    return float("nan") if value is None else value * scale


def head_tail_figure(benchmark: str, entries: list[Entry]):
    chart = panels(entries)
    labels = [entry_label(entry, LABEL_WIDTH) for entry in entries]
    label_lines = sum(label.count("\n") + 1 for label in labels)
    height = 1.3 + 0.24 * len(entries) + 0.14 * label_lines
    fig = new_figure(2.8 + 3.3 * len(chart), height)
    axes = fig.subplots(1, len(chart), sharey=True, squeeze=False)[0]
    positions = list(range(len(entries)))
    for ax, panel in zip(axes, chart):
        for position in positions[1::2]:  # every other method on a light band, so rows read across panels
            ax.axhspan(position - 0.5, position + 0.5, color="#f1f3f6", zorder=0, linewidth=0)
        for offset, (part, _, color) in zip((-BAR_HEIGHT / 2, BAR_HEIGHT / 2), PARTS):
            bars = [bar for bar in panel.bars if bar.part == part]
            ax.barh([p + offset for p in positions], [_nan(bar.mean, panel.scale) for bar in bars], height=BAR_HEIGHT,
                    xerr=[_nan(bar.std, panel.scale) for bar in bars], color=color,
                    error_kw={"ecolor": "#222222", "elinewidth": 1.0, "capsize": 2.5}, label=part)
        ax.set_title(_text(panel.title), fontsize=9.5)
        if panel.scale == 100.0:
            ax.set_xlim(0, 100)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        ax.tick_params(labelsize=8)
    axes[0].set_yticks(positions, labels)
    axes[0].set_ylim(len(entries) - 0.5, -0.5)  # first method on top, as in the tables
    fig.suptitle(_text(f"{benchmark}: head third vs tail third, mean over seeds"), fontsize=11)
    handles = [Patch(color=color) for _, _, color in PARTS]
    labels = [label for _, label, _ in PARTS]
    if any(bar.std is not None for panel in chart for bar in panel.bars):
        handles.append(Line2D([], [], color="#222222", marker="|", markersize=8, linewidth=1.0))
        labels.append("±1 sample sd over seeds")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize=8.5, frameon=False)
    return fig


def head_tail_png(benchmark: str, entries: list[Entry]) -> bytes:
    return png_bytes(head_tail_figure(benchmark, entries))
