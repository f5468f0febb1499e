"""TinyImageNet-LT: Tiny ImageNet (200 classes, 64x64 RGB) made long-tailed like CIFAR-LT.

The GIT paper (Zhou et al., ICLR 2022) built TinyImageNet-LT "similarly to CIFAR-LT" and published
no split; tailbench's is LDAM-DRW's construction applied to Tiny ImageNet:
- Classes are the 200 wnids in sorted order; class i keeps int(500 * (1 / 100) ** (i / 199))
  training images (500 ... 5, 21,549 in all), chosen by LDAM-DRW's seeded per-class shuffle of
  the images in sorted file-name order (train/<wnid>/images/<wnid>_<k>.JPEG, lexicographic).
- Validation: the next val_per_class (20) images of the same shuffle, i.e. a seeded draw from the
  unused training images, capped by how many are left (the head class has none left; class 1
  keeps 488 of 500, so it has 12).
- Test: the official labelled validation set (val/images, labels from val/val_annotations.txt:
  file, wnid and four box numbers, tab separated), 50 images per class. The official test split
  has no labels and is not used.

Files and checksums: the official archive tiny-imagenet-200.zip is verified against its md5
(90528d7c..., as every loader lists it) and read directly, without extracting it. An extracted
tiny-imagenet-200/ folder is accepted too; its files have no published digests, so loading checks
the structure (the 200 wnids, every image decodes to 64x64, the annotation file parses, the
per-class totals match the manifest) and records a sha256 over the sorted (relative path, size)
listing of the images plus wnids.txt and val_annotations.txt, enforced once pinned in
LISTING_SHA256.
"""

from __future__ import annotations

import io
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from tailbench.datasets.base import DatasetBuilder, SourceArrays, check_positive_int
from tailbench.datasets.cifar import ldam_manifest
from tailbench.datasets.manifest import Manifest
from tailbench.datasets.profiles import exp_sizes
from tailbench.datasets.registry import register_dataset
from tailbench.datasets.sources import is_data_file, is_data_folder, list_folder, missing_files_error, undecodable, unpinned, unreadable, verify
from tailbench.errors import UserError
from tailbench.families import NATURAL_FAMILIES

FOLDER = "tiny-imagenet-200"
ZIP_NAME = "tiny-imagenet-200.zip"
ZIP_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
LISTING_SHA256: str | None = None  # the extracted folder's listing fingerprint, once pinned
SIZE = 64
# The 200 wnids of wnids.txt, sorted: class i is WNIDS[i].
WNIDS = """
n01443537 n01629819 n01641577 n01644900 n01698640 n01742172 n01768244 n01770393 n01774384 n01774750
n01784675 n01855672 n01882714 n01910747 n01917289 n01944390 n01945685 n01950731 n01983481 n01984695
n02002724 n02056570 n02058221 n02074367 n02085620 n02094433 n02099601 n02099712 n02106662 n02113799
n02123045 n02123394 n02124075 n02125311 n02129165 n02132136 n02165456 n02190166 n02206856 n02226429
n02231487 n02233338 n02236044 n02268443 n02279972 n02281406 n02321529 n02364673 n02395406 n02403003
n02410509 n02415577 n02423022 n02437312 n02480495 n02481823 n02486410 n02504458 n02509815 n02666196
n02669723 n02699494 n02730930 n02769748 n02788148 n02791270 n02793495 n02795169 n02802426 n02808440
n02814533 n02814860 n02815834 n02823428 n02837789 n02841315 n02843684 n02883205 n02892201 n02906734
n02909870 n02917067 n02927161 n02948072 n02950826 n02963159 n02977058 n02988304 n02999410 n03014705
n03026506 n03042490 n03085013 n03089624 n03100240 n03126707 n03160309 n03179701 n03201208 n03250847
n03255030 n03355925 n03388043 n03393912 n03400231 n03404251 n03424325 n03444034 n03447447 n03544143
n03584254 n03599486 n03617480 n03637318 n03649909 n03662601 n03670208 n03706229 n03733131 n03763968
n03770439 n03796401 n03804744 n03814639 n03837869 n03838899 n03854065 n03891332 n03902125 n03930313
n03937543 n03970156 n03976657 n03977966 n03980874 n03983396 n03992509 n04008634 n04023962 n04067472
n04070727 n04074963 n04099969 n04118538 n04133789 n04146614 n04149813 n04179913 n04251144 n04254777
n04259630 n04265275 n04275548 n04285008 n04311004 n04328186 n04356056 n04366367 n04371430 n04376876
n04398044 n04399382 n04417672 n04456115 n04465501 n04486054 n04487081 n04501370 n04507155 n04532106
n04532670 n04540053 n04560804 n04562935 n04596742 n04597913 n06596364 n07579787 n07583066 n07614500
n07615774 n07695742 n07711569 n07715103 n07720875 n07734744 n07747607 n07749582 n07753592 n07768694
n07871810 n07873807 n07875152 n07920052 n09193705 n09246464 n09256479 n09332890 n09428293 n12267677
""".split()
HOW_TO_GET = (
    f"run `tailbench data fetch tinyimagenet-lt` while online, or download {ZIP_NAME} "
    "(cs231n.stanford.edu) and put it, or the tiny-imagenet-200/ folder it unzips to, in {data_dir}"
)


