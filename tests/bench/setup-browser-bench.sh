#!/usr/bin/env bash
# tests/bench/setup-browser-bench.sh: installs the bench-only peers of webnlu into
# tests/bench/node_modules (gitignored): transformers.js (@huggingface/transformers, pinned in
# tests/bench/package.json), which brings onnxruntime-web and @huggingface/tokenizers.
# --ignore-scripts: no install script runs (sharp and onnxruntime-node would try to download
# binaries; the benchmarks use neither). Outside `make test` and CI. Idempotent.
#
# Then: an ONNX export of the model (tests/bench/export_onnx.py, needs the PyTorch venv) and
#   node tests/bench/browser-bench.mjs / node tests/bench/tokenizer-bench.mjs
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$HERE"
inputs_hash() { cat package.json; cat package-lock.json 2>/dev/null || true; }
lock_hash=$(inputs_hash | sha256sum | cut -d' ' -f1)
if [ -f node_modules/@huggingface/transformers/package.json ] && [ "$(cat node_modules/.bench-hash 2>/dev/null)" = "$lock_hash" ]; then
  echo "[bench-setup] transformers.js $(node -p 'require("./node_modules/@huggingface/transformers/package.json").version') present"
  exit 0
fi
if [ -f package-lock.json ]; then
  npm ci --ignore-scripts --no-audit --no-fund
else
  npm install --ignore-scripts --no-audit --no-fund
fi
lock_hash=$(inputs_hash | sha256sum | cut -d' ' -f1)
echo "$lock_hash" > node_modules/.bench-hash
echo "[bench-setup] transformers.js $(node -p 'require("./node_modules/@huggingface/transformers/package.json").version'), onnxruntime-web $(node -p 'require("./node_modules/onnxruntime-web/package.json").version')"
