/* OP_ATTENTION: causal attention over the KV cache, flash-attention style:
 * scores are never written out; a running maximum, sum and weighted sum of
 * V rows (online softmax) is kept per query over the cache rows visited.
 * Two kernels, chosen by the host (kernel_attention_args.variant):
 *
 * rows (decode): one block per (query head, token) pair and per split of
 * the cache rows. Within a block, warp w takes rows begin + w, begin + w +
 * WARPS, ...; the lanes split the head dimension (lane l holds dims l, l +
 * 32, ...), so K and V rows are read coalesced and a score is one warp
 * reduction. The warps then merge through shared memory. With several
 * splits (long contexts at decode, where there are few pairs) each split
 * writes a partial result and attention_combine_kernel merges them:
 * split-KV ("flash decoding").
 *
 * tiled (prompt processing): one block per (kv head, tile of queries), the
 * queries being the tokens x query heads that share the kv head (GQA), so
 * each K and V row is read from memory once per block instead of once per
 * query. K and V go through shared memory in tiles of rows, as F32; the
 * scores of a tile are (query, row) dot products from shared memory, the
 * softmax step is per query, and P V is accumulated with each thread owning
 * (query, dim) outputs in registers. The same split-KV partials and combine
 * serve it when there are few blocks. Head dims fall into classes (64, 96,
 * 128, 256) that size the tiles so static shared memory stays under 48 KB.
 *
 * Everything is F32 (the cache is F16 or F32): the op's contract and the
 * conformance bound (nmse 1e-10) leave no room for f16 tensor-core scores.
 * Rows are visible when j <= position, j < n_kv and, with a sliding window,
 * j > position - window. The rows kernel never loads a row outside; the
 * tiled kernel loads only rows of the union of its queries' ranges, stores
 * rows no query of the block sees as zeros, and masks each (query, row) by
 * selection, so uninitialized cache memory (even NaN) cannot leak in.
 *
 * Compiled, not run on a GPU. Static facts for sm_90 (nvcc 13.0 -O3,
 * ptxas -v; SASS by cuobjdump), registers F32 | F16 cache:
 *   rows, 2 / 4 / 8 dims per lane: 40 / 42 / 56 | 38 / 42 / 56 registers,
 *     4128 B shared, no spills.
 *   tiled, class (head_dim, queries, rows per tile): registers, shared, no spills:
 *     ( 64, 64, 32): 140 | 140, 45572 B (3 blocks per SM by registers)
 *     ( 96, 32, 32): 115 | 110, 43524 B (at least 4 blocks per SM)
 *     (128, 32, 24): 128 | 104, 45444 B (at least 4 blocks per SM)
 *     (256, 16,  8): 113 |  96, 33924 B (at least 4 blocks per SM)
 *   The score loop of class 128 is 48 FFMA + 10 LDS.128 in 69 instructions
 *   per 8 dims (class 64: 128 FFMA + 16 LDS.128 in 152); its P V step is
 *   unrolled per tile: 768 FFMA, 48 LDS.128 (P, broadcast), 96 LDS (V).
 *   K/V staging is LDG.E.128 on the vector path.
 */
#include "cuda_common.h"

#define ATTENTION_WARPS 4

template <typename T> static __device__ __forceinline__ float kv_to_float(T value);
template <> __device__ __forceinline__ float kv_to_float<float>(float value)
{
    return value;
}
template <> __device__ __forceinline__ float kv_to_float<__half>(__half value)
{
    return __half2float(value);
}

