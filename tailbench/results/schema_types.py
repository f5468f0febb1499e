"""A small declarative type language for JSON records: specs and the checker that walks them.

`check(value, spec, where, problems)` appends a (field, reason) pair for every way a value
departs from its spec; the run-record schema (schema.py) is written in it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime

from tailbench.results import SCHEMA_VERSION


# -- specs ------------------------------------------------------------
@dataclass(frozen=True)
class Number:
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Text:
    nullable: bool = False
    choices: tuple[str, ...] | None = None
    nonempty: bool = True


@dataclass(frozen=True)
class Flag:
    nullable: bool = False


@dataclass(frozen=True)
class Timestamp:
    """An ISO 8601 date and time with a UTC offset."""


@dataclass(frozen=True)
class AnyJson:
    """Any JSON value (free-form logs); only finiteness is checked, by the JSON parser."""


@dataclass(frozen=True)
class Scalar:
    """A string, number, boolean or null: option and hyper-parameter values."""


@dataclass(frozen=True)
class ListOf:
    item: object
    min_items: int = 0


@dataclass(frozen=True)
class MapOf:
    value: object


@dataclass(frozen=True)
class Obj:
    fields: dict[str, object]
    open: bool = False  # unknown keys allowed
    optional: tuple[str, ...] = ()  # fields that records of some tailbench versions lack


def type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}.get(type(value), type(value).__name__)


def _format(number: float) -> str:
    return f"{number:g}"


def check(value: object, spec: object, where: str, problems: list[tuple[str, str]]) -> None:
    """Append (field, reason) for every way value departs from spec."""
    if isinstance(spec, AnyJson):
        return
    nullable = getattr(spec, "nullable", False)
    if value is None:
        if not nullable:
            problems.append((where, "is null; a value is required"))
        return
    if isinstance(spec, Number):
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not is_number or (spec.integer and not isinstance(value, int)):
            problems.append((where, f"expected {'an integer' if spec.integer else 'a number'}, got {type_name(value)} {json.dumps(value)[:40]}"))
        elif not math.isfinite(value):
            problems.append((where, "is not finite"))
        elif spec.minimum is not None and value < spec.minimum:
            problems.append((where, f"{_format(value)} is below the minimum {_format(spec.minimum)}"))
        elif spec.maximum is not None and value > spec.maximum:
            problems.append((where, f"{_format(value)} is above the maximum {_format(spec.maximum)}"))
    elif isinstance(spec, Text):
        if not isinstance(value, str):
            problems.append((where, f"expected a string, got {type_name(value)}"))
        elif spec.nonempty and not value:
            problems.append((where, "is empty"))
        elif spec.choices is not None and value not in spec.choices:
            problems.append((where, f"{value!r} is not one of {', '.join(spec.choices)}"))
    elif isinstance(spec, Flag):
        if not isinstance(value, bool):
            problems.append((where, f"expected true or false, got {type_name(value)}"))
    elif isinstance(spec, Timestamp):
        if not isinstance(value, str):
            problems.append((where, f"expected an ISO 8601 timestamp string, got {type_name(value)}"))
        else:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                problems.append((where, f"{value[:40]!r} is not an ISO 8601 timestamp"))
            else:
                if parsed.tzinfo is None:
                    problems.append((where, f"{value[:40]!r} has no UTC offset"))
    elif isinstance(spec, Scalar):
        if isinstance(value, (list, dict)):
            problems.append((where, f"expected a string, number or boolean, got {type_name(value)}"))
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            problems.append((where, f"expected a list, got {type_name(value)}"))
            return
        if len(value) < spec.min_items:
            problems.append((where, f"has {len(value)} items; at least {spec.min_items} required"))
        for i, item in enumerate(value):
            check(item, spec.item, f"{where}[{i}]", problems)
    elif isinstance(spec, MapOf):
        if not isinstance(value, dict):
            problems.append((where, f"expected an object, got {type_name(value)}"))
            return
        for key, item in value.items():
            check(item, spec.value, f"{where}.{key}", problems)
    elif isinstance(spec, Obj):
        if not isinstance(value, dict):
            problems.append((where or "result.json", f"expected an object, got {type_name(value)}"))
            return
        prefix = f"{where}." if where else ""
        for key, sub in spec.fields.items():
            if key not in value:
                if key not in spec.optional:
                    problems.append((f"{prefix}{key}", "missing"))
            else:
                check(value[key], sub, f"{prefix}{key}", problems)
        if not spec.open:
            for key in value:
                if key not in spec.fields:
                    problems.append((f"{prefix}{key}", f"unknown field (not in run-record schema version {SCHEMA_VERSION})"))
    else:  # pragma: no cover - a spec this module does not define
        raise TypeError(f"unknown spec {spec!r}")
