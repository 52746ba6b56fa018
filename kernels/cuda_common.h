/* Device helpers shared by the .cu files: warp and block reductions, element
 * loads and stores of the float types, launch sizes. CUDA C++ only. */
#ifndef STRATA_KERNELS_CUDA_COMMON_H
#define STRATA_KERNELS_CUDA_COMMON_H

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "launch.h"

#define WARP_SIZE 32
#define FULL_MASK 0xffffffffu

static __device__ __forceinline__ float warp_sum(float v)
{
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

static __device__ __forceinline__ float warp_max(float v)
{
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
        v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

/* Sum over a block of blockDim.x threads (a multiple of 32, at most 1024);
 * every thread gets the result. scratch holds 32 floats; the call
 * synchronizes the block twice, so scratch may be reused after it. */
static __device__ __forceinline__ float block_sum(float v, float *scratch)
{
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int n_warps = blockDim.x / WARP_SIZE;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    v = lane < n_warps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}

static __device__ __forceinline__ float block_max(float v, float *scratch)
{
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int n_warps = blockDim.x / WARP_SIZE;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0)
        scratch[warp] = v;
    __syncthreads();
    v = lane < n_warps ? scratch[lane] : -INFINITY;
    return warp_max(v);
}

static __device__ __forceinline__ float bf16_bits_to_float(uint16_t bits)
{
    return __uint_as_float((uint32_t)bits << 16);
}

/* Element i of an F32, F16 or BF16 array. */
static __device__ __forceinline__ float load_float(const void *base, int64_t byte_offset, int dtype)
{
    const char *p = (const char *)base + byte_offset;
    if (dtype == KERNEL_F16)
        return __half2float(*(const __half *)p);
    if (dtype == KERNEL_BF16)
        return bf16_bits_to_float(*(const uint16_t *)p);
    return *(const float *)p;
}

/* Stores value as F32, F16 or BF16, rounding to nearest even. */
static __device__ __forceinline__ void store_float(void *base, int64_t byte_offset, int dtype, float value)
{
    char *p = (char *)base + byte_offset;
    if (dtype == KERNEL_F16)
        *(__half *)p = __float2half_rn(value);
    else if (dtype == KERNEL_BF16)
        *(__nv_bfloat16 *)p = __float2bfloat16_rn(value);
    else
        *(float *)p = value;
}

/* Blocks for a grid-stride loop over n items with `threads` per block:
 * enough to cover n, capped so huge n loops instead of overflowing the grid. */
static inline unsigned int grid_blocks(int64_t n, int threads)
{
    int64_t blocks = (n + threads - 1) / threads;
    if (blocks < 1)
        blocks = 1;
    if (blocks > 65535 * 8)
        blocks = 65535 * 8;
    return (unsigned int)blocks;
}

/* The index of this thread and the stride of a grid-stride loop. */
#define GRID_INDEX() ((int64_t)blockIdx.x * blockDim.x + threadIdx.x)
#define GRID_STRIDE() ((int64_t)gridDim.x * blockDim.x)

#endif
