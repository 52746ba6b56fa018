/* OP_GET_ROWS (embedding lookup from any weight dtype) and the dequantization
 * of weight tiles for the cuBLAS GEMM path. Block formats go through
 * quant_unpack.h one 32-element unit per thread, so the values are those of
 * base/quant.c (up to fused multiply-adds). */
#include "cuda_common.h"
#include "quant_unpack.h"

#define DEQUANT_THREADS 256

static __host__ __device__ __forceinline__ bool is_float_dtype(int dtype)
{
    return dtype == KERNEL_F32 || dtype == KERNEL_F16 || dtype == KERNEL_BF16;
}

/* Writes the 32 values of an unpacked unit to out (F32 or F16): 16-byte
 * stores when out is aligned for them (always, for the buffers the runtime
 * lays out), element stores otherwise. */
static __device__ __forceinline__ void write_unit(const quant_unit &unit, void *out, bool out_f32)
{
    if (((uintptr_t)out & 15u) != 0) {
        for (int e = 0; e < UNPACK_UNIT_ELEMENTS; e++) {
            if (out_f32)
                ((float *)out)[e] = unpack_value(&unit, e);
            else
                ((__half *)out)[e] = __float2half_rn(unpack_value(&unit, e));
        }
    } else if (out_f32) {
        float4 *dst = (float4 *)out;
        for (int k = 0; k < 8; k++)
            dst[k] = make_float4(unpack_value(&unit, 4 * k), unpack_value(&unit, 4 * k + 1),
                                 unpack_value(&unit, 4 * k + 2), unpack_value(&unit, 4 * k + 3));
    } else {
        uint4 *dst = (uint4 *)out;
        for (int k = 0; k < 4; k++) {
            uint32_t pairs[4]; /* element 2j in the low half, 2j + 1 in the high half */
            for (int j = 0; j < 4; j++)
                pairs[j] = (uint32_t)__half_as_ushort(__float2half_rn(unpack_value(&unit, 8 * k + 2 * j))) |
                           ((uint32_t)__half_as_ushort(__float2half_rn(unpack_value(&unit, 8 * k + 2 * j + 1))) << 16);
            uint4 packed;
            packed.x = pairs[0];
            packed.y = pairs[1];
            packed.z = pairs[2];
            packed.w = pairs[3];
            dst[k] = packed;
        }
    }
}

static __global__ void get_rows_units_kernel(float *dst, const uint8_t *table, int dtype, int64_t row_bytes,
                                             int64_t n_embd, int64_t n_vocab, const int32_t *ids, int64_t n_rows,
                                             unsigned int *error_flags)
{
    const int64_t n_units = n_embd / UNPACK_UNIT_ELEMENTS;
    const int units_per_block = unpack_units_per_block(dtype), block_bytes = unpack_block_bytes(dtype);
    for (int64_t i = GRID_INDEX(); i < n_rows * n_units; i += GRID_STRIDE()) {
        const int64_t r = i / n_units, u = i % n_units;
        const int32_t id = ids[r];
        if (id < 0 || id >= n_vocab) {
            if (u == 0)
                atomicOr(error_flags, KERNEL_ERROR_ROW_ID);
            continue;
        }
        quant_unit unit;
        unpack_unit(dtype, table + id * row_bytes + (u / units_per_block) * block_bytes, (int)(u % units_per_block),
                    &unit);
        write_unit(unit, dst + r * n_embd + u * UNPACK_UNIT_ELEMENTS, true);
    }
}

static __global__ void get_rows_float_kernel(float *dst, const uint8_t *table, int dtype, int64_t row_bytes,
                                             int64_t n_embd, int64_t n_vocab, const int32_t *ids, int64_t n_rows,
                                             unsigned int *error_flags)
{
    const int64_t element_bytes = dtype == KERNEL_F32 ? 4 : 2;
    for (int64_t i = GRID_INDEX(); i < n_rows * n_embd; i += GRID_STRIDE()) {
        const int64_t r = i / n_embd, e = i % n_embd;
        const int32_t id = ids[r];
        if (id < 0 || id >= n_vocab) {
            if (e == 0)
                atomicOr(error_flags, KERNEL_ERROR_ROW_ID);
            continue;
        }
        dst[i] = load_float(table, id * row_bytes + e * element_bytes, dtype);
    }
}

