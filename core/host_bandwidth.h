// Measures how fast this machine streams memory into the cores — the denominator of the CPU decode roofline
// (weight bytes per token / read bandwidth = the best possible seconds per token).
#pragma once
#include <cstddef>

namespace layerskip {

// Best-of-`repeats` read bandwidth in bytes per second, summing a `bytes`-sized buffer with `threads` threads.
double measure_host_read_bandwidth(int threads, size_t bytes, int repeats);

}  // namespace layerskip
