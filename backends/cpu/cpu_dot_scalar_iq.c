/* Scalar dot products of the low-bit formats (base/quant_lowbit.h) against
 * 8-bit activations: Q8_0 for the 32-element formats (IQ4_NL, MXFP4), Q8_K
 * for the 256-element ones.
 *
 * Every format's value is a float scale times a small integer, so each group
 * is summed in integers and scaled once:
 * - IQ2_*:   d (2 s + 1) / 8 * (sign * grid)      [(0.5 + s) / 4 = (2 s + 1) / 8]
 * - IQ3_XXS: d (2 s + 1) / 4 * (sign * grid)
 * - IQ3_S:   d (2 s + 1) * (sign * grid)
 * - IQ1_*:   d (2 s + 1) / 8 * (8 grid +- 1)      [grid + delta, delta = +-1/8]
 * - IQ4_*:   d (ls - 32) * level; MXFP4: 2^(e - 128) * doubled e2m1 value
 * - TQ*:     d * (code - 1)
 * The AVX2 versions (cpu_dot_avx2_iq.c) form the same integer sums. */
#include <string.h>

#include "../../base/quant_lowbit.h"
#include "cpu_kernels.h"

/* sum_j (+-grid_j) q_j over 8 elements of a point of bytes, negated where
 * bit j of signs is set. */
static int32_t signed_point_dot8(uint64_t point, unsigned signs, const int8_t *q)
{
    int32_t sum = 0;
    for (int j = 0; j < 8; j++) {
        const int v = (int)(uint8_t)(point >> (8 * j)) * q[j];
        sum += (signs >> j) & 1 ? -v : v;
    }
    return sum;
}

static int32_t signed_point_dot4(uint32_t point, unsigned signs, const int8_t *q)
{
    int32_t sum = 0;
    for (int j = 0; j < 4; j++) {
        const int v = (int)(uint8_t)(point >> (8 * j)) * q[j];
        sum += (signs >> j) & 1 ? -v : v;
    }
    return sum;
}

float cpu_dot_iq2_xxs_scalar(int64_t n, const void *w, const void *a)
{
    const block_iq2_xxs *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const int8_t *q = ab[b].qs;
        int32_t total = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            uint32_t idx, aux;
            memcpy(&idx, wb[b].qs + 4 * ib, sizeof idx);
            memcpy(&aux, wb[b].qs + 4 * ib + 2, sizeof aux);
            int32_t group = 0;
            for (int l = 0; l < 4; l++, q += 8)
                group += signed_point_dot8(quant_iq2xxs_grid[(idx >> (8 * l)) & 0xff],
                                           quant_iq2_signs[(aux >> (7 * l)) & 0x7f], q);
            total += (int32_t)(2 * (aux >> 28) + 1) * group;
        }
        sum += fp16_to_f32(wb[b].d) * ab[b].d * (float)total * 0.125f;
    }
    return sum;
}

float cpu_dot_iq2_xs_scalar(int64_t n, const void *w, const void *a)
{
    const block_iq2_xs *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const int8_t *q = ab[b].qs;
        int32_t total = 0;
        for (int half = 0; half < QK_K / 16; half++) {
            const int s = (wb[b].scales[half / 2] >> (4 * (half % 2))) & 0x0f;
            int32_t group = 0;
            for (int l = 0; l < 2; l++, q += 8) {
                const uint16_t code = wb[b].qs[2 * half + l];
                group += signed_point_dot8(quant_iq2xs_grid[code & 511], quant_iq2_signs[code >> 9], q);
            }
            total += (2 * s + 1) * group;
        }
        sum += fp16_to_f32(wb[b].d) * ab[b].d * (float)total * 0.125f;
    }
    return sum;
}

