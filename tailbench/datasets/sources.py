"""Finding, verifying and decoding official dataset files."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from tailbench.errors import UserError

DATA_DIR_ENV = "TAILBENCH_DATA"


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "tailbench")


def find_first(candidates: list[Path]) -> Path | None:
    for path in candidates:
        if path.is_file():
            return path
    return None


def missing_files_error(dataset: str, names: list[str], where: Path, how: str) -> UserError:
    return UserError(
        f"{dataset}: missing {', '.join(names)} under {where}; {how} (or point --data-dir / ${DATA_DIR_ENV} at them)"
    )


def digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def verify(path: Path, data: bytes, expected: str, algorithm: str, what: str = "") -> dict[str, str]:
    """Check a checksum; return the provenance entry for the run record."""
    actual = digest(data, algorithm)
    if actual != expected:
        label = f" ({what})" if what else ""
        raise UserError(
            f"{path} failed its {algorithm} check{label}: expected {expected[:12]}..., got {actual[:12]}...; "
            "the file is corrupt or partial: delete it and fetch it again"
        )
    return {"path": str(path), algorithm: actual}


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it is a .gz file."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise UserError(f"{path} cannot be read ({error}); delete it and fetch it again") from None


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def decode_idx(data: bytes, path: Path) -> np.ndarray:
    """Decode an IDX file (the MNIST family's format): magic 0x0000TTDD, big-endian dims, data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (bad magic number); delete it and fetch it again")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise UserError(f"{path} holds {len(data)} bytes where its header promises {expected}; it is truncated or corrupt")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
