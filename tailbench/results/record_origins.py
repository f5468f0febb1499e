"""Where a record's network came from when tailbench did not train it in one go: a model trained
outside tailbench (its card, checkpoint and code), or a two-stage run's stage-1 network and second
stage."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field, JsonValue, model_validator

from tailbench.results.record_types import Model, Text, Count, Positive, NonNegative, Sha256, problems_error
from tailbench.results.record_parts import EpochRecord



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
