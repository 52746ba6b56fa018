/* Row dispatch for every block format, and the 32-element formats (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q8_1) plus the plain float types. The K-quants live
 * in quant_k.c, the low-bit formats (IQ*, MXFP4, TQ*) in quant_lowbit.c.
 *
 * Layouts follow the GGUF (ggml) definitions: in the 4- and 5-bit formats,
 * byte j of qs holds element j in its low nibble and element j + 16 in its
 * high nibble; in the 5-bit formats bit j of the little-endian 32-bit qh is
 * the fifth bit of element j. Quantizers choose scales as ggml's reference
 * quantizers do, so the same input gives the same bytes. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "quant.h"
#include "quant_k.h"
#include "quant_lowbit.h"

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 must be 18 bytes");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 must be 20 bytes");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 must be 22 bytes");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 must be 24 bytes");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must be 34 bytes");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 must be 36 bytes");
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K must be 84 bytes");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K must be 110 bytes");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K must be 144 bytes");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K must be 176 bytes");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K must be 210 bytes");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K must be 292 bytes");

/* ---- dequantize ---------------------------------------------------------- */

static void dequantize_f16(const void *src, float *dst, int64_t n)
{
    const unsigned char *bytes = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, bytes + 2 * i, sizeof h);
        dst[i] = fp16_to_f32(h);
    }
}

static void dequantize_bf16(const void *src, float *dst, int64_t n)
{
    const unsigned char *bytes = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, bytes + 2 * i, sizeof h);
        dst[i] = bf16_to_f32(h);
    }
}

static void dequantize_q4_0(const block_q4_0 *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, dst += QK4_0) {
        const float d = fp16_to_f32(blocks[b].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[j] = (float)((blocks[b].qs[j] & 0x0f) - 8) * d;
            dst[j + QK4_0 / 2] = (float)((blocks[b].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequantize_q4_1(const block_q4_1 *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, dst += QK4_1) {
        const float d = fp16_to_f32(blocks[b].d);
        const float m = fp16_to_f32(blocks[b].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            dst[j] = (float)(blocks[b].qs[j] & 0x0f) * d + m;
            dst[j + QK4_1 / 2] = (float)(blocks[b].qs[j] >> 4) * d + m;
        }
    }
}

/* The 5-bit value of element j (0..31) of a Q5 block. */
static int q5_value(const uint8_t qs[16], uint32_t qh, int j)
{
    int low = j < 16 ? (qs[j] & 0x0f) : (qs[j - 16] >> 4);
    int high = (int)((qh >> j) & 1u);
    return low | (high << 4);
}

static void dequantize_q5_0(const block_q5_0 *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, dst += QK5_0) {
        const float d = fp16_to_f32(blocks[b].d);
        uint32_t qh;
        memcpy(&qh, blocks[b].qh, sizeof qh);
        for (int j = 0; j < QK5_0; j++)
            dst[j] = (float)(q5_value(blocks[b].qs, qh, j) - 16) * d;
    }
}

static void dequantize_q5_1(const block_q5_1 *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, dst += QK5_1) {
        const float d = fp16_to_f32(blocks[b].d);
        const float m = fp16_to_f32(blocks[b].m);
        uint32_t qh;
        memcpy(&qh, blocks[b].qh, sizeof qh);
        for (int j = 0; j < QK5_1; j++)
            dst[j] = (float)q5_value(blocks[b].qs, qh, j) * d + m;
    }
}

static void dequantize_q8_0(const block_q8_0 *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, dst += QK8_0) {
        const float d = fp16_to_f32(blocks[b].d);
        for (int j = 0; j < QK8_0; j++)
            dst[j] = (float)blocks[b].qs[j] * d;
    }
}

static void dequantize_q8_1(const block_q8_1 *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, dst += QK8_1) {
        const float d = fp16_to_f32(blocks[b].d);
        for (int j = 0; j < QK8_1; j++)
            dst[j] = (float)blocks[b].qs[j] * d;
    }
}

/* ---- quantize ------------------------------------------------------------ */

