"""A run record's validation errors as (field, reason) pairs, worded for one line each.

pydantic reports where (`loc`) and what (`type`, `ctx`); this turns them into the messages
`tailbench submit` prints, e.g. `seed: expected an integer, got string` or
`summary.accuracy: 1.5 is above the maximum 1`.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

TYPE_WORDS = {
    "int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
    "dict": "an object", "list": "a list", "model": "an object",
}
UNION_TAGS = {"int", "float", "str", "bool", "constrained-int", "constrained-float", "constrained-str"}


def type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}.get(type(value), type(value).__name__)


def where(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def reason(error: dict, version: object) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return f"unknown field (not in run-record schema version {version})"
    if kind.endswith("_type") and value is None:
        return "is null; a value is required"
    if kind in ("int_type", "int_from_float"):
        return f"expected an integer, got {type_name(value)}" + ("" if isinstance(value, (list, dict)) else f" {json.dumps(value)[:40]}")
    if kind.endswith("_type"):
        wanted = TYPE_WORDS.get(kind.removesuffix("_type").replace("model_attributes", "model"), kind.removesuffix("_type"))
        return f"expected {wanted}, got {type_name(value)}"
    if kind == "greater_than_equal":
        return f"{_number(value)} is below the minimum {_number(ctx['ge'])}"
    if kind == "less_than_equal":
        return f"{_number(value)} is above the maximum {_number(ctx['le'])}"
    if kind == "finite_number":
        return "is not finite"
    if kind == "string_too_short":
        return "is empty"
    if kind == "too_short":
        return f"has {ctx.get('actual_length')} items; at least {ctx.get('min_length')} required"
    if kind == "literal_error":
        return f"{json.dumps(value)[:40]} is not one of {ctx.get('expected')}"
    if kind == "timezone_aware":
        return f"{str(value)[:40]!r} has no UTC offset"
    if kind.startswith("datetime"):
        return f"{str(value)[:40]!r} is not an ISO 8601 timestamp"
    if kind == "string_pattern_mismatch":
        return f"{str(value)[:40]!r} does not match {ctx.get('pattern')}"
    return " ".join(error["msg"].split())


def problems(error: ValidationError, version: object) -> list[tuple[str, str]]:
    """Every problem, in the order pydantic found them; a value that fits none of a union's types
    is one problem ("expected a number, got string"), not one per type."""
    out: list[tuple[str, str]] = []
    unions: dict[tuple, list[dict]] = {}
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        if item["type"] == "record_problems":
            prefix = where(loc)
            out += [(f"{prefix}.{field}" if prefix else field, why) for field, why in item["ctx"]["problems"]]
        elif loc and loc[-1] in UNION_TAGS and item["type"].endswith("_type"):
            if loc[:-1] not in unions:
                out.append((where(loc[:-1]), ""))  # filled below, in place
            unions.setdefault(loc[:-1], []).append(item)
        else:
            out.append((where(loc), reason(item, version)))
    for loc, items in unions.items():
        order = ["string", "int", "float", "bool"]
        kinds = sorted({i["type"].removesuffix("_type") for i in items}, key=lambda k: order.index(k) if k in order else len(order))
        words = {"string": "a string", "int": "a number", "float": "a number", "bool": "a boolean"}
        wanted = list(dict.fromkeys(words.get(k, k) for k in kinds))
        text = wanted[0] if len(wanted) == 1 else ", ".join(wanted[:-1]) + " or " + wanted[-1]
        out[out.index((where(loc), ""))] = (where(loc), f"expected {text}, got {type_name(items[0].get('input'))}")
    return out
