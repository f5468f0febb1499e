"""Fidelity to Cao et al.'s LDAM-DRW code (kaidic/LDAM-DRW): the cosine classifier's unit-norm
start, focal loss's two forms with class weights, LDAM with class weights, and the
effective-number resampling weights, each on a small example worked out by hand."""

import math
import re

import pytest
import torch
import torch.nn.functional as F

from tailbench.benchmarks.trainer import epoch_order
from tailbench.datasets.base import Split
from tailbench.errors import UserError
from tailbench.methods import ComposedMethod, MethodContext
from tailbench.models.layers import CosineClassifier


def context(counts, epochs=5, first_lr_step=3):
    return MethodContext(len(counts), torch.tensor(counts), epochs, first_lr_step, torch.device("cpu"), 0, (1, 8, 8), None)


# --- the cosine classifier's initial class vectors ------------------------------------------

@pytest.mark.parametrize("in_features, num_classes", [(64, 10), (512, 100), (3, 2)])
def test_cosine_classifier_class_vectors_start_with_unit_norm(in_features, num_classes):
    torch.manual_seed(0)
    head = CosineClassifier(in_features, num_classes)
    assert head.weight.shape == (num_classes, in_features)
    assert torch.allclose(head.weight.norm(dim=1), torch.ones(num_classes), atol=1e-5)


def test_cosine_classifier_init_is_a_uniform_draw_rescaled_row_by_row():
    """The same distribution as LDAM-DRW's NormedLinear: uniform on [-1, 1], then each class
    vector scaled to norm 1; so the directions are those of the plain uniform draw."""
    torch.manual_seed(3)
    uniform = torch.empty(7, 64).uniform_(-1.0, 1.0)
    torch.manual_seed(3)
    head = CosineClassifier(64, 7)
    assert torch.allclose(head.weight.detach(), uniform / uniform.norm(dim=1, keepdim=True), atol=1e-6)
    # before the change the norms were those of the raw draw, about sqrt(64 / 3) = 4.6
    assert uniform.norm(dim=1).mean().item() == pytest.approx(math.sqrt(64 / 3), rel=0.1)


def test_ldam_puts_a_unit_norm_cosine_classifier_into_the_model():
    import timm

    from tailbench.models.wrappers import InputNormalization, backbone_of

    backbone = timm.create_model("cifar_resnet8", num_classes=3, in_chans=1)
    model = ComposedMethod("ldam", context([100, 10, 1])).wrap_model(InputNormalization(backbone, torch.zeros(1), torch.ones(1)))
    head = backbone_of(model).get_classifier()
    assert isinstance(head, CosineClassifier)
    assert torch.allclose(head.weight.norm(dim=1), torch.ones(3), atol=1e-5)


# --- focal loss with class weights: a worked example ----------------------------------------
# Two images, three classes, gamma = 1, class weights w = [0.5, 2.0, 1.0].
# Image 1: probabilities [0.5, 0.25, 0.25], label 0: p_t = 0.5, w = 0.5.
# Image 2: probabilities [0.6, 0.2, 0.2], label 1: p_t = 0.2, w = 2.0.
LOGITS = torch.tensor([[0.5, 0.25, 0.25], [0.6, 0.2, 0.2]], dtype=torch.float64).log()
LABELS = torch.tensor([0, 1])
WEIGHTS = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)


def focal(form=None, **hp):
    overrides = {f"focal.{k}": str(v) for k, v in hp.items()}
    if form is not None:
        overrides["focal.form"] = form
    return ComposedMethod("focal", context([100, 10, 1]), overrides).loss_part


def test_focal_ldam_drw_form_worked_example():
    """Reference (losses.py focal_loss / FocalLoss): ce_i = w_i * (-log p_t), p = exp(-ce_i),
    loss = mean_i (1 - p)^gamma * ce_i.
    Image 1: ce = 0.5 * ln 2 = 0.346574, p = 0.5^0.5 = 0.707107, (1 - p) * ce = 0.101509.
    Image 2: ce = 2 * ln 5 = 3.218876, p = 0.2^2 = 0.04, (1 - p) * ce = 0.96 * 3.218876 = 3.090121.
    Mean over the 2 images (not over the weights' sum 2.5): (0.101509 + 3.090121) / 2 = 1.595815."""
    part = focal()
    assert part.form == "ldam_drw"  # the default
    assert part.loss(LOGITS, LABELS, WEIGHTS).item() == pytest.approx(1.595815, abs=1e-6)
    assert part.loss(LOGITS.float(), LABELS, WEIGHTS.float()).item() == pytest.approx(1.595815, abs=1e-5)


