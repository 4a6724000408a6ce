// Per-exit-layer evaluation (see exit_evaluation.h). The residual stream after layer l is exactly the draft state
// of exit layer l + 1, so one pass over the layers scores every exit: compute_logits reads the working rows and
// writes only the norm scratch and the logits buffer, leaving the residual stream for the next layer. Log-softmax
// runs on the host in double.
#include "exit_evaluation.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace layerskip {

namespace {

// Scores logits rows [0, count) against targets: adds −log p(target) and argmax == target, records each argmax.
void score_rows(const float* logits, int count, int vocab, const int32_t* targets, double* nll, double* correct,
                int32_t* argmax_out) {
  for (int row = 0; row < count; row++) {
    const float* values = logits + size_t(row) * vocab;  // (vocab)
    int32_t best = 0;
    for (int i = 1; i < vocab; i++) {
      if (values[i] > values[best]) best = i;
    }
    const double max_value = values[best];
    double total = 0.0;
    for (int i = 0; i < vocab; i++) total += std::exp(double(values[i]) - max_value);
    *nll += std::log(total) + max_value - double(values[targets[row]]);
    if (best == targets[row]) *correct += 1.0;
    argmax_out[row] = best;
  }
}

}  // namespace

Status evaluate_exit_layers(Context& context, const int32_t* tokens, int n, ExitLayerSums* out) {
  const ModelConfig& config = context.model().config();
  const int num_layers = config.num_layers, vocab = config.vocab_size;
  if (n < 2 || n - 1 > context.context_length()) {
    return Status::error("evaluate_exit_layers: a window needs between 2 and context length + 1 (" +
                         std::to_string(context.context_length() + 1) + ") tokens, got " + std::to_string(n));
  }
  for (int i = 0; i < n; i++) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      return Status::error("token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                           " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
  }
  const int positions = n - 1;
  const int max_batch = context.max_batch(), logit_rows = context.max_logit_rows();
  out->nll.assign(num_layers, 0.0);
  out->correct.assign(num_layers, 0.0);
  out->agree.assign(num_layers, 0.0);
  out->count = positions;

  std::vector<float> host_logits(size_t(logit_rows) * vocab);      // (max_logit_rows, vocab)
  std::vector<int32_t> argmax(size_t(num_layers) * max_batch);      // (layers, max_batch) of the current chunk
  context.truncate(0);
  for (int chunk_begin = 0; chunk_begin < positions; chunk_begin += max_batch) {
    const int chunk = std::min(max_batch, positions - chunk_begin);
    const int32_t* targets = tokens + chunk_begin + 1;  // (chunk) the token after each fed position
    LS_RETURN_IF_ERROR(context.embed(tokens + chunk_begin, chunk));
    for (int layer = 0; layer < num_layers; layer++) {
      LS_RETURN_IF_ERROR(context.run_layers(layer, layer + 1, chunk, chunk_begin));
      int32_t* layer_argmax = argmax.data() + size_t(layer) * max_batch;
      for (int row = 0; row < chunk; row += logit_rows) {
        const int count = std::min(logit_rows, chunk - row);
        LS_RETURN_IF_ERROR(context.compute_logits(row, count));
        LS_RETURN_IF_ERROR(context.read_logits(host_logits.data(), count));
        score_rows(host_logits.data(), count, vocab, targets + row, &out->nll[layer], &out->correct[layer],
                   layer_argmax + row);
      }
    }
    // Agreement with the last layer's argmax, position by position.
    const int32_t* final_argmax = argmax.data() + size_t(num_layers - 1) * max_batch;
    for (int layer = 0; layer < num_layers; layer++) {
      const int32_t* layer_argmax = argmax.data() + size_t(layer) * max_batch;
      for (int row = 0; row < chunk; row++) {
        if (layer_argmax[row] == final_argmax[row]) out->agree[layer] += 1.0;
      }
    }
  }
  return Status::ok();
}

}  // namespace layerskip
