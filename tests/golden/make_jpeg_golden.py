#!/usr/bin/env python3
"""Generates the expected pixels for `tests/golden_jpeg.rs`.

How to run (from the crate root; needs pillow, numpy and opencv-python-headless):

    cargo test --release --test golden_jpeg -- --ignored write_fixtures
    python3 tests/golden/make_jpeg_golden.py

For every `tests/golden/jpeg/<name>.jpg` (written by the Rust test generator) it writes
`<name>.png`: the pixels `PIL.Image.open` decodes (libjpeg-turbo), as 8-bit gray for gray
JPEGs and RGB otherwise (CMYK through PIL's `convert("RGB")`), with the EXIF orientation
applied as OpenCV's `imread` and pixal do. It checks on the way that `cv2.imread` returns the
same pixels (for the colour and gray files). For the real photo of `../shared/fixtures/real/`
it writes the SHA-256 of PIL's RGB bytes to `real_fixture.txt`. For `rgb420_q85_16x16.jpg` it
also writes the 23 feature channels of `make_features_golden.py` computed on `cv2.imread`'s
pixels (`rgb420_q85_16x16_features.npy`): features from JPEG input must equal OpenCV's.
"""

import glob
import hashlib
import os
import sys

import cv2
import numpy as np
from PIL import Image, ImageOps, features

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_features_golden import features as feature_channels  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "jpeg")
REAL = os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "real", "flex_f1_front_raw.jpg")


def pil_pixels(path):
    with Image.open(path) as im:
        im.load()
        mode = im.mode
        im = ImageOps.exif_transpose(im)
        if mode == "L":
            return np.asarray(im), mode
        return np.asarray(im.convert("RGB")), mode


def main():
    print("PIL", Image.__version__, "libjpeg-turbo", features.version("libjpeg_turbo"),
          "OpenCV", cv2.__version__)
    files = sorted(glob.glob(os.path.join(OUT, "*.jpg")))
    assert files, "no fixtures: run the write_fixtures test first"
    for f in files:
        px, mode = pil_pixels(f)
        Image.fromarray(px).save(f[:-4] + ".png", optimize=False, compress_level=9)
        if mode in ("L", "RGB"):
            cv = cv2.imread(f, cv2.IMREAD_GRAYSCALE if mode == "L" else cv2.IMREAD_COLOR)
            if cv.ndim == 3:
                cv = cv[..., ::-1]
            assert cv.shape == px.shape and (cv == px).all(), f"{f}: OpenCV differs from PIL"
        print(os.path.basename(f), mode, px.shape)
    feat_src = os.path.join(OUT, "rgb420_q85_16x16.jpg")
    rgb = np.ascontiguousarray(cv2.imread(feat_src, cv2.IMREAD_COLOR)[..., ::-1])
    np.save(os.path.join(OUT, "rgb420_q85_16x16_features.npy"),
            feature_channels(rgb).astype(np.float32))
    if os.path.exists(REAL):
        px, _ = pil_pixels(REAL)
        cv = cv2.imread(REAL)[..., ::-1]
        assert (cv == px).all(), "real photo: OpenCV differs from PIL"
        digest = hashlib.sha256(np.ascontiguousarray(px).tobytes()).hexdigest()
        with open(os.path.join(OUT, "real_fixture.txt"), "w") as fh:
            fh.write(f"{os.path.basename(REAL)} {digest} {px.shape[1]} {px.shape[0]}\n")
        print("real photo", digest)


if __name__ == "__main__":
    main()
