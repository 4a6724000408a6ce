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

Status make_backend(const std::string& device, int threads, BackendChoice* out);

// Whether this build includes the CUDA backend.
bool cuda_compiled_in();

}  // namespace layerskip
