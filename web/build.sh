#!/usr/bin/env bash
# Builds the page's wasm: web/pkg/wgpu_nas.js + wgpu_nas_bg.wasm (wasm-bindgen --target web).
# Needs the wasm32 target and the wasm-bindgen CLI at exactly the version in Cargo.lock.
# Serve web/ with any static server afterwards (it needs http://, not file://).
set -euo pipefail
cd "$(dirname "$0")/.."

want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
    echo "web/build.sh: wasm-bindgen CLI ${have:-missing}, Cargo.lock has $want; install the matching one:" >&2
    echo "    cargo install wasm-bindgen-cli --version $want" >&2
    exit 1
fi
cargo build --lib --release --target wasm32-unknown-unknown
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir web/pkg "$target_dir/wasm32-unknown-unknown/release/wgpu_nas.wasm"
echo "web/pkg/wgpu_nas_bg.wasm: $(du -k web/pkg/wgpu_nas_bg.wasm | cut -f1) KiB; serve web/ (e.g. python3 -m http.server -d web)"
