"""Per-benchmark plots: per-class eKLD against training count, one series per method."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tailbench.leaderboard.aggregate import Entry  # noqa: E402


def ekld_vs_count_png(benchmark: str, entries: list[Entry]) -> bytes:
    families = entries[0].families
    fig, axes = plt.subplots(1, max(1, len(families)), figsize=(5.2 * max(1, len(families)), 4.0), squeeze=False)
    for ax, family in zip(axes[0], families):
        for entry in entries:
            table = entry.per_class_mean().sort_values("train_count")
            ax.plot(table["train_count"], table[f"ekld_{family}"], marker="o", linewidth=1.2, markersize=4,
                    label=f"{entry.method} (n={len(entry.runs)})")
        ax.set_xscale("log")
        ax.set_xlabel("training images in class (log scale)")
        ax.set_ylabel(f"eKLD under {family} (lower = more invariant)")
        ax.set_title(f"{benchmark}: {family}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    # Fixed metadata keeps the PNG bytes a function of the records alone.
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
