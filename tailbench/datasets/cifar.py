"""CIFAR-10-LT and CIFAR-100-LT exactly as LDAM-DRW (Cao et al., NeurIPS 2019) builds them.

Class i keeps n_i = int(n_max * (1 / ratio) ** (i / (C - 1))) training images (exp profile) or,
for the step profile, n_max for the first C / 2 classes and int(n_max / ratio) for the rest;
class 0 is the head. Which images: LDAM-DRW seeds numpy's legacy global generator with 0 and, class
by class in label order, shuffles the positions of that class's images and keeps the first n_i.
A shuffle only depends on the array's length and the generator state, so the same draws applied
to the ordinals 0..n_c - 1 name exactly the same images: the manifests reproduce LDAM-DRW's
training sets image for image (12,406 images for CIFAR-10-LT and 10,847 for CIFAR-100-LT at
ratio 100; 20,431 / 19,573 at ratio 10).

Validation: the next val_per_class images of the same shuffle, i.e. a seeded uniform draw from
the training images the long-tailed set left unused, capped by how many there are: the head
class keeps all its images for training (5,000 of 5,000 on CIFAR-10), so it has no validation
images, and so do the first C / 2 classes of the step profile; CIFAR-100's class 1 has 12 unused
images at ratio 10. Train counts match the literature exactly; the validation balanced accuracy
averages the classes that have validation images. Test: the official balanced 10,000 images.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np

from tailbench.datasets.base import DatasetBuilder, SourceArrays, check_positive_int
from tailbench.datasets.longtail import long_tailed_manifest
from tailbench.datasets.manifest import Manifest
from tailbench.datasets.profiles import exp_sizes, step_sizes
from tailbench.datasets.registry import register_dataset
from tailbench.datasets.sources import is_data_file, missing_files_error, read_bytes, verify
from tailbench.errors import UserError
from tailbench.families import NATURAL_FAMILIES

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR100_CLASSES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]
RATIOS = (10, 50, 100)
PROFILES = {"exp": exp_sizes, "step": step_sizes}


def ldam_manifest(
    dataset_id: str,
    class_names: list[str],
    source_totals: dict[str, list[int]],
    sizes: list[int],
    *,
    seed: int,
    val_per_class: int,
    train_source: str = "train",
    test_source: str = "test",
) -> Manifest:
    """Class c (the head first) trains on the first sizes[c] images of LDAM-DRW's per-class shuffle
    (np.random.seed(seed), then one np.random.shuffle per class in label order); validation takes
    the next min(val_per_class, unused) images of the same shuffle; the test file is used whole."""
    manifest = long_tailed_manifest(
        dataset_id, class_names, source_totals, sizes, seed=seed, val_per_class=0,
        train_source=train_source, test_source=test_source, permute_classes=False, random_images=False,
    )
    legacy = np.random.RandomState(seed)  # numpy's legacy stream, as np.random.seed(0) in LDAM-DRW
    train, val, capped = [], [], {}
    for c, total in enumerate(source_totals[train_source]):
        order = np.arange(total)
        legacy.shuffle(order)
        n = len(manifest.splits["train"][c])
        v = min(val_per_class, total - n)
        if v < val_per_class:
            capped[class_names[c]] = v
        train.append(sorted(int(i) for i in order[:n]))
        val.append(sorted(int(i) for i in order[n : n + v]))
    manifest.splits["train"], manifest.splits["val"] = train, val
    manifest.notes.update({
        "image_choice": "LDAM-DRW: numpy RandomState(split_seed).shuffle of each class's positions, "
        "class by class in label order; train = the first n_c, val = the next val_per_class",
        "val_per_class": val_per_class,
        "val_capped": capped,
    })
    return manifest


def torchvision_md5s(tv) -> list:
    """torchvision's own md5 list for a CIFAR dataset class: (file, md5) in the order it reads them."""
    return [*tv.train_list, *tv.test_list, [tv.meta["filename"], tv.meta["md5"]]]


