// RMSNorm, as HF LlamaRMSNorm in f32: out = (x · 1/sqrt(mean(x²) + eps)) · weight.
// Layout: rows of `dim` floats, one block of 256 threads per row (rows are 2–8 K wide: one pass, no tiling).
// Thread i sums x² over columns i, i + 256, … in order, then block_sum adds in a fixed tree, so a row's result
// never depends on n. The fused variant adds the residual first and normalizes the freshly written row; it
// performs exactly the additions of add_cuda, so it can replace add + rmsnorm without changing any bit.
#include "norm.cuh"

namespace layerskip {

namespace {

constexpr int kThreads = 256;

template <bool kAddResidual>
__global__ void __launch_bounds__(kThreads)
rmsnorm_kernel(float* out, float* residual, const float* in, const float* __restrict__ weight,
               int dim, float eps) {
  __shared__ float scratch[33];
  const size_t base = size_t(blockIdx.x) * dim;
  float sum_squares = 0.0f;
  if (kAddResidual) {
    for (int i = threadIdx.x; i < dim; i += kThreads) {
      const float x = residual[base + i] + in[base + i];
      residual[base + i] = x;
      sum_squares = fmaf(x, x, sum_squares);
    }
  } else {
    for (int i = threadIdx.x; i < dim; i += kThreads) sum_squares = fmaf(in[base + i], in[base + i], sum_squares);
  }
  const float total = block_sum<kThreads>(sum_squares, scratch);
  const float scale = 1.0f / sqrtf(total / float(dim) + eps);
  const float* source = kAddResidual ? residual : in;
  for (int i = threadIdx.x; i < dim; i += kThreads) out[base + i] = (source[base + i] * scale) * weight[i];
}

Status check_shape(const void* out, const void* in, const float* weight, int n, int dim) {
  if (n < 1 || dim < 1) return Status::error("rmsnorm: invalid shape (n " + std::to_string(n) + ", dim " + std::to_string(dim) + ")");
  if (out == nullptr || in == nullptr || weight == nullptr) return Status::error("rmsnorm: null buffer");
  return Status::ok();
}

}  // namespace

Status rmsnorm_cuda(float* out, const float* in, const float* weight, int n, int dim, float eps, cudaStream_t stream) {
  LS_RETURN_IF_ERROR(check_shape(out, in, weight, n, dim));
  launch_kernel(rmsnorm_kernel<false>, unsigned(n), kThreads, 0, stream, out, nullptr, in, weight, dim, eps);
  return check_launch("rmsnorm");
}

Status add_rmsnorm_cuda(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                        float eps, cudaStream_t stream) {
  LS_RETURN_IF_ERROR(check_shape(normed, delta, weight, n, dim));
  if (residual == nullptr) return Status::error("add_rmsnorm: null residual");
  launch_kernel(rmsnorm_kernel<true>, unsigned(n), kThreads, 0, stream, normed, residual, delta, weight, dim, eps);
  return check_launch("add_rmsnorm");
}

}  // namespace layerskip
