"""The one console that progress, tables and warnings are drawn on: stderr, so stdout stays data."""

from rich.console import Console

console = Console(stderr=True)
