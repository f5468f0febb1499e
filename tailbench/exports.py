"""`tailbench export DATASET --format npz|imagefolder --out DIR`: a benchmark's frozen splits as
files any training code can read, exactly as the harness sees them (nuisance draws baked in).

npz: `train.npz`, `val.npz`, `test.npz`, each with `x` (uint8 [N, C, H, W]) and `y` (int64 [N]).
imagefolder: `<split>/<class index, 3 digits>_<class name>/<position in the split, 6 digits>.png`,
torchvision's ImageFolder layout (the index prefix makes its sorted folder order the class order).
Both write `MANIFEST.json`: the benchmark's identity (dataset id, manifest sha256, class names,
training counts, invariance families, nuisance), the layout, and the sha256 of every file, so an
export can be checked and cited. The folder is written beside its target under a hidden name and
renamed into place when complete, so a killed export leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np

from tailbench.datasets.base import LongTailedData
from tailbench.errors import UserError

FORMATS = ("npz", "imagefolder")
SPLITS = ("train", "val", "test")
MANIFEST = "MANIFEST.json"


def class_folder(index: int, name: str) -> str:
    return f"{index:03d}_" + (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "class")


def check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and is not an empty folder; choose a new folder or remove it")
    parent = out.parent if out.parent != Path("") else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise UserError(f"--out {out}: its folder {parent} is not writable; choose another --out")


def _npz_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    return buffer.getvalue()


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    channels = image.shape[0]
    pixels = image[0] if channels == 1 else np.transpose(image, (1, 2, 0))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")  # Pillow writes no timestamp
    return buffer.getvalue()


def export_files(data: LongTailedData, benchmark: str, fmt: str):
    """(relative path, bytes) of every file of the export but the manifest, in a fixed order."""
    for split in SPLITS:
        part = getattr(data, split)
        x, y = part.x.cpu().numpy(), part.y.cpu().numpy()
        if fmt == "npz":
            yield f"{split}.npz", _npz_bytes(x, y)
            continue
        for position in range(x.shape[0]):
            label = int(y[position])
            yield f"{split}/{class_folder(label, data.class_names[label])}/{position:06d}.png", _png_bytes(x[position])


def manifest(data: LongTailedData, benchmark: str, fmt: str, checksums: dict[str, str]) -> dict:
    return {
        "tailbench_export": 1, "format": fmt, "benchmark": benchmark, "dataset_id": data.dataset_id,
        "manifest_sha256": data.manifest_sha256, "num_classes": data.num_classes, "class_names": list(data.class_names),
        "image_shape": list(data.image_shape), "train_counts": data.train_counts.cpu().tolist(),
        "split_sizes": {split: len(getattr(data, split)) for split in SPLITS},
        "invariance_families": list(data.invariance_families), "nuisance": data.nuisance,
        "pixels": "uint8 [C, H, W]; the harness feeds models pixels / 255",
        "files": checksums,
    }


def export(data: LongTailedData, benchmark: str, fmt: str, out: Path) -> dict:
    """Write the export into `out` (new or empty); returns its manifest."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    check_target(out)
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        checksums = {}
        for relative, data_bytes in export_files(data, benchmark, fmt):
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data_bytes)
            checksums[relative] = hashlib.sha256(data_bytes).hexdigest()
        record = manifest(data, benchmark, fmt, checksums)
        (staging / MANIFEST).write_text(json.dumps(record, indent=1) + "\n")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record


def read_npz(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(folder / f"{split}.npz") as arrays:
        return arrays["x"], arrays["y"]


def read_imagefolder(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """An imagefolder export's split back as arrays, in split order (positions from the file names)."""
    from PIL import Image

    found = []
    for class_dir in sorted((folder / split).iterdir()):
        label = int(class_dir.name.split("_", 1)[0])
        for file in class_dir.glob("*.png"):
            with Image.open(file) as image:
                pixels = np.asarray(image)
            found.append((int(file.stem), label, pixels[None] if pixels.ndim == 2 else np.transpose(pixels, (2, 0, 1))))
    found.sort(key=lambda item: item[0])
    return np.stack([f[2] for f in found]), np.array([f[1] for f in found], dtype=np.int64)
