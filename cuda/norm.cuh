// RMSNorm on the device, plain and fused with the residual add; see norm.cu.
#pragma once
#include "common.cuh"

namespace layerskip {

// out (n, dim) = in / sqrt(mean(in²) + eps) * weight. out may alias in.
Status rmsnorm_cuda(float* out, const float* in, const float* weight, int n, int dim, float eps, cudaStream_t stream);

// residual (n, dim) += delta; then normed = rmsnorm(residual) — one pass over the residual stream instead of two.
// Bit-identical to add_cuda followed by rmsnorm_cuda. normed must not alias residual or delta.
Status add_rmsnorm_cuda(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                        float eps, cudaStream_t stream);

}  // namespace layerskip
