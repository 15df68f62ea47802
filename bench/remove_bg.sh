#!/usr/bin/env bash
# Benchmark: `pixal remove_bg` on 1920x1080 photos (release build).
#   1. the pieces in-process (decode, rembg's resizes, classical segmentation, cut-out, encode);
#   2. the command end to end (JPEG decode, mask, cut-out, PNG encode) with the classical method;
#   3. the command end to end with the ONNX method and the tiny test model (tests/onnx), which
#      computes almost nothing: what it costs is rembg's pipeline around a model (Lanczos resizes,
#      normalisation, ONNX Runtime call, min-max, cut-out) plus decode/encode;
#   4. with a real rembg model when one is found in $U2NET_HOME or ~/.u2net (none is downloaded).
# Uses the real fixture photo (../shared/fixtures/real), copied N times into one type folder.
#   bash bench/remove_bg.sh [N=16]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-16}"
cargo build --release --quiet
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/pixal")"
real=../shared/fixtures/real
tiny="$(realpath tests/onnx/tiny_u2net.onnx)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/configs" "$work/in/t"
cp configs/paths.yaml "$work/configs/"
for i in $(seq -w 1 "$n"); do cp "$real/flex_f1_front_raw.jpg" "$work/in/t/p_$i.jpg"; done

echo "remove_bg on $(nproc) core(s), $n photos of 1920x1080:"
echo "1. the pieces, in-process on one photo (tests/remove_bg.rs stage_timings, one thread):"
cargo test --release --quiet --test remove_bg stage_timings -- --ignored --nocapture 2>&1 \
    | grep "per 1920" | tr '|' '\n' | sed 's/^ */   /'
cargo test --release --quiet --test remove_bg classical_matches_rembg_on_the_real_photo \
    -- --nocapture 2>&1 | grep "classical on" | sed 's/^/   /'

run() { # label, method, model, extra args
    local label=$1 method=$2 model=$3
    shift 3
    sed -e "s|^    method: auto |    method: $method |" -e "s|^    model: u2net |    model: $model |" \
        configs/parameters.yaml >"$work/configs/parameters.yaml"
    rm -rf "$work/out"
    local t0 t1
    t0=$(date +%s.%N)
    (cd "$work" && "$bin" -q --config configs remove_bg -i in "$@" >/dev/null)
    t1=$(date +%s.%N)
    python3 - "$label" "$n" "$t0" "$t1" <<'PY'
import sys
label, n, t0, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
dt = t1 - t0
print(f"   {label:<52} {dt / n * 1e3:7.1f} ms/photo ({n / dt:5.1f} photos/s)")
PY
}
echo "2. classical, the command end to end:"
run "cut-outs (RGBA PNG)" classical u2net
run "--only-mask (gray PNG)" classical u2net --only-mask
run "cut-outs, --threads 1" classical u2net --threads 1
echo "3. ONNX with the tiny model (the pipeline around a model):"
if python3 -c "import onnxruntime" 2>/dev/null || [ -n "${ORT_DYLIB_PATH:-}" ]; then
    run "cut-outs (RGBA PNG)" onnx "$tiny"
    run "cut-outs, --threads 1" onnx "$tiny" --threads 1
else
    echo "   skipped: ONNX Runtime not found (python3 -m pip install onnxruntime)"
fi
echo "4. real rembg models:"
found=0
for dir in "${U2NET_HOME:-}" "${XDG_DATA_HOME:+$XDG_DATA_HOME/.u2net}" "$HOME/.u2net"; do
    [ -n "$dir" ] || continue
    for m in u2net u2netp silueta isnet-general-use; do
        if [ -f "$dir/$m.onnx" ]; then
            found=1
            run "$m ($dir)" onnx "$dir/$m.onnx"
        fi
    done
done
[ "$found" = 1 ] || echo "   none found in \$U2NET_HOME (${U2NET_HOME:-not set}), \$XDG_DATA_HOME/.u2net or $HOME/.u2net"
