// Token selection on the device, one block of 1024 threads per logits row; same semantics as cpu/sampling.cc:
//   greedy (temperature ≤ 0): argmax, ties to the lower id; probability = softmax at temperature 1.
//   otherwise: weights w = exp(x/T − max/T); keep the top_k best (order: logit desc, id asc), then the shortest
//   prefix of that order whose weight reaches top_p of the kept weight; draw the first token whose cumulative
//   weight exceeds uniform · total; probability = w / total over the kept prefix.
// No sort: a prefix of the sorted order is a pair (key, id) — all tokens with a larger order key (the logit's bits
// mapped to a monotone uint32), plus the tokens tied at `key` with id ≤ `id`. find_prefix() locates the shortest
// prefix whose measure (token count, or weight) satisfies a threshold by a radix search on the key, 4 bits per
// pass (8 passes over the row, 16 candidate sums at a time), then an id-ordered scan of the tokens tied at the
// boundary key. Sums use fixed per-thread orders and fixed trees, so results are deterministic; they may differ
// from the CPU's sequential double sums in the last bits, which only matters for draws landing within rounding
// of a boundary.
// Speculative sampling's verification (verify_sampled_kernel) rebuilds the draft row's distribution from its kept
// logits with the same machinery, and draws from max(0, p_verify − p_draft) in the verify row's sorted order, as
// core/token_distribution.cc does on the host — so no logits row leaves the device.
#include "sampling.cuh"

#include <climits>

namespace layerskip {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kRadixBits = 4;
constexpr int kCandidates = 1 << kRadixBits;

// Tokens ordered better-first: key_i > key, or key_i == key and i ≤ id.
struct Prefix {
  uint32_t key;
  int id;
};

// -0 takes +0's key: the two compare equal, so they tie (and go in id order) as on the CPU.
__device__ __forceinline__ uint32_t order_key(float x) {
  uint32_t bits = __float_as_uint(x);
  if (bits == 0x80000000u) bits = 0u;
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

__device__ __forceinline__ bool in_prefix(uint32_t key, int id, Prefix prefix) {
  return key > prefix.key || (key == prefix.key && id <= prefix.id);
}

// Block-wide sums of kCount per-thread values (warp butterflies, then warp totals in warp order); every thread
// gets the results. scratch: (kWarps + 1) * kCount floats.
template <int kCount>
__device__ void block_sums(float (&values)[kCount], float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int v = 0; v < kCount; v++) values[v] = warp_sum(values[v]);
  if (lane == 0) {
#pragma unroll
    for (int v = 0; v < kCount; v++) scratch[warp * kCount + v] = values[v];
  }
  __syncthreads();
  if (threadIdx.x < kCount) {
    float total = 0.0f;
    for (int w = 0; w < kWarps; w++) total += scratch[w * kCount + threadIdx.x];
    scratch[kWarps * kCount + threadIdx.x] = total;
  }
  __syncthreads();
#pragma unroll
  for (int v = 0; v < kCount; v++) values[v] = scratch[kWarps * kCount + v];
  __syncthreads();
}

// Sum over threads 0 … threadIdx.x − 1 of `value`, in a fixed order. scratch: 64 floats.
__device__ float block_exclusive_scan(float value, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float inclusive = value;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1) {
    const float other = __shfl_up_sync(0xffffffffu, inclusive, offset);
    if (lane >= offset) inclusive += other;
  }
  float exclusive = __shfl_up_sync(0xffffffffu, inclusive, 1);
  if (lane == 0) exclusive = 0.0f;
  if (lane == 31) scratch[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const float warp_total = scratch[lane];
    float warp_inclusive = warp_total;
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
      const float other = __shfl_up_sync(0xffffffffu, warp_inclusive, offset);
      if (lane >= offset) warp_inclusive += other;
    }
    float warp_exclusive = __shfl_up_sync(0xffffffffu, warp_inclusive, 1);
    scratch[32 + lane] = lane == 0 ? 0.0f : warp_exclusive;
  }
  __syncthreads();
  const float result = scratch[32 + warp] + exclusive;
  __syncthreads();
  return result;
}

