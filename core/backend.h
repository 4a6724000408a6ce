// Backend: the compute device behind the forward pass. The core (model.cc, context.cc) owns *what* runs; a backend
// owns *where*: its memory and its ops. cpu/ implements it with AVX2 kernels, cuda/ with CUDA kernels; every op
// has the same signature in both (outputs first, then inputs, then dims).
//
// Conventions
//   - Activations are f32, row-major, one row per token: (n, width).
//   - A Weight matrix is (rows = out features, cols = in features), row-major, in its stored dtype — exactly the
//     layout HF nn.Linear weights have on disk. matmul computes out (n, rows) = in (n, cols) · Wᵀ.
//   - Pointers handed to ops are backend memory (host memory for the CPU, device memory for CUDA); only `tokens`
//     and sampling results cross as host memory.
//   - Batch invariance: every op computes a row with the same arithmetic in the same order whatever n is and
//     wherever the row sits in the batch, so a token's logits are bit-identical alone or batched.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "dtype.h"
#include "status.h"

namespace layerskip {

struct TensorView;

// A weight matrix (or a vector: rows = 1) in backend memory, in its stored dtype. A quantized matrix (Q8, Q4:
// core/quant.h) is three planes: `data` holds the packed values, `scales` and `mins` its blocks' f16 parameters.
struct Weight {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int rows = 0;
  int cols = 0;
  const uint16_t* scales = nullptr;  // quantized: (rows, cols / 32) f16
  const uint16_t* mins = nullptr;    // q4: (rows, cols / 32) f16
};

// How to pick a token from a row of logits. temperature 0 = greedy (argmax).
struct SamplingParams {
  float temperature = 0.0f;
  int top_k = 0;        // 0 = off
  float top_p = 1.0f;   // 1 = off
};

// The chosen token and its probability under the (tempered, truncated) distribution it was drawn from, and that
// distribution's largest probability (what draftConfidence compares); for greedy, both are the softmax
// probability of the argmax at temperature 1.
struct SampledToken {
  int32_t token = -1;
  float probability = 0.0f;
  float top_probability = 0.0f;
};

// One verified row i of a self-speculative step: the token after position n + i, and for a row that checks draft
// d_{i+1} the two probabilities the acceptance rule needs.
//   Greedy: `token` is the verifier's argmax; p_verify(d_{i+1}) is 1 when d_{i+1} is that argmax, else 0, and
//     p_draft(d_{i+1}) is 1.
//   Sampling: `token` is drawn from normalize(max(0, p_verify − p_draft)) (used only if d_{i+1} is rejected);
//     on the last row, which checks no draft, it is the bonus draw from p_verify.
struct VerifyRow {
  int32_t token = -1;
  float verify_probability = 0.0f;
  float draft_probability = 0.0f;
};

// Memory a backend holds, and for a device with memory of its own, how much of it is free.
struct BackendMemory {
  size_t weight_bytes = 0;        // weights resident in backend memory (see upload_weight)
  size_t buffer_bytes = 0;        // alloc()ed buffers: activations, KV cache, rope tables
  size_t scratch_bytes = 0;       // kernel workspaces
  bool has_device_memory = false; // false for the CPU: the two below are then 0
  size_t device_free_bytes = 0;
  size_t device_total_bytes = 0;
};

// Speculative sampling (temperature > 0) for one context, on its backend: the draft rows' distributions stay where
// the logits are (host for the CPU, device memory for CUDA) until the step's verification.
class SpeculativeSampler {
 public:
  virtual ~SpeculativeSampler() = default;
  // Samples draft row `draft_row` (< capacity) of a step from one logits row, as Backend::sample, and keeps its
  // distribution for verify() (the next step's drafts overwrite it).
  virtual Status sample_draft(SampledToken* out, const float* logits, const SamplingParams& params, double uniform,
                              int draft_row) = 0;
  // Verifies rows [row_begin, row_begin + n) of the step from logits rows [0, n), distributions as Backend::sample.
  // Row r < drafted checks draft_tokens[r] (host) against kept draft row r: out[i] = {a draw from
  // normalize(max(0, p_verify − p_draft)) with uniforms[i] (from p_verify when that has no mass), p_verify(d),
  // p_draft(d)}; a row r ≥ drafted draws from p_verify: {token, 0, 0}. Results land in host memory.
  virtual Status verify(VerifyRow* out, const float* logits, int row_begin, int n, int drafted,
                        const int32_t* draft_tokens, const SamplingParams& params, const double* uniforms) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Human-readable description, e.g. "cpu (avx2+fma, 2 threads)".
  virtual std::string describe() const = 0;

