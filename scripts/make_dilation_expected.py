"""Write tests/data/dilation_opencv_expected.npz: OpenCV's dilate / erode of small uint8 arrays.

    .venv/bin/pip install opencv-python-headless
    .venv/bin/python scripts/make_dilation_expected.py

The DIL nuisance of the reference code calls cv2.dilate(im, np.ones((k, k), np.uint8)) and
cv2.erode(im, np.ones((k, k), np.uint8)) with OpenCV's defaults (anchor (-1, -1), one iteration,
constant border with morphologyDefaultBorderValue()). This script records what those calls return
so that tests/test_dilation_opencv.py can check tailbench's batched torch version without OpenCV.

Contents, for each shape S in 7x9 and 28x28:
    in_S              [N, H, W] uint8 inputs: random 0..255 arrays (28x28: one dense, one with 80%
                      of the pixels black), then (7x9 only) a single bright
                      pixel on black and a single dark pixel on white at each corner and one pixel
                      in from each corner, to pin down the anchor of even kernels
    dilate_k{k}_S     cv2.dilate of every input with a k x k kernel of ones, k = 2..4
    erode_k{k}_S      cv2.erode likewise (k = 1 is not stored: the script checks that OpenCV
                      returns the input itself for a 1 x 1 kernel)
    opencv_version    the cv2.__version__ that made the file
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

KERNEL_SIZES = (1, 2, 3, 4)
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "dilation_opencv_expected.npz"


def single_pixel_inputs(height: int, width: int) -> np.ndarray:
    spots = []
    for inset in (0, 1):
        for row in (inset, height - 1 - inset):
            for col in (inset, width - 1 - inset):
                spots.append((row, col))
    images = []
    for background, value in ((0, 255), (255, 0)):
        for row, col in spots:
            image = np.full((height, width), background, np.uint8)
            image[row, col] = value
            images.append(image)
    return np.stack(images)


def inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    small = np.concatenate([rng.integers(0, 256, (4, 7, 9), dtype=np.uint8), single_pixel_inputs(7, 9)])
    noise = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    sparse = noise[1] * (rng.random((28, 28)) < 0.2)  # mostly black, like a digit's background
    large = np.stack([noise[0], sparse.astype(np.uint8)])
    return {"7x9": small, "28x28": large}


def main() -> None:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    arrays: dict[str, np.ndarray] = {"opencv_version": np.array(cv2.__version__)}
    for shape, images in inputs(args.seed).items():
        arrays[f"in_{shape}"] = images
        for k in KERNEL_SIZES:
            kernel = np.ones((k, k), np.uint8)
            for op_name, op in (("dilate", cv2.dilate), ("erode", cv2.erode)):
                out = np.stack([op(image, kernel, iterations=1) for image in images])
                # The same call on float32 images k/255 gives the uint8 answer divided by 255.
                as_float = np.stack([op(image.astype(np.float32) / np.float32(255), kernel, iterations=1) for image in images])
                assert np.array_equal(as_float, out.astype(np.float32) / np.float32(255)), (op_name, k, shape)
                if k == 1:
                    assert np.array_equal(out, images), (op_name, shape)
                else:
                    arrays[f"{op_name}_k{k}_{shape}"] = out
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, OpenCV {cv2.__version__})")


if __name__ == "__main__":
    main()
