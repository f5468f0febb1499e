"""GIT's MUNIT-style generator: shapes, losses, class-balanced sampling, cache and exact resume, CLI."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
import torch

from tailbench.errors import UserError
from tailbench.generative import cache
from tailbench.generative.model import GeneratorConfig, build_munit
from tailbench.generative.train import GeneratorTrainer, input_flip, to_signed, train_or_load

# Small enough for seconds on a loaded CPU; the defaults are the paper's.
TINY = GeneratorConfig(dim=8, n_res=1, mlp_dim=32, dis_dim=8, batch_size=16, iters=6)
TINY_OPTS = ["--opt", "dim=8", "--opt", "n_res=1", "--opt", "mlp_dim=32", "--opt", "dis_dim=8", "--opt", "batch_size=16"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions on a CPU shared with other jobs run far faster on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    from tailbench.datasets import get_dataset
    from tailbench.datasets.sources import default_data_dir

    return get_dataset("digits-lt").load(default_data_dir())


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 12, 16), (2, 16, 8)])
def test_shapes_for_any_channels_and_sides_divisible_by_4(shape):
    model = build_munit(shape, GeneratorConfig(dim=8, n_res=2, mlp_dim=16, dis_dim=8), seed=0)
    c, h, w = shape
    x = torch.rand(3, *shape) * 2 - 1
    content, style = model.content(x), model.style(x)
    assert content.shape == (3, 32, h // 4, w // 4)
    assert style.shape == (3, 8)
    out = model.decoder(content, model.random_style(3, torch.Generator().manual_seed(0), x.device))
    assert out.shape == x.shape and out.abs().max() <= 1
    score = model.dis(x)
    assert score.shape[:2] == (3, 1) and score.shape[2] >= 1 and score.shape[3] >= 1


def test_default_architecture_is_the_papers():
    model = build_munit((1, 28, 28), GeneratorConfig(), seed=0)
    x = torch.zeros(1, 1, 28, 28)
    assert model.content(x).shape == (1, 256, 7, 7)  # dim 64, two downsamplings
    assert sum(isinstance(m, torch.nn.Module) and type(m).__name__ == "ResBlock" for m in model.content.modules()) == 4
    assert len(model.decoder.blocks) == 4 and model.decoder.mlp[0].out_features == 256
    assert model.style(x).shape == (1, 8)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.dis.modules()) == 4 + 1  # 4 layers + the 1x1 score


def test_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = build_munit((1, 8, 8), TINY, seed=5)
    assert torch.equal(torch.rand(1), expected)
    b = build_munit((1, 8, 8), TINY, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("shape", [(1, 10, 8), (3, 8, 6)])
def test_sides_not_divisible_by_4_are_refused(shape):
    with pytest.raises(UserError, match="divisible by 4"):
        build_munit(shape, TINY, seed=0)


def test_class_balanced_sampling(digits):
    trainer = GeneratorTrainer(digits.train.x, digits.train.y, TINY, seed=0)
    drawn = torch.multinomial(trainer.weights, 20_000, replacement=True, generator=torch.Generator().manual_seed(0))
    share = torch.bincount(digits.train.y[drawn], minlength=10).float() / 20_000
    assert digits.train_counts.max() / digits.train_counts.min() >= 10  # the data is long-tailed ...
    assert torch.allclose(share, torch.full((10,), 0.1), atol=0.015)  # ... the draws are not


def test_flips_half_of_the_drawn_images_from_the_training_generator(digits):
    """flip: the class-balanced draw as before, then each image mirrored with probability 1/2,
    in one batched draw from the trainer's own generator (so a seed repeats it exactly)."""
    config = GeneratorConfig(**{**TINY.to_json(), "batch_size": 2000})
    plain, flipped, again = (GeneratorTrainer(digits.train.x, digits.train.y, config, seed=0, flip=f) for f in (False, True, True))
    x, y, z = plain.draw(), flipped.draw(), again.draw()
    assert torch.equal(y, z)
    as_is = (y == x).flatten(1).all(1)
    mirrored = (y == x.flip(3)).flatten(1).all(1)
    assert torch.all(as_is | mirrored)
    share = float((mirrored & ~as_is).sum()) / float((~(as_is & mirrored)).sum())  # among images a mirror changes
    assert 0.45 < share < 0.55, share
    # Without flips the draw is the plain class-balanced one, with nothing else drawn.
    alone = torch.Generator().manual_seed(0)
    expected = torch.multinomial(plain.weights, 2000, replacement=True, generator=alone)
    assert torch.equal(x, to_signed(digits.train.x[expected], 255.0))
    assert torch.equal(plain.rng.get_state(), alone.get_state())


