"""The data layer says what is true: a permission problem is not a corrupt file, a folder in a
file's place is not a missing file, messages name the real folders, `describe` shows the
loader's own error and takes --data-dir, --data-dir is the only place looked in, a failed
offline fetch leaves no empty folders, and --allow-unverified-data runs on a copy that fails
its checksums (recorded, kept off the leaderboard, never unpickled unsafely)."""

from __future__ import annotations

import json
import os
import pickle
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import FAKE_FMNIST_OPTS, write_fake_fashion_mnist
from tailbench.datasets import fashion_mnist, get_dataset
from tailbench.datasets import kuzushiji as k49
from tailbench.datasets.sources import allow_unverified, builtin_data_dir
from tailbench.datasets.tinyimagenet import WNIDS
from tailbench.errors import UserError
from test_datasets_cifar import patch_md5s, write_fake_cifar
from test_datasets_gtsrb import write_fake_gtsrb
from test_datasets_k49 import write_fake_k49
from unprivileged import as_user, world_folder


# -- permissions are not corruption ---------------------------------------------------------------
def _load_as_unprivileged(name, data_dir, **options):
    import torchvision.datasets.folder  # noqa: F401  (imported here: the other user may not read the interpreter's files)

    builder = get_dataset(name, options)
    kind, text = as_user(lambda: builder.read_source(data_dir) and None)
    assert kind == "error", text  # a UserError, never a traceback
    assert "permission denied" in text and "corrupt" not in text.replace("not a corrupt file", "")
    return text


def test_an_unreadable_fashion_mnist_file_is_a_permission_problem(monkeypatch):
    with world_folder() as data_dir:
        monkeypatch.setattr(fashion_mnist, "SHA256", write_fake_fashion_mnist(data_dir / "fashion-mnist"))
        locked = data_dir / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
        os.chmod(locked, 0)
        assert _load_as_unprivileged("fmnist-lt", data_dir).startswith(f"{locked}: permission denied")


def test_a_cifar_folder_that_cannot_be_searched_is_a_permission_problem():
    with world_folder() as data_dir:
        folder = data_dir / "cifar-10-batches-py"
        folder.mkdir()
        os.chmod(folder, 0)
        assert str(folder) in _load_as_unprivileged("cifar10-lt", data_dir)


def test_a_k49_folder_that_cannot_be_searched_is_a_permission_problem(monkeypatch):
    with world_folder() as data_dir:
        monkeypatch.setattr(k49, "MD5", write_fake_k49(data_dir / "k49"))
        os.chmod(data_dir / "k49", 0o600)
        assert str(data_dir / "k49") in _load_as_unprivileged("k49-rot-lt", data_dir)


