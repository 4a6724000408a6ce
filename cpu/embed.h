// Token embedding lookup: rows of the (vocab, dim) table, converted to f32.
#pragma once
#include "../core/backend.h"

namespace layerskip {

void embed_cpu(float* out, const int32_t* tokens, int n, const Weight& table);

}  // namespace layerskip
