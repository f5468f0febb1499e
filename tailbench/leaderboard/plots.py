"""Per-benchmark plots against training count, one series per method: per-class eKLD (one panel
per invariance family) and per-class test accuracy. PNG bytes depend on the records alone."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tailbench.leaderboard.aggregate import Entry  # noqa: E402


def _text(value: str) -> str:
    """Record text shown literally: '$' would start matplotlib mathtext."""
    return value.replace("$", r"\$")


def _png(fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    # Fixed metadata keeps the PNG bytes a function of the records alone.
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def ekld_vs_count_png(benchmark: str, entries: list[Entry]) -> bytes:
    families = entries[0].families
    fig, axes = plt.subplots(1, max(1, len(families)), figsize=(5.2 * max(1, len(families)), 4.0), squeeze=False)
    for ax, family in zip(axes[0], families):
        for entry in entries:
            table = entry.per_class_mean().sort_values(["train_count", "class"], kind="stable")
            ax.plot(table["train_count"], table[f"ekld_{family}"], marker="o", linewidth=1.2, markersize=4,
                    label=_text(f"{entry.method} (n={len(entry.runs)})"))
        ax.set_xscale("log")
        ax.set_xlabel("training images in class (log scale)")
        ax.set_ylabel(f"eKLD under {_text(family)} (lower = more invariant)")
        ax.set_title(_text(f"{benchmark}: {family}"))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def accuracy_vs_count_png(benchmark: str, entries: list[Entry]) -> bytes:
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    for entry in entries:
        table = entry.per_class_mean().sort_values(["train_count", "class"], kind="stable")
        ax.plot(table["train_count"], table["test_acc"] * 100.0, marker="o", linewidth=1.2, markersize=4,
                label=_text(f"{entry.method} (n={len(entry.runs)})"))
    ax.set_xscale("log")
    ax.set_ylim(-3, 103)
    ax.set_xlabel("training images in class (log scale)")
    ax.set_ylabel("test accuracy of the class (%)")
    ax.set_title(_text(f"{benchmark}: accuracy"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
