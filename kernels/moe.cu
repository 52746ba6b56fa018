/* The mixture-of-experts ops besides the expert matmul itself (matvec.cu):
 * the router's top-k (OP_TOPK), the chosen experts' weights
 * (OP_MOE_WEIGHTS), the weighted sum (OP_MOE_SUM), and the two steps that
 * prepare OP_MATMUL_ID: grouping the (slot, token) pairs by expert and
 * gathering their input columns in that order.
 *
 * The grouping runs on the device so that a step can be captured as a CUDA
 * graph: the host never learns how many tokens chose an expert. The
 * matmul's grid therefore covers the most chunks any routing can make and
 * the chunks past the real ones are empty. */
#include "cuda_common.h"

#define MOE_THREADS 256
#define MOE_GROUP_THREADS 256

/* --- top-k ------------------------------------------------------------------------------- */

/* One thread per column: insertion into ids, kept in decreasing order; an
 * equal value goes after those already there, so the lower index comes
 * first. Exactly the CPU backend's comparisons, so ties and NaNs agree. */
static __global__ void topk_kernel(int32_t *ids, const float *x, int64_t n_expert, int64_t k, int64_t n_tok)
{
    for (int64_t t = GRID_INDEX(); t < n_tok; t += GRID_STRIDE()) {
        const float *column = x + t * n_expert;
        int32_t *top = ids + t * k;
        int64_t filled = 0;
        for (int64_t i = 0; i < n_expert; i++) {
            const float v = column[i];
            int64_t at = filled;
            while (at > 0 && v > column[top[at - 1]])
                at--;
            if (at >= k)
                continue;
            const int64_t last = filled < k ? filled : k - 1;
            for (int64_t m = last; m > at; m--)
                top[m] = top[m - 1];
            top[at] = (int32_t)i;
            if (filled < k)
                filled++;
        }
    }
}

extern "C" cudaError_t kernel_topk(int32_t *ids, const float *x, int64_t n_expert, int64_t k, int64_t n_tok,
                                   cudaStream_t stream)
{
    if (n_tok <= 0)
        return cudaSuccess;
    if (k < 1 || k > n_expert)
        return cudaErrorInvalidValue;
    topk_kernel<<<grid_blocks(n_tok, MOE_THREADS), MOE_THREADS, 0, stream>>>(ids, x, n_expert, k, n_tok);
    return cudaGetLastError();
}

/* --- the chosen experts' weights ----------------------------------------------------------- */

static __global__ void moe_weights_kernel(float *dst, const float *probs, const int32_t *ids, int64_t n_expert,
                                          int64_t k, int64_t n_tok, bool normalize, unsigned int *error_flags)
{
    for (int64_t t = GRID_INDEX(); t < n_tok; t += GRID_STRIDE()) {
        float sum = 0.0f;
        for (int64_t j = 0; j < k; j++) {
            const int32_t id = ids[t * k + j];
            float p = 0.0f;
            if (id >= 0 && id < n_expert)
                p = probs[t * n_expert + id];
            else
                atomicOr(error_flags, KERNEL_ERROR_EXPERT_ID);
            dst[t * k + j] = p;
            sum += p;
        }
        if (normalize)
            for (int64_t j = 0; j < k; j++)
                dst[t * k + j] /= sum;
    }
}

extern "C" cudaError_t kernel_moe_weights(float *dst, const float *probs, const int32_t *ids, int64_t n_expert,
                                          int64_t k, int64_t n_tok, bool normalize, unsigned int *error_flags,
                                          cudaStream_t stream)
{
    if (n_tok <= 0)
        return cudaSuccess;
    moe_weights_kernel<<<grid_blocks(n_tok, MOE_THREADS), MOE_THREADS, 0, stream>>>(dst, probs, ids, n_expert, k,
                                                                                   n_tok, normalize, error_flags);
    return cudaGetLastError();
}

/* --- the weighted sum ------------------------------------------------------------------------ */

static __global__ void moe_sum_kernel(float *dst, const float *y, const float *weights, int64_t n, int64_t k,
                                      int64_t n_tok, bool sigmoid)
{
    for (int64_t e = GRID_INDEX(); e < n * n_tok; e += GRID_STRIDE()) {
        const int64_t t = e / n, i = e % n;
        float acc = 0.0f;
        for (int64_t j = 0; j < k; j++) { /* in slot order, as the contract says */
            const float w = weights[t * k + j];
            acc += (sigmoid ? 1.0f / (1.0f + expf(-w)) : w) * y[(t * k + j) * n + i];
        }
        dst[e] = acc;
    }
}

extern "C" cudaError_t kernel_moe_sum(float *dst, const float *y, const float *weights, int64_t n, int64_t k,
                                      int64_t n_tok, bool sigmoid, cudaStream_t stream)
{
    if (n <= 0 || n_tok <= 0)
        return cudaSuccess;
    moe_sum_kernel<<<grid_blocks(n * n_tok, MOE_THREADS), MOE_THREADS, 0, stream>>>(dst, y, weights, n, k, n_tok, sigmoid);
    return cudaGetLastError();
}

