/* Reference (scalar) quantizers of the K-quants.
 *
 * The scheme follows ggml's reference quantizers (no importance matrix):
 * 1. for each sub-block, search for the best real-valued scale (and, for the
 *    formats with a min, the best min) by trying a few candidate scales around
 *    max/nmax, quantizing with each, and solving the (weighted) least-squares
 *    problem for scale and min given those integer levels;
 * 2. quantize the sub-block scales (and mins) themselves: to 4 bits (Q2_K),
 *    6 bits (Q3_K, Q4_K, Q5_K) or 8 bits (Q6_K), relative to one fp16
 *    super-block scale;
 * 3. requantize every element with the scale it will actually be decoded
 *    with (the fp16 super scale times the integer sub-scale), so the stored
 *    levels are the best for the stored scales;
 * 4. pack the levels in the GGUF bit layout (see quant_k.c). */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "quant.h"
#include "quant_k.h"

/* Below this, a group is treated as all zeros. */
#define GROUP_EPS 1e-15f

int quant_nearest_int(float x)
{
    return (int)lrintf(x);
}

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Symmetric quantization (Q6_K) of n values to levels in [-nmax, nmax - 1],
 * written to L as level + nmax. Weighted by x^2 (large values matter most). Tries the
 * scales max / -(nmax + 0.1 k) for k = -9..9 and keeps the one with the
 * largest sum(w x l)^2 / sum(w l^2) (which is the smallest weighted squared
 * error once the scale is refit by least squares). Returns the refit scale;
 * 0 for an all-zero group. */
