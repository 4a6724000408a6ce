// `layerskip quantize`: rewrites a checkpoint's weights as one safetensors file of quantized planes (core/quant.h).
// Matrices become "<name>.qweight" / "<name>.scales" (/ "<name>.mins"), everything else is copied as stored. The
// caller (lib/quantize.ts) writes config.json's quantization_config and the tokenizer files next to it, in a folder
// it renames into place only when everything succeeded.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "dtype.h"
#include "status.h"

namespace layerskip {

struct QuantizeCheckpointOptions {
  DType format = DType::Q8;
  bool keep_head = false;  // leave lm_head (and a tied embedding) as stored
  int threads = 0;         // ≤ 0: one per core
  // After each tensor: source bytes done and in all. Returning false cancels (the call then fails).
  std::function<bool(uint64_t done_bytes, uint64_t total_bytes)> on_progress;
};

struct QuantizeCheckpointReport {
  int tensors = 0;            // tensors read
  int quantized = 0;          // matrices quantized
  uint64_t input_bytes = 0;   // tensor bytes read
  uint64_t output_bytes = 0;  // bytes of the file written
};

// Quantizes checkpoint folder `dir` into the safetensors file `out_path` (created; must not exist).
Status quantize_checkpoint(const std::string& dir, const std::string& out_path, const QuantizeCheckpointOptions& options,
                           QuantizeCheckpointReport* report);

}  // namespace layerskip