extern "C" cudaError_t kernel_get_rows(float *dst, const void *table, int dtype, int64_t row_bytes, int64_t n_embd,
                                       int64_t n_vocab, const int32_t *ids, int64_t n_rows, unsigned int *error_flags,
                                       cudaStream_t stream)
{
    if (n_rows <= 0 || n_embd <= 0)
        return cudaSuccess;
    if (dtype == KERNEL_F32 || dtype == KERNEL_F16 || dtype == KERNEL_BF16) {
        get_rows_float_kernel<<<grid_blocks(n_rows * n_embd, DEQUANT_THREADS), DEQUANT_THREADS, 0, stream>>>(
            dst, (const uint8_t *)table, dtype, row_bytes, n_embd, n_vocab, ids, n_rows, error_flags);
    } else {
        if (unpack_block_bytes(dtype) == 0 || n_embd % UNPACK_UNIT_ELEMENTS != 0)
            return cudaErrorInvalidValue;
        const int64_t units = n_rows * (n_embd / UNPACK_UNIT_ELEMENTS);
        get_rows_units_kernel<<<grid_blocks(units, DEQUANT_THREADS), DEQUANT_THREADS, 0, stream>>>(
            dst, (const uint8_t *)table, dtype, row_bytes, n_embd, n_vocab, ids, n_rows, error_flags);
    }
    return cudaGetLastError();
}

static __global__ void dequantize_units_kernel(void *dst, bool dst_f32, const uint8_t *weight, int dtype,
                                               int64_t row_bytes, int64_t n_in, int64_t rows)
{
    const int64_t n_units = n_in / UNPACK_UNIT_ELEMENTS;
    const int units_per_block = unpack_units_per_block(dtype), block_bytes = unpack_block_bytes(dtype);
    const int64_t out_element_bytes = dst_f32 ? 4 : 2;
    for (int64_t i = GRID_INDEX(); i < rows * n_units; i += GRID_STRIDE()) {
        const int64_t r = i / n_units, u = i % n_units;
        quant_unit unit;
        unpack_unit(dtype, weight + r * row_bytes + (u / units_per_block) * block_bytes, (int)(u % units_per_block),
                    &unit);
        write_unit(unit, (char *)dst + (r * n_in + u * UNPACK_UNIT_ELEMENTS) * out_element_bytes, dst_f32);
    }
}

static __global__ void dequantize_float_kernel(void *dst, bool dst_f32, const uint8_t *weight, int dtype,
                                               int64_t row_bytes, int64_t n_in, int64_t rows)
{
    const int64_t element_bytes = dtype == KERNEL_F32 ? 4 : 2;
    for (int64_t i = GRID_INDEX(); i < rows * n_in; i += GRID_STRIDE()) {
        const int64_t r = i / n_in, e = i % n_in;
        const float value = load_float(weight, r * row_bytes + e * element_bytes, dtype);
        if (dst_f32)
            ((float *)dst)[i] = value;
        else
            ((__half *)dst)[i] = __float2half_rn(value);
    }
}

extern "C" cudaError_t kernel_dequantize_rows(void *dst, bool dst_f32, const void *weight, int dtype,
                                              int64_t row_bytes, int64_t n_in, int64_t rows, cudaStream_t stream)
{
    if (rows <= 0 || n_in <= 0)
        return cudaSuccess;
    if (is_float_dtype(dtype)) {
        dequantize_float_kernel<<<grid_blocks(rows * n_in, DEQUANT_THREADS), DEQUANT_THREADS, 0, stream>>>(
            dst, dst_f32, (const uint8_t *)weight, dtype, row_bytes, n_in, rows);
    } else {
        if (unpack_block_bytes(dtype) == 0 || n_in % UNPACK_UNIT_ELEMENTS != 0)
            return cudaErrorInvalidValue;
        const int64_t units = rows * (n_in / UNPACK_UNIT_ELEMENTS);
        dequantize_units_kernel<<<grid_blocks(units, DEQUANT_THREADS), DEQUANT_THREADS, 0, stream>>>(
            dst, dst_f32, (const uint8_t *)weight, dtype, row_bytes, n_in, rows);
    }
    return cudaGetLastError();
}

