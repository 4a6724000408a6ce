// Context: one sequence being generated — its KV cache, its scratch activations and the forward pass over a range
// of layers. The steps are separate so decoding strategies compose them:
//   embed(tokens) → run_layers(a, b) → compute_logits(rows) → sample / read_logits,  truncate(length).
// Self-speculative decoding runs layers [0, E) to draft and [E, L) to verify, so each layer tracks its own cache
// length; the cache of layer l holds positions [0, layer_length(l)).
#pragma once
#include <memory>
#include <vector>

#include "backend.h"
#include "model.h"

namespace layerskip {

struct ContextOptions {
  int context_length = 0;   // max positions; ≤ 0: min(max_position_embeddings, 4096)
  int max_batch = 512;      // rows per forward call (prefill is chunked to this)
  int max_logit_rows = 64;  // rows compute_logits may produce at once
};

class Context {
 public:
  static Status create(const Model& model, const ContextOptions& options, std::unique_ptr<Context>* out);
  ~Context();

  int context_length() const { return context_length_; }
  int max_batch() const { return max_batch_; }
  int max_logit_rows() const { return max_logit_rows_; }
  int layer_length(int layer) const { return layer_length_[layer]; }
  // Positions held by every layer (the committed sequence length).
  int length() const;

  // Writes the embeddings of n tokens into working rows [0, n).
  Status embed(const int32_t* tokens, int n);
  // Runs layers [layer_begin, layer_end) over working rows [0, n) at positions [start_pos, start_pos + n),
  // appending their K/V. Each of those layers must hold exactly start_pos positions.
  Status run_layers(int layer_begin, int layer_end, int n, int start_pos);
  // Final norm + LM head over working rows [row_begin, row_begin + count) → logits rows [0, count).
  Status compute_logits(int row_begin, int count);
  // Picks a token from each of logits rows [0, count).
  Status sample(int count, const SamplingParams& params, const double* uniforms, SampledToken* out);
  // Copies logits rows [0, count) to host memory (count × vocab floats).
  Status read_logits(float* host_out, int count);
  // Copies working rows [0, count) (the residual stream) to host memory (count × hidden floats).
  Status read_hidden(float* host_out, int count);

  // Convenience for prefill and plain decoding: n tokens through layers [0, layer_end) at the current length,
  // chunked by max_batch, then logits for the last `logit_rows` tokens (logit_rows ≤ max_logit_rows, and when
  // it is more than 1, n ≤ max_batch).
  Status forward(const int32_t* tokens, int n, int layer_end, int logit_rows);

  // Forgets every position ≥ length in every layer (a length update; nothing is copied).
  void truncate(int length);

 private:
  Context(const Model& model) : model_(model), backend_(model.backend()) {}
  Status allocate(float** buffer, size_t count);

  const Model& model_;
  Backend& backend_;
  int context_length_ = 0;
  int max_batch_ = 0;
  int max_logit_rows_ = 0;
  std::vector<int> layer_length_;   // (layers) positions cached per layer

  std::vector<float*> owned_;       // every buffer below, for freeing
  float* hidden_ = nullptr;         // (max_batch, dim) residual stream
  float* normed_ = nullptr;         // (max_batch, dim) rmsnorm output
  float* query_ = nullptr;          // (max_batch, q_dim)
  float* attention_out_ = nullptr;  // (max_batch, q_dim)
  float* projection_ = nullptr;     // (max_batch, dim) o_proj / down_proj output
  float* gate_ = nullptr;           // (max_batch, ffn)
  float* up_ = nullptr;             // (max_batch, ffn)
  float* logits_ = nullptr;         // (max_logit_rows, vocab)
  float* rope_cos_ = nullptr;       // (context_length, head_dim / 2)
  float* rope_sin_ = nullptr;       // (context_length, head_dim / 2)
  std::vector<float*> key_cache_;   // (layers) × (context_length, kv_dim)
  std::vector<float*> value_cache_; // (layers) × (context_length, kv_dim)
};

}  // namespace layerskip
