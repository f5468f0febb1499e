"""The DIL nuisance against OpenCV: tailbench's batched dilation / erosion must return what the
reference code's cv2.dilate / cv2.erode (k x k kernel of ones, default anchor and border) return.

The expected arrays in tests/data/dilation_opencv_expected.npz were made by
scripts/make_dilation_expected.py with OpenCV, so these tests need no OpenCV; the last test also
compares with cv2 directly when it is importable.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from tailbench.nuisance import DilationErosion, _max_filter, apply_fixed_draw

DATA = Path(__file__).parent / "data" / "dilation_opencv_expected.npz"
SHAPES = ("7x9", "28x28")
CASES = [(op, k) for op in ("dilate", "erode") for k in (1, 2, 3, 4)]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def expected():
    with np.load(DATA, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def morph(x: torch.Tensor, op: str, k: int) -> torch.Tensor:
    return _max_filter(x, k) if op == "dilate" else -_max_filter(-x, k)


def as_float(images: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """[N, H, W] uint8 -> [N, 1, H, W] float32 in [0, 1], as apply_fixed_draw converts them."""
    return torch.from_numpy(images).to(device).float().div_(255.0).unsqueeze(1)


def opencv_answer(expected, op: str, k: int, shape: str) -> np.ndarray:
    return expected[f"in_{shape}"] if k == 1 else expected[f"{op}_k{k}_{shape}"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op,k", CASES)
def test_max_filter_matches_opencv_exactly(expected, op, k, shape, device):
    images = expected[f"in_{shape}"]
    want = opencv_answer(expected, op, k, shape)
    got = morph(as_float(images, device), op, k)
    assert torch.equal(got, as_float(want, device))  # float [0, 1]: the very same values v / 255
    as_uint8 = got.mul(255.0).round_().to(torch.uint8).squeeze(1).cpu().numpy()
    mismatch = np.argwhere(as_uint8 != want)
    assert mismatch.size == 0, f"{op} k={k} {shape}: {len(mismatch)} pixels differ from OpenCV, first at {mismatch[:5].tolist()}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
def test_family_apply_matches_opencv_with_mixed_codes_in_one_batch(expected, shape, device):
    family = DilationErosion()
    kernels = [("dilate", k) for k in family.dilate_sizes] + [("erode", k) for k in family.erode_sizes]
    images = expected[f"in_{shape}"]
    n = len(images)
    repeats = len(kernels)
    batch = np.concatenate([images] * repeats)  # every image under every code, codes interleaved
    codes = torch.arange(n * repeats, device=device) % repeats
    got = family.apply(as_float(batch, device), codes).squeeze(1).cpu()
    for i, code in enumerate(codes.tolist()):
        op, k = kernels[code]
        want = torch.from_numpy(opencv_answer(expected, op, k, shape)[i % n]).float() / 255.0
        assert torch.equal(got[i], want), (i, op, k)


def test_fixed_draw_on_uint8_images_matches_opencv(expected):
    family = DilationErosion()
    kernels = [("dilate", k) for k in family.dilate_sizes] + [("erode", k) for k in family.erode_sizes]
    images = np.concatenate([expected["in_7x9"]] * 6)
    seed = 5
    codes = family.sample(len(images), torch.Generator().manual_seed(seed)).tolist()
    assert set(codes) == set(range(len(kernels)))
    got = apply_fixed_draw(torch.from_numpy(images).unsqueeze(1), family, seed, chunk=17).squeeze(1).numpy()
    n = len(expected["in_7x9"])
    for i, code in enumerate(codes):
        op, k = kernels[code]
        assert np.array_equal(got[i], opencv_answer(expected, op, k, "7x9")[i % n]), (i, op, k)


@pytest.mark.parametrize("k", (2, 3, 4))
def test_even_kernels_reach_up_and_left_as_opencv_anchors_them(k):
    """OpenCV's default anchor is (k // 2, k // 2): a bright pixel spreads k // 2 down / right and
    (k - 1) // 2 up / left. At the top-left corner it spreads over k // 2 + 1 rows and columns; at
    the bottom-right corner over (k - 1) // 2 + 1. The border never wins."""
    x = torch.zeros(2, 1, 7, 9)
    x[0, 0, 0, 0] = 1.0
    x[1, 0, -1, -1] = 1.0
    out = _max_filter(x, k)
    down, up = k // 2, (k - 1) // 2
    top_left = torch.zeros(7, 9)
    top_left[: down + 1, : down + 1] = 1.0
    bottom_right = torch.zeros(7, 9)
    bottom_right[7 - 1 - up :, 9 - 1 - up :] = 1.0
    assert torch.equal(out[0, 0], top_left)
    assert torch.equal(out[1, 0], bottom_right)
    # Erosion uses the same window: a dark pixel on white spreads the same way; white stays at the border.
    eroded = -_max_filter(-(1.0 - x), k)
    assert torch.equal(eroded[0, 0], 1.0 - top_left)
    assert torch.equal(eroded[1, 0], 1.0 - bottom_right)


def test_committed_expectations_still_match_opencv_when_it_is_installed(expected):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    fresh = [rng.integers(0, 256, (3, 7, 9), dtype=np.uint8), rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)]
    for op, k in CASES:
        kernel = np.ones((k, k), np.uint8)
        call = cv2.dilate if op == "dilate" else cv2.erode
        for shape in SHAPES:
            images = expected[f"in_{shape}"]
            want = np.stack([call(image, kernel) for image in images])
            assert np.array_equal(want, opencv_answer(expected, op, k, shape)), (op, k, shape)
        for images in fresh:
            want_uint8 = np.stack([call(image, kernel) for image in images])
            want_float = np.stack([call(image.astype(np.float32) / np.float32(255), kernel) for image in images])
            got = morph(as_float(images), op, k).squeeze(1).numpy()
            assert np.array_equal(got, want_float), (op, k, images.shape)
            assert np.array_equal(np.round(got * 255).astype(np.uint8), want_uint8), (op, k, images.shape)
