"""GTSRB-LT: the German Traffic Sign Recognition Benchmark made long-tailed, at 32x32.

The files are torchvision's GTSRB (the benchmark's own archives): 43 training folders of .ppm
images (GTSRB-Training_fixed.zip, 26,640 images, labelled by the sorted position of their folder)
and the official test set (12,630 images, labelled by GT-final_test.csv). Every image is resized
once, at load, to 32x32 (bilinear with antialiasing, batched per source size).

The original GTSRB-LT (Zhou et al., ICLR 2022) never published its split; this one is tailbench's:
- Head to tail follows GTSRB's own imbalance: classes are ranked by their number of official
  training images (most first, ties by class id), so rare signs stay rare.
- Sizes follow LDAM-DRW's exponential profile n_r = int(n_max * (1 / ratio) ** (r / 42)) with
  ratio 100; n_max is by default the largest value for which every class still has its train
  and validation images (so the head class keeps all but its validation images).
- Images are taken in file order: GTSRB stores 30-frame tracks of one physical sign as
  consecutive files (TTTTT_FFFFF.ppm), so the first n images are whole tracks and a tail class
  sees one or two physical signs, as a genuinely rare class would. Validation takes the LAST
  val_per_class images of each class (its last track), so validation images are never frames of
  a track used for training (tracks have 30 frames; val_per_class defaults to 30).
- Test: the official test set, unchanged.

Checksums: torchvision only knows the md5 of the zip archives, not of the extracted files, and no
per-file digests are published. Loading therefore checks the structure (43 folders, every image
decodes, the CSV's labels are in range, the per-class totals match the manifest), and computes a
sha256 over the sorted (relative path, size) listing of every image plus the bytes of
GT-final_test.csv. That fingerprint goes into every run record, and is enforced once pinned in
LISTING_SHA256 (by someone holding the official files: `python -m tailbench.datasets.gtsrb`).

The per-class totals of this 26,640-image training set are not published (the widely quoted
210 / 2220 / 2250 ... histogram is the later 39,209-image training set), so until its manifest is
frozen, `describe` and `freeze` read the totals from the files in the default data folder.
"""

from __future__ import annotations

import csv
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import numpy as np

from tailbench.datasets.base import DatasetBuilder, SourceArrays
from tailbench.datasets.counted import CountedTotals
from tailbench.datasets.longtail import long_tailed_manifest
from tailbench.datasets.manifest import Manifest
from tailbench.datasets.profiles import exp_sizes
from tailbench.datasets.registry import register_dataset
from tailbench.datasets.sources import (
    default_data_dir, is_data_file, is_data_folder, list_folder, missing_files_error, undecodable, unpinned, unreadable, verify,
)
from tailbench.errors import UserError
from tailbench.families import NATURAL_FAMILIES

NUM_CLASSES = 43
SIZE = 32
# Images per class in the official test set (GT-final_test.csv), 12,630 in all.
TEST_TOTALS = [
    60, 720, 750, 450, 660, 630, 150, 450, 450, 480, 660, 420, 690, 720, 270, 210, 150, 360, 390, 60,
    90, 90, 120, 150, 90, 480, 180, 60, 150, 90, 150, 270, 60, 210, 120, 390, 120, 60, 690, 90, 90, 60, 90,
]
CLASS_NAMES = [
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70",
    "speed limit 80", "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing",
    "no passing for trucks", "right of way at next intersection", "priority road", "yield", "stop",
    "no vehicles", "no trucks", "no entry", "general caution", "dangerous curve left",
    "dangerous curve right", "double curve", "bumpy road", "slippery road", "road narrows on the right",
    "road work", "traffic signals", "pedestrians", "children crossing", "bicycles crossing",
    "beware of ice/snow", "wild animals crossing", "end of all limits", "turn right ahead", "turn left ahead",
    "ahead only", "go straight or right", "go straight or left", "keep right", "keep left",
    "roundabout", "end of no passing", "end of no passing for trucks",
]
# sha256 of the listing of the official files (see the module docstring); None until pinned.
LISTING_SHA256: str | None = None
HOW_TO_GET = (
    "run `tailbench data fetch gtsrb-lt` while online (torchvision downloads GTSRB-Training_fixed.zip, "
    "GTSRB_Final_Test_Images.zip and GTSRB_Final_Test_GT.zip from the benchmark's archive, "
    "benchmark.ini.rub.de), or unzip those three archives into {data_dir}/gtsrb/"
)


