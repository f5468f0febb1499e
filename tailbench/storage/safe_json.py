"""Bounded JSON: run records are read as data from anyone, so every dimension of them is capped.

`loads_bounded(data, what)` parses JSON bytes and raises `JsonTooLarge` (one line, naming the
limit) instead of letting hostile input through to a RecursionError, an OverflowError, a
multi-megabyte string on the leaderboard or a non-finite float:
- the whole text at most MAX_BYTES,
- nesting at most MAX_DEPTH objects and lists deep (checked before the parser recurses),
- every string at most MAX_STRING_CHARS characters, every object key at most MAX_KEY_CHARS,
- every integer within a signed 64-bit integer (what numpy and torch can hold),
- every number finite (no NaN, Infinity or 1e999).
"""

from __future__ import annotations

import json
import math
import re

MAX_BYTES = 16 * 2**20
MAX_DEPTH = 32
MAX_STRING_CHARS = 64 * 2**10
MAX_KEY_CHARS = 256
MAX_INT = 2**63 - 1

# A JSON string token (escapes included) or one bracket: enough to measure nesting without
# recursing, since brackets inside strings are consumed with their string.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


class JsonTooLarge(ValueError):
    """The text is JSON but exceeds a bound (or is not JSON); the message is one line."""


def _parse_int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > len(str(MAX_INT)) or abs(int(text)) > MAX_INT:
        raise JsonTooLarge(f"the integer {text[:24]}{'...' if len(text) > 24 else ''} ({len(digits)} digits) is outside the 64-bit range")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonTooLarge(f"is not valid JSON (the number {text[:24]} is not finite in 64-bit floating point)")
    return value


def _no_constants(token: str) -> object:
    raise JsonTooLarge(f"is not valid JSON ({token} is not allowed (write null for a missing number))")


def check_depth(text: str) -> None:
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonTooLarge(f"nests deeper than {MAX_DEPTH} levels")
        elif token == "]" or token == "}":
            depth -= 1


def _check_strings(value: object, where: str) -> None:
    """Walk a parsed value (its depth is already bounded) checking string and key lengths."""
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            raise JsonTooLarge(f"{where or 'the value'} is a string of {len(value):,} characters; the limit is {MAX_STRING_CHARS:,}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_strings(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if len(key) > MAX_KEY_CHARS:
                raise JsonTooLarge(f"{where or 'the object'} has a key of {len(key):,} characters; the limit is {MAX_KEY_CHARS}")
            _check_strings(item, f"{where}.{key}" if where else key)


def loads_bounded(data: bytes) -> object:
    """Parse JSON bytes within the bounds above; raises JsonTooLarge with a one-line reason."""
    if len(data) > MAX_BYTES:
        raise JsonTooLarge(f"is {len(data):,} bytes; the limit is {MAX_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonTooLarge(f"is not UTF-8 text ({error.reason} at byte {error.start})") from None
    check_depth(text)
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constants)
    except JsonTooLarge:
        raise
    except (ValueError, RecursionError) as error:
        raise JsonTooLarge(f"is not valid JSON ({' '.join(str(error).split())[:200]})") from None
    _check_strings(value, "")
    return value