static float make_symmetric_quants(int n, int nmax, const float *x, uint8_t *L)
{
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    /* candidate 0 is the plain max / -nmax; its refit scale and its figure
     * of merit best = sumlx^2 / suml2 are the ones to beat */
    float scale = 0.0f, best = 0.0f;
    for (int k = 0; k <= 18; k++) {
        const int step = k == 0 ? 0 : (k <= 9 ? k - 10 : k - 9); /* 0, -9..-1, 1..9 */
        const float iscale = -((float)nmax + 0.1f * (float)step) / max;
        float sumlx = 0.0f, suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clamp_int(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (k == 0 || (suml2 > 0.0f && sumlx * sumlx > best * suml2)) {
            for (int i = 0; i < n; i++)
                L[i] = (uint8_t)(nmax + clamp_int(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = suml2 > 0.0f ? sumlx / suml2 : 0.0f;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric quantization for Q3_K: levels in [-nmax, nmax - 1], written to
 * L as level + nmax. Starts from the scale max / -nmax, then refines the
 * levels one element at a time (up to 5 passes): each element is moved to
 * the level that best fits the scale implied by all the others, and the move
 * is kept when it raises sum(w x l)^2 / sum(w l^2) (w = x^2), i.e. lowers the
 * weighted squared error of the least-squares scale. Returns that scale.
 * As in the reference, a move is only considered while the partial sum
 * sum(w x l) is positive, which holds when the largest-magnitude element is
 * negative; with a positive one the starting levels are kept. Matching this
 * keeps our bytes equal to the reference's. */
static float make_q3_levels(int n, int nmax, const float *x, uint8_t *L)
{
    int levels[QK_K / 16];
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax == 0.0f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = -(float)nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        levels[i] = clamp_int(quant_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)levels[i];
        suml2 += w * (float)levels[i] * (float)levels[i];
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)levels[i];
            if (!(slx > 0.0f))
                continue;
            float sl2 = suml2 - w * (float)levels[i] * (float)levels[i];
            const int new_l = clamp_int(quant_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (new_l == levels[i])
                continue;
            slx += w * x[i] * (float)new_l;
            sl2 += w * (float)new_l * (float)new_l;
            if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                levels[i] = new_l;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (uint8_t)(levels[i] + nmax);
    return sumlx / suml2;
}

/* Asymmetric quantization of n values to levels in [0, nmax] with
 * x ~ scale * L - min_out (min_out >= 0, so the group's zero is representable).
 * weights say how much each element's error counts; the error is weighted
 * absolute (use_mad) or weighted squared. Tries iscale = (nmax + rmin +
 * rdelta k) / (max - min) for k = 0..nstep, refitting scale and min by
 * weighted least squares for each set of levels, and keeps the best.
 * Returns the scale and stores the (positive) min in *min_out. */
static float make_affine_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                                float *min_out, float rmin, float rdelta, int nstep, bool use_mad)
{
    uint8_t Laux[32];
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = weights[0] * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0.0f)
        min = 0.0f;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *min_out = -min;
        return 0.0f;
    }

    float iscale = (float)nmax / (max - min);
    float scale = 1.0f / iscale;
    float best_error = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = clamp_int(quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
        L[i] = (uint8_t)l;
        const float diff = scale * (float)l + min - x[i];
        best_error += weights[i] * (use_mad ? fabsf(diff) : diff * diff);
    }

    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * (float)k + (float)nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = clamp_int(quant_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        /* normal equations of min over (scale, m) of sum w (scale l + m - x)^2 */
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det <= 0.0f)
            continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (this_min > 0.0f) { /* the offset must not be positive: refit the scale alone */
            this_min = 0.0f;
            this_scale = sum_xl / sum_l2;
        }
        float error = 0.0f;
        for (int i = 0; i < n; i++) {
            const float diff = this_scale * (float)Laux[i] + this_min - x[i];
            error += weights[i] * (use_mad ? fabsf(diff) : diff * diff);
        }
        if (error < best_error) {
            memcpy(L, Laux, (size_t)n);
            best_error = error;
            scale = this_scale;
            min = this_min;
        }
    }
    *min_out = -min;
    return scale;
}

/* Packs 256 two-bit levels the Q2_K/Q3_K way: in each 128-element half, byte
 * l holds elements l, l + 32, l + 64, l + 96 at bits 0, 2, 4, 6. */
static void pack_2bit(const uint8_t *L, uint8_t qs[QK_K / 4])
{
    for (int half = 0; half < 2; half++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *e = L + 128 * half + l;
            qs[32 * half + l] = (uint8_t)((e[0] & 3) | ((e[32] & 3) << 2) | ((e[64] & 3) << 4) | ((e[96] & 3) << 6));
        }
}

void quantize_blocks_q2_K(const float *x, block_q2_K *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        block_q2_K *blk = &blocks[b];
        uint8_t L[QK_K];
        float weights[16], scales[16], mins[16];
        float max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++)
                weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_affine_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
            max_scale = fmaxf(max_scale, scales[j]);
            max_min = fmaxf(max_min, mins[j]);
        }
        /* sub-scales and sub-mins to 4 bits each */
        memset(blk->scales, 0, sizeof blk->scales);
        blk->d = 0;
        blk->dmin = 0;
        if (max_scale > 0.0f) {
            const float iscale = 15.0f / max_scale;
            for (int j = 0; j < 16; j++)
                blk->scales[j] = (uint8_t)clamp_int(quant_nearest_int(iscale * scales[j]), 0, 15);
            blk->d = f32_to_fp16(max_scale / 15.0f);
        }
        if (max_min > 0.0f) {
            const float iscale = 15.0f / max_min;
            for (int j = 0; j < 16; j++)
                blk->scales[j] |= (uint8_t)(clamp_int(quant_nearest_int(iscale * mins[j]), 0, 15) << 4);
            blk->dmin = f32_to_fp16(max_min / 15.0f);
        }
        /* requantize with the scales as stored */
        for (int j = 0; j < 16; j++) {
            const float d = fp16_to_f32(blk->d) * (float)(blk->scales[j] & 0x0f);
            if (d == 0.0f)
                continue;
            const float dm = fp16_to_f32(blk->dmin) * (float)(blk->scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)clamp_int(quant_nearest_int((x[16 * j + l] + dm) / d), 0, 3);
        }
        pack_2bit(L, blk->qs);
    }
}

