"""A record is checked as a whole and within bounds: a summary that its per_class.csv does not
give, oversized or absurd values, deep JSON and a non-empty `done` are each refused in one line
(exit 2), by `submit` and by the leaderboard, and nothing is copied."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from record_edits import BENCHMARK, copy_of, edit_result, set_field
from tailbench.submission.consistency import recomputed_summary
from tailbench.results.records import iter_runs
from tailbench.submission.validate import validate_run


def submit_line(cli, candidate, tmp_path):
    results = tmp_path / "results"
    outcome = cli("submit", candidate, "--results", results)
    assert outcome.code == 2, outcome.out
    assert not results.exists()
    return outcome.error_line()


def test_the_harness_record_is_self_consistent(digits_record):
    result = json.loads((digits_record / "result.json").read_text())
    rows = list(csv.DictReader(io.StringIO((digits_record / "per_class.csv").read_text())))
    recomputed = recomputed_summary(result, rows)
    assert set(recomputed) <= set(result["summary"])
    assert all(recomputed[key] == result["summary"][key] for key in recomputed)


def test_the_lying_record_of_the_issue_is_refused(digits_record, cli, tmp_path):
    """accuracy 0.999, tail accuracy 0.999, worst class 1.0, tail eKLD 0 and Spearman 1 over a
    per_class.csv that says otherwise."""
    candidate = copy_of(digits_record, tmp_path)

    def lie(result):
        result["summary"].update({"accuracy": 0.999, "tail_accuracy": 0.999, "worst_class_accuracy": 1.0,
                                  "tail_ekld_rot": 0.0, "spearman_ekld_count_rot": 1.0})

    edit_result(candidate, lie)
    results = tmp_path / "results"
    outcome = cli("submit", candidate, "--results", results)
    assert outcome.code == 2 and not results.exists() and "Traceback" not in outcome.err
    head, *problems = outcome.err.strip().splitlines()
    assert head.endswith(": 5 problems")  # every problem listed, one per line
    assert problems[0].strip().startswith("summary.accuracy: 0.999 is not what per_class.csv gives")
    assert {p.strip().split(":")[0] for p in problems} == {
        "summary.accuracy", "summary.tail_accuracy", "summary.worst_class_accuracy", "summary.tail_ekld_rot", "summary.spearman_ekld_count_rot"}


SUMMARY_KEYS = [
    "accuracy", "balanced_accuracy", "val_balanced_accuracy", "many_shot_accuracy", "medium_shot_accuracy", "few_shot_accuracy",
    "head_accuracy", "tail_accuracy", "worst_class_accuracy", "ekld_rot", "head_ekld_rot", "tail_ekld_rot", "consistency_rot",
    "spearman_ekld_count_rot", "ekld_bg", "head_ekld_bg", "tail_ekld_bg", "consistency_bg", "spearman_ekld_count_bg",
]


@pytest.mark.parametrize("key", SUMMARY_KEYS)
def test_every_summary_number_must_be_what_the_table_gives(digits_record, tmp_path, key):
    candidate = copy_of(digits_record, tmp_path)
    result = json.loads((candidate / "result.json").read_text())
    stored = result["summary"][key]
    if stored is None:  # a metric with no class in its group: any number is a lie
        lie = 0.5
    else:
        lie = stored - 0.01 if stored >= 0.01 else stored + 0.01
    edit_result(candidate, lambda r: r["summary"].__setitem__(key, lie))
    checked = validate_run(candidate)
    assert [where for where, _ in checked.problems] == [f"summary.{key}"], checked.problems


def test_a_per_class_accuracy_must_be_a_whole_number_of_images(digits_record, tmp_path):
    candidate = copy_of(digits_record, tmp_path)
    rows = list(csv.reader(io.StringIO((candidate / "per_class.csv").read_text())))
    column = rows[0].index("test_acc")
    rows[3][column] = repr(float(rows[3][column]) + 0.001 if float(rows[3][column]) < 0.5 else float(rows[3][column]) - 0.001)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    (candidate / "per_class.csv").write_text(buffer.getvalue())
    table = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    edit_result(candidate, lambda r: r["summary"].update(recomputed_summary(r, table)))  # a summary that agrees
    checked = validate_run(candidate)
    assert checked.problems[0][0] == "per_class.csv row 3 test_acc" and "not a whole number of correct images out of 40" in checked.problems[0][1]


HOSTILE = {
    "10 MB string in provenance": (set_field(["provenance", "machine", "node"], "x" * 10_000_000),
                                   "result.json: provenance.machine.node is a string of 10,000,000 characters; the limit is 65,536"),
    "10 MB string in a part's paper": (set_field(["method", "parts", 0, "paper"], "p" * 10_000_000),
                                       "method.parts[0].paper is a string of 10,000,000 characters"),
    "huge key": (set_field(["summary", "learned_" + "k" * 1000], 1.0), "has a key of 1,008 characters; the limit is 256"),
    "seed beyond the range": (set_field(["seed"], 2**40), "seed: 1099511627776 is above the largest seed tailbench runs"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_values_are_refused_in_one_line(digits_record, cli, tmp_path, case):
    change, reason = HOSTILE[case]
    candidate = copy_of(digits_record, tmp_path)
    edit_result(candidate, change)
    assert reason in submit_line(cli, candidate, tmp_path)


RAW = {
    "400-digit integer": (lambda text: text.replace('"seed": 0', '"seed": ' + "7" * 400, 1), "the integer 777777777777777777777777... (400 digits) is outside the 64-bit range"),
    "200,000-deep nesting": (lambda text: "[" * 200_000 + "]" * 200_000, "nests deeper than 32 levels"),
    "1e999": (lambda text: text.replace('"seed": 0', '"seed": 1e999', 1), "the number 1e999 is not finite"),
    "not UTF-8": (lambda text: "\udcff", "is not UTF-8 text"),
    "over 16 MiB": (lambda text: text + " " * (16 * 2**20), "is over 16,777,216 bytes, the limit"),
}


@pytest.mark.parametrize("case", list(RAW))
def test_malformed_json_is_refused_in_one_line(digits_record, cli, tmp_path, case):
    change, reason = RAW[case]
    candidate = copy_of(digits_record, tmp_path)
    text = (candidate / "result.json").read_text()
    (candidate / "result.json").write_bytes(change(text).encode("utf-8", "surrogateescape"))
    line = submit_line(cli, candidate, tmp_path)
    assert "result.json" in line and reason in line, line


def test_a_non_empty_done_is_refused(digits_record, cli, tmp_path):
    candidate = copy_of(digits_record, tmp_path)
    (candidate / "done").write_text("I promise this run finished")
    assert "done: holds 27 bytes; the marker of a finished run is an empty file" in submit_line(cli, candidate, tmp_path)


@pytest.mark.parametrize("case", ["400-digit integer", "200,000-deep nesting", "1e999"])
def test_the_leaderboard_reports_a_hostile_committed_record_in_one_line(digits_record, cli, tmp_path, case):
    """A record placed in results/ by hand, never submitted."""
    change, reason = RAW[case]
    results = tmp_path / "results"
    candidate = copy_of(digits_record, tmp_path, "results")
    (candidate / "result.json").write_text(change((candidate / "result.json").read_text()))
    outcome = cli("leaderboard", "--results", results, "--out", tmp_path / "board")
    assert outcome.code == 2 and reason in outcome.error_line() and str(candidate) in outcome.error_line()


@pytest.mark.parametrize("source, reason", [
    ({"path": "/data/tiny-imagenet-200", "sha256": "ab" * 32, "check": "listing fingerprint, not pinned", "pinned": False}, "unpinned data"),
    ({"path": "/data/k49/k49-train-imgs.npz", "md5": "0" * 32, "expected_md5": "7ac0" + "0" * 28, "unverified": True}, "--allow-unverified-data"),
])
def test_unpinned_or_unverified_data_stays_off_the_committed_leaderboard(digits_record, cli, tmp_path, source, reason):
    candidate = copy_of(digits_record, tmp_path)
    edit_result(candidate, lambda r: r["dataset"]["sources"].append(source))
    line = submit_line(cli, candidate, tmp_path)
    assert "dataset.sources[1]" in line and reason in line


def test_readers_skip_hidden_folders_and_read_each_record_from_one_folder(digits_record, tmp_path):
    results = tmp_path / "results"
    copy_of(digits_record, tmp_path, "results")
    shutil.copytree(digits_record, results / BENCHMARK / "ce" / ".seed-1.submit-abc")
    shutil.copytree(digits_record, results / ".hidden" / BENCHMARK / "ce" / "seed-2")
    assert [r.seed for r in iter_runs(results)] == [0]


def test_every_committed_record_passes_every_check():
    """results/ is what the leaderboard shows: each record must be one `submit` accepts today."""
    from pathlib import Path

    from tailbench.results.records import visible_folders

    root = Path(__file__).resolve().parents[1] / "results"
    folders = [folder for folder, files in visible_folders(root) if "done" in files]
    assert folders, "no committed records found"
    checked = [validate_run(folder) for folder in folders]
    refused = {str(c.directory.relative_to(root)): c.reason() for c in checked if not c.ok}
    assert not refused, refused


def test_every_dataset_pins_its_sources_as_hex_checksums_or_says_it_pins_none():
    import re

    from tailbench.datasets import dataset_names, get_dataset

    for name in dataset_names():
        pinned = get_dataset(name).pinned_checksums()
        assert pinned is None or (pinned and all(re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", value) for value in pinned)), name