template <typename KV, int DIMS_PER_LANE>
static __global__ void attention_kernel(kernel_attention_args args, float *partials, int64_t split_rows)
{
    __shared__ float shared_max[ATTENTION_WARPS], shared_sum[ATTENTION_WARPS];
    __shared__ float shared_acc[ATTENTION_WARPS][KERNEL_ATTENTION_MAX_HEAD_DIM];
    const int lane = threadIdx.x, warp = threadIdx.y;
    const int64_t pair = blockIdx.x, split = blockIdx.y;
    const int64_t t = pair / args.n_heads, h = pair % args.n_heads;
    const int64_t kv_head = h / (args.n_heads / args.n_kv_heads);
    const int64_t hd = args.head_dim;
    const int64_t position = args.positions[t];
    const int64_t last = min(position + 1, args.n_kv);
    const int64_t first = args.sliding_window > 0 ? max((int64_t)0, position - args.sliding_window + 1) : 0;
    const int64_t begin = max(first, split * split_rows);
    const int64_t end = min(last, (split + 1) * split_rows);

    const float *q = args.q + pair * hd;
    float q_part[DIMS_PER_LANE], acc[DIMS_PER_LANE];
#pragma unroll
    for (int i = 0; i < DIMS_PER_LANE; i++) {
        const int64_t d = lane + WARP_SIZE * i;
        q_part[i] = d < hd ? q[d] : 0.0f;
        acc[i] = 0.0f;
    }
    const KV *k = (const KV *)args.k + kv_head * args.k_head_stride;
    const KV *v = (const KV *)args.v + kv_head * args.v_head_stride;
    float running_max = -INFINITY, running_sum = 0.0f;
    for (int64_t j = begin + warp; j < end; j += ATTENTION_WARPS) {
        const KV *k_row = k + j * args.k_row_stride;
        float score = 0.0f;
#pragma unroll
        for (int i = 0; i < DIMS_PER_LANE; i++) {
            const int64_t d = lane + WARP_SIZE * i;
            if (d < hd)
                score += q_part[i] * kv_to_float(k_row[d]);
        }
        score = warp_sum(score) * args.scale;
        if (args.softcap > 0.0f)
            score = args.softcap * tanhf(score / args.softcap);
        const float new_max = fmaxf(running_max, score);
        const float correction = expf(running_max - new_max); /* 0 on the first row */
        const float p = expf(score - new_max);
        running_sum = running_sum * correction + p;
        const KV *v_row = v + j * args.v_row_stride;
#pragma unroll
        for (int i = 0; i < DIMS_PER_LANE; i++) {
            const int64_t d = lane + WARP_SIZE * i;
            acc[i] = acc[i] * correction + (d < hd ? p * kv_to_float(v_row[d]) : 0.0f);
        }
        running_max = new_max;
    }

    /* merge the warps */
    if (lane == 0) {
        shared_max[warp] = running_max;
        shared_sum[warp] = running_sum;
    }
#pragma unroll
    for (int i = 0; i < DIMS_PER_LANE; i++) {
        const int64_t d = lane + WARP_SIZE * i;
        if (d < hd)
            shared_acc[warp][d] = acc[i];
    }
    __syncthreads();
    if (warp != 0)
        return;
    float block_max_score = -INFINITY;
    for (int w = 0; w < ATTENTION_WARPS; w++)
        block_max_score = fmaxf(block_max_score, shared_max[w]);
    float weights[ATTENTION_WARPS], block_sum_p = 0.0f;
    for (int w = 0; w < ATTENTION_WARPS; w++) {
        weights[w] = shared_max[w] == -INFINITY ? 0.0f : expf(shared_max[w] - block_max_score);
        block_sum_p += shared_sum[w] * weights[w];
    }
    const int64_t n_pairs = args.n_heads * args.n_tok;
    float *partial = args.n_splits > 1 ? partials + (split * n_pairs + pair) * (hd + 2) : NULL;
    for (int64_t d = lane; d < hd; d += WARP_SIZE) {
        float out = 0.0f;
        for (int w = 0; w < ATTENTION_WARPS; w++)
            out += shared_acc[w][d] * weights[w];
        if (args.n_splits == 1)
            args.dst[pair * hd + d] = block_sum_p > 0.0f ? out / block_sum_p : 0.0f;
        else
            partial[2 + d] = out;
    }
    if (args.n_splits > 1 && lane == 0) {
        partial[0] = block_max_score;
        partial[1] = block_sum_p;
    }
}

/* Merges the n_splits partials (max, sum, weighted values) of every pair. */
static __global__ void attention_combine_kernel(float *dst, const float *partials, int64_t n_pairs, int64_t hd,
                                                int n_splits)
{
    const int64_t pair = blockIdx.x;
    float max_score = -INFINITY;
    for (int s = 0; s < n_splits; s++)
        max_score = fmaxf(max_score, partials[(s * n_pairs + pair) * (hd + 2)]);
    float total = 0.0f;
    for (int s = 0; s < n_splits; s++) {
        const float *partial = partials + (s * n_pairs + pair) * (hd + 2);
        if (partial[0] != -INFINITY)
            total += partial[1] * expf(partial[0] - max_score);
    }
    for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
        float out = 0.0f;
        for (int s = 0; s < n_splits; s++) {
            const float *partial = partials + (s * n_pairs + pair) * (hd + 2);
            if (partial[0] != -INFINITY)
                out += partial[2 + d] * expf(partial[0] - max_score);
        }
        dst[pair * hd + d] = total > 0.0f ? out / total : 0.0f;
    }
}

/* --- tiled: many query tokens (prompt processing) --------------------------------------------------------- */

#define TILED_THREADS 128
#define TILED_WARPS (TILED_THREADS / WARP_SIZE)
#define TILED_ROW_LANES 8                                    /* score phase: lanes sharing a query */
#define TILED_QUERY_SLOTS (TILED_THREADS / TILED_ROW_LANES) /* score phase: queries handled at once */
#define TILED_PAD 4 /* floats after each Q and K row in shared memory, so that rows start 4 banks apart */
#define TILED_NO_QUERY INT32_MIN /* the position of a query slot past the last query: sees no row */

