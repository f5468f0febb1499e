"""Every summary metric, declared once: what it is called, how it is computed from a record's
tables, which way is better and how it is shown.

A metric is computed from a run's `RunTables`: its per-class table (per_class.csv) and, where the
record has one, its per-image evidence (per_image.csv.gz). The leaderboard, `compare`, `rerun` and
`submit`'s consistency check all read `metrics_for(families)`; nothing else names a metric.

`stored` marks the metrics that a run writes into result.json's summary (the set of schema 1,
frozen so that no record needs a migration): `submit` checks each stored number against what the
table gives. Every other metric is computed when the record is read, so adding one is one entry
here (and its test), and a record made before it existed shows "—" only where the metric needs
data the record lacks (per-image evidence).

Groups by training count, as in the long-tail literature: many-shot (> 100 images), medium-shot
(20..100) and few-shot (< 20); a group with no class gives None. Head and tail are the largest and
smallest thirds of the classes by training count (ties broken by class index), so every dataset
has a tail whatever its profile.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

MANY_SHOT, FEW_SHOT = 100, 20
ECE_BINS = 15  # equal-width bins of top-1 confidence, as Guo et al. (2017) and MiSLAS use
# SADE's test-agnostic protocol (Zhang et al., NeurIPS 2022): forward long-tailed test label
# distributions with these imbalance factors, uniform, then backward.
SADE_FACTORS = (50, 25, 10, 5, 2)
SADE_DISTRIBUTIONS = tuple(f"forward_{r}" for r in SADE_FACTORS) + ("uniform",) + tuple(f"backward_{r}" for r in reversed(SADE_FACTORS))
# Shown as columns; "uniform" keeps every test image, so it is the `acc` column already.
SADE_SHOWN = ("forward_50", "backward_50")


@dataclass(frozen=True)
class RunTables:
    """What a metric is computed from: one run's per-class table and, when it has one, its
    per-image evidence (None for records made before runs kept it)."""

    per_class: pd.DataFrame
    families: tuple[str, ...]
    images: pd.DataFrame | None = None
    accuracy: float | None = None  # over all test images; None: from the per-class counts

    def column(self, name: str) -> np.ndarray:
        return self.per_class[name].to_numpy(dtype=float)

    @property
    def train_counts(self) -> np.ndarray:
        return self.column("train_count")

    @property
    def test_acc(self) -> np.ndarray:
        return self.column("test_acc")


@dataclass(frozen=True)
class Display:
    scale: float
    digits: int
    unit: str  # for captions: "%", "" ...


PERCENT, KL, CORRELATION, NUMBER = Display(100.0, 1, "%"), Display(1.0, 3, ""), Display(1.0, 2, ""), Display(1.0, 3, "")


@dataclass(frozen=True)
class Metric:
    key: str  # the summary key (per family: with the family's name in it)
    label: str  # the column header
    higher_is_better: bool | None  # None: descriptive, neither way is better
    display: Display
    compute: Callable[[RunTables], float | None]
    description: str
    stored: bool = False  # written into result.json's summary by runs, checked by submit
    needs_images: bool = False  # None for a record without per-image evidence
    column: bool = False  # a column of the leaderboard's benchmark tables
    family: str | None = None
    # For metrics of per-class means: the function of them ([..., C] -> [...]) and the per-image
    # column the means come from ("correct", or ekld_/consistency_<family>), so that intervals can
    # resample test images within classes.
    class_function: Callable[[np.ndarray, RunTables], np.ndarray] | None = None
    quantity: str | None = None


# -- building blocks ------------------------------------------------------------------------------
def mean_or_none(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def shot_groups(train_counts: np.ndarray) -> dict[str, np.ndarray]:
    counts = np.asarray(train_counts)
    return {"many": counts > MANY_SHOT, "medium": (counts >= FEW_SHOT) & (counts <= MANY_SHOT), "few": counts < FEW_SHOT}


def size_order(train_counts: np.ndarray) -> np.ndarray:
    """Class indices from the largest training class to the smallest, ties by class index."""
    counts = np.asarray(train_counts)
    return np.lexsort((np.arange(counts.size), -counts))


def thirds(train_counts: np.ndarray) -> dict[str, np.ndarray]:
    order = size_order(train_counts)
    size = math.ceil(order.size / 3)
    head, tail = np.zeros(order.size, bool), np.zeros(order.size, bool)
    head[order[:size]] = True
    tail[order[-size:]] = True
    return {"head": head, "tail": tail}


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    keep = ~(np.isnan(x) | np.isnan(y))
    if keep.sum() < 3 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return None
    return float(spearmanr(x[keep], y[keep]).statistic)


def overall_accuracy(tables: RunTables) -> float:
    if tables.accuracy is not None:
        return float(tables.accuracy)
    counts = tables.column("test_count")
    correct = math.fsum(round(a * n) for a, n in zip(tables.test_acc, counts) if n > 0)
    return correct / counts.sum()


def sade_shares(train_counts: np.ndarray, distribution: str) -> np.ndarray:
    """Per class, the share of its test images SADE keeps under a test label distribution: the
    class of size rank r (0 = largest training class) keeps (1/ρ)^(r/(C−1)) forward and
    (1/ρ)^((C−1−r)/(C−1)) backward; uniform keeps all."""
    order = size_order(train_counts)
    c = order.size
    rank = np.empty(c)
    rank[order] = np.arange(c)
    if distribution == "uniform" or c < 2:
        return np.ones(c)
    direction, factor = distribution.split("_")
    exponent = rank / (c - 1) if direction == "forward" else (c - 1 - rank) / (c - 1)
    return (1.0 / float(factor)) ** exponent


def sade_counts(train_counts: np.ndarray, test_counts: np.ndarray, distribution: str) -> np.ndarray:
    """The test images per class SADE's construction keeps: int(n_c · share), as its loaders do."""
    return np.floor(np.asarray(test_counts, dtype=float) * sade_shares(train_counts, distribution) + 1e-9)


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float | None:
    """ECE: sum over equal-width confidence bins (0, 1/B], ..., of (share of images) · |accuracy − mean confidence|."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if not confidence.size:
        return None
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, correct, minlength=bins) - np.bincount(which, confidence, minlength=bins))
    return float(gap.sum() / total.sum())


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> pd.DataFrame:
    """Per confidence bin: its images, their accuracy and mean confidence (NaN in an empty bin)."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = np.bincount(which, minlength=bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "low": np.arange(bins) / bins, "high": np.arange(1, bins + 1) / bins, "images": total,
            "accuracy": np.bincount(which, correct, minlength=bins) / total,
            "confidence": np.bincount(which, confidence, minlength=bins) / total,
        })


