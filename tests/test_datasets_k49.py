"""Kuzushiji-49-LT (ROT / BG / DIL): the real loader on tiny fake files in the official NumPy
format (four .npz archives, one array each under 'arr_0'), and the size-to-class assignment."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from tailbench.datasets import get_dataset
from tailbench.datasets import kuzushiji as k49
from tailbench.datasets.profiles import zipf_sizes

OPTS = {"n_max": "8", "n_min": "1", "val_per_class": "2"}
SMALL = [arg for k, v in OPTS.items() for arg in ("--dataset-opt", f"{k}={v}")]
TEST_PER_CLASS = 2


def train_count(c: int) -> int:
    """Imbalanced like the real files: most classes 12..14 images, a few too small for the head."""
    return 5 if c % 10 == 0 else 12 + c % 3


def glyph(c: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n 28x28 images: a bright block whose level names the class, on a zero background."""
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 6:22, 8:20] = 50 + 4 * c
    images[:, 6:8, 8:20] = rng.integers(100, 255, (n, 2, 12))
    return images


def write_fake_k49(folder) -> dict[str, str]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for prefix, counts in (("train", [train_count(c) for c in range(49)]), ("test", [TEST_PER_CLASS] * 49)):
        labels = rng.permutation(np.repeat(np.arange(49), counts)).astype(np.uint8)
        images = np.concatenate([glyph(int(c), 1, rng) for c in labels])
        for kind, array in (("imgs", images), ("labels", labels)):
            path = folder / f"k49-{prefix}-{kind}.npz"
            np.savez(path, array)  # the official layout: one array, stored as 'arr_0'
            digests[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    return digests


@pytest.fixture
def fake_k49(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    monkeypatch.setattr(k49, "MD5", write_fake_k49(data_dir / "k49"))
    return data_dir


def test_fitted_ranks_are_the_plain_permutation_when_it_fits():
    totals = [100] * 49
    sizes = zipf_sizes(49, 60, 2.0, 1)
    ranks = k49.fitted_ranks(totals, sizes, 2, np.random.default_rng(4), "x")
    order = np.random.default_rng(4).permutation(49)
    assert [ranks[int(c)] for c in order] == list(range(49))


def test_fitted_ranks_never_overfill_a_class():
    rng = np.random.default_rng(0)
    totals = [int(t) for t in rng.integers(3, 40, 49)]
    totals[7] = 60
    sizes = zipf_sizes(49, 50, 2.0, 1)
    ranks = k49.fitted_ranks(totals, sizes, 2, np.random.default_rng(0), "x")
    assert sorted(ranks) == list(range(49)) and ranks[7] == 0
    assert all(sizes[ranks[c]] + 2 <= totals[c] for c in range(49))


def test_no_fit_is_one_line():
    from tailbench.errors import UserError

    with pytest.raises(UserError, match="no class left with 62 images"):
        k49.fitted_ranks([40] * 49, zipf_sizes(49, 60, 2.0, 1), 2, np.random.default_rng(0), "k49-rot-lt")


def test_loader_builds_the_paper_construction(fake_k49):
    data = get_dataset("k49-bg-lt", OPTS).load(fake_k49)
    sizes = zipf_sizes(49, 8, 2.0, 1)
    assert sorted(data.train_counts.tolist(), reverse=True) == sizes
    assert all(data.train_counts[c] + 2 <= train_count(c) for c in range(49))
    assert torch.bincount(data.val.y, minlength=49).tolist() == [2] * 49
    assert torch.bincount(data.test.y, minlength=49).tolist() == [TEST_PER_CLASS] * 49
    assert data.train.x.shape[1:] == (1, 28, 28) and data.nuisance == "bg"
    for split in (data.train, data.val, data.test):  # bg keeps the block, which names the class
        assert torch.equal((split.x[:, 0, 14, 14].long() - 50) // 4, split.y)
    assert (data.train.x == 0).float().mean() < (data.train_clean == 0).float().mean()
    assert all("md5" in f for f in data.sources) and len(data.sources) == 4


def test_one_fixed_rotation_per_image(fake_k49):
    rotated = get_dataset("k49-rot-lt", OPTS).load(fake_k49)
    again = get_dataset("k49-rot-lt", OPTS).load(fake_k49)
    dilated = get_dataset("k49-dil-lt", OPTS).load(fake_k49)
    assert torch.equal(rotated.train.x, again.train.x) and not torch.equal(rotated.train.x, rotated.train_clean)
    assert torch.equal(rotated.train_clean, dilated.train_clean)  # the same split under every variant
    assert rotated.invariance_families == ("rot",) and dilated.invariance_families == ("dil",)


def test_k49_rot_lt_runs_end_to_end(cli, fake_k49, tmp_path):
    out = tmp_path / "out"
    result = cli(
        "run", "--dataset", "k49-rot-lt", "--method", "ce", "--data-dir", fake_k49, "--out", out, *SMALL,
        "--recipe", "digits", "--epochs", "1", "--batch-size", "32", "--ekld-transforms", "1", "--quiet",
    )
    assert result.code == 0, result.err
    [path] = out.rglob("result.json")
    record = json.loads(path.read_text())
    assert record["dataset"]["id"] == "k49-rot-lt--n_max=8--n_min=1--val_per_class=2"
    assert record["dataset"]["nuisance"] == "rot" and "ekld_rot" in record["summary"]


def test_default_profile_is_the_papers():
    sizes = zipf_sizes(49)
    assert sum(sizes) == 7822 and sizes[:3] == [4800, 1200, 533] and min(sizes) == 5
    manifest = get_dataset("k49-rot-lt").make_manifest({"train": [6000] * 49, "test": [800] * 49})
    assert sum(manifest.counts("train")) == 7822 and manifest.nuisance == {"family": "rot", "seed": 10_000}


def test_describe_needs_the_data_and_says_so(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("TAILBENCH_DATA", str(tmp_path / "nothing"))
    result = cli("describe", "k49-dil-lt")
    assert result.code == 2
    line = result.error_line()
    assert "only known from its label files" in line and "put the four k49-*.npz files in" in line and "nothing/k49" in line


def test_describe_counts_the_label_files_when_they_are_there(cli, monkeypatch, fake_k49):
    monkeypatch.setenv("TAILBENCH_DATA", str(fake_k49))
    result = cli("describe", "k49-bg-lt", *SMALL)
    assert result.code == 0, result.err
    assert "generated for this option set, not frozen" in result.out and "iteration mark" in result.out


def test_corrupt_archive_is_one_line(cli, fake_k49, tmp_path):
    path = fake_k49 / "k49" / "k49-test-imgs.npz"
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 1
    path.write_bytes(bytes(raw))
    result = cli("run", "--dataset", "k49-rot-lt", "--method", "ce", "--data-dir", fake_k49, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2 and "k49-test-imgs.npz failed its md5 check" in result.error_line()


def test_archive_without_arr_0_is_one_line(cli, fake_k49, tmp_path, monkeypatch):
    path = fake_k49 / "k49" / "k49-train-labels.npz"
    np.savez(path, labels=np.zeros(3, np.uint8))
    monkeypatch.setitem(k49.MD5, path.name, hashlib.md5(path.read_bytes()).hexdigest())
    result = cli("run", "--dataset", "k49-bg-lt", "--method", "ce", "--data-dir", fake_k49, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2 and "k49-train-labels.npz holds no readable 'arr_0' array" in result.error_line()


def test_missing_files_are_one_line(cli, fake_k49, tmp_path):
    shutil.move(fake_k49 / "k49" / "k49-train-imgs.npz", tmp_path / "elsewhere.npz")
    result = cli("run", "--dataset", "k49-dil-lt", "--method", "ce", "--data-dir", fake_k49, "--out", tmp_path / "out", *SMALL)
    line = result.error_line()
    assert result.code == 2 and "missing k49-train-imgs.npz" in line and "rois-codh/kmnist" in line
