"""What every run record holds: the dataset it read, the method and its parts' code, the recipe,
the summary numbers, the epochs' history, where and how it ran, and its per-image evidence."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from tailbench.results.record_types import (
    Count, Model, NonNegative, NumberOverride, Positive, Probability, Scalar, Sha256, Text, Timestamp, problems_error,
)



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
