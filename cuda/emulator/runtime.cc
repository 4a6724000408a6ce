// The CUDA runtime API the backend and its tests use, on host memory: "device" allocations are aligned heap
// blocks filled with 0xFF (reading memory nobody wrote gives NaN), and every copy checks that its device side lies
// inside a live allocation, so a host/device pointer mix-up or an overrun fails the call instead of passing.
// Streams and events exist only as handles: kernels run to completion inside their launch.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "runtime_state.h"

namespace layerskip {
namespace emulator {
namespace {

constexpr size_t kDeviceMemoryBytes = size_t(16) << 30;  // what the emulated device claims to have
constexpr size_t kAllocationAlign = 256;                 // as cudaMalloc

// What an allocation of `bytes` takes from the device: cudaMalloc's granularity.
size_t allocation_footprint(size_t bytes) { return (bytes + kAllocationAlign - 1) / kAllocationAlign * kAllocationAlign; }

struct State {
  std::mutex mutex;
  std::map<const char*, size_t> allocations;  // base → bytes
  size_t allocated_bytes = 0;
  std::map<const void*, size_t> shared_limits;  // kernel → opted-in dynamic shared bytes
};

State& state() {
  static State instance;
  return instance;
}

// As in CUDA, the last error belongs to the calling host thread.
thread_local cudaError_t last_error = cudaSuccess;

cudaError_t set_error(cudaError_t error) {
  if (error != cudaSuccess) last_error = error;
  return error;
}

// True when [pointer, pointer + bytes) lies inside one live allocation.
bool inside_allocation(const void* pointer, size_t bytes) {
  std::lock_guard<std::mutex> lock(state().mutex);
  const char* address = static_cast<const char*>(pointer);
  auto after = state().allocations.upper_bound(address);
  if (after == state().allocations.begin()) return false;
  auto allocation = std::prev(after);
  return address + bytes <= allocation->first + allocation->second;
}

struct Event {
  std::chrono::steady_clock::time_point time;
};

}  // namespace

void record_launch_failure(cudaError_t error, const std::string& reason) {
  std::fprintf(stderr, "layerskip CUDA emulator: launch failed: %s\n", reason.c_str());
  set_error(error);
}

size_t max_dynamic_shared_bytes(const void* kernel) {
  std::lock_guard<std::mutex> lock(state().mutex);
  auto found = state().shared_limits.find(kernel);
  return found == state().shared_limits.end() ? kDefaultSharedBytes : found->second;
}

}  // namespace emulator
}  // namespace layerskip

using layerskip::emulator::inside_allocation;
using layerskip::emulator::set_error;
using layerskip::emulator::state;

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  if (pointer == nullptr) return set_error(cudaErrorInvalidValue);
  const size_t rounded = layerskip::emulator::allocation_footprint(bytes);
  std::lock_guard<std::mutex> lock(state().mutex);
  if (state().allocated_bytes + rounded > layerskip::emulator::kDeviceMemoryBytes) {
    return set_error(cudaErrorMemoryAllocation);
  }
  // Exactly `bytes` (not rounded up), so an AddressSanitizer build flags a kernel reading past what was asked for.
  void* memory = nullptr;
  if (posix_memalign(&memory, layerskip::emulator::kAllocationAlign, bytes == 0 ? 1 : bytes) != 0) {
    return set_error(cudaErrorMemoryAllocation);
  }
  std::memset(memory, 0xff, bytes);
  state().allocations[static_cast<const char*>(memory)] = bytes;
  state().allocated_bytes += rounded;
  *pointer = memory;
  return cudaSuccess;
}

