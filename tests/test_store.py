import json

import pytest

from tailbench.results.records import iter_runs
from tailbench.results.store import is_complete, run_dir, write_atomic, write_run


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
    rows = [{"class": 0, "class_name": "a", "train_count": 3, "test_acc": 0.5}]
    result = {"benchmark": "b", "method": {"spec": "ce"}, "seed": 0, "summary": {}}
    complete = run_dir(tmp_path, "b", "ce", 0)
    write_run(complete, result, rows)
    assert is_complete(complete)
    incomplete = run_dir(tmp_path, "b", "ce", 1)
    incomplete.mkdir(parents=True)
    (incomplete / "result.json").write_text(json.dumps({**result, "seed": 1}))
    runs = iter_runs(tmp_path)
    assert [r.seed for r in runs] == [0]
    assert runs[0].per_class["test_acc"].tolist() == [0.5]


def test_non_finite_numbers_are_written_as_null(tmp_path):
    directory = run_dir(tmp_path, "b", "ce", 0)
    write_run(directory, {"summary": {"few_shot_accuracy": float("nan")}}, [{"class": 0, "x": float("nan")}])
    assert json.loads((directory / "result.json").read_text())["summary"]["few_shot_accuracy"] is None
    assert (directory / "per_class.csv").read_text().splitlines()[1] == "0,"
