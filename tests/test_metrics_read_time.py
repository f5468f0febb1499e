"""The metrics computed when a record is read: calibration, SADE's test-agnostic accuracies, and
their intervals, each against a hand-computed example or the construction it stands for."""

import math

import numpy as np
import pandas as pd
import pytest

from tailbench.results.metrics import (
    SADE_DISTRIBUTIONS, RunTables, by_key, calibration_error, compute, reliability, sade_counts, sade_shares, stored_summary,
)


def tables(train, test_acc, test_count, images=None, families=()):
    table = pd.DataFrame({"class": range(len(train)), "train_count": train, "test_count": test_count,
                          "val_acc": test_acc, "test_acc": test_acc})
    return RunTables(table, tuple(families), images)


def test_ece_of_a_worked_example():
    # bin 15 (0.933, 1]: two images at 0.95, one right: |0.5 - 0.95| = 0.45; bin 9 (0.533, 0.6]: two at
    # 0.55, both right: |1 - 0.55| = 0.45; each bin holds half the images: ECE = 0.45
    assert math.isclose(calibration_error(np.array([0.95, 0.95, 0.55, 0.55]), np.array([1, 0, 1, 1])), 0.45)
    assert calibration_error(np.array([0.7, 0.7]), np.array([1, 0])) == pytest.approx(0.2)
    bins = reliability(np.array([0.95, 0.95, 0.55, 0.55]), np.array([1, 0, 1, 1]))
    assert bins["images"].tolist()[8] == 2 and bins["images"].tolist()[14] == 2 and bins["images"].sum() == 4
    assert bins["accuracy"][14] == 0.5 and math.isclose(bins["confidence"][8], 0.55)


def test_ece_head_and_tail_use_the_images_of_their_classes():
    images = pd.DataFrame({"class": [0, 0, 2, 2], "predicted": [0, 1, 2, 2], "top1_prob": [0.95, 0.95, 0.55, 0.55], "true_prob": [0.95, 0.0, 0.55, 0.55]})
    values = compute(tables([300, 50, 10], [0.5, math.nan, 1.0], [2, 0, 2], images))
    assert values["ece"] == pytest.approx(0.45) and values["head_ece"] == pytest.approx(0.45) and values["tail_ece"] == pytest.approx(0.45)
    assert values["head_ece"] == pytest.approx(calibration_error(np.array([0.95, 0.95]), np.array([1, 0])))


def test_sade_shares_follow_the_exponential_profile_in_both_directions():
    train = np.array([10, 1000, 100])  # size ranks: class 1, then 2, then 0
    forward = sade_shares(train, "forward_50")
    assert forward.tolist() == pytest.approx([1 / 50, 1.0, (1 / 50) ** 0.5])
    assert sade_shares(train, "backward_50").tolist() == pytest.approx([1.0, 1 / 50, (1 / 50) ** 0.5])
    assert sade_shares(train, "uniform").tolist() == [1, 1, 1]
    assert sade_counts(train, np.array([100, 100, 100]), "forward_2").tolist() == [50, 100, 70]  # int(100 / sqrt 2) = 70


def test_sade_accuracy_by_hand():
    # forward-2, 3 classes by size, 10 test images each: keeps 10, int(7.07) = 7, 5; accuracies 1, 0.5, 0
    values = compute(tables([100, 10, 1], [1.0, 0.5, 0.0], [10, 10, 10]))
    assert values["accuracy_forward_2"] == pytest.approx((10 + 3.5) / 22)
    assert values["accuracy_backward_2"] == pytest.approx((5 + 3.5) / 22)
    assert values["accuracy_uniform"] == pytest.approx(values["accuracy"])


def test_sade_accuracy_is_the_mean_over_sades_subsampled_test_sets():
    rng = np.random.default_rng(0)
    train = np.array([500, 300, 180, 100, 60, 36, 20, 12, 7, 4])
    correct = [rng.random(200) < p for p in np.linspace(0.95, 0.2, 10)]  # the test images of each class, right or not
    acc = np.array([c.mean() for c in correct])
    table = tables(train, acc, [200] * 10)
    for distribution in ("forward_50", "backward_10"):
        keep = sade_counts(train, np.full(10, 200), distribution).astype(int)
        subsampled = [np.concatenate([rng.choice(c, k, replace=False) for c, k in zip(correct, keep)]).mean() for _ in range(2000)]
        assert compute(table)[f"accuracy_{distribution}"] == pytest.approx(np.mean(subsampled), abs=1e-3)


def test_every_test_agnostic_distribution_is_a_metric():
    keys = by_key(["rot"])
    assert all(f"accuracy_{d}" in keys for d in SADE_DISTRIBUTIONS) and "ekld_rot_forward_50" in keys
    assert len(SADE_DISTRIBUTIONS) == 11


def test_new_metrics_never_enter_the_stored_summary():
    summary = stored_summary(tables([300, 50, 10], [0.9, 0.6, 0.3], [10, 10, 10]))
    assert "geometric_mean_accuracy" not in summary and "ece" not in summary and "accuracy_forward_50" not in summary
