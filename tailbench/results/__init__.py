"""Run records: the on-disk contract between the harness and the leaderboard."""

SCHEMA_VERSION = 2
