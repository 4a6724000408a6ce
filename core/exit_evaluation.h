// Per-exit-layer evaluation: how well each early exit l = 1..L (layers [0, l), then the model's own final norm and
// LM head) predicts a window of text, and how often its argmax matches the last layer's. This is how a user learns
// whether a checkpoint is LayerSkip-ready and which exit layer E to draft from.
#pragma once
#include <cstdint>
#include <vector>

#include "context.h"

namespace layerskip {

// Sums over one window's predictions (token t + 1 from positions [0, t]); index l − 1 is exit layer l.
struct ExitLayerSums {
  std::vector<double> nll;      // (layers) Σ −log softmax(logits)[target]
  std::vector<double> correct;  // (layers) predictions whose argmax (lowest id on ties) is the target
  std::vector<double> agree;    // (layers) predictions whose argmax equals the last layer's argmax
  int count = 0;                // predictions per layer: n − 1
};

// Scores tokens[0, n) at every exit layer: positions [0, n − 1) are fed (tokens[n − 1] is only a target), chunk by
// chunk of max_batch rows, layer by layer, reading each layer's logits in chunks of max_logit_rows. Truncates the
// context to 0 first and leaves every layer holding the n − 1 fed positions. Needs 2 ≤ n ≤ context_length + 1.
Status evaluate_exit_layers(Context& context, const int32_t* tokens, int n, ExitLayerSums* out);

}  // namespace layerskip
