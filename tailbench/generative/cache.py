"""Where trained generators live: ``<root>/generators/...`` in the shared asset cache
(tailbench.asset_cache), with ``generator.pt`` the finished model (weights and metadata only) and
``checkpoint.pt`` the training state (model, optimizers, schedulers, iteration and the sampler's
RNG state) while training runs."""

from __future__ import annotations

from tailbench.asset_cache import CHECKPOINT, CONFIG, AssetKind, cache_root, identity, save, write_config

GENERATORS = AssetKind(folder="generators", final="generator.pt", what="generator checkpoint", redo="train again")
FINAL = GENERATORS.final
entry_dir, load = GENERATORS.entry_dir, GENERATORS.load

__all__ = ["CHECKPOINT", "CONFIG", "FINAL", "cache_root", "entry_dir", "identity", "load", "save", "write_config"]
