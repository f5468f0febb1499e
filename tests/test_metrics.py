import math

import numpy as np
import pandas as pd

from tailbench.results.metrics import RunTables, compute, shot_groups, spearman, stored_summary, thirds


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


def tables(train, test_acc, val_acc, ekld=None, consistency=None, test_count=1000, images=None):
    table = {"class": range(len(train)), "train_count": train, "test_count": [test_count] * len(train), "val_acc": val_acc, "test_acc": test_acc}
    for family, values in (ekld or {}).items():
        table[f"ekld_{family}"], table[f"consistency_{family}"] = values, consistency[family]
    return RunTables(pd.DataFrame(table), tuple(ekld or {}), images)


def test_summary_values():
    summary = stored_summary(tables([300, 50, 10], [0.9, 0.6, 0.3], [0.8, 0.5, 0.2], {"rot": [0.1, 0.2, 0.4]}, {"rot": [0.9, 0.8, 0.5]}))
    assert math.isclose(summary["balanced_accuracy"], 0.6) and math.isclose(summary["accuracy"], 0.6)
    assert summary["many_shot_accuracy"] == 0.9 and summary["medium_shot_accuracy"] == 0.6 and summary["few_shot_accuracy"] == 0.3
    assert summary["worst_class_accuracy"] == 0.3
    assert summary["tail_ekld_rot"] == 0.4 and summary["head_ekld_rot"] == 0.1
    assert math.isclose(summary["spearman_ekld_count_rot"], -1.0)


def test_tail_consistency_is_the_tail_thirds_mean_and_computed_when_read():
    run = tables([300, 50, 10], [0.9, 0.6, 0.3], [0.8, 0.5, 0.2], {"rot": [0.1, 0.2, 0.4]}, {"rot": [0.9, 0.8, 0.5]})
    assert compute(run)["tail_consistency_rot"] == 0.5  # the smallest third: the class with 10 images
    assert "tail_consistency_rot" not in stored_summary(run)  # no record holds it: nothing to remake


def test_stored_summary_keeps_the_schema_1_keys_in_order():
    summary = stored_summary(tables([300, 50, 10], [0.9, 0.6, 0.3], [0.8, 0.5, 0.2], {"rot": [0.1, 0.2, 0.4]}, {"rot": [0.9, 0.8, 0.5]}))
    assert list(summary) == [
        "accuracy", "balanced_accuracy", "val_balanced_accuracy", "many_shot_accuracy", "medium_shot_accuracy", "few_shot_accuracy",
        "head_accuracy", "tail_accuracy", "worst_class_accuracy",
        "ekld_rot", "head_ekld_rot", "tail_ekld_rot", "consistency_rot", "spearman_ekld_count_rot",
    ]


def test_empty_shot_group_is_none():
    summary = stored_summary(tables([300, 200, 150], [0.9, 0.8, 0.7], [0.9, 0.8, 0.7]))
    assert summary["few_shot_accuracy"] is None and summary["medium_shot_accuracy"] is None


def test_geometric_mean_of_per_class_accuracy():
    values = compute(tables([300, 50, 10], [0.8, 0.4, 0.2], [0.8, 0.4, 0.2]))
    assert math.isclose(values["geometric_mean_accuracy"], (0.8 * 0.4 * 0.2) ** (1 / 3))
    assert compute(tables([300, 50, 10], [0.8, 0.0, 0.2], [0.8, 0.4, 0.2]))["geometric_mean_accuracy"] == 0.0


def test_metrics_needing_images_are_none_without_them():
    values = compute(tables([300, 50, 10], [0.8, 0.4, 0.2], [0.8, 0.4, 0.2]))
    assert values["ece"] is None and values["tail_ece"] is None
