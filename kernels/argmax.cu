/* OP_ARGMAX: one block per row. Each thread scans its strided elements in
 * increasing order keeping the first strict maximum; the block then keeps
 * the larger value, and on equal values the lower index, so the result is
 * the lowest index of the maximum, as on the CPU. */
#include "cuda_common.h"

#define ARGMAX_THREADS 256

static __device__ __forceinline__ void argmax_merge(float *best, int64_t *best_index, float other,
                                                    int64_t other_index)
{
    if (other > *best || (other == *best && other_index < *best_index)) {
        *best = other;
        *best_index = other_index;
    }
}

static __global__ void argmax_kernel(int32_t *dst, const float *x, int64_t n)
{
    __shared__ float best_values[ARGMAX_THREADS / WARP_SIZE];
    __shared__ int64_t best_indices[ARGMAX_THREADS / WARP_SIZE];
    const float *row = x + (int64_t)blockIdx.x * n;
    float best = -INFINITY;
    int64_t best_index = n; /* past the end: loses every tie */
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        if (best_index == n || row[i] > best) { /* a thread's first element starts its scan, as x[0] does on the CPU */
            best = row[i];
            best_index = i;
        }
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
        float other = __shfl_xor_sync(FULL_MASK, best, offset);
        int64_t other_index = __shfl_xor_sync(FULL_MASK, best_index, offset);
        argmax_merge(&best, &best_index, other, other_index);
    }
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    if (lane == 0) {
        best_values[warp] = best;
        best_indices[warp] = best_index;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x / WARP_SIZE); w++)
            argmax_merge(&best, &best_index, best_values[w], best_indices[w]);
        dst[blockIdx.x] = (int32_t)(best_index < n ? best_index : 0);
    }
}

extern "C" cudaError_t kernel_argmax(int32_t *dst, const float *x, int64_t n, int64_t rows, cudaStream_t stream)
{
    if (rows <= 0 || n <= 0)
        return cudaSuccess;
    if (rows > 0x7fffffff)
        return cudaErrorInvalidValue;
    argmax_kernel<<<(unsigned int)rows, ARGMAX_THREADS, 0, stream>>>(dst, x, n);
    return cudaGetLastError();
}