def _layout(data_dir: Path) -> tuple[Path, Path, Path, Path]:
    """torchvision's layout: root/gtsrb/GTSRB/Training/<class>/, .../Final_Test/Images/, root/gtsrb/GT-final_test.csv."""
    base = data_dir / "gtsrb"
    return base, base / "GTSRB" / "Training", base / "GTSRB" / "Final_Test" / "Images", base / "GT-final_test.csv"


def _how_to_get(train_dir: Path) -> str:
    return HOW_TO_GET.format(data_dir=train_dir.parents[2])


def _train_samples(train_dir: Path) -> list[tuple[str, int]]:
    """(path, label) in torchvision's order: class folders sorted, files sorted within each."""
    from torchvision.datasets.folder import find_classes, make_dataset

    classes = sorted(entry.name for entry in list_folder(train_dir) if entry.is_dir())
    if len(classes) != NUM_CLASSES:
        raise UserError(f"{train_dir} holds {len(classes)} class folders, not {NUM_CLASSES}; GTSRB-Training_fixed.zip is incompletely extracted: {_how_to_get(train_dir)}")
    for name in classes:  # torchvision's walk skips folders it may not list; say so instead
        list_folder(train_dir / name)
    classes, class_to_idx = find_classes(str(train_dir))
    try:
        return make_dataset(str(train_dir), class_to_idx, extensions=(".ppm",))
    except FileNotFoundError as error:
        raise UserError(f"{train_dir}: {error}; GTSRB-Training_fixed.zip is incompletely extracted: {_how_to_get(train_dir)}") from None


def _test_samples(test_dir: Path, csv_path: Path) -> list[tuple[str, int]]:
    """(path, label) in GT-final_test.csv's order, read as torchvision reads it."""
    try:
        with open(csv_path, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter=";", skipinitialspace=True))
        samples = [(str(test_dir / row["Filename"]), int(row["ClassId"])) for row in rows]
    except (PermissionError, IsADirectoryError) as error:
        raise unreadable(csv_path, error) from None
    except (OSError, KeyError, ValueError, TypeError, csv.Error) as error:
        raise UserError(f"{csv_path} cannot be read as GTSRB's test annotation ({type(error).__name__}: {error}); delete it and fetch it again") from None
    if not samples:
        raise UserError(f"{csv_path} lists no test image; delete it and fetch it again")
    return samples


def _labels(samples: list[tuple[str, int]], where: Path) -> np.ndarray:
    labels = np.asarray([label for _, label in samples], dtype=np.int64)
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise UserError(f"{where}: class ids run from {labels.min()} to {labels.max()}, not 0..{NUM_CLASSES - 1}; the files are not the official ones")
    return labels


def listing_fingerprint(base: Path, train: list[tuple[str, int]], test: list[tuple[str, int]], csv_path: Path) -> bytes:
    """The bytes hashed for LISTING_SHA256: sorted 'relative path<TAB>size' lines, then the test CSV."""
    lines = []
    for path, _ in train + test:
        try:
            size = os.path.getsize(path)
        except (FileNotFoundError, NotADirectoryError):
            raise missing_files_error("gtsrb-lt", [os.path.relpath(path, base)], base, HOW_TO_GET.format(data_dir=base.parent)) from None
        except OSError as error:
            raise unreadable(Path(path), error) from None
        lines.append(f"{Path(path).relative_to(base).as_posix()}\t{size}\n")
    try:
        return "".join(sorted(lines)).encode() + csv_path.read_bytes()
    except OSError as error:
        raise unreadable(csv_path, error) from None


def decode_rgb(path: str) -> np.ndarray:
    """One image file as uint8 [H, W, 3]; a file that does not decode is one line."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (PermissionError, IsADirectoryError, FileNotFoundError) as error:
        raise unreadable(Path(path), error) from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise undecodable(path, error) from None


def decode_all(paths: list[str]) -> list[np.ndarray]:
    """Decode in threads (PIL releases the GIL while decoding)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(decode_rgb, paths))


