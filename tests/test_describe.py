"""`tailbench describe`: long-tailedness from the frozen manifest (no data), checked against
HeroLT's published table, its --json output, and one-line errors."""

from __future__ import annotations

import json

import pytest

from tailbench.datasets.manifest import load_frozen

# HeroLT README, "Datasets": (IF, Gini, Pareto) of the CIFAR-LT training sets. Its Gini is over
# per-image labels (gini_labels here); its Pareto column reads 0.001 above 7/4 and 67/34 in three
# rows (1.751, 1.751, 1.972), so that column is compared to within 0.0015.
HEROLT = {
    "cifar10-lt": (100, 0.617, 1.751),
    "cifar10-lt--ratio=50": (50, 0.593, 1.751),
    "cifar10-lt--ratio=10": (10, 0.520, 0.833),
    "cifar100-lt": (100, 0.498, 1.972),
    "cifar100-lt--ratio=50": (50, 0.488, 1.590),
    "cifar100-lt--ratio=10": (10, 0.447, 0.836),
}


def describe_args(frozen_id: str) -> list[str]:
    name, *options = frozen_id.split("--")
    return [name] + [arg for option in options for arg in ("--dataset-opt", option)]


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    monkeypatch.setenv("TAILBENCH_DATA", str(tmp_path / "nothing"))


@pytest.mark.parametrize("frozen_id", HEROLT)
def test_matches_herolts_published_table(cli, no_data, frozen_id):
    result = cli("describe", *describe_args(frozen_id), "--json")
    assert result.code == 0, result.err
    shape = json.loads(result.out)["long_tailedness"]
    factor, gini, pareto = HEROLT[frozen_id]
    assert shape["split"] == "train" and shape["pareto_alpha"] == 0.8
    assert round(shape["imbalance_factor"]) == factor
    assert round(shape["gini_labels"], 3) == gini
    assert shape["pareto_lt_ratio"] == pytest.approx(pareto, abs=0.0015)


def test_json_holds_the_manifest(cli, no_data):
    result = cli("describe", "fmnist-rot-lt", "--json")
    described = json.loads(result.out)
    manifest = load_frozen("fmnist-rot-lt")
    assert described["dataset_id"] == "fmnist-rot-lt" and described["classes"] == manifest.class_names
    assert described["counts"] == {split: manifest.counts(split) for split in ("train", "val", "test")}
    assert described["totals"]["train"] == 7437 and described["manifest_sha256"] == manifest.sha256
    assert described["manifest_frozen"] is True and described["nuisance"] == "rot"
    # 7,437 images from 4,800 down to 48: 80% is 5,949.6 (4,800 + 1,200 = 6,000: 2 classes) and 20%
    # is 1,487.4, which the 8 smallest (1,109) miss and the 9 smallest (2,309) reach
    shape = described["long_tailedness"]
    assert shape["imbalance_factor"] == 100.0 and 0 < shape["gini_class_sizes"] < 1
    assert (shape["head_classes"], shape["tail_classes"], shape["pareto_lt_ratio"]) == (2, 9, 4.5)


def test_text_shows_the_three_numbers_and_says_which_gini(cli, no_data):
    result = cli("describe", "cifar10-lt")
    assert result.code == 0
    lines = result.out.splitlines()
    head = next(line for line in lines if line.startswith("long-tailedness of the train split"))
    assert "imbalance factor 100.0, Gini 0.613, Pareto-LT ratio 1.750" in head
    detail = lines[lines.index(head) + 1]
    assert "Gini over class sizes" in detail and "per-image labels" in detail and "0.617" in detail
    assert "the 7 smallest classes hold 20% of the images, the 4 largest 80%" in detail


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown dataset 'nope'"),
    (["nope", "--json"], "unknown dataset 'nope'"),
    (["cifar10-lt", "--dataset-opt", "ratio=20", "--json"], "ratio=20"),
])
def test_bad_input_is_one_line_and_prints_nothing(cli, no_data, args, message):
    result = cli("describe", *args)
    assert result.code == 2 and message in result.error_line() and result.out == ""
