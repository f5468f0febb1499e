"""A folder argument checked before any work: one line for a path that does not exist, and
another for one that is a file."""

from __future__ import annotations

from pathlib import Path

from tailbench.errors import UserError


def require_folder(path: Path, what: str, hint: str) -> None:
    """what: how the user named it (e.g. "--results results"); hint: what to do instead."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} does not exist; {hint}")
    if not path.is_dir():
        raise UserError(f"{what} is a file, not a folder; {hint}")
