"""Where meta-learned sharing matrices live: ``<root>/msr/...`` in the shared asset cache
(tailbench.asset_cache), beside GIT's generators, with ``sharing.pt`` the result (the stem's
sharing matrix U_s, the meta-training curve and its cost) and ``checkpoint.pt`` the latest
meta-training state while it runs."""

from __future__ import annotations

from tailbench.asset_cache import CHECKPOINT, CONFIG, AssetKind, cache_root, identity, save, write_config

SHARING = AssetKind(folder="msr", final="sharing.pt", what="MSR meta-training file", redo="meta-train again")
FINAL = SHARING.final
entry_dir, load = SHARING.entry_dir, SHARING.load

__all__ = ["CHECKPOINT", "CONFIG", "FINAL", "cache_root", "entry_dir", "identity", "load", "save", "write_config"]
