/* Quantizers of the low-bit formats without a grid: IQ4_NL, IQ4_XS, MXFP4,
 * TQ1_0 and TQ2_0.
 *
 * MXFP4, TQ1_0 and TQ2_0 make the same choices as the gguf package's
 * quantizers (byte for byte on finite input; tests/test_quant.c checks it):
 * MXFP4 takes the power of two 2^(floor(log2 amax) - 2) as its scale and the
 * nearest e2m1 value for each element (the first on ties); TQ takes amax as
 * the scale and rounds x / amax half away from zero to -1, 0 or 1.
 *
 * IQ4_NL and IQ4_XS search the scale as the K-quants do: the largest
 * magnitude is mapped near the far end of the non-uniform levels, a few
 * scales around that are tried, each element goes to its nearest level, and
 * the scale is refit by weighted least squares; the trial that explains the
 * most wins, and the elements are matched again at the scale as stored. */
#include <math.h>
#include <string.h>

#include "quant_k.h"
#include "quant_lowbit.h"

/* Index of the IQ4 level nearest to v (the lower one on ties). */
static int iq4_nearest(float v)
{
    const int8_t *values = quant_iq4nl_values;
    if (!(v > (float)values[0])) /* also nan */
        return 0;
    if (v >= (float)values[15])
        return 15;
    int lo = 0, hi = 15; /* values[lo] < v < values[hi] */
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < (float)values[mid])
            hi = mid;
        else
            lo = mid;
    }
    return v - (float)values[lo] <= (float)values[hi] - v ? lo : hi;
}

/* The best scale for n (32) values with weights w; their level indices go to
 * L. Returns 0 (L all zero) for an all-zero group. The scale may be
 * negative: the levels run from -127 to 113, so the sign says which end the
 * largest magnitude uses. */
static float iq4_search_scale(const float *x, const float *w, int n, uint8_t *L)
{
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    memset(L, 0, (size_t)n);
    if (!(amax > 0.0f) || !isfinite(amax))
        return 0.0f;
    float best_merit = -1.0f, scale = 0.0f;
    for (int step = -7; step <= 7; step++) {
        const float inv = ((float)quant_iq4nl_values[0] + (float)step) / max;
        float sum_qx = 0.0f, sum_q2 = 0.0f;
        uint8_t trial[32];
        for (int i = 0; i < n; i++) {
            trial[i] = (uint8_t)iq4_nearest(x[i] * inv);
            const float q = (float)quant_iq4nl_values[trial[i]];
            sum_qx += w[i] * q * x[i];
            sum_q2 += w[i] * q * q;
        }
        if (sum_q2 > 0.0f && sum_qx * sum_qx / sum_q2 > best_merit) {
            best_merit = sum_qx * sum_qx / sum_q2;
            scale = sum_qx / sum_q2;
            memcpy(L, trial, (size_t)n);
        }
    }
    return scale;
}

/* Weights: the block's mean square plus x^2 (as the K-quants: large values
 * matter more, none is ignored). */
static void iq4_weights(const float *x, int n, float *w)
{
    float sum_x2 = 0.0f;
    for (int i = 0; i < n; i++)
        sum_x2 += x[i] * x[i];
    for (int i = 0; i < n; i++)
        w[i] = sum_x2 / (float)n + x[i] * x[i];
}

/* Level indices of 32 values at the stored scale d (all 0 when d is 0). */
static void iq4_requantize(const float *x, float d, uint8_t *L)
{
    const float inv = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; i++)
        L[i] = inv != 0.0f ? (uint8_t)iq4_nearest(x[i] * inv) : 0;
}

/* Element j in the low nibble of qs[j], element j + 16 in the high one. */
static void pack_nibbles_32(const uint8_t *L, uint8_t qs[16])
{
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

void quantize_blocks_iq4_nl(const float *x, block_iq4_nl *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK4_NL) {
        float w[QK4_NL];
        uint8_t L[QK4_NL];
        iq4_weights(x, QK4_NL, w);
        blocks[b].d = f32_to_fp16(iq4_search_scale(x, w, QK4_NL, L));
        iq4_requantize(x, fp16_to_f32(blocks[b].d), L);
        pack_nibbles_32(L, blocks[b].qs);
    }
}