class CifarLT(DatasetBuilder):
    """Shared by CIFAR-10-LT and CIFAR-100-LT; subclasses name torchvision's class and the sizes."""

    torchvision_class: ClassVar[str]
    # torchvision's archive, its folder and the files in it, named here so that a missing file is
    # said before torch loads (tests/test_datasets_cifar.py checks them against torchvision's lists).
    archive: ClassVar[str]
    batch_folder: ClassVar[str]
    batch_files: ClassVar[tuple[str, ...]]
    class_names: ClassVar[list[str]]
    per_class_train: ClassVar[int]
    per_class_test: ClassVar[int]
    recipe = "cifar-lt"
    invariance_families: tuple[str, ...] = NATURAL_FAMILIES
    licence = "no licence stated; free to use, cite Krizhevsky (2009)"
    citation = "Cao et al., Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss, NeurIPS 2019"
    frozen_option_sets: ClassVar[list[dict[str, object]]] = [
        {}, {"ratio": 50}, {"ratio": 10}, {"profile": "step"}, {"profile": "step", "ratio": 10},
    ]

    def pinned_checksums(self) -> frozenset[str] | None:
        return frozenset(md5 for _, md5 in torchvision_md5s(self._torchvision()))

    def check_options(self) -> None:
        check_positive_int(self.name, self.opts, "n_max", "val_per_class")
        if self.opts["profile"] not in PROFILES:
            raise UserError(f"dataset option profile={self.opts['profile']!r} for {self.name!r} must be exp or step")
        if self.opts["ratio"] not in RATIOS:
            raise UserError(f"dataset option ratio={self.opts['ratio']!r} for {self.name!r} must be 10, 50 or 100 (LDAM-DRW's imbalance ratios)")
        if not isinstance(self.opts["split_seed"], int) or self.opts["split_seed"] < 0:
            raise UserError(f"dataset option split_seed={self.opts['split_seed']!r} must be a non-negative integer")

    def official_totals(self) -> dict[str, list[int]]:
        return {"train": [self.per_class_train] * self.num_classes, "test": [self.per_class_test] * self.num_classes}

    def make_manifest(self, source_totals: dict[str, list[int]]) -> Manifest:
        sizes = PROFILES[str(self.opts["profile"])](self.num_classes, int(self.opts["n_max"]), float(self.opts["ratio"]))  # type: ignore[arg-type]
        return ldam_manifest(
            self.dataset_id, self.class_names, source_totals, sizes,
            seed=int(self.opts["split_seed"]), val_per_class=int(self.opts["val_per_class"]),
        )

    # -- files -------------------------------------------------------------------------------
    def _torchvision(self):
        import torchvision.datasets

        return getattr(torchvision.datasets, self.torchvision_class)

    def _how_to_get(self, data_dir: Path) -> str:
        return (
            f"run `tailbench data fetch {self.name}` while online (torchvision downloads {self.archive}), "
            f"or extract {self.archive} from www.cs.toronto.edu/~kriz/cifar.html into {data_dir}"
        )

    def check_files(self, data_dir: Path) -> None:
        folder = data_dir / self.batch_folder
        missing = [name for name in self.batch_files if not is_data_file(folder / name)]
        if missing:
            raise missing_files_error(self.name, missing, folder, self._how_to_get(data_dir))

    def read_source(self, data_dir: Path) -> SourceArrays:
        self.check_files(data_dir)
        tv = self._torchvision()
        folder = data_dir / self.batch_folder
        # torchvision's own md5 lists: the files it would check, in the order it reads them.
        expected = torchvision_md5s(tv)
        files = [verify(folder / name, read_bytes(folder / name), md5, "md5") for name, md5 in expected]
        if any(entry.get("unverified") for entry in files):  # not trusted: never unpickled by torchvision
            return self._read_unverified(folder, files)
        splits = {}
        for source, train in (("train", True), ("test", False)):
            try:
                dataset = tv(root=str(data_dir), train=train, download=False)
            except RuntimeError as error:  # torchvision's md5 check, should the files change under us
                raise UserError(f"{folder}: torchvision refused the CIFAR files ({error}); delete the folder and run `tailbench data fetch {self.name}`") from None
            except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError, IndexError) as error:
                raise UserError(f"{folder}: the CIFAR batches pass their md5 check but cannot be decoded ({type(error).__name__}: {error}); they are not the official files") from None
            splits[source] = dataset
        names = list(splits["train"].classes)
        if names != self.class_names:
            raise UserError(f"{folder / tv.meta['filename']}: its class names differ from {self.name}'s; the files are not the official ones")
        images, labels = {}, {}
        for source, dataset in splits.items():
            data = np.asarray(dataset.data)
            if data.dtype != np.uint8 or data.shape[1:] != (32, 32, 3):
                raise UserError(f"{folder}: the {source} images have shape {data.shape[1:]} and dtype {data.dtype}, not 32x32x3 uint8")
            images[source] = np.ascontiguousarray(data.transpose(0, 3, 1, 2))  # [N, 3, 32, 32]
            labels[source] = np.asarray(dataset.targets, dtype=np.int64)
        return SourceArrays(images, labels, files)

    def _read_unverified(self, folder: Path, files: list[dict]) -> SourceArrays:
        """The batches of a copy that failed its md5, read by cifar_batches (arrays only, no code)."""
        from tailbench.datasets.cifar_batches import read_batches, read_names

        tv = self._torchvision()
        labels_key = "labels" if tv.meta["key"] == "label_names" else "fine_labels"
        if read_names(folder / tv.meta["filename"], tv.meta["key"]) != self.class_names:
            raise UserError(f"{folder / tv.meta['filename']}: its class names differ from {self.name}'s; the files are not the official ones")
        images, labels = {}, {}
        for source, batches in (("train", tv.train_list), ("test", tv.test_list)):
            images[source], labels[source] = read_batches(folder, [name for name, _ in batches], labels_key)
        return SourceArrays(images, labels, files)

    def fetch(self, data_dir: Path) -> str:
        tv = self._torchvision()
        folder = data_dir / tv.base_folder
        names = [name for name, _ in [*tv.train_list, *tv.test_list]] + [tv.meta["filename"]]
        if all(is_data_file(folder / name) for name in names):
            self.read_source(data_dir)  # verify what is there
            return f"already present in {folder}"
        try:
            tv(root=str(data_dir), train=True, download=True)
        except Exception as error:  # any network or disk failure ends in the same advice
            raise UserError(f"{self.name}: could not download {tv.filename} ({type(error).__name__}); {self._how_to_get(data_dir)}") from None
        self.read_source(data_dir)
        return f"downloaded with torchvision into {folder}"


