"""Class-size profiles: how many training images each class gets, head first."""

from __future__ import annotations


def zipf_sizes(num_classes: int, n_max: int = 4800, alpha: float = 2.0, n_min: int = 5) -> list[int]:
    """size_k = max(int(n_max * pmf(k) / pmf(1)), n_min) for a Zipf(alpha) pmf, k = 1..C.

    pmf(k) / pmf(1) = k ** -alpha; dividing (rather than multiplying by a rounded power) keeps
    exact values exact: 4800 / 5**2 is 192, not 191.99999.
    """
    return [max(int(n_max / k**alpha), n_min) for k in range(1, num_classes + 1)]


def exp_sizes(num_classes: int, n_max: int, ratio: float) -> list[int]:
    """LDAM-DRW's exponential profile: n_i = int(n_max * (1 / ratio) ** (i / (C - 1)))."""
    return [int(n_max * (1.0 / ratio) ** (i / (num_classes - 1))) for i in range(num_classes)]


def step_sizes(num_classes: int, n_max: int, ratio: float) -> list[int]:
    """LDAM-DRW's step profile: the first C // 2 classes get n_max, the rest int(n_max / ratio)."""
    head = num_classes // 2
    return [n_max] * head + [int(n_max / ratio)] * (num_classes - head)
