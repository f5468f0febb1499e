"""A record's JSON as the typed model, or the (field, reason) problems that keep it from being one.

Nothing here needs this checkout's registries: those checks are tailbench.submission.validate's.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from tailbench.results.record import SUPPORTED_VERSIONS, RunRecord
from tailbench.results.record_errors import problems as record_problems


def validate_record(result: dict) -> tuple[RunRecord | None, list[tuple[str, str]]]:
    """The typed record, or None and the (field, reason) problems that keep it from being one."""
    version = result.get("schema_version")
    if version not in SUPPORTED_VERSIONS or isinstance(version, bool):
        supported = " and ".join(map(str, SUPPORTED_VERSIONS))
        reason = "missing" if "schema_version" not in result else f"{json.dumps(version)[:20]} is not supported (this tailbench reads versions {supported})"
        return None, [("schema_version", reason)]
    try:
        return RunRecord.model_validate(result), []
    except ValidationError as error:
        return None, record_problems(error, version)
