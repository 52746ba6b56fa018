/* Scalar dot products for the plain float formats and the 32-element block
 * formats. Quantized weights meet an 8-bit activation row: the integer sum of
 * one block is exact, and the two scales multiply it once per block. */
#include <string.h>

#include "../../base/quant.h"
#include "cpu_kernels.h"

float cpu_dot_f32_scalar(int64_t n, const void *w, const void *a)
{
    const float *wf = w, *af = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += wf[i] * af[i];
    return sum;
}

float cpu_dot_f16_scalar(int64_t n, const void *w, const void *a)
{
    const uint16_t *wh = w;
    const float *af = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += fp16_to_f32(wh[i]) * af[i];
    return sum;
}

float cpu_dot_bf16_scalar(int64_t n, const void *w, const void *a)
{
    const uint16_t *wh = w;
    const float *af = a;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += bf16_to_f32(wh[i]) * af[i];
    return sum;
}

/* The 32 signed quants of a Q4_0/Q4_1 block: low nibbles are elements 0..15,
 * high nibbles 16..31. */
static void unpack_nibbles(const uint8_t qs[16], int offset, int8_t out[32])
{
    for (int j = 0; j < 16; j++) {
        out[j] = (int8_t)((qs[j] & 0x0F) - offset);
        out[j + 16] = (int8_t)((qs[j] >> 4) - offset);
    }
}

/* Q5_0/Q5_1: the nibbles plus a fifth bit from qh (bit j for element j). */
static void unpack_5bit(const uint8_t qs[16], const uint8_t qh_bytes[4], int offset, int8_t out[32])
{
    uint32_t qh;
    memcpy(&qh, qh_bytes, sizeof qh);
    for (int j = 0; j < 16; j++) {
        int high0 = (int)((qh >> j) & 1u) << 4;
        int high1 = (int)((qh >> (j + 16)) & 1u) << 4;
        out[j] = (int8_t)(((qs[j] & 0x0F) | high0) - offset);
        out[j + 16] = (int8_t)(((qs[j] >> 4) | high1) - offset);
    }
}

static int dot_32(const int8_t *x, const int8_t *y)
{
    int sum = 0;
    for (int i = 0; i < 32; i++)
        sum += x[i] * y[i];
    return sum;
}

float cpu_dot_q4_0_scalar(int64_t n, const void *w, const void *a)
{
    const block_q4_0 *wb = w;
    const block_q8_0 *ab = a;
    float sum = 0.0f;
    int8_t q[32];
    for (int64_t b = 0; b < n / QK4_0; b++) {
        unpack_nibbles(wb[b].qs, 8, q);
        sum += fp16_to_f32(wb[b].d) * fp16_to_f32(ab[b].d) * (float)dot_32(q, ab[b].qs);
    }
    return sum;
}

/* w = d q + m, so sum w a = d da sum(q qa) + m (da sum(qa)) = ... + m s. */
float cpu_dot_q4_1_scalar(int64_t n, const void *w, const void *a)
{
    const block_q4_1 *wb = w;
    const block_q8_1 *ab = a;
    float sum = 0.0f;
    int8_t q[32];
    for (int64_t b = 0; b < n / QK4_1; b++) {
        unpack_nibbles(wb[b].qs, 0, q);
        sum += fp16_to_f32(wb[b].d) * fp16_to_f32(ab[b].d) * (float)dot_32(q, ab[b].qs) +
               fp16_to_f32(wb[b].m) * fp16_to_f32(ab[b].s);
    }
    return sum;
}

float cpu_dot_q5_0_scalar(int64_t n, const void *w, const void *a)
{
    const block_q5_0 *wb = w;
    const block_q8_0 *ab = a;
    float sum = 0.0f;
    int8_t q[32];
    for (int64_t b = 0; b < n / QK5_0; b++) {
        unpack_5bit(wb[b].qs, wb[b].qh, 16, q);
        sum += fp16_to_f32(wb[b].d) * fp16_to_f32(ab[b].d) * (float)dot_32(q, ab[b].qs);
    }
    return sum;
}

float cpu_dot_q5_1_scalar(int64_t n, const void *w, const void *a)
{
    const block_q5_1 *wb = w;
    const block_q8_1 *ab = a;
    float sum = 0.0f;
    int8_t q[32];
    for (int64_t b = 0; b < n / QK5_1; b++) {
        unpack_5bit(wb[b].qs, wb[b].qh, 0, q);
        sum += fp16_to_f32(wb[b].d) * fp16_to_f32(ab[b].d) * (float)dot_32(q, ab[b].qs) +
               fp16_to_f32(wb[b].m) * fp16_to_f32(ab[b].s);
    }
    return sum;
}

float cpu_dot_q8_0_scalar(int64_t n, const void *w, const void *a)
{
    const block_q8_0 *wb = w;
    const block_q8_0 *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK8_0; b++)
        sum += fp16_to_f32(wb[b].d) * fp16_to_f32(ab[b].d) * (float)dot_32(wb[b].qs, ab[b].qs);
    return sum;
}
