#!/usr/bin/env bash
# Runs ON the lent GPU machine (prepared by bench/gpu_prepare.sh; device run with carry [".gpu", ".gl"] and
# command "bash bench/gpu.sh"): the ViT-B figures of issue 12 on WebGPU, one benchmark per call so a failure
# or a timeout costs only its own figure, each call's JSON merged into $OUT/bench.json with the Table 1
# estimate. The whole script keeps inside GPU_BENCH_BUDGET seconds (default 480, a device call allows 600).
# Overrides, for a dry run on the software adapter here (tests/gpu_script_test.ts):
#   DENO (default: unpack .gpu/deno.xz), BENCH (.gpu/bench.js), REPORT (.gpu/report.js),
#   GPU_BENCH_SIZE (1024), GPU_BENCH_BATCH (4), GPU_BENCH_STEPS (20), GPU_BENCH_IMAGE_SIZE (224),
#   GPU_BENCH_BUDGET (480).
set -uo pipefail
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" OUT="${OUT:-/tmp/out}"
SIZE="${GPU_BENCH_SIZE:-1024}" BATCH="${GPU_BENCH_BATCH:-4}" STEPS="${GPU_BENCH_STEPS:-20}"
IMAGE="${GPU_BENCH_IMAGE_SIZE:-224}" BUDGET="${GPU_BENCH_BUDGET:-480}"
BENCH="${BENCH:-.gpu/bench.js}" REPORT="${REPORT:-.gpu/report.js}"
mkdir -p "$OUT"
start=$(date +%s)

# The lent machine has the NVIDIA driver but not the Vulkan loader: unpack the packages gpu_prepare.sh fetched.
if ls .gl/*.deb >/dev/null 2>&1; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
if [ -z "${DENO:-}" ]; then
  xz -dc .gpu/deno.xz >/tmp/deno && chmod +x /tmp/deno
  DENO=/tmp/deno
fi

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  "$DENO" eval 'const a = await navigator.gpu?.requestAdapter(); console.log(JSON.stringify(a?.info ?? null))'
} | tee "$OUT/gpu.txt"

# part NAME CAP_SECONDS ARGS...: one benchmark call, capped by CAP and by what is left of the budget.
part() {
  local name=$1 cap=$2 left
  shift 2
  left=$((BUDGET - ($(date +%s) - start)))
  [ "$cap" -gt "$left" ] && cap=$left
  if [ "$cap" -lt 10 ]; then
    echo "gpu.sh: $name skipped: the budget of ${BUDGET}s is spent" | tee -a "$OUT/bench.log"
    return
  fi
  echo "gpu.sh: $name (at most ${cap}s)" | tee -a "$OUT/bench.log"
  timeout "$cap" "$DENO" run -A "$BENCH" --backends webgpu --json --size "$SIZE" "$@" \
    2>>"$OUT/bench.log" | tail -n 1 >"$OUT/part_$name.json"
  echo "gpu.sh: $name exit ${PIPESTATUS[0]} after $(($(date +%s) - start))s" | tee -a "$OUT/bench.log"
}

part encoder_b1 90 --only encoder_forward --batch 1 --repeat 2
part encoder_b"$BATCH" 90 --only encoder_forward --batch "$BATCH" --repeat 2
part step_b"$BATCH" 120 --only train_step_vit_b --batch "$BATCH" --checkpoint-blocks on --repeat 2
part step_b"$BATCH"_nockpt 120 --only train_step_vit_b --batch "$BATCH" --checkpoint-blocks off --repeat 2
part run_b"$BATCH" 150 --only train_run_vit_b --batch "$BATCH" --steps "$STEPS" --image-size "$IMAGE"

"$DENO" run -A "$REPORT" --size "$SIZE" --batch "$BATCH" "$OUT"/part_*.json >"$OUT/bench.json"
cat "$OUT/bench.json"
