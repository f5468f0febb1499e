"""Fashion-MNIST made long-tailed as Zhou et al. (ICLR 2022) made Kuzushiji-49.

Zipf(alpha = 2) class sizes 4800, 1200, 533, ... (min 5) assigned to classes by a seeded
permutation; the ROT / BG / DIL variants give every train, val and test image one fixed nuisance
draw. Validation images are unused Fashion-MNIST train images; the test split is the official
balanced 10,000-image test set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tailbench.datasets.base import SourceArrays
from tailbench.datasets.controlled import ZipfControlled, register_nuisance_variants
from tailbench.datasets.longtail import long_tailed_manifest
from tailbench.datasets.manifest import Manifest
from tailbench.datasets.registry import register_dataset
from tailbench.datasets.sources import data_dir_was_chosen, decode_idx, find_all, find_first, read_bytes, verify
from tailbench.errors import UserError

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# sha256 of the decompressed IDX files (Debian recompressed the .gz files, so their own digests differ).
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"), "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# Where Debian's dataset-fashion-mnist puts them; looked in only when no --data-dir (or
# $TAILBENCH_DATA) is given, so that a chosen data folder is the only place looked in.
SYSTEM_DIRS = [Path("/usr/share/datasets/fashion-mnist")]
HOW_TO_GET = (
    "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), run "
    "`tailbench data fetch fmnist-lt` while online, or put the four IDX files from "
    "github.com/zalandoresearch/fashion-mnist in {data_dir}/fashion-mnist/"
)


def _candidates(data_dir: Path, name: str) -> list[Path]:
    system = [] if data_dir_was_chosen(data_dir) else SYSTEM_DIRS
    folders = [data_dir / "fashion-mnist", data_dir / "FashionMNIST" / "raw", data_dir, *system]
    return [folder / file for folder in folders for file in (name + ".gz", name)]


class FashionMNISTLT(ZipfControlled):
    num_classes = 10
    recipe = "fmnist"
    invariance_families: tuple[str, ...] = ("rot", "bg", "dil")
    source = "Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 60,000 train + 10,000 test, 28x28 grey"
    licence = "MIT"
    citation = "Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR 2022"
    summary = "Fashion-MNIST, Zipf(2) class sizes 4800..48, no nuisance (eKLD probes rot, bg, dil)"

    def official_totals(self) -> dict[str, list[int]]:
        return {"train": [6000] * 10, "test": [1000] * 10}

    def make_manifest(self, source_totals: dict[str, list[int]]) -> Manifest:
        return long_tailed_manifest(
            self.dataset_id, CLASS_NAMES, source_totals, self.zipf_sizes(),
            seed=int(self.opts["split_seed"]), val_per_class=int(self.opts["val_per_class"]), nuisance=self.nuisance_draw(),
        )

    def pinned_checksums(self) -> frozenset[str] | None:
        return frozenset(SHA256.values())

    def check_files(self, data_dir: Path) -> None:
        self._found(data_dir)

    def _found(self, data_dir: Path) -> dict[str, Path]:
        names = [name for pair in FILES.values() for name in pair]
        return find_all(self.name, names, lambda name: _candidates(data_dir, name), data_dir, HOW_TO_GET.format(data_dir=data_dir))

    def read_source(self, data_dir: Path) -> SourceArrays:
        found = self._found(data_dir)
        images, labels, files = {}, {}, []
        for source, (image_name, label_name) in FILES.items():
            decoded = []
            for name in (image_name, label_name):
                path = found[name]
                data = read_bytes(path)
                files.append(verify(path, data, SHA256[name], "sha256", "decompressed content"))
                decoded.append(decode_idx(data, path))
            x, y = decoded
            if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
                raise UserError(f"{found[image_name]}: {x.shape[0]} images but {y.shape[0]} labels; the files do not belong together")
            images[source] = x[:, None, :, :]
            labels[source] = y.astype(np.int64)
        return SourceArrays(images, labels, files)

    def fetch(self, data_dir: Path) -> str:
        if all(find_first(_candidates(data_dir, n)) for pair in FILES.values() for n in pair):
            return "already present"
        if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
            for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "dataset-fashion-mnist"]):
                subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if all(find_first(_candidates(data_dir, n)) for pair in FILES.values() for n in pair):
                return "installed Debian's dataset-fashion-mnist"
        try:
            from torchvision.datasets import FashionMNIST

            FashionMNIST(root=str(data_dir), train=True, download=True)
            FashionMNIST(root=str(data_dir), train=False, download=True)
        except Exception as error:  # any network or disk failure ends in the same advice
            raise UserError(f"fmnist: could not download Fashion-MNIST ({type(error).__name__}); {HOW_TO_GET.format(data_dir=data_dir)}") from None
        return f"downloaded with torchvision into {data_dir / 'FashionMNIST'}"


@register_dataset("fmnist-lt")
class FashionMNISTPlainLT(FashionMNISTLT):
    pass


register_nuisance_variants(FashionMNISTLT, "fmnist", "Fashion-MNIST-LT")
