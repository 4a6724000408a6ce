// Causal grouped-query attention: one kernel family for decode (n = 1), verification (n = k + 1) and prefill.
//
// Layouts: q, out (n, num_heads · head_dim); k_cache, v_cache (capacity, num_kv_heads · head_dim), f32, row p =
// position p. Query row t sits at position start_pos + t and sees cache rows [0, start_pos + t].
//
// Split-KV ("flash-decoding"): the key range is cut into chunks of 256 positions at absolute boundaries
// (0, 256, 512, …). attention_chunk_kernel computes, per (query, head, chunk), the running max m, the softmax
// denominator l and the unnormalized Σ p·v over that chunk; attention_combine_kernel merges the chunks of a
// (query, head) in chunk order. Long contexts therefore spread over many blocks even for one query.
//
// Tiling: a block takes one KV head, one chunk and a tile of up to 32 (query, head) rows — the GQA group of
// heads that share that KV head, times as many consecutive queries as fit — so each K/V block loaded into shared
// memory serves every row of the tile (flash-attention style, on CUDA cores: attention is a few percent of
// the FLOPs here). Within a 32-key block, lane j scores key j (q·k in d order), the warp takes max and sum with
// fixed butterflies, then each lane updates its head dims d = lane + 32i in key order (online softmax).
//
// Batch invariance: a row's arithmetic depends only on its own position — chunk and 32-key block boundaries
// are absolute, masked keys are skipped (never multiplied by 0: cache rows past the sequence may hold garbage),
// the combine order is fixed — so a query's output is bit-identical whatever n is and wherever it sits.
#include "attention.cuh"

#include <algorithm>

