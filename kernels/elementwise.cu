/* OP_ADD, OP_MUL, OP_SCALE, OP_SWIGLU, OP_GEGLU: one grid-stride loop per op,
 * the op a template parameter so each loop body is straight-line code. The
 * functions match the CPU backend's (expf and tanhf, not the fast
 * intrinsics), so results agree to a few ulp. */
#include "cuda_common.h"

#define ELEMENTWISE_THREADS 256

template <int OP>
static __global__ void elementwise_kernel(float *dst, const float *a, const float *b, int64_t n, int64_t b_period,
                                          float value)
{
    const bool same_shape = b_period == n;
    for (int64_t i = GRID_INDEX(); i < n; i += GRID_STRIDE()) {
        const float x = a[i];
        float y;
        if (OP == KERNEL_SCALE) {
            y = x * value;
        } else {
            const float other = b[same_shape ? i : i % b_period];
            if (OP == KERNEL_ADD)
                y = x + other;
            else if (OP == KERNEL_MUL)
                y = x * other;
            else if (OP == KERNEL_SWIGLU)
                y = x / (1.0f + expf(-x)) * other;
            else {
                const float sqrt_2_over_pi = 0.7978845608028654f;
                y = 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * (x + 0.044715f * x * x * x))) * other;
            }
        }
        dst[i] = y;
    }
}

extern "C" cudaError_t kernel_elementwise(kernel_elementwise_op op, float *dst, const float *a, const float *b,
                                          int64_t n, int64_t b_period, float value, cudaStream_t stream)
{
    if (n <= 0)
        return cudaSuccess;
    const unsigned int blocks = grid_blocks(n, ELEMENTWISE_THREADS);
    switch (op) {
    case KERNEL_ADD:
        elementwise_kernel<KERNEL_ADD><<<blocks, ELEMENTWISE_THREADS, 0, stream>>>(dst, a, b, n, b_period, value);
        break;
    case KERNEL_MUL:
        elementwise_kernel<KERNEL_MUL><<<blocks, ELEMENTWISE_THREADS, 0, stream>>>(dst, a, b, n, b_period, value);
        break;
    case KERNEL_SCALE:
        elementwise_kernel<KERNEL_SCALE><<<blocks, ELEMENTWISE_THREADS, 0, stream>>>(dst, a, b, n, b_period, value);
        break;
    case KERNEL_SWIGLU:
        elementwise_kernel<KERNEL_SWIGLU><<<blocks, ELEMENTWISE_THREADS, 0, stream>>>(dst, a, b, n, b_period, value);
        break;
    case KERNEL_GEGLU:
        elementwise_kernel<KERNEL_GEGLU><<<blocks, ELEMENTWISE_THREADS, 0, stream>>>(dst, a, b, n, b_period, value);
        break;
    default:
        return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}
