// The CUDA backend: weights, activations and the KV cache in device memory, every op a hand-written kernel
// (cuda/*.cu), all work queued on one stream the backend owns. Only sample() and copy_to_host() wait for the
// device. Plain C++ (no CUDA headers), so the binding and core can include it; it exists only in builds with
// LAYERSKIP_HAVE_CUDA.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "../core/backend.h"

namespace layerskip {

// What the probe found about one CUDA device.
struct CudaDeviceInfo {
  int device_count = 0;         // devices the driver reports (0 when there is no driver)
  int device_index = -1;
  std::string name;             // e.g. "NVIDIA H200"
  int compute_major = 0;
  int compute_minor = 0;
  size_t total_memory = 0;      // bytes
  size_t free_memory = 0;       // bytes, at probe time
};

// Probes device `device_index` for `device: 'auto'` / `'cuda'`: ok when it exists, the driver works, its compute
// capability is ≥ 8.0 and this build has kernels for it; otherwise an error saying which of those failed, naming
// the device. `out` is filled with whatever was learned either way.
Status cuda_device_info(int device_index, CudaDeviceInfo* out);

// Creates the backend on device `device_index` (same checks as cuda_device_info).
Status make_cuda_backend(int device_index, std::unique_ptr<Backend>* out);

// Microbenchmarks for the benchmark report (run on `device_index`, take ~100 ms each): device-to-device copy
// bandwidth in GB/s (bytes read + written per second) and the dense bf16 mma.sync rate in TFLOP/s.
Status cuda_measure_copy_bandwidth(int device_index, double* gigabytes_per_second);
Status cuda_measure_mma_tflops(int device_index, double* tflops);

}  // namespace layerskip