def test_a_gtsrb_class_folder_that_cannot_be_listed_is_a_permission_problem():
    with world_folder() as data_dir:
        write_fake_gtsrb(data_dir)
        for path in [data_dir, *data_dir.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        locked = data_dir / "gtsrb" / "GTSRB" / "Training" / "00007"
        os.chmod(locked, 0)
        assert _load_as_unprivileged("gtsrb-lt", data_dir).startswith(f"{locked}: permission denied")


def test_a_tiny_imagenet_folder_that_cannot_be_listed_is_a_permission_problem():
    with world_folder() as data_dir:
        base = data_dir / "tiny-imagenet-200"
        (base / "val").mkdir(parents=True)
        (base / "wnids.txt").write_text("\n".join(WNIDS))
        (base / "val" / "val_annotations.txt").write_text("")
        images = base / "train" / WNIDS[0] / "images"
        images.mkdir(parents=True)
        for path in [data_dir, *data_dir.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(images, 0)
        assert _load_as_unprivileged("tinyimagenet-lt", data_dir).startswith(f"{images}: permission denied")


# -- a folder where a file should be is not "missing" ------------------------------------------
def test_a_folder_in_place_of_a_file_is_named_as_such(cli, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    monkeypatch.setattr(fashion_mnist, "SHA256", write_fake_fashion_mnist(data_dir / "fashion-mnist"))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [])
    wrong = data_dir / "fashion-mnist" / "train-labels-idx1-ubyte.gz"
    wrong.unlink()
    wrong.mkdir()
    result = cli("run", "--dataset", "fmnist-lt", "--method", "ce", "--data-dir", data_dir, "--out", tmp_path / "out", *FAKE_FMNIST_OPTS)
    line = result.error_line()
    assert result.code == 2 and f"{wrong} is a folder where a file should be" in line and "missing" not in line


def test_a_cifar_batch_that_is_a_folder_is_named_as_such(tmp_path):
    write_fake_cifar(tmp_path, 10)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch.unlink()
    batch.mkdir()
    with pytest.raises(UserError, match="data_batch_2 is a folder where a file should be"):
        get_dataset("cifar10-lt").read_source(tmp_path)


# -- messages name the real folders -----------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["fmnist-lt", "k49-rot-lt", "gtsrb-lt", "tinyimagenet-lt", "cifar10-lt"])
def test_missing_data_messages_name_the_real_folder(cli, tmp_path, monkeypatch, dataset):
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [])
    data_dir = tmp_path / "my-data"
    result = cli("run", "--dataset", dataset, "--method", "ce", "--data-dir", data_dir, "--out", tmp_path / "out")
    line = result.error_line()
    assert result.code == 2 and "DATA_DIR" not in line and str(data_dir) in line


@pytest.mark.parametrize("dataset", ["k49-rot-lt", "gtsrb-lt"])
def test_describe_without_data_names_the_real_folder(cli, tmp_path, monkeypatch, dataset):
    monkeypatch.setenv("TAILBENCH_DATA", str(tmp_path / "nothing"))
    line = cli("describe", dataset).error_line()
    assert "DATA_DIR" not in line and str(tmp_path / "nothing") in line


# -- describe shows the loader's own error, and takes --data-dir --------------------------------
def test_describe_shows_the_loaders_own_error(cli, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    monkeypatch.setattr(k49, "MD5", write_fake_k49(data_dir / "k49"))
    labels = data_dir / "k49" / "k49-test-labels.npz"
    labels.write_bytes(labels.read_bytes() + b"tampered")
    given = cli("describe", "k49-rot-lt", "--data-dir", data_dir)
    assert given.code == 2 and f"{labels} failed its md5 check" in given.error_line()
    monkeypatch.setenv("TAILBENCH_DATA", str(data_dir))  # the default data folder: the same truth
    default = cli("describe", "k49-rot-lt")
    assert default.code == 2 and f"{labels} failed its md5 check" in default.error_line()


def test_describe_counts_the_files_in_data_dir(cli, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    write_fake_gtsrb(data_dir)
    monkeypatch.setenv("TAILBENCH_DATA", str(tmp_path / "elsewhere"))
    result = cli("describe", "gtsrb-lt", "--data-dir", data_dir, "--dataset-opt", "val_per_class=2", "--dataset-opt", "ratio=4")
    assert result.code == 0, result.err
    assert "speed limit 20" in result.out and "not frozen" in result.out


# -- --data-dir is the only place looked in ---------------------------------------------------------
def test_data_dir_is_the_only_place_looked_in(tmp_path, monkeypatch):
    system = tmp_path / "system-copy"
    monkeypatch.setattr(fashion_mnist, "SHA256", write_fake_fashion_mnist(system))
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [system])
    monkeypatch.delenv("TAILBENCH_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no copy in the built-in default folder
    builder = get_dataset("fmnist-lt")
    assert builder.read_source(builtin_data_dir()).files[0]["path"].startswith(str(system))  # default: system copy
    with pytest.raises(UserError, match=f"missing .* under {tmp_path / 'chosen'}"):
        builder.read_source(tmp_path / "chosen")
    monkeypatch.setenv("TAILBENCH_DATA", str(tmp_path / "from-env"))
    with pytest.raises(UserError, match="missing"):
        builder.read_source(tmp_path / "from-env")


# -- a failed offline fetch leaves no empty folders -----------------------------------------------
@pytest.mark.parametrize("dataset", ["fmnist-lt", "k49-rot-lt", "tinyimagenet-lt", "cifar10-lt"])
def test_a_failed_offline_fetch_leaves_no_empty_folders(cli, tmp_path, monkeypatch, dataset):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [])
    monkeypatch.setattr(fashion_mnist.shutil, "which", lambda name: None)  # no apt-get
    existing = tmp_path / "existing"
    (existing / "other-dataset").mkdir(parents=True)
    for data_dir in (tmp_path / "new" / "deeper", existing):
        result = cli("data", "fetch", dataset, "--data-dir", data_dir)
        assert result.code == 2 and "could not download" in result.error_line()
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in existing.iterdir()) == ["other-dataset"]


# -- --allow-unverified-data ----------------------------------------------------------------------
def test_a_copy_that_fails_its_checksums_runs_only_knowingly_and_stays_off_the_leaderboard(cli, tmp_path, monkeypatch):
    """digits-lt stands in for any dataset (it is the one fast enough to train here): its
    pinned digest is changed, so the bundled copy fails its check as a re-encoded copy would."""
    from tailbench.datasets import digits

    official = digits.SHA256
    monkeypatch.setattr(digits, "SHA256", "0" * 64)
    args = ["run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "1", "--device", "cpu", "--quiet", "--out", tmp_path / "out"]
    refused = cli(*args)
    line = refused.error_line()
    assert refused.code == 2 and "failed its sha256 check" in line and "--allow-unverified-data" in line
    assert not (tmp_path / "out").exists()
    assert cli(*args, "--allow-unverified-data").code == 0
    run_folder = next((tmp_path / "out").rglob("result.json")).parent
    sources = json.loads((run_folder / "result.json").read_text())["dataset"]["sources"]
    assert sources == [{"path": "sklearn.datasets.load_digits", "sha256": official, "expected_sha256": "0" * 64, "unverified": True}]
    monkeypatch.setattr(digits, "SHA256", official)  # the checkout that judges the submission pins the real digest
    submitted = cli("submit", run_folder, "--results", tmp_path / "results")
    line = submitted.error_line()
    assert submitted.code == 2 and "dataset.sources[0]" in line and "--allow-unverified-data" in line
    assert not (tmp_path / "results").exists()


def test_an_unverified_cifar_copy_is_read_without_unpickling_code(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    digests = write_fake_cifar(tmp_path, 10)
    builder = get_dataset("cifar10-lt")
    with monkeypatch.context() as patched:
        patch_md5s(patched, CIFAR10, digests)
        trusted = builder.read_source(tmp_path)  # md5s match: torchvision reads them
    with allow_unverified():
        unverified = builder.read_source(tmp_path)  # official md5s: no match
    for source in ("train", "test"):
        assert np.array_equal(trusted.images[source], unverified.images[source])
        assert np.array_equal(trusted.labels[source], unverified.labels[source])
    assert all(entry["unverified"] for entry in unverified.files)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps({"data": Payload(), "labels": []}, protocol=2))
    with allow_unverified(), pytest.raises(UserError, match=r"data_batch_1 is not a CIFAR batch that can be read safely .*system"):
        builder.read_source(tmp_path)
    assert not marker.exists()


def test_an_unpinned_tiny_imagenet_folder_is_marked_unpinned(tmp_path):
    from test_datasets_tinyimagenet import write_fake_tiny

    write_fake_tiny(tmp_path)
    builder = get_dataset("tinyimagenet-lt", {"n_max": "3", "ratio": "3", "val_per_class": "1"})
    source = builder.read_source(tmp_path).files[0]
    assert source["pinned"] is False and len(source["sha256"]) == 64
