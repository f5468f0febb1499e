"""What the controlled long-tailed datasets (Fashion-MNIST-LT, K49-LT) share: the paper's Zipf
options, their checks, the fixed-draw seed, and the ROT / BG / DIL variants of a base builder."""

from __future__ import annotations

from tailbench.datasets.base import DatasetBuilder, check_positive_int
from tailbench.datasets.profiles import zipf_sizes
from tailbench.datasets.registry import register_dataset
from tailbench.errors import UserError

ZIPF_OPTIONS: dict[str, object] = {"n_max": 4800, "alpha": 2.0, "n_min": 5, "val_per_class": 100, "split_seed": 0}

VARIANTS = {
    "rot": "every image rotated once by U(-180, 180) degrees",
    "bg": "every image's zero background set once to a grey level 0..99",
    "dil": "every image dilated or eroded once (stroke width)",
}


class ZipfControlled(DatasetBuilder):
    """A builder with Zipf class sizes and, in its variants, one fixed nuisance draw per image."""

    options = ZIPF_OPTIONS

    def check_options(self) -> None:
        check_positive_int(self.name, self.opts, "n_max", "n_min", "val_per_class")
        if not isinstance(self.opts["alpha"], float) or self.opts["alpha"] <= 0:
            raise UserError(f"dataset option alpha={self.opts['alpha']!r} for {self.name!r} must be a positive number")
        if not isinstance(self.opts["split_seed"], int) or self.opts["split_seed"] < 0:
            raise UserError(f"dataset option split_seed={self.opts['split_seed']!r} for {self.name!r} must be a non-negative integer")

    def zipf_sizes(self) -> list[int]:
        return zipf_sizes(self.num_classes, int(self.opts["n_max"]), float(self.opts["alpha"]), int(self.opts["n_min"]))  # type: ignore[arg-type]

    def nuisance_draw(self) -> dict[str, object] | None:
        """The manifest's record of the fixed draw: its family and seed (derived from split_seed)."""
        return None if self.nuisance is None else {"family": self.nuisance, "seed": 10_000 + int(self.opts["split_seed"])}  # type: ignore[arg-type]


def register_nuisance_variants(base: type[ZipfControlled], prefix: str, label: str) -> None:
    """Register `<prefix>-rot-lt`, `<prefix>-bg-lt` and `<prefix>-dil-lt` built from `base`."""
    for family, what in VARIANTS.items():
        attributes = {"nuisance": family, "invariance_families": (family,), "summary": f"{label}, {what}"}
        variant = type(f"{base.__name__}{family.capitalize()}", (base,), attributes)
        register_dataset(f"{prefix}-{family}-lt")(variant)
