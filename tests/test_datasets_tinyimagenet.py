"""TinyImageNet-LT: the real loader on tiny fake files in Tiny ImageNet's layout (wnids.txt,
words.txt, train/<wnid>/images/*.JPEG with <wnid>_boxes.txt, val/images + val_annotations.txt),
both extracted and as the official zip, which is read in place."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from tailbench.datasets import get_dataset
from tailbench.datasets import tinyimagenet as tiny
from tailbench.datasets.tinyimagenet import WNIDS

TRAIN_PER_CLASS, VAL_PER_CLASS = 4, 1
OPTS = {"n_max": "3", "ratio": "3", "val_per_class": "1"}
SMALL = [arg for k, v in OPTS.items() for arg in ("--dataset-opt", f"{k}={v}")]


def colour(c: int) -> tuple[int, int, int]:
    """A flat colour that names the class even after JPEG compression."""
    return (12 * (c % 20), 25 * (c // 20), 128)


def decode_class(x: torch.Tensor) -> torch.Tensor:
    red, green = x[:, 0].float().mean((1, 2)), x[:, 1].float().mean((1, 2))
    return (red / 12).round().long() + 20 * (green / 25).round().long()


def write_fake_tiny(root) -> None:
    """root/tiny-imagenet-200/ as the official zip unpacks; a few images are greyscale, as some
    official ones are."""
    base = root / "tiny-imagenet-200"
    (base / "val" / "images").mkdir(parents=True)
    (base / "test" / "images").mkdir(parents=True)
    shuffled = list(np.random.default_rng(0).permutation(WNIDS))
    (base / "wnids.txt").write_text("".join(f"{w}\n" for w in shuffled))  # the official file is not sorted
    (base / "words.txt").write_text("".join(f"{w}\tthing {i}\n" for i, w in enumerate(WNIDS)))
    for c, wnid in enumerate(WNIDS):
        images = base / "train" / wnid / "images"
        images.mkdir(parents=True)
        boxes = []
        for k in range(TRAIN_PER_CLASS):
            image = Image.new("RGB", (64, 64), colour(c))
            image.save(images / f"{wnid}_{k}.JPEG", format="JPEG", quality=95)
            boxes.append(f"{wnid}_{k}.JPEG\t0\t0\t63\t63\n")
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(boxes))
    Image.new("L", (64, 64), 0).save(base / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_3.JPEG", format="JPEG")
    rows = []
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(200), VAL_PER_CLASS))
    for i, c in enumerate(labels):
        Image.new("RGB", (64, 64), colour(int(c))).save(base / "val" / "images" / f"val_{i}.JPEG", format="JPEG", quality=95)
        rows.append(f"val_{i}.JPEG\t{WNIDS[c]}\t3\t5\t60\t61\n")
    (base / "val" / "val_annotations.txt").write_text("".join(rows))
    Image.new("RGB", (64, 64)).save(base / "test" / "images" / "test_0.JPEG", format="JPEG")


def zip_folder(root, destination) -> str:
    """tiny-imagenet-200.zip with the official member names; returns its md5."""
    path = destination / "tiny-imagenet-200.zip"
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted((root / "tiny-imagenet-200").rglob("*")):
            archive.write(file, file.relative_to(root).as_posix())
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def fake_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "data"
    write_fake_tiny(root)
    return root


@pytest.fixture
def fake_tiny(fake_files, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(fake_files, data_dir)
    return data_dir


def test_loader_builds_the_splits_from_the_folder(fake_files):
    data = get_dataset("tinyimagenet-lt", OPTS).load(fake_files)
    sizes = [int(3 * (1 / 3) ** (i / 199)) for i in range(200)]
    assert data.train_counts.tolist() == sizes
    assert torch.bincount(data.val.y, minlength=200).tolist() == [min(1, TRAIN_PER_CLASS - s) for s in sizes]
    assert torch.bincount(data.test.y, minlength=200).tolist() == [VAL_PER_CLASS] * 200
    assert data.train.x.dtype == torch.uint8 and data.train.x.shape[1:] == (3, 64, 64)
    for split in (data.val, data.test):
        assert torch.equal(decode_class(split.x), split.y)
    assert data.sources[0]["check"] == "listing fingerprint, not pinned"


def test_the_official_zip_is_md5_checked_and_read_in_place(fake_files, tmp_path, monkeypatch, cli):
    zipped = tmp_path / "zipped"
    monkeypatch.setattr(tiny, "ZIP_MD5", zip_folder(fake_files, zipped))
    from_zip = get_dataset("tinyimagenet-lt", OPTS).load(zipped)
    from_folder = get_dataset("tinyimagenet-lt", OPTS).load(fake_files)
    assert torch.equal(from_zip.train.x, from_folder.train.x) and torch.equal(from_zip.test.y, from_folder.test.y)
    assert from_zip.sources[0]["md5"] == tiny.ZIP_MD5
    path = zipped / "tiny-imagenet-200.zip"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    result = cli("run", "--dataset", "tinyimagenet-lt", "--method", "ce", "--data-dir", zipped, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2 and "tiny-imagenet-200.zip failed its md5 check" in result.error_line()


def test_tinyimagenet_lt_runs_end_to_end(cli, fake_files, tmp_path, monkeypatch):
    # One eKLD family keeps this CPU test short; the CIFAR-10 run covers all four.
    monkeypatch.setattr(tiny.TinyImageNetLT, "invariance_families", ("shift",))
    out = tmp_path / "out"
    result = cli(
        "run", "--dataset", "tinyimagenet-lt", "--method", "ce", "--data-dir", fake_files, "--out", out, *SMALL,
        "--recipe", "digits", "--epochs", "1", "--batch-size", "64", "--ekld-transforms", "1", "--quiet",
    )
    assert result.code == 0, result.err
    [path] = out.rglob("result.json")
    record = json.loads(path.read_text())
    assert record["dataset"]["id"] == "tinyimagenet-lt--n_max=3--ratio=3--val_per_class=1"
    assert record["dataset"]["num_classes"] == 200 and record["dataset"]["test_size"] == 200


def test_describe_without_data(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("TAILBENCH_DATA", str(tmp_path / "nothing"))
    result = cli("describe", "tinyimagenet-lt")
    assert result.code == 0
    assert "21,549" in result.out and "10,000" in result.out and "frozen, committed" in result.out
    manifest, _ = get_dataset("tinyimagenet-lt").manifest()
    counts = manifest.counts("train")
    assert counts[0] == 500 and counts[-1] == 5 and counts == sorted(counts, reverse=True)
    assert manifest.class_names == WNIDS and manifest.split_sources["test"] == "val"


def test_corrupt_jpeg_is_one_line(cli, fake_tiny, tmp_path):
    path = fake_tiny / "tiny-imagenet-200" / "val" / "images" / "val_7.JPEG"
    path.write_bytes(b"\xff\xd8\xff" + b"\0" * 20)
    result = cli("run", "--dataset", "tinyimagenet-lt", "--method", "ce", "--data-dir", fake_tiny, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2 and "val_7.JPEG" in result.error_line() and "delete it and fetch it again" in result.error_line()
    assert "object at 0x" not in result.error_line()  # PIL's repr of the in-memory file never shows


def test_a_file_that_is_not_an_image_says_so_and_names_it(cli, fake_tiny, tmp_path):
    path = fake_tiny / "tiny-imagenet-200" / "val" / "images" / "val_7.JPEG"
    path.write_bytes(b"<html>not found</html>")
    result = cli("run", "--dataset", "tinyimagenet-lt", "--method", "ce", "--data-dir", fake_tiny, "--out", tmp_path / "out", *SMALL)
    line = result.error_line()
    assert result.code == 2 and "val_7.JPEG is not an image in any format Pillow reads" in line and "object at" not in line, line


def test_bad_annotation_line_is_one_line(cli, fake_tiny, tmp_path):
    path = fake_tiny / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = "val_3.JPEG n99999999\t1\t2\t3\t4\n"
    path.write_text("".join(lines))
    result = cli("run", "--dataset", "tinyimagenet-lt", "--method", "ce", "--data-dir", fake_tiny, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2 and "val_annotations.txt line 4 is not" in result.error_line()


def test_wrong_image_size_is_one_line(cli, fake_tiny, tmp_path):
    path = fake_tiny / "tiny-imagenet-200" / "train" / WNIDS[5] / "images" / f"{WNIDS[5]}_2.JPEG"
    Image.new("RGB", (32, 32)).save(path, format="JPEG")
    result = cli("run", "--dataset", "tinyimagenet-lt", "--method", "ce", "--data-dir", fake_tiny, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2 and "is 32x32, not 64x64" in result.error_line()


def test_missing_files_are_one_line(cli, tmp_path):
    result = cli("run", "--dataset", "tinyimagenet-lt", "--method", "ce", "--data-dir", tmp_path / "empty", "--out", tmp_path / "out")
    line = result.error_line()
    assert result.code == 2 and "missing tiny-imagenet-200.zip" in line and "tailbench data fetch tinyimagenet-lt" in line
