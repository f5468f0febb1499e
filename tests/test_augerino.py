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


def test_evaluation_averages_j_copies_in_probability_space_when_asked():
    j, n = 3, 4
    logits = torch.randn(j * n, 3, generator=torch.Generator().manual_seed(2)) * 3
    recorder = Recorder(logits)
    method = ComposedMethod("ce+augerino", context(), {"augerino.copies": str(j), "augerino.average": "prob"})
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


def test_evaluation_by_default_is_the_mean_of_log_softmaxes_renormalised():
    # J = 2, one image, three classes, worked by hand: copy 1 logits (0, -3, -3), copy 2 (-3, 0, 1).
    logits = torch.tensor([[0.0, -3.0, -3.0], [-3.0, 0.0, 1.0]])
    method = ComposedMethod("ce+augerino", context(), {"augerino.copies": "2"})
    assert method.hparams["augerino"]["average"] == "logprob"
    model = method.wrap_model(Recorder(logits)).eval()
    log_probs = method.predict(model, images(1))
    z1 = math.log(1 + 2 * math.exp(-3))  # log-softmax_c = logit_c - z
    z2 = math.log(math.exp(-3) + 1 + math.e)
    mean = [((0 - z1) + (-3 - z2)) / 2, ((-3 - z1) + (0 - z2)) / 2, ((-3 - z1) + (1 - z2)) / 2]  # the reference's output
    norm = math.log(sum(math.exp(m) for m in mean))
    expected = torch.tensor([[m - norm for m in mean]])
    assert torch.allclose(log_probs, expected, atol=1e-6)
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(1), atol=1e-6)  # a distribution, for eKLD
    # the renormalisation is one constant per image: the reference's ranking, hence its accuracy
    shift = log_probs - torch.tensor([mean])
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)
    prob_average = ComposedMethod("ce+augerino", context(), {"augerino.copies": "2", "augerino.average": "prob"})
    by_prob = prob_average.predict(prob_average.wrap_model(Recorder(logits)).eval(), images(1))
    assert not torch.allclose(by_prob, log_probs, atol=1e-3)  # the two averages differ on this example
    assert log_probs.argmax(1).item() == 2 and by_prob.argmax(1).item() == 0  # ... even in their argmax


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
    from tailbench.recipes.recipe import load_recipe
    from tailbench.benchmarks.trainer import build_optimizer

    recipe = load_recipe("digits")
    assert recipe.weight_decay > 0
    for choice, decay in (("adam", 1e-4), ("recipe", recipe.weight_decay)):
        method = ComposedMethod("ce+augerino", context(), {"augerino.optimizer": choice})
        model = method.wrap_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 3)))
        optimizer = build_optimizer(model, method, recipe, torch.device("cpu"))
        groups = [g for g in optimizer.param_groups if any(p is model.raw for p in g["params"])]
        assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0 and len(groups[0]["params"]) == 1
        main = optimizer.param_groups[0]
        assert main["weight_decay"] == decay and all(p is not model.raw for p in main["params"])


def test_default_optimizer_is_the_references_adam():
    from tailbench.recipes.recipe import load_recipe
    from tailbench.benchmarks.trainer import build_optimizer, set_lr_factor

    recipe = load_recipe("digits")
    method = ComposedMethod("ce+augerino", context())
    model = method.wrap_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 3)))
    optimizer = build_optimizer(model, method, recipe, torch.device("cpu"))
    assert type(optimizer) is torch.optim.Adam
    assert len(optimizer.param_groups) == 2
    for group in optimizer.param_groups:  # one lr for the model and the widths, torch's betas and eps
        assert group["lr"] == group["base_lr"] == 0.01
        assert group["betas"] == (0.9, 0.999) and group["eps"] == 1e-8 and not group["amsgrad"]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [1e-4, 0.0]
    set_lr_factor(optimizer, 0.1)  # the recipe's schedule multiplies Adam's lr
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.001, 0.001])
    custom = ComposedMethod("ce+augerino", context(), {"augerino.lr": "0.1", "augerino.weight_decay": "0"})
    model = custom.wrap_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 3)))
    optimizer = build_optimizer(model, custom, recipe, torch.device("cpu"))
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [(0.1, 0.0), (0.1, 0.0)]


def test_adam_step_on_the_widths_matches_the_formula():
    # Adam's first step moves each parameter by lr * g / (|g| + eps') = lr * sign(g) (bias-corrected
    # m / sqrt(v) is g / |g|); the regulariser's gradient on raw is negative, so widths grow by lr.
    from tailbench.recipes.recipe import load_recipe
    from tailbench.benchmarks.trainer import build_optimizer

    method = ComposedMethod("ce+augerino", context(), {"augerino.reg": "0.5"})
    model = method.wrap_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 3)))
    optimizer = build_optimizer(model, method, load_recipe("digits"), torch.device("cpu"))
    before = model.raw.detach().clone()
    method.parts[-1].regularizer(model, 0).backward()
    g = model.raw.grad.clone()
    optimizer.step()
    eps = 1e-8
    expected = before - 0.01 * g / (g.abs() + eps)
    assert torch.allclose(model.raw.detach(), expected, atol=1e-7)
    assert torch.allclose(model.raw.detach() - before, torch.full((6,), 0.01), atol=1e-6)


