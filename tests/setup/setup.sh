#!/usr/bin/env bash
# tests/setup/setup.sh: take a fresh Debian 12 machine (root or sudo, rustup, node >= 20, python 3)
# to "can build and test everything" in this repository. Idempotent: when nothing is missing it
# only checks, in a few seconds, and touches neither apt nor the network.
#
# What it makes sure of, in order:
#   1. apt: mesa-vulkan-drivers libvulkan1 (Mesa lavapipe, the Vulkan device of the native GPU
#      tests), chromium (the browser of the end-to-end tests; its SwiftShader gives WebGPU).
#      unzip (fetch-assets.sh unpacks wheels), make. `apt-get update` runs once, and only when
#      a package is missing.
#   2. Rust: rustfmt, and the wasm32-unknown-unknown standard library: rustup's target when it
#      installs, else Debian's rustc-web route (tests/setup/wasm-toolchain-debian.sh).
#   3. wasm-bindgen CLI at exactly the version of the `wasm-bindgen` crate in Cargo.lock
#      (the CLI refuses modules built by another version).
#   4. npm tools pinned in tests/package-lock.json: binaryen (wasm-opt; Debian's binaryen 108
#      corrupts wasm-bindgen's externref table, so it is not used) and playwright-core.
#   5. Python packages pinned in tests/setup/requirements.txt (reference fixture generators).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" != 0 ]; then command -v sudo >/dev/null || die "run as root or install sudo"; SUDO=sudo; fi
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export PATH="$HOME/.cargo/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------- 1. apt
apt_updated=0
apt_ensure() {  # apt_ensure PACKAGE...: installs the missing ones only
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt: installing ${missing[*]}"
  if [ $apt_updated = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
}
apt_ensure mesa-vulkan-drivers libvulkan1 chromium ca-certificates unzip make
log "apt packages present (lavapipe, chromium $(dpkg-query -W -f='${Version}' chromium))"

# ---------------------------------------------------------------- 2. Rust
command -v cargo >/dev/null || die "cargo not found: install rustup (https://rustup.rs) first"
if ! cargo fmt --version >/dev/null 2>&1; then log "rustup component add rustfmt"; rustup component add rustfmt; fi
wasm_std_present() {  # wasm_std_present [+TOOLCHAIN]
  local dir
  dir=$(rustc ${1:-} --print target-libdir --target wasm32-unknown-unknown 2>/dev/null) || return 1
  compgen -G "$dir/libcore-*.rlib" >/dev/null
}
if wasm_std_present; then
  log "wasm32-unknown-unknown: present in $(rustc -V)"
elif command -v rustup >/dev/null && rustup target add wasm32-unknown-unknown && wasm_std_present; then
  log "wasm32-unknown-unknown: installed by rustup"
elif wasm_std_present +deb-web; then
  log "wasm32-unknown-unknown: present in Debian's rustc-web (toolchain deb-web)"
else
  log "rustup could not install wasm32-unknown-unknown: building it from Debian's rustc-web"
  bash tests/setup/wasm-toolchain-debian.sh
  wasm_std_present +deb-web || die "wasm32 standard library still missing after the rustc-web route"
fi

# ---------------------------------------------------------------- 3. wasm-bindgen CLI
WASM_BINDGEN_VERSION=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$WASM_BINDGEN_VERSION" ] || die "no wasm-bindgen crate in Cargo.lock"
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" = "$WASM_BINDGEN_VERSION" ]; then
  log "wasm-bindgen $have (matches Cargo.lock)"
else
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (have: ${have:-none}; about 3 min on 2 cores)"
  # --locked first; the crates.io index can lag behind the CLI's own lock file, so fall back.
  cargo install --locked --version "$WASM_BINDGEN_VERSION" wasm-bindgen-cli \
    || cargo install --force --version "$WASM_BINDGEN_VERSION" wasm-bindgen-cli
fi

# ---------------------------------------------------------------- 4. npm tools
command -v npm >/dev/null || apt_ensure nodejs npm
lock_hash=$(sha256sum tests/package-lock.json | cut -d' ' -f1)
if [ -x tests/node_modules/.bin/wasm-opt ] && [ "$(cat tests/node_modules/.webnlu-lock-hash 2>/dev/null)" = "$lock_hash" ]; then
  log "npm tools present: $(tests/node_modules/.bin/wasm-opt --version), playwright-core $(node -p 'require("./tests/node_modules/playwright-core/package.json").version')"
else
  log "npm ci in tests/ (binaryen, playwright-core)"
  npm ci --prefix tests --no-audit --no-fund
  echo "$lock_hash" > tests/node_modules/.webnlu-lock-hash
fi

# ---------------------------------------------------------------- 5. Python packages
PYTHON=${PYTHON:-python3}
if "$PYTHON" - tests/setup/requirements.txt <<'PY'
import sys, importlib.metadata as md
bad = []
for line in open(sys.argv[1]):
    line = line.split('#')[0].strip()
    if not line: continue
    name, want = line.split('==')
    try: have = md.version(name)
    except md.PackageNotFoundError: have = None
    if have != want: bad.append(f'{name} {have} != {want}')
if bad: print('[setup] python: ' + ', '.join(bad), file=sys.stderr); sys.exit(1)
PY
then
  log "python packages present: $(grep -v '^#' tests/setup/requirements.txt | tr '\n' ' ')"
else
  "$PYTHON" -m pip install -q -r tests/setup/requirements.txt \
    || "$PYTHON" -m pip install -q --break-system-packages -r tests/setup/requirements.txt
fi
log "ready"
