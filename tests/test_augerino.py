"""Augerino: the learned affine distribution, its loss terms, its evaluation, and a short run."""

import json
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tailbench.methods import ComposedMethod, MethodContext, method_parts
from tailbench.models.augerino import AFFINE_NAMES, AugerinoAugment, affine_matrices, inverse_softplus, lie_generators
from tailbench.methods.base import Batch, StepState

OFF = -60.0  # softplus(-60) ~ 1e-26: a width of zero for every practical purpose


def context(seed: int = 0) -> MethodContext:
    return MethodContext(3, torch.tensor([50, 10, 2]), 2, 1, torch.device("cpu"), seed, (1, 12, 12), "rot")


def set_widths(wrapper: AugerinoAugment, **widths: float) -> None:
    with torch.no_grad():
        wrapper.raw.fill_(OFF)
        for name, width in widths.items():
            wrapper.raw[wrapper.names.index(name)] = inverse_softplus(width)


def images(n: int = 6, size: int = 12) -> torch.Tensor:
    x = torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(1))
    return F.avg_pool2d(x, 3, stride=1, padding=1)  # smooth, so that every warp changes the image


def test_raw_starts_at_zero_and_widths_are_softplus():
    wrapper = AugerinoAugment(nn.Identity())
    assert torch.equal(wrapper.raw.detach(), torch.zeros(6))
    assert torch.allclose(wrapper.widths(), torch.full((6,), math.log(2.0)))
    assert abs(F.softplus(torch.tensor(inverse_softplus(3.0))).item() - 3.0) < 1e-6


def test_zero_width_is_the_identity():
    x = images()
    wrapper = AugerinoAugment(nn.Identity()).train()
    set_widths(wrapper)
    wrapper.generator = torch.Generator().manual_seed(0)
    assert torch.allclose(wrapper(x), x, atol=1e-5)
    assert torch.allclose(wrapper.transform(x, torch.zeros(6, 6)), x, atol=1e-5)
    assert torch.allclose(affine_matrices(torch.zeros(2, 6), lie_generators()), torch.eye(3)[:2].expand(2, 2, 3))


def test_training_mode_transforms_each_image_and_eval_mode_does_not():
    x = images()
    wrapper = AugerinoAugment(nn.Identity())
    wrapper.generator = torch.Generator().manual_seed(0)
    augmented = wrapper.train()(x)
    assert augmented.shape == x.shape
    per_image = (augmented - x).abs().flatten(1).amax(1)
    assert (per_image > 1e-3).all()
    assert torch.equal(wrapper.eval()(x), x)


def test_gradients_reach_every_width_through_the_loss():
    x = images(16)
    net = nn.Sequential(nn.Flatten(), nn.Linear(144, 3))
    torch.manual_seed(0)
    nn.init.normal_(net[1].weight)
    wrapper = AugerinoAugment(net).train()
    wrapper.generator = torch.Generator().manual_seed(0)
    loss = F.cross_entropy(wrapper(x), torch.arange(16) % 3)
    loss.backward()
    grad = wrapper.raw.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert (grad.abs() > 0).all(), grad


def test_colour_ranges_are_learned_too():
    x = images(8)
    wrapper = AugerinoAugment(nn.Sequential(nn.Flatten(), nn.Linear(144, 3)), color=True).train()
    wrapper.generator = torch.Generator().manual_seed(0)
    assert wrapper.names[-2:] == ("brightness", "contrast")
    wrapper(x).square().sum().backward()
    assert (wrapper.raw.grad[-2:].abs() > 0).all()


def test_rotation_generator_at_width_w_draws_angles_within_half_w():
    width = 1.2  # radians
    wrapper = AugerinoAugment(nn.Identity())
    set_widths(wrapper, rotation=width)
    eps = wrapper.sample_eps(20_000, torch.Generator().manual_seed(0))
    m = wrapper.matrices(eps)
    angles = torch.atan2(m[:, 1, 0], m[:, 0, 0])
    assert angles.abs().max() <= width / 2 + 1e-5
    assert angles.abs().max() > 0.99 * width / 2  # the whole range is used
    assert torch.allclose(angles, eps[:, AFFINE_NAMES.index("rotation")], atol=1e-5)
    assert torch.allclose(torch.linalg.det(m[:, :, :2]), torch.ones(len(m)), atol=1e-5)  # a pure rotation
    assert torch.allclose(m[:, :, 2], torch.zeros(len(m), 2), atol=1e-6)


def test_translation_generators_are_scaled_by_a_tenth():
    wrapper = AugerinoAugment(nn.Identity())
    set_widths(wrapper, translation_x=2.0)
    m = wrapper.matrices(wrapper.sample_eps(5000, torch.Generator().manual_seed(0)))
    shift = m[:, 0, 2]
    assert shift.abs().max() <= 0.1 + 1e-6 and shift.abs().max() > 0.099
    assert torch.allclose(m[:, 1, 2], torch.zeros(len(m)), atol=1e-6)