template <bool kCountMeasure>
__device__ __forceinline__ float measure(const float* weights, int i) {
  return kCountMeasure ? 1.0f : weights[i];
}

// Total measure of the tokens in `prefix` (the same per-thread order and tree as find_prefix's candidate 0).
template <bool kCountMeasure>
__device__ float prefix_total(const float* logits, const float* weights, int vocab, Prefix prefix, float* scratch) {
  float sum[1] = {0.0f};
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    if (in_prefix(order_key(logits[i]), i, prefix)) sum[0] += measure<kCountMeasure>(weights, i);
  }
  block_sums<1>(sum, scratch);
  return sum[0];
}

// The shortest prefix of `parent` whose measure satisfies M ≥ threshold (or M > threshold when strict).
// When even the whole parent does not (rounding), the whole parent.
template <bool kCountMeasure>
__device__ Prefix find_prefix(const float* logits, const float* weights, int vocab, Prefix parent, float threshold,
                              bool strict, float* scratch, int* int_scratch) {
  auto satisfied = [&](float m) { return strict ? m > threshold : m >= threshold; };
  // Largest key bound with M(key ≥ bound) satisfied, 4 bits at a time (M falls as the bound rises).
  uint32_t bound = 0;
  for (int shift = 32 - kRadixBits; shift >= 0; shift -= kRadixBits) {
    float sums[kCandidates];
#pragma unroll
    for (int v = 0; v < kCandidates; v++) sums[v] = 0.0f;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const uint32_t key = order_key(logits[i]);
      if (!in_prefix(key, i, parent)) continue;
      const float m = measure<kCountMeasure>(weights, i);
#pragma unroll
      for (int v = 0; v < kCandidates; v++) {
        if (key >= (bound | (uint32_t(v) << shift))) sums[v] += m;
      }
    }
    block_sums<kCandidates>(sums, scratch);
    if (shift == 32 - kRadixBits && !satisfied(sums[0])) return parent;
    int best = 0;
#pragma unroll
    for (int v = 1; v < kCandidates; v++) {
      if (satisfied(sums[v])) best = v;
    }
    bound |= uint32_t(best) << shift;
  }

  // Tokens strictly better than the bound key do not satisfy; walk the ties at the bound in id order.
  float above[1] = {0.0f};
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const uint32_t key = order_key(logits[i]);
    if (key > bound && in_prefix(key, i, parent)) above[0] += measure<kCountMeasure>(weights, i);
  }
  block_sums<1>(above, scratch);

  const int per_thread = (vocab + kThreads - 1) / kThreads;
  const int begin = min(vocab, int(threadIdx.x) * per_thread), end = min(vocab, begin + per_thread);
  float local = 0.0f;
  for (int i = begin; i < end; i++) {
    const uint32_t key = order_key(logits[i]);
    if (key == bound && in_prefix(key, i, parent)) local += measure<kCountMeasure>(weights, i);
  }
  float running = above[0] + block_exclusive_scan(local, scratch);
  int found = INT_MAX, last = -1;
  for (int i = begin; i < end; i++) {
    const uint32_t key = order_key(logits[i]);
    if (key != bound || !in_prefix(key, i, parent)) continue;
    const float m = measure<kCountMeasure>(weights, i);
    running += m;
    if (strict && !(m > 0.0f)) continue;  // a draw never lands on a token without mass (residuals have many)
    last = i;
    if (found == INT_MAX && satisfied(running)) found = i;
  }
  if (threadIdx.x == 0) {
    int_scratch[0] = INT_MAX;
    int_scratch[1] = -1;
  }
  __syncthreads();
  if (found != INT_MAX) atomicMin(&int_scratch[0], found);
  if (last >= 0) atomicMax(&int_scratch[1], last);
  __syncthreads();
  const int first_found = int_scratch[0], last_tie = int_scratch[1];
  __syncthreads();
  if (last_tie < 0) return parent;
  return Prefix{bound, first_found != INT_MAX ? first_found : last_tie};
}