def resize_all(images: list[np.ndarray], size: int) -> np.ndarray:
    """uint8 [N, 3, size, size]: bilinear with antialiasing, one interpolate call per source size."""
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), 3, size, size), dtype=np.uint8)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(image.shape[:2], []).append(i)
    for (h, w), members in by_shape.items():
        batch = torch.from_numpy(np.stack([images[i] for i in members])).permute(0, 3, 1, 2).float()
        if (h, w) != (size, size):
            batch = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[members] = batch.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def counted_totals(data_dir: Path) -> dict[str, list[int]]:
    """Per-class totals from the files (listing and CSV only, nothing decoded)."""
    base, train_dir, test_dir, csv_path = _layout(data_dir)
    if not is_data_folder(train_dir) or not is_data_file(csv_path):
        raise missing_files_error("gtsrb-lt", ["GTSRB/Training/", "GT-final_test.csv"], base, HOW_TO_GET.format(data_dir=data_dir))
    train = _labels(_train_samples(train_dir), train_dir)
    test = _labels(_test_samples(test_dir, csv_path), csv_path)
    return {"train": np.bincount(train, minlength=NUM_CLASSES).tolist(), "test": np.bincount(test, minlength=NUM_CLASSES).tolist()}


def auto_n_max(sorted_totals: list[int], ratio: float, val_per_class: int) -> int:
    """The largest n_max for which rank r's int(n_max * ratio ** (-r / (C - 1))) plus the
    validation images fit in the r-th largest class, for every r."""
    c = len(sorted_totals)
    best = min(int((total - val_per_class) / (1.0 / ratio) ** (r / (c - 1))) for r, total in enumerate(sorted_totals))
    while best > 0 and any(size + val_per_class > total for size, total in zip(exp_sizes(c, best, ratio), sorted_totals)):
        best -= 1  # floating-point safety; int() already rounds down
    if best < 1:
        raise UserError(f"gtsrb-lt: no class-size profile fits the training files with val_per_class={val_per_class}; lower it")
    return best


