"""Index manifests: exactly which official images form each split, identified by a sha256.

Images are named by (class, ordinal): the ordinal is the image's position among the images of
its class in the official file's order. That makes a manifest independent of how the official
files interleave classes, so it can be generated from per-class totals alone, committed, and
described with no data present; loading resolves ordinals to file positions and checks totals.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tailbench.errors import UserError

FROZEN_DIR = Path(__file__).parent / "manifests"
SPLITS = ("train", "val", "test")


@dataclass
class Manifest:
    dataset_id: str
    class_names: list[str]
    source_totals: dict[str, list[int]]  # official file -> images per class in it
    split_sources: dict[str, str]  # split -> official file its ordinals index
    splits: dict[str, list[list[int]]]  # split -> per class ordinals
    nuisance: dict[str, object] | None = None  # {"family": name, "seed": int} for a fixed draw
    notes: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "dataset_id": self.dataset_id,
            "class_names": self.class_names,
            "source_totals": self.source_totals,
            "split_sources": self.split_sources,
            "splits": self.splits,
            "nuisance": self.nuisance,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, raw: dict) -> "Manifest":
        return cls(**raw)

    def canonical_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    def counts(self, split: str) -> list[int]:
        return [len(ordinals) for ordinals in self.splits[split]]

    def resolve(self, split: str, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """File positions and labels of a split, given the labels of its official file."""
        source = self.split_sources[split]
        totals = np.bincount(labels, minlength=len(self.class_names)).tolist()
        if totals != self.source_totals[source]:
            raise UserError(
                f"{self.dataset_id}: the {source} files hold {sum(totals)} images with per-class counts "
                f"that differ from the manifest's ({sum(self.source_totals[source])} expected); "
                "the source files are not the official ones"
            )
        by_class = np.argsort(labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(totals)[:-1]])
        positions = [by_class[starts[c] + np.asarray(o, dtype=np.int64)] for c, o in enumerate(self.splits[split])]
        classes = [np.full(len(o), c, dtype=np.int64) for c, o in enumerate(self.splits[split])]
        return np.concatenate(positions), np.concatenate(classes)


def frozen_path(dataset_id: str) -> Path:
    return FROZEN_DIR / f"{dataset_id}.json.gz"


def load_frozen(dataset_id: str) -> Manifest | None:
    path = frozen_path(dataset_id)
    if not path.exists():
        return None
    with gzip.open(path, "rt") as handle:
        return Manifest.from_json(json.load(handle))


def write_frozen(manifest: Manifest) -> Path:
    """Write atomically; mtime 0 in the gzip header keeps the committed bytes reproducible."""
    path = frozen_path(manifest.dataset_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as handle:
        handle.write(json.dumps(manifest.to_json(), sort_keys=True, indent=0).encode())
    os.replace(tmp, path)
    return path


def draw_without_replacement(rng: np.random.Generator, total: int, counts: list[int]) -> list[list[int]]:
    """Consecutive disjoint blocks of one random permutation of range(total), sorted within blocks."""
    if sum(counts) > total:
        raise UserError(f"cannot draw {sum(counts)} distinct images from a class of {total}")
    order = rng.permutation(total)
    blocks, start = [], 0
    for count in counts:
        blocks.append(sorted(int(i) for i in order[start : start + count]))
        start += count
    return blocks