// Argmax of a row, ties to the lower id; every thread gets it. `best_values` / `best_ids`: kWarps each.
__device__ void row_argmax(const float* logits, int vocab, float* best_values, int* best_ids, float* best_out,
                           int* best_id_out) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float best = -INFINITY;
  int best_id = INT_MAX;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float x = logits[i];
    if (x > best || (x == best && i < best_id)) {
      best = x;
      best_id = i;
    }
  }
  auto better = [](float value, int id, float other_value, int other_id) {
    return other_value > value || (other_value == value && other_id < id);
  };
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, best, offset);
    const int other_id = __shfl_xor_sync(0xffffffffu, best_id, offset);
    if (better(best, best_id, other, other_id)) {
      best = other;
      best_id = other_id;
    }
  }
  if (lane == 0) {
    best_values[warp] = best;
    best_ids[warp] = best_id;
  }
  __syncthreads();
  best = best_values[0];
  best_id = best_ids[0];
  for (int w = 1; w < kWarps; w++) {
    if (better(best, best_id, best_values[w], best_ids[w])) {
      best = best_values[w];
      best_id = best_ids[w];
    }
  }
  __syncthreads();  // best_values may be reused right away
  *best_out = best;
  *best_id_out = best_id >= 0 && best_id < vocab ? best_id : 0;  // all NaN: nothing compares; token 0
}

// The distribution sample_kernel draws from: tempered weights of the row written to `weights` (the best logit gets
// weight 1), then top-k, then top-p. Returns the kept prefix (the nucleus) and its total weight.
__device__ Prefix row_nucleus(const float* logits, float* weights, int vocab, float best, float temperature,
                              int top_k, float top_p, float* total_out, float* scratch, int* int_scratch) {
  const float inverse_temperature = 1.0f / temperature;
  const float top = best * inverse_temperature;
  for (int i = threadIdx.x; i < vocab; i += kThreads) weights[i] = expf(logits[i] * inverse_temperature - top);
  __syncthreads();  // weights are read by other threads below

  const Prefix everything{0u, INT_MAX};
  Prefix kept = everything;
  if (top_k > 0 && top_k < vocab) {
    kept = find_prefix<true>(logits, weights, vocab, everything, float(top_k), false, scratch, int_scratch);
  }
  float total = prefix_total<false>(logits, weights, vocab, kept, scratch);
  Prefix nucleus = kept;
  if (top_p < 1.0f) {
    nucleus = find_prefix<false>(logits, weights, vocab, kept, top_p * total, false, scratch, int_scratch);
    total = prefix_total<false>(logits, weights, vocab, nucleus, scratch);
  }
  *total_out = total;
  return nucleus;
}

// Inverse-CDF draw in the sorted order over `nucleus`, by `weights` summing to `total` there; `fallback` when
// rounding leaves nothing to pick.
__device__ int draw(const float* logits, const float* weights, int vocab, Prefix nucleus, float total, double uniform,
                    int fallback, float* scratch, int* int_scratch) {
  // target < total keeps the draw inside the nucleus even when uniform · total rounds up to total.
  const float target = fminf(float(uniform * double(total)), nextafterf(total, 0.0f));
  const Prefix chosen = find_prefix<false>(logits, weights, vocab, nucleus, target, true, scratch, int_scratch);
  return chosen.id >= 0 && chosen.id < vocab ? chosen.id : fallback;
}

// Probability of `token` in the nucleus distribution (0 outside it).
__device__ float nucleus_probability(const float* logits, const float* weights, Prefix nucleus, float total,
                                     int token) {
  return in_prefix(order_key(logits[token]), token, nucleus) ? weights[token] / total : 0.0f;
}