namespace layerskip {

namespace {

constexpr int kKeyBlock = 32;       // keys per shared-memory block: one per lane
constexpr int kChunkKeys = 256;     // positions per split; a multiple of kKeyBlock
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxTileRows = 32;    // (query, head) rows per block
constexpr int kMaxHeadDim = 256;
constexpr size_t kWorkspaceBudgetFloats = size_t(16) << 20;  // 64 MiB: prefill runs in passes beyond this

static_assert(kChunkKeys % kKeyBlock == 0, "chunks must hold whole key blocks");

// partial: (query_count, num_heads, chunk_stride, head_dim + 2) = m, l, acc[head_dim] per (query, head, chunk).
template <int kDimsPerLane, int kRowsPerWarp>
__global__ void __launch_bounds__(kThreads)
attention_chunk_kernel(float* __restrict__ partial, const float* __restrict__ q, const float* __restrict__ k_cache,
                       const float* __restrict__ v_cache, int query_begin, int query_end, int start_pos,
                       int num_heads, int num_kv_heads, int head_dim, int queries_per_tile, int chunk_stride,
                       float scale) {
  float* shared = dynamic_shared_memory<float>();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int group = num_heads / num_kv_heads;
  const int kv_head = blockIdx.y;
  const int chunk = blockIdx.x;
  const int tile_first = query_begin + blockIdx.z * queries_per_tile;
  const int tile_end = min(tile_first + queries_per_tile, query_end);
  const int tile_rows = (tile_end - tile_first) * group;
  const int tile_visible = start_pos + tile_end;  // keys seen by the tile's last query
  const int chunk_begin = chunk * kChunkKeys;
  if (chunk_begin >= tile_visible) return;  // whole block: no row of the tile reaches this chunk
  const int chunk_end = min(chunk_begin + kChunkKeys, tile_visible);

  const size_t q_stride = size_t(num_heads) * head_dim;
  const size_t kv_stride = size_t(num_kv_heads) * head_dim;
  float* q_tile = shared;                                         // (tile_rows, head_dim)
  float* key_block = q_tile + tile_rows * head_dim;               // (32, head_dim + 1): odd stride, no conflicts
  float* value_block = key_block + kKeyBlock * (head_dim + 1);    // (32, head_dim)

  // Tile row r = (query tile_first + r / group, head kv_head · group + r % group).
  for (int i = threadIdx.x; i < tile_rows * head_dim; i += kThreads) {
    const int r = i / head_dim, d = i % head_dim;
    const int query = tile_first + r / group, head = kv_head * group + r % group;
    q_tile[i] = q[query * q_stride + size_t(head) * head_dim + d];
  }

  float running_max[kRowsPerWarp], denominator[kRowsPerWarp], acc[kRowsPerWarp][kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; i++) {
    running_max[i] = -INFINITY;
    denominator[i] = 0.0f;
#pragma unroll
    for (int e = 0; e < kDimsPerLane; e++) acc[i][e] = 0.0f;
  }

  for (int block_begin = chunk_begin; block_begin < chunk_end; block_begin += kKeyBlock) {
    __syncthreads();  // previous block fully consumed (and q_tile written, on the first pass)
    for (int i = threadIdx.x; i < kKeyBlock * head_dim; i += kThreads) {
      const int j = i / head_dim, d = i % head_dim;
      const int position = block_begin + j;
      const bool live = position < chunk_end;
      const size_t offset = size_t(live ? position : 0) * kv_stride + size_t(kv_head) * head_dim + d;
      key_block[j * (head_dim + 1) + d] = live ? k_cache[offset] : 0.0f;
      value_block[j * head_dim + d] = live ? v_cache[offset] : 0.0f;
    }
    __syncthreads();

#pragma unroll
    for (int i = 0; i < kRowsPerWarp; i++) {
      const int r = warp + kWarps * i;
      if (r >= tile_rows) continue;  // warp-uniform
      const int visible = start_pos + tile_first + r / group + 1;
      const int count = min(kKeyBlock, visible - block_begin);
      if (count <= 0) continue;  // warp-uniform: this row's keys ended in an earlier block

      float score = -INFINITY;
      if (lane < count) {
        const float* query_row = q_tile + r * head_dim;
        const float* key_row = key_block + lane * (head_dim + 1);
        float dot = 0.0f;
        for (int d = 0; d < head_dim; d++) dot = fmaf(query_row[d], key_row[d], dot);
        score = dot * scale;
      }
      const float new_max = fmaxf(running_max[i], warp_max(score));
      const float p = lane < count ? expf(score - new_max) : 0.0f;
      const float correction = expf(running_max[i] - new_max);  // 0 on the first block (max was -inf)
      denominator[i] = denominator[i] * correction + warp_sum(p);
#pragma unroll
      for (int e = 0; e < kDimsPerLane; e++) acc[i][e] *= correction;
      for (int j = 0; j < count; j++) {
        const float weight = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int e = 0; e < kDimsPerLane; e++) {
          const int d = lane + 32 * e;
          if (d < head_dim) acc[i][e] = fmaf(weight, value_block[j * head_dim + d], acc[i][e]);
        }
      }
      running_max[i] = new_max;
    }
  }

#pragma unroll
  for (int i = 0; i < kRowsPerWarp; i++) {
    const int r = warp + kWarps * i;
    if (r >= tile_rows) continue;
    const int query = tile_first + r / group, head = kv_head * group + r % group;
    if (chunk_begin >= start_pos + query + 1) continue;  // this row sees nothing here; combine skips it too
    float* slot = partial + ((size_t(query - query_begin) * num_heads + head) * chunk_stride + chunk) * (head_dim + 2);
    if (lane == 0) {
      slot[0] = running_max[i];
      slot[1] = denominator[i];
    }
#pragma unroll
    for (int e = 0; e < kDimsPerLane; e++) {
      const int d = lane + 32 * e;
      if (d < head_dim) slot[2 + d] = acc[i][e];
    }
  }
}

// One warp per (query, head): merges its chunks 0 … ceil(visible / 256) − 1 in order.
template <int kDimsPerLane>
__global__ void __launch_bounds__(kThreads)
attention_combine_kernel(float* __restrict__ out, const float* __restrict__ partial, int query_begin, int query_end,
                         int start_pos, int num_heads, int head_dim, int chunk_stride) {
  const int lane = threadIdx.x & 31;
  const size_t job = size_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (job >= size_t(query_end - query_begin) * num_heads) return;  // whole warp
  const int local_query = int(job / num_heads), head = int(job % num_heads);
  const int query = query_begin + local_query;
  const int chunks = (start_pos + query + 1 + kChunkKeys - 1) / kChunkKeys;
  const float* slots = partial + (size_t(local_query) * num_heads + head) * chunk_stride * (head_dim + 2);

  float overall_max = -INFINITY;
  for (int c = 0; c < chunks; c++) overall_max = fmaxf(overall_max, slots[size_t(c) * (head_dim + 2)]);
  float denominator = 0.0f;
  float acc[kDimsPerLane];
#pragma unroll
  for (int e = 0; e < kDimsPerLane; e++) acc[e] = 0.0f;
  for (int c = 0; c < chunks; c++) {
    const float* slot = slots + size_t(c) * (head_dim + 2);
    const float factor = expf(slot[0] - overall_max);
    denominator = fmaf(slot[1], factor, denominator);
#pragma unroll
    for (int e = 0; e < kDimsPerLane; e++) {
      const int d = lane + 32 * e;
      if (d < head_dim) acc[e] = fmaf(slot[2 + d], factor, acc[e]);
    }
  }
  float* result = out + size_t(query) * num_heads * head_dim + size_t(head) * head_dim;
#pragma unroll
  for (int e = 0; e < kDimsPerLane; e++) {
    const int d = lane + 32 * e;
    if (d < head_dim) result[d] = acc[e] / denominator;
  }
}

int chunk_count(int visible) { return (visible + kChunkKeys - 1) / kChunkKeys; }

size_t floats_per_query(int num_heads, int chunks, int head_dim) {
  return size_t(num_heads) * size_t(chunks) * size_t(head_dim + 2);
}

template <int kDimsPerLane, int kRowsPerWarp>
Status launch_pass(float* out, const float* q, const float* k_cache, const float* v_cache, int query_begin,
                   int query_end, int start_pos, int num_heads, int num_kv_heads, int head_dim, int queries_per_tile,
                   int chunk_stride, float* workspace, cudaStream_t stream) {
  const int group = num_heads / num_kv_heads;
  const int tile_rows = queries_per_tile * group;
  if (tile_rows > kWarps * kRowsPerWarp) return Status::error("attention: tile exceeds the rows per warp");
  const size_t shared_bytes =
      (size_t(tile_rows) * head_dim + size_t(kKeyBlock) * (head_dim + 1) + size_t(kKeyBlock) * head_dim) * sizeof(float);
  auto kernel = attention_chunk_kernel<kDimsPerLane, kRowsPerWarp>;
  if (shared_bytes > 48 * 1024) {
    LS_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared_bytes)),
                            "attention shared memory opt-in");
  }
  const int queries = query_end - query_begin;
  const dim3 grid(unsigned(chunk_stride), unsigned(num_kv_heads), unsigned(ceil_div(queries, queries_per_tile)));
  LS_RETURN_IF_ERROR(check_grid(grid, "attention_chunk"));
  const float scale = 1.0f / sqrtf(float(head_dim));
  launch_kernel(kernel, grid, kThreads, shared_bytes, stream, workspace, q, k_cache, v_cache, query_begin, query_end,
                start_pos, num_heads, num_kv_heads, head_dim, queries_per_tile, chunk_stride, scale);
  LS_RETURN_IF_ERROR(check_launch("attention_chunk"));

  const dim3 combine_grid(unsigned(ceil_div(size_t(queries) * num_heads, size_t(kWarps))), 1, 1);
  LS_RETURN_IF_ERROR(check_grid(combine_grid, "attention_combine"));
  launch_kernel(attention_combine_kernel<kDimsPerLane>, combine_grid, kThreads, 0, stream, out, workspace, query_begin, query_end, start_pos, num_heads, head_dim, chunk_stride);
  return check_launch("attention_combine");
}