@register_dataset("gtsrb-lt")
class GtsrbLT(CountedTotals, DatasetBuilder):
    num_classes = NUM_CLASSES
    options = {"ratio": 100, "n_max": 0, "val_per_class": 30}
    recipe = "gtsrb-lt"
    invariance_families: tuple[str, ...] = NATURAL_FAMILIES
    source = "GTSRB (Stallkamp et al. 2011/2012) via torchvision: 26,640 train + 12,630 test images of 43 signs, resized to 32x32"
    licence = "none stated by the benchmark (free for research, cite Stallkamp et al. 2012); check before redistributing"
    citation = "Stallkamp, Schlipsing, Salmen, Igel, Man vs. computer: benchmarking machine learning algorithms for traffic sign recognition, Neural Networks 2012"
    summary = "GTSRB at 32x32, classes ranked by official size, exp profile ratio 100, whole tracks; val = last track"
    frozen_option_sets: ClassVar[list[dict[str, object]]] = [{}]

    def pinned_checksums(self) -> frozenset[str] | None:
        return None if LISTING_SHA256 is None else frozenset({LISTING_SHA256})

    def check_options(self) -> None:
        ratio, n_max, val = self.opts["ratio"], self.opts["n_max"], self.opts["val_per_class"]
        if not isinstance(ratio, int) or ratio < 1:
            raise UserError(f"dataset option ratio={ratio!r} for {self.name!r} must be an integer >= 1")
        if not isinstance(n_max, int) or n_max < 0:
            raise UserError(f"dataset option n_max={n_max!r} for {self.name!r} must be 0 (the largest that fits) or a positive integer")
        if not isinstance(val, int) or val < 1:
            raise UserError(f"dataset option val_per_class={val!r} for {self.name!r} must be a positive integer")

    def count_totals(self, data_dir: Path) -> dict[str, list[int]]:
        return counted_totals(data_dir)

    def where_the_totals_are(self, folder: Path) -> str:
        return (f"the per-class totals of GTSRB's 26,640-image training set are only known from the files; put them under "
                f"{folder / 'gtsrb'} ({HOW_TO_GET.format(data_dir=folder)}) or pass --data-dir")

    def make_manifest(self, source_totals: dict[str, list[int]]) -> Manifest:
        totals = source_totals["train"]
        val = int(self.opts["val_per_class"])
        ratio = float(self.opts["ratio"])  # type: ignore[arg-type]
        by_size = sorted(range(NUM_CLASSES), key=lambda c: (-totals[c], c))  # rank -> class
        n_max = int(self.opts["n_max"]) or auto_n_max([totals[c] for c in by_size], ratio, val)  # type: ignore[arg-type]
        sizes_by_rank = exp_sizes(NUM_CLASSES, n_max, ratio)
        sizes = [0] * NUM_CLASSES
        for rank, c in enumerate(by_size):
            sizes[c] = sizes_by_rank[rank]
        manifest = long_tailed_manifest(
            self.dataset_id, CLASS_NAMES, source_totals, sizes, seed=0, val_per_class=val,
            permute_classes=False, random_images=False,
        )
        # Validation: the last val images of each class (its last track), not the next ones.
        manifest.splits["val"] = [list(range(total - val, total)) for total in totals]
        manifest.notes = {
            "train_sizes_by_rank": sizes_by_rank,
            "class_by_rank": by_size,
            "n_max": n_max,
            "ratio": self.opts["ratio"],
            "image_choice": "train = the first n_c images of each class in file order (whole tracks); "
            "val = the last val_per_class images (the last track); test = the official test set",
        }
        return manifest

    def check_files(self, data_dir: Path) -> None:
        base, train_dir, test_dir, csv_path = _layout(data_dir)
        missing = [name for name, path in (("GTSRB/Training/", train_dir), ("GTSRB/Final_Test/Images/", test_dir)) if not is_data_folder(path)]
        missing += [] if is_data_file(csv_path) else ["GT-final_test.csv"]
        if missing:
            raise missing_files_error(self.name, missing, base, HOW_TO_GET.format(data_dir=data_dir))

    def read_source(self, data_dir: Path) -> SourceArrays:
        self.check_files(data_dir)
        base, train_dir, test_dir, csv_path = _layout(data_dir)
        samples = {"train": _train_samples(train_dir), "test": _test_samples(test_dir, csv_path)}
        listing = listing_fingerprint(base, samples["train"], samples["test"], csv_path)
        if LISTING_SHA256 is None:
            provenance = unpinned(base, listing)
        else:
            provenance = verify(base, listing, LISTING_SHA256, "sha256", "listing of image paths and sizes plus GT-final_test.csv")
        images, labels = {}, {}
        for source, pairs in samples.items():
            labels[source] = _labels(pairs, train_dir if source == "train" else csv_path)
            images[source] = resize_all(decode_all([path for path, _ in pairs]), SIZE)
        return SourceArrays(images, labels, [provenance])

    def fetch(self, data_dir: Path) -> str:
        base, train_dir, test_dir, csv_path = _layout(data_dir)
        if is_data_folder(train_dir) and is_data_folder(test_dir) and is_data_file(csv_path):
            return f"already present in {base}"
        try:
            from torchvision.datasets import GTSRB

            GTSRB(root=str(data_dir), split="train", download=True)
            GTSRB(root=str(data_dir), split="test", download=True)
        except Exception as error:  # any network or disk failure ends in the same advice
            raise UserError(f"gtsrb-lt: could not download GTSRB ({type(error).__name__}); {HOW_TO_GET.format(data_dir=data_dir)}") from None
        return f"downloaded with torchvision into {base}"


if __name__ == "__main__":  # print the listing fingerprint of the files in the default data folder, to pin it
    _base, _train_dir, _test_dir, _csv = _layout(default_data_dir())
    _listing = listing_fingerprint(_base, _train_samples(_train_dir), _test_samples(_test_dir, _csv), _csv)
    print(hashlib.sha256(_listing).hexdigest())
