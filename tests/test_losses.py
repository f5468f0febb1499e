"""The loss parts' formulas, checked with numbers: focal, LDAM (margins, cosine layer, scale), balanced softmax."""

import math

import pytest
import timm
import torch
import torch.nn.functional as F

from tailbench.methods import ComposedMethod, MethodContext
from tailbench.models.layers import CosineClassifier
from tailbench.models.wrappers import InputNormalization, backbone_of

COUNTS = [100, 10, 1]


def context(counts=COUNTS, epochs=5, first_lr_step=3):
    return MethodContext(len(counts), torch.tensor(counts), epochs, first_lr_step, torch.device("cpu"), 0, (1, 8, 8), None)


def loss_part(spec, counts=COUNTS, **hp):
    method = ComposedMethod(spec, context(counts), {f"{spec.split('+')[0]}.{k}": str(v) for k, v in hp.items()})
    return method.loss_part


def batch(n=16, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * 2, torch.randint(0, c, (n,), generator=g)


# --- focal ----------------------------------------------------------------------------------

def test_focal_with_gamma_zero_is_cross_entropy():
    logits, y = batch()
    weights = torch.tensor([0.2, 1.0, 3.0])
    for form in ("ldam_drw", "lin"):
        focal = loss_part("focal", gamma=0.0, form=form)
        assert torch.allclose(focal.loss(logits, y, None), F.cross_entropy(logits, y), atol=1e-6)
    # with weights: lin is F.cross_entropy(weight=...) (divides by sum w), ldam_drw its sum over B
    lin, ldam_drw = loss_part("focal", gamma=0.0, form="lin"), loss_part("focal", gamma=0.0)
    assert torch.allclose(lin.loss(logits, y, weights), F.cross_entropy(logits, y, weight=weights), atol=1e-6)
    expected = F.cross_entropy(logits, y, weight=weights, reduction="sum") / len(y)
    assert torch.allclose(ldam_drw.loss(logits, y, weights), expected, atol=1e-6)


def test_focal_default_gamma_is_one_and_matches_the_formula():
    focal = loss_part("focal")
    assert focal.hp == {"gamma": 1.0, "form": "ldam_drw"}
    # one example, true class probability p: loss = -(1 - p) * log p
    for p in (0.9, 0.5, 0.1):
        logits = torch.tensor([[math.log(p), math.log(1 - p), -1e9]])
        expected = -(1 - p) * math.log(p)
        assert focal.loss(logits, torch.tensor([0]), None).item() == pytest.approx(expected, rel=1e-5)


def test_focal_down_weights_easy_examples():
    """Relative to CE, an easy example (p_true = 0.9) keeps 10% of its loss, a hard one (0.1) 90%."""
    focal = loss_part("focal")
    easy = torch.tensor([[math.log(0.9), math.log(0.1), -1e9]])
    hard = torch.tensor([[math.log(0.1), math.log(0.9), -1e9]])
    y = torch.tensor([0])
    ratio_easy = (focal.loss(easy, y, None) / F.cross_entropy(easy, y)).item()
    ratio_hard = (focal.loss(hard, y, None) / F.cross_entropy(hard, y)).item()
    assert ratio_easy == pytest.approx(0.1, rel=1e-4)
    assert ratio_hard == pytest.approx(0.9, rel=1e-4)


def test_focal_lin_form_class_weights_give_a_weighted_mean():
    logits, y = batch()
    focal = loss_part("focal", gamma=2.0, form="lin")
    weights = torch.tensor([0.5, 1.0, 4.0])
    log_p = F.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    per_sample = -(1 - log_p.exp()) ** 2 * log_p
    w = weights[y]
    assert torch.allclose(focal.loss(logits, y, weights), (w * per_sample).sum() / w.sum(), atol=1e-6)


def test_focal_ldam_drw_form_class_weights_modulate_with_p_to_the_w_and_average_over_the_batch():
    logits, y = batch()
    focal = loss_part("focal", gamma=2.0)
    weights = torch.tensor([0.5, 1.0, 4.0])
    ce = F.cross_entropy(logits, y, weight=weights, reduction="none")  # the reference's w * (-log p_t)
    assert torch.allclose(focal.loss(logits, y, weights), ((1 - torch.exp(-ce)) ** 2 * ce).mean(), atol=1e-6)


@pytest.mark.parametrize("form", ["ldam_drw", "lin"])
def test_focal_gradient_is_finite_for_confident_predictions_with_small_gamma(form):
    logits = torch.tensor([[60.0, 0.0, 0.0]], requires_grad=True)
    loss_part("focal", gamma=0.5, form=form).loss(logits, torch.tensor([0]), None).backward()
    assert torch.isfinite(logits.grad).all()
    logits.grad = None
    loss_part("focal", gamma=0.5, form=form).loss(logits, torch.tensor([0]), torch.tensor([0.3, 1.0, 2.0])).backward()
    assert torch.isfinite(logits.grad).all()


# --- LDAM -----------------------------------------------------------------------------------

def test_ldam_margins_for_given_counts():
    """m_c proportional to n_c^-1/4, the largest (the smallest class's) 0.5."""
    ldam = loss_part("ldam")
    expected = torch.tensor([0.5 * 100 ** -0.25, 0.5 * 10 ** -0.25, 0.5])
    assert torch.allclose(ldam.margins, expected)
    assert torch.allclose(ldam.margins, torch.tensor([0.158114, 0.281171, 0.5]), atol=1e-6)
    assert ldam.s == 30.0


def test_ldam_margins_follow_the_hp_override_and_the_record_holds_it():
    method = ComposedMethod("ldam+drw", context(), {"ldam.max_m": "0.3"})
    assert method.loss_part.margins.max().item() == pytest.approx(0.3)
    assert torch.allclose(method.loss_part.margins, 0.3 * torch.tensor([100 ** -0.25, 10 ** -0.25, 1.0]))
    assert method.describe()["hparams"] == {"ldam": {"max_m": 0.3, "s": 30.0}, "drw": {"beta": 0.9999}}


def test_ldam_with_zero_margin_and_unit_scale_is_cross_entropy_on_the_cosines():
    cosines = torch.rand(16, 3) * 2 - 1
    _, y = batch()
    ldam = loss_part("ldam", max_m=0.0, s=1.0)
    assert torch.allclose(ldam.loss(cosines, y, None), F.cross_entropy(cosines, y), atol=1e-6)


def test_ldam_subtracts_the_margin_from_the_true_class_only_then_scales():
    cosines = torch.rand(16, 3) * 2 - 1
    _, y = batch()
    weights = torch.tensor([0.3, 1.0, 2.0])
    ldam = loss_part("ldam")
    margins = torch.tensor([0.5 * 100 ** -0.25, 0.5 * 10 ** -0.25, 0.5])
    adjusted = cosines.clone()
    for i in range(len(y)):  # the plain definition, one example at a time
        adjusted[i, y[i]] -= margins[y[i]]
    assert torch.allclose(ldam.loss(cosines, y, None), F.cross_entropy(30 * adjusted, y), atol=1e-5)
    assert torch.allclose(ldam.loss(cosines, y, weights), F.cross_entropy(30 * adjusted, y, weight=weights), atol=1e-5)


def test_ldam_replaces_the_classifier_with_a_cosine_layer():
    backbone = timm.create_model("cifar_resnet8", num_classes=3, in_chans=1)
    model = InputNormalization(backbone, torch.zeros(1), torch.ones(1))
    method = ComposedMethod("ldam", context())
    model = method.wrap_model(model).eval()
    head = backbone_of(model).get_classifier()
    assert isinstance(head, CosineClassifier) and head.in_features == 64 and head.out_features == 3
    with torch.no_grad():
        cosines = model(torch.rand(5, 1, 8, 8))
        features = torch.randn(4, 64) * 7
        expected = F.normalize(features, dim=1) @ F.normalize(head.weight, dim=1).T
        assert torch.allclose(head(features), expected, atol=1e-6)
        log_probs = method.predict(model, torch.rand(5, 1, 8, 8))
    assert cosines.abs().max() <= 1 + 1e-5
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(5), atol=1e-5)
    # the classifier's parameters are trained: they reach the optimizer through model.parameters()
    assert any(p is head.weight for p in model.parameters())


