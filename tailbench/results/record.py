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
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated, Any, Literal

from datetime import datetime

from pydantic import (
    AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, PlainSerializer, model_validator,
)
from pydantic_core import PydanticCustomError

from tailbench.results import SCHEMA_VERSION
from tailbench.results.store import path_component_problem, record_method_id

SUPPORTED_VERSIONS = (1, 2)


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


# -- dataset ---------------------------------------------------------------------------------------
class SourceFile(BaseModel):
    """A file the dataset was read from: its path and the checksum its dataset verifies (sha256, md5, ...)."""

    model_config = ConfigDict(extra="allow", strict=True)
    __pydantic_extra__: dict[str, str]
    path: Text
    pinned: bool | None = None  # false: the files' checksum is a listing fingerprint, not a published value
    unverified: bool | None = None  # true: the file failed its checksum and was used on --allow-unverified-data


class DatasetRecord(Model):
    name: Text
    id: Text
    options: dict[str, Scalar]
    num_classes: Annotated[int, Field(ge=2)]
    manifest_sha256: Text
    manifest_frozen: bool
    nuisance: Text | None
    invariance_families: list[Text]
    sources: list[SourceFile]
    train_size: Positive
    val_size: Count
    test_size: Positive


# -- method ----------------------------------------------------------------------------------------
class PartCode(Model):
    """The source of a part that is not built in: its file's name, sha256 and text."""

    file: Text
    sha256: Sha256
    text: str

    @model_validator(mode="after")
    def _text_matches_hash(self) -> PartCode:
        if hashlib.sha256(self.text.encode("utf-8")).hexdigest() != self.sha256:
            raise PydanticCustomError("code_hash", "sha256 {sha} is not the hash of the stored text", {"sha": self.sha256[:16] + "..."})
        return self


class PartRecord(Model):
    name: Text
    kind: Literal["loss", "rule", "augmentation", "stage"]
    paper: str
    origin: Literal["builtin", "file", "package"] | None = None  # None: version 1, not recorded
    code: PartCode | None = None

    @model_validator(mode="after")
    def _code_iff_external(self) -> PartRecord:
        if self.origin in ("file", "package") and self.code is None:
            raise problems_error([("code", f"missing: a part from a {self.origin} records its source")])
        if self.origin in ("builtin", None) and self.code is not None:
            raise problems_error([("code", "is only recorded for parts that are not built in")])
        return self

    @property
    def external(self) -> bool:
        return self.origin in ("file", "package")


class MethodRecord(Model):
    spec: Text
    parts: list[PartRecord]  # at least one, except for a model trained outside tailbench (RunRecord.outside)
    hparams: dict[str, dict[str, JsonValue]]
    changed: dict[str, JsonValue] | None = None  # None: a version-1 record that changed nothing

    @property
    def external_parts(self) -> list[PartRecord]:
        return [part for part in self.parts if part.external]


# -- recipe, summary, history, provenance ----------------------------------------------------------
class RecipeRecord(Model):
    name: Text
    model: Text
    epochs: Positive
    batch_size: Positive
    lr: NonNegative
    momentum: NonNegative
    weight_decay: NonNegative
    nesterov: bool
    warmup_epochs: Count
    milestones: list[Count]
    factors: list[NonNegative]
    augment: list[Text]
    eval_batch_size: Positive | None = None  # until the runtime chose it per device (provenance.runtime)
    ekld_images_per_class: Positive
    ekld_transforms: Positive
    ekld_protocol: Literal["clean", "drawn"] = "drawn"  # absent in records made before protocols were named: drawn
    overrides: dict[str, NumberOverride | Literal["clean", "drawn"]]


# Summary numbers per invariance family {f}: key pattern -> (minimum, maximum).
FAMILY_SUMMARY = {
    "ekld_{f}": (0.0, None),
    "head_ekld_{f}": (0.0, None),
    "tail_ekld_{f}": (0.0, None),
    "consistency_{f}": (0.0, 1.0),
    "spearman_ekld_count_{f}": (-1.0, 1.0),
}


class Summary(Model):
    """The numbers every record has, then per invariance family `ekld_{f}`, `head_ekld_{f}`,
    `tail_ekld_{f}`, `consistency_{f}`, `spearman_ekld_count_{f}` (required for the dataset's
    families; RunRecord checks them), then a method's own numbers (e.g. `learned_*`)."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)
    __pydantic_extra__: dict[str, float | None]

    accuracy: Probability
    balanced_accuracy: Probability
    val_balanced_accuracy: Probability | None
    many_shot_accuracy: Probability | None
    medium_shot_accuracy: Probability | None
    few_shot_accuracy: Probability | None
    head_accuracy: Probability
    tail_accuracy: Probability
    worst_class_accuracy: Probability

    def as_dict(self) -> dict[str, float | None]:
        """Every summary number by key, in the record's order."""
        return self.model_dump()

    def get(self, key: str) -> float | None:
        return self.as_dict().get(key)


