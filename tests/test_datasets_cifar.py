"""CIFAR-10-LT / CIFAR-100-LT: the real loader (through torchvision) on tiny fake files in the
official pickled-batch format, the LDAM-DRW construction, frozen manifests, and the natural-image
nuisance families and recipes the CIFAR benchmarks use."""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import struct

import numpy as np
import pytest
import torch

from tailbench.datasets import get_dataset
from tailbench.datasets.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES, Cifar10LT, Cifar100LT

TRAIN_PER_CLASS, TEST_PER_CLASS = 12, 4
SMALL = ["--dataset-opt", "n_max=10", "--dataset-opt", "ratio=10", "--dataset-opt", "val_per_class=1"]


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str` opcodes, as the official CIFAR batches (pickled by Python 2)
    hold their keys and pixel buffers: read back with encoding='bytes' the keys are b'data',
    b'labels'; with encoding='latin1' (torchvision) they are 'data', 'labels'."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def py2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def fake_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows of 3072 bytes (R plane, G plane, B plane); the first red pixel is the label."""
    rows = rng.integers(0, 256, (labels.size, 3072), dtype=np.uint8)
    rows[:, 0] = labels
    return rows


def write_fake_cifar(data_dir, kind: int, seed: int = 0, test_per_class: int = TEST_PER_CLASS) -> dict[str, str]:
    """The official files of cifar-10-batches-py / cifar-100-python with shuffled class order;
    returns their md5s."""
    rng = np.random.default_rng(seed)
    classes = CIFAR10_CLASSES if kind == 10 else CIFAR100_CLASSES
    folder = data_dir / ("cifar-10-batches-py" if kind == 10 else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    train_labels = rng.permutation(np.repeat(np.arange(kind), TRAIN_PER_CLASS))
    test_labels = rng.permutation(np.repeat(np.arange(kind), test_per_class))
    files: dict[str, bytes] = {}
    if kind == 10:
        for b, part in enumerate(np.array_split(train_labels, 5), 1):
            files[f"data_batch_{b}"] = py2_pickle({
                b"batch_label": f"training batch {b} of 5".encode(), b"labels": part.tolist(),
                b"data": fake_images(part, rng), b"filenames": [f"img_{i}.png".encode() for i in range(part.size)],
            })
        files["test_batch"] = py2_pickle({
            b"batch_label": b"testing batch 1 of 1", b"labels": test_labels.tolist(),
            b"data": fake_images(test_labels, rng), b"filenames": [b"x.png"] * test_labels.size,
        })
        files["batches.meta"] = py2_pickle({
            b"num_cases_per_batch": 10000, b"label_names": [c.encode() for c in classes], b"num_vis": 3072,
        })
    else:
        for name, labels in (("train", train_labels), ("test", test_labels)):
            files[name] = py2_pickle({
                b"filenames": [b"x.png"] * labels.size, b"batch_label": f"{name}ing batch 1 of 1".encode(),
                b"fine_labels": labels.tolist(), b"coarse_labels": (labels // 5).tolist(), b"data": fake_images(labels, rng),
            })
        files["meta"] = py2_pickle({
            b"fine_label_names": [c.encode() for c in classes], b"coarse_label_names": [f"super{i}".encode() for i in range(20)],
        })
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    return {name: hashlib.md5(raw).hexdigest() for name, raw in files.items()}


def patch_md5s(monkeypatch, tv_class, digests: dict[str, str]) -> None:
    """Point torchvision's md5 lists (which tailbench checks and torchvision re-checks) at the fakes."""
    monkeypatch.setattr(tv_class, "train_list", [[n, digests[n]] for n, _ in tv_class.train_list])
    monkeypatch.setattr(tv_class, "test_list", [[n, digests[n]] for n, _ in tv_class.test_list])
    monkeypatch.setattr(tv_class, "meta", {**tv_class.meta, "md5": digests[tv_class.meta["filename"]]})


@pytest.fixture
def fake_cifar10(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    data_dir = tmp_path / "data"
    patch_md5s(monkeypatch, CIFAR10, write_fake_cifar(data_dir, 10))
    return data_dir


@pytest.fixture
def fake_cifar100(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR100

    data_dir = tmp_path / "data"
    patch_md5s(monkeypatch, CIFAR100, write_fake_cifar(data_dir, 100, test_per_class=2))
    return data_dir


def test_fake_batches_have_the_official_byte_keys(fake_cifar10):
    with open(fake_cifar10 / "cifar-10-batches-py" / "data_batch_1", "rb") as handle:
        entry = pickle.load(handle, encoding="bytes")
    assert {b"data", b"labels", b"batch_label", b"filenames"} <= set(entry)
    assert entry[b"data"].dtype == np.uint8 and entry[b"data"].shape[1] == 3072


# -- the construction, without data -------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "options", "total", "head", "tail"),
    [
        (Cifar10LT, {}, 12406, 5000, 50),
        (Cifar10LT, {"ratio": 50}, 13996, 5000, 100),
        (Cifar10LT, {"ratio": 10}, 20431, 5000, 500),
        (Cifar10LT, {"profile": "step"}, 25250, 5000, 50),
        (Cifar100LT, {}, 10847, 500, 5),
        (Cifar100LT, {"ratio": 10}, 19573, 500, 50),
        (Cifar100LT, {"profile": "step", "ratio": 10}, 27500, 500, 50),
    ],
)
def test_frozen_manifests_have_the_literature_counts(cls, options, total, head, tail):
    manifest, frozen = cls(**options).manifest()
    train, val, test = manifest.counts("train"), manifest.counts("val"), manifest.counts("test")
    assert frozen and sum(train) == total and train[0] == head and train[-1] == tail
    assert train == sorted(train, reverse=True)
    assert sum(test) == 10000 and len(set(test)) == 1
    for c in range(cls.num_classes):  # validation images are unused training images
        assert not set(manifest.splits["train"][c]) & set(manifest.splits["val"][c])
        assert len(set(manifest.splits["train"][c])) == train[c]
        assert val[c] == min(cls.options["val_per_class"], cls.per_class_train - train[c])


def test_manifests_choose_ldam_drws_images_exactly():
    """LDAM-DRW's IMBALANCECIFAR10.gen_imbalanced_data, run literally on a file with interleaved
    classes, keeps exactly the images the manifest names."""
    rng = np.random.default_rng(3)
    targets = rng.permutation(np.repeat(np.arange(10), 5000))
    sizes = [int(5000 * 0.01 ** (i / 9)) for i in range(10)]
    np.random.seed(0)
    expected = []
    for the_class, the_img_num in zip(np.unique(targets), sizes):
        idx = np.where(targets == the_class)[0]
        np.random.shuffle(idx)
        expected.append(idx[:the_img_num])
    expected = np.sort(np.concatenate(expected))
    manifest, _ = Cifar10LT().manifest()
    positions, labels = manifest.resolve("train", targets)
    assert np.array_equal(np.sort(positions), expected)
    assert np.array_equal(targets[positions], labels)


def test_options_are_checked_in_one_line(cli, tmp_path):
    result = cli("run", "--dataset", "cifar10-lt", "--method", "ce", "--dataset-opt", "ratio=20", "--out", tmp_path)
    assert result.code == 2 and "ratio=20" in result.error_line() and "10, 50 or 100" in result.error_line()
    result = cli("describe", "cifar100-lt", "--dataset-opt", "profile=linear")
    assert result.code == 2 and "exp or step" in result.error_line()


def test_describe_cifar10_lt_without_data(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("TAILBENCH_DATA", str(tmp_path / "nothing"))
    result = cli("describe", "cifar10-lt")
    assert result.code == 0
    rows = [line for line in result.out.splitlines() if line.startswith("│")]
    train = [int(row.split("│")[3]) for row in rows[:10]]
    assert train == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert "12,406" in result.out and "10,000" in result.out and "frozen, committed" in result.out
    result = cli("describe", "cifar100-lt", "--dataset-opt", "ratio=10")
    assert result.code == 0 and "19,573" in result.out and "frozen, committed" in result.out


# -- the loader on fake files ------------------------------------------------------------------
def test_loader_keeps_labels_with_images(fake_cifar10):
    data = get_dataset("cifar10-lt", {"n_max": "10", "ratio": "10", "val_per_class": "1"}).load(fake_cifar10)
    assert data.train.x.dtype == torch.uint8 and data.train.x.shape[1:] == (3, 32, 32)
    assert data.train_counts.tolist() == [10, 7, 5, 4, 3, 2, 2, 1, 1, 1]
    assert torch.bincount(data.val.y, minlength=10).tolist() == [1] * 10
    assert torch.bincount(data.test.y).tolist() == [TEST_PER_CLASS] * 10
    for split in (data.train, data.val, data.test):
        assert torch.equal(split.x[:, 0, 0, 0].long(), split.y)
    assert all("md5" in f for f in data.sources) and len(data.sources) == 7
    assert data.invariance_families == ("light", "rot15", "shift", "scale")


def test_cifar10_lt_runs_end_to_end(cli, fake_cifar10, tmp_path):
    out = tmp_path / "out"
    result = cli(
        "run", "--dataset", "cifar10-lt", "--method", "ce", "--data-dir", fake_cifar10, "--out", out, *SMALL,
        "--recipe", "digits", "--epochs", "1", "--batch-size", "16", "--ekld-transforms", "2", "--quiet",
    )
    assert result.code == 0, result.err
    [path] = out.rglob("result.json")
    assert path.parts[-4].startswith("cifar10-lt--n_max=10--ratio=10--val_per_class=1@digits")
    record = json.loads(path.read_text())
    assert record["dataset"]["train_size"] == 36 and record["dataset"]["test_size"] == 40
    assert record["dataset"]["id"] == "cifar10-lt--n_max=10--ratio=10--val_per_class=1"
    assert {"ekld_light", "ekld_rot15", "ekld_shift", "ekld_scale"} <= set(record["summary"])
    assert not record["dataset"]["manifest_frozen"]


def test_cifar100_lt_runs_end_to_end(cli, fake_cifar100, tmp_path, monkeypatch):
    # One eKLD family keeps this 100-class CPU test short; the CIFAR-10 run covers all four.
    monkeypatch.setattr(Cifar100LT, "invariance_families", ("light",))
    out = tmp_path / "out"
    result = cli(
        "run", "--dataset", "cifar100-lt", "--method", "ce", "--data-dir", fake_cifar100, "--out", out, *SMALL,
        "--recipe", "digits", "--epochs", "1", "--batch-size", "64", "--ekld-transforms", "1", "--quiet",
    )
    assert result.code == 0, result.err
    record = json.loads(next(out.rglob("result.json")).read_text())
    assert record["dataset"]["num_classes"] == 100 and record["dataset"]["test_size"] == 200


def test_corrupt_batch_is_one_line(cli, fake_cifar10, tmp_path):
    path = fake_cifar10 / "cifar-10-batches-py" / "data_batch_3"
    raw = bytearray(path.read_bytes())
    raw[500] ^= 1
    path.write_bytes(bytes(raw))
    result = cli("run", "--dataset", "cifar10-lt", "--method", "ce", "--data-dir", fake_cifar10, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2
    assert "data_batch_3 failed its md5 check" in result.error_line()


def test_truncated_meta_is_one_line(cli, fake_cifar100, tmp_path):
    path = fake_cifar100 / "cifar-100-python" / "meta"
    path.write_bytes(path.read_bytes()[:40])
    result = cli("run", "--dataset", "cifar100-lt", "--method", "ce", "--data-dir", fake_cifar100, "--out", tmp_path / "out", *SMALL)
    assert result.code == 2 and "meta failed its md5 check" in result.error_line()


def test_missing_files_name_them_and_the_way_to_get_them(cli, tmp_path):
    result = cli("run", "--dataset", "cifar10-lt", "--method", "ce", "--data-dir", tmp_path / "empty", "--out", tmp_path / "out")
    line = result.error_line()
    assert result.code == 2 and "missing data_batch_1" in line and "test_batch" in line
    assert "tailbench data fetch cifar10-lt" in line and "cifar-10-batches-py" in line


@pytest.mark.parametrize("name", ["cifar10-lt", "cifar100-lt"])
def test_the_files_checked_before_torch_loads_are_torchvisions(name):
    """check_files names the archive, folder and files without torchvision; they must be its own."""
    from tailbench.datasets import get_dataset
    from tailbench.datasets.cifar import torchvision_md5s

    builder = get_dataset(name)
    tv = builder._torchvision()
    assert (builder.archive, builder.batch_folder) == (tv.filename, tv.base_folder)
    assert builder.batch_files == tuple(file for file, _ in torchvision_md5s(tv))


def test_fetch_offline_is_one_line(cli, tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    def offline(self):
        raise OSError("network is unreachable")

    monkeypatch.setattr(CIFAR10, "download", offline)
    result = cli("data", "fetch", "cifar10-lt", "--data-dir", tmp_path)
    assert result.code == 2 and "could not download cifar-10-python.tar.gz" in result.error_line()


# -- natural-image nuisance families and recipes ------------------------------------------------
def photos(n=8, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


@pytest.mark.parametrize(("name", "identity"), [("light", [1.0, 1.0]), ("rot15", 0.0), ("shift", [0.0, 0.0]), ("scale", 1.0)])
def test_natural_families_are_the_identity_at_their_neutral_parameter(name, identity):
    from tailbench.nuisance import get_family

    x = photos()
    params = torch.tensor([identity] * len(x))
    assert torch.allclose(get_family(name).apply(x, params), x, atol=1e-5)


def test_natural_family_ranges_are_as_documented():
    from tailbench.nuisance import get_family

    g = torch.Generator().manual_seed(0)
    light = get_family("light").sample(20000, g)
    assert light.min() >= 0.6 and light.max() <= 1.4
    assert get_family("rot15").sample(20000, g).abs().max() <= 15
    assert get_family("shift").sample(20000, g).abs().max() <= 0.125
    scale = get_family("scale").sample(20000, g)
    assert scale.min() >= 0.8 - 1e-6 and scale.max() <= 1.25 + 1e-6 and abs(float(scale.log().mean())) < 0.01


def test_shift_moves_content_by_whole_pixels_and_scale_zooms():
    from tailbench.nuisance import get_family

    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 10, 10] = 1.0
    moved = get_family("shift").apply(x, torch.tensor([[4 / 32, -2 / 32]]))
    assert torch.nonzero(moved[0, 0] > 0.5).tolist() == [[8, 14]]
    square = torch.zeros(1, 1, 32, 32)
    square[0, 0, 12:20, 12:20] = 1.0
    assert get_family("scale").apply(square, torch.tensor([1.25])).sum() > square.sum() * 1.4


def test_lighting_scales_brightness_and_contrast():
    from tailbench.nuisance import get_family

    x = photos() * 0.5 + 0.25
    darker = get_family("light").apply(x, torch.tensor([[0.6, 1.0]] * len(x)))
    assert torch.allclose(darker, x * 0.6, atol=1e-6)
    flatter = get_family("light").apply(x, torch.tensor([[1.0, 0.6]] * len(x)))
    assert flatter.std() < x.std() * 0.7


def test_new_recipes_load_and_their_models_build():
    from tailbench.recipes.augment import compose
    from tailbench.recipes.recipe import load_recipe
    from tailbench.models import create_model

    cifar = load_recipe("cifar-lt")
    assert (cifar.model, cifar.epochs, cifar.batch_size, cifar.lr, cifar.momentum, cifar.weight_decay) == ("cifar_resnet32", 200, 128, 0.1, 0.9, 2e-4)
    assert cifar.warmup_epochs == 5 and cifar.milestones == (160, 180) and cifar.factors == (0.01, 0.0001)
    assert cifar.augment == ("crop_flip",) and math.isclose(cifar.lr_factor(170), 0.01)
    k49 = load_recipe("k49")
    assert (k49.model, k49.epochs, k49.milestones, k49.augment) == ("cifar_resnet20", 50, (30, 40), ())
    assert "flip" not in " ".join(load_recipe("gtsrb-lt").augment)
    tiny = load_recipe("tinyimagenet-lt")
    x = torch.rand(2, 3, 64, 64)
    g = torch.Generator().manual_seed(0)
    assert compose(tiny.augment)(x, g).shape == x.shape
    assert create_model(tiny.model, num_classes=200, in_chans=3)(x).shape == (2, 200)
