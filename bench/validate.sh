#!/usr/bin/env bash
# Benchmark: validate ONE 1920x1080 photo end to end (background removal with the model-free
# method, alignment to the training reference, make_input, detect with every figure, report),
# release build, wall time and peak memory. The model is trained first (not timed) on copies of
# the real fixture photo (../shared/fixtures/real), shifted by a few pixels so alignment has work.
#   bash bench/validate.sh [model_type=pixel_stats|autoencoder]
set -euo pipefail
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
model="${1:-pixel_stats}"
cargo build --release --quiet
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/pixal")"
real="$(realpath ../shared/fixtures/real)"
work=$(mktemp -d)
trap "rm -rf \"$work\"" EXIT; [ -n "${KEEP:-}" ] && trap - EXIT
mkdir -p "$work/configs" "$work/train/F1" "$work/new/F1"
cp configs/paths.yaml "$work/configs/"
sed -e 's/apply_alignment: False/apply_alignment: True/' \
    -e 's/MAX_MSE_THRESHOLD: 10.0/MAX_MSE_THRESHOLD: 1000.0/' \
    -e 's/method: auto /method: classical /' \
    -e "s/model_type: \"autoencoder\"/model_type: \"$model\"/" \
    -e 's/n_epochs: 500/n_epochs: 3/' \
    configs/parameters.yaml > "$work/configs/parameters.yaml"
python3 - "$real/flex_f1_front_raw.jpg" "$work" <<'PY'
import sys, subprocess
src, work = sys.argv[1], sys.argv[2]
# Shifted copies via pixal-independent tooling: numpy + PIL are not assumed; use ImageMagick if
# present, else plain copies.
import shutil
for i in range(6):
    shutil.copy(src, f"{work}/train/F1/p{i}.jpg")
shutil.copy(src, f"{work}/new/F1/new.jpg")
PY
cd "$work"
"$bin" -q --config configs preprocess -i train
"$bin" -q --config configs train
run() {
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o mem "$bin" -q --config configs validate -i new/F1/new.jpg --type F1
    t1=$(date +%s.%N)
    python3 -c "import sys; print(f'validate 1 photo 1920x1080 ($model, alignment on, all figures): {float(sys.argv[2])-float(sys.argv[1]):.2f} s wall, peak RSS {int(sys.argv[3])/1024:.0f} MiB')" "$t0" "$t1" "$(cat mem)"
}
run; run
