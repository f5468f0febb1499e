"""The oracle: fresh draws of the dataset's own nuisance on the clean train images."""

import pytest
import torch

from tailbench.datasets.base import LongTailedData, Split
from tailbench.errors import UserError
from tailbench.methods import ComposedMethod, MethodContext
from tailbench.methods.base import Batch, StepState
from tailbench.nuisance import get_family

COUNTS = [12, 3]  # class 0 is large, class 1 small


def fake_data(nuisance: str | None) -> LongTailedData:
    generator = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * COUNTS[0] + [1] * COUNTS[1])
    clean = torch.zeros(len(y), 1, 10, 10, dtype=torch.uint8)
    clean[:, :, 3:7, 2:8] = torch.randint(100, 256, (len(y), 1, 4, 6), generator=generator, dtype=torch.uint8)
    drawn = clean if nuisance is None else (get_family(nuisance)(clean.float() / 255, generator) * 255).round().to(torch.uint8)
    split = Split(drawn, y)
    return LongTailedData(
        dataset_id=f"toy-{nuisance}", name="toy", options={}, class_names=["a", "b"], train=split, val=split, test=split,
        invariance_families=(), manifest_sha256="", manifest_frozen=False, nuisance=nuisance,
        train_clean=None if nuisance is None else clean, test_clean=None if nuisance is None else clean,
    )


def oracle(data: LongTailedData, **hp: str) -> ComposedMethod:
    ctx = MethodContext(2, data.train_counts, 2, 1, torch.device("cpu"), 0, data.image_shape, data.nuisance)
    method = ComposedMethod("ce+oracle", ctx, {f"oracle.{k}": v for k, v in hp.items()})
    method.prepare(data)
    return method


def batch_of(data: LongTailedData, idx: torch.Tensor) -> Batch:
    return Batch(data.train.x[idx].float() / 255, data.train.y[idx], idx)


@pytest.mark.parametrize("family", ["rot", "bg", "dil"])
def test_oracle_applies_a_fresh_draw_of_the_family_to_the_clean_images(family):
    data = fake_data(family)
    method = oracle(data)
    idx = torch.tensor([14, 0, 5, 5, 13])
    out = method.augment(batch_of(data, idx), StepState(0, 0, torch.Generator().manual_seed(11)))
    fam = get_family(family)
    reference = torch.Generator().manual_seed(11)
    expected = fam.apply(data.train_clean[idx].float() / 255, fam.sample(len(idx), reference))
    assert torch.equal(out.x, expected)
    assert torch.equal(out.y, data.train.y[idx]) and torch.equal(out.idx, idx)
    if family != "bg":  # two draws for the same image differ (the bg draw may repeat a level)
        assert not torch.equal(out.x[2], out.x[3])


def test_threshold_leaves_large_classes_untouched():
    data = fake_data("rot")
    method = oracle(data, max_class_size="5")
    idx = torch.arange(len(data.train.y))
    batch = batch_of(data, idx)
    out = method.augment(batch, StepState(0, 0, torch.Generator().manual_seed(3)))
    large, small = data.train.y == 0, data.train.y == 1
    assert torch.equal(out.x[large], batch.x[large])
    fam = get_family("rot")
    expected = fam.apply(data.train_clean.float() / 255, fam.sample(len(idx), torch.Generator().manual_seed(3)))
    assert torch.equal(out.x[small], expected[small])


def test_threshold_zero_means_every_class():
    data = fake_data("rot")
    idx = torch.arange(len(data.train.y))
    batch = batch_of(data, idx)
    out = oracle(data, max_class_size="0").augment(batch, StepState(0, 0, torch.Generator().manual_seed(3)))
    assert not torch.equal(out.x[data.train.y == 0], batch.x[data.train.y == 0])


def test_dataset_without_nuisance_is_refused_in_prepare():
    with pytest.raises(UserError, match="dataset toy-None has no known nuisance; the oracle needs one"):
        oracle(fake_data(None))


def test_negative_threshold_is_refused():
    with pytest.raises(UserError, match="max_class_size"):
        oracle(fake_data("rot"), max_class_size="-1")


def test_cli_without_nuisance_is_one_clear_line(cli, tmp_path):
    result = cli("run", "--dataset", "digits-lt", "--method", "ce+oracle", "--epochs", "1", "--out", tmp_path, "--quiet")
    assert result.code == 2
    line = result.error_line()
    assert "digits-lt has no known nuisance; the oracle needs one (e.g. fmnist-rot-lt)" in line
    assert not any(tmp_path.iterdir())