float cpu_dot_iq2_s_scalar(int64_t n, const void *w, const void *a)
{
    const block_iq2_s *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_iq2_s *blk = &wb[b];
        const int8_t *q = ab[b].qs;
        int32_t total = 0;
        for (int half = 0; half < QK_K / 16; half++) {
            const int s = (blk->scales[half / 2] >> (4 * (half % 2))) & 0x0f;
            int32_t group = 0;
            for (int l = 0; l < 2; l++, q += 8) {
                const int k = 2 * half + l;
                const int index = blk->qs[k] | (((blk->qh[k / 4] >> (2 * (k % 4))) & 3) << 8);
                group += signed_point_dot8(quant_iq2s_grid[index], blk->qs[QK_K / 8 + k], q);
            }
            total += (2 * s + 1) * group;
        }
        sum += fp16_to_f32(blk->d) * ab[b].d * (float)total * 0.125f;
    }
    return sum;
}

float cpu_dot_iq3_xxs_scalar(int64_t n, const void *w, const void *a)
{
    const block_iq3_xxs *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *qs = wb[b].qs;
        const int8_t *q = ab[b].qs;
        int32_t total = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            uint32_t aux;
            memcpy(&aux, qs + QK_K / 4 + 4 * ib, sizeof aux);
            int32_t group = 0;
            for (int l = 0; l < 4; l++, q += 8) {
                const unsigned signs = quant_iq2_signs[(aux >> (7 * l)) & 0x7f];
                group += signed_point_dot4(quant_iq3xxs_grid[qs[8 * ib + 2 * l]], signs, q);
                group += signed_point_dot4(quant_iq3xxs_grid[qs[8 * ib + 2 * l + 1]], signs >> 4, q + 4);
            }
            total += (int32_t)(2 * (aux >> 28) + 1) * group;
        }
        sum += fp16_to_f32(wb[b].d) * ab[b].d * (float)total * 0.25f;
    }
    return sum;
}

float cpu_dot_iq3_s_scalar(int64_t n, const void *w, const void *a)
{
    const block_iq3_s *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_iq3_s *blk = &wb[b];
        const int8_t *q = ab[b].qs;
        int32_t total = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int s = (blk->scales[ib / 2] >> (4 * (ib % 2))) & 0x0f;
            int32_t group = 0;
            for (int l = 0; l < 8; l++, q += 4) {
                const int k = 8 * ib + l;
                const int index = blk->qs[k] | (((blk->qh[ib] >> l) & 1) << 8);
                group += signed_point_dot4(quant_iq3s_grid[index], blk->signs[k / 2] >> (4 * (k % 2)), q);
            }
            total += (2 * s + 1) * group;
        }
        sum += fp16_to_f32(blk->d) * ab[b].d * (float)total;
    }
    return sum;
}

/* sum_j (8 grid_j + shift) q_j over the 8 elements of an IQ1 point, shift
 * +1 or -1 (the delta in eighths). */
static int32_t iq1_point_dot(uint64_t point, int shift, const int8_t *q)
{
    int32_t sum = 0;
    for (int j = 0; j < 8; j++)
        sum += (8 * (int)(int8_t)(uint8_t)(point >> (8 * j)) + shift) * q[j];
    return sum;
}

float cpu_dot_iq1_s_scalar(int64_t n, const void *w, const void *a)
{
    const block_iq1_s *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const int8_t *q = ab[b].qs;
        int32_t total = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint16_t qh = wb[b].qh[ib];
            const int shift = qh & 0x8000 ? -1 : 1;
            int32_t group = 0;
            for (int l = 0; l < 4; l++, q += 8)
                group += iq1_point_dot(quant_iq1s_grid[wb[b].qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)], shift,
                                       q);
            total += (2 * ((qh >> 12) & 7) + 1) * group;
        }
        sum += fp16_to_f32(wb[b].d) * ab[b].d * (float)total * 0.125f;
    }
    return sum;
}

