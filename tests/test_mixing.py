"""Soft targets in the Method API: mixup, CutMix and Remix, the losses that accept their targets,
the spec checks that refuse a mismatch before training, and a full run with mixed labels."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F

from tailbench.errors import UserError
from tailbench.methods import Batch, ComposedMethod, MethodContext, StepState, parse_spec
from tailbench.methods.mixing import Remix


def context(counts=(40, 30, 20, 10, 5), seed=0) -> MethodContext:
    return MethodContext(len(counts), torch.tensor(counts), 4, 2, torch.device("cpu"), seed, (1, 8, 8), None)


def constant_batch(labels: list[int]) -> Batch:
    """Image i is filled with the value 0.1 * (label + 1), so a mixed pixel says who was mixed."""
    y = torch.tensor(labels)
    x = ((y.float() + 1.0) * 0.1).view(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone()
    return Batch(x, y, torch.arange(len(labels)))


def augment(spec: str, batch: Batch, seed: int = 0, hp: dict[str, str] | None = None, ctx: MethodContext | None = None) -> Batch:
    method = ComposedMethod(spec, ctx or context(), hp or {})
    return method.augment(batch, StepState(0, 0, torch.Generator().manual_seed(seed)))


def test_mixup_mixes_images_and_labels_with_the_same_lambda():
    batch = constant_batch([0, 1, 2, 3, 4, 3])
    out = augment("ce+mixup", batch)
    assert out.y.shape == (6, 5) and torch.allclose(out.y.sum(1), torch.ones(6))
    own = out.y[torch.arange(6), batch.y]  # each image's weight on its own label (labels of a pair differ)
    partner = batch.x.flip(0)[:, 0, 0, 0]
    assert torch.allclose(out.x[:, 0, 0, 0], own * batch.x[:, 0, 0, 0] + (1 - own) * partner)
    assert torch.allclose(own, own[0].expand(6))  # one lambda per batch
    assert torch.equal(out.x, augment("ce+mixup", batch).x)  # the step's generator is the only randomness
    assert not torch.equal(out.x, augment("ce+mixup", batch, seed=1).x)


def test_cutmix_labels_follow_the_pasted_area():
    batch = constant_batch([0, 1, 2, 3])
    seen_box = False
    for seed in range(12):
        out = augment("ce+cutmix", batch, seed=seed, hp={"cutmix.prob": "1"})
        from_partner = (out.x != batch.x).float().mean(dim=(1, 2, 3))  # pairs have different labels, so values
        assert torch.allclose(out.y[torch.arange(4), batch.y.flip(0)], from_partner)
        assert torch.allclose(out.y.sum(1), torch.ones(4))
        seen_box |= bool((from_partner > 0).any())
    assert seen_box
    never = augment("ce+cutmix", batch, hp={"cutmix.prob": "0"})
    assert torch.equal(never.x, batch.x) and torch.equal(never.y, F.one_hot(batch.y, 5).float())


def test_remix_gives_the_label_to_the_minority_class():
    remix = Remix(context(counts=(300, 100, 10, 10, 10)), dict(Remix.hparams))
    y = torch.tensor([0, 2, 1, 2])  # pairs (0, 3): sizes 300 / 10; (1, 2): 10 / 100
    low = remix.label_weight(torch.tensor(0.3), y)
    # a majority image holding lambda = 0.3 < tau of its own features (ratio >= kappa) takes its
    # minority partner's label; the minority image holding 0.3 keeps the mixup label
    assert low.tolist() == pytest.approx([0.0, 0.3, 0.0, 0.3])
    high = remix.label_weight(torch.tensor(0.7), y)
    # a minority image holding 0.7 (its partner's share 0.3 < tau) keeps its own label whole
    assert high.tolist() == pytest.approx([0.7, 1.0, 0.7, 1.0])
    balanced = remix.label_weight(torch.tensor(0.3), torch.tensor([2, 3, 4, 2]))  # equal sizes: plain mixup
    assert balanced.tolist() == pytest.approx([0.3] * 4)


def test_soft_cross_entropy_reduces_to_hard_and_weights_by_the_target_mixture():
    generator = torch.Generator().manual_seed(0)
    logits, y = torch.randn(8, 5, generator=generator), torch.randint(0, 5, (8,), generator=generator)
    weights = torch.rand(5, generator=generator) + 0.5
    for spec in ("ce", "bsce"):
        loss = ComposedMethod(spec, context()).loss_part.loss
        assert torch.allclose(loss(logits, F.one_hot(y, 5).float(), weights), loss(logits, y, weights))
    soft = torch.softmax(torch.randn(8, 5, generator=generator), 1)
    per_image = -(soft * logits.log_softmax(1)).sum(1)
    w = soft @ weights
    ce = ComposedMethod("ce", context()).loss_part.loss
    assert torch.allclose(ce(logits, soft, weights), (w * per_image).sum() / w.sum())
    assert torch.allclose(ce(logits, soft, None), per_image.mean())


@pytest.mark.parametrize("spec, message", [
    ("ldam+mixup", "ldam does not accept"),
    ("focal+drw+remix", "focal does not accept"),
    ("ce+remix+oracle", "must be the last augmentation; write ce+oracle+remix"),
    ("ce+mixup+cutmix", "both mix labels"),
])
def test_a_soft_target_mismatch_is_refused_before_anything_runs(spec, message, cli, tmp_path):
    with pytest.raises(UserError, match=re.escape(message)):
        parse_spec(spec)
    result = cli("run", "--dataset", "digits-lt", "--method", spec, "--out", tmp_path / "out")
    assert result.code == 2 and message in result.error_line()
    assert not (tmp_path / "out").exists()


def test_bad_mixing_hyper_parameters_are_one_line():
    with pytest.raises(UserError, match="alpha"):
        ComposedMethod("ce+mixup", context(), {"mixup.alpha": "0"})
    with pytest.raises(UserError, match="kappa"):
        ComposedMethod("ce+remix", context(), {"remix.kappa": "0.5"})


def test_soft_targets_run_a_full_epoch_with_a_deferred_rule(cli, tmp_path):
    """ce+drw+remix for one epoch: the loss weights meet mixed targets from the first lr step on."""
    result = cli("run", "--dataset", "digits-lt", "--method", "ce+drw+remix", "--epochs", "2", "--out", tmp_path, "--quiet")
    assert result.code == 0, result.err
    record = json.loads((tmp_path / "digits-lt@epochs=2" / "ce+drw+remix" / "seed-0" / "result.json").read_text())
    assert [0 <= epoch["train_acc"] <= 1 for epoch in record["history"]] == [True, True]
    assert record["method"]["hparams"]["remix"] == {"alpha": 1.0, "kappa": 3.0, "tau": 0.5}
