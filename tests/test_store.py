import json

import pytest

from fake_records import TRAIN, fake_record
from tailbench.results.records import iter_runs
from tailbench.results.store import is_complete, run_dir, write_run
from tailbench.storage.atomic import write_atomic


def test_write_atomic_leaves_no_partial_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    target.write_bytes(b"old")

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_done_is_written_last_and_incomplete_runs_are_ignored(tmp_path):
    complete = fake_record(tmp_path, "b", "ce", 0)
    assert is_complete(complete)
    incomplete = run_dir(tmp_path, "b", "ce", 1)
    incomplete.mkdir(parents=True)
    result = json.loads((complete / "result.json").read_text())
    (incomplete / "result.json").write_text(json.dumps({**result, "seed": 1}))
    runs = iter_runs(tmp_path)
    assert [r.seed for r in runs] == [0]
    assert runs[0].per_class["test_acc"].tolist() == pytest.approx([min(1.0, 0.2 + 0.006 * n) for n in TRAIN])


def test_a_record_the_models_refuse_is_one_line_for_readers(tmp_path):
    from tailbench.errors import UserError

    directory = fake_record(tmp_path, "b", "ce", 0)
    result = json.loads((directory / "result.json").read_text())
    result["summary"]["accuracy"] = "high"
    (directory / "result.json").write_text(json.dumps(result))
    with pytest.raises(UserError, match="summary.accuracy: expected a number, got string; a run record must pass"):
        iter_runs(tmp_path)


def test_non_finite_numbers_are_written_as_null(tmp_path):
    directory = run_dir(tmp_path, "b", "ce", 0)
    write_run(directory, {"summary": {"few_shot_accuracy": float("nan")}}, [{"class": 0, "x": float("nan")}])
    assert json.loads((directory / "result.json").read_text())["summary"]["few_shot_accuracy"] is None
    assert (directory / "per_class.csv").read_text().splitlines()[1] == "0,"