/* The power of two each activation column is divided by before it becomes
 * f16: 1 while the column's largest magnitude stays at most
 * ACTIVATION_F16_LIMIT (then the conversion is exactly the plain one),
 * otherwise the smallest power of two that brings it under the limit. Powers
 * of two divide and multiply back exactly, so a column of large activations
 * (the FFN inputs of some models reach beyond f16's 65504) loses no more
 * than f16 rounding instead of turning into infinities. Non-finite columns
 * keep scale 1: their infinities and NaNs go through as they are. */
#define ACTIVATION_F16_LIMIT 32768.0f

static __device__ __forceinline__ float activation_column_scale(float amax)
{
    if (!(amax > ACTIVATION_F16_LIMIT) || isinf(amax))
        return 1.0f;
    int exponent;
    frexpf(amax / ACTIVATION_F16_LIMIT, &exponent); /* amax / limit = m 2^exponent, m in [0.5, 1) */
    return ldexpf(1.0f, exponent);
}

/* One block per token (column of x). */
static __global__ void activations_to_f16_kernel(__half *hi, __half *lo, float *column_scale, const float *x,
                                                 int64_t n_in)
{
    __shared__ float scratch[WARP_SIZE];
    const int64_t t = blockIdx.x;
    const float *column = x + t * n_in;
    float amax = 0.0f;
    for (int64_t i = threadIdx.x; i < n_in; i += blockDim.x)
        amax = fmaxf(amax, fabsf(column[i]));
    const float scale = activation_column_scale(block_max(amax, scratch));
    const float inverse = 1.0f / scale; /* exact: a power of two */
    for (int64_t i = threadIdx.x; i < n_in; i += blockDim.x) {
        const float value = column[i] * inverse;
        const __half high = __float2half_rn(value);
        hi[t * n_in + i] = high;
        if (lo)
            lo[t * n_in + i] = __float2half_rn(value - __half2float(high));
    }
    if (threadIdx.x == 0)
        column_scale[t] = scale;
}

extern "C" cudaError_t kernel_activations_to_f16(uint16_t *hi, uint16_t *lo, float *column_scale, const float *x,
                                                 int64_t n_in, int64_t n_tok, cudaStream_t stream)
{
    if (n_in <= 0 || n_tok <= 0)
        return cudaSuccess;
    if (n_tok > 0x7fffffff)
        return cudaErrorInvalidValue;
    activations_to_f16_kernel<<<(unsigned int)n_tok, DEQUANT_THREADS, 0, stream>>>((__half *)hi, (__half *)lo,
                                                                                   column_scale, x, n_in);
    return cudaGetLastError();
}

/* One block per column; columns whose scale is 1 (nearly always all of
 * them) leave at once. */
static __global__ void scale_columns_kernel(float *dst, const float *column_scale, int64_t n_out)
{
    const float scale = column_scale[blockIdx.x];
    if (scale == 1.0f)
        return;
    float *column = dst + (int64_t)blockIdx.x * n_out;
    for (int64_t i = threadIdx.x; i < n_out; i += blockDim.x)
        column[i] *= scale;
}

extern "C" cudaError_t kernel_scale_columns(float *dst, const float *column_scale, int64_t n_out, int64_t n_tok,
                                            cudaStream_t stream)
{
    if (n_out <= 0 || n_tok <= 0)
        return cudaSuccess;
    if (n_tok > 0x7fffffff)
        return cudaErrorInvalidValue;
    scale_columns_kernel<<<(unsigned int)n_tok, DEQUANT_THREADS, 0, stream>>>(dst, column_scale, n_out);
    return cudaGetLastError();
}
