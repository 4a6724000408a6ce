// Device microbenchmarks behind the benchmark report's rooflines: device-to-device copy bandwidth (what a
// memory-bound kernel can hope to stream) and the dense bf16 mma.sync rate (what a tensor-core matmul built from
// mma.sync — ours — can hope to reach). Each runs ~100 ms on its own stream and returns a Status.
#include "cuda_backend.h"

#include <cuda_runtime.h>

#include "common.cuh"
#include "ptx.cuh"

namespace layerskip {

namespace {

constexpr int kMmaChains = 8;          // independent accumulators per warp: hides the mma latency
constexpr int kMmaIterations = 4096;
constexpr int kMmaThreads = 256;

__global__ void __launch_bounds__(kMmaThreads) mma_rate_kernel(float* sink, uint32_t seed) {
  uint32_t a0 = seed ^ threadIdx.x, a1 = a0 * 3u, a2 = a0 * 5u, a3 = a0 * 7u, b0 = a0 * 11u, b1 = a0 * 13u;
  float acc[kMmaChains][4] = {};
  for (int i = 0; i < kMmaIterations; i++) {
#pragma unroll
    for (int c = 0; c < kMmaChains; c++) {
      mma_m16n8k16_bf16(acc[c], a0, a1, a2, a3, b0, b1);
    }
  }
  float total = 0.0f;
#pragma unroll
  for (int c = 0; c < kMmaChains; c++) total += acc[c][0] + acc[c][1] + acc[c][2] + acc[c][3];
  if (total == 1234.5f) sink[threadIdx.x] = total;  // keeps the loop alive; practically never stores
}

// Runs `body` on a fresh stream between two events; seconds elapsed.
template <typename Body>
Status time_on_stream(Body body, double* seconds) {
  cudaStream_t stream;
  cudaEvent_t start, stop;
  LS_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "benchmark stream");
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  Status status = body(stream);  // warm-up
  if (status.is_ok()) {
    cudaEventRecord(start, stream);
    status = body(stream);
    cudaEventRecord(stop, stream);
  }
  if (status.is_ok()) status = cuda_status(cudaEventSynchronize(stop), "benchmark");
  float milliseconds = 0.0f;
  if (status.is_ok()) cudaEventElapsedTime(&milliseconds, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  *seconds = milliseconds / 1000.0;
  return status;
}

}  // namespace

Status cuda_measure_copy_bandwidth(int device_index, double* gigabytes_per_second) {
  LS_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_index), "select device");
  const size_t bytes = size_t(1) << 30;
  const int copies = 20;
  void* source = nullptr;
  void* destination = nullptr;
  LS_CUDA_RETURN_IF_ERROR(cudaMalloc(&source, bytes), "allocating the copy benchmark");
  if (cudaMalloc(&destination, bytes) != cudaSuccess) {
    cudaFree(source);
    cudaGetLastError();
    return Status::error("allocating the copy benchmark: out of device memory");
  }
  double seconds = 0.0;
  Status status = time_on_stream(
      [&](cudaStream_t stream) {
        for (int i = 0; i < copies; i++) {
          LS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToDevice, stream), "copy");
        }
        return Status::ok();
      },
      &seconds);
  cudaFree(source);
  cudaFree(destination);
  LS_RETURN_IF_ERROR(status);
  *gigabytes_per_second = seconds > 0 ? 2.0 * double(bytes) * copies / seconds / 1e9 : 0.0;
  return Status::ok();
}

Status cuda_measure_mma_tflops(int device_index, double* tflops) {
  LS_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_index), "select device");
  cudaDeviceProp properties;
  LS_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&properties, device_index), "device properties");
  const int blocks = properties.multiProcessorCount * 4;
  float* sink = nullptr;
  LS_CUDA_RETURN_IF_ERROR(cudaMalloc(&sink, kMmaThreads * sizeof(float)), "allocating the mma benchmark");
  double seconds = 0.0;
  Status status = time_on_stream(
      [&](cudaStream_t stream) {
        launch_kernel(mma_rate_kernel, blocks, kMmaThreads, 0, stream, sink, 12345u);
        return check_launch("mma_rate");
      },
      &seconds);
  cudaFree(sink);
  LS_RETURN_IF_ERROR(status);
  const double flops = double(blocks) * (kMmaThreads / 32) * kMmaChains * double(kMmaIterations) * 2.0 * 16 * 8 * 16;
  *tflops = seconds > 0 ? flops / seconds / 1e12 : 0.0;
  return Status::ok();
}

}  // namespace layerskip
