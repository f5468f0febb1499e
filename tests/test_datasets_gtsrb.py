"""GTSRB-LT: the real loader on tiny fake files in torchvision's GTSRB layout (43 training folders
of .ppm images with their GT-000NN.csv, the flat test folder and GT-final_test.csv)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tailbench.datasets import get_dataset
from tailbench.datasets import gtsrb as gtsrb_module

TEST_PER_CLASS = 2
SMALL = ["--dataset-opt", "val_per_class=2", "--dataset-opt", "ratio=4"]


def train_count(c: int) -> int:
    """Uneven official class sizes (6..10), so the ranking by size matters."""
    return 6 + (c * 7) % 5


def sign(c: int, width: int, height: int) -> Image.Image:
    """A flat image whose red level names the class (it survives resizing exactly)."""
    return Image.new("RGB", (width, height), (5 * c, 100, 200 - 4 * c))


def write_fake_gtsrb(data_dir) -> None:
    base = data_dir / "gtsrb"
    header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"
    for c in range(43):
        folder = base / "GTSRB" / "Training" / f"{c:05d}"
        folder.mkdir(parents=True)
        rows = []
        for i in range(train_count(c)):
            track, frame = divmod(i, 3)  # 3-frame "tracks", growing images as in the official files
            name = f"{track:05d}_{frame:05d}.ppm"
            size = 29 + 4 * frame + c % 3
            sign(c, size, size + 1).save(folder / name, format="PPM")
            rows.append(f"{name};{size};{size + 1};5;5;{size - 5};{size - 4};{c}\n")
        (folder / f"GT-{c:05d}.csv").write_text(header + "".join(rows))
    test_dir = base / "GTSRB" / "Final_Test" / "Images"
    test_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(43), TEST_PER_CLASS))
    rows = []
    for i, c in enumerate(labels):
        sign(int(c), 40, 38).save(test_dir / f"{i:05d}.ppm", format="PPM")
        rows.append(f"{i:05d}.ppm;40;38;5;5;35;33;{c}\n")
    (base / "GT-final_test.csv").write_text(header + "".join(rows))


@pytest.fixture(scope="module")
def fake_files(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("gtsrb") / "data"
    write_fake_gtsrb(data_dir)
    return data_dir


@pytest.fixture
def fake_gtsrb(fake_files, tmp_path):
    """A private copy, so a test may damage it."""
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(fake_files, data_dir)
    return data_dir


def test_loader_ranks_classes_by_official_size_and_keeps_tracks_whole(fake_files):
    data = get_dataset("gtsrb-lt", {"val_per_class": "2", "ratio": "4"}).load(fake_files)
    totals = [train_count(c) for c in range(43)]
    counts = data.train_counts.tolist()
    by_size = sorted(range(43), key=lambda c: (-totals[c], c))
    assert [counts[c] for c in by_size] == sorted(counts, reverse=True)
    assert counts[by_size[0]] == totals[by_size[0]] - 2  # n_max: the largest that fits
    assert all(counts[c] + 2 <= totals[c] for c in range(43))
    assert torch.bincount(data.val.y, minlength=43).tolist() == [2] * 43
    assert torch.bincount(data.test.y, minlength=43).tolist() == [TEST_PER_CLASS] * 43
    assert data.train.x.dtype == torch.uint8 and data.train.x.shape[1:] == (3, 32, 32)
    for split in (data.train, data.val, data.test):
        assert torch.equal(split.x[:, 0, 16, 16].long(), 5 * split.y)
    manifest, frozen = get_dataset("gtsrb-lt", {"val_per_class": "2", "ratio": "4"}).manifest(
        {"train": totals, "test": [TEST_PER_CLASS] * 43}
    )
    assert not frozen
    for c in range(43):  # train = the first images in file order, val = the last ones
        assert manifest.splits["train"][c] == list(range(counts[c]))
        assert manifest.splits["val"][c] == [totals[c] - 2, totals[c] - 1]
    assert data.sources[0]["check"] == "listing fingerprint, not pinned" and len(data.sources[0]["sha256"]) == 64


def test_default_profile_on_the_published_test_histogram():
    """With GTSRB-like totals the default profile is exp, ratio 100, head = the largest class."""
    totals = [3 * t for t in gtsrb_module.TEST_TOTALS]  # the training set has about 2.1x the test images
    manifest = gtsrb_module.GtsrbLT().make_manifest({"train": totals, "test": gtsrb_module.TEST_TOTALS})
    counts = manifest.counts("train")
    assert max(counts) == max(totals) - 30 and min(counts) == int(max(counts) / 100)
    assert sum(manifest.counts("test")) == 12630
    assert manifest.notes["class_by_rank"][0] == int(np.argmax(totals))


def test_gtsrb_lt_runs_end_to_end(cli, fake_files, tmp_path):
    out = tmp_path / "out"
    result = cli(
        "run", "--dataset", "gtsrb-lt", "--method", "ce", "--data-dir", fake_files, "--out", out, *SMALL,
        "--recipe", "digits", "--epochs", "1", "--batch-size", "32", "--ekld-transforms", "1", "--quiet",
    )
    assert result.code == 0, result.err
    [path] = out.rglob("result.json")
    record = json.loads(path.read_text())
    assert record["dataset"]["id"] == "gtsrb-lt--ratio=4--val_per_class=2"
    assert record["dataset"]["test_size"] == 43 * TEST_PER_CLASS and "ekld_rot15" in record["summary"]


def test_describe_needs_the_data_and_says_so(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("TAILBENCH_DATA", str(tmp_path / "nothing"))
    result = cli("describe", "gtsrb-lt")
    assert result.code == 2
    line = result.error_line()
    assert "only known from the files" in line and "tailbench data fetch gtsrb-lt" in line


def test_describe_counts_the_files_when_they_are_there(cli, monkeypatch, fake_files):
    monkeypatch.setenv("TAILBENCH_DATA", str(fake_files))
    result = cli("describe", "gtsrb-lt", "--dataset-opt", "val_per_class=2", "--dataset-opt", "ratio=4")
    assert result.code == 0, result.err
    assert "generated for this option set, not frozen" in result.out and "speed limit 20" in result.out


def test_truncated_image_is_one_line(cli, fake_gtsrb, tmp_path):
    path = fake_gtsrb / "gtsrb" / "GTSRB" / "Training" / "00007" / "00001_00001.ppm"
    path.write_bytes(path.read_bytes()[:30])
    result = cli("run", "--dataset", "gtsrb-lt", "--method", "ce", "--data-dir", fake_gtsrb, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2
    line = result.error_line()
    assert "00007/00001_00001.ppm cannot be decoded as an image" in line


def test_pinned_listing_catches_a_changed_file(cli, fake_gtsrb, tmp_path, monkeypatch):
    base, train, test, csv_path = gtsrb_module._layout(fake_gtsrb)
    listing = gtsrb_module.listing_fingerprint(base, gtsrb_module._train_samples(train), gtsrb_module._test_samples(test, csv_path), csv_path)
    monkeypatch.setattr(gtsrb_module, "LISTING_SHA256", hashlib.sha256(listing).hexdigest())
    data = get_dataset("gtsrb-lt", {"val_per_class": "2", "ratio": "4"}).load(fake_gtsrb)
    assert data.sources[0]["sha256"] == gtsrb_module.LISTING_SHA256
    path = train / "00003" / "00000_00000.ppm"
    path.write_bytes(path.read_bytes() + b"\0")
    result = cli("run", "--dataset", "gtsrb-lt", "--method", "ce", "--data-dir", fake_gtsrb, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2 and "failed its sha256 check (listing of image paths and sizes" in result.error_line()


def test_missing_test_annotation_is_one_line(cli, fake_gtsrb, tmp_path):
    (fake_gtsrb / "gtsrb" / "GT-final_test.csv").unlink()
    result = cli("run", "--dataset", "gtsrb-lt", "--method", "ce", "--data-dir", fake_gtsrb, "--out", tmp_path / "out", *SMALL)
    line = result.error_line()
    assert result.code == 2 and "missing GT-final_test.csv" in line and "tailbench data fetch gtsrb-lt" in line


def test_incomplete_training_folders_are_one_line(cli, fake_gtsrb, tmp_path):
    import shutil

    shutil.rmtree(fake_gtsrb / "gtsrb" / "GTSRB" / "Training" / "00042")
    result = cli("run", "--dataset", "gtsrb-lt", "--method", "ce", "--data-dir", fake_gtsrb, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2 and "holds 42 class folders, not 43" in result.error_line()


def test_nothing_there_is_one_line(cli, tmp_path):
    result = cli("run", "--dataset", "gtsrb-lt", "--method", "ce", "--data-dir", tmp_path / "empty", "--out", tmp_path / "out")
    line = result.error_line()
    assert result.code == 2 and "gtsrb-lt: missing GTSRB/Training/" in line and "GT-final_test.csv" in line
