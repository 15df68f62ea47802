#!/usr/bin/env bash
# Benchmark: make_input throughput on 1920x1080 photos (release build), with peak memory.
# Uses the real fixture photo (../shared/fixtures/real), copied N times into one type folder.
#   bash bench/make_input.sh [N=24]
set -euo pipefail
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-24}"
cargo build --release --quiet
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/pixal")"
real=../shared/fixtures/real
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/configs"
cp configs/*.yaml "$work/configs/"
run() { # label, source file, extension, extra sed on parameters.yaml
    local label=$1 src=$2 ext=$3 sedexpr=$4
    rm -rf "$work/in" "$work/out"
    mkdir -p "$work/in/t"
    for i in $(seq -w 1 "$n"); do cp "$src" "$work/in/t/p_$i.$ext"; done
    cp configs/parameters.yaml "$work/configs/parameters.yaml"
    [ -n "$sedexpr" ] && sed -i "$sedexpr" "$work/configs/parameters.yaml"
    local t0 t1
    t0=$(date +%s.%N)
    # Run inside the scratch folder: paths.yaml's ./out/ is relative to the working directory.
    (cd "$work" && /usr/bin/time -f "%M" -o "$work/mem" "$bin" -q --config configs make_input -i in \
        >/dev/null)
    t1=$(date +%s.%N)
    python3 - "$label" "$n" "$t0" "$t1" "$(cat "$work/mem")" <<'PY'
import sys
label, n, t0, t1, kb = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
dt = t1 - t0
print(f"{label:<44} {n} images in {dt:6.2f} s = {n/dt:6.1f} images/s, peak RSS {kb/1024:7.1f} MiB")
PY
}
echo "make_input on $(nproc) core(s), 1920x1080 photos:"
run "rembg PNG (RGBA), LAB_a+LAB_b" "$real/flex_f1_front_rembg.png" png ""
run "raw JPEG, LAB_a+LAB_b" "$real/flex_f1_front_raw.jpg" jpg ""
run "rembg PNG, ALL 23 channels" "$real/flex_f1_front_rembg.png" png \
    's/channels: \["LAB_a", "LAB_b"\]/channels: ALL/; s/weights: \[3.0, 3.0\]/weights: [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]/'
