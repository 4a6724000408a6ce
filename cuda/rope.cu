// Rotary position embedding, HF rotate-half layout: within a head, element i pairs with i + head_dim / 2:
//   a' = a·cos − b·sin,  b' = b·cos + a·sin,  with cos/sin from the Context's precomputed tables (Llama 3
// frequency scaling already applied on the host, in double). One thread per (row, head, pair); rows are
// independent, so the result never depends on n.
#include "rope.cuh"

namespace layerskip {

namespace {

constexpr int kThreads = 256;

__global__ void rope_kernel(float* vectors, int n, int row_stride, int num_heads, int half, int start_pos,
                            const float* __restrict__ cos_table, const float* __restrict__ sin_table) {
  const size_t pairs_per_row = size_t(num_heads) * half;
  const size_t index = size_t(blockIdx.x) * kThreads + threadIdx.x;
  if (index >= pairs_per_row * n) return;
  const int row = int(index / pairs_per_row);
  const int head = int(index % pairs_per_row) / half, i = int(index % pairs_per_row) % half;
  float* head_vector = vectors + size_t(row) * row_stride + size_t(head) * 2 * half;
  const size_t table_index = size_t(start_pos + row) * half + i;
  const float c = cos_table[table_index], s = sin_table[table_index];
  const float a = head_vector[i], b = head_vector[i + half];
  head_vector[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
  head_vector[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

}  // namespace

Status rope_cuda(float* vectors, int n, int row_stride, int num_heads, int head_dim, int start_pos,
                 const float* cos_table, const float* sin_table, cudaStream_t stream) {
  if (n < 1 || num_heads < 1 || head_dim < 2 || head_dim % 2 != 0 || start_pos < 0 ||
      row_stride < num_heads * head_dim) {
    return Status::error("rope: invalid shape (n " + std::to_string(n) + ", heads " + std::to_string(num_heads) +
                         ", head_dim " + std::to_string(head_dim) + ", row_stride " + std::to_string(row_stride) + ")");
  }
  if (vectors == nullptr || cos_table == nullptr || sin_table == nullptr) return Status::error("rope: null buffer");
  const size_t threads = size_t(n) * num_heads * (head_dim / 2);
  const size_t blocks = ceil_div(threads, size_t(kThreads));
  if (blocks > 0x7fffffffu) return Status::error("rope: too many rows");
  launch_kernel(rope_kernel, unsigned(blocks), kThreads, 0, stream, vectors, n, row_stride, num_heads, head_dim / 2,
                start_pos, cos_table, sin_table);
  return check_launch("rope");
}

}  // namespace layerskip
