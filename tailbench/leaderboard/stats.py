"""Intervals, tests and rankings for the leaderboard, as rliable defines them.

rliable (Agarwal et al., "Deep RL at the edge of the statistical precipice", NeurIPS 2021;
google-research/rliable) treats scores as runs (here: seeds) on tasks (here: benchmarks) and
defines:

- the stratified bootstrap: runs are resampled with replacement within each task, independently
  of the other tasks, and the interval is the percentile one (2.5th and 97.5th percentiles of the
  resampled statistic). `scipy.stats.bootstrap` does exactly this when each task is passed as a
  separate sample (it resamples every sample independently), so it does the work here;
- the interquartile mean (IQM): the 25% trimmed mean of all runs of all tasks pooled
  (`scipy.stats.trim_mean(scores, 0.25, axis=None)`; it trims int(n / 4) values from each end,
  so with fewer than 4 scores it is the plain mean);
- the probability of improvement P(X > Y): per task the Mann-Whitney U statistic of X's runs
  against Y's over n_x n_y (ties count 1/2), averaged over tasks.

Per-image data adds a level: `seed_and_image_interval` resamples seeds and then, within each
resampled run, test images within each class (stratified by class, so every class keeps its test
count). scipy's bootstrap resamples one axis per sample and cannot nest the two levels, so that
function resamples with numpy itself.

Every random draw comes from a numpy Generator seeded with BOOTSTRAP_SEED, so a leaderboard
rebuilt from the same records prints the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05  # significance level of the paired test against the baseline
BOOTSTRAP_SEED = 0
SEED_RESAMPLES = 9999  # scipy.stats.bootstrap's default: resampling a few seeds costs nothing
# Each resample of per-image data touches every test image of every resampled run; 2,000 is what
# rliable uses for its performance profiles and twice the 1,000 Efron & Tibshirani ask of
# percentile intervals.
IMAGE_RESAMPLES = 2000
IQM_TRIM = 0.25
VERDICTS = ("better", "worse", "indistinguishable")
_IMAGE_BLOCK = 4_000_000  # resampled image values held in memory at once


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class PairedTest:
    seeds: tuple[int, ...]  # the seeds both sides have, the pairs of the test
    mean_difference: float  # method minus baseline, averaged over those seeds
    p_value: float  # two-sided paired t-test
    verdict: str  # one of VERDICTS, for the side the metric prefers
    low: float  # the t-test's 1 - alpha interval of the mean difference (a point when the differences are constant)
    high: float


# -- aggregate statistics: every stratum is one task's runs; vectorized along `axis` -------------
def mean_of_task_means(*strata: np.ndarray, axis: int = -1) -> np.ndarray:
    """rliable's aggregate mean: the mean over tasks of each task's mean over runs."""
    return np.mean([np.mean(s, axis=axis) for s in strata], axis=0)


def interquartile_mean(*strata: np.ndarray, axis: int = -1) -> np.ndarray:
    """rliable's IQM: the 25% trimmed mean of all runs of all tasks, pooled."""
    return stats.trim_mean(np.concatenate([np.asarray(s, dtype=float) for s in strata], axis=axis), IQM_TRIM, axis=axis)


def probability_of_improvement(x_tasks: Sequence[np.ndarray], y_tasks: Sequence[np.ndarray], *,
                               higher_is_better: bool = True, axis: int = -1) -> np.ndarray:
    """P(X > Y) averaged over tasks: per task U(x, y) / (n_x n_y), ties counting 1/2."""
    if len(x_tasks) != len(y_tasks) or not x_tasks:
        raise ValueError(f"probability of improvement needs the same tasks on both sides ({len(x_tasks)} and {len(y_tasks)} given)")
    sign = 1.0 if higher_is_better else -1.0
    per_task = []
    for x, y in zip(x_tasks, y_tasks):
        x, y = sign * np.asarray(x, dtype=float), sign * np.asarray(y, dtype=float)
        u = stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic", axis=axis).statistic  # U of x
        per_task.append(u / (x.shape[axis] * y.shape[axis]))
    return np.mean(per_task, axis=0)


