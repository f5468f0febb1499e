"""Kuzushiji-49-LT with the ROT / BG / DIL nuisances, as Zhou et al. (ICLR 2022) built it.

Built exactly like the Fashion-MNIST variants: Zipf(alpha = 2) class sizes 4800, 1200, 533, ...
(min 5; 7,822 training images over 49 classes), a seeded assignment of sizes to classes, a seeded
random choice of images within each class, val_per_class validation images per class from the
unused training images, the whole official test set as test, and ONE fixed nuisance draw per
image of every split (rotation U(-180, 180), background level randint(0, 100), or stroke width).

Kuzushiji-49 is itself imbalanced (classes from a few hundred to 6,000 images), so a uniformly
random permutation could hand the 4,800-image size to a class that has fewer images (the official
code then repeated images). Here sizes are assigned largest first along one seeded random order
of the classes, each to the first class in that order that still has room for it plus its
validation images: whenever the plain permutation fits, that is exactly the permutation, and no
image is ever repeated.

Files: the four official NumPy archives (k49-train-imgs.npz, k49-train-labels.npz,
k49-test-imgs.npz, k49-test-labels.npz; one array each, under 'arr_0'), md5-verified against the
digests that Kuzushiji loaders publish. Their per-class totals are not published, so until the
manifests are frozen, `describe` and `freeze` count them from the label files in the default
data folder.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from tailbench.datasets.base import SourceArrays
from tailbench.datasets.counted import CountedTotals
from tailbench.datasets.controlled import ZipfControlled, register_nuisance_variants
from tailbench.datasets.longtail import long_tailed_manifest
from tailbench.datasets.manifest import Manifest
from tailbench.datasets.sources import find_all, find_first, missing_files_error, read_bytes, verify
from tailbench.errors import UserError

CLASS_NAMES = [
    "a (あ)", "i (い)", "u (う)", "e (え)", "o (お)", "ka (か)", "ki (き)", "ku (く)", "ke (け)", "ko (こ)",
    "sa (さ)", "shi (し)", "su (す)", "se (せ)", "so (そ)", "ta (た)", "chi (ち)", "tsu (つ)", "te (て)", "to (と)",
    "na (な)", "ni (に)", "nu (ぬ)", "ne (ね)", "no (の)", "ha (は)", "hi (ひ)", "fu (ふ)", "he (へ)", "ho (ほ)",
    "ma (ま)", "mi (み)", "mu (む)", "me (め)", "mo (も)", "ya (や)", "yu (ゆ)", "yo (よ)", "ra (ら)", "ri (り)",
    "ru (る)", "re (れ)", "ro (ろ)", "wa (わ)", "wi (ゐ)", "we (ゑ)", "wo (を)", "n (ん)", "iteration mark (ゝ)",
]
# md5 of the official files, as published with Kuzushiji loaders (identical across independent ones).
MD5 = {
    "k49-train-imgs.npz": "7ac088b20481cf51dcd01ceaab89d821",
    "k49-train-labels.npz": "44a8e1b893f81e63ff38d73cad420f7a",
    "k49-test-imgs.npz": "d352e201d846ce6b94f42c990966f374",
    "k49-test-labels.npz": "4da6f7a62e67a832d5eb1bd85c5ee448",
}
FILES = {"train": ("k49-train-imgs.npz", "k49-train-labels.npz"), "test": ("k49-test-imgs.npz", "k49-test-labels.npz")}
BASE_URL = "http://codh.rois.ac.jp/kmnist/dataset/k49/"
HOW_TO_GET = (
    "run `tailbench data fetch k49-rot-lt` while online, or download the four k49-*.npz files "
    "from github.com/rois-codh/kmnist (Kuzushiji-49, NumPy format) into {data_dir}/k49/"
)


def _candidates(data_dir: Path, name: str) -> list[Path]:
    return [folder / name for folder in (data_dir / "k49", data_dir / "kuzushiji-49", data_dir / "kmnist", data_dir)]


def load_npz(path: Path, data: bytes) -> np.ndarray:
    """The single array an official file holds under 'arr_0'."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return archive["arr_0"]
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"{path} holds no readable 'arr_0' array ({type(error).__name__}: {error}); it is not the official file") from None


def read_labels(data_dir: Path, source: str) -> tuple[Path, bytes]:
    name = FILES[source][1]
    path = find_first(_candidates(data_dir, name))
    if path is None:
        raise missing_files_error("k49", [name], data_dir / "k49", HOW_TO_GET.format(data_dir=data_dir))
    return path, read_bytes(path)


def counted_totals(data_dir: Path) -> dict[str, list[int]]:
    """Per-class totals from the (md5-verified) label files alone."""
    totals = {}
    for source in FILES:
        path, data = read_labels(data_dir, source)
        verify(path, data, MD5[path.name], "md5")
        totals[source] = np.bincount(load_npz(path, data).astype(np.int64), minlength=len(CLASS_NAMES)).tolist()
    return totals