@register_dataset("cifar10-lt")
class Cifar10LT(CifarLT):
    num_classes = 10
    torchvision_class = "CIFAR10"
    archive, batch_folder = "cifar-10-python.tar.gz", "cifar-10-batches-py"
    batch_files = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
    class_names = CIFAR10_CLASSES
    per_class_train, per_class_test = 5000, 1000
    options = {"profile": "exp", "ratio": 100, "n_max": 5000, "val_per_class": 50, "split_seed": 0}
    source = "CIFAR-10 (Krizhevsky 2009): 50,000 train + 10,000 test, 32x32 RGB, 10 classes, via torchvision"
    summary = "CIFAR-10-LT (LDAM-DRW): exp or step profile, ratio 10/50/100; 12,406 train images at 100"


@register_dataset("cifar100-lt")
class Cifar100LT(CifarLT):
    num_classes = 100
    torchvision_class = "CIFAR100"
    archive, batch_folder, batch_files = "cifar-100-python.tar.gz", "cifar-100-python", ("train", "test", "meta")
    class_names = CIFAR100_CLASSES
    per_class_train, per_class_test = 500, 100
    options = {"profile": "exp", "ratio": 100, "n_max": 500, "val_per_class": 20, "split_seed": 0}
    source = "CIFAR-100 (Krizhevsky 2009): 50,000 train + 10,000 test, 32x32 RGB, 100 fine classes, via torchvision"
    summary = "CIFAR-100-LT (LDAM-DRW): exp or step profile, ratio 10/50/100; 10,847 train images at 100"
