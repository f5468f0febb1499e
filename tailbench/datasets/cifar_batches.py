"""CIFAR's pickled batches read without trusting them, for copies that fail their md5.

The official batches are Python pickles; torchvision unpickles them after checking their md5,
which makes them trusted. A copy whose md5 differs (used with --allow-unverified-data) is read
here instead, through an unpickler that resolves only the functions numpy itself uses to rebuild
an array, so such a file can hold data but never run code: any other global is refused in one line.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from tailbench.datasets.sources import read_bytes
from tailbench.errors import UserError

# The callables a pickled ndarray or numpy scalar names, found from numpy itself (their module
# moved between numpy 1 and 2), under every module name a pickle may give them.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_SCALAR = np.float64(0).__reduce__()[0]
_ALLOWED = {
    **{(module, "_reconstruct"): _RECONSTRUCT for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _SCALAR for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR batch never does") from None


def load_batch(path: Path) -> dict:
    """One batch as a dict with str keys (Python 2 strings read as latin-1, as torchvision does)."""
    try:
        entry = _ArraysOnly(io.BytesIO(read_bytes(path)), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise UserError(f"{path} is not a CIFAR batch that can be read safely ({type(error).__name__}: {error}); use the official files") from None
    if not isinstance(entry, dict):
        raise UserError(f"{path} holds a {type(entry).__name__}, not a CIFAR batch (a dict); use the official files")
    return entry


def read_batches(folder: Path, names: list[str], labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 3, 32, 32] and labels int64 [N] of the named batches, in order."""
    images, labels = [], []
    for name in names:
        entry = load_batch(folder / name)
        try:
            data = np.asarray(entry["data"], dtype=np.uint8)
            targets = np.asarray(entry[labels_key], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"{folder / name} lacks CIFAR's 'data' or {labels_key!r} ({type(error).__name__}: {error}); use the official files") from None
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or targets.shape != (data.shape[0],):
            raise UserError(f"{folder / name}: {data.shape} pixels for {targets.shape} labels, not N x 3072 and N; use the official files")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(targets)
    return np.concatenate(images), np.concatenate(labels)


def read_names(path: Path, key: str) -> list[str]:
    entry = load_batch(path)
    names = entry.get(key)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UserError(f"{path} holds no list of class names under {key!r}; use the official files")
    return names
