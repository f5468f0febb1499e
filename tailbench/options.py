"""Typed `key=value` options from the command line, typed by their defaults."""

from __future__ import annotations

from tailbench.errors import UserError


def parse_assignments(flag: str, items: list[str] | None) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} {item!r} is not of the form key=value")
        parsed[key.strip()] = value.strip()
    return parsed


def coerce(label: str, raw: object, default: object) -> object:
    """Convert a CLI string to the type of the default (bool, int, float, else str)."""
    if not isinstance(raw, str):
        return raw
    try:
        if isinstance(default, bool):
            if raw.lower() not in {"true", "false", "1", "0"}:
                raise ValueError
            return raw.lower() in {"true", "1"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise UserError(f"{label}={raw!r} is not a valid {type(default).__name__}") from None
    return raw
