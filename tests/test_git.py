"""The `git` method part: batch mixing fraction, delay, size threshold, cache reuse, run records."""

from __future__ import annotations

import json

import pytest
import torch

from tailbench.errors import UserError
from tailbench.methods import Batch, ComposedMethod, MethodContext, StepState

# A generator trained for 2 iterations at a tiny width: what is tested here is the mixing.
TINY_HP = {"git.iters": "2", "git.dim": "8", "git.n_res": "1", "git.gen_batch": "8"}


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture(scope="module")
def digits():
    from tailbench.datasets import get_dataset
    from tailbench.datasets.sources import default_data_dir

    return get_dataset("digits-lt").load(default_data_dir())


def make_git(data, first_lr_step: int = 2, seed: int = 0, epochs: int = 4, **hp: object):
    ctx = MethodContext(
        num_classes=data.num_classes, class_counts=data.train_counts, epochs=epochs, first_lr_step=first_lr_step,
        device=torch.device("cpu"), seed=seed, image_shape=data.image_shape, nuisance=None,
    )
    method = ComposedMethod("ce+git", ctx, {**TINY_HP, **{f"git.{k}": str(v) for k, v in hp.items()}})
    method.prepare(data)
    return method.augmentations[0]


def batch_of(data, idx: torch.Tensor) -> Batch:
    return Batch(data.train.x[idx].float() / 255.0, data.train.y[idx], idx)


def changed_rows(before: Batch, after: Batch) -> torch.Tensor:
    assert after.x.shape == before.x.shape
    assert torch.equal(after.y, before.y) and torch.equal(after.idx, before.idx)
    assert after.x.min() >= 0 and after.x.max() <= 1
    return (after.x - before.x).abs().flatten(1).amax(1) > 1e-6


@pytest.mark.parametrize("gen_frac, expected", [(0.5, 32), (0.25, 16), (1.0, 64), (0.0, 0)])
def test_no_generated_images_up_to_the_first_lr_step_then_gen_frac(digits, gen_frac, expected):
    """The lr first decays in epoch 2 (0-based); as the reference's `epoch > steplr_epoch1`, GIT
    starts in epoch 3."""
    git = make_git(digits, first_lr_step=2, gen_frac=gen_frac)
    rng = torch.Generator().manual_seed(0)
    batch = batch_of(digits, torch.randperm(len(digits.train), generator=rng)[:64])
    for epoch in (0, 1, 2):
        assert not changed_rows(batch, git.augment(batch, StepState(epoch, 0, rng))).any()
    assert git.epoch_log(None, 0)["git_generated_frac"] == 0.0
    changed = changed_rows(batch, git.augment(batch, StepState(3, 0, rng)))
    assert changed[:expected].all() and not changed[expected:].any()
    assert git.epoch_log(None, 3)["git_generated_frac"] == pytest.approx(expected / 64)


def test_delayed_git_generates_in_19_of_the_fmnist_recipes_50_epochs(digits):
    """The K49 recipe (fmnist runs it): 50 epochs, lr x0.01 from epoch 30 (0-based; the reference's
    lr rule `epoch + 1 > steplr_epoch1`). The reference generates where `epoch > steplr_epoch1`:
    epochs 31..49, 19 of them."""
    from tailbench.recipes.recipe import load_recipe

    recipe = load_recipe("fmnist")
    assert (recipe.epochs, recipe.milestones) == (50, (30, 40))
    assert recipe.lr_factor(29) == 1.0 and recipe.lr_factor(30) == pytest.approx(0.01)
    git = make_git(digits, first_lr_step=recipe.first_lr_step, epochs=recipe.epochs)
    rng = torch.Generator().manual_seed(0)
    batch = batch_of(digits, torch.arange(4))
    generating = [e for e in range(recipe.epochs) if changed_rows(batch, git.augment(batch, StepState(e, 0, rng))).any()]
    assert generating == [e for e in range(50) if e > 30] and len(generating) == 19
    assert [e for e in range(50) if not git.step_variant(e)] == generating  # one captured graph per phase


def test_not_delayed_generates_from_the_first_epoch(digits):
    git = make_git(digits, first_lr_step=2, delayed="false")
    rng = torch.Generator().manual_seed(0)
    batch = batch_of(digits, torch.arange(40))
    assert changed_rows(batch, git.augment(batch, StepState(0, 0, rng))).sum() == 20
    assert changed_rows(batch, git.augment(batch, StepState(3, 1, rng))).sum() == 20


