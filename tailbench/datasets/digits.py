"""scikit-learn's bundled 8x8 digits made long-tailed: a dataset small enough for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tailbench.datasets.base import DatasetBuilder, SourceArrays, check_positive_int
from tailbench.datasets.longtail import long_tailed_manifest
from tailbench.datasets.manifest import Manifest
from tailbench.datasets.profiles import zipf_sizes
from tailbench.datasets.registry import register_dataset
from tailbench.datasets.sources import verify

# sha256 of the decoded images (float64, 0..16) followed by the labels (int64), as scikit-learn ships them.
SHA256 = "f6d9e39f37dc45d327f6db33428ee58970ccceabb2535a5c179de35886b70443"


@register_dataset("digits-lt")
class DigitsLT(DatasetBuilder):
    num_classes = 10
    options = {"n_max": 120, "alpha": 1.5, "n_min": 5, "val_per_class": 10, "test_per_class": 40, "split_seed": 0}
    recipe = "digits"
    invariance_families = ("rot", "bg")
    source = "scikit-learn load_digits (UCI optical digits): 1,797 images, 8x8, 16 grey levels, bundled"
    licence = "CC BY 4.0 (UCI)"
    citation = "Alpaydin & Kaynak, UCI Optical Recognition of Handwritten Digits, 1998"
    summary = "8x8 digits, Zipf(1.5) class sizes 120..5, balanced 40-image test classes (for fast tests)"

    def pinned_checksums(self) -> frozenset[str] | None:
        return frozenset({SHA256})

    def check_options(self) -> None:
        check_positive_int(self.name, self.opts, "n_max", "n_min", "val_per_class", "test_per_class")

    def official_totals(self) -> dict[str, list[int]]:
        return {"all": [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]}

    def make_manifest(self, source_totals: dict[str, list[int]]) -> Manifest:
        sizes = zipf_sizes(self.num_classes, int(self.opts["n_max"]), float(self.opts["alpha"]), int(self.opts["n_min"]))
        seed = int(self.opts["split_seed"])
        return long_tailed_manifest(
            self.dataset_id, [str(d) for d in range(10)], source_totals, sizes,
            seed=seed, val_per_class=int(self.opts["val_per_class"]),
            test_per_class=int(self.opts["test_per_class"]), train_source="all", test_source="all",
            nuisance=None if self.nuisance is None else {"family": self.nuisance, "seed": 10_000 + seed},
        )

    def read_source(self, data_dir: Path) -> SourceArrays:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        data = np.ascontiguousarray(bunch.images, dtype=np.float64).tobytes() + bunch.target.astype(np.int64).tobytes()
        provenance = verify(Path("sklearn.datasets.load_digits"), data, SHA256, "sha256", "decoded arrays")
        images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
        return SourceArrays({"all": images}, {"all": bunch.target.astype(np.int64)}, [provenance])



@register_dataset("digits-rot-lt")
class DigitsRotLT(DigitsLT):
    nuisance = "rot"
    invariance_families = ("rot",)
    summary = "digits-lt with every image rotated once by U(-180, 180) degrees (for fast tests)"
