// Measures how fast this machine streams memory into the cores — the denominator of the CPU decode roofline
// (weight bytes per token / read bandwidth = the best possible seconds per token).
#pragma once
#include <cstddef>

namespace layerskip {

// Best read bandwidth in bytes per second over `repeats` rounds of three patterns on a `bytes`-sized buffer with
// `threads` threads: one and eight scalar streams per thread, and the bf16 matvec of every
// runnable SIMD kernel variant.
double measure_host_read_bandwidth(int threads, size_t bytes, int repeats);

}  // namespace layerskip
