#!/usr/bin/env python3
"""Makes the realistic demo's embedded part images from the real microscope photo.

Inputs (not shipped): the 1920x1080 photo `flex_f1_front_raw.jpg` and rembg's RGBA cut-out of it
`flex_f1_front_rembg.png` (see /work/shared/fixtures/real/). Outputs, next to this script:
  part_rgb.jpg    the part's colours (RGB, JPEG q93), cropped around the part with a margin;
                  where the cut-out is semi-transparent (alpha < 0.9) and outside the part the
                  nearest solid part colour is extended (inpainting), so the part can be
                  composited over any backlight without a pink fringe;
  part_alpha.png  the part's opacity (8-bit gray), same crop: rembg's alpha restricted to the
                  largest connected part (its faint speckles elsewhere removed).
Usage: python3 make_assets.py RAW.jpg REMBG.png
"""
import sys

import cv2
import numpy as np
from PIL import Image

MARGIN = 24  # pixels around the part's bounding box (room for the soft edge)

raw = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(np.float32)
alpha = np.asarray(Image.open(sys.argv[2]).convert("RGBA"))[:, :, 3].astype(np.float32) / 255.0

# The part: the largest connected region of the solid alpha, with the soft edge around it.
solid = (alpha > 0.5).astype(np.uint8)
n, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
part = (labels == biggest).astype(np.uint8)
near = cv2.dilate(part, np.ones((9, 9), np.uint8)) > 0
alpha = np.where(near, alpha, 0.0)
alpha[alpha < 0.02] = 0.0

ys, xs = np.nonzero(part)
x0, x1 = xs.min() - MARGIN, xs.max() + 1 + MARGIN
y0, y1 = ys.min() - MARGIN, ys.max() + 1 + MARGIN
raw, alpha = raw[y0:y1, x0:x1], alpha[y0:y1, x0:x1]

# The backlight around the part (reported only).
ring = (alpha == 0.0) & (cv2.dilate((alpha > 0).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0)
bg = np.median(raw[ring], axis=0)
fg = raw
# Where the part is less than nearly solid, the unmixing is unstable (the backlight varies
# along the edge): take the nearest solid colour.
unsure = (alpha < 0.9).astype(np.uint8)
fg8 = cv2.inpaint(fg.astype(np.uint8), unsure, 5, cv2.INPAINT_TELEA)
fg8 = np.where(unsure[:, :, None] == 1, fg8, fg.round().astype(np.uint8))

Image.fromarray(fg8).save("part_rgb.jpg", quality=93, subsampling=0)
Image.fromarray((alpha * 255).round().astype(np.uint8)).save("part_alpha.png", optimize=True)
print(f"crop x {x0}..{x1} y {y0}..{y1} ({x1 - x0}x{y1 - y0}), backlight {bg}")