def fitted_ranks(totals: list[int], sizes_by_rank: list[int], reserve: int, rng: np.random.Generator, dataset_id: str) -> list[int]:
    """The rank of each class: sizes go largest first to the first class, along one seeded random
    order, that holds size + reserve images; equal to that order whenever it fits as it is."""
    order = [int(c) for c in rng.permutation(len(totals))]
    ranks = [-1] * len(totals)
    for rank in sorted(range(len(sizes_by_rank)), key=lambda r: -sizes_by_rank[r]):
        for position, c in enumerate(order):
            if totals[c] >= sizes_by_rank[rank] + reserve:
                ranks[c] = rank
                del order[position]
                break
        else:
            raise UserError(
                f"{dataset_id}: no class left with {sizes_by_rank[rank] + reserve} images for the size-{sizes_by_rank[rank]} "
                "rank and its validation images; lower n_max or val_per_class"
            )
    return ranks


class Kuzushiji49LT(CountedTotals, ZipfControlled):
    num_classes = 49
    recipe = "k49"
    source = "Kuzushiji-49 (Clanuwat et al. 2018): 232,365 train + 38,547 test images, 28x28 grey, 49 hiragana"
    licence = "CC BY-SA 4.0"
    citation = "Zhou et al., Do Deep Networks Transfer Invariances Across Classes?, ICLR 2022"
    frozen_option_sets: ClassVar[list[dict[str, object]]] = [{}]

    def pinned_checksums(self) -> frozenset[str] | None:
        return frozenset(MD5.values())

    def count_totals(self, data_dir: Path) -> dict[str, list[int]]:
        return counted_totals(data_dir)

    def where_the_totals_are(self, folder: Path) -> str:
        return (f"Kuzushiji-49's per-class totals are only known from its label files; put the four k49-*.npz files in "
                f"{folder / 'k49'} ({HOW_TO_GET.format(data_dir=folder)}) or pass --data-dir")

    def make_manifest(self, source_totals: dict[str, list[int]]) -> Manifest:
        sizes_by_rank = self.zipf_sizes()
        seed = int(self.opts["split_seed"])  # type: ignore[arg-type]
        val = int(self.opts["val_per_class"])  # type: ignore[arg-type]
        ranks = fitted_ranks(source_totals["train"], sizes_by_rank, val, np.random.default_rng(seed), self.dataset_id)
        manifest = long_tailed_manifest(
            self.dataset_id, CLASS_NAMES, source_totals, [sizes_by_rank[r] for r in ranks],
            seed=seed + 1, val_per_class=val, permute_classes=False, random_images=True,
            nuisance=self.nuisance_draw(),
        )
        manifest.notes.update({"train_sizes_by_rank": sizes_by_rank, "class_ranks": ranks, "split_seed": seed, "image_seed": seed + 1})
        return manifest

    def check_files(self, data_dir: Path) -> None:
        self._found(data_dir)

    def _found(self, data_dir: Path) -> dict[str, Path]:
        names = [name for pair in FILES.values() for name in pair]
        return find_all(self.name, names, lambda name: _candidates(data_dir, name), data_dir / "k49", HOW_TO_GET.format(data_dir=data_dir))

    def read_source(self, data_dir: Path) -> SourceArrays:
        found = self._found(data_dir)
        images, labels, files = {}, {}, []
        for source, (image_name, label_name) in FILES.items():
            arrays = []
            for name in (image_name, label_name):
                path = found[name]
                data = read_bytes(path)
                files.append(verify(path, data, MD5[name], "md5"))
                arrays.append(load_npz(path, data))
            x, y = arrays
            if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8 or y.ndim != 1 or x.shape[0] != y.shape[0]:
                raise UserError(f"{found[image_name]}: {x.shape} {x.dtype} images for {y.shape} labels; the files do not belong together")
            images[source] = x[:, None, :, :]
            labels[source] = y.astype(np.int64)
        return SourceArrays(images, labels, files)

    def fetch(self, data_dir: Path) -> str:
        names = [name for pair in FILES.values() for name in pair]
        if all(find_first(_candidates(data_dir, n)) for n in names):
            self.read_source(data_dir)
            return "already present"
        try:
            from torchvision.datasets.utils import download_url

            for name in names:
                download_url(BASE_URL + name, str(data_dir / "k49"), name, MD5[name])
        except Exception as error:  # any network or disk failure ends in the same advice
            raise UserError(f"k49: could not download Kuzushiji-49 ({type(error).__name__}); {HOW_TO_GET.format(data_dir=data_dir)}") from None
        return f"downloaded into {data_dir / 'k49'}"


register_nuisance_variants(Kuzushiji49LT, "k49", "Kuzushiji-49-LT (Zipf 2, 4800..5)")
