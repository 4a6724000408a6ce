// What the processor can run, and the CPU kernel variants built on it. A variant is a table of function pointers
// (CpuKernels) chosen once per backend: by the caller ("cpuKernels"), by LAYERSKIP_CPU, or as the best this
// processor supports. Every variant computes each output with one fixed arithmetic whatever the batch size, so
// any one of them keeps greedy self-speculative decoding identical to autoregressive decoding.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "thread_pool.h"

namespace layerskip {

// The instruction-set extensions the kernels use, as this processor and OS report them.
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;               // AVX2 variant
  bool avx512f = false, avx512bw = false, avx512vl = false;    // AVX-512 variant (+ avx512dq)
  bool avx512dq = false;
  bool avx512_bf16 = false;                                    // vdpbf16ps / vcvtne2ps2bf16
  // Reported, not used: no op on the hot path gains from them. AVX512-FP16 computes in f16 (its f16→f32 conversion
  // is already in F16C / AVX-512 F), and int8 dot products (VNNI) would need activations quantized to 8 bits.
  bool avx512_vnni = false, avx512_fp16 = false;
  bool amx_tile = false, amx_bf16 = false;                     // "amx" variant (tdpbf16ps)
  bool amx_permitted = false;  // Linux granted the tile registers (arch_prctl ARCH_REQ_XCOMP_PERM)
  std::string model_name;                                      // e.g. "AMD EPYC 9R45" (from /proc/cpuinfo)
  // "avx2 fma f16c avx512f …": the features above that are present, in that order.
  std::string summary() const;
};
const CpuFeatures& cpu_features();

using MatmulKernel = void (*)(float* out, const float* in, const Weight& weight, int n, int out_stride,
                              ThreadPool& pool);
using AttentionKernel = void (*)(float* out, const float* q, const float* k_cache, const float* v_cache, int n,
                                 int start_pos, int num_heads, int num_kv_heads, int head_dim, ThreadPool& pool);
using RmsnormKernel = void (*)(float* out, const float* in, const float* weight, int n, int dim, float eps,
                               ThreadPool& pool);
using AddRmsnormKernel = void (*)(float* residual, float* normed, const float* delta, const float* weight, int n,
                                  int dim, float eps, ThreadPool& pool);
using RopeKernel = void (*)(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
                            const float* cos_table, const float* sin_table);
using SwigluKernel = void (*)(float* out, const float* gate, const float* up, size_t count, ThreadPool& pool);

// One kernel variant: its name (as LAYERSKIP_CPU and cpuKernels spell it), what it needs, and its ops.
struct CpuKernels {
  const char* name;         // "scalar", "avx2", "avx512", "avx512bf16", "amx"
  const char* description;  // one line for stats and benchmarks
  // True when the matmul rounds activations below f32 (avx512bf16: to bf16 for bf16 weights, as llama.cpp does).
  // Such a variant is faster but leaves the reference tolerances, so "auto" never picks it.
  bool rounds_activations;
  MatmulKernel matmul;
  AttentionKernel attention;
  RmsnormKernel rmsnorm;
  AddRmsnormKernel add_rmsnorm;
  RopeKernel rope;
  SwigluKernel swiglu;
};

// Every variant compiled into this build, lowest first (whether or not this processor can run it).
const std::vector<const CpuKernels*>& compiled_cpu_kernels();
// The variants this processor can run, lowest first.
std::vector<const CpuKernels*> runnable_cpu_kernels();
// The best runnable variant that keeps activations in f32: what "auto" picks.
const CpuKernels& best_exact_cpu_kernels();
// The amx variant's ops with its matmul on a software tile unit (amx_emulator.h): the tests run the AMX tiling
// with it on any processor. Selectable as "amx-emulated" (for tests), not listed among the variants.
const CpuKernels& amx_emulated_cpu_kernels();
// "" when `kernels` can run here, else which features are missing (e.g. "avx512_bf16").
std::string missing_cpu_features(const CpuKernels& kernels);

// Resolves a request: "" or "auto" → LAYERSKIP_CPU if set, else best_exact_cpu_kernels(); a name → that variant.
// An unknown name, or a variant this processor cannot run, is an error naming the missing features.
Status select_cpu_kernels(const std::string& request, const CpuKernels** out);

// The process-wide default (select_cpu_kernels("auto"), falling back to best_exact_cpu_kernels() when
// LAYERSKIP_CPU names one that cannot run); used by the *_cpu dispatch functions and tests.
const CpuKernels& default_cpu_kernels();
const char* cpu_kernel_variant();

}  // namespace layerskip
