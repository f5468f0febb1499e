"""The 95 % interval of every leaderboard mean (an entry's mean over seeds of one metric).

Two kinds, and each interval says which it is:

- `seeds × images`: when every run of the entry keeps per-image evidence and the metric is a
  function of per-class means (tailbench.results.metrics `class_function`: accuracies, eKLD,
  SADE's test-agnostic accuracies, ...), seeds are resampled and, within every resampled run, the
  test images of each class (stratified by class, `stats.resampled_runs`); the metric is applied
  to each resample's per-class means. This also gives an interval to an entry of one seed.
- `seeds`: otherwise, the seed values resampled with replacement (rliable's bootstrap over runs,
  a percentile interval); none with fewer than two seeds.

Every draw is seeded (stats.BOOTSTRAP_SEED), so a rebuilt leaderboard prints the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tailbench.leaderboard.stats import IMAGE_RESAMPLES, Interval, percentile_interval, resampled_runs, seed_means_interval
from tailbench.results.metrics import RunTables, metrics_for

if TYPE_CHECKING:
    from tailbench.leaderboard.aggregate import Entry

SEEDS_AND_IMAGES, SEEDS = "seeds × images", "seeds"


@dataclass(frozen=True)
class MetricInterval:
    interval: Interval | None
    kind: str  # SEEDS_AND_IMAGES or SEEDS


def image_values(images, quantity: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, classes) of the images a per-image quantity was measured on."""
    classes = images["class"].to_numpy()
    if quantity == "correct":
        return (images["predicted"].to_numpy() == classes).astype(float), classes
    values = images[quantity].to_numpy(dtype=float)
    measured = ~np.isnan(values)
    return values[measured], classes[measured]


def entry_intervals(entry: Entry, resamples: int = IMAGE_RESAMPLES) -> dict[str, MetricInterval]:
    """Metric key -> its interval for this entry (every metric of the table, and learned_*)."""
    evidence = [run.evidence[0] for run in entry.runs]
    with_images = all(images is not None for images in evidence)
    first = entry.runs[0]
    tables = RunTables(first.per_class, tuple(entry.families))
    num_classes = len(first.per_class)
    resampled: dict[str, np.ndarray] = {}
    found: dict[str, MetricInterval] = {}
    for metric in metrics_for(entry.families):
        if with_images and metric.class_function is not None:
            if metric.quantity not in resampled:
                runs = [image_values(images, metric.quantity) for images in evidence]
                resampled[metric.quantity] = resampled_runs(runs, num_classes, resamples=resamples)
            replicates = np.asarray(metric.class_function(resampled[metric.quantity], tables), dtype=float).mean(axis=1)
            found[metric.key] = MetricInterval(percentile_interval(replicates), SEEDS_AND_IMAGES)
        elif metric.key in entry.summaries:
            found[metric.key] = MetricInterval(seed_means_interval(entry.summaries[metric.key].to_numpy()), SEEDS)
    for key in entry.learned_keys:
        found[key] = MetricInterval(seed_means_interval(entry.summaries[key].to_numpy()), SEEDS)
    return found


def interval_kind(entries: list[Entry]) -> str:
    """How a benchmark's accuracy intervals were made, for its caption."""
    kinds = {all(run.evidence[0] is not None for run in entry.runs) for entry in entries}
    if kinds == {True}:
        return "seeds and test images within each class resampled; for ECE and ρ, seeds alone"
    if kinds == {False}:
        return "seeds resampled (these records keep no per-image evidence)"
    return "seeds and test images resampled for entries marked ⁱ (they keep per-image evidence), seeds alone for the others"
