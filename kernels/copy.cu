/* OP_COPY (F32/F16/BF16 conversions, any strides) and OP_KV_STORE (F32
 * rows into an F16 or F32 cache at given positions). One thread per element;
 * conversions round to nearest even, as base/fp16.c does. */
#include "cuda_common.h"

#define COPY_THREADS 256

/* Byte offset of flat element index i of a view of shape ne. */
static __device__ __forceinline__ int64_t strided_offset(int64_t i, const kernel_layout &layout)
{
    const int64_t i0 = i % layout.ne[0];
    i /= layout.ne[0];
    const int64_t i1 = i % layout.ne[1];
    i /= layout.ne[1];
    const int64_t i2 = i % layout.ne[2];
    const int64_t i3 = i / layout.ne[2];
    return i0 * layout.nb[0] + i1 * layout.nb[1] + i2 * layout.nb[2] + i3 * layout.nb[3];
}

static __global__ void copy_kernel(void *dst, kernel_layout dst_layout, const void *src, kernel_layout src_layout,
                                   bool flat, int64_t n)
{
    for (int64_t i = GRID_INDEX(); i < n; i += GRID_STRIDE()) {
        const int64_t src_offset = flat ? i * src_layout.nb[0] : strided_offset(i, src_layout);
        const int64_t dst_offset = flat ? i * dst_layout.nb[0] : strided_offset(i, dst_layout);
        store_float(dst, dst_offset, dst_layout.dtype, load_float(src, src_offset, src_layout.dtype));
    }
}

extern "C" cudaError_t kernel_copy(void *dst, const kernel_layout *dst_layout, const void *src,
                                   const kernel_layout *src_layout, bool flat, cudaStream_t stream)
{
    const int64_t n = src_layout->ne[0] * src_layout->ne[1] * src_layout->ne[2] * src_layout->ne[3];
    if (n <= 0)
        return cudaSuccess;
    copy_kernel<<<grid_blocks(n, COPY_THREADS), COPY_THREADS, 0, stream>>>(dst, *dst_layout, src, *src_layout,
                                                                          flat, n);
    return cudaGetLastError();
}

static __global__ void kv_store_kernel(void *cache, int cache_dtype, int64_t row_stride, int64_t n_ctx,
                                       const float *rows, const int32_t *positions, int64_t row_size,
                                       int64_t n, unsigned int *error_flags)
{
    for (int64_t i = GRID_INDEX(); i < n; i += GRID_STRIDE()) {
        const int64_t t = i / row_size, e = i % row_size;
        const int32_t position = positions[t];
        if (position < 0 || position >= n_ctx) {
            if (e == 0)
                atomicOr(error_flags, KERNEL_ERROR_KV_POSITION);
            continue;
        }
        const int64_t element_bytes = cache_dtype == KERNEL_F16 ? 2 : 4;
        store_float(cache, (int64_t)position * row_stride + e * element_bytes, cache_dtype, rows[i]);
    }
}

extern "C" cudaError_t kernel_kv_store(void *cache, int cache_dtype, int64_t row_stride, int64_t n_ctx,
                                       const float *rows, const int32_t *positions, int64_t row_size, int64_t n_tok,
                                       unsigned int *error_flags, cudaStream_t stream)
{
    const int64_t n = row_size * n_tok;
    if (n <= 0)
        return cudaSuccess;
    kv_store_kernel<<<grid_blocks(n, COPY_THREADS), COPY_THREADS, 0, stream>>>(
        cache, cache_dtype, row_stride, n_ctx, rows, positions, row_size, n, error_flags);
    return cudaGetLastError();
}
