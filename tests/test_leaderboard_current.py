"""The committed leaderboard/ is what `make leaderboard` builds from the committed results/."""

from pathlib import Path

from tailbench.leaderboard.build import render_files

ROOT = Path(__file__).resolve().parents[1]


def test_committed_leaderboard_is_current():
    expected = render_files(ROOT / "results")
    committed = {p.name: p.read_bytes() for p in (ROOT / "leaderboard").iterdir() if p.is_file()}
    stale = sorted(name for name in set(expected) | set(committed) if expected.get(name) != committed.get(name))
    assert not stale, f"leaderboard/ is out of date ({', '.join(stale)}); run `make leaderboard` and commit the result"