def test_generated_images_depend_only_on_the_run_generator(digits):
    git = make_git(digits, delayed="false")
    batch = batch_of(digits, torch.arange(32))
    a = git.augment(batch, StepState(0, 0, torch.Generator().manual_seed(3))).x
    b = git.augment(batch, StepState(0, 0, torch.Generator().manual_seed(3))).x
    c = git.augment(batch, StepState(0, 0, torch.Generator().manual_seed(4))).x
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_threshold_keeps_generated_images_only_for_small_classes(digits):
    """Keep probability max((thr - n_y) / (thr - n_min), 0): never for classes of thr images or
    more, always for the smallest class, in between proportionally."""
    threshold = 30
    git = make_git(digits, delayed="false", gen_frac=1.0, threshold=threshold)
    counts = digits.train_counts.float()
    expected = ((threshold - counts) / (threshold - counts.min())).clamp(0, 1)
    assert torch.allclose(git.keep_prob, expected)
    per_class = 100  # a batch with 100 draws of every class
    idx = torch.cat([torch.nonzero(digits.train.y == c).flatten().repeat(per_class)[:per_class] for c in range(10)])
    batch = batch_of(digits, idx)
    rng = torch.Generator().manual_seed(0)
    out = git.augment(batch, StepState(0, 0, rng))
    real = is_real_image(digits, out)
    kept = ~real
    assert torch.equal(out.y[kept], batch.y[kept]) and torch.equal(out.idx[kept], batch.idx[kept])
    share = kept.view(10, per_class).float().mean(1)  # generated share by the slot's drawn class
    assert torch.all(share[counts >= threshold] == 0)
    assert torch.all(share[counts == counts.min()] == 1)
    assert torch.allclose(share, expected, atol=0.15), (share, expected)
    assert git.epoch_log(None, 0)["git_generated_frac"] == pytest.approx(float(kept.float().mean()))
    # A rejected slot shows another drawn image with its own label, whatever class was rejected:
    # the stand-ins' classes follow the batch's (uniform), not the rejected ones' (mostly the head).
    stand_in_share = torch.bincount(out.y[real], minlength=10).float() / real.sum()
    rejected_share = torch.bincount(batch.y[real], minlength=10).float() / real.sum()
    assert (stand_in_share - 0.1).abs().max() < 0.06, stand_in_share
    assert rejected_share.max() > 0.25  # what the slots held before: the two largest classes
    head = batch_of(digits, torch.nonzero(digits.train.y == int(counts.argmax())).flatten()[:16])
    out = git.augment(head, StepState(0, 1, rng))  # nothing kept, no error: other head images stand in
    assert is_real_image(digits, out).all() and torch.all(out.y == int(counts.argmax()))


def is_real_image(data, batch: Batch) -> torch.Tensor:
    """Per row: is it exactly the training image its idx names, with that image's label?"""
    same = (batch.x - data.train.x[batch.idx].float() / 255.0).abs().flatten(1).amax(1) == 0
    assert torch.equal(batch.y[same], data.train.y[batch.idx][same])
    return same


def test_threshold_worked_example(digits):
    """Four slots, gen_frac 0.5: slot 0 holds a smallest-class image (keep probability 1), slot 1
    a head image (0). Slot 0 is generated; slot 1's generated image is rejected, and the only other
    generated slot's drawn image stands in, as it is and with its label (the reference's
    `torch.where(mask, input_gen, input_main)` with the label from `target_main`); slots 2-3 stay.
    With one generated slot there is no other draw: the rejected slot keeps its own image."""
    counts = digits.train_counts
    tail, head = int(counts.argmin()), int(counts.argmax())
    git = make_git(digits, delayed="false", gen_frac=0.5, threshold=int(counts.max()))
    assert git.keep_prob[tail] == 1 and git.keep_prob[head] == 0
    first = lambda c: int(torch.nonzero(digits.train.y == c)[0])  # noqa: E731
    idx = torch.tensor([first(tail), first(head), first(2), first(4)])
    batch = batch_of(digits, idx)
    for gather in (True, False):
        git.gather_kept = gather
        out = git.augment(batch, StepState(0, 0, torch.Generator().manual_seed(0)))
        assert out.y.tolist() == [tail, tail, 2, 4] and out.idx.tolist() == [idx[0], idx[0], idx[2], idx[3]]
        assert not torch.equal(out.x[0], batch.x[0])  # generated
        assert torch.equal(out.x[1], batch.x[0]) and torch.equal(out.x[2:], batch.x[2:])
    assert git.epoch_log(None, 0)["git_generated_frac"] == pytest.approx(2 / 8)
    one = make_git(digits, delayed="false", gen_frac=0.25, threshold=int(counts.max()))
    out = one.augment(batch_of(digits, idx[[1, 0, 2, 3]]), StepState(0, 0, torch.Generator().manual_seed(0)))
    assert out.y.tolist() == [head, tail, 2, 4] and torch.equal(out.x, batch_of(digits, idx[[1, 0, 2, 3]]).x)


