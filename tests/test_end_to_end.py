"""A real run on digits-lt through the CLI: files, columns, skip/force, determinism, leaderboard."""

import json

import pandas as pd
import pytest

from tailbench.results.records import iter_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from tailbench.cli import main

    out = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        assert main(["run", "--dataset", "digits-lt", "--method", "ce", "--seed", str(seed), "--out", str(out), "--quiet"]) == 0
    assert main(["run", "--dataset", "digits-lt", "--method", "ce", "--seed", "0", "--out", str(out / "again"), "--quiet"]) == 0
    return out


def test_run_writes_the_record_files(runs):
    directory = runs / "digits-lt" / "ce" / "seed-0"
    assert sorted(p.name for p in directory.iterdir()) == ["done", "per_class.csv", "per_image.csv.gz", "result.json"]
    assert (directory / "done").read_bytes() == b""
    table = pd.read_csv(directory / "per_class.csv")
    expected = {"class", "train_count", "val_acc", "test_acc", "ekld_rot", "consistency_rot", "ekld_bg", "consistency_bg"}
    assert expected <= set(table.columns)
    assert len(table) == 10 and table["train_count"].sum() == 239
    assert table["test_acc"].between(0, 1).all() and (table["ekld_rot"] >= 0).all()


def test_result_json_holds_config_summary_and_provenance(runs):
    result = json.loads((runs / "digits-lt" / "ce" / "seed-0" / "result.json").read_text())
    assert result["benchmark"] == "digits-lt" and result["seed"] == 0
    assert result["method"]["spec"] == "ce" and result["recipe"]["model"] == "cifar_resnet8"
    assert len(result["dataset"]["manifest_sha256"]) == 64 and result["dataset"]["manifest_frozen"] is True
    for key in ("accuracy", "balanced_accuracy", "many_shot_accuracy", "medium_shot_accuracy", "few_shot_accuracy",
                "worst_class_accuracy", "spearman_ekld_count_rot", "tail_ekld_bg"):
        assert key in result["summary"]
    provenance = result["provenance"]
    assert provenance["packages"]["torch"] and provenance["device_type"] == "cpu"
    assert provenance["wall_seconds"] > 0 and provenance["started"] < provenance["finished"]
    assert len(result["history"]) == result["recipe"]["epochs"]


def test_same_seed_on_the_cpu_gives_the_same_numbers(runs):
    first = json.loads((runs / "digits-lt" / "ce" / "seed-0" / "result.json").read_text())
    again = json.loads((runs / "again" / "digits-lt" / "ce" / "seed-0" / "result.json").read_text())
    assert first["summary"] == again["summary"]
    assert (runs / "digits-lt" / "ce" / "seed-0" / "per_class.csv").read_text() == (
        runs / "again" / "digits-lt" / "ce" / "seed-0" / "per_class.csv").read_text()
    assert (runs / "digits-lt" / "ce" / "seed-0" / "per_image.csv.gz").read_bytes() == (
        runs / "again" / "digits-lt" / "ce" / "seed-0" / "per_image.csv.gz").read_bytes()
    other = json.loads((runs / "digits-lt" / "ce" / "seed-1" / "result.json").read_text())
    assert other["summary"] != first["summary"]


def test_a_finished_run_is_skipped_unless_forced(runs, cli):
    result_file = runs / "digits-lt" / "ce" / "seed-0" / "result.json"
    before = result_file.read_text()
    skipped = cli("run", "--dataset", "digits-lt", "--method", "ce", "--seed", "0", "--out", runs, "--quiet")
    assert skipped.code == 0 and "skipped" in skipped.err
    assert result_file.read_text() == before
    forced = cli("run", "--dataset", "digits-lt", "--method", "ce", "--seed", "0", "--out", runs, "--quiet", "--force", "--epochs", "1")
    assert forced.code == 0
    assert (runs / "digits-lt@epochs=1" / "ce" / "seed-0" / "done").exists()


def test_leaderboard_from_run_records(runs, cli, tmp_path):
    result = cli("leaderboard", "--results", runs / "digits-lt", "--out", tmp_path / "board")
    assert result.code == 0
    text = (tmp_path / "board" / "LEADERBOARD.md").read_text()
    assert "## digits-lt" in text and "| `ce` | 2ⁱ |" in text
    plot = tmp_path / "board" / "ekld_vs_count_digits-lt.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    [run] = [r for r in iter_runs(runs / "digits-lt") if r.seed == 0]
    accuracy = run.summary["accuracy"]
    assert f"{accuracy * 100:.1f}" in text or "±" in text
