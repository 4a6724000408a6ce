// Choosing a backend by name: "cpu", "cuda", or "auto" (CUDA when a usable GPU is present, else CPU).
#pragma once
#include <memory>
#include <string>

#include "backend.h"

namespace layerskip {

struct BackendChoice {
  std::unique_ptr<Backend> backend;
  std::string device;         // "cpu" or "cuda"
  std::string fallback_note;  // why "auto" did not pick CUDA, when it did not
};

// `cpu_kernels` picks the CPU kernel variant ("" = LAYERSKIP_CPU or the best supported) when the CPU runs.
Status make_backend(const std::string& device, int threads, const std::string& cpu_kernels, BackendChoice* out);

// Whether this build includes the CUDA backend.
bool cuda_compiled_in();

// What probing a CUDA device found: usable, or the reason it is not (no CUDA in this build, no driver, no device,
// too old, no kernels for it), as device "cuda" would report it.
struct CudaProbe {
  bool usable = false;
  std::string reason;       // "" when usable
  std::string name;         // e.g. "NVIDIA H200"; "" when unknown
  size_t total_bytes = 0;
  size_t free_bytes = 0;
};
CudaProbe probe_cuda_device(int device_index);

}  // namespace layerskip