def test_focal_lin_form_worked_example():
    """Lin et al.: FL_i = (1 - p_t) * (-log p_t), reduced sum_i w_i FL_i / sum_i w_i.
    Image 1: 0.5 * ln 2 = 0.346574; image 2: 0.8 * ln 5 = 1.287550.
    (0.5 * 0.346574 + 2.0 * 1.287550) / 2.5 = 1.099355."""
    assert focal("lin").loss(LOGITS, LABELS, WEIGHTS).item() == pytest.approx(1.099355, abs=1e-6)


def test_focal_forms_agree_without_weights_worked_example():
    """No weights: both are mean_i (1 - p_t) * (-log p_t) = (0.346574 + 1.287550) / 2 = 0.817062."""
    for form in ("ldam_drw", "lin"):
        assert focal(form).loss(LOGITS, LABELS, None).item() == pytest.approx(0.817062, abs=1e-6)


def test_focal_ldam_drw_form_gamma_two_worked_example():
    """gamma = 2: (1 - 0.707107)^2 * 0.346574 = 0.029731; 0.96^2 * 3.218876 = 2.966516; mean 1.498124."""
    assert focal(gamma=2.0).loss(LOGITS, LABELS, WEIGHTS).item() == pytest.approx(1.498124, abs=1e-6)


# --- LDAM with class weights: a worked example ----------------------------------------------

def test_ldam_class_weights_divide_by_the_sum_of_weights_as_the_reference_cross_entropy_does():
    """Reference (losses.py LDAMLoss.forward): F.cross_entropy(s * output, target, weight=w), the
    default 'mean' reduction: sum_i w_i l_i / sum_i w_i. Counts [16, 1, 1] give margins
    0.5 * n^-1/4 / max = [0.25, 0.5, 0.5]; s = 1.
    Image 1: cosines [0.5, 0, 0], label 0 -> [0.25, 0, 0]: l = ln(1 + 2 e^-0.25) = 0.939070.
    Image 2: cosines [0, 0.5, 0], label 1 -> [0, 0, 0]: l = ln 3 = 1.098612.
    With w = [0.5, 2.0, 1.0]: (0.5 * 0.939070 + 2.0 * 1.098612) / 2.5 = 1.066704 (dividing by
    the batch size instead would give 1.333380)."""
    ldam = ComposedMethod("ldam", context([16, 1, 1]), {"ldam.s": "1"}).loss_part
    assert torch.allclose(ldam.margins, torch.tensor([0.25, 0.5, 0.5]))
    cosines = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]], dtype=torch.float64)
    assert ldam.loss(cosines, LABELS, WEIGHTS).item() == pytest.approx(1.066704, abs=1e-6)
    assert ldam.loss(cosines, LABELS, None).item() == pytest.approx((0.939070 + 1.098612) / 2, abs=1e-6)


# --- resampling weights ---------------------------------------------------------------------

def test_effective_resampling_weights_worked_example():
    """Counts [3, 2, 1], beta = 0.5: 1 - beta^n = [0.875, 0.75, 0.5], (1 - beta) / that =
    [4/7, 2/3, 1], sum 47/21; scaled to sum to 3: [36/47, 42/47, 63/47]."""
    method = ComposedMethod("ce+rs", context([3, 2, 1]), {"rs.weights": "effective", "rs.beta": "0.5"})
    assert torch.allclose(method.sampling_weights(0), torch.tensor([36 / 47, 42 / 47, 63 / 47]), atol=1e-6)
    assert method.loss_weights(0) is None


