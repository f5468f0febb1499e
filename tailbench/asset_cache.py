"""Trained assets that runs share (GIT's generators, MSR's sharing matrices), cached on disk.

``<root>/<kind>/<dataset id>/<manifest sha256[:16]>-<config digest[:16]>-seed<seed>/`` holds

- ``config.json``: what the folder is (dataset, manifest, config, seed, image shape);
- ``checkpoint.pt``: the latest training state while training runs; removed once it completes;
- the finished asset (its file name is the kind's), written last.

``<root>`` is ``$TAILBENCH_CACHE`` or ``~/.cache/tailbench``. Files hold tensors, numbers,
strings, lists and dicts only, and are read with ``torch.load(weights_only=True)``; each carries
the identity of its folder, checked on every load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch

from tailbench.errors import UserError
from tailbench.storage.atomic import write_atomic
from tailbench.storage.locks import LockBusy, exclusive

CACHE_ENV = "TAILBENCH_CACHE"
CHECKPOINT, CONFIG = "checkpoint.pt", "config.json"
FORMAT = 1


class AssetConfig(Protocol):
    @property
    def digest(self) -> str: ...

    def to_json(self) -> dict: ...


def config_digest(fields: dict) -> str:
    """sha256 of the canonical JSON of a config's fields (types included: 64 and 64.0 differ)."""
    canonical = json.dumps({k: [type(v).__name__, v] for k, v in sorted(fields.items())}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "tailbench")


@dataclass(frozen=True)
class AssetKind:
    folder: str  # under the cache root: "generators", "msr"
    final: str  # the finished asset's file name
    what: str  # for messages: "generator checkpoint"
    redo: str  # what deleting a bad file leads to: "train again"

    def entry_dir(self, root: Path, dataset_id: str, manifest_sha256: str, config: AssetConfig, seed: int) -> Path:
        folder = dataset_id.replace(os.sep, "_")
        return Path(root) / self.folder / folder / f"{manifest_sha256[:16]}-{config.digest[:16]}-seed{seed}"

    def load(self, path: Path, expected: dict, device: torch.device | str = "cpu") -> dict:
        try:
            payload = torch.load(path, map_location=device, weights_only=True)
        except Exception as error:  # a truncated or foreign file: say which, never unpickle it
            raise UserError(f"{path} is not a readable {self.what} ({type(error).__name__}); delete it to {self.redo}") from None
        if not isinstance(payload, dict) or payload.get("identity") != expected:
            raise UserError(f"{path} belongs to another dataset, config or seed than its folder says; delete it to {self.redo}")
        return payload


def identity(dataset_id: str, manifest_sha256: str, config: AssetConfig, seed: int, image_shape: tuple[int, ...]) -> dict:
    """What a cached file must match to be used."""
    return {
        "format": FORMAT, "dataset_id": dataset_id, "manifest_sha256": manifest_sha256,
        "config": config.to_json(), "config_digest": config.digest, "seed": int(seed),
        "image_shape": [int(s) for s in image_shape],
    }


def save(path: Path, payload: dict) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())


def write_config(directory: Path, ident: dict, extra: dict) -> None:
    write_atomic(directory / CONFIG, (json.dumps({**ident, **extra}, indent=2) + "\n").encode())


def entry_lock(directory: Path) -> Path:
    """The lock that whoever writes a cache entry's finished asset holds."""
    return directory.parent / f".{directory.name}.lock"


def ensure_final(kind: AssetKind, directory: Path, train: Callable[[], None], wait_seconds: float) -> bool:
    """Make sure the folder holds its finished asset: `train()` writes it, under the folder's lock,
    unless it is there already (perhaps finished by another process while this one waited for the
    lock). One trainer per asset; the others wait, then load. Returns whether it was there."""
    final = directory / kind.final
    if final.is_file():
        return True
    try:
        with exclusive(entry_lock(directory), wait_seconds=wait_seconds):
            if final.is_file():
                return True
            train()
            return False
    except LockBusy as busy:
        raise UserError(f"the {kind.what} in {directory} is still being trained elsewhere ({busy.holder}); try again when it ends") from None
