// Every bound layerskip puts on what a checkpoint folder or a caller hands it, in one place (README "Limits and
// trust model"; lib/limits.ts mirrors the ones TypeScript checks). Each is refused with an error naming the field
// and the limit before anything sized by it is allocated. Sizes computed from a file use checked 64-bit arithmetic
// (checked_mul / checked_add below).
#pragma once
#include <algorithm>
#include <cstdint>
#include <thread>

#include "available_cores.h"

namespace layerskip {

// --- files ---
// A safetensors header (the JSON after the 8-byte length); real ones are a few hundred KiB.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;
// config.json, generation_config.json, model.safetensors.index.json: a few KiB in real checkpoints.
constexpr uint64_t kMaxJsonFileBytes = 16ull << 20;
// tokenizer.json, tokenizer_config.json (read by lib/tokenizer.ts): Llama 3's tokenizer.json is 9 MiB.
constexpr uint64_t kMaxTokenizerFileBytes = 64ull << 20;

// --- JSON documents (core/json.cc) ---
constexpr int kMaxJsonDepth = 64;
// Values (of any kind, nested ones included) in one document: a Llama header has ~10 per tensor.
constexpr uint64_t kMaxJsonValues = 1ull << 20;

// --- model shape (config.json) ---
constexpr int kMaxLayers = 1024;
constexpr int kMaxHeads = 1024;               // num_attention_heads, num_key_value_heads
constexpr int kMaxHeadDim = 1024;
constexpr int kMaxModelWidth = 1 << 20;        // hidden_size, intermediate_size, heads × head_dim
constexpr int kMaxVocabSize = 1 << 24;
// A tensor's element count (safetensors shape product), 2^42 (16 TiB of f32).
constexpr uint64_t kMaxTensorElements = 1ull << 42;

// --- options ---
// contextLength: positions one context's KV cache holds.
constexpr int kMaxContextLength = 1 << 20;
// threads: accepted up to kMaxThreads; more than kThreadsPerCore per available core run as that many.
constexpr int kMaxThreads = 256;
constexpr int kThreadsPerCore = 4;

// Threads to create for a request of `requested` (≤ 0: one per available core, see available_cores.h): at most
// kThreadsPerCore per available core.
inline int thread_count_for(int requested) {
  const int cores = available_cores();
  if (requested <= 0) return cores;
  return std::min(requested, kThreadsPerCore * cores);
}

// a * b and a + b on uint64_t; false (and *out untouched) when the result does not fit.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  uint64_t product;
  if (__builtin_mul_overflow(a, b, &product)) return false;
  *out = product;
  return true;
}
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  uint64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return false;
  *out = sum;
  return true;
}

}  // namespace layerskip
