"""What the committed leaderboard admits beyond a well-formed, self-consistent record.

- The seed is within tailbench.limits.MAX_SEED (what `tailbench run` accepts).
- Every dataset source was verified against a pinned checksum. A source fingerprinted without a
  pinned value (`"pinned": false`, or the older `"check": "listing fingerprint, not pinned"`)
  could be any files with the right names and sizes; a source read with
  --allow-unverified-data (`"unverified": true`) failed its checksum. Such runs are fine for
  one's own experiments and are refused by `tailbench submit`.
"""

from __future__ import annotations

from tailbench.limits import MAX_SEED


def _unpinned(source: dict) -> bool:
    return source.get("pinned") is False or "not pinned" in str(source.get("check", ""))


def admission_problems(result: dict) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if isinstance(result.get("seed"), int) and result["seed"] > MAX_SEED:
        problems.append(("seed", f"{result['seed']} is above the largest seed tailbench runs ({MAX_SEED})"))
    sources = (result.get("dataset") or {}).get("sources") if isinstance(result.get("dataset"), dict) else None
    for i, source in enumerate(sources if isinstance(sources, list) else []):
        if not isinstance(source, dict):
            continue
        where, path = f"dataset.sources[{i}]", str(source.get("path", "?"))[:200]
        if source.get("unverified") is True:
            problems.append((where, f"{path} failed its checksum and was used with --allow-unverified-data; "
                                    "such runs stay off the committed leaderboard: rerun on the official files"))
        elif _unpinned(source):
            problems.append((where, f"{path} was only fingerprinted (unpinned data: no checksum is pinned for it in "
                                    "this tailbench); such runs stay off the committed leaderboard until the fingerprint is pinned"))
    return problems
