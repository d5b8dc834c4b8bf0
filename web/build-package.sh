#!/usr/bin/env bash
# web/build-package.sh: builds the npm package `webnlu` into pkg/.
#   cargo (wasm32, profile `wasm` of Cargo.toml), twice: simd128 and simd128 + relaxed-simd
#   -> wasm-bindgen --target web -> wasm-opt -Oz
#   -> pkg/ = generated glue + .d.ts + the two .wasm + the hand-written layer from web/lib/ + package.json.
# Needs what tests/setup/setup.sh installs. Prints the .wasm size raw and gzipped and records it
# in target/wasm-size.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export PATH="$HOME/.cargo/bin:$ROOT/tests/node_modules/.bin:$PATH"
TARGET=wasm32-unknown-unknown
log() { printf '[pkg] %s\n' "$*" >&2; }

# The toolchain that has the wasm32 standard library: rustup's default, else Debian's rustc-web
# (linked by tests/setup/wasm-toolchain-debian.sh as `deb-web`).
# WASM_TOOLCHAIN=NAME forces one (e.g. deb-web, to test that route).
toolchain=()
dir=$(rustc --print target-libdir --target $TARGET 2>/dev/null || true)
if [ -n "${WASM_TOOLCHAIN:-}" ]; then toolchain=(+"$WASM_TOOLCHAIN")
elif [ -z "$dir" ] || ! compgen -G "$dir/libcore-*.rlib" >/dev/null; then toolchain=(+deb-web); fi

# Two builds of the same code (the loader, web/lib/wasm-module.js, picks one by feature
# detection): simd128 (.cargo/config.toml), and simd128 + relaxed SIMD (fused multiply-add in the
# matmul) in a target directory of its own, so that neither build invalidates the other.
target_dir=${CARGO_TARGET_DIR:-target}
relaxed_target_dir=$target_dir/relaxed-simd
log "cargo ${toolchain[*]} build --target $TARGET --profile wasm (simd128)"
cargo "${toolchain[@]}" build --lib -p webnlu --target $TARGET --profile wasm
log "cargo ${toolchain[*]} build --target $TARGET --profile wasm (simd128 + relaxed-simd)"
CARGO_TARGET_DIR=$relaxed_target_dir RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd -C llvm-args=-inline-threshold=0" \
  cargo "${toolchain[@]}" build --lib -p webnlu --target $TARGET --profile wasm
cargo_wasm=$target_dir/$TARGET/wasm/webnlu.wasm
cargo_relaxed_wasm=$relaxed_target_dir/$TARGET/wasm/webnlu.wasm

rm -rf pkg
mkdir -p pkg
log "wasm-bindgen $(wasm-bindgen --version | awk '{print $2}') --target web"
wasm-bindgen --target web --out-dir pkg --out-name webnlu_wasm "$cargo_wasm"
relaxed_out=$(mktemp -d)
trap 'rm -rf "$relaxed_out"' EXIT
wasm-bindgen --target web --out-dir "$relaxed_out" --out-name webnlu_wasm "$cargo_relaxed_wasm"
# One JS glue serves both modules only if wasm-bindgen generated the same glue for both.
cmp -s pkg/webnlu_wasm.js "$relaxed_out/webnlu_wasm.js" \
  || { log "ERROR: the relaxed-simd build's JS glue differs from the simd128 build's"; exit 1; }
mv "$relaxed_out/webnlu_wasm_bg.wasm" pkg/webnlu_wasm_relaxed_bg.wasm
bound=$(stat -c %s pkg/webnlu_wasm_bg.wasm)

log "$(wasm-opt --version) -Oz"
# The features rustc 1.95 enables by default for wasm32-unknown-unknown, and SIMD: wasm-opt must
# accept them (and must not lower them away) or it rejects the module.
features=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
  --enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd)
for build in webnlu_wasm_bg webnlu_wasm_relaxed_bg; do
  wasm-opt -Oz "${features[@]}" --enable-relaxed-simd pkg/$build.wasm -o pkg/$build.opt.wasm
  mv pkg/$build.opt.wasm pkg/$build.wasm
done

cp web/lib/*.js web/lib/*.d.ts pkg/
cp LICENSE-MIT LICENSE-APACHE pkg/ 2>/dev/null || true
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
node - "$version" <<'JS'
const fs = require('fs');
const manifest = JSON.parse(fs.readFileSync('web/lib/package.json', 'utf8'));
manifest.version = process.argv[2];
fs.writeFileSync('pkg/package.json', JSON.stringify(manifest, null, 2) + '\n');
JS
cp web/lib/README.md pkg/README.md

raw=$(stat -c %s pkg/webnlu_wasm_bg.wasm)
gz=$(gzip -9 -c pkg/webnlu_wasm_bg.wasm | wc -c)
relaxed_raw=$(stat -c %s pkg/webnlu_wasm_relaxed_bg.wasm)
relaxed_gz=$(gzip -9 -c pkg/webnlu_wasm_relaxed_bg.wasm | wc -c)
js=$(cat pkg/*.js | wc -c)
js_gz=$(cat pkg/*.js | gzip -9 | wc -c)
line="webnlu_wasm_bg.wasm: $raw bytes raw ($((raw / 1024)) KiB), $gz bytes gzip -9 ($((gz / 1024)) KiB); cargo $(stat -c %s "$cargo_wasm"), after wasm-bindgen $bound; webnlu_wasm_relaxed_bg.wasm: $relaxed_raw bytes raw, $relaxed_gz gzip -9; JS $js bytes ($js_gz gzipped)"
mkdir -p target
echo "$line" | tee target/wasm-size.txt
# The issue's limit on the module: 1.4 MB raw per build.
for size in $raw $relaxed_raw; do
  [ "$size" -le 1400000 ] || { log "ERROR: a wasm build is $size bytes, over the 1,400,000-byte limit"; exit 1; }
done
log "pkg/ ready: $(ls pkg | tr '\n' ' ')"