float cpu_dot_iq1_m_scalar(int64_t n, const void *w, const void *a)
{
    const block_iq1_m *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_iq1_m *blk = &wb[b];
        uint16_t sc[4];
        memcpy(sc, blk->scales, sizeof sc);
        const int8_t *q = ab[b].qs;
        int32_t total = 0;
        for (int m = 0; m < QK_K / 16; m++) {
            int32_t group = 0;
            for (int l = 0; l < 2; l++, q += 8) {
                const int k = 2 * m + l;
                const int nibble = (blk->qh[k / 2] >> (4 * (k % 2))) & 0x0f;
                group += iq1_point_dot(quant_iq1s_grid[blk->qs[k] | ((nibble & 7) << 8)], nibble & 8 ? -1 : 1, q);
            }
            total += (2 * ((sc[m / 4] >> (3 * (m % 4))) & 7) + 1) * group;
        }
        sum += fp16_to_f32(quant_iq1_m_scale(blk)) * ab[b].d * (float)total * 0.125f;
    }
    return sum;
}

/* sum over 32 elements of values[nibble] q, nibbles as in IQ4_NL/MXFP4
 * (element j low nibble of qs[j], j + 16 high). */
static int32_t nibble_table_dot32(const uint8_t qs[16], const int8_t values[16], const int8_t *q)
{
    int32_t sum = 0;
    for (int j = 0; j < 16; j++)
        sum += values[qs[j] & 0x0f] * q[j] + values[qs[j] >> 4] * q[j + 16];
    return sum;
}

float cpu_dot_iq4_nl_scalar(int64_t n, const void *w, const void *a)
{
    const block_iq4_nl *wb = w;
    const block_q8_0 *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK4_NL; b++)
        sum += fp16_to_f32(wb[b].d) * fp16_to_f32(ab[b].d) *
               (float)nibble_table_dot32(wb[b].qs, quant_iq4nl_values, ab[b].qs);
    return sum;
}

float cpu_dot_mxfp4_scalar(int64_t n, const void *w, const void *a)
{
    const block_mxfp4 *wb = w;
    const block_q8_0 *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_MXFP4; b++)
        sum += quant_e8m0_to_f32_half(wb[b].e) * fp16_to_f32(ab[b].d) *
               (float)nibble_table_dot32(wb[b].qs, quant_mxfp4_values, ab[b].qs);
    return sum;
}

float cpu_dot_iq4_xs_scalar(int64_t n, const void *w, const void *a)
{
    const block_iq4_xs *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_iq4_xs *blk = &wb[b];
        int32_t total = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = quant_iq4_xs_scale(blk, ib);
            total += (ls - 32) * nibble_table_dot32(blk->qs + 16 * ib, quant_iq4nl_values, ab[b].qs + 32 * ib);
        }
        sum += fp16_to_f32(blk->d) * ab[b].d * (float)total;
    }
    return sum;
}

/* The trit in position k of a TQ1_0 byte (see quant_lowbit.c). */
static int tq1_trit(uint8_t packed, int k)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    return ((uint8_t)(packed * pow3[k]) * 3) >> 8;
}

float cpu_dot_tq1_0_scalar(int64_t n, const void *w, const void *a)
{
    const block_tq1_0 *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_tq1_0 *blk = &wb[b];
        const int8_t *q = ab[b].qs;
        int32_t total = 0;
        for (int k = 0; k < 5; k++)
            for (int m = 0; m < 32; m++)
                total += (tq1_trit(blk->qs[m], k) - 1) * q[32 * k + m];
        for (int k = 0; k < 5; k++)
            for (int m = 0; m < 16; m++)
                total += (tq1_trit(blk->qs[32 + m], k) - 1) * q[160 + 16 * k + m];
        for (int k = 0; k < 4; k++)
            for (int m = 0; m < 4; m++)
                total += (tq1_trit(blk->qh[m], k) - 1) * q[240 + 4 * k + m];
        sum += fp16_to_f32(blk->d) * ab[b].d * (float)total;
    }
    return sum;
}

float cpu_dot_tq2_0_scalar(int64_t n, const void *w, const void *a)
{
    const block_tq2_0 *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const int8_t *q = ab[b].qs;
        int32_t total = 0;
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    total += (((wb[b].qs[32 * h + m] >> (2 * l)) & 3) - 1) * q[128 * h + 32 * l + m];
        sum += fp16_to_f32(wb[b].d) * ab[b].d * (float)total;
    }
    return sum;
}
