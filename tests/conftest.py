"""Shared fixtures: the CLI run in-process, and tiny fake dataset files in official formats."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from tailbench.cli import main


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def error_line(self) -> str:
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one error line, got: {self.err!r}"
        assert "Traceback" not in self.err
        return lines[0]


@pytest.fixture(autouse=True, scope="session")
def session_cache(tmp_path_factory):
    """Every run in the tests keeps its shared assets (generators, stage-1 networks, the networks
    that plain runs offer as stage 1) in a cache of the session's own, never the user's."""
    previous = os.environ.get("TAILBENCH_CACHE")
    os.environ["TAILBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("TAILBENCH_CACHE", None)
    else:
        os.environ["TAILBENCH_CACHE"] = previous


@pytest.fixture
def cli(capsys):
    def run(*args: str) -> CliResult:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array in the IDX format (unsigned bytes, big-endian dimensions)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fake_fashion_mnist(folder: Path, train_per_class: int = 30, test_per_class: int = 8, seed: int = 0) -> dict[str, str]:
    """Four gzipped IDX files shaped like Fashion-MNIST's, with shuffled class order; returns sha256s."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)
        images = np.zeros((labels.size, 28, 28), np.uint8)
        for i, label in enumerate(labels):  # a class-specific bright bar on a zero background
            images[i, 4 + 2 * label : 8 + 2 * label, 6:22] = 200 + rng.integers(0, 55)
        for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            raw = idx_bytes(array)
            (folder / f"{prefix}-{kind}.gz").write_bytes(gzip.compress(raw))
            digests[f"{prefix}-{kind}"] = hashlib.sha256(raw).hexdigest()
    return digests


@pytest.fixture
def fake_fmnist(tmp_path, monkeypatch):
    """A data dir holding fake Fashion-MNIST files that the real loader accepts."""
    from tailbench.datasets import fashion_mnist

    data_dir = tmp_path / "data"
    digests = write_fake_fashion_mnist(data_dir / "fashion-mnist")
    monkeypatch.setattr(fashion_mnist, "SHA256", digests)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [])
    return data_dir


# Options that fit the fake files: 30 train images per class, 8 test.
FAKE_FMNIST_OPTS = ["--dataset-opt", "n_max=20", "--dataset-opt", "n_min=2", "--dataset-opt", "val_per_class=3"]


@pytest.fixture(scope="session")
def digits_record(tmp_path_factory):
    """One real run record (digits-lt, ce, seed 0, one epoch, CPU), shared read-only by the
    robustness tests: copy it before changing it."""
    out = tmp_path_factory.mktemp("digits-record")
    assert main(["run", "--dataset", "digits-lt", "--method", "ce", "--seed", "0", "--epochs", "1", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    return out / "digits-lt@epochs=1" / "ce" / "seed-0"


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh asset cache (generators, MSR sharing) per test, on one CPU thread: the tiny
    convolutions these tests train run far faster on one thread of a shared CPU."""
    from tailbench.devices import torch_threads

    monkeypatch.setenv("TAILBENCH_CACHE", str(tmp_path / "cache"))
    with torch_threads(1):
        yield tmp_path / "cache"
