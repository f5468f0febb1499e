"""SADE (methods/sade.py): the experts' target distributions, the multi-expert network, and the
test-time aggregation that learns only the expert weights, on test images whose labels it never sees."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from tailbench.cli import main


def test_the_inverse_prior_reverses_the_class_ranks():
    from tailbench.methods.sade import inverse_prior

    assert torch.allclose(inverse_prior(torch.tensor([0.5, 0.3, 0.2])), torch.tensor([0.2, 0.3, 0.5]))
    # unsorted classes: the largest (class 1) gets the smallest share, the smallest (class 2) the largest
    assert torch.allclose(inverse_prior(torch.tensor([0.3, 0.5, 0.2])), torch.tensor([0.3, 0.2, 0.5]))


def test_each_expert_is_trained_on_its_own_target_distribution():
    from tailbench.methods.base import MethodContext
    from tailbench.methods.sade import DiverseExperts

    counts = torch.tensor([60, 30, 10])
    ctx = MethodContext(3, counts, 3, 2, torch.device("cpu"), 0, (1, 8, 8), None)
    part = DiverseExperts(ctx, {"tau": 2.0})
    prior = torch.tensor([0.6, 0.3, 0.1])
    z = torch.randn(4, 3, 3)
    plain, balanced, inverse = part.expert_targets(z)
    assert torch.allclose(plain, z[:, 0])
    assert torch.allclose(balanced, z[:, 1] + prior.log())  # balanced softmax: CE(z + log pi)
    assert torch.allclose(inverse, z[:, 2] + prior.log() - 2.0 * torch.tensor([0.1, 0.3, 0.6]).log())
    part.experts = type("Net", (), {"expert_logits": z})()
    y = torch.tensor([0, 1, 2, 0])
    by_hand = F.cross_entropy(plain, y) + F.cross_entropy(balanced, y) + F.cross_entropy(inverse, y)
    assert torch.allclose(part.loss(z.mean(1), y, None), by_hand)


def test_the_network_shares_its_stem_and_averages_three_distinct_experts():
    from tailbench.models import create_model
    from tailbench.models.multi_expert import MultiExpertResNet

    torch.manual_seed(0)
    net = MultiExpertResNet(create_model("cifar_resnet8", num_classes=5, in_chans=1), 3).eval()
    out = net(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 5) and net.expert_logits.shape == (2, 3, 5)
    assert torch.allclose(out, net.expert_logits.mean(1), atol=1e-6)  # uniform aggregation before test time
    assert not torch.equal(net.expert_logits[:, 1], net.expert_logits[:, 2])  # experts drawn apart
    assert not net.aggregation.requires_grad


def test_the_test_time_loss_is_the_negative_cosine_of_two_views():
    from tailbench.methods.sade import TestTimeAggregation

    part = object.__new__(TestTimeAggregation)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert float(part.stage_loss(None, torch.cat([logits, logits]), None)) == pytest.approx(-1.0)
    other = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    p, q = logits.softmax(1), other.softmax(1)
    assert float(part.stage_loss(None, torch.cat([logits, other]), None)) == pytest.approx(float(-F.cosine_similarity(p, q).mean()))


def test_sade_with_test_time_aggregation_learns_only_the_expert_weights_on_unlabeled_test_images(isolated_cache, tmp_path, monkeypatch):
    from tailbench.benchmarks import stages

    seen = []
    real = stages.training_split

    def spying(stage, data):
        split = real(stage, data)
        seen.append((split.x.data_ptr() == data.test.x.data_ptr(), int(split.y.abs().sum())))
        return split

    monkeypatch.setattr(stages, "training_split", spying)
    out = tmp_path / "runs"
    assert main(["run", "--dataset", "digits-lt", "--method", "sade+sade_tta", "--epochs", "2", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    assert seen == [(True, 0)]  # the test images, every label hidden
    record = json.loads((out / "digits-lt@epochs=2" / "sade+sade_tta" / "seed-0" / "result.json").read_text())
    stage = record["stages"]["classifier"]
    assert stage["trained_on"] == "test images, unlabeled" and stage["trains"] == ["net.aggregation"] and stage["epochs"] == 5
    weights = stage["chosen"]["expert_weights"]
    assert sum(weights) == pytest.approx(1.0, abs=1e-5)
    assert stage["stopped_early"] == (len(stage["history"]) < 5) == (min(weights) < 0.05)
    assert all(epoch["train_acc"] is None and -1.0 <= epoch["loss"] <= 0.0 for epoch in stage["history"])
    assert record["stages"]["representation"]["spec"] == "sade"


@pytest.mark.parametrize("spec, message", [
    ("ce+sade_tta", "sade_tta aggregates SADE's experts; start the spec with the sade loss"),
    ("sade+tau_norm", "tau_norm works on one classifier, and sade's experts have three"),
])
def test_a_meaningless_sade_composition_is_one_line(cli, tmp_path, spec, message):
    result = cli("run", "--dataset", "digits-lt", "--method", spec, "--epochs", "1", "--device", "cpu", "--out", tmp_path / "runs")
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err


def test_the_leaderboard_marks_an_entry_that_adapted_on_test_images(isolated_cache, tmp_path, cli):
    out, results = tmp_path / "runs", tmp_path / "results"
    for spec in ("sade", "sade+sade_tta"):
        assert main(["run", "--dataset", "digits-lt", "--method", spec, "--epochs", "1", "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    assert cli("submit", out, "--results", results).code == 0
    assert cli("leaderboard", "--results", results, "--out", tmp_path / "board").code == 0
    board = (tmp_path / "board" / "LEADERBOARD.md").read_text()
    assert "| `sade+sade_tta` §" in board and "| `sade` |" in board
    assert "§ adapts at test time on the test split's images, never their labels" in board
    assert "adapts on test images</span>" in (tmp_path / "board" / "index.html").read_text()


def test_the_test_time_stage_stops_once_an_experts_weight_collapses():
    from tailbench.methods.sade import TestTimeAggregation

    part = object.__new__(TestTimeAggregation)
    part.experts = type("Net", (), {})()
    for raw, stops in (([0.0, 0.0, 0.0], False), ([0.0, 0.5, 3.5], True)):  # softmax: 1/3 each; then 0.017 for the first
        part.experts.expert_weights = lambda raw=raw: torch.tensor(raw).softmax(0)
        assert part.stops_after(None, 0) is stops