def _ece_of(part: str | None) -> Callable[[RunTables], float | None]:
    def compute(tables: RunTables) -> float | None:
        if tables.images is None:
            return None
        images = tables.images
        keep = np.ones(len(images), bool)
        if part is not None:
            keep = thirds(tables.train_counts)[part][images["class"].to_numpy()]
        correct = (images["predicted"].to_numpy() == images["class"].to_numpy())[keep]
        return calibration_error(images["top1_prob"].to_numpy(dtype=float)[keep], correct)
    return compute


# -- metrics of per-class means: also computed on resampled per-class means (bootstrap) -----------
ClassFunction = Callable[[np.ndarray, "RunTables"], np.ndarray]  # per-class values [..., C] -> [...]


def _quiet(function, *args, **kwargs):
    """numpy's nan-reductions without their all-NaN warnings (an empty group is NaN, then None)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(*args, **kwargs)


def _nanmean(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    values = values if mask is None else values[..., mask]
    if not values.shape[-1]:
        return np.full(values.shape[:-1], np.nan)
    return _quiet(np.nanmean, values, axis=-1)


def _weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    present = ~np.isnan(values) & (weights > 0)
    total = np.sum(np.where(present, weights, 0.0), axis=-1)
    return _quiet(np.divide, np.sum(np.where(present, weights * np.nan_to_num(values), 0.0), axis=-1), total)


def _geometric(values: np.ndarray, tables: RunTables) -> np.ndarray:
    """exp(mean log) over classes; 0 when a class has accuracy 0."""
    logs = _quiet(np.log, values)
    return np.where(_quiet(np.nanmin, values, axis=-1) == 0, 0.0, np.exp(_nanmean(np.where(np.isinf(logs), np.nan, logs))))


def class_mean_metric(key: str, label: str, higher_is_better: bool | None, display: Display, column_name: str,
                      function: ClassFunction, description: str, **flags) -> Metric:
    """A metric that is a function of one per-class column (accuracy, or eKLD or consistency of a
    family): computed from the per-class table and, for intervals, from per-class means of
    resampled test images (its `quantity`: the per-image column those means come from)."""
    def compute(tables: RunTables) -> float | None:
        value = float(function(tables.column(column_name), tables))
        return None if math.isnan(value) else value
    quantity = "correct" if column_name == "test_acc" else column_name
    return Metric(key, label, higher_is_better, display, compute, description, class_function=function, quantity=quantity, **flags)


def _all(values, tables):
    return _nanmean(values)


def _group(group: str) -> ClassFunction:
    return lambda values, tables: _nanmean(values, shot_groups(tables.train_counts)[group])


def _third(part: str) -> ClassFunction:
    return lambda values, tables: _nanmean(values, thirds(tables.train_counts)[part])


def _test_weighted(values, tables):
    return _weighted(values, tables.column("test_count"))


def _sade(distribution: str) -> ClassFunction:
    return lambda values, tables: _weighted(values, sade_counts(tables.train_counts, tables.column("test_count"), distribution))


def _worst(values, tables):
    return _quiet(np.nanmin, values, axis=-1)


# -- the table ------------------------------------------------------------------------------------
ACC = "test_acc"
GENERAL: tuple[Metric, ...] = (
    # stored: the numbers of schema 1, in its order (result.json's summary)
    Metric("accuracy", "acc", True, PERCENT, overall_accuracy, "accuracy over all test images", stored=True, column=True,
           class_function=_test_weighted, quantity="correct"),
    class_mean_metric("balanced_accuracy", "balanced", True, PERCENT, ACC, _all, "mean of per-class test accuracies", stored=True, column=True),
    Metric("val_balanced_accuracy", "val balanced", True, PERCENT, lambda t: mean_or_none(t.column("val_acc")),
           "balanced accuracy on the validation split", stored=True),
    class_mean_metric("many_shot_accuracy", "many", True, PERCENT, ACC, _group("many"), "mean accuracy of classes with > 100 training images", stored=True, column=True),
    class_mean_metric("medium_shot_accuracy", "medium", True, PERCENT, ACC, _group("medium"), "mean accuracy of classes with 20..100 training images", stored=True, column=True),
    class_mean_metric("few_shot_accuracy", "few", True, PERCENT, ACC, _group("few"), "mean accuracy of classes with < 20 training images", stored=True, column=True),
    class_mean_metric("head_accuracy", "head third", True, PERCENT, ACC, _third("head"), "mean accuracy of the largest third of the classes", stored=True),
    class_mean_metric("tail_accuracy", "tail third", True, PERCENT, ACC, _third("tail"), "mean accuracy of the smallest third of the classes", stored=True, column=True),
    class_mean_metric("worst_class_accuracy", "worst class", True, PERCENT, ACC, _worst, "lowest per-class accuracy", stored=True, column=True),
    # computed when read
    class_mean_metric("geometric_mean_accuracy", "geo. mean", True, PERCENT, ACC, _geometric,
                      "geometric mean of per-class accuracies (0 when a class has none right)", column=True),
    *(class_mean_metric(f"accuracy_{d}", f"acc {d.replace('_', '-')}", True, PERCENT, ACC, _sade(d),
                        f"expected accuracy on SADE's {d.replace('_', '-')} test label distribution", column=d in SADE_SHOWN)
      for d in SADE_DISTRIBUTIONS),
    Metric("ece", "ECE", False, PERCENT, _ece_of(None), f"expected calibration error of top-1 confidence, {ECE_BINS} equal-width bins",
           needs_images=True, column=True),
    Metric("head_ece", "head ECE", False, PERCENT, _ece_of("head"), "ECE over the images of the head third's classes", needs_images=True),
    Metric("tail_ece", "tail ECE", False, PERCENT, _ece_of("tail"), "ECE over the images of the tail third's classes", needs_images=True, column=True),
)


def family_metrics(family: str) -> tuple[Metric, ...]:
    ekld = f"ekld_{family}"
    return (
        class_mean_metric(ekld, f"eKLD {family}", False, KL, ekld, _all, f"mean per-class eKLD under {family}", stored=True, column=True, family=family),
        class_mean_metric(f"head_ekld_{family}", f"head eKLD {family}", False, KL, ekld, _third("head"), "mean eKLD of the head third", stored=True, family=family),
        class_mean_metric(f"tail_ekld_{family}", f"tail eKLD {family}", False, KL, ekld, _third("tail"), "mean eKLD of the tail third",
                          stored=True, column=True, family=family),
        class_mean_metric(f"consistency_{family}", f"consistency {family}", True, PERCENT, f"consistency_{family}", _all,
                          "mean per-class share of transforms that keep the prediction", stored=True, family=family),
        # eKLD moves with the logits' scale alone; this does not, so it reads methods that rescale them
        class_mean_metric(f"tail_consistency_{family}", f"tail consistency {family}", True, PERCENT, f"consistency_{family}",
                          _third("tail"), "mean consistency of the tail third", column=True, family=family),
        Metric(f"spearman_ekld_count_{family}", f"ρ(eKLD, n) {family}", None, CORRELATION,
               lambda t: spearman(t.column(ekld), t.train_counts), "Spearman correlation of per-class eKLD with training count",
               stored=True, column=True, family=family),
        *(class_mean_metric(f"ekld_{family}_{d}", f"eKLD {family} {d.replace('_', '-')}", False, KL, ekld, _sade(d),
                            f"expected eKLD on SADE's {d.replace('_', '-')} test label distribution", family=family)
          for d in SADE_DISTRIBUTIONS if d != "uniform"),
    )


def table_columns(families) -> list[Metric]:
    """The columns of a benchmark's leaderboard table, in order."""
    return [m for m in metrics_for(families) if m.column]


def metrics_for(families) -> list[Metric]:
    """The table for a dataset with these invariance families, in display order."""
    return list(GENERAL) + [m for family in families for m in family_metrics(family)]


def by_key(families) -> dict[str, Metric]:
    return {m.key: m for m in metrics_for(families)}


def compute(tables: RunTables, which: list[Metric] | None = None) -> dict[str, float | None]:
    """Every metric of the table (or of `which`) for one run; None where the data is missing."""
    return {m.key: m.compute(tables) for m in (which if which is not None else metrics_for(tables.families))}


def stored_summary(tables: RunTables) -> dict[str, float | None]:
    """The numbers a run writes into result.json's summary."""
    return compute(tables, [m for m in metrics_for(tables.families) if m.stored])
