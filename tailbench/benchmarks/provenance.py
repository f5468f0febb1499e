"""Where a run came from: code version, packages, machine."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from tailbench.errors import UserError

PACKAGES = ("torch", "torchvision", "timm", "numpy", "pandas", "scipy")
COMMIT_ENV = "TAILBENCH_COMMIT"  # the commit of a copy of the tree that has no .git (a GPU machine's)
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
COMMIT_PATTERN = re.compile(r"[0-9a-f]{40}")


def code_files(root: Path = PACKAGE_ROOT) -> list[Path]:
    """The package's source files whose text the code digest covers."""
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def code_digest_of(files: dict[str, bytes]) -> str:
    """sha256 over (path relative to the package's parent, size, bytes) of every file, in path order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """The digest of the tailbench package this process imported (read once, like the commit)."""
    return code_digest_of({p.relative_to(PACKAGE_ROOT.parent).as_posix(): p.read_bytes() for p in code_files()})


@functools.lru_cache(maxsize=1)
def git_commit() -> dict[str, object]:
    """The commit of the code this process runs, read ONCE per process: the code a process runs is
    what it imported at its start, so a sweep whose checkout moves on while it runs still records
    the commit its code came from. The harness calls this before training.

    $TAILBENCH_COMMIT, when set, names it and wins over whatever git says: a copy of the tree made
    for another machine (a GPU machine's) may have no .git, or a .git of another commit with the
    copied files on top (seen on this project's GPU machines: a dirty checkout of the session's
    first commit). The record then says so (`source`), and `tailbench submit` checks the record's
    code digest against that commit's files, so a wrong commit cannot pass."""
    given = os.environ.get(COMMIT_ENV, "").strip().lower()
    if given:
        if not COMMIT_PATTERN.fullmatch(given):
            raise UserError(f"${COMMIT_ENV}={given[:60]!r} is not a full 40-hex-digit git commit; set it to `git rev-parse HEAD` of the tree you copied")
        return {"commit": given, "dirty": None, "source": COMMIT_ENV}
    root = PACKAGE_ROOT.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    if commit:
        return {"commit": commit, "dirty": bool(dirty), "source": "git"}
    return {"commit": None, "dirty": None, "source": None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": sys.version.split()[0], "tailbench": _version("tailbench")}
    for name in PACKAGES:
        versions[name] = _version(name)
    return versions


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# The vector-instruction families a CPU offers. oneDNN and MKL pick their kernels by them, so the
# same code, seed and thread count can give other float sums on a CPU with another set (measured:
# docs/PERFORMANCE.md, "Determinism across machines"); a record names them so that a rerun can tell.
VECTOR_ISA = re.compile(r"^(sse4_[12]|avx[0-9a-z_]*|fma|f16c|amx[a-z0-9_]*)$")


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or platform.machine()


def cpu_vector_isa(cpuinfo: str) -> str:
    """The CPU's vector-instruction flags (sorted, space-separated), '' where /proc/cpuinfo has none."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return " ".join(sorted(f for f in value.split() if VECTOR_ISA.match(f)))
    return ""


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def machine() -> dict[str, str]:
    cpuinfo = _cpuinfo()
    return {"platform": platform.platform(), "processor": platform.machine(),
            "cpu": cpu_model(cpuinfo), "cpu_vector_isa": cpu_vector_isa(cpuinfo)}


def same_cpu_kind(recorded: dict[str, str], here: dict[str, str]) -> bool | None:
    """Whether a record's machine offered the vector instructions this one does (None: the record does not say)."""
    if "cpu_vector_isa" not in recorded:
        return None
    return recorded["cpu_vector_isa"] == here["cpu_vector_isa"]