def test_effective_resampling_with_the_reference_beta_is_proportional_to_its_sampler_weights():
    """LDAM-DRW's ImbalancedDatasetSampler: (1 - 0.9999) / (1 - 0.9999^n), not rescaled; the draws
    depend only on the ratios, so tailbench's weights (summing to C) draw the same way."""
    counts = [100, 10, 1]
    weights = ComposedMethod("ce+rs", context(counts), {"rs.weights": "effective"}).sampling_weights(0).double()
    reference = torch.tensor([(1 - 0.9999) / (1 - 0.9999 ** n) for n in counts], dtype=torch.float64)
    assert torch.allclose(weights / weights.sum(), reference / reference.sum(), atol=1e-7)
    assert torch.allclose(weights.float(), torch.tensor([0.0271587, 0.2703689, 2.7024724]), atol=1e-6)


def test_rs_and_drs_defaults_stay_inverse_frequency():
    counts = [3, 2, 1]
    for spec in ("ce+rs", "ce+drs"):
        method = ComposedMethod(spec, context(counts))
        assert method.hparams[spec[3:]] == {"weights": "inverse", "beta": 0.9999}
        assert method.changed == {}  # the plain entry: existing records keep their ids and numbers
        assert torch.allclose(method.sampling_weights(4), torch.tensor([1 / 3, 1 / 2, 1.0]))


def test_drs_effective_switches_on_at_the_first_lr_step():
    method = ComposedMethod("ce+drs", context([3, 2, 1], first_lr_step=2), {"drs.weights": "effective", "drs.beta": "0.5"})
    assert method.sampling_weights(1) is None
    assert torch.allclose(method.sampling_weights(2), torch.tensor([36 / 47, 42 / 47, 63 / 47]), atol=1e-6)
    assert method.changed == {"drs.weights": "effective", "drs.beta": 0.5}


def test_effective_resampling_draws_classes_in_proportion_to_n_times_w():
    """Through the trainer's epoch_order, class c is drawn with share n_c w_c / sum_k n_k w_k."""
    counts = [300, 200, 100]
    y = torch.repeat_interleave(torch.arange(3), torch.tensor(counts))
    train = Split(torch.zeros(len(y), 1, 1, 1, dtype=torch.uint8), y)
    method = ComposedMethod("ce+rs", context(counts), {"rs.weights": "effective", "rs.beta": "0.995"})
    w = method.sampling_weights(0).double()
    expected = torch.tensor(counts, dtype=torch.float64) * w
    expected = expected / expected.sum()
    generator = torch.Generator().manual_seed(0)
    drawn = torch.cat([train.y[epoch_order(method, train, epoch, generator)] for epoch in range(10)])
    frequencies = torch.bincount(drawn, minlength=3).double() / drawn.numel()
    assert (frequencies - expected).abs().max() < 0.02, (frequencies, expected)


# --- bad hyper-parameters: one line, before anything runs -----------------------------------

@pytest.mark.parametrize("spec, hp, message", [
    ("focal", {"focal.form": "lin_et_al"}, "unknown focal form; use one of ldam_drw, lin"),
    ("focal", {"focal.gamma": "-1"}, "gamma must be >= 0"),
    ("ce+rs", {"rs.weights": "effective_number"}, "unknown sampling weights; use one of inverse, effective"),
    ("ce+rs", {"rs.weights": "effective", "rs.beta": "0"}, "must lie in (0, 1)"),
    ("ce+drs", {"drs.weights": "effective", "drs.beta": "1"}, "must lie in (0, 1)"),
    ("ce+rs", {"rs.beta": "0.99"}, "beta applies only with rs.weights=effective"),
    ("ce+drs", {"drs.beta": "0.5"}, "beta applies only with drs.weights=effective"),
    ("ce+rw", {"rw.weights": "effective"}, "rw has no hyper-parameter 'weights'"),
])
def test_bad_hyper_parameters_are_one_line_user_errors(spec, hp, message):
    with pytest.raises(UserError, match=re.escape(message)) as error:
        ComposedMethod(spec, context([3, 2, 1]), hp)
    assert "\n" not in str(error.value)


def test_a_bad_focal_form_fails_the_cli_with_exit_2_before_training(cli, tmp_path):
    result = cli("run", "--dataset", "digits-lt", "--method", "focal", "--hp", "focal.form=bogus", "--epochs", "1", "--out", tmp_path, "--quiet")
    assert result.code == 2
    assert "unknown focal form" in result.error_line()
    assert not any(tmp_path.rglob("result.json"))
