#!/usr/bin/env bash
# tests/setup/wasm-toolchain-debian.sh: the wasm32 standard library without rustup's download
# server, from Debian's own packages. Used by setup.sh only when `rustup target add
# wasm32-unknown-unknown` fails. Idempotent. Cold: about 3.5 min and 190 MB of downloads.
#
# Debian bookworm-security carries a newer Rust for its browser builds (rustc-web, cargo-web)
# together with its exact sources (rust-web-src). We:
#   1. install rustc-web, cargo-web, rust-web-src and the lld matching rustc-web's LLVM;
#   2. register /usr as a rustup toolchain named deb-web (the default toolchain stays as is);
#   3. point the wasm linker name rust-lld at that lld;
#   4. compile core/alloc/std for wasm32-unknown-unknown once, offline, from the vendored sources,
#      into rustc-web's sysroot (a stamp file records which rustc it was built for).
# Afterwards `cargo +deb-web build --target wasm32-unknown-unknown` is an ordinary stable build.
set -euo pipefail
log() { printf '[wasm-toolchain-debian] %s\n' "$*" >&2; }
die() { printf '[wasm-toolchain-debian] ERROR: %s\n' "$*" >&2; exit 1; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
TARGET=wasm32-unknown-unknown

missing=()
for p in rustc-web cargo-web rust-web-src; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ "$(dpkg-query -W -f='${Version}' rustc-web)" = "$(dpkg-query -W -f='${Version}' rust-web-src)" ] \
  || die "rustc-web and rust-web-src differ in version: apt-get install rustc-web rust-web-src"
VV=$(/usr/bin/rustc -vV)
HOST=$(sed -n 's/^host: //p' <<<"$VV")
LLVM=$(sed -n 's/^LLVM version: \([0-9]*\).*/\1/p' <<<"$VV")
dpkg-query -W -f='${Status}' "lld-$LLVM" 2>/dev/null | grep -q 'install ok installed' \
  || $SUDO apt-get install -y -q --no-install-recommends "lld-$LLVM"

if command -v rustup >/dev/null; then rustup toolchain link deb-web /usr; fi
$SUDO mkdir -p "/usr/lib/rustlib/$HOST/bin"
$SUDO ln -sfn "/usr/lib/llvm-$LLVM/bin/lld" "/usr/lib/rustlib/$HOST/bin/rust-lld"

LIBDIR=/usr/lib/rustlib/$TARGET/lib
STAMP=/usr/lib/rustlib/$TARGET/.webnlu-built-for
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VV" ] && compgen -G "$LIBDIR/libcore-*.rlib" >/dev/null && compgen -G "$LIBDIR/libstd*.rlib" >/dev/null; then
  log "wasm32 std already built for $(/usr/bin/rustc -V)"
  exit 0
fi
# A fixed build path: std's crate hash depends on it, so a rebuild stays compatible with target/.
work=/var/tmp/webnlu-wasm32-std
rm -rf "$work"; mkdir -p "$work"
cp -a /usr/lib/rustlib/src/rust/library "$work/library"
log "building std for $TARGET from rust-web-src (offline)"
(
  cd "$work/library"
  # The recipe of rustc's bootstrap for a distributed std: `dist` profile (keeps bitcode for LTO),
  # library crates marked unstable so user crates cannot name them by accident.
  env RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_HOME="$work/cargo-home" \
      RUSTFLAGS="-Zforce-unstable-if-unmarked -Zinline-mir -Zinline-mir-preserve-debug" \
    /usr/bin/cargo build -Zavoid-dev-deps --offline --locked --profile dist \
      --config 'source.crates-io.replace-with="vendored"' \
      --config "source.vendored.directory=\"$work/library/vendor\"" \
      --manifest-path sysroot/Cargo.toml --features "panic-unwind backtrace" \
      --target "$TARGET" --target-dir "$work/target"
)
$SUDO rm -rf "$LIBDIR"; $SUDO mkdir -p "$LIBDIR"
find "$work/target/$TARGET/dist/deps" -maxdepth 1 \( -name '*.rlib' -o -name '*.rmeta' \) \
  ! -name 'libsysroot-*' -exec $SUDO cp {} "$LIBDIR/" \;
printf '%s\n' "$VV" | $SUDO tee "$STAMP" >/dev/null
rm -rf "$work"
log "done: cargo +deb-web build --target $TARGET"
