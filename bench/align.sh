#!/usr/bin/env bash
# Benchmark: align one photo to a reference (release build), on the real 1920x1080 fixture
# photo and its 960x540 half, warped by N random homographies (rotation up to 3 degrees, shift up
# to 40 px at full size, scale +-3 %). Prints the corner error without and with the sub-pixel
# refinement, and the time per pair (min and median), with THREADS worker threads (default 2,
# the cores of the original's reference machine).
#   bash bench/align.sh [N=20] [THREADS=2]
# The original PIXAL (SIFT, 2 cores) needs 1.9 s per pair at 1920x1080 and 0.47 s at 960x540.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-20}"
threads="${2:-2}"
[ -e ../shared/fixtures/real/flex_f1_front_raw.jpg ] || { echo "needs ../shared/fixtures/real" >&2; exit 1; }
cargo test --release --quiet --test align --no-run 2>/dev/null
run() { # label, image, downscale
    echo "== $1"
    PIXAL_ALIGN_IMAGE="$2" PIXAL_ALIGN_DOWN="$3" PIXAL_ALIGN_N="$n" RAYON_NUM_THREADS="$threads" \
        cargo test --release --quiet --test align -- --ignored --nocapture --exact sweep_real_photo \
        2>/dev/null | grep -E "^(flex|stages|corner|time|CPU)"
}
echo "align on $threads thread(s) of $(nproc) core(s), $n homographies per case"
run "raw photo, 1920x1080" flex_f1_front_raw.jpg 1
run "raw photo, 960x540" flex_f1_front_raw.jpg 2
run "rembg cut-out (RGBA), 1920x1080" flex_f1_front_rembg.png 1
