"""Per-image evidence (per_image.csv.gz): its format, its checks by submit, and the eKLD protocols."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from record_edits import copy_of, delete_field, edit_result
from tailbench.benchmarks.invariance import measure_invariance
from tailbench.benchmarks.runtime import Runtime
from tailbench.methods import ComposedMethod, MethodContext
from tailbench.nuisance import get_family
from tailbench.results import per_image
from tailbench.submission.validate import validate_run
from tailbench.results.store import PER_IMAGE


def small_table() -> tuple[bytes, pd.DataFrame]:
    """Five test images of two classes; eKLD sampled two images of class 0 and one of class 1."""
    labels = np.array([0, 0, 0, 1, 1])
    predicted = np.array([0, 1, 0, 1, 1])
    top1 = np.array([0.9, 0.6, 0.7, 0.8, 0.55])
    true = np.array([0.9, 0.4, 0.7, 0.8, 0.55])
    invariance = {"rot": (np.array([0, 2, 4]), np.array([0.1, 0.3, 0.25]), np.array([1.0, 0.5, 0.75]))}
    data = per_image.encode(labels, predicted, top1, true, invariance)
    per_class = pd.DataFrame({"test_count": [3, 2], "test_acc": [2 / 3, 1.0], "ekld_rot": [0.2, 0.25], "consistency_rot": [0.75, 0.75]})
    return data, per_class


def test_the_file_holds_one_row_per_image_with_the_sampled_images_invariance():
    data, _ = small_table()
    table = per_image.decode(data)
    assert list(table.columns) == ["class", "predicted", "top1_prob", "true_prob", "ekld_rot", "consistency_rot"]
    assert table["predicted"].tolist() == [0, 1, 0, 1, 1]
    assert table["ekld_rot"].isna().tolist() == [False, True, False, True, False]
    assert table["ekld_rot"][2] == 0.3 and table["consistency_rot"][4] == 0.75
    assert gzip.decompress(data).decode().splitlines()[2] == "0,1,0.600000,0.400000,,"


def test_the_bytes_are_the_same_every_time():
    assert small_table()[0] == small_table()[0]  # no gzip timestamp: a rerun reproduces the checksum


def test_a_consistent_file_has_no_problems_and_each_disagreement_is_named():
    data, per_class = small_table()
    listed = per_image.describe(data, 5)
    assert per_image.check(data, listed, ["rot"], per_class) == []
    wrong_acc = per_class.assign(test_acc=[1.0, 1.0])
    assert per_image.check(data, listed, ["rot"], wrong_acc) == [
        ("per_image.csv.gz predicted", "gives class 0 an accuracy of 0.666667; per_class.csv test_acc says 1")]
    wrong_ekld = per_class.assign(ekld_rot=[0.21, 0.25])
    assert per_image.check(data, listed, ["rot"], wrong_ekld)[0][0] == "per_image.csv.gz ekld_rot"
    assert "sha256" in per_image.check(data, {**listed, "sha256": "0" * 64}, ["rot"], per_class)[0][1]
    assert per_image.check(b"not gzip", per_image.describe(b"not gzip", 5), ["rot"], per_class)[0][1].startswith("is not gzip data")


def test_a_run_record_keeps_its_per_image_file_and_submit_checks_it(digits_record, tmp_path):
    result = json.loads((digits_record / "result.json").read_text())
    data = (digits_record / PER_IMAGE).read_bytes()
    assert result["per_image"] == {"file": PER_IMAGE, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "rows": result["dataset"]["test_size"]}
    assert validate_run(digits_record).problems == []

    tampered = copy_of(digits_record, tmp_path, "tampered")
    lines = gzip.decompress((tampered / PER_IMAGE).read_bytes()).decode().splitlines()
    cells = lines[1].split(",")
    cells[1] = str((int(cells[0]) + 1) % 10) if cells[1] == cells[0] else cells[0]  # the first image's hit or miss turned
    lines[1] = ",".join(cells)
    (tampered / PER_IMAGE).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    where, why = validate_run(tampered).problems[0]
    assert where == PER_IMAGE and "result.json per_image" in why
    relisted = per_image.describe((tampered / PER_IMAGE).read_bytes(), result["dataset"]["test_size"])
    edit_result(tampered, lambda r: r.update(per_image=relisted))  # checksum made to match: the content still disagrees
    assert validate_run(tampered).problems[0][0] == "per_image.csv.gz predicted"

    missing = copy_of(digits_record, tmp_path, "missing")
    (missing / PER_IMAGE).unlink()
    assert validate_run(missing).problems == [(PER_IMAGE, "missing: result.json lists it (per_image)")]

    unlisted = copy_of(digits_record, tmp_path, "unlisted")
    edit_result(unlisted, delete_field(["per_image"]))
    assert validate_run(unlisted).problems[0][0] == PER_IMAGE

    older = copy_of(digits_record, tmp_path, "older")  # a record made before runs kept evidence
    edit_result(older, delete_field(["per_image"]))
    (older / PER_IMAGE).unlink()
    assert validate_run(older).problems == []


def test_submit_refuses_a_tampered_file_in_one_line(cli, digits_record, tmp_path):
    tampered = copy_of(digits_record, tmp_path)
    (tampered / PER_IMAGE).write_bytes(b"\x1f\x8b garbage")
    result = cli("submit", str(tampered.parent.parent.parent), "--results", str(tmp_path / "results"))
    assert result.code == 2
    assert PER_IMAGE in result.out + result.err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("done"))


class ScaledSum(torch.nn.Module):
    """Logits that depend on the image's total brightness: a background change moves them."""

    def forward(self, x):
        s = x.flatten(1).mean(1, keepdim=True)
        return torch.cat([4 * s, -4 * s], 1)


