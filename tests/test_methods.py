"""Method specs, hyper-parameters, and every registered part run for one epoch on digits-lt."""

import json

import pytest
import torch

from tailbench.errors import UserError
from tailbench.methods import method_parts, parse_spec
from tailbench.methods.registry import changed_hparams, resolve_hparams
from tailbench.results.store import method_id


ON_ITS_OWN_LOSS = {"sade_tta": "sade"}  # a part that composes with one loss only


def specs_covering_every_part():
    parts = method_parts()
    specs = [name for name, p in parts.items() if p.kind == "loss"]
    specs += [f"{ON_ITS_OWN_LOSS.get(name, 'ce')}+{name}" for name, p in parts.items() if p.kind != "loss"]
    return specs


# Per part, `--hp` settings that keep its smoke run to seconds where the paper's defaults cannot
# (GIT would train a 10,000-iteration generator first, MSR meta-train for 300 outer steps, and
# digits' 120-image largest class is below MSR's head threshold); the run still goes through every hook.
SMOKE_HP = {
    "git": ["git.iters=2", "git.dim=8", "git.n_res=1", "git.gen_batch=8", "git.delayed=false"],
    "msr": ["msr.threshold=15", "msr.ways=2", "msr.shots=2", "msr.queries=3", "msr.tasks=2", "msr.meta_steps=2",
            "msr.inner_steps=1", "msr.width=4"],
}


@pytest.mark.parametrize("spec", specs_covering_every_part())
def test_every_registered_part_runs_one_epoch_on_digits(spec, cli, tmp_path, monkeypatch):
    """digits-rot-lt declares a nuisance, so parts that need one (the oracle) run too."""
    monkeypatch.setenv("TAILBENCH_CACHE", str(tmp_path / "cache"))  # e.g. GIT's trained generators
    hp = [arg for part in spec.split("+") for setting in SMOKE_HP.get(part, []) for arg in ("--hp", setting)]
    result = cli("run", "--dataset", "digits-rot-lt", "--method", spec, "--epochs", "1", "--out", tmp_path, "--quiet", *hp)
    assert result.code == 0, result.err
    entry = method_id(spec, {setting.split("=")[0]: setting.split("=")[1] for part in spec.split("+") for setting in SMOKE_HP.get(part, [])})
    record = json.loads((tmp_path / "digits-rot-lt@epochs=1" / entry / "seed-0" / "result.json").read_text())
    assert record["method"]["spec"] == spec
    assert 0 <= record["summary"]["accuracy"] <= 1


@pytest.mark.parametrize("spec, message", [
    ("ce+ce", "repeats"),
    ("", "malformed"),
    ("ce++", "malformed"),
])
def test_bad_specs(spec, message):
    with pytest.raises(UserError, match=message):
        parse_spec(spec)


def test_hparam_overrides_are_typed_and_checked():
    from tailbench.methods.base import MethodPart
    from tailbench.methods.registry import register_method

    @register_method("test-scaled")
    class Scaled(MethodPart):
        kind = "loss"
        hparams = {"scale": 1.0, "steps": 3}

    parts = parse_spec("test-scaled")
    resolved = resolve_hparams(parts, {"test-scaled.scale": "0.5"})
    assert resolved == {"test-scaled": {"scale": 0.5, "steps": 3}}
    assert changed_hparams(parts, resolved) == {"test-scaled.scale": 0.5}
    assert method_id("test-scaled", changed_hparams(parts, resolved)) == "test-scaled@test-scaled.scale=0.5"
    same_as_default = resolve_hparams(parts, {"test-scaled.steps": "3", "test-scaled.scale": "1"})
    assert changed_hparams(parts, same_as_default) == {}  # restating a default keeps the plain entry
    with pytest.raises(UserError, match="not a valid int"):
        resolve_hparams(parts, {"test-scaled.steps": "1.5"})
    from tailbench.benchmarks.runner import RunConfig, resolve

    assert resolve(RunConfig("digits-lt", "test-scaled", hparams={"test-scaled.scale": "0.5"})).entry == "test-scaled@test-scaled.scale=0.5"
    with pytest.raises(UserError, match="not a part of this method spec"):
        resolve_hparams(parts, {"ldam.max_m": "0.3"})
    from tailbench.methods import registry
    del registry._PARTS["test-scaled"]


def test_composed_predict_returns_log_probabilities():
    from tailbench.methods import ComposedMethod, MethodContext

    ctx = MethodContext(3, torch.tensor([5, 3, 1]), 2, 1, torch.device("cpu"), 0, (1, 8, 8), None)
    method = ComposedMethod("ce", ctx)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    log_probs = method.predict(model, torch.rand(4, 1, 8, 8))
    assert torch.allclose(log_probs.exp().sum(1), torch.ones(4))


def test_an_hparam_value_that_cannot_name_a_folder_is_refused_before_the_run(tmp_path):
    from tailbench.benchmarks.runner import RunConfig, resolve
    from tailbench.methods import registry
    from tailbench.methods.base import MethodPart
    from tailbench.methods.registry import register_method

    @register_method("test-tagged")
    class Tagged(MethodPart):
        kind = "loss"
        hparams = {"tag": "plain"}

    try:
        with pytest.raises(UserError, match="cannot name a folder"):
            resolve(RunConfig("digits-lt", "test-tagged", hparams={"test-tagged.tag": "../x"}, out=tmp_path))
        assert not any(tmp_path.iterdir())
    finally:
        del registry._PARTS["test-tagged"]



PART_FILE = '''
from tailbench.methods import MethodPart, register_method


@register_method({name!r})
class Part(MethodPart):
    kind = "augmentation"
'''


@pytest.mark.parametrize("name, message", [
    ("ce", "method part 'ce' is built in (tailbench.methods.losses: cross-entropy"),
    ("a/b", "method part name 'a/b' cannot be a spec token or a folder name"),
    ("x@y", "method part name 'x@y' cannot be a spec token or a folder name"),
    ("w=1", "method part name 'w=1' cannot be a spec token or a folder name"),
])
def test_a_part_is_checked_when_registered(cli, tmp_path, name, message):
    plugin = tmp_path / "bad_part.py"
    plugin.write_text(PART_FILE.format(name=name))
    result = cli("list", "methods", "--method-file", plugin)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert f"--method-file {plugin}: " in result.err and "--hp" not in result.err
    assert "ce" in method_parts() and method_parts()["ce"].__module__ == "tailbench.methods.losses"  # the built-in kept


RELABELLING = '''
import torch
from tailbench.methods import MethodPart, register_method


@register_method("onehot_relabel")
class OneHot(MethodPart):
    kind = "augmentation"

    def augment(self, batch, state):
        batch.y = torch.nn.functional.one_hot(batch.y, 10).float()  # soft targets, undeclared
        return batch
'''


def test_a_part_that_mixes_labels_without_saying_so_is_one_line_naming_it(cli, tmp_path):
    plugin = tmp_path / "relabel.py"
    plugin.write_text(RELABELLING)
    result = cli("run", "--dataset", "digits-lt", "--method", "ce+onehot_relabel", "--method-file", plugin,
                 "--epochs", "1", "--device", "cpu", "--out", tmp_path / "runs", "--quiet")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "method part 'onehot_relabel' turned the batch's labels" in result.err and "set mixes_labels = True" in result.err
    assert not list((tmp_path / "runs").rglob("result.json"))