def test_two_parts_with_their_own_optimizer_is_one_clear_error():
    from tailbench.recipes.recipe import load_recipe
    from tailbench.errors import UserError
    from tailbench.methods.base import MethodPart

    class Own(MethodPart):
        name = "own"

        def make_optimizer(self, groups, recipe, device):
            return torch.optim.SGD(groups, lr=1.0)

    method = ComposedMethod("ce+augerino", context())
    method.parts.append(Own(context(), {}))
    groups = [{"params": [nn.Parameter(torch.zeros(1))]}]
    with pytest.raises(UserError, match="augerino and own each bring their own optimizer"):
        method.make_optimizer(groups, load_recipe("digits"), torch.device("cpu"))


def test_optimizer_state_survives_a_checkpoint(tmp_path):
    from tailbench.benchmarks.checkpoint import Checkpointer
    from tailbench.recipes.recipe import load_recipe
    from tailbench.benchmarks.trainer import build_optimizer

    def build():
        torch.manual_seed(0)
        method = ComposedMethod("ce+augerino", context())
        model = method.wrap_model(nn.Sequential(nn.Flatten(), nn.Linear(144, 3)))
        return method, model, build_optimizer(model, method, load_recipe("digits"), torch.device("cpu"))

    method, model, optimizer = build()
    model.train()
    method.augment(Batch(images(4), torch.zeros(4, dtype=torch.long), torch.arange(4)), StepState(0, 0, torch.Generator().manual_seed(0)))
    method.loss(model, model(images(4)), torch.tensor([0, 1, 2, 0]), None, 0).backward()
    optimizer.step()
    saver = Checkpointer(tmp_path, {"id": 1}, "now", quiet=True)
    saver.save(0, model, optimizer, method, torch.Generator().manual_seed(0), [])
    method2, model2, optimizer2 = build()
    assert Checkpointer(tmp_path, {"id": 1}, "now", quiet=True).restore(model2, optimizer2, method2, torch.Generator()) is not None
    state, state2 = optimizer.state_dict()["state"], optimizer2.state_dict()["state"]
    assert state.keys() == state2.keys() and len(state) == 3  # Linear weight and bias, the widths
    for k in state:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(state[k][key], state2[k][key])
    assert torch.equal(model.raw, model2.raw)


def test_rotmnist_init_is_the_references_start():
    method = ComposedMethod("ce+augerino", context(), {"augerino.init": "rotmnist"})
    model = method.wrap_model(nn.Identity())
    expected_raw = torch.tensor([-5.0, -5.0, 1.0, -5.0, -5.0, -5.0])  # ones(6) * -5, [2] = 1
    assert torch.equal(model.raw.detach(), expected_raw)
    widths = method.parts[-1].widths_by_name(model)
    assert widths["rotation"] == pytest.approx(math.log(1 + math.e), rel=1e-6)  # 1.3133 rad, about 75 degrees
    assert widths["translation_x"] == pytest.approx(math.log(1 + math.exp(-5.0)), rel=1e-5)  # 0.0067
    coloured = ComposedMethod("ce+augerino", context(), {"augerino.init": "rotmnist", "augerino.color": "true"})
    assert coloured.wrap_model(nn.Identity()).raw.detach()[-2:].tolist() == [-5.0, -5.0]
    default = ComposedMethod("ce+augerino", context()).wrap_model(nn.Identity())
    assert torch.equal(default.raw.detach(), torch.zeros(6))  # "zero": UniformAug's own start


def test_numeric_init_starts_every_width_there():
    method = ComposedMethod("ce+augerino", context(), {"augerino.init": "0.25"})
    model = method.wrap_model(nn.Identity())
    assert torch.allclose(model.widths(), torch.full((6,), 0.25), atol=1e-6)


@pytest.mark.parametrize("key, value, message", [
    ("optimizer", "sgd", "augerino.optimizer=sgd: not one of adam, recipe"),
    ("init", "mnist", "augerino.init=mnist: not a preset \\(zero, rotmnist\\) nor a number"),
    ("init", "-1", "augerino.init=-1: a starting width must be a finite number above 0"),
    ("average", "median", "augerino.average=median: not one of logprob, prob"),
    ("lr", "0", "augerino.lr=0.0: Adam's learning rate must be"),
    ("weight_decay", "-1", "augerino.weight_decay=-1.0: must be"),
])
def test_bad_optimizer_init_or_average_is_one_clear_error(key, value, message):
    from tailbench.errors import UserError

    with pytest.raises(UserError, match=message) as error:
        ComposedMethod("ce+augerino", context(), {f"augerino.{key}": value})
    assert "\n" not in str(error.value)


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
    assert record["method"]["hparams"]["augerino"] == {
        "reg": 0.01, "copies": 4, "color": False, "init": "zero", "optimizer": "adam", "lr": 0.01, "weight_decay": 1e-4, "average": "logprob",
    }
    assert [h["lr"] for h in record["history"]] == [0.01]  # Adam's lr, times the recipe's factor (1 in epoch 1 here)
    history = [h["method"]["augerino_widths"] for h in record["history"]]
    assert len(history) == 1 and all(set(h) == set(AFFINE_NAMES) for h in history)
    assert all(w > 0 for h in history for w in h.values())
    summary = record["summary"]
    assert math.isclose(summary["learned_rotation_deg"], math.degrees(history[-1]["rotation"]), rel_tol=1e-9)
    assert math.isclose(summary["learned_translation_x"], 0.05 * history[-1]["translation_x"], rel_tol=1e-9)
    for key in ("learned_translation_y", "learned_scale", "learned_stretch", "learned_shear"):
        assert summary[key] > 0
    assert 0 <= summary["accuracy"] <= 1
