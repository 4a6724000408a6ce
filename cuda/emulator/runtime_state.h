// What the emulator's scheduler (scheduler.cc) and runtime API (runtime.cc) share.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace layerskip {
namespace emulator {

constexpr size_t kDefaultSharedBytes = 48 * 1024;     // dynamic shared memory without an opt-in
constexpr size_t kMaxOptInSharedBytes = 227 * 1024;   // sm_90's cudaDevAttrMaxSharedMemoryPerBlockOptin

// The launch failed: cudaGetLastError returns `error`; the reason goes to stderr, as a GPU would have no words.
void record_launch_failure(cudaError_t error, const std::string& reason);
// The kernel's dynamic shared memory limit: kDefaultSharedBytes unless raised by cudaFuncSetAttribute.
size_t max_dynamic_shared_bytes(const void* kernel);

}  // namespace emulator
}  // namespace layerskip