/* The element of largest magnitude (the first one on ties), with its sign. */
static float signed_abs_max(const float *x, int n)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *out_min, float *out_max)
{
    float min = x[0], max = x[0];
    for (int j = 1; j < n; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    *out_min = min;
    *out_max = max;
}

/* The conversions below truncate toward zero after adding 0.5 or an offset
 * plus 0.5, which is how the reference quantizers round (half up on the
 * shifted, non-negative value). */
static int truncate_clamped(float v, int max_q)
{
    if (!(v > 0.0f)) /* also nan, from a non-finite input */
        return 0;
    if (v >= (float)max_q)
        return max_q;
    return (int)v;
}

/* roundf(v) (half away from zero) as an int8 quant in [-127, 127]; a nan
 * from a non-finite input becomes 0 rather than an undefined conversion. */
static int8_t round_to_q8(float v)
{
    const float r = roundf(v);
    if (r >= 127.0f)
        return 127;
    if (r <= -127.0f)
        return -127;
    return r == r ? (int8_t)r : 0;
}

static void quantize_q4_0(const float *x, block_q4_0 *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK4_0) {
        /* the largest magnitude maps to -8, so its sign picks which end of
         * [-8, 7] is used in full */
        const float d = signed_abs_max(x, QK4_0) / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = f32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int q0 = truncate_clamped(x[j] * id + 8.5f, 15);
            int q1 = truncate_clamped(x[j + QK4_0 / 2] * id + 8.5f, 15);
            blocks[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void quantize_q4_1(const float *x, block_q4_1 *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK4_1) {
        float min, max;
        min_max(x, QK4_1, &min, &max);
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        blocks[b].d = f32_to_fp16(d);
        blocks[b].m = f32_to_fp16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            int q0 = truncate_clamped((x[j] - min) * id + 0.5f, 15);
            int q1 = truncate_clamped((x[j + QK4_1 / 2] - min) * id + 0.5f, 15);
            blocks[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* Packs 32 five-bit values into the qs nibbles and the qh bit field. */
static void pack_q5(const int q[32], uint8_t qs[16], uint8_t qh_bytes[4])
{
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        qh |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh_bytes, &qh, sizeof qh);
}

static void quantize_q5_0(const float *x, block_q5_0 *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK5_0) {
        const float d = signed_abs_max(x, QK5_0) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int q[QK5_0];
        blocks[b].d = f32_to_fp16(d);
        for (int j = 0; j < QK5_0; j++)
            q[j] = truncate_clamped(x[j] * id + 16.5f, 31);
        pack_q5(q, blocks[b].qs, blocks[b].qh);
    }
}

static void quantize_q5_1(const float *x, block_q5_1 *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK5_1) {
        float min, max;
        min_max(x, QK5_1, &min, &max);
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int q[QK5_1];
        blocks[b].d = f32_to_fp16(d);
        blocks[b].m = f32_to_fp16(min);
        for (int j = 0; j < QK5_1; j++)
            q[j] = truncate_clamped((x[j] - min) * id + 0.5f, 31);
        pack_q5(q, blocks[b].qs, blocks[b].qh);
    }
}

/* Symmetric 8-bit quantization of 32 values with d = amax / 127, rounding
 * half away from zero (roundf), as the reference does. Returns d; the sum
 * of the quants goes to *out_sum. */
static float quantize_32_q8(const float *x, int8_t qs[32], int *out_sum)
{
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        qs[j] = round_to_q8(x[j] * id);
        sum += qs[j];
    }
    *out_sum = sum;
    return d;
}

static void quantize_q8_0(const float *x, block_q8_0 *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK8_0) {
        int sum;
        blocks[b].d = f32_to_fp16(quantize_32_q8(x, blocks[b].qs, &sum));
    }
}

static void quantize_q8_1(const float *x, block_q8_1 *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK8_1) {
        int sum;
        const float d = quantize_32_q8(x, blocks[b].qs, &sum);
        blocks[b].d = f32_to_fp16(d);
        blocks[b].s = f32_to_fp16((float)sum * d);
    }
}

/* ---- dispatch ------------------------------------------------------------ */

/* Checks dtype and n; on success *out_blocks is the number of blocks (or
 * elements, for the plain types). */
static strata_status check_row(strata_dtype dtype, int64_t n, const char *what, int64_t *out_blocks,
                               strata_error *err)
{
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    if (traits == NULL)
        return strata_fail(err, STRATA_UNSUPPORTED, "%s: unknown dtype id %d", what, (int)dtype);
    if (n < 0 || n % traits->block_elements != 0)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "%s: %lld elements of %s is not a whole number of %lld-element blocks", what,
                           (long long)n, traits->name, (long long)traits->block_elements);
    *out_blocks = n / traits->block_elements;
    return STRATA_OK;
}

