/* OP_ATTENTION: causal attention over the KV cache, flash-attention style:
 * scores are never written out; each warp keeps a running maximum, sum and
 * weighted sum of V rows (online softmax) over the cache rows it visits.
 *
 * Grid: one block per (query head, token) pair and per split of the cache
 * rows. Within a block, warp w takes rows begin + w, begin + w + WARPS, ...;
 * the lanes split the head dimension (lane l holds dims l, l + 32, ...), so
 * K and V rows are read coalesced and a score is one warp reduction. The
 * warps then merge through shared memory. With several splits (long contexts
 * at decode, where there are few pairs) each split writes a partial result
 * and attention_combine_kernel merges them: split-KV ("flash decoding").
 *
 * Everything is F32 (the cache is F16 or F32): the op's contract and the
 * conformance bound (nmse 1e-10) leave no room for f16 tensor-core scores.
 * Rows are visible when j <= position, j < n_kv and, with a sliding window,
 * j > position - window; rows outside are never loaded, so uninitialized
 * cache memory past the current position cannot leak in. */
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

extern "C" int64_t kernel_attention_scratch_floats(const kernel_attention_args *args)
{
    if (args->n_splits <= 1)
        return 0;
    return (int64_t)args->n_splits * args->n_heads * args->n_tok * (args->head_dim + 2);
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

extern "C" cudaError_t kernel_attention(const kernel_attention_args *args, float *scratch, cudaStream_t stream)
{
    const int64_t n_pairs = args->n_heads * args->n_tok;
    if (n_pairs <= 0 || args->head_dim <= 0)
        return cudaSuccess;
    if (args->head_dim > KERNEL_ATTENTION_MAX_HEAD_DIM || args->n_kv_heads <= 0 ||
        args->n_heads % args->n_kv_heads != 0 || args->n_splits < 1 || args->n_splits > 65535 ||
        n_pairs > 0x7fffffff || (args->n_splits > 1 && !scratch))
        return cudaErrorInvalidValue;
    const int64_t n_kv = args->n_kv > 0 ? args->n_kv : 1;
    const int64_t split_rows = (n_kv + args->n_splits - 1) / args->n_splits;
    const dim3 grid((unsigned int)n_pairs, (unsigned int)args->n_splits);
    if (args->cache_dtype == KERNEL_F16)
        launch_attention<__half>(args, scratch, split_rows, grid, stream);
    else if (args->cache_dtype == KERNEL_F32)
        launch_attention<float>(args, scratch, split_rows, grid, stream);
    else
        return cudaErrorInvalidValue;
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