@pytest.mark.parametrize("dataset_id, flip, expected", [
    ("k49-rot-lt", "auto", True),  # the reference's get_k49_data_loaders: RandomHorizontalFlip
    ("fmnist-bg-lt", "auto", True), ("fmnist-lt", "auto", True),  # K49's recipe
    ("digits-lt", "auto", True), ("digits-lt--n_max=30", "auto", True),
    ("cifar10-lt", "auto", True), ("cifar100-lt", "auto", True),  # the reference's CIFAR configs: flip_aug, no crop
    ("tinyimagenet-lt", "auto", True),
    ("gtsrb-lt", "auto", False), ("gtsrb-lt", "off", False),  # mirrored signs change class
    ("k49-rot-lt", "off", False), ("cifar10-lt", "on", True),
])
def test_input_flip_by_dataset(dataset_id, flip, expected):
    assert input_flip(GeneratorConfig(flip=flip), dataset_id) is expected


def test_a_flip_that_does_not_apply_is_refused_before_training(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(GeneratorTrainer, "step", lambda self: pytest.fail("trained"))
    on = GeneratorConfig(**{**TINY.to_json(), "flip": "on"})
    with pytest.raises(UserError, match="flip=on does not apply to gtsrb-lt: a mirrored traffic sign"):
        train_or_load(digits.train.x, digits.train.y, "gtsrb-lt", digits.manifest_sha256, on, 0, root=tmp_path, quiet=True)
    assert not (tmp_path / "generators").exists()


def test_the_trained_generator_records_its_flips(digits, tmp_path):
    """flip is part of the cache key: a generator trained without flips is not taken for one with."""
    args = (digits.train.x, digits.train.y, digits.dataset_id, digits.manifest_sha256)
    _, auto = train_or_load(*args, replace(TINY, iters=1), 0, root=tmp_path, quiet=True)
    _, off = train_or_load(*args, replace(TINY, iters=1, flip="off"), 0, root=tmp_path, quiet=True)
    assert auto != off
    assert json.loads((auto / "config.json").read_text())["flip"] is True
    assert json.loads((off / "config.json").read_text())["flip"] is False
    assert json.loads((auto / "config.json").read_text())["config"]["flip"] == "auto"


def _losses(config: GeneratorConfig, data, iters: int, warmup: int = 0, freeze_dis: bool = False) -> torch.Tensor:
    trainer = GeneratorTrainer(data.train.x, data.train.y, config, seed=0)
    for _ in range(warmup):
        trainer.step()
    if freeze_dis:
        for group in trainer.opt_dis.param_groups:
            group["lr"] = 0.0
    return torch.stack([trainer.step() for _ in range(iters)])  # columns: adv, img, style, content, dis


def _drop(series: torch.Tensor) -> tuple[float, float]:
    quarter = len(series) // 4
    return float(series[:quarter].mean()), float(series[-quarter:].mean())


ONLY = {"w_gan": 0.0, "w_img": 0.0, "w_style": 0.0, "w_content": 0.0}


@pytest.mark.parametrize("term, column", [("w_img", 1), ("w_style", 2), ("w_content", 3)])
def test_each_reconstruction_loss_decreases_when_trained(digits, term, column):
    """Each term's gradient path works: trained on its own for 32 iterations it goes down."""
    config = GeneratorConfig(**{**TINY.to_json(), **ONLY, term: 1.0, "lr": 1e-3})
    first, last = _drop(_losses(config, digits, 32)[:, column])
    assert last < 0.95 * first, (first, last)


def test_adversarial_losses_decrease_for_each_player(digits):
    """LSGAN: the discriminator's loss falls while it learns; against a discriminator that has
    learned for 16 iterations and is then frozen, the generator's adversarial loss falls as it
    learns to fool it."""
    config = GeneratorConfig(**{**TINY.to_json(), **ONLY, "w_gan": 1.0, "lr": 1e-3})
    first, last = _drop(_losses(config, digits, 32)[:, 4])
    assert last < 0.7 * first, ("discriminator", first, last)
    first, last = _drop(_losses(config, digits, 32, warmup=16, freeze_dis=True)[:, 0])
    assert last < 0.9 * first, ("generator", first, last)


def test_full_objective_decreases_at_the_papers_lr(digits):
    config = GeneratorConfig(**{**TINY.to_json(), "lr": 1e-4})
    losses = _losses(config, digits, 32)
    weights = torch.tensor([config.w_gan, config.w_img, config.w_style, config.w_content, 0.0])
    first, last = _drop(losses @ weights)
    assert last < 0.9 * first, (first, last)
    for name, column in (("img", 1), ("dis", 4)):
        first, last = _drop(losses[:, column])
        assert last < first, (name, first, last)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_after_an_interruption_gives_the_uninterrupted_state(digits, tmp_path):
    args = (digits.train.x, digits.train.y, digits.dataset_id, digits.manifest_sha256, TINY, 0)
    straight, _ = train_or_load(*args, root=tmp_path / "a", checkpoint_every=2, quiet=True)

    def interrupt(iteration: int) -> None:
        if iteration == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_or_load(*args, root=tmp_path / "b", checkpoint_every=2, quiet=True, on_checkpoint=interrupt)
    directory = cache.entry_dir(tmp_path / "b", *args[2:])
    assert (directory / cache.CHECKPOINT).is_file() and not (directory / cache.FINAL).exists()
    saved = torch.load(directory / cache.CHECKPOINT, weights_only=True)
    assert saved["state"]["iteration"] == 4
    resumed, _ = train_or_load(*args, root=tmp_path / "b", checkpoint_every=2, quiet=True)
    assert (directory / cache.FINAL).is_file() and not (directory / cache.CHECKPOINT).exists()
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_trainer_state_round_trips_exactly(digits):
    """Model, both optimizers, both schedulers, iteration and sampler state: continuing from a copy
    of the state is the same as continuing the original."""
    config = GeneratorConfig(**{**TINY.to_json(), "lr_step": 2})  # lr halvings inside the window
    one = GeneratorTrainer(digits.train.x, digits.train.y, config, seed=1)
    for _ in range(3):
        one.step()
    two = GeneratorTrainer(digits.train.x, digits.train.y, config, seed=1)
    buffer = io.BytesIO()  # a real copy (in-process state dicts share tensors), read as a checkpoint is
    torch.save(one.state_dict(), buffer)
    buffer.seek(0)
    two.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(one.step(), two.step())
    assert two.opt_gen.param_groups[0]["lr"] == pytest.approx(1e-4 / 4)
    a, b = _state(one.model), _state(two.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_finished_generator_is_reused_without_training(digits, tmp_path, monkeypatch):
    args = (digits.train.x, digits.train.y, digits.dataset_id, digits.manifest_sha256, TINY, 0)
    first, directory = train_or_load(*args, root=tmp_path, quiet=True)
    monkeypatch.setattr(GeneratorTrainer, "step", lambda self: pytest.fail("trained again"))
    again, same = train_or_load(*args, root=tmp_path, quiet=True)
    assert same == directory
    assert all(torch.equal(p, q) for p, q in zip(first.state_dict().values(), again.state_dict().values()))
    assert not any(p.requires_grad for p in again.parameters())


def test_cache_key_separates_dataset_manifest_config_and_seed(tmp_path, monkeypatch):
    base = cache.entry_dir(tmp_path, "digits-lt", "ab" * 32, TINY, 0)
    assert base.parent == tmp_path / "generators" / "digits-lt"
    others = [
        cache.entry_dir(tmp_path, "digits-rot-lt", "ab" * 32, TINY, 0),
        cache.entry_dir(tmp_path, "digits-lt", "cd" * 32, TINY, 0),
        cache.entry_dir(tmp_path, "digits-lt", "ab" * 32, GeneratorConfig(**{**TINY.to_json(), "iters": 7}), 0),
        cache.entry_dir(tmp_path, "digits-lt", "ab" * 32, TINY, 1),
        cache.entry_dir(tmp_path, "digits-lt", "ab" * 32, GeneratorConfig(**{**TINY.to_json(), "flip": "off"}), 0),
    ]
    assert len({base, *others}) == 6
    assert cache.entry_dir(tmp_path, "digits-lt", "ab" * 32, GeneratorConfig(**TINY.to_json()), 0) == base
    assert GeneratorConfig().with_options({"lr": "1e-4", "dim": "64"}).digest == GeneratorConfig().digest
    monkeypatch.setenv("TAILBENCH_CACHE", str(tmp_path / "elsewhere"))
    assert cache.cache_root() == tmp_path / "elsewhere"


def test_foreign_or_broken_checkpoints_are_refused(digits, tmp_path):
    args = (digits.train.x, digits.train.y, digits.dataset_id, digits.manifest_sha256, TINY, 0)
    _, directory = train_or_load(*args, root=tmp_path, quiet=True)
    other = cache.identity(digits.dataset_id, digits.manifest_sha256, TINY, 1, digits.image_shape)
    with pytest.raises(UserError, match="another dataset, config or seed"):
        cache.load(directory / cache.FINAL, other)
    (directory / cache.FINAL).write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable generator checkpoint"):
        train_or_load(*args, root=tmp_path, quiet=True)


def test_bad_generator_options():
    with pytest.raises(UserError, match="unknown generator option 'dims'"):
        GeneratorConfig().with_options({"dims": "8"})
    with pytest.raises(UserError, match="not a valid int"):
        GeneratorConfig().with_options({"dim": "eight"})
    with pytest.raises(UserError, match="must be positive"):
        GeneratorConfig().with_options({"batch_size": "0"})
    with pytest.raises(UserError, match="flip='sometimes' must be one of auto, on, off"):
        GeneratorConfig().with_options({"flip": "sometimes"})
    assert GeneratorConfig().with_options({"flip": "on"}).flip == "on"


# -- the command line ----------------------------------------------------------------------------

def test_cli_train_then_show(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TAILBENCH_CACHE", str(tmp_path / "cache"))
    result = cli("generator", "train", "--dataset", "digits-lt", "--iters", "4", "--checkpoint-every", "2", "--device", "cpu", *TINY_OPTS)
    assert result.code == 0, result.err
    finals = list((tmp_path / "cache" / "generators" / "digits-lt").glob("*/generator.pt"))
    assert len(finals) == 1 and (finals[0].parent / "config.json").is_file()
    out = tmp_path / "grid.png"
    result = cli("generator", "show", "--dataset", "digits-lt", "--iters", "4", "--styles", "3", "--out", out, *TINY_OPTS)
    assert result.code == 0, result.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    width, height = Image.open(out).size
    assert width > 100 and height > 100


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["train", "--dataset", "digits-lt", "--iters", "0"], "--iters must be a positive integer"),
    (["train", "--dataset", "digits-lt", "--seed", "-1"], "--seed must be a non-negative integer"),
    (["train", "--dataset", "digits-lt", "--opt", "dims=8"], "unknown generator option 'dims'"),
    (["train", "--dataset", "digits-lt", "--opt", "dim"], "not of the form key=value"),
    (["train", "--dataset", "digits-lt", "--opt", "flip=maybe"], "flip='maybe' must be one of auto, on, off"),
    (["train", "--dataset", "digits-lt", "--iters", "3", "--opt", "iters=4"], "give the iterations once"),
    (["train", "--dataset", "digits-lt", "--checkpoint-every", "0"], "--checkpoint-every must be a positive integer"),
    (["train", "--dataset", "digits-lt", "--dataset-opt", "n_max=x"], "n_max"),
    (["train", "--dataset", "digits-lt", "--device", "tpu"], "--device 'tpu'"),
    (["show", "--dataset", "digits-lt", "--out", "grid.jpg"], "give a .png file name"),
    (["show", "--dataset", "digits-lt", "--styles", "0"], "--styles must lie in 1..32"),
    (["show", "--dataset", "digits-lt", "--seed", "7"], "no trained generator for digits-lt"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_errors_are_one_line_exit_2(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("TAILBENCH_CACHE", str(tmp_path / "cache"))
    result = cli("generator", *args)
    assert result.code == 2
    assert message in result.error_line()


def test_cli_missing_data_is_one_line(cli, tmp_path, monkeypatch):
    from tailbench.datasets import fashion_mnist

    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", [])
    monkeypatch.setenv("TAILBENCH_CACHE", str(tmp_path / "cache"))
    result = cli("generator", "train", "--dataset", "fmnist-rot-lt", "--data-dir", tmp_path / "empty")
    assert result.code == 2
    assert "train-images-idx3-ubyte" in result.error_line()
    assert not (tmp_path / "cache").exists()


def test_a_longer_training_keeps_the_shorter_generator_on_its_way(digits, tmp_path):
    """Training to 6 iterations with keep_at=(3,) stores exactly what a 3-iteration training makes."""
    from dataclasses import replace

    short = replace(TINY, iters=3)
    base = (digits.train.x, digits.train.y, digits.dataset_id, digits.manifest_sha256)
    train_or_load(*base, TINY, 0, root=tmp_path / "long", quiet=True, keep_at=(3,))
    kept, kept_dir = train_or_load(*base, short, 0, root=tmp_path / "long", quiet=True, checkpoint_every=10**9)
    direct, _ = train_or_load(*base, short, 0, root=tmp_path / "direct", quiet=True)
    a, b = _state(kept), _state(direct)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((kept_dir / "config.json").read_text())["kept_from"] == TINY.digest


def test_keep_at_outside_the_training_is_one_line(cli):
    result = cli("generator", "train", "--dataset", "digits-lt", "--iters", "5", "--keep-at", "5", *TINY_OPTS)
    assert result.code == 2 and "--keep-at 5 must lie between 1 and the 5 training iterations" in result.error_line()