  // --- memory ---
  // Bytes of backend memory upload_weight() takes for a (rows, cols) matrix of `dtype`, plain or quantized (CUDA
  // pads rows of plain matrices; the CPU counts the host bytes it reads in place).
  virtual size_t weight_upload_bytes(DType dtype, int rows, int cols) const = 0;
  // Called once before the first upload with the bytes every upload will take; fails, naming the device and both
  // sizes, when they cannot fit in its free memory.
  virtual Status check_weights_fit(size_t bytes) = 0;
  // What the backend holds now; for a GPU, free and total device memory as the driver reports them.
  virtual Status memory(BackendMemory* out) = 0;
  // Makes a matrix in host memory (the mmap, or quantized planes the model holds) usable by kernels, keeping its
  // dtype; `name` labels errors. The CPU backend reads host memory in place, so it must outlive the backend's use.
  virtual Status upload_weight(const Weight& host, const std::string& name, Weight* out) = 0;
  // Whether upload_weight() keeps pointing at the host memory it was given (then the caller keeps it alive).
  virtual bool reads_host_weights() const = 0;
  // Copies a 1-D tensor (a norm weight) into backend memory as f32.
  virtual Status upload_vector_f32(const TensorView& tensor, float** out) = 0;
  // Uninitialized f32 buffer of `count` elements; nullptr-safe free.
  virtual Status alloc(size_t count, float** out) = 0;
  virtual void free(float* buffer) = 0;
  virtual Status copy_to_host(float* host_out, const float* buffer, size_t count) = 0;
  virtual Status copy_from_host(float* buffer, const float* host_in, size_t count) = 0;
  // Copy between two backend buffers.
  virtual void copy(float* out, const float* in, size_t count) = 0;

  // --- ops ---
  // out (n, table.cols) = rows `tokens` (host, n ids) of the embedding table.
  virtual void embed(float* out, const int32_t* tokens, int n, const Weight& table) = 0;
  // out (n, dim) = in / rms(in) * weight (f32 weight of dim).
  virtual void rmsnorm(float* out, const float* in, const float* weight, int n, int dim, float eps) = 0;
  // out (n, weight.rows) = in (n, weight.cols) · weightᵀ. `out_stride` is the distance between output rows
  // (≥ weight.rows) so results can land directly inside a wider buffer such as the KV cache.
  virtual void matmul(float* out, const float* in, const Weight& weight, int n, int out_stride) = 0;
  // Rotates `num_heads` heads of each of n rows in place (HF rotate-half layout); row i is at position
  // start_pos + i; `row_stride` floats between rows. cos_sin: (positions, head_dim / 2) cos then the same of sin.
  virtual void rope(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
                    const float* cos_table, const float* sin_table) = 0;
  // Causal GQA attention of n queries at positions [start_pos, start_pos + n) over cache rows [0, start_pos + n).
  // out, q: (n, num_heads * head_dim); k_cache, v_cache: (capacity, num_kv_heads * head_dim).
  virtual void attention(float* out, const float* q, const float* k_cache, const float* v_cache, int n,
                         int start_pos, int num_heads, int num_kv_heads, int head_dim) = 0;
  // out (count) = silu(gate) * up.
  virtual void swiglu(float* out, const float* gate, const float* up, size_t count) = 0;
  // accumulate (count) += in.
  virtual void add(float* accumulate, const float* in, size_t count) = 0;
  // residual (n, dim) += delta, then normed (n, dim) = rmsnorm(residual) · weight, in one pass over the residual
  // stream; bit-identical to add() followed by rmsnorm(). normed must not alias residual or delta.
  virtual void add_rmsnorm(float* residual, float* normed, const float* delta, const float* weight, int n, int dim,
                           float eps) = 0;
  // Picks one token from each of n logits rows (n, vocab); uniforms (host, n values in [0, 1)) drive sampling.
  // Results land in host memory.
  virtual Status sample(SampledToken* out, const float* logits, int n, int vocab, const SamplingParams& params,
                        const double* uniforms) = 0;

  // Speculative sampling's state for one context (see SpeculativeSampler), for up to `capacity` draft rows.
  virtual Status make_speculative_sampler(int capacity, int vocab, std::unique_ptr<SpeculativeSampler>* out) = 0;
};

// The CPU backend; `threads` ≤ 0 means one per core. Runs the default kernel variant (LAYERSKIP_CPU or the best
// this processor supports).
std::unique_ptr<Backend> make_cpu_backend(int threads);
// The same with a chosen kernel variant: "" / "auto", "scalar", "avx2", "avx512", "avx512bf16", "amx"
// (cpu/cpu_features.h);
// an unknown name or one this processor cannot run is an error naming the missing features.
Status make_cpu_backend(int threads, const std::string& kernels, std::unique_ptr<Backend>* out);

}  // namespace layerskip
