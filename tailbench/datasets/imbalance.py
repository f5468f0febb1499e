"""How long-tailed a split is, from its class sizes alone, measured as HeroLT does.

HeroLT (Wang et al., "HeroLT: Benchmarking Heterogeneous Long-Tailed Learning", 2023;
SSSKJ/HeroLT, HeroLT/tools/evaluations.py) characterises a dataset by three numbers:

- the imbalance factor: the largest class size over the smallest (empty classes left out);
- the Gini coefficient. HeroLT's function is the Gini of the values it is given,
  sum_{i<j} |x_i - x_j| / (n^2 mean(x)), and its table gives it the per-image *labels*, so what
  it publishes is the inequality of the class indices of the images, which depends on which
  class got which index. tailbench shows the Gini of the *class sizes* (the same formula over one
  size per class), which does not, and beside it HeroLT's label value for comparison with the
  published table (gini_of_labels reproduces all six CIFAR-LT rows);
- the Pareto-LT ratio at alpha = 0.8: with classes sorted by size, the number of smallest classes
  that together hold (1 - alpha) of the images over the number of largest classes that together
  hold alpha of them. Its table's values are this ratio (e.g. CIFAR-10-LT at imbalance 100: 7
  tail classes over 4 head classes, 1.75); the printing line of its code shows the inverse. Its
  loop also undercounts by one when reaching a share takes every class; here a count is always
  the number of classes taken. A longer tail gives a larger ratio.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

PARETO_ALPHA = 0.8


@dataclass(frozen=True)
class LongTailedness:
    imbalance_factor: float
    gini_class_sizes: float
    gini_labels: float  # HeroLT's published quantity, over per-image class indices
    pareto_lt_ratio: float
    pareto_alpha: float
    head_classes: int  # the largest classes that hold pareto_alpha of the images
    tail_classes: int  # the smallest classes that hold 1 - pareto_alpha of them

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _sizes(counts) -> np.ndarray:
    sizes = np.asarray(counts)
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
        raise ValueError(f"class sizes must be a non-empty vector of integers, not {sizes!r}")
    if sizes.min() < 0 or sizes.sum() == 0:
        raise ValueError(f"class sizes must be non-negative with at least one image, not {sizes.tolist()}")
    return sizes.astype(np.int64)


def imbalance_factor(counts) -> float:
    sizes = _sizes(counts)
    present = sizes[sizes > 0]
    return float(present.max() / present.min())


def gini(values) -> float:
    """sum_{i,j} |x_i - x_j| / (2 n^2 mean(x)), from the sorted values: sum_i (2i - n - 1) x_(i) / (n sum x)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n, total = ordered.size, ordered.sum()
    if total == 0:
        return 0.0
    return float(np.dot(2 * np.arange(1, n + 1) - n - 1, ordered) / (n * total))


def gini_of_class_sizes(counts) -> float:
    return gini(_sizes(counts))


def gini_of_labels(counts) -> float:
    """HeroLT's Gini: over the class index of every image, computed from the class sizes (the
    images of class c all have the value c), without listing the images."""
    sizes = _sizes(counts).astype(np.float64)
    index = np.arange(sizes.size, dtype=np.float64)
    label_sum = float(np.dot(index, sizes))
    if label_sum == 0:
        return 0.0  # every image is in class 0: all labels equal
    pair_sum = float(sizes @ np.abs(index[:, None] - index[None, :]) @ sizes) / 2  # over pairs i < j
    return pair_sum / (sizes.sum() * label_sum)  # = pair_sum / (N^2 mean label)


def classes_holding(sizes: np.ndarray, share: float) -> int:
    """How many of sizes, taken in the given order, it takes for their sum to reach share of the total."""
    return int(np.searchsorted(np.cumsum(sizes), share * sizes.sum(), side="left")) + 1


def pareto_lt_ratio(counts, alpha: float = PARETO_ALPHA) -> float:
    sizes = np.sort(_sizes(counts))[::-1]
    return classes_holding(sizes[::-1], 1 - alpha) / classes_holding(sizes, alpha)


def long_tailedness(counts, alpha: float = PARETO_ALPHA) -> LongTailedness:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha}")
    sizes = np.sort(_sizes(counts))[::-1]
    return LongTailedness(
        imbalance_factor=imbalance_factor(counts),
        gini_class_sizes=gini_of_class_sizes(counts),
        gini_labels=gini_of_labels(counts),
        pareto_lt_ratio=pareto_lt_ratio(counts, alpha),
        pareto_alpha=alpha,
        head_classes=classes_holding(sizes, alpha),
        tail_classes=classes_holding(sizes[::-1], 1 - alpha),
    )
