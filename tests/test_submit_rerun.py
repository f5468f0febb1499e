"""`tailbench submit` (schema validation, atomic copies) and `tailbench rerun` on a real digits-lt record."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from fake_records import fake_record
from record_edits import BENCHMARK, copy_of, delete_field, edit_result, set_field
from tailbench.results.records import iter_runs
from tailbench.submission.validate import validate_run


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """One real run: digits-lt, ce, seed 0, one epoch, on the CPU."""
    from tailbench.cli import main

    out = tmp_path_factory.mktemp("runs")
    assert main(["run", "--dataset", "digits-lt", "--method", "ce", "--seed", "0", "--epochs", "1", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    return out / BENCHMARK / "ce" / "seed-0"


def edit_table(directory, change):
    path = directory / "per_class.csv"
    rows = list(csv.reader(io.StringIO(path.read_text())))
    rows = change(rows)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue())


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_the_harness_writes_records_that_validate(record):
    checked = validate_run(record)
    assert checked.ok, checked.problems
    assert checked.record.benchmark == BENCHMARK


def test_a_valid_submission_is_copied_byte_for_byte(record, cli, tmp_path):
    results = tmp_path / "results"
    result = cli("submit", record, "--results", results)
    assert result.code == 0, result.err
    target = results / BENCHMARK / "ce" / "seed-0"
    assert "copied" in result.out and str(target) in result.out
    assert files_under(results) == [BENCHMARK, f"{BENCHMARK}/ce", f"{BENCHMARK}/ce/seed-0",
                                    f"{BENCHMARK}/ce/seed-0/done", f"{BENCHMARK}/ce/seed-0/per_class.csv",
                                    f"{BENCHMARK}/ce/seed-0/per_image.csv.gz", f"{BENCHMARK}/ce/seed-0/result.json"]
    for name in ("result.json", "per_class.csv", "per_image.csv.gz", "done"):
        assert (target / name).read_bytes() == (record / name).read_bytes()
    assert [r.seed for r in iter_runs(results)] == [0]
    again = cli("submit", record, "--results", results)
    assert again.code == 0 and "unchanged" in again.out


def test_a_folder_of_runs_is_submitted_run_by_run(record, cli, tmp_path):
    results = tmp_path / "results"
    result = cli("submit", record.parents[2], "--results", results)
    assert result.code == 0, result.err
    assert (results / BENCHMARK / "ce" / "seed-0" / "done").is_file()


def _drop_column(name):
    def change(rows):
        index = rows[0].index(name)
        return [r[:index] + r[index + 1:] for r in rows]
    return change


def _set_cell(row, column, value):
    def change(rows):
        rows[row][rows[0].index(column)] = value
        return rows
    return change


INVALID = {
    "missing field": (lambda d: edit_result(d, delete_field(["summary", "accuracy"])), "summary.accuracy: missing"),
    "wrong type": (lambda d: edit_result(d, set_field(["seed"], "0")), "seed: expected an integer, got string"),
    "wrong type nested": (lambda d: edit_result(d, set_field(["recipe", "epochs"], 1.5)), "recipe.epochs: expected an integer, got number"),
    "out-of-range accuracy": (lambda d: edit_result(d, set_field(["summary", "accuracy"], 1.5)), "summary.accuracy: 1.5 is above the maximum 1"),
    "out-of-range per-class accuracy": (lambda d: edit_table(d, _set_cell(1, "test_acc", "1.5")), "per_class.csv row 1 test_acc: 1.5 is above the maximum 1"),
    "negative eKLD": (lambda d: edit_table(d, _set_cell(2, "ekld_rot", "-0.5")), "per_class.csv row 2 ekld_rot: -0.5 is below the minimum 0"),
    "wrong per_class columns": (lambda d: edit_table(d, _drop_column("consistency_bg")), "per_class.csv columns: missing consistency_bg"),
    "wrong row count": (lambda d: edit_table(d, lambda rows: rows[:-1]), "per_class.csv rows: 9 rows; the dataset has 10 classes"),
    "wrong train count": (lambda d: edit_table(d, _set_cell(1, "train_count", "999")), "per_class.csv row 1 train_count: is 999; the manifest has"),
    "manifest sha mismatch": (lambda d: edit_result(d, set_field(["dataset", "manifest_sha256"], "0" * 64)),
                              "dataset.manifest_sha256: 0000000000000000... does not match the registry's frozen manifest for digits-lt"),
    "no provenance": (lambda d: edit_result(d, delete_field(["provenance"])), "provenance: missing"),
    "provenance without packages": (lambda d: edit_result(d, delete_field(["provenance", "packages"])), "provenance.packages: missing"),
    "incomplete run": (lambda d: (d / "done").unlink(), "done: missing: the run is incomplete"),
    "unknown field": (lambda d: edit_result(d, set_field(["extra"], 1)), "extra: unknown field (not in run-record schema version 2)"),
    "future schema": (lambda d: edit_result(d, set_field(["schema_version"], 3)), "schema_version: 3 is not supported"),
    "not JSON": (lambda d: (d / "result.json").write_text('{"accuracy": NaN}'), "result.json: is not valid JSON (NaN is not allowed"),
    "summary disagrees with the table": (lambda d: edit_result(d, set_field(["summary", "balanced_accuracy"], 0.123)),
                                         "summary.balanced_accuracy: 0.123 is not the mean of per_class.csv test_acc"),
    "tampered recipe": (lambda d: edit_result(d, set_field(["recipe", "lr"], 0.5)), "recipe.lr: 0.5 differs from recipe 'digits'"),
    "mislabelled benchmark": (lambda d: edit_result(d, set_field(["benchmark"], "digits-lt")), "benchmark: 'digits-lt' does not follow"),
    "path in the method name": (lambda d: edit_result(d, set_field(["method", "spec"], "../ce")), "method.spec: '../ce' cannot name a folder"),
    "unknown hyper-parameter": (lambda d: edit_result(d, set_field(["method", "hparams", "ce"], {"gamma": 2.0})),
                                "method.hparams.ce.gamma: ce has no such hyper-parameter here"),
    "changed names nothing": (lambda d: edit_result(d, set_field(["method", "changed"], {"ce.eps": 0.2})),
                              "method.changed.ce.eps: names no hyper-parameter in method.hparams"),
    "a source checksum that is not the pinned one": (lambda d: edit_result(d, set_field(["dataset", "sources", 0, "sha256"], "0" * 64)),
                                                     "dataset.sources[0].sha256: 0000000000000000... is not a checksum this tailbench pins for digits-lt's files"),
    "no sources": (lambda d: edit_result(d, set_field(["dataset", "sources"], [])), "dataset.sources: is empty"),
    "a built-in part of the wrong kind": (lambda d: edit_result(d, set_field(["method", "parts", 0, "kind"], "rule")),
                                          "method.parts[0].kind: is 'rule'; the built-in 'ce' is a loss"),
    "a built-in part that does not exist": (
        lambda d: edit_result(d, lambda r: (r["method"]["parts"][0].update(name="tb_secret"), r["method"].update(spec="tb_secret", hparams={"tb_secret": {}}))),
        "method.parts[0]: 'tb_secret' is recorded as built in, but this tailbench has no built-in part of that name"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_record_is_rejected_with_its_reason_and_nothing_copied(record, cli, tmp_path, case):
    break_it, reason = INVALID[case]
    candidate = copy_of(record, tmp_path)
    break_it(candidate)
    results = tmp_path / "results"
    result = cli("submit", candidate, "--results", results)
    assert result.code == 2 and "Traceback" not in result.err
    lines = result.err.strip().splitlines()  # one line, or a head line and one line per problem
    assert lines[0].startswith(f"tailbench submit: error: rejected {candidate}: "), lines
    assert len(lines) == 1 or all(line.startswith("  ") for line in lines[1:]), lines
    assert reason in result.err, result.err
    assert not results.exists()


def test_valid_records_are_copied_and_invalid_ones_rejected_in_one_call(record, cli, tmp_path):
    bad = copy_of(record, tmp_path, "bad")
    (bad / "done").unlink()
    results = tmp_path / "results"
    result = cli("submit", record, bad, "--results", results)
    assert result.code == 2
    assert "done: missing" in result.error_line() and "copied" in result.out
    assert [r.seed for r in iter_runs(results)] == [0]


def test_a_different_record_at_the_target_is_refused_unless_replace(record, cli, tmp_path):
    results = tmp_path / "results"
    assert cli("submit", record, "--results", results).code == 0
    newer = copy_of(record, tmp_path, "newer")
    edit_result(newer, set_field(["provenance", "wall_seconds"], 123.0))
    refused = cli("submit", newer, "--results", results)
    assert refused.code == 2 and "pass --replace" in refused.error_line()
    target = results / BENCHMARK / "ce" / "seed-0"
    assert target.joinpath("result.json").read_bytes() == record.joinpath("result.json").read_bytes()
    replaced = cli("submit", newer, "--results", results, "--replace")
    assert replaced.code == 0 and "replaced" in replaced.out
    assert json.loads(target.joinpath("result.json").read_text())["provenance"]["wall_seconds"] == 123.0
    assert sorted(p.name for p in target.parent.iterdir()) == ["seed-0"]  # no staging or old folder left


def test_an_interrupted_copy_leaves_nothing_behind(record, cli, tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("tailbench.storage.staging.os.rename", interrupted)  # the publishing rename
    results = tmp_path / "results"
    result = cli("submit", record, "--results", results)
    assert result.code == 130
    assert not results.exists()


def test_staging_folders_are_invisible_to_readers(record, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(record, results / BENCHMARK / "ce" / ".seed-0.submit-abc")
    assert iter_runs(results) == []


def test_rerun_of_a_cpu_record_matches_exactly(record, cli, tmp_path):
    results = tmp_path / "results"
    assert cli("submit", record, "--results", results).code == 0
    result = cli("rerun", BENCHMARK, "ce", "--results", results)
    assert result.code == 0, result.err
    assert "exact match (the record's code, on cpu as the record)" in result.out
    assert "per_class.csv: identical" in result.out
    assert "agree: all" in result.out and "NO" not in result.out


def test_a_cpu_rerun_uses_the_records_thread_count(tmp_path, cli):
    """The thread count changes a CPU run's float sums: a record made with 1 thread is rerun with
    1, whatever this process's default, and so matches exactly."""
    import torch

    from tailbench.devices import torch_threads
    from tailbench.cli import main

    out = tmp_path / "runs"
    with torch_threads(1):
        assert main(["run", "--dataset", "digits-lt", "--method", "ce+drs", "--epochs", "2", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    made = out / "digits-lt@epochs=2" / "ce+drs" / "seed-0"
    assert json.loads((made / "result.json").read_text())["provenance"]["device"] == "cpu (1 threads)"
    results = tmp_path / "results"
    assert cli("submit", made, "--results", results).code == 0
    with torch_threads(3):
        result = cli("rerun", "digits-lt@epochs=2", "ce+drs", "--results", results)
        assert torch.get_num_threads() == 3
    assert result.code == 0, result.out + result.err
    assert "on cpu with 1 thread(s), as the record" in result.out
    assert "per_class.csv: identical" in result.out


def test_recorded_cpu_threads_reads_what_device_name_writes():
    from tailbench.devices import device_name, recorded_cpu_threads, torch_threads

    import torch

    with torch_threads(2):
        assert recorded_cpu_threads(device_name(torch.device("cpu"))) == 2
    assert recorded_cpu_threads("NVIDIA H200") is None


CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 sse4_1 sse4_2 fma avx avx2 avx512f avx512bw amx_tile ht f16c
"""


def test_the_record_names_the_cpus_vector_instructions():
    from tailbench.benchmarks.provenance import cpu_model, cpu_vector_isa

    assert cpu_model(CPUINFO) == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu_vector_isa(CPUINFO) == "amx_tile avx avx2 avx512bw avx512f f16c fma sse4_1 sse4_2"
    assert cpu_vector_isa("processor: 0\n") == ""


def test_the_rerun_says_whether_the_cpu_can_reproduce_the_record(monkeypatch, record, cli, tmp_path):
    from tailbench.benchmarks import rerun as rerun_module
    from tailbench.benchmarks.provenance import cpu_vector_isa

    here = {"cpu": "X", "cpu_vector_isa": cpu_vector_isa(CPUINFO)}
    monkeypatch.setattr(rerun_module, "machine", lambda: here)
    assert "the record does not name its CPU's vector instructions" in rerun_module.cpu_kind_note({"platform": "Linux"})
    assert "an exact match is expected" in rerun_module.cpu_kind_note(dict(here))
    other = rerun_module.cpu_kind_note({"cpu": "Y", "cpu_vector_isa": "avx avx2 fma sse4_1 sse4_2 avx512_vnni"})
    assert "lacks: avx512_vnni; adds: amx_tile avx512bw avx512f f16c" in other
    # A record the harness writes names this machine's CPU, so its rerun here expects an exact match.
    results = tmp_path / "results"
    assert cli("submit", record, "--results", results).code == 0
    monkeypatch.undo()
    result = cli("rerun", BENCHMARK, "ce", "--results", results)
    assert "an exact match is expected" in result.out, result.out


def test_rerun_reports_a_disagreement_with_exit_code_1(record, cli, tmp_path, monkeypatch):
    """The stored number is off by 0.01; the rerun (stubbed: the true record) disagrees."""
    import tailbench.benchmarks.runner as runner

    results = tmp_path / "results"
    stored = copy_of(record, tmp_path, "results")
    edit_result(stored, lambda r: r["summary"].update(accuracy=r["summary"]["accuracy"] + 0.01))

    def replay(resolved):
        target = resolved.directory
        shutil.copytree(record, target)
        return target

    monkeypatch.setattr(runner, "run", replay)
    result = cli("rerun", BENCHMARK, "ce", "--results", results)
    assert result.code == 1
    assert "DISAGREE: 1 of" in result.out and "(accuracy)" in result.out
    loose = cli("rerun", BENCHMARK, "ce", "--results", results, "--tolerance", "0.02")
    assert loose.code == 0 and "explicit tolerance 0.02" in loose.out


def test_rerun_rebuilds_the_stored_config(record):
    from tailbench.benchmarks.rerun import config_from_record
    from tailbench.benchmarks.runner import resolve

    from tailbench.results.records import load_record

    config = config_from_record(load_record(record / "result.json"), out=record)
    assert (config.dataset, config.method, config.seed, config.epochs, config.device) == ("digits-lt", "ce", 0, 1, "cpu")
    assert resolve(config).benchmark == BENCHMARK


def test_rerun_tolerance_comes_from_the_seed_spread(tmp_path):
    from tailbench.benchmarks.rerun import entry_runs, tolerances
    from tailbench.errors import UserError

    for seed in (0, 1, 2):
        fake_record(tmp_path, "digits-lt", "ce", seed)
    runs = entry_runs(tmp_path, "digits-lt", "ce")
    stored = runs[0].result  # a record of other code: no exact match, whatever the device
    allowed, how = tolerances(runs, ["accuracy"], None, stored, "NVIDIA H200")
    values = [r.summary["accuracy"] for r in runs]
    mean = sum(values) / 3
    assert allowed["accuracy"] == pytest.approx(2 * (sum((v - mean) ** 2 for v in values) / 2) ** 0.5)
    assert "3 seeds" in how
    one = entry_runs(tmp_path, "digits-lt", "ce")[:1]
    with pytest.raises(UserError, match="pass --tolerance"):
        tolerances(one, ["accuracy"], None, {**stored, "provenance": {**stored["provenance"], "device_type": "cuda"}}, "NVIDIA H200")
    assert tolerances(one, ["accuracy"], None, stored, "cpu")[0] == {"accuracy": 0.0}


def test_rerun_is_exact_on_the_same_kind_of_gpu_with_the_same_code(tmp_path):
    from tailbench.benchmarks.provenance import code_digest
    from tailbench.benchmarks.rerun import entry_runs, tolerances

    for seed in (0, 1, 2):
        fake_record(tmp_path, "digits-lt", "ce", seed)
    runs = entry_runs(tmp_path, "digits-lt", "ce")
    gpu = {**runs[0].result["provenance"], "device": "NVIDIA H200", "device_type": "cuda", "code_sha256": code_digest(),
           "runtime": {"memory_format": "contiguous", "eval_batch_size": 4096, "captured_steps": True, "deterministic": True, "train_step": "cuda graphs (2 captured)"}}
    stored = {**runs[0].result, "provenance": gpu}
    assert tolerances(runs, ["accuracy"], None, stored, "NVIDIA H200") == ({"accuracy": 0.0}, "exact match (the record's code, on NVIDIA H200 as the record)")
    assert "seeds" in tolerances(runs, ["accuracy"], None, stored, "NVIDIA H100 80GB HBM3")[1]
    other_code = {**stored, "provenance": {**gpu, "code_sha256": "0" * 64}}
    assert "seeds" in tolerances(runs, ["accuracy"], None, other_code, "NVIDIA H200")[1]
    nondeterministic = {**stored, "provenance": {**gpu, "runtime": {**gpu["runtime"], "deterministic": False}}}
    assert "seeds" in tolerances(runs, ["accuracy"], None, nondeterministic, "NVIDIA H200")[1]


def test_rerun_of_a_missing_entry_is_one_line(cli, tmp_path):
    fake_record(tmp_path, "digits-lt", "ce", 0)
    result = cli("rerun", "digits-lt", "ldam", "--results", tmp_path)
    assert result.code == 2 and "no complete run records for digits-lt ldam" in result.error_line() and "digits-lt ce" in result.err
    result = cli("rerun", "digits-lt", "ce", "--results", tmp_path, "--seed", "5")
    assert result.code == 2 and "has no seed 5" in result.error_line()


def test_rerun_of_an_unregistered_method_asks_for_its_file(cli, tmp_path):
    fake_record(tmp_path, "digits-lt", "tb_unregistered", 0)
    result = cli("rerun", "digits-lt", "tb_unregistered", "--results", tmp_path)
    assert result.code == 2 and "--method-file" in result.error_line()
    assert result.out == ""


def test_submit_of_a_missing_folder_is_one_line(cli, tmp_path):
    result = cli("submit", tmp_path / "nope", "--results", tmp_path / "results")
    assert result.code == 2 and result.error_line().endswith("nope does not exist; pass run folders (OUT/<benchmark>/<method>/seed-<seed>) or a folder above them")
    assert not (tmp_path / "results").exists()


def test_a_changed_hyper_parameter_cannot_hide_under_the_plain_spec():
    from tailbench.submission.validate import _check_changed

    def method(gamma, changed):
        return {"spec": "focal", "parts": [{"name": "focal", "kind": "loss", "paper": "-"}],
                "hparams": {"focal": {"gamma": gamma}}, "changed": changed}

    assert _check_changed(method(1.0, {})) == []
    assert _check_changed(method(2.0, {"focal.gamma": 2.0})) == []
    hidden = _check_changed(method(2.0, {}))
    assert hidden and hidden[0][0] == "method.changed.focal.gamma" and "missing though the value differs" in hidden[0][1]
    listed = _check_changed(method(1.0, {"focal.gamma": 1.0}))
    assert listed and "listed though the value equals the default" in listed[0][1]
    assert _check_changed(method(2.0, {"focal.gamma": 3.0})) == []  # the model's check: changed must hold the value


def test_changed_must_hold_the_value_in_hparams(record, cli, tmp_path):
    candidate = copy_of(record, tmp_path)
    edit_result(candidate, lambda r: r["method"].update(changed={"ce.eps": 0.2}, hparams={"ce": {"eps": 0.1}}))
    result = cli("submit", candidate, "--results", tmp_path / "results")
    assert result.code == 2 and "method.changed.ce.eps: is 0.2; method.hparams holds 0.1" in result.error_line()


def _passed_in(commit: str, digest: str):
    def change(result):
        result["provenance"]["git"] = {"commit": commit, "dirty": None, "source": "TAILBENCH_COMMIT"}
        result["provenance"]["code_sha256"] = digest
    return change


def test_a_passed_in_commit_is_checked_against_the_code_digest(record, cli, tmp_path):
    """A GPU machine's copy of the tree has no .git: its records name the commit through
    $TAILBENCH_COMMIT, and submit checks that the code they ran is that commit's."""
    import subprocess

    from tailbench.benchmarks.provenance import code_digest_of
    from tailbench.submission.code_check import files_at_commit

    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    true_digest = code_digest_of(files_at_commit(head))
    good = copy_of(record, tmp_path, "good")
    edit_result(good, _passed_in(head, true_digest))
    assert cli("submit", good, "--results", tmp_path / "results").code == 0
    lying = copy_of(record, tmp_path, "lying")
    edit_result(lying, _passed_in(head, "0" * 64))
    result = cli("submit", lying, "--results", tmp_path / "results2")
    assert result.code == 2 and "provenance.code_sha256: does not match the files of commit" in result.out + result.err
    unknown = copy_of(record, tmp_path, "unknown")
    edit_result(unknown, _passed_in("f" * 40, true_digest))
    result = cli("submit", unknown, "--results", tmp_path / "results3")
    assert result.code == 2 and "is not a commit of this checkout" in result.out + result.err


def test_a_malformed_passed_in_commit_stops_the_run_before_it_starts(cli, tmp_path, monkeypatch):
    from tailbench.benchmarks import provenance

    monkeypatch.setenv("TAILBENCH_COMMIT", "not-a-commit")
    provenance.git_commit.cache_clear()
    try:
        result = cli("run", "--dataset", "digits-lt", "--method", "ce", "--epochs", "1", "--out", tmp_path / "runs", "--quiet")
    finally:
        provenance.git_commit.cache_clear()
    assert result.code == 2 and "$TAILBENCH_COMMIT='not-a-commit' is not a full 40-hex-digit git commit" in result.error_line()
    assert not (tmp_path / "runs").exists()


def test_a_passed_in_commit_wins_over_the_copys_own_git(monkeypatch):
    """A GPU machine's copy may carry a .git of another commit with the copied files on top: the
    commit passed in names the code, and the record says where it came from."""
    from tailbench.benchmarks import provenance

    monkeypatch.setenv("TAILBENCH_COMMIT", "AB" * 20)
    provenance.git_commit.cache_clear()
    try:
        assert provenance.git_commit() == {"commit": "ab" * 20, "dirty": None, "source": "TAILBENCH_COMMIT"}
    finally:
        provenance.git_commit.cache_clear()
    monkeypatch.delenv("TAILBENCH_COMMIT")
    assert provenance.git_commit()["source"] == "git"
    provenance.git_commit.cache_clear()
