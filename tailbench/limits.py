"""Ranges of the numbers a user passes on the command line and a run record stores.

Seeds stop at 2**32 - 1 because numpy's legacy generator (seeded alongside torch) takes seeds
modulo 2**32: two seeds further apart would silently share a stream. The other caps are far
beyond any real run and only keep absurd values from reaching file names, allocators and the
leaderboard.
"""

MAX_SEED = 2**32 - 1
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 2**20
MAX_EKLD_TRANSFORMS = 10_000


def int_in(low: int, high: int):
    """An argparse type: an integer from low to high, else a one-line usage error."""
    import argparse

    def parse(text: str) -> int:
        digits = text.strip().lstrip("+-")
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"{text[:30]!r} is not an integer from {low} to {high}")
        shown = text.strip() if len(text.strip()) <= 30 else f"{text.strip()[:24]}... ({len(digits)} digits)"
        # Compare the digit count first: int() of thousands of digits is slow or refused.
        if len(digits.lstrip("0")) > len(str(max(abs(low), abs(high)))) or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{shown} is not an integer from {low} to {high}")
        return int(text)

    parse.__name__ = "integer"
    return parse


def positive_number(text: str) -> float:
    """An argparse type: a finite number above zero."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:30]!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text[:30]} is not a finite number above 0")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer above zero (a count of jobs, CPUs, minutes)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text[:30]!r} is not a positive integer")
    return value


seed = int_in(0, MAX_SEED)
