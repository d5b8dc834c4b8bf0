#!/usr/bin/env bash
# tests/browser/kernel-check/build.sh: the wasm TEST build that exports `checkKernels()`
# (cargo feature `kernel-check`) into target/kernel-check/pkg/, for kernel-check.test.mjs.
# Not the npm package (web/build-package.sh): the check pulls wgpu and the ops into the module.
# Same toolchain and profile as the package; no wasm-opt (the test does not need a small file).
# Prints the .wasm size next to the package's (target/wasm-size.txt) and records it in
# target/kernel-check/wasm-size.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export PATH="$HOME/.cargo/bin:$ROOT/tests/node_modules/.bin:$PATH"
TARGET=wasm32-unknown-unknown
OUT=target/kernel-check/pkg
log() { printf '[kernel-check] %s\n' "$*" >&2; }

toolchain=()
dir=$(rustc --print target-libdir --target $TARGET 2>/dev/null || true)
if [ -z "$dir" ] || ! compgen -G "$dir/libcore-*.rlib" >/dev/null; then toolchain=(+deb-web); fi

# Remove the previous build first: a failed build must not leave a stale one for the test.
rm -rf "$OUT"
log "cargo ${toolchain[*]} build --target $TARGET --profile wasm --features kernel-check"
cargo "${toolchain[@]}" build --lib -p webnlu --target $TARGET --profile wasm --features kernel-check
mkdir -p "$OUT"
wasm-bindgen --target web --out-dir "$OUT" --out-name webnlu_wasm target/$TARGET/wasm/webnlu.wasm
raw=$(stat -c %s "$OUT/webnlu_wasm_bg.wasm")
gz=$(gzip -9 -c "$OUT/webnlu_wasm_bg.wasm" | wc -c)
echo "kernel-check webnlu_wasm_bg.wasm (after wasm-bindgen, no wasm-opt): $raw bytes raw, $gz bytes gzip -9" \
  | tee target/kernel-check/wasm-size.txt
