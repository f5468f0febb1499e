"""Where meta-learned sharing matrices live, written atomically and read without unpickling.

``<root>/msr/<dataset id>/<manifest sha256[:16]>-<config digest[:16]>-seed<seed>/`` holds

- ``config.json``: what the folder is (dataset, manifest, meta-training config, seed, image shape);
- ``checkpoint.pt``: the latest meta-training state while it runs; removed once it completes;
- ``sharing.pt``: the result (the stem's sharing matrix U_s, the meta-training curve and its
  cost), written last.

``<root>`` is the one GIT's generators use (``$TAILBENCH_CACHE`` or ``~/.cache/tailbench``).
Files hold tensors, numbers, strings, lists and dicts only, read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch

from tailbench.errors import UserError
from tailbench.generative.cache import cache_root
from tailbench.msr.meta import MetaConfig
from tailbench.results.store import write_atomic

CHECKPOINT, FINAL, CONFIG = "checkpoint.pt", "sharing.pt", "config.json"
FORMAT = 1

__all__ = ["CHECKPOINT", "CONFIG", "FINAL", "cache_root", "entry_dir", "identity", "load", "save", "write_config"]


def entry_dir(root: Path, dataset_id: str, manifest_sha256: str, config: MetaConfig, seed: int) -> Path:
    folder = dataset_id.replace(os.sep, "_")
    return Path(root) / "msr" / folder / f"{manifest_sha256[:16]}-{config.digest[:16]}-seed{seed}"


def identity(dataset_id: str, manifest_sha256: str, config: MetaConfig, seed: int, image_shape: tuple[int, ...]) -> dict:
    """What a file must match to be used: checked on every load."""
    return {
        "format": FORMAT, "dataset_id": dataset_id, "manifest_sha256": manifest_sha256,
        "config": config.to_json(), "config_digest": config.digest, "seed": int(seed),
        "image_shape": [int(s) for s in image_shape],
    }


def save(path: Path, payload: dict) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())


def load(path: Path, expected: dict, device: torch.device | str = "cpu") -> dict:
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which, never unpickle it
        raise UserError(f"{path} is not a readable MSR meta-training file ({type(error).__name__}); delete it to meta-train again") from None
    if not isinstance(payload, dict) or payload.get("identity") != expected:
        raise UserError(f"{path} belongs to another dataset, config or seed than its folder says; delete it to meta-train again")
    return payload


def write_config(directory: Path, ident: dict, extra: dict) -> None:
    write_atomic(directory / CONFIG, (json.dumps({**ident, **extra}, indent=2) + "\n").encode())