strata_status quant_dequantize_row(strata_dtype dtype, const void *src, float *dst, int64_t n,
                                   strata_error *err)
{
    int64_t nb = 0;
    strata_status status = check_row(dtype, n, "dequantize", &nb, err);
    if (status != STRATA_OK)
        return status;
    switch (dtype) {
    case DTYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); break;
    case DTYPE_F16: dequantize_f16(src, dst, n); break;
    case DTYPE_BF16: dequantize_bf16(src, dst, n); break;
    case DTYPE_Q4_0: dequantize_q4_0(src, dst, nb); break;
    case DTYPE_Q4_1: dequantize_q4_1(src, dst, nb); break;
    case DTYPE_Q5_0: dequantize_q5_0(src, dst, nb); break;
    case DTYPE_Q5_1: dequantize_q5_1(src, dst, nb); break;
    case DTYPE_Q8_0: dequantize_q8_0(src, dst, nb); break;
    case DTYPE_Q8_1: dequantize_q8_1(src, dst, nb); break;
    case DTYPE_Q2_K: dequantize_blocks_q2_K(src, dst, nb); break;
    case DTYPE_Q3_K: dequantize_blocks_q3_K(src, dst, nb); break;
    case DTYPE_Q4_K: dequantize_blocks_q4_K(src, dst, nb); break;
    case DTYPE_Q5_K: dequantize_blocks_q5_K(src, dst, nb); break;
    case DTYPE_Q6_K: dequantize_blocks_q6_K(src, dst, nb); break;
    case DTYPE_Q8_K: dequantize_blocks_q8_K(src, dst, nb); break;
    case DTYPE_IQ2_XXS: dequantize_blocks_iq2_xxs(src, dst, nb); break;
    case DTYPE_IQ2_XS: dequantize_blocks_iq2_xs(src, dst, nb); break;
    case DTYPE_IQ2_S: dequantize_blocks_iq2_s(src, dst, nb); break;
    case DTYPE_IQ3_XXS: dequantize_blocks_iq3_xxs(src, dst, nb); break;
    case DTYPE_IQ3_S: dequantize_blocks_iq3_s(src, dst, nb); break;
    case DTYPE_IQ1_S: dequantize_blocks_iq1_s(src, dst, nb); break;
    case DTYPE_IQ1_M: dequantize_blocks_iq1_m(src, dst, nb); break;
    case DTYPE_IQ4_NL: dequantize_blocks_iq4_nl(src, dst, nb); break;
    case DTYPE_IQ4_XS: dequantize_blocks_iq4_xs(src, dst, nb); break;
    case DTYPE_MXFP4: dequantize_blocks_mxfp4(src, dst, nb); break;
    case DTYPE_TQ1_0: dequantize_blocks_tq1_0(src, dst, nb); break;
    case DTYPE_TQ2_0: dequantize_blocks_tq2_0(src, dst, nb); break;
    default:
        return strata_fail(err, STRATA_UNSUPPORTED, "dequantize: no dequantizer for %s", dtype_name(dtype));
    }
    return STRATA_OK;
}

static void quantize_f16(const float *src, void *dst, int64_t n)
{
    unsigned char *bytes = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = f32_to_fp16(src[i]);
        memcpy(bytes + 2 * i, &h, sizeof h);
    }
}

static void quantize_bf16(const float *src, void *dst, int64_t n)
{
    unsigned char *bytes = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = f32_to_bf16(src[i]);
        memcpy(bytes + 2 * i, &h, sizeof h);
    }
}

strata_status quant_quantize_row(strata_dtype dtype, const float *src, void *dst, int64_t n,
                                 strata_error *err)
{
    int64_t nb = 0;
    strata_status status = check_row(dtype, n, "quantize", &nb, err);
    if (status != STRATA_OK)
        return status;
    switch (dtype) {
    case DTYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); break;
    case DTYPE_F16: quantize_f16(src, dst, n); break;
    case DTYPE_BF16: quantize_bf16(src, dst, n); break;
    case DTYPE_Q4_0: quantize_q4_0(src, dst, nb); break;
    case DTYPE_Q4_1: quantize_q4_1(src, dst, nb); break;
    case DTYPE_Q5_0: quantize_q5_0(src, dst, nb); break;
    case DTYPE_Q5_1: quantize_q5_1(src, dst, nb); break;
    case DTYPE_Q8_0: quantize_q8_0(src, dst, nb); break;
    case DTYPE_Q8_1: quantize_q8_1(src, dst, nb); break;
    case DTYPE_Q2_K: quantize_blocks_q2_K(src, dst, nb); break;
    case DTYPE_Q3_K: quantize_blocks_q3_K(src, dst, nb); break;
    case DTYPE_Q4_K: quantize_blocks_q4_K(src, dst, nb); break;
    case DTYPE_Q5_K: quantize_blocks_q5_K(src, dst, nb); break;
    case DTYPE_Q6_K: quantize_blocks_q6_K(src, dst, nb); break;
    case DTYPE_Q8_K: quantize_blocks_q8_K(src, dst, nb); break;
    case DTYPE_IQ4_NL: quantize_blocks_iq4_nl(src, dst, nb); break;
    case DTYPE_IQ4_XS: quantize_blocks_iq4_xs(src, dst, nb); break;
    case DTYPE_MXFP4: quantize_blocks_mxfp4(src, dst, nb); break;
    case DTYPE_TQ1_0: quantize_blocks_tq1_0(src, dst, nb); break;
    case DTYPE_TQ2_0: quantize_blocks_tq2_0(src, dst, nb); break;
    case DTYPE_IQ2_XXS:
    case DTYPE_IQ2_XS:
    case DTYPE_IQ2_S:
    case DTYPE_IQ3_XXS:
    case DTYPE_IQ3_S:
    case DTYPE_IQ1_S:
    case DTYPE_IQ1_M: return quantize_blocks_iq_grid(dtype, src, dst, nb, err);
    default:
        return strata_fail(err, STRATA_UNSUPPORTED, "quantize: no quantizer for %s", dtype_name(dtype));
    }
    return STRATA_OK;
}
