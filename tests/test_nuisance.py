import torch

from tailbench.nuisance import FAMILIES, Background, DilationErosion, Rotation, apply_fixed_draw, get_family


def images(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 8:20, 10:18] = torch.rand(n, 1, 12, 8, generator=g) * 0.8 + 0.2
    return x


def test_rotation_by_zero_is_the_identity():
    x = images()
    assert torch.allclose(Rotation().apply(x, torch.zeros(len(x))), x, atol=1e-5)


def test_rotation_by_90_degrees_matches_rot90():
    x = images()
    rotated = Rotation(mode="bilinear").apply(x, torch.full((len(x),), 90.0))
    expected = [torch.rot90(x, k, dims=(2, 3)) for k in (1, -1)]
    assert min(float((rotated - e).abs().max()) for e in expected) < 1e-4


def test_rotation_angles_are_uniform_in_range():
    angles = Rotation().sample(20000, torch.Generator().manual_seed(0))
    assert angles.min() >= -180 and angles.max() <= 180
    assert abs(float(angles.mean())) < 5 and float((angles > 90).float().mean()) > 0.2


def test_background_changes_only_zero_pixels_to_one_level_per_image():
    x = images()
    out = Background()(x, torch.Generator().manual_seed(1))
    assert torch.equal(out[x > 0], x[x > 0])
    for image, original in zip(out, x):
        levels = image[original == 0].unique()
        assert levels.numel() == 1 and 0 <= float(levels) * 255 <= 99.0001


def test_dilation_thickens_and_erosion_thins():
    x = images()
    family = DilationErosion()
    n = len(x)
    for code in range(3):
        assert torch.all(family.apply(x, torch.full((n,), code)) >= x)
    for code in (3, 4):
        assert torch.all(family.apply(x, torch.full((n,), code)) <= x)
    assert torch.equal(family.apply(x, torch.full((n,), 3)), x)  # erosion with k = 1
    assert family.apply(x, torch.full((n,), 2)).sum() > family.apply(x, torch.full((n,), 0)).sum()


def test_dilation_draws_dilate_with_probability_0_6():
    codes = DilationErosion().sample(20000, torch.Generator().manual_seed(0))
    assert abs(float((codes < 3).float().mean()) - 0.6) < 0.02
    assert set(codes.unique().tolist()) == {0, 1, 2, 3, 4}


def test_every_family_is_seeded_and_shape_preserving():
    x = images()
    for family in FAMILIES.values():
        a = family(x, torch.Generator().manual_seed(7))
        b = family(x, torch.Generator().manual_seed(7))
        assert a.shape == x.shape and torch.equal(a, b)
        assert a.min() >= 0 and a.max() <= 1


def test_fixed_draw_does_not_depend_on_chunk_size():
    x = (images(40) * 255).round().to(torch.uint8)
    family = get_family("rot")
    assert torch.equal(apply_fixed_draw(x, family, 3, chunk=7), apply_fixed_draw(x, family, 3, chunk=1000))
