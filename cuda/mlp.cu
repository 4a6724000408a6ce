// Element-wise ops over flat f32 arrays: out = silu(gate)·up with silu(x) = x / (1 + e^−x) (the CPU's formula,
// IEEE expf and division), and the residual add. Grid-stride loops, one element per thread per step, so any
// count works and an element's value never depends on its neighbours.
#include "mlp.cuh"

#include <algorithm>

namespace layerskip {

namespace {

constexpr int kThreads = 256;
constexpr size_t kMaxBlocks = 65535;

__global__ void swiglu_kernel(float* out, const float* gate, const float* up, size_t count) {
  for (size_t i = size_t(blockIdx.x) * kThreads + threadIdx.x; i < count; i += size_t(gridDim.x) * kThreads) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void add_kernel(float* accumulate, const float* __restrict__ in, size_t count) {
  for (size_t i = size_t(blockIdx.x) * kThreads + threadIdx.x; i < count; i += size_t(gridDim.x) * kThreads) {
    accumulate[i] += in[i];
  }
}

unsigned blocks_for(size_t count) { return unsigned(std::min(ceil_div(count, size_t(kThreads)), kMaxBlocks)); }

}  // namespace

Status swiglu_cuda(float* out, const float* gate, const float* up, size_t count, cudaStream_t stream) {
  if (count == 0) return Status::ok();
  if (out == nullptr || gate == nullptr || up == nullptr) return Status::error("swiglu: null buffer");
  launch_kernel(swiglu_kernel, blocks_for(count), kThreads, 0, stream, out, gate, up, count);
  return check_launch("swiglu");
}

Status add_cuda(float* accumulate, const float* in, size_t count, cudaStream_t stream) {
  if (count == 0) return Status::ok();
  if (accumulate == nullptr || in == nullptr) return Status::error("add: null buffer");
  launch_kernel(add_kernel, blocks_for(count), kThreads, 0, stream, accumulate, in, count);
  return check_launch("add");
}

}  // namespace layerskip