__global__ void __launch_bounds__(kThreads)
sample_kernel(SampledToken* __restrict__ out, const float* __restrict__ all_logits, float* __restrict__ all_weights,
              int vocab, float temperature, int top_k, float top_p, const double* __restrict__ uniforms) {
  __shared__ float scratch[(kWarps + 1) * kCandidates];
  __shared__ int int_scratch[2];
  __shared__ float best_values[kWarps];
  __shared__ int best_ids[kWarps];
  const int row = blockIdx.x;
  const float* logits = all_logits + size_t(row) * vocab;
  float best;
  int best_id;
  row_argmax(logits, vocab, best_values, best_ids, &best, &best_id);

  if (temperature <= 0.0f) {
    float sum[1] = {0.0f};
    for (int i = threadIdx.x; i < vocab; i += kThreads) sum[0] += expf(logits[i] - best);
    block_sums<1>(sum, scratch);
    if (threadIdx.x == 0) out[row] = SampledToken{best_id, 1.0f / sum[0], 1.0f / sum[0]};
    return;
  }

  float* weights = all_weights + size_t(row) * vocab;
  float total;
  const Prefix nucleus = row_nucleus(logits, weights, vocab, best, temperature, top_k, top_p, &total, scratch,
                                     int_scratch);
  const int token = draw(logits, weights, vocab, nucleus, total, uniforms[row], best_id, scratch, int_scratch);
  // The best token has weight 1, and the nucleus always holds it.
  if (threadIdx.x == 0) out[row] = SampledToken{token, weights[token] / total, 1.0f / total};
}

// Speculative sampling's verification (see SpeculativeSampler::verify): block i takes verify row i, which is row
// r = row_begin + i of the step. r < drafted: p_verify(d) and p_draft(d) of draft d = draft_tokens[r] under the two
// nucleus distributions (the draft's rebuilt from its kept logits row r), and a draw from the residual
// max(0, p_verify − p_draft) in the verify row's sorted order (from p_verify when the residual has no mass);
// otherwise a plain draw from p_verify. workspace: (n, 2, vocab) floats.
__global__ void __launch_bounds__(kThreads)
verify_sampled_kernel(VerifyRow* __restrict__ out, const float* __restrict__ all_logits,
                      const float* __restrict__ all_draft_logits, const int32_t* __restrict__ draft_tokens,
                      int row_begin, int drafted, int vocab, float temperature, int top_k, float top_p,
                      const double* __restrict__ uniforms, float* __restrict__ workspace) {
  __shared__ float scratch[(kWarps + 1) * kCandidates];
  __shared__ int int_scratch[2];
  __shared__ float best_values[kWarps];
  __shared__ int best_ids[kWarps];
  const int i = blockIdx.x, row = row_begin + i;
  const float* logits = all_logits + size_t(i) * vocab;
  float* verify_weights = workspace + size_t(i) * 2 * vocab;
  float* draft_weights = verify_weights + vocab;  // later: the residual

  float best, verify_total;
  int best_id;
  row_argmax(logits, vocab, best_values, best_ids, &best, &best_id);
  const Prefix verify_nucleus = row_nucleus(logits, verify_weights, vocab, best, temperature, top_k, top_p,
                                            &verify_total, scratch, int_scratch);
  if (row >= drafted) {
    const int token = draw(logits, verify_weights, vocab, verify_nucleus, verify_total, uniforms[i], best_id, scratch,
                           int_scratch);
    if (threadIdx.x == 0) out[i] = VerifyRow{token, 0.0f, 0.0f};
    return;
  }

  const float* draft_logits = all_draft_logits + size_t(row) * vocab;
  const int proposal = draft_tokens[row];
  float draft_best, draft_total;
  int draft_best_id;
  row_argmax(draft_logits, vocab, best_values, best_ids, &draft_best, &draft_best_id);
  const Prefix draft_nucleus = row_nucleus(draft_logits, draft_weights, vocab, draft_best, temperature, top_k, top_p,
                                           &draft_total, scratch, int_scratch);
  const float verify_probability = nucleus_probability(logits, verify_weights, verify_nucleus, verify_total, proposal);
  const float draft_probability =
      nucleus_probability(draft_logits, draft_weights, draft_nucleus, draft_total, proposal);
  __syncthreads();  // every thread has read draft_weights[proposal] before the residual overwrites it

  // Residual weights in place of the draft weights (each thread rewrites only the entries it reads).
  for (int j = threadIdx.x; j < vocab; j += kThreads) {
    const float p_verify = nucleus_probability(logits, verify_weights, verify_nucleus, verify_total, j);
    const float p_draft = nucleus_probability(draft_logits, draft_weights, draft_nucleus, draft_total, j);
    draft_weights[j] = fmaxf(0.0f, p_verify - p_draft);
  }
  __syncthreads();
  const float residual_total = prefix_total<false>(logits, draft_weights, vocab, verify_nucleus, scratch);
  const int token =
      residual_total > 0.0f
          ? draw(logits, draft_weights, vocab, verify_nucleus, residual_total, uniforms[i], best_id, scratch, int_scratch)
          : draw(logits, verify_weights, vocab, verify_nucleus, verify_total, uniforms[i], best_id, scratch, int_scratch);
  if (threadIdx.x == 0) out[i] = VerifyRow{token, verify_probability, draft_probability};
}

}  // namespace

