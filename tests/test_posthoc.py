"""Post-hoc logit adjustment against the paper's rule on a worked example."""

import math

import pytest
import torch
import torch.nn as nn

from tailbench.errors import UserError
from tailbench.methods import ComposedMethod, MethodContext
from tailbench.methods.registry import parse_spec


def context(counts):
    counts = torch.tensor(counts)
    return MethodContext(len(counts), counts, 1, 1, torch.device("cpu"), 0, (1, 1, 1), None)


class FixedLogits(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x):
        return self.logits.expand(x.shape[0], -1)


def test_adjusted_prediction_is_the_papers_rule():
    # prior 0.9 / 0.1, logits 2 and 1: f - log(pi) = 2 + 0.1054 and 1 + 2.3026, so class 1 wins,
    # with probability 1 / (1 + exp(2.1054 - 3.3026)) = 0.7680
    method = ComposedMethod("ce+posthoc_la", context([90, 10]), {})
    log_probs = method.predict(FixedLogits([2.0, 1.0]), torch.zeros(3, 1, 1, 1))
    assert log_probs.argmax(dim=1).tolist() == [1, 1, 1]
    assert log_probs.exp()[0, 1].item() == pytest.approx(1 / (1 + math.exp(2 - math.log(0.9) - 1 + math.log(0.1))), abs=1e-6)
    assert log_probs.exp().sum(dim=1).tolist() == pytest.approx([1.0] * 3)


def test_tau_zero_leaves_the_predictions_of_the_loss():
    model, x = FixedLogits([2.0, 1.0, -1.0]), torch.zeros(2, 1, 1, 1)
    plain = ComposedMethod("ce", context([60, 30, 10]), {}).predict(model, x)
    adjusted = ComposedMethod("ce+posthoc_la", context([60, 30, 10]), {"posthoc_la.tau": "0"}).predict(model, x)
    assert torch.allclose(plain, adjusted)


def test_tau_out_of_range_is_one_line():
    with pytest.raises(UserError, match=r"posthoc_la.tau=-1(\.0)? must be between 0 and 10"):
        ComposedMethod("ce+posthoc_la", context([60, 30, 10]), {"posthoc_la.tau": "-1"})


def test_it_cannot_share_prediction_with_another_predicting_part():
    with pytest.raises(UserError):
        parse_spec("ce+augerino+posthoc_la")
