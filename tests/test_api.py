"""The Python API and the exports: a harness-trained model evaluated through `tailbench.evaluate`
gives its own record's numbers, and each export round-trips to the harness's tensors."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

import tailbench
from tailbench.benchmarks import runner
from tailbench.cli import main
from tailbench.exports import read_imagefolder, read_npz


@pytest.fixture(scope="module")
def bench():
    return tailbench.load_benchmark("digits-lt")


def test_the_registry_and_the_splits(bench):
    assert "fmnist-bg-lt" in tailbench.list_datasets() and tailbench.list_methods()["ce"] == "loss"
    x, y = bench.tensors("train")
    assert x.dtype == torch.uint8 and x.shape[1:] == bench.image_shape and len(y) == 239
    assert bench.train_counts.tolist() == np.bincount(y.numpy(), minlength=10).tolist()
    assert len(bench.manifest_sha256) == 64 and bench.invariance_families == ("rot", "bg") and len(bench.class_names) == 10
    image, label = bench.dataset("test")[0]
    assert image.dtype == torch.float32 and 0 <= float(image.min()) and float(image.max()) <= 1 and isinstance(label, int)
    with pytest.raises(tailbench.api.UserError, match="not one of train, val, test"):
        bench.split("dev")


def test_a_harness_trained_model_gives_its_records_numbers(bench, tmp_path, monkeypatch):
    trained = {}
    harness_evaluate = runner.evaluate

    def keep_model(method, model, *args):
        trained["model"] = model
        return harness_evaluate(method, model, *args)

    monkeypatch.setattr(runner, "evaluate", keep_model)
    assert main(["run", "--dataset", "digits-lt", "--method", "ce", "--seed", "3", "--epochs", "1", "--device", "cpu",
                 "--out", str(tmp_path), "--quiet"]) == 0
    record = tmp_path / "digits-lt@epochs=1" / "ce" / "seed-3"
    result = tailbench.evaluate(trained["model"], bench, seed=3, device="cpu")
    stored = pd.read_csv(record / "per_class.csv")
    pd.testing.assert_frame_equal(result.per_class.astype(stored.dtypes.to_dict()), stored, check_exact=True)
    assert result.summary == json.loads((record / "result.json").read_text())["summary"]
    assert result.per_image == (record / "per_image.csv.gz").read_bytes()
    assert 0 <= result.metrics["ece"] <= 1 and "accuracy_forward_50" in result.metrics


def test_a_model_of_the_wrong_shape_is_named(bench):
    wrong = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(bench.image_shape)), 7))
    with pytest.raises(tailbench.api.UserError, match=r"returns \(2, 7\) for 2 images; the benchmark needs \[2, 10\]"):
        tailbench.evaluate(wrong, bench, device="cpu")
    broken = torch.nn.Linear(3, 10)
    with pytest.raises(tailbench.api.UserError, match="the model fails on a batch of shape"):
        tailbench.evaluate(broken, bench, device="cpu")


@pytest.mark.parametrize("fmt, read", [("npz", read_npz), ("imagefolder", read_imagefolder)])
def test_each_export_round_trips_to_the_harness_tensors(bench, tmp_path, cli, fmt, read):
    out = tmp_path / fmt
    outcome = cli("export", "digits-lt", "--format", fmt, "--out", out)
    assert outcome.code == 0, outcome.err
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["manifest_sha256"] == bench.manifest_sha256 and manifest["train_counts"] == bench.train_counts.tolist()
    for relative, digest in manifest["files"].items():
        assert hashlib.sha256((out / relative).read_bytes()).hexdigest() == digest
    for split in ("train", "val", "test"):
        x, y = read(out, split)
        harness_x, harness_y = bench.tensors(split)
        assert np.array_equal(x, harness_x.numpy()) and np.array_equal(y, harness_y.numpy())
    again = cli("export", "digits-lt", "--format", fmt, "--out", out)
    assert again.code == 2 and "exists and is not an empty folder" in again.error_line()


def test_export_refuses_bad_input_in_one_line(cli, tmp_path):
    outcome = cli("export", "digits-lt", "--format", "zip", "--out", tmp_path / "x")
    assert outcome.code == 2 and "--format 'zip' is not one of npz, imagefolder" in outcome.error_line()
    assert not (tmp_path / "x").exists()