/* A register cap for `blocks` resident blocks per SM; nvcc only (the CPU
 * emulation of the tests has no registers to cap). */
#ifdef __CUDACC__
#define TILED_LAUNCH_BOUNDS(blocks) __launch_bounds__(TILED_THREADS, blocks)
#else
#define TILED_LAUNCH_BOUNDS(blocks)
#endif

/* A head-dim class of the tiled kernel: its largest head_dim, the queries of
 * a block and the cache rows of a shared-memory tile, sized so the static
 * shared memory stays under 48 KB (Q and K rows padded, V, P):
 * 4 * (query_tile * (head_dim + 4) + row_tile * (2 * head_dim + 4) +
 * query_tile * tiled_p_row(row_tile)) bytes, plus a few per-query floats. */
struct tiled_class {
    int head_dim;
    int query_tile;
    int row_tile;
    int min_blocks; /* resident blocks per SM ptxas must allow (a register cap of 65536 / (128 * min_blocks)) */
};
/* min_blocks 4 caps registers at 128, which every class but 64 meets
 * without spills; class 64 (a 4 x 4 score tile per thread) would spill. */
static constexpr tiled_class tiled_classes[] = {
    {64, 64, 32, 3}, {96, 32, 32, 4}, {128, 32, 24, 4}, {256, 16, 8, 4}};
static constexpr int tiled_class_count = (int)(sizeof tiled_classes / sizeof tiled_classes[0]);

/* Floats per query row of P: at least row_tile, a multiple of 4 (float4
 * reads), and 8 mod 16, so the 4 query rows a warp writes at once start 8
 * banks apart and its 8 row lanes fill the 32 banks without conflict. */
static __host__ __device__ constexpr int tiled_p_row(int row_tile)
{
    return row_tile / 16 * 16 + 8;
}

/* The index of the smallest class that holds head_dim, -1 if none. */
static int tiled_class_of(int64_t head_dim)
{
    for (int c = 0; c < tiled_class_count; c++)
        if (head_dim <= tiled_classes[c].head_dim)
            return c;
    return -1;
}

static __device__ __forceinline__ bool row_visible(int64_t row, int64_t position, int32_t window)
{
    return row <= position && (window <= 0 || row > position - window);
}

/* Whether any query of the block sees row: with a sliding window and
 * scattered positions, the range a block scans (the union of its queries'
 * ranges, from the earliest first row to the largest position) has holes. */
static __device__ bool row_seen_by_block(int64_t row, const int *query_position, int query_tile, int32_t window)
{
    for (int q = 0; q < query_tile; q++)
        if (row_visible(row, query_position[q], window))
            return true;
    return false;
}

static __device__ __forceinline__ float float4_at(const float4 &v, int i)
{
    return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

/* The 16 bytes of raw as F32 values: 4 floats or 8 halves. */
template <typename KV> static __device__ __forceinline__ void chunk_to_floats(const uint4 &raw, float *out);
template <> __device__ __forceinline__ void chunk_to_floats<float>(const uint4 &raw, float *out)
{
    out[0] = __uint_as_float(raw.x);
    out[1] = __uint_as_float(raw.y);
    out[2] = __uint_as_float(raw.z);
    out[3] = __uint_as_float(raw.w);
}
template <> __device__ __forceinline__ void chunk_to_floats<__half>(const uint4 &raw, float *out)
{
    const unsigned int words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        out[2 * i] = __half2float(__ushort_as_half((unsigned short)(words[i] & 0xffffu)));
        out[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(words[i] >> 16)));
    }
}

/* The cache rows a block (and its split) scans. */
struct tiled_rows {
    int64_t begin, end; /* rows scanned: [begin, end) */
    bool covered;       /* every row of the range is seen by some query of the block */
};

/* The rows the block scans: from the earliest first row of its queries to
 * their largest position, cut to n_kv and to the split. Every thread
 * computes it from the positions in shared memory (a few dozen reads, once
 * per block), so no extra synchronization is needed. */
static __device__ tiled_rows tiled_row_range(const kernel_attention_args &args, const int *query_position,
                                             int query_tile, int64_t split, int64_t split_rows, bool covered)
{
    int64_t first = INT64_MAX, last = -1;
    for (int q = 0; q < query_tile; q++) {
        const int64_t position = query_position[q];
        if (position == TILED_NO_QUERY)
            continue;
        last = max(last, position);
        first = min(first, args.sliding_window > 0 ? max((int64_t)0, position - args.sliding_window + 1) : (int64_t)0);
    }
    tiled_rows rows;
    rows.begin = max(first, split * split_rows);
    rows.end = min(min(last + 1, args.n_kv), (split + 1) * split_rows);
    rows.covered = covered;
    return rows;
}