void quantize_blocks_q3_K(const float *x, block_q3_K *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        block_q3_K *blk = &blocks[b];
        uint8_t L[QK_K];
        float scales[16];
        float max_scale = 0.0f, amax = 0.0f;
        for (int j = 0; j < 16; j++) {
            scales[j] = make_q3_levels(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        /* signed sub-scales to 6 bits (offset 32): low nibbles in bytes 0..7,
         * top two bits in bytes 8..11 */
        memset(blk->scales, 0, sizeof blk->scales);
        blk->d = 0;
        if (max_scale != 0.0f) {
            const float iscale = -32.0f / max_scale;
            for (int j = 0; j < 16; j++) {
                const int l = clamp_int(quant_nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8)
                    blk->scales[j] = (uint8_t)(l & 0x0f);
                else
                    blk->scales[j - 8] |= (uint8_t)((l & 0x0f) << 4);
                blk->scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            blk->d = f32_to_fp16(1.0f / iscale);
        }
        /* requantize with the stored scales, to levels -4..3 kept as 0..7 */
        for (int j = 0; j < 16; j++) {
            int sc = j < 8 ? (blk->scales[j] & 0x0f) : (blk->scales[j - 8] >> 4);
            sc = (sc | (((blk->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
            const float d = fp16_to_f32(blk->d) * (float)sc;
            if (d == 0.0f)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)(clamp_int(quant_nearest_int(x[16 * j + l] / d), -4, 3) + 4);
        }
        /* the high bit of element 32k + l (within each 128 half: bit 4 half + k)
         * goes to hmask[l]; a set bit means "no -4" */
        memset(blk->hmask, 0, sizeof blk->hmask);
        for (int i = 0; i < QK_K; i++) {
            if (L[i] > 3) {
                blk->hmask[i % 32] |= (uint8_t)(1u << (i / 32));
                L[i] -= 4;
            }
        }
        pack_2bit(L, blk->qs);
    }
}

/* Weights of the Q4_K/Q5_K scale search for one 32-element sub-block:
 * rms(x) + |x_i|, so large elements matter more but none are ignored. */
static void k_weights(const float *x, float weights[32])
{
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; l++)
        sum_x2 += x[l] * x[l];
    const float av_x = sqrtf(sum_x2 / 32.0f);
    for (int l = 0; l < 32; l++)
        weights[l] = av_x + fabsf(x[l]);
}

/* Stores 8 six-bit scales and mins in the 12-byte Q4_K/Q5_K layout (see
 * k_scale_min in quant_k.c). */
static void pack_k_scales(const int ls[8], const int lm[8], uint8_t out[K_SCALE_SIZE])
{
    memset(out, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            out[j] |= (uint8_t)ls[j];
            out[j + 4] |= (uint8_t)lm[j];
        } else {
            out[j + 4] = (uint8_t)((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
            out[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            out[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

static void unpack_k_scale(const uint8_t s[K_SCALE_SIZE], int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Shared by Q4_K (nmax 15) and Q5_K (nmax 31): chooses scales, mins and
 * levels L[256] for one super-block and fills d, dmin and the packed scales. */
static void quantize_k_affine(const float *x, int nmax, float rmin, int nstep, uint16_t *out_d, uint16_t *out_dmin,
                              uint8_t packed[K_SCALE_SIZE], uint8_t L[QK_K])
{
    float weights[32], scales[8], mins[8];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        k_weights(x + 32 * j, weights);
        scales[j] = make_affine_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
        max_scale = fmaxf(max_scale, scales[j]);
        max_min = fmaxf(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    int ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = clamp_int(quant_nearest_int(inv_scale * scales[j]), 0, 63);
        lm[j] = clamp_int(quant_nearest_int(inv_min * mins[j]), 0, 63);
    }
    pack_k_scales(ls, lm, packed);
    *out_d = f32_to_fp16(max_scale / 63.0f);
    *out_dmin = f32_to_fp16(max_min / 63.0f);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        unpack_k_scale(packed, j, &sc, &m);
        const float d = fp16_to_f32(*out_d) * (float)sc;
        if (d == 0.0f)
            continue;
        const float dm = fp16_to_f32(*out_dmin) * (float)m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clamp_int(quant_nearest_int((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

void quantize_blocks_q4_K(const float *x, block_q4_K *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        block_q4_K *blk = &blocks[b];
        uint8_t L[QK_K];
        quantize_k_affine(x, 15, -1.0f, 20, &blk->d, &blk->dmin, blk->scales, L);
        /* each 64 elements: first 32 in the low nibbles, next 32 in the high */
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++)
                blk->qs[32 * k + l] = (uint8_t)(L[64 * k + l] | (L[64 * k + 32 + l] << 4));
    }
}

void quantize_blocks_q5_K(const float *x, block_q5_K *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        block_q5_K *blk = &blocks[b];
        uint8_t L[QK_K];
        quantize_k_affine(x, 31, -0.5f, 15, &blk->d, &blk->dmin, blk->scales, L);
        memset(blk->qh, 0, sizeof blk->qh);
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                const int lo = L[64 * k + l], hi = L[64 * k + 32 + l];
                blk->qs[32 * k + l] = (uint8_t)((lo & 0x0f) | ((hi & 0x0f) << 4));
                blk->qh[l] |= (uint8_t)(((lo >> 4) << (2 * k)) | ((hi >> 4) << (2 * k + 1)));
            }
    }
}

void quantize_blocks_q6_K(const float *x, block_q6_K *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        block_q6_K *blk = &blocks[b];
        uint8_t L[QK_K];
        float scales[16];
        float max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int j = 0; j < 16; j++) {
            scales[j] = make_symmetric_quants(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        if (max_abs_scale < GROUP_EPS) {
            memset(blk, 0, sizeof *blk);
            continue;
        }
        /* signed 8-bit sub-scales; the largest maps to -128 */
        const float iscale = -128.0f / max_scale;
        blk->d = f32_to_fp16(1.0f / iscale);
        for (int j = 0; j < 16; j++)
            blk->scales[j] = (int8_t)clamp_int(quant_nearest_int(iscale * scales[j]), -128, 127);
        for (int j = 0; j < 16; j++) {
            const float d = fp16_to_f32(blk->d) * (float)blk->scales[j];
            if (d == 0.0f)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)(clamp_int(quant_nearest_int(x[16 * j + l] / d), -32, 31) + 32);
        }
        /* element 32k + l of each 128 half: low nibble to ql[l + 32 (k % 2)]
         * (high nibble when k >= 2), top two bits to bits 2k of qh[l] */
        for (int half = 0; half < 2; half++) {
            const uint8_t *e = L + 128 * half;
            uint8_t *ql = blk->ql + 64 * half;
            uint8_t *qh = blk->qh + 32 * half;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((e[l] & 0x0f) | ((e[l + 64] & 0x0f) << 4));
                ql[l + 32] = (uint8_t)((e[l + 32] & 0x0f) | ((e[l + 96] & 0x0f) << 4));
                qh[l] = (uint8_t)((e[l] >> 4) | ((e[l + 32] >> 4) << 2) | ((e[l + 64] >> 4) << 4) |
                                  ((e[l + 96] >> 4) << 6));
            }
        }
    }
}

void quantize_blocks_q8_K(const float *x, block_q8_K *blocks, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        block_q8_K *blk = &blocks[b];
        float max = 0.0f, amax = 0.0f;
        for (int l = 0; l < QK_K; l++) {
            if (fabsf(x[l]) > amax) {
                amax = fabsf(x[l]);
                max = x[l];
            }
        }
        if (amax == 0.0f) {
            memset(blk, 0, sizeof *blk);
            continue;
        }
        /* the largest magnitude maps to -127 so that -128 is never produced */
        const float iscale = -127.0f / max;
        for (int l = 0; l < QK_K; l++)
            blk->qs[l] = (int8_t)clamp_int(quant_nearest_int(iscale * x[l]), -127, 127);
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += blk->qs[16 * g + l];
            blk->bsums[g] = (int16_t)sum;
        }
        blk->d = 1.0f / iscale;
    }
}
