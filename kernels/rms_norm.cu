/* OP_RMS_NORM: one block per row. The sum of squares is accumulated per
 * thread and then across the block in F32 (the CPU accumulates in double;
 * for rows of a few thousand the difference is of order 1e-7 relative). */
#include "cuda_common.h"

#define RMS_NORM_THREADS 256

static __global__ void rms_norm_kernel(float *dst, const float *x, const float *weight, int64_t n, float eps)
{
    __shared__ float scratch[32];
    const float *row = x + (int64_t)blockIdx.x * n;
    float *out = dst + (int64_t)blockIdx.x * n;
    float sum_squares = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        sum_squares += row[i] * row[i];
    sum_squares = block_sum(sum_squares, scratch);
    const float inv = 1.0f / sqrtf(sum_squares / (float)n + eps);
    /* each thread rewrites only the elements it read: in place is safe */
    if (weight)
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            out[i] = row[i] * inv * weight[i];
    else
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            out[i] = row[i] * inv;
}

extern "C" cudaError_t kernel_rms_norm(float *dst, const float *x, const float *weight, int64_t n, int64_t rows,
                                       float eps, cudaStream_t stream)
{
    if (rows <= 0 || n <= 0)
        return cudaSuccess;
    if (rows > 0x7fffffff)
        return cudaErrorInvalidValue;
    rms_norm_kernel<<<(unsigned int)rows, RMS_NORM_THREADS, 0, stream>>>(dst, x, weight, n, eps);
    return cudaGetLastError();
}
