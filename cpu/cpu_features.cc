// Processor feature detection and the registry of CPU kernel variants.
#include "cpu_features.h"

#include <cstdlib>
#include <fstream>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "attention.h"
#include "matmul.h"
#include "mlp.h"
#include "norm.h"
#include "rope.h"

namespace layerskip {

namespace {

std::string read_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown CPU";
}

// Linux enables the AMX tile data state per process only when asked (since 5.16); older kernels cannot run AMX.
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long kArchReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM
  constexpr long kXfeatureXtiledata = 18;     // XFEATURE_XTILEDATA
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  f.model_name = read_model_name();
#if defined(__x86_64__) || defined(__i386__)
  // libgcc checks both CPUID and that the OS saves the register state (XCR0) for AVX / AVX-512 / AMX.
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = __builtin_cpu_supports("f16c");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512_bf16 = __builtin_cpu_supports("avx512bf16");
  f.avx512_vnni = __builtin_cpu_supports("avx512vnni");
  f.avx512_fp16 = __builtin_cpu_supports("avx512fp16");
  f.amx_tile = __builtin_cpu_supports("amx-tile");
  f.amx_bf16 = __builtin_cpu_supports("amx-bf16");
  f.amx_permitted = f.amx_tile && f.amx_bf16 && request_amx_permission();
#endif
  return f;
}

// What each variant needs, as (feature name, present?) pairs.
std::vector<std::pair<const char*, bool>> requirements(const std::string& variant, const CpuFeatures& f) {
  std::vector<std::pair<const char*, bool>> needs;
  if (variant == "scalar") return needs;
  needs = {{"avx2", f.avx2}, {"fma", f.fma}, {"f16c", f.f16c}};
  if (variant == "avx2") return needs;
  needs.insert(needs.end(), {{"avx512f", f.avx512f}, {"avx512bw", f.avx512bw}, {"avx512vl", f.avx512vl},
                             {"avx512dq", f.avx512dq}});
  if (variant == "avx512") return needs;
  needs.push_back({"avx512_bf16", f.avx512_bf16});
  if (variant == "avx512bf16") return needs;
  needs.insert(needs.end(), {{"amx_tile", f.amx_tile}, {"amx_bf16", f.amx_bf16},
                             {"the OS's permission for AMX tiles (arch_prctl ARCH_REQ_XCOMP_PERM)",
                              f.amx_tile && f.amx_bf16 ? f.amx_permitted : true}});
  return needs;
}

const CpuKernels kScalar = {"scalar", "portable C++", false, matmul_scalar, attention_scalar, rmsnorm_scalar,
                            add_rmsnorm_scalar, rope_scalar, swiglu_scalar};
#if defined(LAYERSKIP_HAVE_AVX2)
const CpuKernels kAvx2 = {"avx2", "AVX2 + FMA + F16C, 8-wide f32", false, matmul_avx2, attention_avx2, rmsnorm_avx2,
                          add_rmsnorm_avx2, rope_avx2, swiglu_avx2};
#endif
#if defined(LAYERSKIP_HAVE_AVX512)
const CpuKernels kAvx512 = {"avx512", "AVX-512 F/BW/VL/DQ, 16-wide f32 matmul and attention", false, matmul_avx512,
                            attention_avx512, rmsnorm_avx2, add_rmsnorm_avx2, rope_avx2, swiglu_avx2};
const CpuKernels kAvx512Bf16 = {"avx512bf16",
                                "AVX-512 + AVX512-BF16: bf16 weights · activations rounded to bf16 (vdpbf16ps), "
                                "others 16-wide f32",
                                true, matmul_avx512bf16, attention_avx512, rmsnorm_avx2, add_rmsnorm_avx2, rope_avx2,
                                swiglu_avx2};
const CpuKernels kAmx = {"amx",
                         "AMX-BF16 tiles: bf16 weights · activations rounded to bf16 (tdpbf16ps), others as avx512bf16",
                         true, matmul_amx, attention_avx512, rmsnorm_avx2, add_rmsnorm_avx2, rope_avx2, swiglu_avx2};
