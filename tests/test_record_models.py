"""The typed run record: its committed JSON Schema, old records, and what the models refuse."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fake_records import fake_record
from tailbench.results.record import RunRecord, json_schema
from tailbench.results.schema import validate_record

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_json_schema_matches_the_models():
    committed = (ROOT / "docs" / "run-record.schema.json").read_text()
    assert committed == json_schema(), "regenerate it: python -m tailbench.results.record"


def test_every_committed_record_loads_and_writes_back_the_same_json():
    paths = sorted((ROOT / "results").rglob("result.json"))
    assert paths
    versions = set()
    for path in paths:
        stored = json.loads(path.read_text())
        record, problems = validate_record(stored)
        assert record is not None, (path, problems)
        assert record.to_json() == stored, path
        versions.add(record.schema_version)
    assert versions <= {1, 2}


def test_a_version_1_record_still_loads_and_writes_back_the_same_json():
    # A GPU record of the paper recipe (fmnist-bg-lt / ce / seed 0), retired from results/ when the
    # recipe's eKLD protocol became the reference's; kept here as the version-1 example.
    stored = json.loads((ROOT / "tests" / "data" / "schema_v1_result.json").read_text())
    record, problems = validate_record(stored)
    assert record is not None, problems
    assert record.schema_version == 1 and record.to_json() == stored
    assert record.recipe.ekld_protocol == "drawn"  # what a record from before protocols were named meant


@pytest.fixture
def record_json(tmp_path) -> dict:
    directory = fake_record(tmp_path, "digits-lt", "ce+mixup", 0)
    return json.loads((directory / "result.json").read_text())


def problems_after(record_json: dict, change) -> list[tuple[str, str]]:
    broken = copy.deepcopy(record_json)
    change(broken)
    record, problems = validate_record(broken)
    assert record is None
    return problems


@pytest.mark.parametrize("change, expected", [
    (lambda r: r["provenance"].update(started="2026-01-01T00:00:00"), ("provenance.started", "'2026-01-01T00:00:00' has no UTC offset")),
    (lambda r: r["provenance"].update(finished="soon"), ("provenance.finished", "'soon' is not an ISO 8601 timestamp")),
    (lambda r: r["provenance"].update(finished=1767225600), ("provenance.finished", "expected an ISO 8601 timestamp string, got int")),
    (lambda r: r["summary"].update(learned_width="wide"), ("summary.learned_width", "expected a number, got string")),
    (lambda r: r["summary"].update(ekld_rot=-1.0), ("summary.ekld_rot", "-1 is below the minimum 0")),
    (lambda r: r["summary"].pop("tail_ekld_bg"), ("summary.tail_ekld_bg", "missing")),
    (lambda r: r["history"][0].update(train_acc=None, epoch=3), ("history[0].epoch", "is 3, expected 0")),
    (lambda r: r["dataset"]["options"].update(n_max=[1]), ("dataset.options.n_max", "expected a string, a number or a boolean, got list")),
    (lambda r: r["recipe"]["overrides"].update(epochs="1"), ("recipe.overrides.epochs", "expected a number, got string")),
    (lambda r: r["method"]["parts"][1].pop("origin"), ("method.parts[1].origin", "missing")),
    (lambda r: r["method"].pop("changed"), ("method.changed", "missing")),
    (lambda r: r["method"]["parts"][0].update(origin="file"), ("method.parts[0].code", "missing: a part from a file records its source")),
    (lambda r: r["method"]["parts"][0].update(origin="file", code={"file": "x.py", "sha256": "0" * 64, "text": "print()"}),
     ("method.parts[0].code", "is not the hash of the stored text")),
    (lambda r: r.update(schema_version=1), ("method.parts", "origin is recorded from schema version 2 on")),
    (lambda r: r["method"]["parts"][0].update(kind="optimizer"), ("method.parts[0].kind", "\"optimizer\" is not one of 'loss', 'rule', 'augmentation' or 'stage'")),
    (lambda r: r["seed"].__class__ and r.update(seed=True), ("seed", "expected an integer, got boolean")),
])
def test_the_models_name_the_field_and_what_is_wrong(record_json, change, expected):
    problems = problems_after(record_json, change)
    field, reason = expected
    assert any(where == field and reason in why for where, why in problems), problems


def test_a_version_1_record_needs_no_origin_and_no_changed(record_json):
    old = copy.deepcopy(record_json)
    old["schema_version"] = 1
    for part in old["method"]["parts"]:
        del part["origin"]
    del old["method"]["changed"]
    record, problems = validate_record(old)
    assert problems == [] and record.entry == "ce+mixup" and record.to_json() == old


def test_a_record_of_external_code_keeps_the_text_it_ran(tmp_path):
    import hashlib

    text = "# a method file\n"
    code = {"origin": "file", "code": {"file": "mine.py", "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text}}
    directory = fake_record(tmp_path, "digits-lt", "ce", 0, code=code)
    record = RunRecord.model_validate(json.loads((directory / "result.json").read_text()))
    assert record.method.external_parts[0].code.text == text
