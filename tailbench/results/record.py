"""The run record (result.json) as typed models: one definition for the harness that writes it,
`tailbench submit` that validates it and the leaderboard that reads it.

Every model forbids unknown fields, every number must be finite (`NaN`/`Infinity` are refused;
a missing number is `null` where the field allows it), and timestamps must carry a UTC offset.
Validation is strict: `"0"` is not an integer and `1.5` is not an epoch count. The JSON Schema of
`RunRecord` is committed as docs/run-record.schema.json (`python -m tailbench.results.record`
regenerates it; a test checks that it is current).

Versions (SCHEMA_VERSION in tailbench.results is the one the harness writes):
- 1: records written before method parts named their origin. `method.changed` may be absent
  (nothing changed) and parts have no `origin`.
  Later version-1 records add `provenance.code_sha256`, `provenance.runtime` and
  `provenance.git.source`, and drop `recipe.eval_batch_size` (the runtime chooses it per device).
- 2: every part has `origin` ("builtin", "file" for a --method-file, "package" for an entry point
  or another installed module) and, unless built in, `code` (its source file's name, sha256 and
  text); `method.changed`, `provenance.code_sha256`, `provenance.runtime` and
  `provenance.git.source` are always present.

Adding a field: give it a default that means what older records meant, and it is optional for
them (as `changed` was for version 1); a field that must be present from now on gets a new
version and a check in `RunRecord._version_rules`. A record is written back exactly as it was
read (`to_json` leaves out the fields the record did not have). Checks that need the registries of this
checkout (manifest, recipe, hyper-parameter defaults, per_class.csv) live in tailbench/submission/validate.py.

The parts' models are in record_parts.py (dataset, method, recipe, summary, history, provenance,
per-image evidence) and record_origins.py (an outside model, a two-stage run's stages), their
building blocks in record_types.py; this module holds the record itself and its cross-field rules.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import model_validator

from tailbench.results.record_types import Model, Text, Count, problems_error, range_problems
from tailbench.results.record_parts import (
    FAMILY_SUMMARY, REQUIRED_PACKAGES, DatasetRecord, EpochRecord, MethodRecord, PerImageRecord, Provenance, RecipeRecord, Summary,
)
from tailbench.results.record_origins import OUTSIDE_PREFIX, OutsideModel, StagesRecord

from tailbench.results import SCHEMA_VERSION
from tailbench.results.store import path_component_problem, record_method_id

SUPPORTED_VERSIONS = (1, 2)


# -- the record ------------------------------------------------------------------------------------
class RunRecord(Model):
    schema_version: Literal[1, 2]
    benchmark: Text
    dataset: DatasetRecord
    method: MethodRecord
    seed: Count
    recipe: RecipeRecord
    summary: Summary
    history: list[EpochRecord]
    provenance: Provenance
    per_image: PerImageRecord | None = None  # absent in records made before runs kept per-image evidence
    outside: OutsideModel | None = None  # a model trained outside tailbench: evaluated, not trained (no history)
    stages: StagesRecord | None = None  # a run with after-training parts: its stage-1 network and second stage

    @property
    def entry(self) -> str:
        """The leaderboard entry: the spec plus `@part.key=value` per changed hyper-parameter."""
        return record_method_id({"method": {"spec": self.method.spec, "changed": self.method.changed}})

    def describe(self) -> str:
        return f"{self.benchmark} / {self.entry} / seed {self.seed}"

    def to_json(self) -> dict[str, Any]:
        """The record as the JSON object result.json holds: the fields it was given, no defaults added."""
        return self.model_dump(mode="json", exclude_unset=True)

    @model_validator(mode="after")
    def _cross_field(self) -> RunRecord:
        problems = self._version_rules() + self._method_rules() + self._summary_rules() + self._history_rules()
        provenance = self.provenance
        for package in REQUIRED_PACKAGES:
            if not provenance.packages.get(package):
                problems.append((f"provenance.packages.{package}", "missing"))
        if self.per_image is not None and self.per_image.rows != self.dataset.test_size:
            problems.append(("per_image.rows", f"is {self.per_image.rows}; the dataset's test split has {self.dataset.test_size} images"))
        if provenance.finished < provenance.started:
            problems.append(("provenance.finished", "is earlier than provenance.started"))
        if problems:
            raise problems_error(problems)
        return self

    def _version_rules(self) -> list[tuple[str, str]]:
        if self.schema_version < 2:
            if any(part.origin is not None for part in self.method.parts):
                return [("method.parts", "origin is recorded from schema version 2 on; this record says version 1")]
            return []
        problems = [(f"method.parts[{i}].origin", "missing") for i, part in enumerate(self.method.parts) if part.origin is None]
        required = {"method.changed": self.method.changed, "provenance.code_sha256": self.provenance.code_sha256,
                    "provenance.runtime": self.provenance.runtime}
        problems += [(field, "missing") for field, value in required.items() if value is None]
        if "source" not in self.provenance.git.model_fields_set:
            problems.append(("provenance.git.source", "missing"))
        return problems

    def _method_rules(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for key, value in (("benchmark", self.benchmark), ("method.spec", self.method.spec)):
            bad = path_component_problem(value)
            if bad:
                problems.append((key, bad))
        method = self.method
        if self.outside is not None:
            expected = OUTSIDE_PREFIX + self.outside.card.name
            if method.spec != expected or method.parts or method.hparams or method.changed:
                problems.append(("method", f"of an outside model must be spec {expected!r} with no parts, hyper-parameters or changes"))
            return problems
        if not method.parts:
            return problems + [("method.parts", "is empty; a method has at least one part")]
        if method.spec.startswith(OUTSIDE_PREFIX):
            return problems + [("method.spec", f"{OUTSIDE_PREFIX}... names a model trained outside tailbench; such a record has an `outside` field")]
        names = [part.name for part in method.parts]
        if method.spec != "+".join(names):
            problems.append(("method.spec", f"{method.spec!r} does not match its parts {'+'.join(names)!r}"))
        if sorted(method.hparams) != sorted(names):
            problems.append(("method.hparams", f"has entries for {sorted(method.hparams)}, expected one per part {sorted(names)}"))
        changed_problems = []
        for dotted, value in (method.changed or {}).items():
            part, _, key = dotted.partition(".")
            if key not in method.hparams.get(part, {}):
                changed_problems.append((f"method.changed.{dotted}", "names no hyper-parameter in method.hparams"))
            elif method.hparams[part][key] != value:
                held = json.dumps(method.hparams[part][key])[:40]
                changed_problems.append((f"method.changed.{dotted}", f"is {json.dumps(value)[:40]}; method.hparams holds {held}"))
        bad_entry = None if changed_problems else path_component_problem(self.entry)
        return problems + changed_problems + ([("method.changed", f"makes the entry name {bad_entry}")] if bad_entry else [])

    def _summary_rules(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        values = self.summary.as_dict()
        for family in self.dataset.invariance_families:
            for pattern, (low, high) in FAMILY_SUMMARY.items():
                key = pattern.format(f=family)
                if key not in values:
                    problems.append((f"summary.{key}", "missing"))
                elif values[key] is not None:
                    problems += range_problems(f"summary.{key}", values[key], low, high)
        return problems

    def _history_rules(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.outside is not None:
            return [("history", "must be empty: a model trained outside tailbench has no tailbench training")] if self.history else []
        if len(self.history) != self.recipe.epochs:
            problems.append(("history", f"has {len(self.history)} epochs; recipe.epochs is {self.recipe.epochs}"))
        for i, epoch in enumerate(self.history):
            if epoch.epoch != i:
                problems.append((f"history[{i}].epoch", f"is {epoch.epoch}, expected {i}"))
                break
        return problems


def json_schema() -> str:
    """docs/run-record.schema.json: the JSON Schema of RunRecord (written by this module's main)."""
    schema = RunRecord.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = (f"tailbench run record (result.json), schema versions {', '.join(map(str, SUPPORTED_VERSIONS))}; "
                             f"the harness writes version {SCHEMA_VERSION}. Generated from tailbench/results/record.py.")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    from pathlib import Path

    from tailbench.storage.atomic import write_atomic

    target = Path(__file__).resolve().parents[2] / "docs" / "run-record.schema.json"
    write_atomic(target, json_schema().encode())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