cudaError_t cudaFree(void* pointer) {
  if (pointer == nullptr) return cudaSuccess;
  std::lock_guard<std::mutex> lock(state().mutex);
  auto found = state().allocations.find(static_cast<const char*>(pointer));
  if (found == state().allocations.end()) return set_error(cudaErrorInvalidValue);
  state().allocated_bytes -= layerskip::emulator::allocation_footprint(found->second);
  state().allocations.erase(found);
  std::free(pointer);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  const bool device_destination = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool device_source = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost) {
    std::memmove(destination, source, bytes);
    return cudaSuccess;
  }
  if ((device_destination && !inside_allocation(destination, bytes)) ||
      (device_source && !inside_allocation(source, bytes))) {
    std::fprintf(stderr, "layerskip CUDA emulator: cudaMemcpy of %zu bytes touches memory outside any device "
                         "allocation\n", bytes);
    return set_error(cudaErrorInvalidValue);
  }
  std::memmove(destination, source, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(destination, source, bytes, kind);
}

cudaError_t cudaMemsetAsync(void* pointer, int value, size_t bytes, cudaStream_t) {
  if (bytes == 0) return cudaSuccess;
  if (!inside_allocation(pointer, bytes)) return set_error(cudaErrorInvalidValue);
  std::memset(pointer, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* pointer, int value, size_t bytes) { return cudaMemsetAsync(pointer, value, bytes, nullptr); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  *stream = reinterpret_cast<cudaStream_t>(new char[1]);
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete[] reinterpret_cast<char*>(stream);
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice); }

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* properties, int device) {
  if (device != 0) return set_error(cudaErrorInvalidDevice);
  std::memset(properties, 0, sizeof *properties);
  std::snprintf(properties->name, sizeof properties->name, "CUDA emulator on the CPU");
  properties->major = 9;
  properties->minor = 0;
  properties->totalGlobalMem = layerskip::emulator::kDeviceMemoryBytes;
  properties->multiProcessorCount = 4;
  properties->warpSize = 32;
  properties->maxThreadsPerBlock = 1024;
  properties->sharedMemPerBlock = layerskip::emulator::kDefaultSharedBytes;
  properties->sharedMemPerBlockOptin = layerskip::emulator::kMaxOptInSharedBytes;
  properties->maxGridSize[0] = 0x7fffffff;
  properties->maxGridSize[1] = properties->maxGridSize[2] = 65535;
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(state().mutex);
  *total_bytes = layerskip::emulator::kDeviceMemoryBytes;
  *free_bytes = layerskip::emulator::kDeviceMemoryBytes - state().allocated_bytes;
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t error = layerskip::emulator::last_error;
  layerskip::emulator::last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError() { return layerskip::emulator::last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "unknown error";
  }
}

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (value < 0 || size_t(value) > layerskip::emulator::kMaxOptInSharedBytes) return set_error(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(state().mutex);
  state().shared_limits[kernel] = size_t(value);
  return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, const void*) {
  std::memset(attributes, 0, sizeof *attributes);
  attributes->maxThreadsPerBlock = 1024;
  attributes->binaryVersion = attributes->ptxVersion = 90;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = reinterpret_cast<cudaEvent_t>(new layerskip::emulator::Event());
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  reinterpret_cast<layerskip::emulator::Event*>(event)->time = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  const auto elapsed = reinterpret_cast<layerskip::emulator::Event*>(end)->time -
                       reinterpret_cast<layerskip::emulator::Event*>(start)->time;
  *milliseconds = std::chrono::duration<float, std::milli>(elapsed).count();
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete reinterpret_cast<layerskip::emulator::Event*>(event);
  return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void* destination, size_t destination_pitch, const void* source, size_t source_pitch,
                              size_t width, size_t height, cudaMemcpyKind kind, cudaStream_t) {
  if (width > destination_pitch || width > source_pitch) return set_error(cudaErrorInvalidValue);
  for (size_t row = 0; row < height; row++) {
    const cudaError_t error = cudaMemcpy(static_cast<char*>(destination) + row * destination_pitch,
                                         static_cast<const char*>(source) + row * source_pitch, width, kind);
    if (error != cudaSuccess) return error;
  }
  return cudaSuccess;
}
