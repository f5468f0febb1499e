"""The leaderboard's overview: verdicts against ce, ranks, sorting, and the significance export,
checked against hand computations on the committed records."""

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from tailbench.leaderboard import overview
from tailbench.leaderboard.aggregate import entries
from tailbench.leaderboard.build import render_files
from tailbench.results.records import iter_runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def grouped():
    return entries(iter_runs(ROOT / "results"))


def test_verdict_is_the_paired_t_test_by_seed(grouped):
    group = {e.method: e for e in grouped["fmnist-bg-lt"]}
    method, ce = group["ce+drs"], group["ce"]
    x = method.summaries.loc[[0, 1, 2], "tail_accuracy"].to_numpy()
    y = ce.summaries.loc[[0, 1, 2], "tail_accuracy"].to_numpy()
    test = overview.verdict(method, ce, overview.HEADLINES[1])
    assert test.p_value == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert test.mean_difference == pytest.approx(float(np.mean(x - y)))
    assert test.verdict == ("better" if test.p_value < 0.05 and test.mean_difference > 0 else test.verdict)
    eKLD = overview.HEADLINES[2]
    assert eKLD.key(method) == "tail_ekld_bg" and not eKLD.higher_is_better
    consistency = overview.HEADLINES[3]
    assert consistency.key(method) == "tail_consistency_bg" and consistency.higher_is_better


def test_tables_are_sorted_by_balanced_accuracy_best_first(grouped):
    ordered = overview.sorted_entries(grouped["fmnist-rot-lt"])
    means = [e.metric("balanced_accuracy").mean for e in ordered]
    assert means == sorted(means, reverse=True)


def test_significance_csv_has_one_row_per_method_metric_against_ce(grouped):
    files = render_files(ROOT / "results")
    rows = list(csv.DictReader(io.StringIO(files["significance.csv"].decode())))
    assert rows and all(r["method"] != "ce" for r in rows)
    row = next(r for r in rows if r["benchmark"] == "fmnist-bg-lt" and r["method"] == "ce+oracle" and r["metric"] == "tail_ekld_bg")
    group = {e.method: e for e in grouped["fmnist-bg-lt"]}
    expected = overview.verdict(group["ce+oracle"], group["ce"], overview.HEADLINES[2])
    assert float(row["p_value"]) == pytest.approx(expected.p_value) and row["verdict"] == expected.verdict
    assert "## Overview" in files["LEADERBOARD.md"].decode().split("## fmnist")[0]