/* With a sliding window, the union of the windows (position - window,
 * position] is one interval when each query but the last has another query
 * at most `window` positions after it. Threads 0 .. query_tile - 1 check
 * their query and clear *covered otherwise; the caller synchronizes. */
static __device__ void tiled_check_covered(const int *query_position, int query_tile, int32_t window, int *covered)
{
    const int q = threadIdx.x;
    if (window <= 0 || q >= query_tile || query_position[q] == TILED_NO_QUERY)
        return;
    const int64_t position = query_position[q];
    bool has_successor = false, is_last = true;
    for (int other = 0; other < query_tile; other++) {
        const int64_t next = query_position[other];
        if (next == TILED_NO_QUERY || next <= position)
            continue;
        is_last = false;
        has_successor = has_successor || next - position <= window;
    }
    if (!is_last && !has_successor)
        *covered = 0;
}

/* Queries q = 0 .. Q_TILE - 1 of the block (flat index first_query + q over
 * tokens x heads of the group) into q_rows, multiplied by the scale, zero
 * past head_dim up to hd4 and for slots past the last query; their
 * positions into query_position. */
template <int D, int Q_TILE>
static __device__ void tiled_load_queries(const kernel_attention_args &args, float *q_rows, int *query_position,
                                          int64_t first_query, int64_t kv_head, int hd4)
{
    constexpr int ROW = D + TILED_PAD;
    const int64_t group = args.n_heads / args.n_kv_heads, n_queries = args.n_tok * group;
    if (threadIdx.x < Q_TILE) {
        const int64_t query = first_query + threadIdx.x;
        query_position[threadIdx.x] = query < n_queries ? args.positions[query / group] : TILED_NO_QUERY;
    }
    for (int i = threadIdx.x; i < Q_TILE * hd4; i += TILED_THREADS) {
        const int q = i / hd4, d = i % hd4;
        const int64_t query = first_query + q;
        float value = 0.0f;
        if (query < n_queries && d < args.head_dim) {
            const int64_t pair = query / group * args.n_heads + kv_head * group + query % group;
            value = args.q[pair * args.head_dim + d] * args.scale;
        }
        q_rows[q * ROW + d] = value;
    }
}

/* Cache rows row0 .. row0 + KV_TILE - 1 of K and V into k_rows (stride
 * D + TILED_PAD) and v_rows (stride D) as F32. A row at or past rows.end,
 * or one no query of the block sees, is stored as zeros and never read: it
 * may be uninitialized memory (NaN), and a zero V row keeps p * v exact for
 * the queries that mask it. With vector_loads (16-byte aligned rows whose
 * bytes are a multiple of 16) each thread moves 16-byte chunks, all of its
 * loads issued before any store; otherwise one element at a time. */
template <typename KV, int D, int Q_TILE, int KV_TILE>
static __device__ void tiled_stage_rows(const kernel_attention_args &args, const KV *k, const KV *v, int64_t row0,
                                        const tiled_rows &rows, const int *query_position, bool vector_loads,
                                        int hd4, float *k_rows, float *v_rows)
{
    constexpr int K_ROW = D + TILED_PAD;
    const int hd = (int)args.head_dim;
    if (vector_loads) {
        constexpr int CHUNK = 16 / (int)sizeof(KV);                     /* elements per 16 bytes */
        constexpr int MAX_ITEMS = (KV_TILE * D / CHUNK + TILED_THREADS - 1) / TILED_THREADS;
        const int chunks_per_row = hd / CHUNK, n_items = KV_TILE * chunks_per_row;
        uint4 k_raw[MAX_ITEMS], v_raw[MAX_ITEMS];
#pragma unroll
        for (int i = 0; i < MAX_ITEMS; i++) {
            const int item = threadIdx.x + i * TILED_THREADS;
            const int r = item / chunks_per_row, c = item % chunks_per_row;
            const int64_t row = row0 + r;
            const bool keep = item < n_items && row < rows.end &&
                              (rows.covered || row_seen_by_block(row, query_position, Q_TILE, args.sliding_window));
            k_raw[i] = v_raw[i] = uint4{0u, 0u, 0u, 0u};
            if (keep) {
                k_raw[i] = *(const uint4 *)(k + row * args.k_row_stride + c * CHUNK);
                v_raw[i] = *(const uint4 *)(v + row * args.v_row_stride + c * CHUNK);
            }
        }
#pragma unroll
        for (int i = 0; i < MAX_ITEMS; i++) {
            const int item = threadIdx.x + i * TILED_THREADS;
            if (item >= n_items)
                continue;
            const int r = item / chunks_per_row, c = item % chunks_per_row;
            float k_values[CHUNK], v_values[CHUNK];
            chunk_to_floats<KV>(k_raw[i], k_values);
            chunk_to_floats<KV>(v_raw[i], v_values);
#pragma unroll
            for (int e = 0; e < CHUNK; e += 4) {
                *(float4 *)&k_rows[r * K_ROW + c * CHUNK + e] =
                    make_float4(k_values[e], k_values[e + 1], k_values[e + 2], k_values[e + 3]);
                *(float4 *)&v_rows[r * D + c * CHUNK + e] =
                    make_float4(v_values[e], v_values[e + 1], v_values[e + 2], v_values[e + 3]);
            }
        }
        return;
    }
    for (int i = threadIdx.x; i < KV_TILE * hd4; i += TILED_THREADS) {
        const int r = i / hd4, d = i % hd4;
        const int64_t row = row0 + r;
        const bool keep = d < hd && row < rows.end &&
                          (rows.covered || row_seen_by_block(row, query_position, Q_TILE, args.sliding_window));
        k_rows[r * K_ROW + d] = keep ? kv_to_float(k[row * args.k_row_stride + d]) : 0.0f;
        if (d < hd)
            v_rows[r * D + d] = keep ? kv_to_float(v[row * args.v_row_stride + d]) : 0.0f;
    }
}

