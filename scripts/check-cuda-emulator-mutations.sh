#!/usr/bin/env bash
# Shows that the CUDA tests, run on the CPU emulator, catch real kernel bugs: each mutation below is applied alone
# to a copy of the tree, the emulator test build is rebuilt, and the named test must fail. The control mutation
# (a different but consistent shared-memory swizzle) changes no result and must pass. The quantized mutations
# cover the q4 nibble order, the q8 scale of a unit, n-dependent rounding (a batch-invariance bug that stays inside
# every accuracy bound) and the quantized embedding.
# Usage: scripts/check-cuda-emulator-mutations.sh   (needs cmake and the CUDA toolkit's headers; ~20 min on 2 cores)
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="${TMPDIR:-/tmp}/layerskip-mutations"
mkdir -p "$work"
missed=0
previous=""  # the file the last mutation changed

# mutate NAME EXPECT FILE TEST OLD NEW: EXPECT is "fail" (a bug the test must catch) or "pass" (a control).
mutate() {
  local name="$1" expect="$2" file="$3" test="$4" old="$5" new="$6"
  rm -rf "$work/src" && mkdir -p "$work/src"
  # Tracked files and new ones not yet committed (but not ignored ones): the tree as it stands.
  (cd "$root" && git ls-files --cached --others --exclude-standard | grep -v '^models/' | tar cf - -T -) |
    (cd "$work/src" && tar xf -)
  # The copy restores original mtimes, older than the object built from the last mutation: touch the file it
  # changed so that object is rebuilt from the original source.
  if [ -n "$previous" ]; then touch "$work/src/$previous"; fi
  previous="$file"
  if ! python3 - "$work/src/$file" "$old" "$new" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if old not in text:
    sys.exit(f"pattern not found in {path}: {old}")
open(path, 'w').write(text.replace(old, new, 1))
PY
  then missed=1; return; fi
  cmake -S "$work/src" -B "$work/build" -DLAYERSKIP_CUDA_EMULATOR=ON -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
  if ! cmake --build "$work/build" -j"$(nproc)" --target layerskip_core_tests >"$work/build.log" 2>&1; then
    echo "$name: the mutated tree does not build (see $work/build.log)"; missed=1; return
  fi
  timeout 600 "$work/build/layerskip_core_tests" "$test" >"$work/$name.log" 2>&1
  local status=$? verdict
  if [ "$expect" = fail ]; then
    if [ "$status" -ne 0 ]; then verdict="caught"; else verdict="MISSED"; missed=1; fi
  else
    if [ "$status" -eq 0 ]; then verdict="passes, as it should"; else verdict="FAILED (control)"; missed=1; fi
  fi
  printf '%-16s %-40s %s\n' "$name" "$test" "$verdict"
}

mutate mma-operands fail cuda/matmul.cu cuda_matmul_small \
  'mma_16816<Tag>(acc, row_lo[2 * s], row_hi[2 * s], row_lo[2 * s + 1]' \
  'mma_16816<Tag>(acc, row_lo[2 * s], row_lo[2 * s + 1], row_hi[2 * s]'
mutate tiled-sync fail cuda/matmul.cu cuda_matmul_small \
  '    __syncthreads();  // chunk c is visible' '    (void)0;  // chunk c is visible'
mutate cp-async-wait fail cuda/matmul.cu cuda_matmul_small \
  'cp_async_wait<kGemmStages - 2>();' 'cp_async_wait<kGemmStages - 1>();'
mutate skinny-layout fail cuda/matmul.cu cuda_matmul_small \
  'tile[(2 * t) * 16 + g + 8] = acc[j][2];' 'tile[(2 * t) * 16 + g + 8] = acc[j][3];'
mutate attention-sync fail cuda/attention.cu cuda_attention \
  '    __syncthreads();  // previous block' '    (void)0;  // previous block'
mutate q4-nibbles fail cuda/matmul_quant.cu cuda_matmul_quantized_matches_cpu \
  'const int shift = 4 * piece;' 'const int shift = 4 - 4 * piece;'
mutate q8-scale-block fail cuda/matmul_quant.cu cuda_matmul_quantized_matches_cpu \
  'const int block = unit * kUnitCols / kBlockCols;' 'const int block = unit * kUnitCols / kBlockCols / 2;'
mutate quant-n-rounding fail cuda/matmul_quant.cu cuda_matmul_quantized_batch_invariance \
  'out[size_t(token) * out_stride + row] = total;' 'out[size_t(token) * out_stride + row] = n > 1 ? total + 0x1p-22f * total : total;'
mutate embed-q4-nibbles fail cuda/embed.cu cuda_embed_quantized_exact \
  'const int level = within < 16 ? byte & 15 : byte >> 4;' 'const int level = within < 16 ? byte >> 4 : byte & 15;'
mutate swizzle-control pass cuda/matmul.cu cuda_matmul_small \
  'return unit ^ ((row & 1) << 2);' 'return unit ^ ((row & 2) << 1);'

exit "$missed"
