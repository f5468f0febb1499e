"""Long-tailedness measures (HeroLT's definitions) on worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from tailbench.datasets import imbalance


def herolt_gini(values: np.ndarray) -> float:
    """HeroLT's formula written out as its loop reads: sum_{i<j} |x_i - x_j| / (n^2 mean x)."""
    total = sum(abs(float(a) - float(b)) for i, a in enumerate(values) for b in values[i + 1:])
    return total / (len(values) ** 2 * float(np.mean(values)))


def test_worked_example():
    counts = [4, 2, 1, 1]
    assert imbalance.imbalance_factor(counts) == 4.0
    # pairs of sizes: |4-2| + |4-1| + |4-1| + |2-1| + |2-1| + |1-1| = 10, over 4^2 x mean 2
    assert imbalance.gini_of_class_sizes(counts) == pytest.approx(10 / 32)
    # labels 0,0,0,0,1,1,2,3: pairs of classes (0,1) 4x2x1, (0,2) 4x1x2, (0,3) 4x1x3, (1,2) 2x1x1,
    # (1,3) 2x1x2, (2,3) 1x1x1 sum to 35, over 8^2 x mean label 7/8
    assert imbalance.gini_of_labels(counts) == pytest.approx(35 / 56)
    assert imbalance.gini_of_labels(counts) == pytest.approx(herolt_gini(np.repeat(np.arange(4), counts)))
    # 80% of 8 images is 6.4: the 3 largest classes (4 + 2 + 1 = 7); 20% is 1.6: the 2 smallest
    shape = imbalance.long_tailedness(counts)
    assert (shape.head_classes, shape.tail_classes) == (3, 2)
    assert shape.pareto_lt_ratio == pytest.approx(2 / 3) == imbalance.pareto_lt_ratio(counts)


def test_balanced_classes():
    counts = [5] * 10
    assert imbalance.imbalance_factor(counts) == 1.0 and imbalance.gini_of_class_sizes(counts) == 0.0
    # 8 of the 10 classes hold exactly 80%, 2 hold 20%
    assert imbalance.pareto_lt_ratio(counts) == pytest.approx(2 / 8)
    # the label Gini of balanced classes is not 0: labels uniform on 0..9 have a mean absolute
    # difference of (10^2 - 1) / (3 x 10) = 3.3 and a mean of 4.5, so 3.3 / (2 x 4.5)
    assert imbalance.gini_of_labels(counts) == pytest.approx(3.3 / 9)


def test_class_order_changes_only_the_label_gini():
    counts = np.array([192, 97, 533, 75, 300, 133, 48, 4800, 59, 1200])  # fmnist-lt's train split
    ordered = np.sort(counts)[::-1]
    assert imbalance.imbalance_factor(counts) == imbalance.imbalance_factor(ordered) == 100.0
    assert imbalance.gini_of_class_sizes(counts) == pytest.approx(imbalance.gini_of_class_sizes(ordered))
    assert imbalance.gini_of_class_sizes(counts) == pytest.approx(herolt_gini(counts))
    assert imbalance.pareto_lt_ratio(counts) == imbalance.pareto_lt_ratio(ordered)
    assert imbalance.gini_of_labels(counts) != pytest.approx(imbalance.gini_of_labels(ordered), abs=0.05)


def test_empty_classes():
    counts = [6, 0, 2]
    assert imbalance.imbalance_factor(counts) == 3.0  # empty classes left out, as HeroLT does
    assert imbalance.gini_of_labels(counts) == pytest.approx(herolt_gini(np.repeat(np.arange(3), counts)))
    assert imbalance.gini_of_labels([7, 0]) == 0.0  # every label 0


@pytest.mark.parametrize("bad", [[], [1.5, 2.0], [3, -1], [0, 0], [[1, 2]]])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="class sizes"):
        imbalance.long_tailedness(bad)


def test_alpha_must_be_a_share():
    with pytest.raises(ValueError, match="alpha"):
        imbalance.long_tailedness([3, 1], alpha=1.0)