/* Scores of the tile and the online-softmax step. Thread (slot, lane_row)
 * = (tid / 8, tid % 8) computes queries slot + 16 a and rows lane_row + 8 b
 * from shared memory (float4 along the head dim; no shuffles), masks them
 * per (query, row) by selecting -inf, and the 8 lanes of a query agree on
 * its new maximum with three shuffles. They store p = exp(score - max) (0
 * where masked, by selection) into p_rows and the factor that rescales the
 * query's earlier sums into correction, and keep the running maximum and
 * their share of the running sum in registers. */
template <int D, int Q_TILE, int KV_TILE>
static __device__ void tiled_scores(const kernel_attention_args &args, const float *q_rows, const float *k_rows,
                                    const int *query_position, int64_t row0, int64_t rows_end, int hd4, float *p_rows,
                                    float *correction, float (&running_max)[Q_TILE / TILED_QUERY_SLOTS],
                                    float (&partial_sum)[Q_TILE / TILED_QUERY_SLOTS])
{
    constexpr int ROW = D + TILED_PAD, P_ROW = tiled_p_row(KV_TILE);
    constexpr int SQ = Q_TILE / TILED_QUERY_SLOTS, SR = KV_TILE / TILED_ROW_LANES;
    const int slot = threadIdx.x / TILED_ROW_LANES, lane_row = threadIdx.x % TILED_ROW_LANES;
    float score[SQ][SR];
#pragma unroll
    for (int a = 0; a < SQ; a++)
#pragma unroll
        for (int b = 0; b < SR; b++)
            score[a][b] = 0.0f;
#pragma unroll 2
    for (int d = 0; d < hd4; d += 4) {
        float4 qv[SQ], kv[SR];
#pragma unroll
        for (int a = 0; a < SQ; a++)
            qv[a] = *(const float4 *)&q_rows[(slot + TILED_QUERY_SLOTS * a) * ROW + d];
#pragma unroll
        for (int b = 0; b < SR; b++)
            kv[b] = *(const float4 *)&k_rows[(lane_row + TILED_ROW_LANES * b) * ROW + d];
#pragma unroll
        for (int a = 0; a < SQ; a++)
#pragma unroll
            for (int b = 0; b < SR; b++) {
                float s = score[a][b];
                s = fmaf(qv[a].x, kv[b].x, s);
                s = fmaf(qv[a].y, kv[b].y, s);
                s = fmaf(qv[a].z, kv[b].z, s);
                score[a][b] = fmaf(qv[a].w, kv[b].w, s);
            }
    }
#pragma unroll
    for (int a = 0; a < SQ; a++) {
        const int q = slot + TILED_QUERY_SLOTS * a;
        const int64_t position = query_position[q];
        float tile_max = -INFINITY;
#pragma unroll
        for (int b = 0; b < SR; b++) {
            const int64_t row = row0 + lane_row + TILED_ROW_LANES * b;
            float s = score[a][b];
            if (args.softcap > 0.0f)
                s = args.softcap * tanhf(s / args.softcap);
            s = row < rows_end && row_visible(row, position, args.sliding_window) ? s : -INFINITY;
            score[a][b] = s;
            tile_max = fmaxf(tile_max, s);
        }
        for (int offset = TILED_ROW_LANES / 2; offset > 0; offset >>= 1)
            tile_max = fmaxf(tile_max, __shfl_xor_sync(FULL_MASK, tile_max, offset));
        const float new_max = fmaxf(running_max[a], tile_max);
        /* exp(-inf) = 0 rescales nothing seen yet; while nothing is seen the max stays -inf */
        const float factor = new_max == -INFINITY ? 1.0f : expf(running_max[a] - new_max);
        float sum = 0.0f;
#pragma unroll
        for (int b = 0; b < SR; b++) {
            const float p = score[a][b] == -INFINITY ? 0.0f : expf(score[a][b] - new_max);
            p_rows[q * P_ROW + lane_row + TILED_ROW_LANES * b] = p;
            sum += p;
        }
        partial_sum[a] = partial_sum[a] * factor + sum;
        running_max[a] = new_max;
        if (lane_row == 0)
            correction[q] = factor;
    }
}

