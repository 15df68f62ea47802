#!/usr/bin/env python3
"""Generates the golden fixture for the pixel_stats test in `tests/train.rs`.

How to run (from the crate root; needs numpy):

    python3 tests/golden/make_pixel_stats_golden.py

It writes `tests/golden/pixel_stats/data.npy` (float32, (7, 12, 2): 7 images of 12 pooled
pixels x 2 channels, values like make_input's 0..255 channels, one constant pixel), and the
reference statistics of the scaled data `X / X.max()` over all 7 images, computed by numpy:
`mean.npy` = `np.mean(Xs, axis=0)` and `std.npy` = `np.std(Xs, axis=0)` (ddof=0), both
float32 (12, 2), accumulated in float64 as pixal does. Fixed seed: re-running rewrites the same
bytes.
"""

import os

import numpy as np

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pixel_stats")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20240601)
x = rng.uniform(0.0, 255.0, size=(7, 12, 2)).astype(np.float32)
x[:, 3, :] = 128.0  # a pixel that never changes: std 0
x[:, 5, 1] = np.round(x[:, 5, 1])  # integer-valued, as 8-bit channels are
xs = x.astype(np.float64) / np.float64(x.max())
np.save(os.path.join(out, "data.npy"), x)
np.save(os.path.join(out, "mean.npy"), xs.mean(axis=0).astype(np.float32))
np.save(os.path.join(out, "std.npy"), xs.std(axis=0).astype(np.float32))
print("wrote", out)
