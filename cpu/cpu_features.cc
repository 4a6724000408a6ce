#include "cpu_features.h"

namespace layerskip {

bool cpu_has_avx2() {
#if defined(LAYERSKIP_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                                __builtin_cpu_supports("f16c");
  return supported;
#else
  return false;
#endif
}

const char* cpu_kernel_variant() { return cpu_has_avx2() ? "avx2+fma" : "scalar"; }

}  // namespace layerskip