/* acc = acc * correction + P V for this thread's outputs: warp w owns
 * queries w + 4 i, lane l dims l + 32 j. P is read as float4 (a broadcast:
 * the whole warp reads one query), V as one float per lane (consecutive
 * lanes, consecutive banks). Dims past head_dim are skipped per warp. */
template <int D, int Q_TILE, int KV_TILE>
static __device__ void tiled_accumulate(const float *p_rows, const float *v_rows, const float *correction, int hd,
                                        float (&acc)[Q_TILE / TILED_WARPS][D / WARP_SIZE])
{
    constexpr int P_ROW = tiled_p_row(KV_TILE), OQ = Q_TILE / TILED_WARPS, OD = D / WARP_SIZE;
    const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
#pragma unroll
    for (int i = 0; i < OQ; i++) {
        const float factor = correction[warp + TILED_WARPS * i];
#pragma unroll
        for (int j = 0; j < OD; j++)
            acc[i][j] *= factor;
    }
#pragma unroll
    for (int r = 0; r < KV_TILE; r += 4) {
        float4 p[OQ];
#pragma unroll
        for (int i = 0; i < OQ; i++)
            p[i] = *(const float4 *)&p_rows[(warp + TILED_WARPS * i) * P_ROW + r];
#pragma unroll
        for (int u = 0; u < 4; u++) {
#pragma unroll
            for (int j = 0; j < OD; j++) {
                if (WARP_SIZE * j >= hd)
                    continue;
                const float value = v_rows[(r + u) * D + lane + WARP_SIZE * j];
#pragma unroll
                for (int i = 0; i < OQ; i++)
                    acc[i][j] = fmaf(float4_at(p[i], u), value, acc[i][j]);
            }
        }
    }
}

/* Grid: x = tiles of Q_TILE queries of one kv head's group (tokens x the
 * n_heads / n_kv_heads query heads sharing it, token-major), heaviest tile
 * first; y = kv head; z = split of the cache rows. TILED_THREADS threads. */
