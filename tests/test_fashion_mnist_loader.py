"""The real Fashion-MNIST loader on tiny fake files in the official IDX format."""

import gzip

import torch

from tailbench.datasets import get_dataset

from conftest import FAKE_FMNIST_OPTS

OPTS = {"n_max": "20", "n_min": "2", "val_per_class": "3"}


def test_loader_builds_the_long_tailed_splits(fake_fmnist):
    data = get_dataset("fmnist-lt", OPTS).load(fake_fmnist)
    assert sorted(data.train_counts.tolist(), reverse=True) == [20, 5, 2, 2, 2, 2, 2, 2, 2, 2]
    assert torch.bincount(data.val.y).tolist() == [3] * 10
    assert torch.bincount(data.test.y).tolist() == [8] * 10
    assert data.train.x.dtype == torch.uint8 and data.train.x.shape[1:] == (1, 28, 28)
    assert not data.manifest_frozen and len(data.manifest_sha256) == 64
    assert data.test_clean is None


def test_labels_follow_the_images(fake_fmnist):
    """The fake images carry their class as a bar position: the gather must keep pairs together."""
    data = get_dataset("fmnist-lt", OPTS).load(fake_fmnist)
    for split in (data.train, data.val, data.test):
        bar_row = split.x[:, 0, :, 14].float().argmax(1)
        assert torch.equal((bar_row - 4) // 2, split.y)


def test_train_val_and_test_images_do_not_overlap(fake_fmnist):
    from tailbench.datasets.fashion_mnist import FashionMNISTPlainLT

    manifest, _ = FashionMNISTPlainLT(n_max=20, n_min=2, val_per_class=3).manifest({"train": [30] * 10, "test": [8] * 10})
    for c in range(10):
        assert not set(manifest.splits["train"][c]) & set(manifest.splits["val"][c])


def test_nuisance_variants_apply_one_fixed_draw(fake_fmnist):
    plain = get_dataset("fmnist-lt", OPTS).load(fake_fmnist)
    rotated = get_dataset("fmnist-rot-lt", OPTS).load(fake_fmnist)
    again = get_dataset("fmnist-rot-lt", OPTS).load(fake_fmnist)
    assert torch.equal(rotated.train.x, again.train.x)
    assert not torch.equal(rotated.train.x, plain.train.x)
    assert torch.equal(rotated.test_clean, plain.test.x) and torch.equal(rotated.train_clean, plain.train.x)
    background = get_dataset("fmnist-bg-lt", OPTS).load(fake_fmnist)
    assert (background.train.x == 0).float().mean() < (plain.train.x == 0).float().mean()


def test_corrupt_file_is_one_line(cli, fake_fmnist, tmp_path):
    path = fake_fmnist / "fashion-mnist" / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[20] ^= 1
    path.write_bytes(gzip.compress(bytes(raw)))
    result = cli("run", "--dataset", "fmnist-lt", "--method", "ce", "--data-dir", fake_fmnist, "--out", tmp_path / "out", *FAKE_FMNIST_OPTS)
    assert result.code == 2
    assert "train-labels-idx1-ubyte.gz failed its sha256 check" in result.error_line()


def test_truncated_file_is_one_line(cli, fake_fmnist, tmp_path):
    path = fake_fmnist / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    result = cli("run", "--dataset", "fmnist-lt", "--method", "ce", "--data-dir", fake_fmnist, "--out", tmp_path / "out", *FAKE_FMNIST_OPTS)
    assert result.code == 2
    assert "t10k-images-idx3-ubyte.gz cannot be decompressed" in result.error_line()


def test_frozen_manifests_are_up_to_date():
    from tailbench.datasets.freeze import main

    assert main(["--check"]) == 0


def test_describe_works_without_data(cli):
    result = cli("describe", "fmnist-rot-lt")
    assert result.code == 0
    assert "7,437" in result.out and "4800" in result.out and "frozen, committed" in result.out
