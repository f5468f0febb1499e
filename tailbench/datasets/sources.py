"""Finding, verifying and decoding official dataset files, and saying exactly what is wrong.

Messages tell apart what a user fixes differently: a file that is missing, a folder where a file
should be, a file or folder this user may not read (permissions: not corrupt, no need to fetch
again), and a file whose content fails its checksum (corrupt, partial, or a different copy).
`--allow-unverified-data` (the `allow_unverified` context) lets a run use files that fail their
checksum: the run record then marks each such file `"unverified": true` with the checksum it had
and the one expected, and `tailbench submit` keeps the run off the committed leaderboard.
"""

from __future__ import annotations

import contextvars
import errno
import gzip
import hashlib
import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tailbench.errors import UserError

DATA_DIR_ENV = "TAILBENCH_DATA"
_ALLOW_UNVERIFIED: contextvars.ContextVar[bool] = contextvars.ContextVar("allow_unverified", default=False)


class MissingFiles(UserError):
    """The files are not there at all (as opposed to unreadable, misplaced or corrupt)."""


def builtin_data_dir() -> Path:
    return Path.home() / ".cache" / "tailbench"


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or builtin_data_dir())


def data_dir_was_chosen(data_dir: Path) -> bool:
    """True unless data_dir is the built-in default (no --data-dir, no $TAILBENCH_DATA): only
    then may a loader also look in system-wide copies."""
    return bool(os.environ.get(DATA_DIR_ENV)) or Path(data_dir) != builtin_data_dir()


def unreadable(path: Path, error: OSError) -> UserError:
    """The one line for an OSError met while reading dataset files."""
    if isinstance(error, PermissionError) or error.errno in (errno.EACCES, errno.EPERM):
        return UserError(
            f"{path}: permission denied: this user may not read it (a permission problem, not a corrupt file); "
            "fix its permissions (e.g. chmod -R a+rX on the data folder) or point --data-dir at a readable copy"
        )
    if isinstance(error, IsADirectoryError) or error.errno == errno.EISDIR:
        return UserError(f"{path} is a folder where a file should be; remove or rename that folder and put the file there")
    if isinstance(error, NotADirectoryError) or error.errno == errno.ENOTDIR:
        return UserError(f"{path}: a file stands where a folder of the dataset should be; remove or rename it")
    return UserError(f"{path} cannot be read ({error.strerror or error}); delete it and fetch it again")


def kind_of(path: Path) -> str:
    """'file', 'folder', 'other' or 'missing'; a path whose folder cannot be searched is a
    permission problem, reported with the path."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as error:
        raise unreadable(path, error) from None
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def is_data_file(path: Path) -> bool:
    """True for a regular file; False when nothing is there; one line for anything else."""
    kind = kind_of(path)
    if kind == "folder":
        raise unreadable(path, IsADirectoryError(errno.EISDIR, "Is a directory"))
    if kind == "other":
        raise UserError(f"{path} is not a regular file (a device, socket or pipe); put the dataset file there")
    return kind == "file"


def is_data_folder(path: Path) -> bool:
    """True for a folder; False when nothing is there; one line for a file in its place."""
    kind = kind_of(path)
    if kind in ("file", "other"):
        raise unreadable(path, NotADirectoryError(errno.ENOTDIR, "Not a directory"))
    return kind == "folder"


def list_folder(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except OSError as error:
        raise unreadable(path, error) from None


def find_first(candidates: list[Path]) -> Path | None:
    """The first candidate that is a file. A folder in a file's place, or a folder that may not be
    searched, is reported (in one line) only when no candidate is a file."""
    problem: UserError | None = None
    for path in candidates:
        try:
            if is_data_file(path):
                return path
        except UserError as error:
            problem = problem or error
    if problem is not None:
        raise problem
    return None


def missing_files_error(dataset: str, names: list[str], where: Path, how: str) -> MissingFiles:
    return MissingFiles(
        f"{dataset}: missing {', '.join(names)} under {where}; {how} (or point --data-dir / ${DATA_DIR_ENV} at them)"
    )


def find_all(dataset: str, names: list[str], candidates: Callable[[str], list[Path]], where: Path, how: str) -> dict[str, Path]:
    """Each named file's first existing candidate path; one missing-files line naming every absent one."""
    found = {name: find_first(candidates(name)) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise missing_files_error(dataset, missing, where, how)
    return found  # type: ignore[return-value]


def digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


@contextmanager
def allow_unverified(allowed: bool = True) -> Iterator[None]:
    """Within the block, a checksum mismatch is recorded instead of refused."""
    token = _ALLOW_UNVERIFIED.set(allowed)
    try:
        yield
    finally:
        _ALLOW_UNVERIFIED.reset(token)


def unverified_allowed() -> bool:
    return _ALLOW_UNVERIFIED.get()


def verify(path: Path, data: bytes, expected: str, algorithm: str, what: str = "") -> dict[str, object]:
    """Check a checksum; return the provenance entry for the run record."""
    actual = digest(data, algorithm)
    if actual != expected:
        if unverified_allowed():
            return {"path": str(path), algorithm: actual, f"expected_{algorithm}": expected, "unverified": True}
        label = f" ({what})" if what else ""
        raise UserError(
            f"{path} failed its {algorithm} check{label}: expected {expected[:12]}..., got {actual[:12]}...; "
            "the file is corrupt, partial or not the official one: delete it and fetch it again "
            "(or pass --allow-unverified-data to use this copy knowingly; such runs stay off the leaderboard)"
        )
    return {"path": str(path), algorithm: actual}


def unpinned(path: Path, listing: bytes) -> dict[str, object]:
    """The provenance entry of files that have only a fingerprint, no pinned checksum."""
    return {"path": str(path), "sha256": digest(listing, "sha256"), "check": "listing fingerprint, not pinned", "pinned": False}


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it is a .gz file."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise unreadable(path, error) from None
    try:
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise UserError(f"{path} cannot be decompressed ({error}); it is corrupt or partial: delete it and fetch it again") from None


@contextmanager
def removing_new_empty_folders(root: Path) -> Iterator[None]:
    """On failure, remove the folders (at root and below, and root's missing parents) that the
    block created and left empty, such as a download that never started."""
    root = Path(root).absolute()
    before = _folders(root)
    missing_parents = [p for p in [root, *root.parents] if not os.path.lexists(p)]
    try:
        yield
    except BaseException:
        for folder in sorted(_folders(root) - before, key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass
        for folder in missing_parents:  # deepest first
            try:
                folder.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                break
        raise


def _folders(root: Path, depth: int = 4) -> set[Path]:
    found: set[Path] = set()
    pending = [(root, 0)]
    while pending:
        folder, level = pending.pop()
        try:
            with os.scandir(folder) as entries:
                found.add(folder)
                for entry in entries:
                    if level < depth and entry.is_dir(follow_symlinks=False):
                        pending.append((Path(entry.path), level + 1))
        except OSError:
            continue
    return found


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


OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>")


def undecodable(where: str, error: Exception) -> UserError:
    """One line for an image file that does not decode: which file, what is wrong with it (never a
    Python object's repr, which PIL puts in its messages for in-memory files), what to do."""
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        what = "is not an image in any format Pillow reads (not JPEG, PNG or PPM)"
    else:
        detail = " ".join(OBJECT_REPR.sub("the file", str(error)).split())[:160]
        what = f"cannot be decoded as an image ({detail or type(error).__name__})"
    return UserError(f"{where} {what}; the file is corrupt or partial: delete it and fetch it again")