template <typename KV, int D, int Q_TILE, int KV_TILE, int MIN_BLOCKS>
static __global__ void TILED_LAUNCH_BOUNDS(MIN_BLOCKS)
    attention_tiled_kernel(kernel_attention_args args, float *partials, int64_t split_rows, bool vector_loads)
{
    static_assert(Q_TILE % TILED_QUERY_SLOTS == 0 && Q_TILE % TILED_WARPS == 0, "queries per block");
    static_assert(KV_TILE % TILED_ROW_LANES == 0 && KV_TILE % 4 == 0 && D % WARP_SIZE == 0, "tile shape");
    static_assert(tiled_p_row(KV_TILE) >= KV_TILE, "a row of P holds the tile's rows");
    constexpr int ROW = D + TILED_PAD, P_ROW = tiled_p_row(KV_TILE);
    constexpr int SQ = Q_TILE / TILED_QUERY_SLOTS, OQ = Q_TILE / TILED_WARPS, OD = D / WARP_SIZE;
    /* float4 arrays: 16-byte aligned for the vector accesses */
    __shared__ float4 q_storage[Q_TILE * ROW / 4];
    __shared__ float4 k_storage[KV_TILE * ROW / 4];
    __shared__ float4 v_storage[KV_TILE * D / 4];
    __shared__ float4 p_storage[Q_TILE * P_ROW / 4];
    __shared__ float correction[Q_TILE], query_max[Q_TILE], query_sum[Q_TILE];
    __shared__ int query_position[Q_TILE];
    __shared__ int rows_covered;
    float *q_rows = (float *)q_storage, *k_rows = (float *)k_storage, *v_rows = (float *)v_storage;
    float *p_rows = (float *)p_storage;

    const int64_t tile = (int64_t)gridDim.x - 1 - blockIdx.x, kv_head = blockIdx.y, split = blockIdx.z;
    const int64_t group = args.n_heads / args.n_kv_heads, first_query = tile * Q_TILE;
    const int hd = (int)args.head_dim, hd4 = (hd + 3) / 4 * 4;
    tiled_load_queries<D, Q_TILE>(args, q_rows, query_position, first_query, kv_head, hd4);
    if (threadIdx.x == 0)
        rows_covered = 1;
    __syncthreads();
    tiled_check_covered(query_position, Q_TILE, args.sliding_window, &rows_covered);
    __syncthreads();
    const tiled_rows rows = tiled_row_range(args, query_position, Q_TILE, split, split_rows, rows_covered != 0);

    const KV *k = (const KV *)args.k + kv_head * args.k_head_stride;
    const KV *v = (const KV *)args.v + kv_head * args.v_head_stride;
    float running_max[SQ], partial_sum[SQ], acc[OQ][OD];
#pragma unroll
    for (int a = 0; a < SQ; a++) {
        running_max[a] = -INFINITY;
        partial_sum[a] = 0.0f;
    }
#pragma unroll
    for (int i = 0; i < OQ; i++)
#pragma unroll
        for (int j = 0; j < OD; j++)
            acc[i][j] = 0.0f;
    for (int64_t row0 = rows.begin; row0 < rows.end; row0 += KV_TILE) {
        tiled_stage_rows<KV, D, Q_TILE, KV_TILE>(args, k, v, row0, rows, query_position, vector_loads, hd4, k_rows,
                                                 v_rows);
        __syncthreads();
        tiled_scores<D, Q_TILE, KV_TILE>(args, q_rows, k_rows, query_position, row0, rows.end, hd4, p_rows,
                                         correction, running_max, partial_sum);
        __syncthreads();
        tiled_accumulate<D, Q_TILE, KV_TILE>(p_rows, v_rows, correction, hd, acc);
        __syncthreads(); /* before the next tile overwrites K, V, P and the corrections */
    }

    /* each query's sum from its 8 lanes' shares */
    const int slot = threadIdx.x / TILED_ROW_LANES, lane_row = threadIdx.x % TILED_ROW_LANES;
#pragma unroll
    for (int a = 0; a < SQ; a++) {
        float sum = partial_sum[a];
        for (int offset = TILED_ROW_LANES / 2; offset > 0; offset >>= 1)
            sum += __shfl_xor_sync(FULL_MASK, sum, offset);
        if (lane_row == 0) {
            query_sum[slot + TILED_QUERY_SLOTS * a] = sum;
            query_max[slot + TILED_QUERY_SLOTS * a] = running_max[a];
        }
    }
    __syncthreads();

    const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
    const int64_t n_queries = args.n_tok * group, n_pairs = args.n_heads * args.n_tok;
#pragma unroll
    for (int i = 0; i < OQ; i++) {
        const int q = warp + TILED_WARPS * i;
        const int64_t query = first_query + q;
        if (query >= n_queries)
            continue;
        const int64_t pair = query / group * args.n_heads + kv_head * group + query % group;
        const float sum = query_sum[q];
        float *partial = args.n_splits > 1 ? partials + (split * n_pairs + pair) * (args.head_dim + 2) : NULL;
#pragma unroll
        for (int j = 0; j < OD; j++) {
            const int d = lane + WARP_SIZE * j;
            if (d >= hd)
                continue;
            if (args.n_splits == 1)
                args.dst[pair * args.head_dim + d] = sum > 0.0f ? acc[i][j] / sum : 0.0f;
            else
                partial[2 + d] = acc[i][j];
        }
        if (args.n_splits > 1 && lane == 0) {
            partial[0] = query_max[q];
            partial[1] = sum;
        }
    }
}

extern "C" int64_t kernel_attention_scratch_floats(const kernel_attention_args *args)
{
    if (args->n_splits <= 1)
        return 0;
    return (int64_t)args->n_splits * args->n_heads * args->n_tok * (args->head_dim + 2);
}

extern "C" int64_t kernel_attention_blocks(const kernel_attention_args *args)
{
    if (args->n_kv_heads <= 0 || args->n_heads % args->n_kv_heads != 0)
        return 0;
    if (args->variant != KERNEL_ATTENTION_TILED)
        return args->n_heads * args->n_tok;
    const int c = tiled_class_of(args->head_dim);
    if (c < 0)
        return 0;
    const int64_t n_queries = args->n_tok * (args->n_heads / args->n_kv_heads);
    return (n_queries + tiled_classes[c].query_tile - 1) / tiled_classes[c].query_tile * args->n_kv_heads;
}

template <typename KV>
static void launch_attention(const kernel_attention_args *args, float *partials, int64_t split_rows, dim3 grid,
                             cudaStream_t stream)
{
    const dim3 block(WARP_SIZE, ATTENTION_WARPS);
    if (args->head_dim <= 64)
        attention_kernel<KV, 2><<<grid, block, 0, stream>>>(*args, partials, split_rows);
    else if (args->head_dim <= 128)
        attention_kernel<KV, 4><<<grid, block, 0, stream>>>(*args, partials, split_rows);
    else
        attention_kernel<KV, 8><<<grid, block, 0, stream>>>(*args, partials, split_rows);
}