#endif
const CpuKernels kAmxEmulated = {"amx-emulated", "the amx variant's tiling on a software tile unit (tests)", true,
                                 matmul_amx_emulated, attention_scalar, rmsnorm_scalar, add_rmsnorm_scalar,
                                 rope_scalar, swiglu_scalar};

}  // namespace

std::string CpuFeatures::summary() const {
  const std::pair<const char*, bool> all[] = {
      {"avx2", avx2},         {"fma", fma},           {"f16c", f16c},           {"avx512f", avx512f},
      {"avx512bw", avx512bw}, {"avx512vl", avx512vl}, {"avx512dq", avx512dq},   {"avx512_bf16", avx512_bf16},
      {"avx512_vnni", avx512_vnni}, {"avx512_fp16", avx512_fp16}, {"amx_tile", amx_tile}, {"amx_bf16", amx_bf16}};
  std::string text;
  for (auto& [name, present] : all) {
    if (!present) continue;
    if (!text.empty()) text += ' ';
    text += name;
  }
  return text.empty() ? "none" : text;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const std::vector<const CpuKernels*>& compiled_cpu_kernels() {
  static const std::vector<const CpuKernels*> all = {
      &kScalar,
#if defined(LAYERSKIP_HAVE_AVX2)
      &kAvx2,
#endif
#if defined(LAYERSKIP_HAVE_AVX512)
      &kAvx512, &kAvx512Bf16, &kAmx,
#endif
  };
  return all;
}

const CpuKernels& amx_emulated_cpu_kernels() { return kAmxEmulated; }

std::string missing_cpu_features(const CpuKernels& kernels) {
  std::string missing;
  for (auto& [name, present] : requirements(kernels.name, cpu_features())) {
    if (present) continue;
    if (!missing.empty()) missing += ", ";
    missing += name;
  }
  return missing;
}

std::vector<const CpuKernels*> runnable_cpu_kernels() {
  std::vector<const CpuKernels*> runnable;
  for (const CpuKernels* kernels : compiled_cpu_kernels()) {
    if (missing_cpu_features(*kernels).empty()) runnable.push_back(kernels);
  }
  return runnable;
}

const CpuKernels& best_exact_cpu_kernels() {
  const CpuKernels* best = &kScalar;
  for (const CpuKernels* kernels : runnable_cpu_kernels()) {
    if (!kernels->rounds_activations) best = kernels;
  }
  return *best;
}

Status select_cpu_kernels(const std::string& request, const CpuKernels** out) {
  std::string name = request;
  std::string source = "cpuKernels";
  if (name.empty() || name == "auto") {
    const char* env = std::getenv("LAYERSKIP_CPU");
    name = env != nullptr ? env : "";
    source = "LAYERSKIP_CPU";
  }
  if (name.empty() || name == "auto") {
    *out = &best_exact_cpu_kernels();
    return Status::ok();
  }
  if (name == kAmxEmulated.name) {  // for tests: not listed, runs anywhere
    *out = &kAmxEmulated;
    return Status::ok();
  }
  std::string known;
  for (const CpuKernels* kernels : compiled_cpu_kernels()) {
    if (name == kernels->name) {
      std::string missing = missing_cpu_features(*kernels);
      if (!missing.empty()) {
        return Status::error(source + "=" + name + ": this processor (" + cpu_features().model_name +
                             ") lacks " + missing);
      }
      *out = kernels;
      return Status::ok();
    }
    known += std::string(known.empty() ? "" : ", ") + kernels->name;
  }
  return Status::error(source + "=" + name + ": unknown CPU kernel variant (this build has: auto, " + known + ")");
}

const CpuKernels& default_cpu_kernels() {
  static const CpuKernels* chosen = [] {
    const CpuKernels* kernels = nullptr;
    if (!select_cpu_kernels("auto", &kernels).is_ok()) kernels = &best_exact_cpu_kernels();
    return kernels;
  }();
  return *chosen;
}

const char* cpu_kernel_variant() { return default_cpu_kernels().name; }

}  // namespace layerskip
