"""Summary metrics of a run, computed from its per-class table alone.

Groups by training count, as in the long-tail literature: many-shot (> 100 images), medium-shot
(20..100) and few-shot (< 20); a group with no class reports None. Head and tail are the largest
and smallest thirds of the classes by training count (ties broken by class index), so every
dataset has a tail whatever its profile.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import spearmanr

MANY_SHOT, FEW_SHOT = 100, 20


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def shot_groups(train_counts: np.ndarray) -> dict[str, np.ndarray]:
    return {"many": train_counts > MANY_SHOT, "medium": (train_counts >= FEW_SHOT) & (train_counts <= MANY_SHOT), "few": train_counts < FEW_SHOT}


def thirds(train_counts: np.ndarray) -> dict[str, np.ndarray]:
    order = np.lexsort((np.arange(train_counts.size), -train_counts))  # largest first
    size = math.ceil(train_counts.size / 3)
    head, tail = np.zeros(train_counts.size, bool), np.zeros(train_counts.size, bool)
    head[order[:size]] = True
    tail[order[-size:]] = True
    return {"head": head, "tail": tail}


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    keep = ~(np.isnan(x) | np.isnan(y))
    if keep.sum() < 3 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return None
    return float(spearmanr(x[keep], y[keep]).statistic)


def summarize(train_counts, test_acc, test_correct_total: float, val_acc, ekld: dict, consistency: dict) -> dict[str, float | None]:
    """test_correct_total: accuracy over all test images (differs from balanced on unbalanced tests)."""
    counts = np.asarray(train_counts, dtype=float)
    acc = np.asarray(test_acc, dtype=float)
    summary: dict[str, float | None] = {
        "accuracy": float(test_correct_total),
        "balanced_accuracy": _mean(acc),
        "val_balanced_accuracy": _mean(np.asarray(val_acc, dtype=float)),
    }
    for group, mask in shot_groups(counts).items():
        summary[f"{group}_shot_accuracy"] = _mean(acc[mask])
    parts = thirds(counts)
    summary["head_accuracy"] = _mean(acc[parts["head"]])
    summary["tail_accuracy"] = _mean(acc[parts["tail"]])
    summary["worst_class_accuracy"] = float(np.nanmin(acc)) if not np.all(np.isnan(acc)) else None
    for family in ekld:
        values = np.asarray(ekld[family], dtype=float)
        summary[f"ekld_{family}"] = _mean(values)
        summary[f"head_ekld_{family}"] = _mean(values[parts["head"]])
        summary[f"tail_ekld_{family}"] = _mean(values[parts["tail"]])
        summary[f"consistency_{family}"] = _mean(np.asarray(consistency[family], dtype=float))
        summary[f"spearman_ekld_count_{family}"] = spearman(values, counts)
    return summary
