#!/usr/bin/env bash
# Runs ON the lent GPU machine (see bench/gpu_prepare.sh): the benchmarks of bench/benches.ts on WebGPU, whose JSON
# lands in $OUT/bench.json. One short script, so a lease is spent measuring rather than setting up.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=/tmp OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
xz -dc .gpu/deno.xz >/tmp/deno && chmod +x /tmp/deno
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
/tmp/deno eval 'const a = await navigator.gpu?.requestAdapter(); console.log(JSON.stringify(a?.info ?? null))' |
  tee -a "$OUT/gpu.txt"
timeout 420 /tmp/deno run -A .gpu/bench.js --backends webgpu --only encoder_forward,train_step_tiny,train_step_vit_b,epoch_tiny_demo --repeat 2 --json 2>&1 | tee "$OUT/bench.log"
tail -n 1 "$OUT/bench.log" >"$OUT/bench.json"