def invariance(protocol: str, originals: torch.Tensor, sources: torch.Tensor, y: torch.Tensor):
    ctx = MethodContext(num_classes=2, class_counts=torch.tensor([4, 4]), epochs=1, first_lr_step=1,
                        device=torch.device("cpu"), seed=0, image_shape=(1, 8, 8), nuisance="bg")
    runtime = Runtime(torch.device("cpu"), "contiguous", 16, captured_steps=False)
    return measure_invariance(ComposedMethod("ce", ctx, {}), ScaledSum(), get_family("bg"), originals, sources, y, 2,
                              images_per_class=3, transforms=4, runtime=runtime, seed=0, protocol=protocol)


def test_the_clean_protocol_starts_from_the_clean_image_and_drawn_from_the_drawn_one():
    g = torch.Generator().manual_seed(0)
    clean = (torch.rand(8, 1, 8, 8, generator=g) > 0.6).to(torch.uint8) * 200
    drawn = get_family("bg")(clean.float() / 255, torch.Generator().manual_seed(1)).mul(255).round().to(torch.uint8)
    y = torch.tensor([0, 1] * 4)
    from_clean = invariance("clean", drawn, clean, y)
    as_if_clean = invariance("drawn", clean, clean, y)  # x = the clean image, by hand
    assert torch.equal(from_clean.ekld, as_if_clean.ekld)
    from_drawn = invariance("drawn", drawn, clean, y)
    assert not torch.allclose(from_clean.ekld, from_drawn.ekld)
    # per image as well as per class: the class means are the means of the images'
    for c in range(2):
        members = y[from_clean.chosen] == c
        assert from_clean.image_ekld[members].mean().item() == pytest.approx(from_clean.ekld[c].item(), rel=1e-12)
        assert from_clean.image_consistency[members].mean().item() == pytest.approx(from_clean.consistency[c].item(), rel=1e-12)


def test_the_leaderboard_computes_per_image_metrics_and_reports_an_unusable_file(cli, digits_record, tmp_path):
    good = copy_of(digits_record, tmp_path / "results", "good")
    board = tmp_path / "board"
    outcome = cli("leaderboard", "--results", str(tmp_path / "results"), "--out", str(board))
    assert outcome.code == 0, outcome.err
    row = next(csv.DictReader(io.StringIO((board / "summary.csv").read_text())))
    assert 0 <= float(row["ece_mean"]) <= 1 and row["per_image"] == "true"
    assert row["balanced_accuracy_ci_kind"] == "seeds × images"  # one seed, yet an interval from its test images
    assert float(row["balanced_accuracy_ci_low"]) <= float(row["balanced_accuracy_mean"]) <= float(row["balanced_accuracy_ci_high"])
    assert (board / "reliability_digits-lt_epochs=1.png").is_file()

    (good / PER_IMAGE).write_bytes(b"\x1f\x8b garbage")
    outcome = cli("leaderboard", "--results", str(tmp_path / "results"), "--out", str(board))
    assert outcome.code == 2
    assert len(outcome.err.strip().splitlines()) == 1 and str(good) in outcome.err and PER_IMAGE in outcome.err
    row = next(csv.DictReader(io.StringIO((board / "summary.csv").read_text())))
    assert row["ece_mean"] == "" and row["per_image"] == "false" and float(row["balanced_accuracy_mean"]) > 0  # the rest still built
    assert not (board / "reliability_digits-lt_epochs=1.png").exists()
