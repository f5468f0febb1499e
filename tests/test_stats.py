"""The leaderboard's statistics against rliable's own test values (google-research/rliable,
tests/rliable/metrics_test.py and tests/library_test.py) and hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tailbench.leaderboard import stats

# rliable's metrics_test: score matrices are runs x tasks
RLIABLE_X = np.array([[1, 2], [2, 2], [1, 1], [2, 1]])
RLIABLE_Y = np.array([[1, 1], [2, 2], [3, 3]])


def tasks(matrix: np.ndarray) -> list[np.ndarray]:
    return list(np.asarray(matrix, dtype=float).T)


# -- rliable's own values -----------------------------------------------------------------------
def test_rliable_aggregate_values():
    assert stats.mean_of_task_means(*tasks(RLIABLE_X)) == 1.5
    assert stats.interquartile_mean(*tasks(RLIABLE_X)) == 1.5
    assert stats.mean_of_task_means(*tasks(RLIABLE_Y)) == 2
    assert stats.interquartile_mean(*tasks(RLIABLE_Y)) == 2
    assert stats.probability_of_improvement(tasks(RLIABLE_X), tasks(RLIABLE_Y)) == pytest.approx(1 / 3)


def test_iqm_is_the_trimmed_mean_of_all_scores_pooled():
    scores = np.array([[9.0, 0.0, 3.0], [1.0, 7.0, 2.0], [4.0, 8.0, 100.0], [5.0, 6.0, -50.0]])
    # 12 scores, 3 trimmed from each end: the mean of the 4th..9th smallest
    middle = np.sort(scores.ravel())[3:9]
    assert stats.interquartile_mean(*tasks(scores)) == pytest.approx(middle.mean())
    assert stats.interquartile_mean(*tasks(scores)) == pytest.approx(scipy_stats.trim_mean(scores, 0.25, axis=None))


def test_rliable_interval_estimates_bracket_the_point():
    # library_test: 5 runs x 16 tasks; the percentile intervals lie strictly around the estimate
    x = np.arange(5 * 16, dtype=float).reshape(5, 16)
    for statistic in (stats.interquartile_mean, stats.mean_of_task_means):
        interval = stats.stratified_interval(tasks(x), statistic)
        point = statistic(*tasks(x))
        assert interval.low < point < interval.high


def test_rliable_improvement_interval_brackets_the_point():
    x = np.arange(5 * 16, dtype=float).reshape(5, 16)
    y = np.flip(x, axis=0)
    point = stats.probability_of_improvement(tasks(x), tasks(y))
    assert point == 0.5  # every task's runs are the same scores in another order
    interval = stats.improvement_interval(tasks(x), tasks(y))
    assert interval.low < point < interval.high


# -- the stratified bootstrap -------------------------------------------------------------------
def test_resampling_stays_within_each_stratum():
    # task means are 0 and 1 whatever is drawn within each task; pooled resampling would move them
    interval = stats.stratified_interval([np.zeros(2), np.ones(2)], stats.mean_of_task_means)
    assert (interval.low, interval.high) == (0.5, 0.5)


def test_interval_over_seeds_hand_computed():
    # the mean of 3 draws from {0.5, 0.6, 0.7} is 0.5 with probability 1/27 (> 2.5%), 0.7 likewise
    interval = stats.interval_over_seeds(np.array([0.5, 0.6, 0.7]))
    assert interval.low == pytest.approx(0.5) and interval.high == pytest.approx(0.7)
    # 5 draws from [0, 0, 0, 0, 1]: k ones, k ~ Binomial(5, 1/5): P(k = 0) = 0.33 > 2.5%, and
    # P(k <= 2) = 0.942 < 97.5% < P(k <= 3) = 0.993, so the interval is (0, 3/5)
    interval = stats.interval_over_seeds(np.array([0.0, 0.0, 0.0, 0.0, 1.0]))
    assert interval.low == 0.0 and interval.high == pytest.approx(0.6)


def test_intervals_are_deterministic_and_need_two_runs():
    values = np.random.default_rng(5).random(12)  # enough distinct resample means to move with the draws
    assert stats.interval_over_seeds(values) == stats.interval_over_seeds(values)
    assert stats.interval_over_seeds(values, seed=1) != stats.interval_over_seeds(values)
    assert stats.interval_over_seeds(np.array([0.6])) is None
    assert stats.stratified_interval([values, np.array([0.5])], stats.mean_of_task_means) is None


# -- probability of improvement -----------------------------------------------------------------
def test_probability_of_improvement_hand_computed():
    poi = stats.probability_of_improvement
    assert poi([np.array([3.0, 4.0])], [np.array([1.0, 2.0])]) == 1.0
    assert poi([np.array([1.0, 2.0])], [np.array([3.0, 4.0])]) == 0.0
    assert poi([np.array([1.0, 2.0])], [np.array([1.0, 2.0])]) == 0.5
    # [1, 2] against [2, 2]: 1 loses twice, 2 ties twice: (0 + 0 + 1/2 + 1/2) / 4
    assert poi([np.array([1.0, 2.0])], [np.array([2.0, 2.0])]) == 0.25
    # averaged over tasks, and lower-is-better metrics (eKLD) flip the comparison
    assert poi([np.array([3.0, 4.0]), np.array([0.0])], [np.array([1.0, 2.0]), np.array([1.0])]) == 0.5
    assert poi([np.array([0.1, 0.2])], [np.array([0.3, 0.4])], higher_is_better=False) == 1.0
    with pytest.raises(ValueError, match="same tasks"):
        poi([np.array([1.0])], [])


# -- the paired test against the baseline -------------------------------------------------------
def test_paired_test_hand_computed():
    method = {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.9}  # seed 3 has no baseline: left out of the pairs
    baseline = {0: 0.70, 1: 0.71, 2: 0.69}
    test = stats.paired_seed_test(method, baseline, higher_is_better=True)
    # differences 0.10, 0.11, 0.12: t = 0.11 / (0.01 / sqrt 3); with 2 degrees of freedom the
    # two-sided p is 1 - |t| / sqrt(t^2 + 2)
    t = 0.11 / (0.01 / np.sqrt(3))
    assert test.seeds == (0, 1, 2) and test.mean_difference == pytest.approx(0.11)
    assert test.p_value == pytest.approx(1 - t / np.sqrt(t * t + 2), rel=1e-6)
    assert test.verdict == "better"
    assert stats.paired_seed_test(method, baseline, higher_is_better=False).verdict == "worse"  # e.g. eKLD


def test_paired_test_indistinguishable_identical_and_too_few_seeds():
    noisy = stats.paired_seed_test({0: 0.8, 1: 0.6, 2: 0.75}, {0: 0.7, 1: 0.7, 2: 0.7}, higher_is_better=True)
    assert noisy.verdict == "indistinguishable" and noisy.p_value > stats.ALPHA
    same = stats.paired_seed_test({0: 0.5, 1: 0.6}, {0: 0.5, 1: 0.6}, higher_is_better=True)
    assert same.p_value == 1.0 and same.verdict == "indistinguishable"
    assert stats.paired_seed_test({0: 0.5, 1: 0.6}, {1: 0.6, 2: 0.7}, higher_is_better=True) is None


def test_why_not_wilcoxon_with_three_seeds():
    # the smallest two-sided p Wilcoxon's signed-rank test gives three pairs is 2 / 2^3
    assert scipy_stats.wilcoxon([0.1, 0.11, 0.12]).pvalue == 0.25


# -- mean ranks ---------------------------------------------------------------------------------
def test_mean_ranks_average_ties_and_skip_missing_entries():
    scores = np.array([
        [0.9, 0.5, np.nan],
        [0.8, 0.5, 0.7],
        [0.7, 0.6, 0.9],
        [np.nan, np.nan, np.nan],
    ])
    # benchmark 1: 0.6 first, the two 0.5 share ranks 2 and 3; benchmark 2 ranks only two methods
    expected = [(1 + 2.5) / 2, (2 + 2.5 + 2) / 3, (3 + 1 + 1) / 3]
    ranks = stats.mean_ranks(scores, higher_is_better=True)
    assert ranks[:3] == pytest.approx(expected) and np.isnan(ranks[3])
    lower = stats.mean_ranks(scores, higher_is_better=False)
    # lower is better: the two 0.5 now share ranks 1 and 2
    assert lower[:3] == pytest.approx([(3 + 1.5) / 2, (2 + 1.5 + 1) / 3, (1 + 3 + 2) / 3])


# -- seeds and test images ----------------------------------------------------------------------
def mean_over_classes(per_class: np.ndarray) -> np.ndarray:
    return per_class.mean(axis=-1)


def test_image_resampling_is_stratified_by_class():
    # class 0 always wrong (3 images), class 1 always right (7): balanced accuracy is 0.5 in every
    # resample that keeps the class counts; resampling the 10 images pooled would move it
    run = (np.array([0.0] * 3 + [1.0] * 7), np.array([0] * 3 + [1] * 7))
    interval = stats.seed_and_image_interval([run], 2, mean_over_classes)
    assert (interval.low, interval.high) == (0.5, 0.5)


def test_image_resampling_hand_computed():
    run = (np.array([0.0, 0.0, 0.0, 0.0, 1.0]), np.zeros(5, dtype=int))  # as in the seeds example
    interval = stats.seed_and_image_interval([run], 1, mean_over_classes)
    assert interval.low == 0.0 and interval.high == pytest.approx(0.6)


def test_seed_resampling_hand_computed():
    # two runs, constant within each class: balanced accuracies 0.4 and 0.6; the mean of two drawn
    # runs is 0.4, 0.5 or 0.6 with probabilities 1/4, 1/2, 1/4
    classes = np.array([0, 0, 1, 1])
    runs = [(np.array([0.2, 0.2, 0.6, 0.6]), classes), (np.array([0.4, 0.4, 0.8, 0.8]), classes)]
    interval = stats.seed_and_image_interval(runs, 2, mean_over_classes)
    assert interval.low == pytest.approx(0.4) and interval.high == pytest.approx(0.6)


def test_image_intervals_are_deterministic_whatever_the_memory_block(monkeypatch):
    rng = np.random.default_rng(3)
    runs = [((rng.random(60) < 0.7).astype(float), rng.integers(0, 4, 60)) for _ in range(3)]
    tail = lambda per_class: per_class[..., 2:].mean(axis=-1)  # noqa: E731
    first = stats.seed_and_image_interval(runs, 4, tail)
    assert stats.seed_and_image_interval(runs, 4, tail) == first
    monkeypatch.setattr(stats, "_IMAGE_BLOCK", 7)  # the draws split into many small blocks
    assert stats.seed_and_image_interval(runs, 4, tail) == first
    point = np.mean([tail(np.array([v[c == k].mean() for k in range(4)])) for v, c in runs])
    assert first.low < point < first.high


def test_image_interval_refuses_bad_runs():
    with pytest.raises(ValueError, match="NaN"):
        stats.seed_and_image_interval([(np.array([np.nan, 1.0]), np.array([0, 1]))], 2, mean_over_classes)
    with pytest.raises(ValueError, match="0..1"):
        stats.seed_and_image_interval([(np.array([1.0, 1.0]), np.array([0, 2]))], 2, mean_over_classes)
    with pytest.raises(ValueError, match="one length"):
        stats.seed_and_image_interval([(np.array([1.0]), np.array([0, 1]))], 2, mean_over_classes)
    with pytest.raises(ValueError, match="at least one run"):
        stats.seed_and_image_interval([], 2, mean_over_classes)
