"""The leaderboard: rendered from run records only (it never imports the harness)."""
