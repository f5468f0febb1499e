"""The building blocks of the record's models: the strict base model, the constrained field types
(text, counts, probabilities, sha256, UTC timestamps) and how cross-field problems are raised."""

from __future__ import annotations

import math
from typing import Annotated

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic_core import PydanticCustomError


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=False)


Text = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
# An int stays an int and a float a float (an epoch count override must not come back as 1.0).
NumberOverride = Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0.0)]
Scalar = str | int | float | bool


def _timestamp_text(value: object) -> object:
    """Timestamps are ISO 8601 text in JSON (a datetime from the harness); a number is not one."""
    if not isinstance(value, (str, datetime)):
        kind = "null" if value is None else type(value).__name__
        raise PydanticCustomError("timestamp_type", "expected an ISO 8601 timestamp string, got {kind}", {"kind": kind})
    return value


Timestamp = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_timestamp_text),
                      PlainSerializer(lambda t: t.isoformat(), return_type=str)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def problems_error(problems: list[tuple[str, str]]) -> PydanticCustomError:
    """Cross-field problems, each (field from the record's root, reason), as one pydantic error;
    results/record_errors.py unpacks them again."""
    return PydanticCustomError("record_problems", "{count} problem(s)", {"count": len(problems), "problems": problems})


def range_problems(where: str, value: float, low: float | None, high: float | None) -> list[tuple[str, str]]:
    if not math.isfinite(value):
        return [(where, "is not finite")]
    if low is not None and value < low:
        return [(where, f"{value:g} is below the minimum {low:g}")]
    if high is not None and value > high:
        return [(where, f"{value:g} is above the maximum {high:g}")]
    return []