class _Zip:
    """The official archive, md5-verified, read in place."""

    def __init__(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise unreadable(path, error) from None
        self.provenance = verify(path, raw, ZIP_MD5, "md5")
        self.path = path
        try:
            self.archive = zipfile.ZipFile(io.BytesIO(raw))
            self.names = set(self.archive.namelist())
        except zipfile.BadZipFile as error:
            raise UserError(f"{path} is not a readable zip archive ({error}); delete it and fetch it again") from None
        self.folders: dict[str, list[str]] = {}
        for name in sorted(self.names):
            folder, _, base = name.rpartition("/")
            if base:
                self.folders.setdefault(folder, []).append(base)

    def where(self, name: str) -> str:
        return f"{self.path}:{FOLDER}/{name}"

    def exists(self, name: str) -> bool:
        return f"{FOLDER}/{name}" in self.names

    def list(self, folder: str) -> list[str]:
        return self.folders.get(f"{FOLDER}/{folder}", [])

    def read(self, name: str) -> bytes:
        try:
            return self.archive.read(f"{FOLDER}/{name}")
        except (KeyError, zipfile.BadZipFile, OSError, EOFError) as error:
            raise UserError(f"{self.where(name)} cannot be read ({type(error).__name__}: {error}); delete {self.path} and fetch it again") from None


class _Folder:
    """The extracted tiny-imagenet-200/ folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.provenance: dict[str, str] = {}

    def where(self, name: str) -> str:
        return str(self.root / name)

    def exists(self, name: str) -> bool:
        return is_data_file(self.root / name)

    def list(self, folder: str) -> list[str]:
        path = self.root / folder
        return sorted(entry.name for entry in list_folder(path) if entry.is_file()) if is_data_folder(path) else []

    def read(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except OSError as error:
            raise unreadable(self.root / name, error) from None

    def size(self, name: str) -> int:
        try:
            return (self.root / name).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise missing_files_error("tinyimagenet-lt", [name], self.root, HOW_TO_GET.format(data_dir=self.root.parent)) from None
        except OSError as error:
            raise unreadable(self.root / name, error) from None


def _decode(read: Callable[[str], bytes], where: Callable[[str], str], name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(read(name))) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise undecodable(where(name), error) from None
    if array.shape != (SIZE, SIZE, 3):
        raise UserError(f"{where(name)} is {array.shape[1]}x{array.shape[0]}, not {SIZE}x{SIZE}; the files are not the official ones")
    return array


def _decode_all(source, names: list[str]) -> np.ndarray:
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(lambda n: _decode(source.read, source.where, n), names))
    if not arrays:
        return np.zeros((0, 3, SIZE, SIZE), np.uint8)
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))


def _where(data_dir: Path) -> Path | None:
    """The archive if it is there, else the extracted folder, else None."""
    for folder in (data_dir, data_dir / FOLDER):
        if is_data_file(folder / ZIP_NAME):
            return folder / ZIP_NAME
    return data_dir / FOLDER if is_data_folder(data_dir / FOLDER) else None


def _open(data_dir: Path):
    """The archive (md5-checked) or the extracted folder, else None."""
    where = _where(data_dir)
    if where is None:
        return None
    source = _Zip(where) if where.name == ZIP_NAME else _Folder(where)
    source.data_dir = data_dir
    return source


@register_dataset("tinyimagenet-lt")
class TinyImageNetLT(DatasetBuilder):
    num_classes = 200
    options = {"ratio": 100, "n_max": 500, "val_per_class": 20, "split_seed": 0}
    recipe = "tinyimagenet-lt"
    invariance_families: tuple[str, ...] = NATURAL_FAMILIES
    source = "Tiny ImageNet (Stanford CS231n, 2015): 100,000 train + 10,000 labelled val images, 64x64 RGB, 200 classes"
    licence = "ImageNet terms of access: non-commercial research and education only"
    citation = "Le & Yang, Tiny ImageNet Visual Recognition Challenge, 2015; split: LDAM-DRW's construction (Cao et al. 2019)"
    summary = "Tiny ImageNet-LT: exp profile 500..5 (ratio 100), LDAM-DRW image choice; test = official val"
    frozen_option_sets: ClassVar[list[dict[str, object]]] = [{}]

    def pinned_checksums(self) -> frozenset[str] | None:
        return frozenset({ZIP_MD5} | ({LISTING_SHA256} if LISTING_SHA256 else set()))

    def check_options(self) -> None:
        check_positive_int(self.name, self.opts, "ratio", "n_max", "val_per_class")
        if not isinstance(self.opts["split_seed"], int) or self.opts["split_seed"] < 0:
            raise UserError(f"dataset option split_seed={self.opts['split_seed']!r} must be a non-negative integer")

    def official_totals(self) -> dict[str, list[int]]:
        return {"train": [500] * self.num_classes, "val": [50] * self.num_classes}

    def make_manifest(self, source_totals: dict[str, list[int]]) -> Manifest:
        sizes = exp_sizes(self.num_classes, int(self.opts["n_max"]), float(self.opts["ratio"]))  # type: ignore[arg-type]
        if min(sizes) < 1:
            raise UserError(f"{self.dataset_id}: the profile gives some classes no training image; raise n_max or lower ratio")
        return ldam_manifest(
            self.dataset_id, WNIDS, source_totals, sizes, seed=int(self.opts["split_seed"]),
            val_per_class=int(self.opts["val_per_class"]), test_source="val",
        )

    def check_files(self, data_dir: Path) -> None:
        """The archive or the extracted folder is there (neither is read: that is `load`'s work)."""
        if _where(data_dir) is None:
            raise missing_files_error(self.name, [ZIP_NAME, f"or the {FOLDER}/ folder"], data_dir, HOW_TO_GET.format(data_dir=data_dir))

    def read_source(self, data_dir: Path) -> SourceArrays:
        self.check_files(data_dir)
        source = _open(data_dir)
        for name in ("wnids.txt", "val/val_annotations.txt"):
            if not source.exists(name):
                raise missing_files_error(self.name, [f"{FOLDER}/{name}"], data_dir, HOW_TO_GET.format(data_dir=data_dir))
        wnids = source.read("wnids.txt").decode("ascii", "replace").split()
        if sorted(wnids) != WNIDS:
            raise UserError(f"{source.where('wnids.txt')} does not list Tiny ImageNet's 200 wnids; the files are not the official ones")
        train_names, train_labels = [], []
        for label, wnid in enumerate(WNIDS):
            names = [n for n in source.list(f"train/{wnid}/images") if n.lower().endswith((".jpeg", ".jpg"))]
            if not names:
                raise missing_files_error(self.name, [f"{FOLDER}/train/{wnid}/images/*.JPEG"], data_dir, HOW_TO_GET.format(data_dir=data_dir))
            train_names += [f"train/{wnid}/images/{n}" for n in names]
            train_labels += [label] * len(names)
        val_names, val_labels = self._val_annotations(source)
        if isinstance(source, _Folder):
            listing = "".join(sorted(f"{n}\t{source.size(n)}\n" for n in train_names + val_names)).encode()
            listing += source.read("wnids.txt") + source.read("val/val_annotations.txt")
            if LISTING_SHA256 is None:
                provenance = unpinned(source.root, listing)
            else:
                provenance = verify(source.root, listing, LISTING_SHA256, "sha256", "listing of image paths and sizes plus wnids.txt and val_annotations.txt")
        else:
            provenance = source.provenance
        images = {"train": _decode_all(source, train_names), "val": _decode_all(source, val_names)}
        labels = {"train": np.asarray(train_labels, np.int64), "val": np.asarray(val_labels, np.int64)}
        return SourceArrays(images, labels, [provenance])

    @staticmethod
    def _val_annotations(source) -> tuple[list[str], list[int]]:
        """(image name, label) per line of val/val_annotations.txt: file, wnid, x0, y0, x1, y1."""
        index = {wnid: i for i, wnid in enumerate(WNIDS)}
        names, labels = [], []
        text = source.read("val/val_annotations.txt").decode("utf-8", "replace")
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in index:
                raise UserError(f"{source.where('val/val_annotations.txt')} line {number} is not 'file<TAB>wnid<TAB>box'; the file is corrupt: delete it and fetch it again")
            names.append(f"val/images/{fields[0]}")
            labels.append(index[fields[1]])
        missing = [n for n in names if not source.exists(n)]
        if missing:
            raise missing_files_error("tinyimagenet-lt", [f"{FOLDER}/{missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")], source.where(""), HOW_TO_GET.format(data_dir=source.data_dir))
        return names, labels

    def fetch(self, data_dir: Path) -> str:
        if _open(data_dir) is not None:
            self.read_source(data_dir)
            return f"already present in {data_dir}"
        try:
            from torchvision.datasets.utils import download_url

            download_url(URL, str(data_dir), ZIP_NAME, ZIP_MD5)
        except Exception as error:  # any network or disk failure ends in the same advice
            raise UserError(f"tinyimagenet-lt: could not download {ZIP_NAME} ({type(error).__name__}); {HOW_TO_GET.format(data_dir=data_dir)}") from None
        return f"downloaded {data_dir / ZIP_NAME} (md5 verified; read in place, no need to unzip)"
