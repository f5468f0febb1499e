"""Two-stage runs (benchmarks/stages.py) and the decoupled classifiers (methods/decoupled.py):
the shared stage-1 network is the plain run's, trained once and reused; stage 2 trains only what
its part says; a run killed in either stage resumes to the uninterrupted record; rerun retrains
both stages; each part matches its paper's formula on a worked example; bad input is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from tailbench.cli import main

EPOCHS = ["--epochs", "3", "--device", "cpu", "--quiet"]
BENCH = "digits-lt@epochs=3"


def run(out: Path, method: str, *extra: str) -> Path:
    assert main(["run", "--dataset", "digits-lt", "--method", method, *EPOCHS, "--out", str(out), *extra]) == 0
    entry = method + "".join(f"@{hp}" for hp in extra[1::2]) if extra else method
    return out / BENCH / entry / "seed-0"


def counting_stage1_trainings(monkeypatch) -> list[str]:
    from tailbench.benchmarks import stages

    trained: list[str] = []
    real = stages.train

    def counting(model, method, *args, **kwargs):
        trained.append(getattr(method, "spec", type(method).__name__))
        return real(model, method, *args, **kwargs)

    monkeypatch.setattr(stages, "train", counting)
    return trained


def test_the_stage1_network_is_the_plain_runs_and_is_trained_once(isolated_cache, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    monkeypatch.setenv("TAILBENCH_CACHE", str(tmp_path / "the plain run's cache"))
    plain = run(out, "ce")  # offers its network to that cache, not to the one stage 1 trains into
    monkeypatch.setenv("TAILBENCH_CACHE", str(isolated_cache))
    trained = counting_stage1_trainings(monkeypatch)
    adjusted = run(out, "ce+posthoc_la", "--hp", "posthoc_la.tau=0.0")
    # tau = 0 adjusts nothing: the record is the plain run's, byte for byte, from the shared network
    assert (adjusted / "per_class.csv").read_bytes() == (plain / "per_class.csv").read_bytes()
    assert (adjusted / "per_image.csv.gz").read_bytes() == (plain / "per_image.csv.gz").read_bytes()
    losses = [h["loss"] for h in json.loads((plain / "result.json").read_text())["history"]]
    record = json.loads((adjusted / "result.json").read_text())
    assert [h["loss"] for h in record["history"]] == losses
    assert record["stages"]["representation"]["spec"] == "ce" and "classifier" not in record["stages"]
    run(out, "ce+tau_norm")
    run(out, "ce+crt")
    assert trained == ["ce", "StageTraining"]  # stage 1 once for all three; only cRT trains a stage 2
    keys = {json.loads((out / BENCH / m / "seed-0" / "result.json").read_text())["stages"]["representation"]["sha256"]
            for m in ("ce+posthoc_la@posthoc_la.tau=0.0", "ce+tau_norm", "ce+crt")}
    assert len(keys) == 1


def test_a_plain_run_offers_its_network_as_stage1_so_the_two_stage_run_trains_only_its_stage(isolated_cache, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    plain = run(out, "ce")
    (entry,) = (isolated_cache / "stage1" / "digits-lt").iterdir()
    assert (entry / "model.pt").is_file()
    trained = counting_stage1_trainings(monkeypatch)
    retrained = run(out, "ce+crt")
    assert trained == ["StageTraining"]  # stage 1 is the plain run's network, loaded
    record = json.loads((retrained / "result.json").read_text())
    assert record["history"] == json.loads((plain / "result.json").read_text())["history"]
    rerun_out = tmp_path / "reruns"
    monkeypatch.setenv("TAILBENCH_CACHE", str(tmp_path / "trained afresh"))
    afresh = run(rerun_out, "ce+crt")  # with nothing to load, stage 1 trains: the same network
    assert json.loads((afresh / "result.json").read_text())["stages"]["representation"]["sha256"] == record["stages"]["representation"]["sha256"]
    assert (afresh / "per_class.csv").read_bytes() == (retrained / "per_class.csv").read_bytes()


def test_a_rerun_of_a_plain_record_leaves_the_cache_alone(isolated_cache, tmp_path, cli):
    out, results = tmp_path / "runs", tmp_path / "results"
    assert cli("submit", run(out, "ce"), "--results", results).code == 0
    for entry in (isolated_cache / "stage1").rglob("model.pt"):
        entry.unlink()
    result = cli("rerun", BENCH, "ce", "--results", results)
    assert result.code == 0, result.err
    assert not list((isolated_cache / "stage1").rglob("model.pt"))


def test_crt_retrains_only_a_fresh_classifier_and_leaves_the_features_as_stage1_left_them(isolated_cache, tmp_path):
    from tailbench.benchmarks.stages import STAGE1

    out = tmp_path / "runs"
    directory = run(out, "ce+crt")
    record = json.loads((directory / "result.json").read_text())
    classifier = record["stages"]["classifier"]
    assert classifier["trains"] == ["net.fc.weight", "net.fc.bias"] and classifier["frozen_batchnorm"] is True
    assert classifier["epochs"] == 1 and len(classifier["history"]) == 1  # 10/90 of 3 epochs, at least 1
    assert len(record["history"]) == 3  # stage 1's epochs; stage 2's are in stages.classifier
    cached = next((isolated_cache / STAGE1.folder).rglob(STAGE1.final))
    assert torch.load(cached, weights_only=True)["sha256"] == record["stages"]["representation"]["sha256"]


def test_a_rerun_trains_both_stages_again_and_matches(isolated_cache, tmp_path, cli):
    out, results = tmp_path / "runs", tmp_path / "results"
    directory = run(out, "ce+lws")
    assert cli("submit", directory, "--results", results).code == 0
    result = cli("rerun", BENCH, "ce+lws", "--results", results)
    assert result.code == 0, result.out + result.err
    assert "stage-1 network (ce, retrained): identical weights" in result.out
    assert "per_class.csv: identical" in result.out


# -- resume across the boundary ---------------------------------------------------------------------
RESUME = ["run", "--dataset", "digits-lt", "--method", "ce+crt", "--hp", "crt.epochs=3", "--epochs", "4",
          "--checkpoint-every", "1", "--device", "cpu", "--quiet"]
RESUME_RUN = Path("digits-lt@epochs=4") / "ce+crt@crt.epochs=3" / "seed-0"


def without_times(result_json: Path) -> dict:
    result = json.loads(result_json.read_text())
    result["provenance"] = {k: v for k, v in result["provenance"].items() if k not in {"started", "finished", "wall_seconds"}}
    for epoch in result["history"] + result["stages"].get("classifier", {}).get("history", []):
        del epoch["seconds"], epoch["images_per_s"]
    return result


@pytest.mark.parametrize("kill_after_checkpoints", [2, 4])  # stage 1 saves 3 checkpoints, then stage 2 saves 2
def test_a_run_killed_in_either_stage_resumes_to_the_uninterrupted_record(tmp_path, kill_after_checkpoints):
    def process(out: Path, cache: Path, *helper: str) -> subprocess.Popen:
        env = {**os.environ, "TAILBENCH_CACHE": str(cache)}
        return subprocess.Popen([sys.executable, *(helper or ("-m", "tailbench")), *RESUME, "--out", str(out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    reference = process(tmp_path / "reference", tmp_path / "cache-reference")
    marker = tmp_path / "paused"
    helper = str(Path(__file__).parent / "helpers" / "pause_mid_epoch.py")
    paused = process(tmp_path / "runs", tmp_path / "cache", helper, str(kill_after_checkpoints), "1", str(marker))
    deadline = time.time() + 300
    while not marker.exists() and paused.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert marker.exists(), paused.communicate()[1]
    paused.send_signal(signal.SIGKILL)
    paused.communicate(timeout=60)
    assert not (tmp_path / "runs" / RESUME_RUN / "done").exists()
    if kill_after_checkpoints == 2:  # killed in stage 1: its checkpoint is in the asset cache, for any run to resume
        assert list((tmp_path / "cache" / "stage1").rglob(".partial/checkpoint.pt"))
    else:  # killed in stage 2: stage 1 is finished and cached, stage 2's checkpoint is the run's
        assert list((tmp_path / "cache" / "stage1").rglob("model.pt")) and (tmp_path / "runs" / RESUME_RUN / ".partial" / "stage2.pt").exists()
    assert reference.wait(timeout=300) == 0, reference.communicate()[1]
    finished = process(tmp_path / "runs", tmp_path / "cache")
    assert finished.wait(timeout=300) == 0, finished.communicate()[1]
    a, b = tmp_path / "reference" / RESUME_RUN, tmp_path / "runs" / RESUME_RUN
    assert (a / "per_class.csv").read_bytes() == (b / "per_class.csv").read_bytes()
    assert without_times(a / "result.json") == without_times(b / "result.json")
    assert sorted(p.name for p in b.iterdir()) == ["done", "per_class.csv", "per_image.csv.gz", "result.json"]


# -- the papers' formulas on worked examples ---------------------------------------------------------
def test_tau_normalisation_divides_each_class_vector_by_its_norm_to_the_tau():
    from tailbench.models.layers import TauNormalizedClassifier

    weight = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # norms 5 and 1
    features = torch.tensor([[1.0, 1.0]])
    layer = TauNormalizedClassifier(weight, tau=1.0)
    assert torch.allclose(layer(features), torch.tensor([[7.0 / 5.0, 1.0]]))
    layer.tau = 0.0  # the weights as they are, bias dropped
    assert torch.allclose(layer(features), torch.tensor([[7.0, 1.0]]))
    layer.tau = 0.5
    assert torch.allclose(layer(features), torch.tensor([[7.0 / 5.0 ** 0.5, 1.0]]))


def test_tau_is_chosen_on_the_validation_score_from_the_papers_grid():
    from tailbench.methods.decoupled import TauNormalization
    from tailbench.models.layers import TauNormalizedClassifier

    part = object.__new__(TauNormalization)
    part.hp = dict(TauNormalization.hparams)
    assert part.tau_grid() == pytest.approx([i / 10 for i in range(21)])  # 0, 0.1, ..., 2: 21 values
    part.classifier = TauNormalizedClassifier(torch.eye(2))
    scores = {0.7: 0.9, 1.3: 0.9}  # a tie: the smaller tau
    chosen = part.finish(nn.Identity(), lambda: scores.get(round(part.classifier.tau, 6), 0.5))
    assert chosen == {"tau": pytest.approx(0.7), "val_balanced_accuracy": 0.9} and part.classifier.tau == pytest.approx(0.7)


def test_lws_scales_each_class_logit_by_a_learned_factor_that_starts_at_one():
    from tailbench.models.layers import ScaledLogits

    linear = nn.Linear(2, 3)
    layer = ScaledLogits(linear, 3)
    x = torch.randn(4, 2)
    assert torch.equal(layer(x), linear(x))
    with torch.no_grad():
        layer.scales.copy_(torch.tensor([1.0, 2.0, 0.5]))
    assert torch.allclose(layer(x), linear(x) * torch.tensor([1.0, 2.0, 0.5]))


def test_class_aware_sampling_and_the_papers_stage_length():
    from tailbench.methods.base import MethodContext
    from tailbench.methods.decoupled import ClassifierRetraining
    from tailbench.methods.stage import paper_stage_epochs

    assert [paper_stage_epochs(e) for e in (90, 50, 10, 3)] == [10, 6, 1, 1]
    counts = torch.tensor([100, 10, 1])
    part = ClassifierRetraining(MethodContext(3, counts, 3, 2, torch.device("cpu"), 0, (1, 8, 8), None), dict(ClassifierRetraining.hparams))
    per_image = part.sampling_weights(0)[torch.repeat_interleave(torch.arange(3), counts)]
    assert torch.allclose(torch.bincount(torch.repeat_interleave(torch.arange(3), counts), weights=per_image), torch.ones(3, dtype=per_image.dtype))


def test_frozen_batchnorm_keeps_stage1_statistics_unless_asked():
    from tailbench.benchmarks.stages import StageTraining

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2))

    class Stage:
        frozen_batchnorm = True

    StageTraining(None, Stage()).set_train_mode(model)
    assert model.training and model[3].training and not model[1].training
    Stage.frozen_batchnorm = False
    StageTraining(None, Stage()).set_train_mode(model)
    assert model[1].training


# -- bad input -------------------------------------------------------------------------------------------
GREEDY_STAGE = '''
from tailbench.methods import register_method
from tailbench.methods.stage import STAGE_HPARAMS, ClassifierStage


@register_method("greedy")
class Greedy(ClassifierStage):
    hparams = dict(STAGE_HPARAMS)

    def setup(self, model):
        return list(model.parameters())
'''


@pytest.mark.parametrize("args, message", [
    (["--method", "ldam+tau_norm"], "tau_norm rescales the norms of the classifier's class vectors, which ldam's cosine classifier normalises away"),
    (["--method", "ce+crt+lws"], "combines two second stages (crt, lws)"),
    (["--method", "ce+crt+posthoc_la"], "is out of order; write ce+posthoc_la+crt"),
    (["--method", "ce+tau_norm", "--hp", "tau_norm.tau_max=20"], "--hp tau_norm.tau_max=20.0 must be above 0 and at most 10"),
    (["--method", "ce+crt", "--hp", "crt.epochs=-1"], "--hp crt.epochs=-1 must be 0"),
    (["--method", "ldam+drw+wb"], "wb balances the norms of the classifier's class vectors"),
    (["--method", "ce+wb", "--hp", "wb.max_norm=2"], "--hp wb.max_norm=2.0 must be from 0 to 1"),
])
def test_a_meaningless_stage_is_one_line(cli, tmp_path, args, message):
    result = cli("run", "--dataset", "digits-lt", *args, *EPOCHS, "--out", tmp_path / "runs")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert not (tmp_path / "runs").exists()


def test_a_plugin_stage_that_freezes_nothing_is_refused_before_training(cli, tmp_path, isolated_cache):
    plugin = tmp_path / "greedy_stage.py"
    plugin.write_text(GREEDY_STAGE)
    started = time.perf_counter()
    result = cli("run", "--dataset", "digits-lt", "--method", "ce+greedy", "--method-file", plugin, *EPOCHS, "--out", tmp_path / "runs")
    assert result.code == 2 and "stage greedy trains every parameter of the network (it freezes nothing)" in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not list((tmp_path / "runs").rglob("result.json")) and not (isolated_cache / "stage1").exists()
    assert time.perf_counter() - started < 30


def test_a_stage1_network_cached_for_another_dataset_is_refused(isolated_cache, tmp_path, cli):
    from tailbench.benchmarks.stages import STAGE1

    run(tmp_path / "runs", "ce+tau_norm")
    cached = next((isolated_cache / STAGE1.folder).rglob(STAGE1.final))
    payload = torch.load(cached, weights_only=True)
    payload["identity"]["dataset_id"] = "fmnist-rot-lt"
    torch.save(payload, cached)
    result = cli("run", "--dataset", "digits-lt", "--method", "ce+crt", *EPOCHS, "--out", tmp_path / "runs")
    assert result.code == 2 and "belongs to another dataset, config or seed than its folder says" in result.err, result.err
    assert not (tmp_path / "runs" / BENCH / "ce+crt").exists()


# -- weight balancing ----------------------------------------------------------------------------------
def test_max_norm_threshold_and_projection_follow_the_official_rule():
    from tailbench.methods.weight_balancing import max_norm_threshold, project_max_norm

    weight = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])  # norms 5, 1, 2
    threshold = max_norm_threshold(weight, 0.1)
    assert float(threshold) == pytest.approx(1.0 + 0.1 * (5.0 - 1.0))  # min + 0.1 (max - min) = 1.4
    project_max_norm(weight, threshold)
    assert torch.allclose(weight.norm(dim=1), torch.tensor([1.4, 1.0, 1.4]))
    assert torch.allclose(weight[0], torch.tensor([3.0, 4.0]) * 1.4 / 5.0)  # scaled back along its direction


def test_the_class_balanced_loss_is_the_papers_weighted_softmax_cross_entropy():
    from tailbench.methods.base import MethodContext
    from tailbench.methods.weight_balancing import WeightBalancing

    counts = torch.tensor([100, 10])
    ctx = MethodContext(2, counts, 3, 2, torch.device("cpu"), 0, (1, 8, 8), None)
    part = WeightBalancing(ctx, dict(WeightBalancing.hparams))
    beta = 0.9999
    raw = torch.tensor([(1 - beta) / (1 - beta ** 100), (1 - beta) / (1 - beta ** 10)], dtype=torch.float64)
    part.class_weights = (raw * 2 / raw.sum()).float()  # summing to C = 2
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    by_hand = (part.class_weights[0] * -torch.log_softmax(logits[0], 0)[0] + part.class_weights[1] * -torch.log_softmax(logits[1], 0)[1]) / 2
    assert float(part.stage_loss(None, logits, y)) == pytest.approx(float(by_hand))
    assert part.stage1_recipe == {"weight_decay": 5e-3} and part.stage_weight_decay == 0.1 and part.sampling_weights(0) is None


def test_weight_balancing_trains_stage1_with_its_weight_decay_under_its_own_key(isolated_cache, tmp_path):
    out = tmp_path / "runs"
    balanced = json.loads((run(out, "ce+wb") / "result.json").read_text())["stages"]
    retrained = json.loads((run(out, "ce+crt") / "result.json").read_text())["stages"]
    assert balanced["representation"]["recipe_changes"] == {"weight_decay": 0.005}
    assert retrained["representation"]["recipe_changes"] == {}
    assert balanced["representation"]["key"] != retrained["representation"]["key"]
    classifier = balanced["classifier"]
    assert classifier["weight_decay"] == 0.1 and classifier["trains"] == ["net.fc.weight", "net.fc.bias"]
    assert classifier["chosen"]["max_norm_threshold"] > 0