template <int kDimsPerLane>
Status launch_with_dims(int rows_per_warp, float* out, const float* q, const float* k_cache, const float* v_cache,
                        int query_begin, int query_end, int start_pos, int num_heads, int num_kv_heads, int head_dim,
                        int queries_per_tile, int chunk_stride, float* workspace, cudaStream_t stream) {
  switch (rows_per_warp) {
    case 1: return launch_pass<kDimsPerLane, 1>(out, q, k_cache, v_cache, query_begin, query_end, start_pos, num_heads, num_kv_heads, head_dim, queries_per_tile, chunk_stride, workspace, stream);
    case 2: return launch_pass<kDimsPerLane, 2>(out, q, k_cache, v_cache, query_begin, query_end, start_pos, num_heads, num_kv_heads, head_dim, queries_per_tile, chunk_stride, workspace, stream);
    case 4: return launch_pass<kDimsPerLane, 4>(out, q, k_cache, v_cache, query_begin, query_end, start_pos, num_heads, num_kv_heads, head_dim, queries_per_tile, chunk_stride, workspace, stream);
    case 8: return launch_pass<kDimsPerLane, 8>(out, q, k_cache, v_cache, query_begin, query_end, start_pos, num_heads, num_kv_heads, head_dim, queries_per_tile, chunk_stride, workspace, stream);
  }
  return Status::error("attention: unsupported rows per warp " + std::to_string(rows_per_warp));
}

}  // namespace