/* --- grouping the pairs of OP_MATMUL_ID by expert ------------------------------------------------- */

/* One block. Each thread owns experts e = tid, tid + blockDim, ...: it counts
 * the pairs that chose e, then (after one thread has turned the counts into
 * offsets) writes those pairs, in pair order, at e's place in sorted and
 * cuts them into chunks. Every thread reads all the ids twice: n_pairs is
 * k times the tokens of one step, a few thousand at most, and the reads of
 * a warp are of the same id (a broadcast). */
static __global__ void moe_group_kernel(int32_t *sorted, kernel_expert_chunk *chunks, const int32_t *ids,
                                        int n_pairs, int n_expert, int width, unsigned int *error_flags)
{
    __shared__ int count[KERNEL_MOE_MAX_EXPERTS];
    __shared__ int pair_start[KERNEL_MOE_MAX_EXPERTS];
    __shared__ int chunk_start[KERNEL_MOE_MAX_EXPERTS];
    __shared__ int totals[2]; /* pairs placed, chunks made */
    for (int e = threadIdx.x; e < n_expert; e += blockDim.x) {
        int c = 0;
        for (int i = 0; i < n_pairs; i++)
            c += ids[i] == e;
        count[e] = c;
    }
    for (int i = threadIdx.x; i < n_pairs; i += blockDim.x)
        if (ids[i] < 0 || ids[i] >= n_expert)
            atomicOr(error_flags, KERNEL_ERROR_EXPERT_ID);
    __syncthreads();
    if (threadIdx.x == 0) {
        int pairs = 0, pieces = 0;
        for (int e = 0; e < n_expert; e++) {
            pair_start[e] = pairs;
            chunk_start[e] = pieces;
            pairs += count[e];
            pieces += (count[e] + width - 1) / width;
        }
        totals[0] = pairs;
        totals[1] = pieces;
    }
    __syncthreads();
    for (int e = threadIdx.x; e < n_expert; e += blockDim.x) {
        const int first = pair_start[e], end = first + count[e];
        int placed = first;
        for (int i = 0; i < n_pairs && placed < end; i++)
            if (ids[i] == e)
                sorted[placed++] = i;
        for (int c = 0; c * width < count[e]; c++) {
            const int left = count[e] - c * width;
            kernel_expert_chunk chunk = {e, first + c * width, left < width ? left : width, 0};
            chunks[chunk_start[e] + c] = chunk;
        }
    }
    for (int p = totals[0] + threadIdx.x; p < n_pairs; p += blockDim.x)
        sorted[p] = -1;
    for (int c = totals[1] + threadIdx.x; c < n_pairs; c += blockDim.x) {
        kernel_expert_chunk empty = {0, 0, 0, 0};
        chunks[c] = empty;
    }
}

extern "C" cudaError_t kernel_moe_group(int32_t *sorted, kernel_expert_chunk *chunks, const int32_t *ids,
                                        int64_t n_pairs, int64_t n_expert, int width, unsigned int *error_flags,
                                        cudaStream_t stream)
{
    if (n_pairs <= 0)
        return cudaSuccess;
    if (n_pairs > 0x7fffffff || n_expert < 1 || n_expert > KERNEL_MOE_MAX_EXPERTS || width < 1)
        return cudaErrorInvalidValue;
    moe_group_kernel<<<1, MOE_GROUP_THREADS, 0, stream>>>(sorted, chunks, ids, (int)n_pairs, (int)n_expert, width,
                                                          error_flags);
    return cudaGetLastError();
}

static __global__ void moe_gather_kernel(float *x_sorted, const float *x, const int32_t *sorted, int64_t n_in,
                                         int64_t k, int64_t k_x, int64_t n_pairs, int64_t n_columns)
{
    for (int64_t e = GRID_INDEX(); e < n_in * n_columns; e += GRID_STRIDE()) {
        const int64_t p = e / n_in, i = e % n_in;
        const int64_t pair = p < n_pairs ? sorted[p] : -1;
        float v = 0.0f;
        if (pair >= 0) {
            const int64_t t = pair / k, j = pair % k;
            v = x[(t * k_x + (k_x == 1 ? 0 : j)) * n_in + i];
        }
        x_sorted[e] = v;
    }
}

extern "C" cudaError_t kernel_moe_gather(float *x_sorted, const float *x, const int32_t *sorted, int64_t n_in,
                                         int64_t k, int64_t k_x, int64_t n_pairs, int64_t n_columns,
                                         cudaStream_t stream)
{
    if (n_in <= 0 || n_columns <= 0)
        return cudaSuccess;
    moe_gather_kernel<<<grid_blocks(n_in * n_columns, MOE_THREADS), MOE_THREADS, 0, stream>>>(
        x_sorted, x, sorted, n_in, k, k_x, n_pairs, n_columns);
    return cudaGetLastError();
}
