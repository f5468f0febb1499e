"""The one in-memory form of every dataset, and the builder every dataset module subclasses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from tailbench.datasets.manifest import SPLITS, Manifest, load_frozen
from tailbench.errors import UserError

if TYPE_CHECKING:  # torch loads with the data (`load`), not with the registry: the CLI checks names without it
    import torch


@dataclass
class Split:
    x: torch.Tensor  # uint8 [N, C, H, W]
    y: torch.Tensor  # int64 [N]

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), self.y.to(device))

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class SourceArrays:
    """The official files, decoded: images uint8 [N, C, H, W] and labels per official file."""

    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    files: list[dict[str, str]]  # provenance: path and verified checksum of each file read


@dataclass
class LongTailedData:
    dataset_id: str
    name: str
    options: dict[str, object]
    class_names: list[str]
    train: Split
    val: Split
    test: Split
    invariance_families: tuple[str, ...]
    manifest_sha256: str
    manifest_frozen: bool
    sources: list[dict[str, str]] = field(default_factory=list)
    nuisance: str | None = None  # the family baked into every image by a fixed draw
    # The train / test images before that draw: the oracle and eKLD apply fresh draws to these.
    train_clean: torch.Tensor | None = None
    test_clean: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    @property
    def train_counts(self) -> torch.Tensor:
        import torch

        return torch.bincount(self.train.y, minlength=self.num_classes)

    def to(self, device: torch.device | str) -> "LongTailedData":
        def move(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.to(device)

        return replace(
            self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device),
            train_clean=move(self.train_clean), test_clean=move(self.test_clean),
        )


class DatasetBuilder:
    """Subclasses set the class attributes, ``official_totals`` and ``read_source``; the rest is shared.

    ``options`` holds the defaults of the dataset's options (their types parse CLI strings).
    """

    name: ClassVar[str]
    num_classes: ClassVar[int]
    options: ClassVar[dict[str, object]] = {}
    recipe: ClassVar[str]
    nuisance: ClassVar[str | None] = None
    invariance_families: ClassVar[tuple[str, ...]] = ()
    source: ClassVar[str] = ""
    licence: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init__(self, **options: object) -> None:
        self.opts: dict[str, object] = {**self.options, **options}
        self.check_options()

    def check_options(self) -> None:
        """Raise UserError for option values the dataset cannot build."""

    @property
    def dataset_id(self) -> str:
        changed = {k: v for k, v in sorted(self.opts.items()) if v != self.options[k]}
        return self.name + "".join(f"--{k}={v}" for k, v in changed.items())

    # -- to be provided by each dataset ------------------------------------------------------
    def official_totals(self) -> dict[str, list[int]] | None:
        """Images per class in each official file, when known without reading the files."""
        return None

    def make_manifest(self, source_totals: dict[str, list[int]]) -> Manifest:
        raise NotImplementedError

    def pinned_checksums(self) -> frozenset[str] | None:
        """The checksums (sha256 or md5 hex) this tailbench pins for the dataset's source files, which
        a record's `dataset.sources` must name; None where the dataset pins none."""
        return None

    def check_files(self, data_dir: Path) -> None:
        """Raise the one-line missing-files error when the dataset's files are not under
        `data_dir`, without reading them: the CLI asks before torch loads. Datasets that cannot
        tell cheaply leave it to `load`."""

    def read_source(self, data_dir: Path) -> SourceArrays:
        raise NotImplementedError

    def fetch(self, data_dir: Path) -> str:
        """Make the official files available under data_dir; return where they are."""
        self.read_source(data_dir)
        return str(data_dir)

    # -- shared ------------------------------------------------------------------------------
    def manifest(self, source_totals: dict[str, list[int]] | None = None, data_dir: Path | None = None) -> tuple[Manifest, bool]:
        """The frozen manifest for this option set if one is committed, else a generated one
        (datasets whose class totals are only known from their files count them in data_dir)."""
        frozen = load_frozen(self.dataset_id)
        if frozen is not None:
            return frozen, True
        totals = source_totals or self.official_totals()
        if totals is None:
            raise UserError(
                f"{self.dataset_id} has no frozen manifest and its class totals are only known from the data; "
                "pass --data-dir with the official files"
            )
        return self.make_manifest(totals), False

    def _class_totals(self, source: str, labels: np.ndarray) -> list[int]:
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise UserError(
                f"{self.name}: the {source} labels run from {labels.min()} to {labels.max()}, "
                f"not 0..{self.num_classes - 1}; the source files are not the official ones"
            )
        return np.bincount(labels, minlength=self.num_classes).tolist()

    def load(self, data_dir: Path) -> LongTailedData:
        import torch

        from tailbench.nuisance import apply_fixed_draw, get_family

        arrays = self.read_source(data_dir)
        totals = {source: self._class_totals(source, labels) for source, labels in arrays.labels.items()}
        manifest, frozen = self.manifest(totals)
        splits: dict[str, Split] = {}
        for split in SPLITS:
            source = manifest.split_sources[split]
            positions, labels = manifest.resolve(split, arrays.labels[source])
            images = torch.from_numpy(np.ascontiguousarray(arrays.images[source][positions]))
            splits[split] = Split(images, torch.from_numpy(labels))
        train_clean = test_clean = None
        if manifest.nuisance is not None:
            family = get_family(str(manifest.nuisance["family"]))
            seed = int(manifest.nuisance["seed"])
            train_clean, test_clean = splits["train"].x, splits["test"].x
            for offset, split in enumerate(SPLITS):
                drawn = apply_fixed_draw(splits[split].x, family, seed + offset)
                splits[split] = Split(drawn, splits[split].y)
        return LongTailedData(
            dataset_id=self.dataset_id,
            name=self.name,
            options=dict(self.opts),
            class_names=list(manifest.class_names),
            train=splits["train"],
            val=splits["val"],
            test=splits["test"],
            invariance_families=tuple(self.invariance_families),
            manifest_sha256=manifest.sha256,
            manifest_frozen=frozen,
            sources=arrays.files,
            nuisance=self.nuisance,
            train_clean=train_clean,
            test_clean=test_clean,
        )


def check_positive_int(dataset: str, options: dict[str, object], *keys: str) -> None:
    for key in keys:
        value = options[key]
        if not isinstance(value, int) or value < 1:
            raise UserError(f"dataset option {key}={value!r} for {dataset!r} must be a positive integer")