# -- intervals ----------------------------------------------------------------------------------
def stratified_interval(strata: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], *,
                        confidence: float = CONFIDENCE, resamples: int = SEED_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED) -> Interval | None:
    """Percentile bootstrap interval of statistic(*strata, axis=-1), runs resampled within each
    stratum independently (rliable's StratifiedBootstrap over runs); None when a stratum has
    fewer than two runs, which leave nothing to resample."""
    samples = tuple(np.asarray(s, dtype=float) for s in strata)
    if not samples or any(s.ndim != 1 or s.size < 2 for s in samples):
        return None
    result = stats.bootstrap(samples, statistic, n_resamples=resamples, vectorized=True, axis=-1,
                             confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    return Interval(float(result.confidence_interval.low), float(result.confidence_interval.high))


def interval_over_seeds(values: np.ndarray, **options) -> Interval | None:
    """The interval of a mean over seeds: one value per seed (e.g. a summary of each seed's
    per-class table), resampled with replacement."""
    return stratified_interval([values], mean_of_task_means, **options)


def improvement_interval(x_tasks: Sequence[np.ndarray], y_tasks: Sequence[np.ndarray], *,
                         higher_is_better: bool = True, **options) -> Interval | None:
    """The interval of probability_of_improvement, each side's runs resampled within each task
    independently (rliable's StratifiedIndependentBootstrap)."""
    k = len(x_tasks)

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        return probability_of_improvement(samples[:k], samples[k:], higher_is_better=higher_is_better, axis=axis)

    if len(y_tasks) != k:
        raise ValueError(f"probability of improvement needs the same tasks on both sides ({k} and {len(y_tasks)} given)")
    return stratified_interval([*x_tasks, *y_tasks], statistic, **options)


def resampled_runs(runs: Sequence[tuple[np.ndarray, np.ndarray]], num_classes: int, *, resamples: int = IMAGE_RESAMPLES,
                   seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """[resamples, runs, C]: per resample, the seeds drawn with replacement and, within every drawn
    run, each class's images drawn with replacement (a class keeps its count), as per-class means.

    runs: per seed, (values, classes) of its images (e.g. 0/1 correctness of every test image, or
    the eKLD of the images it sampled; no NaN); a class with no images in a run has a NaN mean.
    """
    if not runs:
        raise ValueError("an interval needs at least one run")
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(runs), size=(resamples, len(runs)))  # the seeds of each resample
    per_class = np.empty((resamples * len(runs), num_classes))
    for index, (values, classes) in enumerate(runs):
        slots = np.flatnonzero(drawn.ravel() == index)
        per_class[slots] = resampled_class_means(values, classes, num_classes, slots.size, rng)
    return per_class.reshape(resamples, len(runs), num_classes)


def percentile_interval(replicates: np.ndarray, confidence: float = CONFIDENCE) -> Interval | None:
    replicates = np.asarray(replicates, dtype=float)
    replicates = replicates[~np.isnan(replicates)]
    if not replicates.size:
        return None
    low, high = np.percentile(replicates, [50 * (1 - confidence), 50 * (1 + confidence)])
    return Interval(float(low), float(high))


def seed_and_image_interval(runs: Sequence[tuple[np.ndarray, np.ndarray]], num_classes: int,
                            metric: Callable[[np.ndarray], np.ndarray], *, confidence: float = CONFIDENCE,
                            resamples: int = IMAGE_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Percentile bootstrap interval of the mean over seeds of metric(per-class means), seeds and
    then test images within classes resampled (`resampled_runs`); metric maps per-class means
    [..., C] to [...] (e.g. their mean: balanced accuracy)."""
    per_class = resampled_runs(runs, num_classes, resamples=resamples, seed=seed)
    return percentile_interval(np.asarray(metric(per_class), dtype=float).mean(axis=1), confidence)


def seed_means_interval(values: np.ndarray, *, confidence: float = CONFIDENCE, resamples: int = SEED_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED) -> Interval | None:
    """interval_over_seeds for many resamples cheaply (numpy, one draw): the percentile interval
    of the mean of the seed values drawn with replacement; None with fewer than two values."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size < 2:
        return None
    drawn = np.random.default_rng(seed).integers(0, values.size, size=(resamples, values.size))
    return percentile_interval(values[drawn].mean(axis=1), confidence)


def resampled_class_means(values: np.ndarray, classes: np.ndarray, num_classes: int, resamples: int,
                          rng: np.random.Generator) -> np.ndarray:
    """[resamples, C]: each class's mean over its images drawn with replacement, as many as it has."""
    values, classes = np.asarray(values, dtype=float), np.asarray(classes)
    if values.shape != classes.shape or values.ndim != 1:
        raise ValueError(f"values {values.shape} and classes {classes.shape} must be two vectors of one length")
    if classes.size and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"classes must lie in 0..{num_classes - 1}")
    if np.isnan(values).any():
        raise ValueError("values hold NaN: pass only the images that were measured")
    means = np.full((resamples, num_classes), np.nan)
    binary = bool(np.all((values == 0) | (values == 1)))
    for c in range(num_classes):
        own = values[classes == c]
        if own.size == 0:
            continue
        if binary:  # the same distribution as drawing own.size of the 0/1 values, without drawing them
            means[:, c] = rng.binomial(own.size, own.mean(), size=resamples) / own.size
            continue
        block = max(1, _IMAGE_BLOCK // own.size)
        for start in range(0, resamples, block):
            rows = min(block, resamples - start)
            means[start:start + rows, c] = own[rng.integers(0, own.size, size=(rows, own.size))].mean(axis=1)
    return means


# -- a test against the baseline, and ranks -----------------------------------------------------
def paired_seed_test(method: Mapping[int, float], baseline: Mapping[int, float], *, higher_is_better: bool,
                     alpha: float = ALPHA) -> PairedTest | None:
    """A method against the baseline, paired by seed, by a two-sided paired t-test
    (scipy.stats.ttest_rel); None when fewer than two seeds are shared.

    Why a t-test: with three seeds the Wilcoxon signed-rank and sign tests cannot reach p < 0.05
    (their smallest two-sided p is 2 / 2^3 = 0.25), so they would call every method
    indistinguishable; the t-test on the seed-wise differences can, at the price of assuming them
    roughly normal.
    """
    seeds = tuple(sorted(set(method) & set(baseline)))
    if len(seeds) < 2:
        return None
    x = np.array([method[s] for s in seeds], dtype=float)
    y = np.array([baseline[s] for s in seeds], dtype=float)
    difference = float(np.mean(x - y))
    if not np.any(x - y):
        p_value, low, high = 1.0, 0.0, 0.0  # identical on every seed: t is 0/0, and nothing differs
    elif np.ptp(x - y) == 0:
        p_value, low, high = 0.0, difference, difference  # the same nonzero difference on every seed
    else:
        result = stats.ttest_rel(x, y)
        interval = result.confidence_interval(1 - alpha)
        p_value, low, high = float(result.pvalue), float(interval.low), float(interval.high)
    if p_value < alpha:
        verdict = "better" if (difference > 0) == higher_is_better else "worse"
    else:
        verdict = "indistinguishable"
    return PairedTest(seeds, difference, p_value, verdict, low, high)


def mean_ranks(scores: np.ndarray, *, higher_is_better: bool) -> np.ndarray:
    """scores [methods, benchmarks], NaN where a method has no entry: each benchmark ranks the
    methods it has (1 = best, ties share their average rank, scipy.stats.rankdata), and a method's
    mean rank is over the benchmarks it has (NaN when none)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [methods, benchmarks], not of shape {scores.shape}")
    ranks = stats.rankdata(-scores if higher_is_better else scores, axis=0, nan_policy="omit")
    present = ~np.isnan(ranks)
    counts = present.sum(axis=1)
    totals = np.where(present, ranks, 0.0).sum(axis=1)
    return np.divide(totals, counts, out=np.full(scores.shape[0], np.nan), where=counts > 0)
