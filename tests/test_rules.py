"""The sampling and weighting rules: effective-number weights, when DRS and DRW switch on,
RS sampling through the trainer's own epoch_order, and spec errors for contradictory combinations."""

import re

import pytest
import torch

from tailbench.benchmarks.trainer import epoch_order
from tailbench.datasets.base import Split
from tailbench.errors import UserError
from tailbench.methods import ComposedMethod, MethodContext, parse_spec

COUNTS = [100, 10, 1]


def context(counts=COUNTS, epochs=5, first_lr_step=3):
    return MethodContext(len(counts), torch.tensor(counts), epochs, first_lr_step, torch.device("cpu"), 0, (1, 8, 8), None)


def test_effective_number_weights_for_given_counts():
    """w_c = (1 - beta) / (1 - beta^n_c) with beta = 0.9999, scaled to sum to C = 3."""
    weights = ComposedMethod("ce+rw", context()).loss_weights(0)
    beta = 0.9999
    raw = torch.tensor([(1 - beta) / (1 - beta ** n) for n in COUNTS], dtype=torch.float64)
    assert torch.allclose(weights.double(), 3 * raw / raw.sum(), atol=1e-6)
    assert torch.allclose(weights, torch.tensor([0.0271587, 0.2703689, 2.7024724]), atol=1e-6)
    assert weights.sum().item() == pytest.approx(3.0, abs=1e-5)
    assert weights.dtype == torch.float32 and weights.device == torch.device("cpu")


def test_effective_number_weights_sum_to_the_number_of_classes_and_fall_with_class_size():
    counts = [4800, 1200, 533, 300, 192, 133, 97, 75, 59, 48]
    weights = ComposedMethod("ce+rw", context(counts)).loss_weights(0)
    assert weights.sum().item() == pytest.approx(10.0, abs=1e-4)
    assert (weights[1:] > weights[:-1]).all()


def test_beta_override_and_its_limits():
    ones = ComposedMethod("ce+rw", context(), {"rw.beta": "0"}).loss_weights(0)
    assert torch.allclose(ones, torch.ones(3))
    with pytest.raises(UserError, match="beta"):
        ComposedMethod("ce+drw", context(), {"drw.beta": "1.0"})


@pytest.mark.parametrize("first_lr_step", [0, 3, 5])
def test_drs_and_drw_switch_on_at_the_first_lr_step(first_lr_step):
    ctx = context(epochs=6, first_lr_step=first_lr_step)
    drs, drw = ComposedMethod("ce+drs", ctx), ComposedMethod("ce+drw", ctx)
    balanced = 1.0 / torch.tensor(COUNTS, dtype=torch.float)
    reweighted = ComposedMethod("ce+rw", ctx).loss_weights(0)
    for epoch in range(6):
        if epoch < first_lr_step:
            assert drs.sampling_weights(epoch) is None and drw.loss_weights(epoch) is None
        else:
            assert torch.allclose(drs.sampling_weights(epoch), balanced)
            assert torch.equal(drw.loss_weights(epoch), reweighted)
        assert drs.loss_weights(epoch) is None and drw.sampling_weights(epoch) is None


def test_rs_and_rw_are_on_from_the_start_and_computed_once():
    ctx = context()
    rs, rw = ComposedMethod("ce+rs", ctx), ComposedMethod("ce+rw", ctx)
    assert torch.allclose(rs.sampling_weights(0), torch.tensor([0.01, 0.1, 1.0]))
    assert rs.sampling_weights(0) is rs.sampling_weights(4)  # the same tensor: no per-epoch work
    assert rw.loss_weights(0) is rw.loss_weights(4)
    assert rs.loss_weights(0) is None and rw.sampling_weights(0) is None


def long_tailed_split(counts):
    y = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    return Split(torch.zeros(len(y), 1, 1, 1, dtype=torch.uint8), y)


def test_rs_sampling_through_epoch_order_is_close_to_uniform_over_classes():
    counts = [2000, 700, 250, 90, 30, 10, 5]
    train = long_tailed_split(counts)
    method = ComposedMethod("ce+rs", context(counts))
    generator = torch.Generator().manual_seed(0)
    drawn = torch.cat([train.y[epoch_order(method, train, epoch, generator)] for epoch in range(4)])
    frequencies = torch.bincount(drawn, minlength=len(counts)).float() / drawn.numel()
    # 4 * 3085 draws: the standard error of each frequency is about 0.003
    assert (frequencies - 1 / len(counts)).abs().max() < 0.02, frequencies
    # plain sampling keeps the long tail: the head class is 65% of each epoch
    plain = train.y[epoch_order(ComposedMethod("ce", context(counts)), train, 0, generator)]
    assert torch.bincount(plain, minlength=len(counts)).tolist() == counts


def test_drs_order_is_a_permutation_before_the_switch_and_balanced_after():
    counts = [2000, 700, 250, 90, 30, 10, 5]
    train = long_tailed_split(counts)
    method = ComposedMethod("ce+drs", context(counts, epochs=4, first_lr_step=2))
    generator = torch.Generator().manual_seed(1)
    before = epoch_order(method, train, 1, generator)
    assert torch.equal(before.sort().values, torch.arange(len(train)))
    after = train.y[epoch_order(method, train, 2, generator)]
    frequencies = torch.bincount(after, minlength=len(counts)).float() / after.numel()
    assert (frequencies - 1 / len(counts)).abs().max() < 0.04, frequencies


@pytest.mark.parametrize("spec, message", [
    ("ce+focal", "combines two losses"),
    ("ldam+bsce+drw", "combines two losses"),
    ("ce+rs+drw", "combines two rules"),
    ("drs+ce", "out of order; write ce+drs "),
    ("drw+ldam+augerino", "out of order; write ldam+drw+augerino "),
    ("ce+augerino+drs", "out of order; write ce+drs+augerino "),
    ("rw", "has no loss; it must start with one, e.g. ce+rw "),
    ("augerino+drs", "has no loss; it must start with one, e.g. ce+drs+augerino "),
    ("ce+drw+drw", "repeats"),
    ("ce+dwr", "unknown method part 'dwr'"),
])
def test_contradictory_or_unknown_specs_are_one_line_errors(spec, message):
    with pytest.raises(UserError, match=re.escape(message)) as error:
        parse_spec(spec)
    assert "\n" not in str(error.value)
    suggestion = re.search(r"write (\S+) |e\.g\. (\S+) ", str(error.value))
    if suggestion:  # a suggested spec is one that parses
        parse_spec(next(group for group in suggestion.groups() if group))


@pytest.mark.parametrize("spec", ["ce+drs", "ce+drw", "ldam+drw", "bsce", "focal+rw", "bsce+rs"])
def test_the_literature_combinations_parse(spec):
    assert [p.name for p in parse_spec(spec)] == spec.split("+")


def test_a_contradictory_spec_fails_the_cli_with_one_line(cli, tmp_path):
    result = cli("run", "--dataset", "digits-rot-lt", "--method", "ce+rs+drw", "--epochs", "1", "--out", tmp_path, "--quiet")
    assert result.code == 2
    assert "combines two rules" in result.error_line()