class Recorder(nn.Module):
    """Ignores its input's content: returns fixed logits, one row per image it receives."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.logits[: x.shape[0]]


def test_evaluation_averages_j_copies_in_probability_space():
    j, n = 3, 4
    logits = torch.randn(j * n, 3, generator=torch.Generator().manual_seed(2)) * 3
    recorder = Recorder(logits)
    method = ComposedMethod("ce+augerino", context(), {"augerino.copies": str(j)})
    model = method.wrap_model(recorder).eval()
    x = images(n)
    log_probs = method.predict(model, x)
    expected = F.softmax(logits, 1).view(j, n, 3).mean(0).log()
    assert torch.allclose(log_probs, expected, atol=1e-5)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(n), atol=1e-5)
    seen = recorder.inputs[0].view(j, n, 1, 12, 12)
    assert (seen[0] - seen[1]).abs().amax() > 1e-3  # each copy is its own draw
    assert not model.sample_in_eval and recorder.inputs[0].shape[0] == j * n
    model(x)  # eval mode outside predict: the plain network, on the original images
    assert torch.equal(recorder.inputs[-1], x)


def test_evaluation_is_deterministic_for_a_seed():
    x = images(5)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        method = ComposedMethod("ce+augerino", context(seed=3))
        model = method.wrap_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 3))).eval()
        outs.append(method.predict(model, x))
    assert torch.equal(outs[0], outs[1])


def test_regulariser_rewards_width_until_any_width_reaches_ten():
    method = ComposedMethod("ce+augerino", context(), {"augerino.reg": "0.1"})
    part = method.parts[-1]
    model = method.wrap_model(nn.Identity())
    widths = model.widths().detach()
    assert torch.allclose(part.regularizer(model, 0), -0.1 * widths.norm())
    term = part.regularizer(model, 0)
    term.backward()
    assert (model.raw.grad < 0).all()  # minimising the loss widens every range
    with torch.no_grad():
        model.raw[2] = inverse_softplus(10.5)
    assert part.regularizer(model, 0).item() == 0.0
    total = method.loss(model, torch.zeros(2, 3), torch.tensor([0, 1]), None, 0)
    assert torch.allclose(total, torch.tensor(math.log(3.0)))


def test_widths_have_their_own_optimizer_group_without_weight_decay():
    from tailbench.benchmarks.recipe import load_recipe
    from tailbench.benchmarks.trainer import build_optimizer

    recipe = load_recipe("digits")
    assert recipe.weight_decay > 0
    method = ComposedMethod("ce+augerino", context())
    model = method.wrap_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 3)))
    optimizer = build_optimizer(model, method, recipe, torch.device("cpu"))
    groups = [g for g in optimizer.param_groups if any(p is model.raw for p in g["params"])]
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0 and len(groups[0]["params"]) == 1
    main = optimizer.param_groups[0]
    assert main["weight_decay"] == recipe.weight_decay and all(p is not model.raw for p in main["params"])


def test_augment_hook_hands_the_step_generator_to_the_wrapper():
    method = ComposedMethod("ce+augerino", context())
    model = method.wrap_model(nn.Identity()).train()
    x = images(4)
    outs = []
    for _ in range(2):
        generator = torch.Generator().manual_seed(7)
        batch = method.augment(Batch(x, torch.zeros(4, dtype=torch.long), torch.arange(4)), StepState(0, 0, generator))
        assert batch.x is x  # the transform happens inside the wrapper's forward
        outs.append(model(batch.x))
    assert torch.equal(outs[0], outs[1])


def test_bad_copies_is_one_clear_error():
    from tailbench.errors import UserError

    with pytest.raises(UserError, match="copies"):
        ComposedMethod("ce+augerino", context(), {"augerino.copies": "0"})


def test_short_run_records_learned_widths(cli, tmp_path):
    spec = "ce+drs+augerino" if "drs" in method_parts() else "ce+augerino"
    result = cli("run", "--dataset", "digits-rot-lt", "--method", spec, "--epochs", "1", "--out", tmp_path, "--quiet")
    assert result.code == 0, result.err
    record = json.loads((tmp_path / "digits-rot-lt@epochs=1" / spec / "seed-0" / "result.json").read_text())
    assert record["method"]["hparams"]["augerino"] == {"reg": 0.01, "copies": 4, "color": False}
    history = [h["method"]["augerino_widths"] for h in record["history"]]
    assert len(history) == 1 and all(set(h) == set(AFFINE_NAMES) for h in history)
    assert all(w > 0 for h in history for w in h.values())
    summary = record["summary"]
    assert math.isclose(summary["learned_rotation_deg"], math.degrees(history[-1]["rotation"]), rel_tol=1e-9)
    assert math.isclose(summary["learned_translation_x"], 0.05 * history[-1]["translation_x"], rel_tol=1e-9)
    for key in ("learned_translation_y", "learned_scale", "learned_stretch", "learned_shear"):
        assert summary[key] > 0
    assert 0 <= summary["accuracy"] <= 1
