"""Where a run came from: code version, packages, machine."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "timm", "numpy", "pandas", "scipy")


@functools.lru_cache(maxsize=1)
def git_commit() -> dict[str, object]:
    """The checkout's commit and whether it was dirty, read ONCE per process: the code a process
    runs is what it imported at its start, so a sweep whose checkout moves on while it runs
    still records the commit its code came from. The harness calls this before training."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


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


def machine() -> dict[str, str]:
    return {"platform": platform.platform(), "processor": platform.machine()}
