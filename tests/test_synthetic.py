"""synthetic-lt: the real benchmarks' sizes, reproducible bytes, one-line option errors, a full run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tailbench.datasets import get_dataset

SMALL = {"n_max": "30", "ratio": "10", "test_per_class": "6", "val_per_class": "2", "size": "12"}


@pytest.mark.parametrize("options, total", [
    ({}, 12_406),  # CIFAR-10-LT, ratio 100
    ({"classes": "100", "n_max": "500"}, 10_847),  # CIFAR-100-LT, ratio 100
    ({"ratio": "10"}, 20_431),  # CIFAR-10-LT, ratio 10
    ({"channels": "1", "size": "28", "profile": "zipf", "n_max": "4800"}, 7_437),  # Fashion-MNIST-LT's Zipf sizes
])
def test_sizes_are_the_real_benchmarks(options, total):
    manifest, frozen = get_dataset("synthetic-lt", options).manifest()
    assert sum(manifest.counts("train")) == total and frozen == (options == {})  # the default option set is frozen


def test_the_same_options_give_the_same_bytes_and_another_seed_others():
    a = get_dataset("synthetic-lt", SMALL).load(Path("."))
    b = get_dataset("synthetic-lt", SMALL).load(Path("."))
    c = get_dataset("synthetic-lt", {**SMALL, "seed": "1"}).load(Path("."))
    assert a.train.x.shape[1:] == (3, 12, 12) and a.train_counts.tolist()[0] == 30
    assert np.array_equal(a.train.x.numpy(), b.train.x.numpy()) and a.manifest_sha256 == b.manifest_sha256
    assert not np.array_equal(a.train.x.numpy(), c.train.x.numpy())
    assert a.sources[0]["sha256"] == b.sources[0]["sha256"] != c.sources[0]["sha256"]


def test_each_class_has_a_pattern_to_learn():
    """A nearest-class-mean classifier, fitted on the training images, is far above chance."""
    data = get_dataset("synthetic-lt", SMALL).load(Path("."))
    train, test = data.train.x.float().flatten(1), data.test.x.float().flatten(1)
    means = torch.stack([train[data.train.y == k].mean(0) for k in range(data.num_classes)])
    predicted = torch.cdist(test, means).argmin(1)
    assert (predicted == data.test.y).float().mean() > 0.6  # chance: 0.1


@pytest.mark.parametrize("opt, message", [
    ("profile=log", "must be one of exp, step, zipf"),
    ("classes=1", "must be an integer of at least 2"),
    ("channels=2", "channels must be 1 or 3"),
    ("ratio=0.5", "ratio must be >= 1"),
])
def test_bad_options_are_one_line(cli, opt, message):
    result = cli("describe", "synthetic-lt", "--dataset-opt", opt)
    assert result.code == 2 and message in result.error_line()


def test_a_run_on_synthetic_data_writes_a_valid_record(cli, tmp_path):
    opts = [a for k, v in SMALL.items() for a in ("--dataset-opt", f"{k}={v}")]
    result = cli("run", "--dataset", "synthetic-lt", "--method", "ce+drs", "--recipe", "digits", "--epochs", "1",
                 "--out", tmp_path / "runs", "--quiet", *opts)
    assert result.code == 0, result.err
    submitted = cli("submit", tmp_path / "runs", "--results", tmp_path / "results")
    assert submitted.code == 0, submitted.out + submitted.err
    assert list((tmp_path / "results").rglob("done"))
