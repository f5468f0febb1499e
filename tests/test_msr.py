"""The `msr` method part: bad hyper-parameters, episodes, cached and resumable meta-training, the
reparameterized stem in the run's model, and what the run record says was learned."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn as nn

from tailbench.errors import UserError
from tailbench.methods import ComposedMethod, MethodContext
from tailbench.msr import cache
from tailbench.msr.layers import SharedConv2d

# digits-rot-lt's classes hold 120, 42, 23, 15, 10, 8, 6, 5, 5, 5 training images: threshold 15
# makes 4 head classes. Two outer steps of two 2-way tasks: seconds on the CPU.
TINY_HP = {"msr.threshold": "15", "msr.ways": "2", "msr.shots": "2", "msr.queries": "3", "msr.tasks": "2",
           "msr.meta_steps": "2", "msr.inner_steps": "1", "msr.width": "4"}


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture(scope="module")
def digits():
    from tailbench.datasets import get_dataset
    from tailbench.datasets.sources import default_data_dir

    return get_dataset("digits-rot-lt").load(default_data_dir())


def context(data, seed: int = 0, nuisance: str | None = "rot") -> MethodContext:
    return MethodContext(
        num_classes=data.num_classes, class_counts=data.train_counts, epochs=2, first_lr_step=1,
        device=torch.device("cpu"), seed=seed, image_shape=data.image_shape, nuisance=nuisance,
    )


def make_msr(data, seed: int = 0, prepare: bool = True, **hp: object):
    method = ComposedMethod("ce+msr", context(data, seed), {**TINY_HP, **{f"msr.{k}": str(v) for k, v in hp.items()}})
    if prepare:
        method.prepare(data)
    return method.augmentations[0]


@pytest.mark.parametrize("hp, message", [
    ({"threshold": 121}, "msr.threshold=121 is above the largest class (120 training images)"),
    ({"inner_steps": 0}, "msr.inner_steps=0 must be a positive integer"),
    ({"ways": 5}, "ways=5 needs that many head classes to meta-train on, and this dataset has 4 with"),
    ({"threshold": 100, "ways": 2}, "--hp msr.ways=2 needs that many head classes to meta-train on, and this dataset has 1 with msr's default threshold=100"),
    ({"shots": 10, "queries": 10}, "--hp msr.shots=10 + msr's default queries=10 = 20 images per class, but the smallest head class has 15"),
    ({"ways": 1}, "msr.ways=1: a task needs at least 2 classes"),
    ({"order": 3}, "msr.order=3 must be 1"),
    ({"meta_steps": 0}, "msr.meta_steps=0 must be a positive integer"),
    ({"inner_lr": 0}, "msr.inner_lr=0.0 must be positive"),
    ({"kernel": 4}, "msr.kernel=4 must be odd"),
    ({"meta_seed": -2}, "msr.meta_seed=-2"),
])
def test_bad_hyper_parameters_are_refused_before_anything_runs(digits, hp, message, isolated_cache):
    with pytest.raises(UserError, match=re.escape(message)):
        make_msr(digits, prepare=False, **hp)
    assert not isolated_cache.exists()


def test_a_dataset_without_a_nuisance_is_refused(digits):
    with pytest.raises(UserError, match="known nuisance"):
        ComposedMethod("ce+msr", context(digits, nuisance=None), TINY_HP)


@pytest.mark.parametrize("args, message", [
    (["--hp", "msr.threshold=500"], "msr.threshold=500 is above the largest class"),
    (["--hp", "msr.inner_steps=0"], "msr.inner_steps=0 must be a positive integer"),
    (["--hp", "msr.ways=7"], "--hp msr.ways=7 needs that many head classes to meta-train on, and this dataset has 1 with msr's default threshold=100"),
    ([], "msr's default ways=5 needs that many head classes"),  # no --hp given: none is quoted as given
])
def test_bad_hyper_parameters_from_the_cli_are_one_line_and_exit_2(cli, tmp_path, args, message, isolated_cache):
    result = cli("run", "--dataset", "digits-rot-lt", "--method", "ce+drs+msr", "--out", tmp_path / "runs", "--quiet", *args)
    assert result.code == 2
    assert message in result.error_line()
    assert not (tmp_path / "runs").exists() and not isolated_cache.exists()


def test_episodes_are_clean_support_and_transformed_queries_of_head_classes(digits):
    from tailbench.msr.episodes import EpisodeSampler
    from tailbench.nuisance import get_family

    head = [c for c in range(10) if int(digits.train_counts[c]) >= 15]
    sampler = EpisodeSampler(digits.train_clean, digits.train.y, head, 3, 2, 4, get_family("rot"))
    episodes = sampler.sample(50, torch.Generator().manual_seed(0))
    assert episodes.support_x.shape == (50, 6, 1, 8, 8) and episodes.query_x.shape == (50, 12, 1, 8, 8)
    assert torch.equal(episodes.support_y[0], torch.tensor([0, 0, 1, 1, 2, 2]))
    clean = digits.train_clean.float() / 255.0
    flat = clean.flatten(1)
    for task in range(50):  # every support image is a clean head-class image, 3 classes per task
        match = (episodes.support_x[task].flatten(1)[:, None, :] == flat[None]).all(2)
        assert match.any(1).all()
        classes = digits.train.y[match.float().argmax(1)]
        assert set(classes.tolist()) <= set(head) and len(set(classes.tolist())) == 3
        # two support images of a class are distinct images of one class
        assert classes[0] == classes[1] and not torch.equal(episodes.support_x[task, 0], episodes.support_x[task, 1])
    query_matches = (episodes.query_x.flatten(2)[..., None, :] == flat).all(-1).any(-1)
    assert query_matches.float().mean() < 0.2  # queries are rotated, not the stored clean images


def test_meta_training_is_cached_and_shared_by_run_seeds(digits, monkeypatch):
    msr = make_msr(digits, seed=0)
    directory = msr.result.directory
    assert (directory / cache.FINAL).is_file() and not (directory / cache.CHECKPOINT).exists()
    assert json.loads((directory / cache.CONFIG).read_text())["config"]["ways"] == 2
    assert not msr.result.loaded and len(msr.result.curve) == 2 and msr.result.seconds > 0
    from tailbench.msr import train

    monkeypatch.setattr(train, "_meta_train", lambda *a, **k: pytest.fail("meta-trained again instead of loading the cache"))
    again = make_msr(digits, seed=1)  # every run seed shares meta_seed 0 ...
    assert again.result.loaded and torch.equal(again.result.sharing, msr.result.sharing)
    assert again.figures == msr.figures
    with pytest.raises(pytest.fail.Exception):  # ... unless meta_seed=-1 asks for the run's own
        make_msr(digits, seed=1, meta_seed=-1)


def test_meta_training_moves_the_sharing_matrix_away_from_the_identity(digits):
    msr = make_msr(digits, meta_steps=3)
    latent = 4 * 9
    assert msr.result.sharing.shape == (latent, latent)
    assert not torch.equal(msr.result.sharing, torch.eye(latent))


def test_resume_after_an_interruption_gives_the_uninterrupted_result(digits, tmp_path):
    from tailbench.methods.msr import MetaLearnedSharing
    from tailbench.msr.episodes import EpisodeSampler
    from tailbench.msr.train import train_or_load
    from tailbench.nuisance import get_family

    part = make_msr(digits, prepare=False, meta_steps=6)
    assert isinstance(part, MetaLearnedSharing)

    def run(root, **kwargs):
        sampler = EpisodeSampler(digits.train_clean, digits.train.y, part.head_classes, 2, 2, 3, get_family("rot"))
        args = (sampler, digits.image_shape, torch.tensor([0.3]), torch.tensor([0.4]), digits.dataset_id,
                digits.manifest_sha256, part.config, 0)
        return train_or_load(*args, root=root, checkpoint_every=2, quiet=True, **kwargs)

    straight = run(tmp_path / "a")

    def interrupt(step: int) -> None:
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", on_checkpoint=interrupt)
    directory = cache.entry_dir(tmp_path / "b", digits.dataset_id, digits.manifest_sha256, part.config, 0)
    assert (directory / cache.CHECKPOINT).is_file() and not (directory / cache.FINAL).exists()
    resumed = run(tmp_path / "b")
    assert not (directory / cache.CHECKPOINT).exists()
    assert torch.equal(straight.sharing, resumed.sharing)
    assert straight.curve == resumed.curve


def test_a_foreign_file_in_the_cache_is_one_line(digits):
    msr = make_msr(digits)
    (msr.result.directory / cache.FINAL).write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable MSR meta-training file"):
        make_msr(digits)


def test_the_run_model_gets_the_learned_sharing_frozen_in_its_stem(digits):
    from tailbench.models import create_model

    msr = make_msr(digits, seed=3)
    model = create_model("cifar_resnet8", num_classes=10, in_chans=1)
    ordinary_parameters = sum(p.numel() for p in model.parameters())
    wrapped = msr.wrap_model(model)
    stem = wrapped.stem[0]
    assert isinstance(stem, SharedConv2d) and stem is msr.stem
    assert torch.equal(stem.U, msr.result.sharing) and not stem.U.requires_grad
    assert "stem.0.U" not in dict(wrapped.named_parameters()) and "stem.0.v" in dict(wrapped.named_parameters())
    assert sum(p.numel() for p in wrapped.parameters()) == ordinary_parameters  # v has W's size
    assert sum(isinstance(m, SharedConv2d) for m in wrapped.modules()) == 1  # the first convolution only
    logits = wrapped(torch.rand(4, 1, 8, 8))
    assert logits.shape == (4, 10) and torch.isfinite(logits).all()


def test_a_model_whose_first_convolution_does_not_fit_is_one_line(digits):
    msr = make_msr(digits)
    with pytest.raises(UserError, match="does not take sharing meta-learned for kernel 3 with 4 copies"):
        msr.wrap_model(nn.Sequential(nn.Conv2d(1, 6, 3), nn.Flatten()))


def test_run_record_has_the_meta_training_curve_and_the_learned_figures(cli, tmp_path):
    hp = [a for k, v in TINY_HP.items() for a in ("--hp", f"{k}={v}")]
    result = cli("run", "--dataset", "digits-rot-lt", "--method", "ce+drs+msr", "--epochs", "2", "--out", tmp_path / "runs", "--quiet", *hp)
    assert result.code == 0, result.err
    [directory] = (tmp_path / "runs" / "digits-rot-lt@epochs=2").glob("ce+drs+msr@*/seed-0")
    record = json.loads((directory / "result.json").read_text())
    log = record["history"][0]["method"]
    assert [point["step"] for point in log["msr_meta_curve"]] == [1.0, 2.0]
    assert all(0 <= point["acc"] <= 1 and point["loss"] > 0 for point in log["msr_meta_curve"])
    assert log["msr_sharing"].startswith("digits-rot-lt/") and log["msr_meta_loaded"] is False
    assert record["history"][1]["method"] == {}
    summary = record["summary"]
    assert 0 < summary["learned_nuisance_change"] and 0 < summary["learned_nuisance_change_ordinary"]
    assert 1 <= summary["learned_sharing_rank"] <= 36
    from tailbench.submission.validate import validate_run

    assert validate_run(directory).ok