def test_ldam_probabilities_are_on_the_trained_scale_and_argmax_is_unchanged():
    ldam = loss_part("ldam")
    cosines = torch.rand(32, 3) * 2 - 1
    log_probs = ldam.to_log_probs(cosines)
    assert torch.allclose(log_probs, F.log_softmax(30 * cosines, 1))
    assert torch.equal(log_probs.argmax(1), cosines.argmax(1))


# --- balanced softmax -----------------------------------------------------------------------

def test_balanced_softmax_adds_the_log_prior_in_training():
    logits, y = batch()
    bsce = loss_part("bsce")
    prior = torch.tensor(COUNTS, dtype=torch.float) / sum(COUNTS)
    assert torch.allclose(bsce.log_prior, torch.log(torch.tensor([100 / 111, 10 / 111, 1 / 111])))
    assert torch.allclose(bsce.loss(logits, y, None), F.cross_entropy(logits + prior.log(), y), atol=1e-6)
    weights = torch.tensor([0.3, 1.0, 2.0])
    assert torch.allclose(bsce.loss(logits, y, weights), F.cross_entropy(logits + prior.log(), y, weight=weights), atol=1e-6)


def test_balanced_softmax_tau_scales_the_prior_and_prediction_uses_plain_logits():
    logits, y = batch()
    assert torch.allclose(loss_part("bsce", tau=0.0).loss(logits, y, None), F.cross_entropy(logits, y), atol=1e-6)
    prior = torch.tensor(COUNTS, dtype=torch.float) / sum(COUNTS)
    half = loss_part("bsce", tau=0.5)
    assert torch.allclose(half.loss(logits, y, None), F.cross_entropy(logits + 0.5 * prior.log(), y), atol=1e-6)
    assert torch.allclose(half.to_log_probs(logits), F.log_softmax(logits, 1))


def test_empty_classes_keep_margins_and_priors_finite():
    counts = [50, 5, 0]
    assert torch.isfinite(loss_part("ldam", counts=counts).margins).all()
    assert torch.isfinite(loss_part("bsce", counts=counts).log_prior).all()
