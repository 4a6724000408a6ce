// Which kernel variant this build and this processor run: "avx2+fma" or "scalar".
#pragma once

namespace layerskip {

const char* cpu_kernel_variant();
// True when the AVX2/FMA/F16C kernels were compiled in and the processor supports them.
bool cpu_has_avx2();

}  // namespace layerskip
