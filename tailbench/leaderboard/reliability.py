"""Reliability diagrams: per method, accuracy against top-1 confidence in the 15 equal-width bins
of the ECE (tailbench.results.metrics), all test images of all seeds pooled, with the head and
the tail third's images drawn apart (bins of fewer than MIN_BIN_IMAGES images left out), since a long-tailed classifier is usually over-confident on
the tail. Only entries whose every run keeps per-image evidence are drawn.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tailbench.leaderboard.aggregate import Entry
from tailbench.leaderboard.plots import PANEL_COLUMNS, entry_label, png_bytes, new_figure
from tailbench.results.metrics import reliability, thirds

MIN_BIN_IMAGES = 20  # a bin with fewer images is not drawn: its accuracy is mostly noise
PARTS = (("all classes", None, "#1f5fbf"), ("head third", "head", "#2a9d55"), ("tail third", "tail", "#d1495b"))


def pooled_images(entry: Entry) -> pd.DataFrame:
    """The per-image rows of every seed, with `head` / `tail` flags by the image's true class."""
    frames = []
    for run in entry.runs:
        images = run.evidence[0].copy()
        parts = thirds(run.per_class["train_count"].to_numpy())
        for part in ("head", "tail"):
            images[part] = parts[part][images["class"].to_numpy()]
        frames.append(images)
    return pd.concat(frames, ignore_index=True)


def drawable(entries: list[Entry]) -> list[Entry]:
    return [entry for entry in entries if entry.has_images]


def reliability_figure(benchmark: str, entries: list[Entry]):
    entries = drawable(entries)
    columns = min(PANEL_COLUMNS, len(entries))
    rows = math.ceil(len(entries) / columns)
    fig = new_figure(max(8.0, 1.0 + 2.9 * columns), 0.9 + rows * 2.6)
    axes = fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, entry in zip(axes, entries):
        images = pooled_images(entry)
        correct = (images["predicted"] == images["class"]).to_numpy(dtype=float)
        for label, part, color in PARTS:
            keep = np.ones(len(images), bool) if part is None else images[part].to_numpy()
            bins = reliability(images["top1_prob"].to_numpy(dtype=float)[keep], correct[keep])
            shown = bins[bins["images"] >= MIN_BIN_IMAGES]
            ax.plot(shown["confidence"] * 100, shown["accuracy"] * 100, marker="o", markersize=2.5, linewidth=1.3,
                    color=color, label=label)
        ax.plot([0, 100], [0, 100], color="#888888", linestyle=":", linewidth=1.0)
        ax.set_title(entry_label(entry), fontsize=8.5)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.35)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel("mean top-1 confidence in the bin (%)", fontsize=8)
    for ax in axes[len(entries):]:
        ax.set_visible(False)
    fig.suptitle(f"{benchmark}: reliability (accuracy against top-1 confidence, 15 bins of at least {MIN_BIN_IMAGES} images, seeds pooled)",
                 fontsize=11)
    fig.supylabel("accuracy in the bin (%)", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles + [axes[0].lines[-1]], labels + ["perfect calibration"], loc="outside lower center", ncols=4, fontsize=8.5, frameon=False)
    return fig


def reliability_png(benchmark: str, entries: list[Entry]) -> bytes:
    return png_bytes(reliability_figure(benchmark, entries))
