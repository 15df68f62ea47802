#!/usr/bin/env bash
# Detection quality on the demo component: image AUROC, pixel AUROC, AUPRO(0.3) and pixel F1-max
# for both model types (autoencoder, pixel_stats) and both scorings (standardized, raw), plus the
# demo's own wall time. Release build.
#   bash bench/demo_metrics.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/pixal")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
t0=$(date +%s.%N)
"$bin" -q demo -o demo
t1=$(date +%s.%N)
python3 -c "import sys; print(f'pixal demo (generate + preprocess + train + validate): {float(sys.argv[2])-float(sys.argv[1]):.1f} s wall')" "$t0" "$t1"
cp demo/configs/parameters.yaml base.yaml
printf '%-12s %-13s %-6s %9s %9s %9s %9s\n' model scoring type image_AUROC pixel_AUROC AUPRO0.3 pixF1max
for model in autoencoder pixel_stats; do
  for scoring in standardized raw; do
    sed -e "s/model_type: \"autoencoder\"/model_type: \"$model\"/" \
        -e "s/scoring: \"standardized\"/scoring: \"$scoring\"/" base.yaml > demo/configs/parameters.yaml
    "$bin" -q --config demo/configs train
    "$bin" -q --config demo/configs validate -i demo/data/validate --truth demo/data/truth || true
    for ty in pink_bg blue_bg; do
      python3 - "$model" "$scoring" "$ty" "demo/validate/demo_flex_validate/$ty/summary.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[4]))["metrics"]
f = lambda k: "n/a" if m[k] is None else f"{m[k]:.3f}"
print(f"{sys.argv[1]:<12} {sys.argv[2]:<13} {sys.argv[3]:<6} {f('image_auroc'):>9} {f('pixel_auroc'):>9} {f('aupro_0_3'):>9} {f('pixel_f1_max'):>9}")
PY
    done
  done
done