void quantize_blocks_iq4_xs(const float *x, block_iq4_xs *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        block_iq4_xs *blk = &blocks[b];
        float w[QK_K], scales[QK_K / 32];
        uint8_t L[QK_K];
        float max_scale = 0.0f, amax_scale = 0.0f;
        iq4_weights(x, QK_K, w);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            scales[ib] = iq4_search_scale(x + 32 * ib, w + 32 * ib, 32, L + 32 * ib);
            if (fabsf(scales[ib]) > amax_scale) {
                amax_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        memset(blk, 0, sizeof *blk);
        /* 6-bit sub-scales ls - 32 in [-32, 31]: the largest maps to -32 */
        const float d = max_scale / -32.0f;
        blk->d = f32_to_fp16(d);
        const float stored_d = fp16_to_f32(blk->d);
        const float inv_d = stored_d != 0.0f ? 1.0f / stored_d : 0.0f;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            int ls = quant_nearest_int(inv_d * scales[ib]);
            ls = (ls < -32 ? -32 : ls > 31 ? 31 : ls) + 32;
            blk->scales_l[ib / 2] |= (uint8_t)((ls & 0x0f) << (4 * (ib % 2)));
            blk->scales_h |= (uint16_t)((ls >> 4) << (2 * ib));
            iq4_requantize(x + 32 * ib, stored_d * (float)(ls - 32), L + 32 * ib);
            pack_nibbles_32(L + 32 * ib, blk->qs + 16 * ib);
        }
    }
}

void quantize_blocks_mxfp4(const float *x, block_mxfp4 *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_MXFP4) {
        float amax = 0.0f;
        for (int j = 0; j < QK_MXFP4; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        int e = 0;
        if (amax > 0.0f) {
            /* floor(log2 amax) - 2 + 127, clamped to a byte (only subnormal
             * or non-finite blocks reach the ends) */
            const float exponent = floorf(log2f(amax)) - 2.0f + 127.0f;
            e = !(exponent > 0.0f) ? 0 : exponent >= 255.0f ? 255 : (int)exponent;
        }
        blocks[b].e = (uint8_t)e;
        const float d = quant_e8m0_to_f32_half((uint8_t)e);
        uint8_t L[QK_MXFP4];
        for (int j = 0; j < QK_MXFP4; j++) {
            int best = 0;
            float best_error = fabsf(d * (float)quant_mxfp4_values[0] - x[j]);
            for (int k = 1; k < 16; k++) {
                const float error = fabsf(d * (float)quant_mxfp4_values[k] - x[j]);
                if (error < best_error) {
                    best_error = error;
                    best = k;
                }
            }
            L[j] = (uint8_t)best;
        }
        pack_nibbles_32(L, blocks[b].qs);
    }
}

/* Ternary codes 0, 1, 2 (for -1, 0, 1) of 256 values scaled by 1 / amax,
 * rounded half away from zero; returns amax. */
static float ternary_codes(const float *x, uint8_t codes[QK_K])
{
    float amax = 0.0f;
    for (int i = 0; i < QK_K; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    const float inv = amax != 0.0f ? 1.0f / amax : 0.0f;
    for (int i = 0; i < QK_K; i++) {
        const float r = roundf(x[i] * inv);
        codes[i] = (uint8_t)(r >= 1.0f ? 2 : r <= -1.0f ? 0 : 1); /* nan: 0 -> code 1 */
    }
    return amax;
}

void quantize_blocks_tq2_0(const float *x, block_tq2_0 *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        uint8_t codes[QK_K];
        blocks[b].d = f32_to_fp16(ternary_codes(x, codes));
        memset(blocks[b].qs, 0, sizeof blocks[b].qs);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    blocks[b].qs[32 * h + m] |= (uint8_t)(codes[128 * h + 32 * l + m] << (2 * l));
    }
}

/* n trits (first at the highest power: 81, 27, ...) as the byte
 * ceil(value * 256 / 243), which tq1_trit in quant_lowbit.c reads back. */
static uint8_t pack_trits(const uint8_t *codes, int stride, int n)
{
    int value = 0;
    for (int k = 0; k < 5; k++)
        value = 3 * value + (k < n ? codes[k * stride] : 0);
    return (uint8_t)((value * 256 + 242) / 243);
}

void quantize_blocks_tq1_0(const float *x, block_tq1_0 *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        uint8_t codes[QK_K];
        blocks[b].d = f32_to_fp16(ternary_codes(x, codes));
        for (int m = 0; m < 32; m++)
            blocks[b].qs[m] = pack_trits(codes + m, 32, 5);
        for (int m = 0; m < 16; m++)
            blocks[b].qs[32 + m] = pack_trits(codes + 160 + m, 16, 5);
        for (int m = 0; m < 4; m++)
            blocks[b].qh[m] = pack_trits(codes + 240 + m, 4, 4);
    }
}