Status sample_cuda(SampledToken* out, const float* logits, int n, int vocab, const SamplingParams& params,
                   const double* uniforms, float* workspace, size_t workspace_floats, cudaStream_t stream) {
  if (n < 1 || vocab < 1) return Status::error("sample: invalid shape (n " + std::to_string(n) + ", vocab " + std::to_string(vocab) + ")");
  if (vocab > (1 << 24)) return Status::error("sample: vocabulary of " + std::to_string(vocab) + " exceeds 2^24");
  if (out == nullptr || logits == nullptr) return Status::error("sample: null buffer");
  const bool greedy = params.temperature <= 0.0f;
  if (!greedy && (uniforms == nullptr || workspace == nullptr || workspace_floats < sampling_workspace_floats(n, vocab))) {
    return Status::error("sample: missing uniforms or workspace for temperature sampling");
  }
  if (!greedy && (!(params.top_p > 0.0f) || params.top_k < 0)) {
    return Status::error("sample: top_p must be in (0, 1] and top_k ≥ 0");
  }
  launch_kernel(sample_kernel, unsigned(n), kThreads, 0, stream, out, logits, workspace, vocab, params.temperature,
                params.top_k, params.top_p, uniforms);
  return check_launch("sample");
}

Status verify_sampled_cuda(VerifyRow* out, const float* logits, const float* draft_logits, const int32_t* draft_tokens,
                           int row_begin, int n, int drafted, int vocab, const SamplingParams& params,
                           const double* uniforms, float* workspace, size_t workspace_floats, cudaStream_t stream) {
  if (n < 1 || vocab < 1 || row_begin < 0) {
    return Status::error("verify_sampled: invalid shape (n " + std::to_string(n) + ", vocab " + std::to_string(vocab) + ")");
  }
  if (vocab > (1 << 24)) return Status::error("verify_sampled: vocabulary of " + std::to_string(vocab) + " exceeds 2^24");
  if (!(params.temperature > 0.0f) || !(params.top_p > 0.0f) || params.top_k < 0) {
    return Status::error("verify_sampled: needs temperature > 0, top_p in (0, 1] and top_k ≥ 0");
  }
  if (out == nullptr || logits == nullptr || uniforms == nullptr || workspace == nullptr ||
      workspace_floats < verify_sampled_workspace_floats(n, vocab) ||
      (row_begin < drafted && (draft_logits == nullptr || draft_tokens == nullptr))) {
    return Status::error("verify_sampled: missing buffer or workspace");
  }
  launch_kernel(verify_sampled_kernel, unsigned(n), kThreads, 0, stream, out, logits, draft_logits, draft_tokens,
                row_begin, drafted, vocab, params.temperature, params.top_k, params.top_p, uniforms, workspace);
  return check_launch("verify_sampled");
}

}  // namespace layerskip
