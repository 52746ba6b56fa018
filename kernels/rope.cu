/* OP_ROPE: one block per token. The block first computes the token's
 * n_rot / 2 angles in double precision into shared memory (as the CPU does:
 * at positions in the thousands a float angle would be off by 1e-4), then
 * rotates every pair of every head with them (cos and sin scaled by the
 * attention factor, LongRoPE's, on the rotated dims only). */
#include "cuda_common.h"

#define ROPE_THREADS 256
#define ROPE_MAX_PAIRS 512 /* n_rot <= 1024 (kernels/launch.h) */

static __global__ void rope_kernel(float *dst, const float *x, const int32_t *positions, const float *factors,
                                   int64_t head_dim, int64_t n_heads, int n_rot, bool neox, float freq_base,
                                   float freq_scale, float attn_factor)
{
    __shared__ float cos_sin[2 * ROPE_MAX_PAIRS]; /* cos, sin of pair i at 2i, 2i + 1 */
    const int64_t t = blockIdx.x;
    const int half = n_rot / 2;
    const double position = (double)positions[t] * (double)freq_scale;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        double theta = position * pow((double)freq_base, -2.0 * i / n_rot);
        if (factors)
            theta /= factors[i];
        cos_sin[2 * i] = (float)cos(theta) * attn_factor;
        cos_sin[2 * i + 1] = (float)sin(theta) * attn_factor;
    }
    __syncthreads();
    const float *src = x + t * n_heads * head_dim;
    float *out = dst + t * n_heads * head_dim;
    for (int64_t idx = threadIdx.x; idx < n_heads * half; idx += blockDim.x) {
        const int64_t h = idx / half;
        const int i = (int)(idx % half);
        const int64_t i0 = h * head_dim + (neox ? i : 2 * i);
        const int64_t i1 = h * head_dim + (neox ? i + half : 2 * i + 1);
        const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
        const float x0 = src[i0], x1 = src[i1];
        out[i0] = x0 * c - x1 * s;
        out[i1] = x0 * s + x1 * c;
    }
    if (out != src) { /* the dims past n_rot pass through */
        const int64_t rest = head_dim - n_rot;
        for (int64_t idx = threadIdx.x; idx < n_heads * rest; idx += blockDim.x) {
            const int64_t h = idx / rest, i = n_rot + idx % rest;
            out[h * head_dim + i] = src[h * head_dim + i];
        }
    }
}

extern "C" cudaError_t kernel_rope(float *dst, const float *x, const int32_t *positions, const float *factors,
                                   int64_t head_dim, int64_t n_heads, int64_t n_tok, int n_rot, bool neox,
                                   float freq_base, float freq_scale, float attn_factor, cudaStream_t stream)
{
    if (n_tok <= 0 || n_heads <= 0 || n_rot <= 0)
        return cudaSuccess;
    if (n_tok > 0x7fffffff || n_rot > 2 * ROPE_MAX_PAIRS)
        return cudaErrorInvalidValue;
    rope_kernel<<<(unsigned int)n_tok, ROPE_THREADS, 0, stream>>>(
        dst, x, positions, factors, head_dim, n_heads, n_rot, neox, freq_base, freq_scale,
        attn_factor != 0.0f ? attn_factor : 1.0f);
    return cudaGetLastError();
}
