#!/usr/bin/env bash
# The native GPU benchmarks, for a session that is lent a GPU machine (the `device` tool of the
# tool library; see its README). Nothing is built there: the machine has no registries and no
# Vulkan loader, but it has an NVIDIA driver, python3 with PyTorch + transformers, and x86-64.
#
# Prepare here, once per checkout (both paths are ignored, so they travel only by `carry`):
#   echo /.gl/ >> .git/info/exclude; mkdir -p .gl /tmp/amd64/partial
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update; (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
#   cargo build --release --bin webnlu          # glibc symbols <= 2.35: runs on the machine's image
# Then one call (about 4 minutes of device time; the limit leaves room for one retry):
#   run(command="bash tests/bench/gpu-machine.sh", carry=[".gl", "target/release/webnlu"], timeout_s=420)
# Results come back under $OUT: bench-model-gpu.jsonl (webnlu on WebGPU/Vulkan next to PyTorch fp32
# + transformers on CUDA, same shapes, same run, ratios webnlu / PyTorch), bench-ops-gpu.jsonl,
# and machine.txt (the GPU, driver and Vulkan adapter).
set -u
out="${OUT:-/tmp/webnlu-bench}"
mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
export WGPU_BACKEND=vulkan
bin=target/release/webnlu
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"
# B=8, T=128 as on the CPU; then B=32, T=128, where a GPU is better fed.
# --profile-kernels: after the timed runs, one forward and one step per policy with every
# dispatch timed alone (which kernel to make faster next).
for batch in 8 32; do
  timeout 150 "$bin" bench model --device gpu --models minilm-shape,bert-base --batch "$batch" --seq 128 \
    --repeat 5 --peer torch --profile-kernels --json 2>&1 | tee -a "$out/bench-model-gpu.jsonl"
done
timeout 90 "$bin" bench ops --device gpu --json 2>&1 | tee "$out/bench-ops-gpu.jsonl"
