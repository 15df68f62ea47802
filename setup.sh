#!/usr/bin/env bash
# Installs pixal on a Debian/Ubuntu machine that has Rust (cargo) and builds it in release mode.
# Idempotent: running it again rebuilds only what changed and reinstalls the binary.
#   bash setup.sh            install the `pixal` binary into ~/.cargo/bin
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup.sh: cargo not found. Install Rust first (https://rustup.rs), then run this again." >&2
    exit 1
fi

# pixal's default build needs no system library: besides Rust it compiles C code (libjpeg-turbo's
# JPEG decoder, vendored by the mozjpeg-sys crate; ring, for HTTPS model downloads) with the
# system's C compiler (cc/gcc, present on a Debian machine with Rust). With the `nasm` assembler,
# libjpeg-turbo's x86 SIMD code is built too: decoding is then faster than pixal's old pure-Rust
# decoder (the plain C one is about 1.4x slower), with the same pixels. setup.sh installs nasm
# when it can (root with apt-get); otherwise it says so and builds the plain C decoder.
if ! command -v cc >/dev/null 2>&1; then
    echo "setup.sh: no C compiler (cc) found; install one first: sudo apt-get install gcc" >&2
    exit 1
fi
if ! command -v nasm >/dev/null 2>&1 && [ "$(uname -m)" = "x86_64" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get install -y -qq nasm >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq nasm >/dev/null 2>&1; }; } \
            || echo "setup.sh: could not install nasm; JPEG decoding uses the plain C code (slower, same pixels)" >&2
    else
        echo "setup.sh: for faster JPEG decoding install nasm first (sudo apt-get install nasm); building the plain C decoder" >&2
    fi
fi
# Background removal with a rembg model (`remove_bg`, method onnx/auto) loads ONNX Runtime at
# run time; the onnxruntime wheel ships the library and pixal finds it through python3. Without
# it pixal still works, using its classical background removal.
if command -v python3 >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check onnxruntime \
        || echo "setup.sh: could not install onnxruntime (pip); remove_bg will use its classical method" >&2
else
    echo "setup.sh: python3 not found; install onnxruntime (pip) to run rembg models in remove_bg" >&2
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo install --locked --force --path . --target-dir "$CARGO_TARGET_DIR"

bin="${CARGO_HOME:-$HOME/.cargo}/bin/pixal"
echo "setup.sh: installed $("$bin" --version) at $bin"
case ":$PATH:" in
    *":$(dirname "$bin"):"*) ;;
    *) echo "setup.sh: add $(dirname "$bin") to your PATH to run 'pixal' by name" >&2 ;;
esac