class EpochRecord(Model):
    epoch: Count
    lr: NonNegative
    loss: float | None
    train_acc: Probability | None
    images_per_s: NonNegative
    seconds: NonNegative
    method: dict[str, JsonValue]  # a method's own per-epoch log (e.g. Augerino's widths)


class GitState(Model):
    commit: Text | None
    dirty: bool | None
    source: Literal["git", "TAILBENCH_COMMIT"] | None = None  # where the commit was read; None: nowhere


class RuntimeRecord(Model):
    """How the device ran the harness (benchmarks/runtime.py)."""

    memory_format: Literal["channels_last", "contiguous"]
    eval_batch_size: Positive
    captured_steps: bool
    deterministic: bool
    train_step: Text


class Provenance(Model):
    git: GitState
    code_sha256: Sha256 | None = None  # the tailbench package's files (benchmarks/provenance.code_digest)
    packages: dict[str, str | None]
    machine: dict[str, str]
    device: Text
    device_type: Text
    runtime: RuntimeRecord | None = None
    started: Timestamp
    finished: Timestamp
    wall_seconds: NonNegative


REQUIRED_PACKAGES = ("python", "torch")


class PerImageRecord(Model):
    """The record's per-image evidence file (tailbench.results.per_image), listed with its checksum."""

    file: Literal["per_image.csv.gz"]
    bytes: Positive
    sha256: Sha256
    rows: Positive


OUTSIDE_PREFIX = "outside:"  # the method spec of a model trained outside tailbench: outside:<card name>


class ModelCard(Model):
    """What the submitter of an outside model says about it (`tailbench evaluate --card`)."""

    name: Text
    url: Text  # the paper or the code
    training_data: Text  # what it was trained on (e.g. "the train split of `tailbench export`")
    test_used_for_selection: bool  # whether the test split chose checkpoints or hyper-parameters


class CheckpointRecord(Model):
    file: Text
    bytes: Positive
    sha256: Sha256


class ModelSource(Model):
    """How the network was built: a model file (its text kept) or a timm model by name."""

    kind: Literal["file", "timm"]
    name: Text  # the file's name, or the timm model name
    sha256: Sha256 | None = None  # of the file's text
    text: str | None = None
    options: dict[str, JsonValue]  # --model-opt

    @model_validator(mode="after")
    def _text_iff_file(self) -> ModelSource:
        if self.kind == "file" and (self.text is None or self.sha256 is None):
            raise problems_error([("text", "missing: a model file's text and sha256 are recorded")])
        if self.kind == "file" and hashlib.sha256(self.text.encode()).hexdigest() != self.sha256:
            raise problems_error([("sha256", "is not the sha256 of the recorded text")])
        return self


class OutsideModel(Model):
    """A record of a model trained outside tailbench and evaluated by `tailbench evaluate`."""

    card: ModelCard
    checkpoint: CheckpointRecord
    model: ModelSource
    parameters: Positive


class RepresentationRecord(Model):
    """The stage-1 network a two-stage run started from (benchmarks/stages.py)."""

    spec: Text  # the run's spec without its after-training parts
    hparams: dict[str, dict[str, JsonValue]]
    recipe_changes: dict[str, JsonValue] = Field(default_factory=dict)  # recipe fields stage 1 trained under instead (wb: weight_decay)
    key: Sha256  # the asset cache's key of the network: everything that determines it
    sha256: Sha256  # of its weights (every state-dict tensor's name, dtype, shape and bytes)
    epochs: Count


class ClassifierStageRecord(Model):
    """What the run's second stage did (methods/stage.py)."""

    part: Text
    epochs: Count
    lr: NonNegative
    weight_decay: NonNegative = 0.0
    trains: list[Text]  # the parameters it trained; every other one was frozen
    stopped_early: bool = False  # its part ended it before its epochs (SADE's test-time stage once a weight collapses)
    frozen_batchnorm: bool
    trained_on: Literal["train", "test images, unlabeled"] = "train"  # SADE's test-time aggregation: the test images, labels hidden
    chosen: dict[str, JsonValue]  # what it chose after training, e.g. tau_norm's tau on the validation split
    history: list[EpochRecord]


class StagesRecord(Model):
    representation: RepresentationRecord
    classifier: ClassifierStageRecord | None = None  # absent for prediction-time parts only (posthoc_la)


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


def range_problems(where: str, value: float, low: float | None, high: float | None) -> list[tuple[str, str]]:
    if not math.isfinite(value):
        return [(where, "is not finite")]
    if low is not None and value < low:
        return [(where, f"{value:g} is below the minimum {low:g}")]
    if high is not None and value > high:
        return [(where, f"{value:g} is above the maximum {high:g}")]
    return []


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

