/* OP_SOFTMAX: one block per row; the row maximum is subtracted before
 * exponentiating, as on the CPU, so large inputs cannot overflow. */
#include "cuda_common.h"

#define SOFTMAX_THREADS 256

static __global__ void softmax_kernel(float *dst, const float *x, int64_t n)
{
    __shared__ float scratch[32];
    const float *row = x + (int64_t)blockIdx.x * n;
    float *out = dst + (int64_t)blockIdx.x * n;
    float max = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        max = fmaxf(max, row[i]);
    max = block_max(max, scratch);
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float e = expf(row[i] - max);
        out[i] = e; /* the same thread read row[i]: in place is safe */
        sum += e;
    }
    sum = block_sum(sum, scratch);
    const float inv = 1.0f / sum;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        out[i] *= inv;
}

extern "C" cudaError_t kernel_softmax(float *dst, const float *x, int64_t n, int64_t rows, cudaStream_t stream)
{
    if (rows <= 0 || n <= 0)
        return cudaSuccess;
    if (rows > 0x7fffffff)
        return cudaErrorInvalidValue;
    softmax_kernel<<<(unsigned int)rows, SOFTMAX_THREADS, 0, stream>>>(dst, x, n);
    return cudaGetLastError();
}