def test_threshold_gather_and_where_paths_agree(digits):
    """The CPU path translates only the kept images; the device path translates all and selects."""
    git = make_git(digits, delayed="false", gen_frac=0.75, threshold=40)
    batch = batch_of(digits, torch.randperm(len(digits.train), generator=torch.Generator().manual_seed(1))[:48])
    git.gather_kept = True
    gathered = git.augment(batch, StepState(0, 0, torch.Generator().manual_seed(2)))
    git.gather_kept = False
    selected = git.augment(batch, StepState(0, 0, torch.Generator().manual_seed(2)))
    assert torch.allclose(gathered.x, selected.x, atol=1e-5)
    assert torch.equal(gathered.y, selected.y) and torch.equal(gathered.idx, selected.idx)
    assert not torch.equal(selected.y, batch.y)  # some rejected slots show another class's image


def test_the_part_reuses_the_generator_the_cli_trained(digits, cli, monkeypatch):
    result = cli("generator", "train", "--dataset", "digits-lt", "--iters", "2", "--seed", "0", "--quiet",
                 "--opt", "dim=8", "--opt", "n_res=1", "--opt", "batch_size=8")
    assert result.code == 0, result.err
    from tailbench.generative import train

    monkeypatch.setattr(train, "run_training", lambda *a, **k: pytest.fail("trained again instead of loading the cache"))
    git = make_git(digits, seed=0)
    assert git.entry.startswith("digits-lt/") and git.entry.endswith("-seed0")
    assert git.epoch_log(None, 0)["git_generator"] == git.entry
    assert make_git(digits, seed=1).entry == git.entry  # every run seed shares generator seed 0 ...
    with pytest.raises(pytest.fail.Exception):  # ... unless git.gen_seed=-1 asks for the run's own
        make_git(digits, seed=1, gen_seed=-1)


@pytest.mark.parametrize("hp, message", [
    ({"gen_frac": 1.5}, "git.gen_frac=1.5 must lie in"),
    ({"threshold": -1}, "git.threshold=-1"),
    ({"gen_seed": -2}, "git.gen_seed=-2"),
    ({"dim": 0}, "dim=0 must be positive"),
    ({"threshold": 5}, "git.threshold=5 must exceed the smallest class's 5 training images"),
    ({"gen_flip": "maybe"}, "git.gen_flip=maybe must be auto"),
])
def test_bad_hyper_parameters(digits, hp, message):
    with pytest.raises(UserError, match=message):
        make_git(digits, **hp)


def test_run_record_logs_the_generated_fraction_per_epoch(cli, tmp_path):
    """digits-rot-lt, the digits recipe's 4 epochs: the lr first steps at epoch 2, so GIT runs in epoch 3."""
    hp = [a for k, v in TINY_HP.items() for a in ("--hp", f"{k}={v}")]
    result = cli("run", "--dataset", "digits-rot-lt", "--method", "ce+drs+git", "--out", tmp_path / "runs", "--quiet", *hp)
    assert result.code == 0, result.err
    [directory] = (tmp_path / "runs").glob("digits-rot-lt*/ce+drs+git@*/seed-0")  # the tiny generator's entry
    assert directory.parent.name == "ce+drs+git" + "".join(f"@{k}={v}" for k, v in sorted(TINY_HP.items()))
    record = json.loads((directory / "result.json").read_text())
    assert record["recipe"]["milestones"][0] == 2 and len(record["history"]) == 4
    logs = [h["method"] for h in record["history"]]
    assert logs[0]["git_generated_frac"] == 0.0 and logs[0]["git_generator"].startswith("digits-rot-lt/")
    assert logs[1]["git_generated_frac"] == 0.0 and logs[2]["git_generated_frac"] == 0.0
    assert logs[3]["git_generated_frac"] == pytest.approx(0.5, abs=0.01)
    assert record["method"]["hparams"]["git"]["iters"] == 2
    from tailbench.submission.validate import validate_run

    assert validate_run(directory).ok


def test_bad_hparam_from_the_cli_is_one_line(cli, tmp_path):
    result = cli("run", "--dataset", "digits-rot-lt", "--method", "ce+git", "--hp", "git.gen_frac=2", "--out", tmp_path, "--quiet")
    assert result.code == 2
    assert "git.gen_frac=2.0 must lie in [0, 1]" in result.error_line()
