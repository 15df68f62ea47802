#!/usr/bin/env bash
# Benchmark: `pixal train` with the original's default autoencoder ([512, 256, 128, 64]) on 48
# images of 85,680 inputs (42,840 pooled pixels x 2 channels: a 960x540 photo cropped and
# pooled by 2), random-but-structured data; release build, CPU. Prints seconds per epoch (the
# first epoch separately), the fit time, the whole run and the peak RSS.
#   bash bench/train.sh [EPOCHS=20] [extra cargo flags, e.g. --features cuda]
set -euo pipefail
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
python3 -c "import numpy" 2>/dev/null || { echo "needs numpy: pip install numpy" >&2; exit 1; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
epochs="${1:-20}"
shift || true
cargo build --release --quiet "$@"
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/pixal")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/configs" "$work/in/part"
cp configs/*.yaml "$work/configs/"
sed -i "s/n_epochs: 500/n_epochs: $epochs/; s/patience: 30 /patience: 100000 /" "$work/configs/parameters.yaml"
python3 - "$work/in/part/out.npz" <<'PY'
import sys
import numpy as np
# 48 images of a 204x210 pooled part (42,840 pixels), 2 channels of 8-bit-like values: a smooth
# pattern plus per-image shifts and noise, a zero background around it.
rng = np.random.default_rng(0)
h, w, n = 204, 210, 48
yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
base = np.stack([128 + 40 * np.sin(xx / 17) * np.cos(yy / 23), 120 + 30 * np.cos(xx / 11 + yy / 29)], -1)
mask = ((xx - w / 2) ** 2 / (w / 2.2) ** 2 + (yy - h / 2) ** 2 / (h / 2.2) ** 2) < 1
data = np.empty((n, h * w, 2), np.float32)
for i in range(n):
    img = base + rng.normal(0, 3, base.shape) + rng.normal(0, 5)
    img[~mask] = 0
    data[i] = img.reshape(-1, 2)
np.savez(sys.argv[1], data=data, shape=np.array([h, w], np.int64))
PY
cd "$work"
/usr/bin/time -f "%M %e %U %S" -o "$work/time" "$bin" -q --config configs train -i in/part
read -r kb wall user sys < "$work/time"
python3 - "$work/out" "$kb" "$wall" "$user" "$sys" "$(cat /proc/loadavg)" <<'PY'
import glob, json, sys
out, kb, wall = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
cpu = float(sys.argv[4]) + float(sys.argv[5])
load = sys.argv[6].split()[0]
hist = json.load(open(glob.glob(f"{out}/**/loss_history.json", recursive=True)[0]))
meta = open(glob.glob(f"{out}/**/metadata/*.yaml", recursive=True)[0]).read()
fit = float([l for l in meta.splitlines() if l.startswith("fit_seconds:")][0].split(":")[1])
device = [l for l in meta.splitlines() if l.startswith("device:")][0].split(":", 1)[1].strip()
secs = [e["seconds"] for e in hist["epochs"]]
rest = secs[1:] or secs
print(f"train [512,256,128,64], 48 x 85,680 inputs (38 train / 10 validation), {len(secs)} epochs on {device}:")
print(f"  first epoch            {secs[0]:7.3f} s")
print(f"  later epochs (mean)    {sum(rest)/len(rest):7.3f} s/epoch  (min {min(rest):.3f}, max {max(rest):.3f})")
print(f"  fit incl. checkpoints  {fit:7.2f} s  = {fit/len(secs):.3f} s/epoch")
print(f"  whole run              {wall:7.2f} s  (read npz, fit, write weights/exports/plots)")
print(f"  CPU time (user+sys)    {cpu:7.2f} s  (load average after the run: {load}; other work on the machine slows the wall times)")
print(f"  peak RSS               {kb/1024:7.0f} MiB")
print(f"  loss {hist['train_loss'][0]:.4e} -> {hist['train_loss'][-1]:.4e}, val_loss {hist['val_loss'][0]:.4e} -> {hist['val_loss'][-1]:.4e}")
PY