/* 16-byte loads of K and V need every row start 16-byte aligned and rows a
 * whole number of 16-byte chunks. */
static bool tiled_vector_loads(const kernel_attention_args *args)
{
    const int64_t element_bytes = args->cache_dtype == KERNEL_F16 ? 2 : 4;
    return (uintptr_t)args->k % 16 == 0 && (uintptr_t)args->v % 16 == 0 && args->head_dim * element_bytes % 16 == 0 &&
           args->k_head_stride * element_bytes % 16 == 0 && args->k_row_stride * element_bytes % 16 == 0 &&
           args->v_head_stride * element_bytes % 16 == 0 && args->v_row_stride * element_bytes % 16 == 0;
}

template <typename KV, int C>
static void launch_tiled_class(const kernel_attention_args *args, float *partials, int64_t split_rows,
                               cudaStream_t stream)
{
    constexpr tiled_class shape = tiled_classes[C];
    const int64_t n_queries = args->n_tok * (args->n_heads / args->n_kv_heads);
    const dim3 grid((unsigned int)((n_queries + shape.query_tile - 1) / shape.query_tile),
                    (unsigned int)args->n_kv_heads, (unsigned int)args->n_splits);
    auto *kernel = attention_tiled_kernel<KV, shape.head_dim, shape.query_tile, shape.row_tile, shape.min_blocks>;
    kernel<<<grid, TILED_THREADS, 0, stream>>>(*args, partials, split_rows, tiled_vector_loads(args));
}

template <typename KV>
static void launch_tiled(const kernel_attention_args *args, float *partials, int64_t split_rows, cudaStream_t stream)
{
    switch (tiled_class_of(args->head_dim)) {
    case 0: launch_tiled_class<KV, 0>(args, partials, split_rows, stream); break;
    case 1: launch_tiled_class<KV, 1>(args, partials, split_rows, stream); break;
    case 2: launch_tiled_class<KV, 2>(args, partials, split_rows, stream); break;
    default: launch_tiled_class<KV, 3>(args, partials, split_rows, stream); break;
    }
}
static_assert(tiled_class_count == 4 && tiled_classes[3].head_dim == KERNEL_ATTENTION_MAX_HEAD_DIM,
              "launch_tiled has a case per class; the last holds every head_dim");

extern "C" cudaError_t kernel_attention(const kernel_attention_args *args, float *scratch, cudaStream_t stream)
{
    const int64_t n_pairs = args->n_heads * args->n_tok;
    if (n_pairs <= 0 || args->head_dim <= 0)
        return cudaSuccess;
    if (args->head_dim > KERNEL_ATTENTION_MAX_HEAD_DIM || args->n_kv_heads <= 0 ||
        args->n_heads % args->n_kv_heads != 0 || args->n_splits < 1 || args->n_splits > 65535 ||
        n_pairs > 0x7fffffff || (args->n_splits > 1 && !scratch) ||
        (args->variant != KERNEL_ATTENTION_ROWS && args->variant != KERNEL_ATTENTION_TILED) ||
        (args->variant == KERNEL_ATTENTION_TILED && args->n_kv_heads > 65535))
        return cudaErrorInvalidValue;
    if (args->cache_dtype != KERNEL_F16 && args->cache_dtype != KERNEL_F32)
        return cudaErrorInvalidValue;
    const int64_t n_kv = args->n_kv > 0 ? args->n_kv : 1;
    const int64_t split_rows = (n_kv + args->n_splits - 1) / args->n_splits;
    const bool f16 = args->cache_dtype == KERNEL_F16;
    if (args->variant == KERNEL_ATTENTION_TILED) {
        if (f16)
            launch_tiled<__half>(args, scratch, split_rows, stream);
        else
            launch_tiled<float>(args, scratch, split_rows, stream);
    } else {
        const dim3 grid((unsigned int)n_pairs, (unsigned int)args->n_splits);
        if (f16)
            launch_attention<__half>(args, scratch, split_rows, grid, stream);
        else
            launch_attention<float>(args, scratch, split_rows, grid, stream);
    }
    cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess || args->n_splits == 1)
        return status;
    attention_combine_kernel<<<(unsigned int)n_pairs, 128, 0, stream>>>(args->dst, scratch, n_pairs, args->head_dim,
                                                                        args->n_splits);
    return cudaGetLastError();
}

static __global__ void probe_kernel(void)
{
}

extern "C" cudaError_t kernel_probe(void)
{
    probe_kernel<<<1, 1>>>();
    cudaError_t status = cudaGetLastError();
    if (status == cudaSuccess)
        status = cudaDeviceSynchronize();
    return status;
}
