#!/usr/bin/env python3
"""Golden SSIM / MSE values for pixal's alignment scores (tests/align.rs).

Writes small 8-bit gray image pairs to tests/golden/ssim/pair_<i>_{a,b}.png and, in
tests/golden/ssim/expected.json, for each pair:
  * "ssim": skimage.metrics.structural_similarity(a, b, win_size=3, data_range=255) -- the
    original PIXAL's score: 3x3 uniform window, K1 0.01, K2 0.03, sample covariance, mean over
    the image without its 1-pixel border;
  * "mse": numpy mean of (a - b)^2 as floats (the original's uint8 version wraps around).

Needs numpy, scikit-image and Pillow:  pip install scikit-image pillow
Run from anywhere:  python3 tests/golden/make_ssim_golden.py
"""
import json
import os

import numpy as np
from PIL import Image
import skimage
from skimage.metrics import structural_similarity

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ssim")


def pairs():
    rng = np.random.default_rng(20240611)
    out = []
    # 1. Noise against a noisier copy.
    a = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    out.append(("noise vs noisier", a, b))
    # 2. Smooth ramp pattern against a one-pixel shift with black edge (like a warp's border).
    y, x = np.mgrid[0:40, 0:57]
    a = (127 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)).astype(np.uint8)
    b = np.zeros_like(a)
    b[:, 1:] = a[:, :-1]
    out.append(("ramp vs shifted", a, b))
    # 3. A 'part' on black: rectangles and text-like strokes, and a brighter, blurred copy.
    a = np.zeros((60, 80), dtype=np.uint8)
    a[10:50, 12:70] = 90
    a[20:24, 15:65] = 220
    a[30:45:3, 20:60] = 160
    k = np.ones(3) / 3.0
    blur = np.apply_along_axis(lambda r: np.convolve(r, k, mode="same"), 1, a.astype(float))
    blur = np.apply_along_axis(lambda c: np.convolve(c, k, mode="same"), 0, blur)
    b = np.clip(blur * 1.1 + 5, 0, 255).round().astype(np.uint8)
    out.append(("part vs brighter blur", a, b))
    # 4. Identical images.
    out.append(("identical", a, a.copy()))
    # 5. Flat images of different levels (the C1/C2 terms only).
    out.append(("flat levels", np.full((9, 11), 40, np.uint8), np.full((9, 11), 200, np.uint8)))
    # 6. The smallest image scikit-image accepts: 3x3 (a single window).
    out.append(("3x3", np.array([[0, 10, 20], [30, 40, 50], [60, 70, 80]], np.uint8),
                np.array([[5, 10, 20], [30, 45, 50], [60, 70, 90]], np.uint8)))
    # 7. Extremes: black against white, with a checkerboard.
    c = (np.indices((16, 16)).sum(axis=0) % 2 * 255).astype(np.uint8)
    out.append(("checker vs inverse", c, 255 - c))
    return out


def main():
    os.makedirs(HERE, exist_ok=True)
    expected = {"skimage": skimage.__version__, "pairs": []}
    for i, (label, a, b) in enumerate(pairs()):
        Image.fromarray(a, mode="L").save(os.path.join(HERE, f"pair_{i}_a.png"))
        Image.fromarray(b, mode="L").save(os.path.join(HERE, f"pair_{i}_b.png"))
        s = structural_similarity(a, b, win_size=3, data_range=255)
        m = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
        expected["pairs"].append({"index": i, "label": label, "ssim": float(s), "mse": m})
        print(f"{i}: {label:<24} ssim {s:.12f}  mse {m:.6f}")
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
