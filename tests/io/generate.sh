#!/usr/bin/env bash
# References for the weight-file readers: needs numpy, safetensors and h5py (installed if missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if ! python3 -c "import numpy, safetensors, h5py" 2>/dev/null; then
  echo "generate: pip install numpy safetensors h5py" >&2
  python3 -m pip install --quiet --disable-pip-version-check numpy safetensors h5py \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages numpy safetensors h5py
fi
python3 tests/io/reference.py
