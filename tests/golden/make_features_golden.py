#!/usr/bin/env python3
"""Generates the golden fixtures for `tests/golden_features.rs`.

How to run (from the crate root; needs numpy and opencv-python-headless):

    pip install numpy opencv-python-headless
    python3 tests/golden/make_features_golden.py

It writes small deterministic RGB test images to `tests/golden/features/img_<i>.png` and, for
each, the 23 feature channels computed with OpenCV/numpy to `tests/golden/features/img_<i>.npy`
(float32, shape (H, W, 23), channel order = `Channel::ALL`). This script is the reference
implementation of the channel definitions that `src/preprocess/features.rs` ports; re-running it
rewrites the same files byte for byte (fixed seeds, no timestamps in the .npy files).
"""

import os

import cv2
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "features")

ALL = [
    "R", "G", "B", "H", "S", "V", "Y", "Cr", "Cb", "LAB_L", "LAB_a", "LAB_b", "LCh_C",
    "LCh_sinH", "LCh_cosH", "r_chroma", "g_chroma", "Opp_O1", "Opp_O2", "Opp_O3", "GradMag",
    "Laplacian", "LocalStd",
]


def robust(x):
    """Clips x to its own 1st..99th percentile and maps that range to [0, 1]."""
    x = x.astype(np.float32)
    p1, p99 = np.percentile(x, [1, 99])
    return (np.clip(x, p1, p99) - p1) / (p99 - p1 + 1e-7)


def features(img):
    """All 23 channels of an RGB uint8 image, as float32 (H, W, 23)."""
    rgb = img.astype(np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    ycc = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2Lab).astype(np.float32)

    lum = lab[..., 0] / 255.0  # LAB_L: the 8-bit L / 255 (the original divided by 100)
    a_star = lab[..., 1] - 128.0
    b_star = lab[..., 2] - 128.0
    hue = np.arctan2(b_star, a_star)
    total = r + g + b + 1e-7

    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)
    grad = np.sqrt(gx * gx + gy * gy)
    lap = cv2.Laplacian(lum, cv2.CV_32F)
    mean = cv2.blur(lum, (3, 3))
    mean_sq = cv2.blur(lum * lum, (3, 3))
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0))

    chans = {
        "R": r / 255.0,
        "G": g / 255.0,
        "B": b / 255.0,
        "H": hsv[..., 0] / 179.0,
        "S": hsv[..., 1] / 255.0,
        "V": hsv[..., 2] / 255.0,
        "Y": ycc[..., 0] / 255.0,
        "Cr": ycc[..., 1] / 255.0,
        "Cb": ycc[..., 2] / 255.0,
        "LAB_L": lum,
        "LAB_a": lab[..., 1] / 255.0,
        "LAB_b": lab[..., 2] / 255.0,
        "LCh_C": robust(np.sqrt(a_star * a_star + b_star * b_star)),
        "LCh_sinH": np.sin(hue) * 0.5 + 0.5,
        "LCh_cosH": np.cos(hue) * 0.5 + 0.5,
        "r_chroma": r / total,
        "g_chroma": g / total,
        "Opp_O1": robust(r - g),
        "Opp_O2": robust((r + g) / 2.0 - b),
        "Opp_O3": ((r + g + b) / 3.0) / 255.0,
        "GradMag": grad / (grad.max() + 1e-7),
        "Laplacian": robust(lap),
        "LocalStd": std / (std.max() + 1e-7),
    }
    return np.stack([chans[n].astype(np.float32) for n in ALL], axis=-1)


def gradient(h, w):
    """A smooth colour gradient: R along x, G along y, B along the diagonal."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = x / (w - 1) * 255
    g = y / (h - 1) * 255
    b = 255 - (x + y) / (w + h - 2) * 255
    return np.round(np.stack([r, g, b], -1)).astype(np.uint8)


def noise(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def patches(h, w):
    """4x4 patches of saturated, gray, black and white colours with hard edges."""
    colours = [
        (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
        (0, 255, 255), (255, 0, 255), (255, 255, 255), (0, 0, 0),
        (128, 128, 128), (40, 40, 40), (255, 128, 0), (10, 200, 90),
    ]
    img = np.zeros((h, w, 3), np.uint8)
    k = 0
    for py in range(0, h, 4):
        for px in range(0, w, 4):
            img[py:py + 4, px:px + 4] = colours[k % len(colours)]
            k += 1
    # one noisy 4x4 block so that the percentiles have more than a handful of distinct values
    img[4:8, 4:8] = noise(4, 4, 7)
    return img


def main():
    os.makedirs(OUT, exist_ok=True)
    images = [
        gradient(12, 16),
        noise(12, 16, 1234),
        patches(12, 16),
        noise(2, 3, 99),  # tiny: 2-row / 3-column borders
        noise(1, 5, 5),  # a single row: REFLECT_101 degenerates to the row itself
    ]
    for i, img in enumerate(images):
        png = os.path.join(OUT, f"img_{i}.png")
        # cv2 writes BGR; store RGB pixels exactly
        cv2.imwrite(png, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        back = cv2.cvtColor(cv2.imread(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert np.array_equal(back, img)
        feats = features(img)
        assert feats.shape == img.shape[:2] + (23,) and feats.dtype == np.float32
        assert np.isfinite(feats).all() and feats.min() >= 0 and feats.max() <= 1, i
        np.save(os.path.join(OUT, f"img_{i}.npy"), feats)
        print(f"img_{i}: {img.shape[1]}x{img.shape[0]}")


if __name__ == "__main__":
    main()
