#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU and nvcc but no Node: builds layerskip_core_tests with the CUDA
# backend (for this GPU's architecture only, to keep nvcc fast), runs the CPU kernel tests, the CUDA tests
# (every op against its CPU twin, batch invariance, whole-model checks on an in-process random checkpoint) and
# the CUDA benchmarks (bf16, q8 and q4 matvec GB/s vs copy bandwidth, matmul TFLOP/s vs mma peak and for q8/q4,
# Llama-3.2-1B-shaped decode, verification and prefill), then prints a summary table last. Budget: under 8 minutes on an H100/H200.
#   OUT=<dir>                  logs and summary.txt go there (default: build-gpu-check/out)
#   LAYERSKIP_CUDA_ARCHS=90    override the architecture (default: nvidia-smi's compute capability)
#   LAYERSKIP_TEST_MODEL=<dir> also compare a real checkpoint against the CPU
#   JOBS=<n>                   build parallelism (default: all cores)
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${LAYERSKIP_GPU_BUILD_DIR:-$root/build-gpu-check}"
out="${OUT:-$build/out}"
mkdir -p "$out"
jobs="${JOBS:-$(nproc 2>/dev/null || echo 4)}"
script_start=$(date +%s)
rows=()

# stage NAME LOGFILE TIMEOUT COMMAND...: runs one step with a time limit, records status and seconds.
stage() {
  local name="$1" log="$2" limit="$3"
  shift 3
  local begin status
  begin=$(date +%s)
  echo "== $name (limit ${limit}s) → $out/$log"
  timeout --kill-after=10 "$limit" "$@" >"$out/$log" 2>&1
  status=$?
  local seconds=$(( $(date +%s) - begin ))
  local verdict="ok"
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then verdict="TIMEOUT"; elif [ "$status" -ne 0 ]; then verdict="FAIL($status)"; fi
  local counts
  counts="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/$log" | tail -1)"
  rows+=("$(printf '%-22s %-10s %5ss  %s' "$name" "$verdict" "$seconds" "$counts")")
  grep -E '^ +FAIL' "$out/$log" | head -20
  return "$status"
}

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "nvidia-smi not found: this script needs a machine with an NVIDIA GPU" >&2
  exit 2
fi
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
gpu="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
capability="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
archs="${LAYERSKIP_CUDA_ARCHS:-${capability:-90}}"
echo "GPU: $gpu (compute capability $capability); building for CUDA architectures $archs"

stage configure configure.log 120 cmake -S "$root" -B "$build" -DLAYERSKIP_CUDA=ON -DLAYERSKIP_CUDA_ARCHS="$archs" \
  -DCMAKE_BUILD_TYPE=Release || { printf '%s\n' "${rows[@]}"; exit 1; }
stage build build.log 300 cmake --build "$build" -j"$jobs" --target layerskip_core_tests || { tail -30 "$out/build.log"; printf '%s\n' "${rows[@]}"; exit 1; }

tests="$build/layerskip_core_tests"
failed=0
stage cpu-kernel-tests cpu-kernel-tests.log 60 "$tests" kernel_ || failed=1
stage cuda-tests cuda-tests.log 180 "$tests" cuda_ || failed=1
stage cuda-bench cuda-bench.log 180 "$tests" --bench cuda_ || failed=1

{
  echo
  echo "=== layerskip GPU check: $(date -u '+%Y-%m-%d %H:%M UTC') — $gpu — archs $archs — $(( $(date +%s) - script_start ))s total"
  printf '%-22s %-10s %6s  %s\n' stage status time tests
  printf '%s\n' "${rows[@]}"
  echo "--- benchmark results"
  grep -h '  result:' "$out/cuda-bench.log" 2>/dev/null | sed 's/^  result: /  /'
  grep -h 'skip ' "$out/cuda-tests.log" "$out/cuda-bench.log" 2>/dev/null | sed 's/^ */  /' | head -5
} | tee "$out/summary.txt"
exit "$failed"
