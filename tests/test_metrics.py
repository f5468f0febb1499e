import math

import numpy as np

from tailbench.benchmarks.metrics import shot_groups, spearman, summarize, thirds


def test_shot_groups_use_the_literature_thresholds():
    groups = shot_groups(np.array([500, 101, 100, 20, 19, 5]))
    assert groups["many"].tolist() == [True, True, False, False, False, False]
    assert groups["medium"].tolist() == [False, False, True, True, False, False]
    assert groups["few"].tolist() == [False, False, False, False, True, True]


def test_thirds_split_by_size():
    parts = thirds(np.array([10, 500, 40, 5, 100, 7]))
    assert np.flatnonzero(parts["head"]).tolist() == [1, 4]
    assert np.flatnonzero(parts["tail"]).tolist() == [3, 5]


def test_spearman_sign_and_degenerate_cases():
    counts = np.array([1000.0, 100, 10, 5])
    assert math.isclose(spearman(np.array([0.1, 0.2, 0.3, 0.4]), counts), -1.0)
    assert spearman(np.array([0.1, 0.1, 0.1, 0.1]), counts) is None
    assert spearman(np.array([0.1, 0.2]), np.array([1.0, 2.0])) is None


def test_summary_values():
    counts = [300, 50, 10]
    summary = summarize(counts, [0.9, 0.6, 0.3], 0.6, [0.8, 0.5, 0.2], {"rot": [0.1, 0.2, 0.4]}, {"rot": [0.9, 0.8, 0.5]})
    assert math.isclose(summary["balanced_accuracy"], 0.6)
    assert summary["many_shot_accuracy"] == 0.9 and summary["medium_shot_accuracy"] == 0.6 and summary["few_shot_accuracy"] == 0.3
    assert summary["worst_class_accuracy"] == 0.3
    assert summary["tail_ekld_rot"] == 0.4 and summary["head_ekld_rot"] == 0.1
    assert math.isclose(summary["spearman_ekld_count_rot"], -1.0)


def test_empty_shot_group_is_none():
    summary = summarize([300, 200, 150], [0.9, 0.8, 0.7], 0.8, [0.9, 0.8, 0.7], {}, {})
    assert summary["few_shot_accuracy"] is None and summary["medium_shot_accuracy"] is None
