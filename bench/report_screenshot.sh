#!/usr/bin/env bash
# Renders a validation run's index.html and one type's report.html in headless Chromium and
# saves screenshots, so a person can check what a lab user sees (needs `chromium`:
# apt-get install -y chromium). Runs `pixal demo` first when no demo exists.
#   bash bench/report_screenshot.sh [DEMO_DIR=pixal-demo] [OUT_DIR=.]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
demo="${1:-pixal-demo}"
out="${2:-.}"
command -v chromium >/dev/null || { echo "needs chromium (apt-get install -y chromium)" >&2; exit 1; }
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/pixal")"
cargo build --release --quiet
[ -e "$demo/validate" ] || "$bin" -q demo -o "$demo"
index=$(find "$demo/validate" -maxdepth 2 -name index.html | sort | head -1)
[ -n "$index" ] || { echo "no index.html under $demo/validate" >&2; exit 1; }
report=$(find "$(dirname "$index")" -mindepth 2 -maxdepth 2 -name report.html | sort | head -1)
mkdir -p "$out"
for page in "$index" "$report"; do
    shot="$out/screenshot_$(basename "$(dirname "$page")")_$(basename "$page" .html).png"
    chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2400 \
        --screenshot="$(realpath -m "$shot")" "file://$(realpath "$page")" 2>/dev/null
    python3 - "$shot" <<'PY'
import sys
from PIL import Image
img = Image.open(sys.argv[1]).convert("RGB")
# A blank page (the HTML failed to render) is one colour.
colours = len(img.getcolors(1 << 24) or [])
assert colours > 50, f"{sys.argv[1]}: looks blank ({colours} colours)"
print(f"{sys.argv[1]}: {img.width}x{img.height}, {colours} colours")
PY
done