size_t attention_workspace_floats(int n, int start_pos, int num_heads, int head_dim) {
  if (n < 1 || num_heads < 1 || head_dim < 1 || start_pos < 0) return 0;
  const size_t per_query = floats_per_query(num_heads, chunk_count(start_pos + n), head_dim);
  const size_t queries = std::min<size_t>(size_t(n), std::max<size_t>(1, kWorkspaceBudgetFloats / per_query));
  return queries * per_query;
}

Status attention_cuda(float* out, const float* q, const float* k_cache, const float* v_cache, int n, int start_pos,
                      int num_heads, int num_kv_heads, int head_dim, float* workspace, size_t workspace_floats,
                      cudaStream_t stream) {
  if (n < 1 || start_pos < 0 || num_heads < 1 || num_kv_heads < 1 || head_dim < 1 || num_heads % num_kv_heads != 0) {
    return Status::error("attention: invalid shape (n " + std::to_string(n) + ", start_pos " +
                         std::to_string(start_pos) + ", heads " + std::to_string(num_heads) + "/" +
                         std::to_string(num_kv_heads) + ", head_dim " + std::to_string(head_dim) + ")");
  }
  const int group = num_heads / num_kv_heads;
  if (head_dim > kMaxHeadDim || group > kMaxTileRows) {
    return Status::error("attention: head_dim " + std::to_string(head_dim) + " (max " + std::to_string(kMaxHeadDim) +
                         ") or " + std::to_string(group) + " query heads per KV head (max " +
                         std::to_string(kMaxTileRows) + ") is not supported by the CUDA kernels");
  }
  if (out == nullptr || q == nullptr || k_cache == nullptr || v_cache == nullptr || workspace == nullptr) {
    return Status::error("attention: null buffer");
  }
  const int chunk_stride = chunk_count(start_pos + n);
  const size_t per_query = floats_per_query(num_heads, chunk_stride, head_dim);
  if (workspace_floats < per_query) {
    return Status::error("attention: workspace of " + std::to_string(workspace_floats) + " floats is below the " +
                         std::to_string(per_query) + " one query needs");
  }
  const int queries_per_pass = int(std::min<size_t>(size_t(n), workspace_floats / per_query));
  const int queries_per_tile = std::max(1, std::min(n, kMaxTileRows / group));
  const int tile_rows = queries_per_tile * group;
  int rows_per_warp = 1;
  while (rows_per_warp * kWarps < tile_rows) rows_per_warp *= 2;  // ≤ 8 since tile_rows ≤ 32

  for (int query_begin = 0; query_begin < n; query_begin += queries_per_pass) {
    const int query_end = std::min(n, query_begin + queries_per_pass);
    Status status = Status::ok();
    if (head_dim <= 32) {
      status = launch_with_dims<1>(rows_per_warp, out, q, k_cache, v_cache, query_begin, query_end, start_pos, num_heads, num_kv_heads, head_dim, queries_per_tile, chunk_stride, workspace, stream);
    } else if (head_dim <= 64) {
      status = launch_with_dims<2>(rows_per_warp, out, q, k_cache, v_cache, query_begin, query_end, start_pos, num_heads, num_kv_heads, head_dim, queries_per_tile, chunk_stride, workspace, stream);
    } else if (head_dim <= 128) {
      status = launch_with_dims<4>(rows_per_warp, out, q, k_cache, v_cache, query_begin, query_end, start_pos, num_heads, num_kv_heads, head_dim, queries_per_tile, chunk_stride, workspace, stream);
    } else {
      status = launch_with_dims<8>(rows_per_warp, out, q, k_cache, v_cache, query_begin, query_end, start_pos, num_heads, num_kv_heads, head_dim, queries_per_tile, chunk_stride, workspace, stream);
    }
    LS_RETURN_IF_ERROR(status);
  }
  return Status::ok();
}

}  // namespace layerskip
