/* Quantizers of the grid i-quants: IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S,
 * IQ1_S and IQ1_M (no importance matrix).
 *
 * One scheme for all of them, per 256-element super-block:
 * 1. Each scale group (32 elements, or 16 where the format stores a scale per
 *    16) gets its targets: the magnitudes |x| with the signs stored apart, or
 *    x itself for IQ1, whose grid is signed. Where a format stores 7 sign bits
 *    per 8 elements (the eighth implied: an even count of minus signs), an odd
 *    count is made even by giving the least important element the wrong sign;
 *    its target becomes -|x|, which the search then meets as well as it can.
 * 2. For a range of trial scales, every 8 (or 4) targets are divided by the
 *    scale and matched to the nearest grid point (quant_iq_search.c), then
 *    the scale is refit by weighted least squares over the group; the trial
 *    that explains the most of the group wins. IQ1's shift (+-1/8 of a step)
 *    is tried both ways, per group (IQ1_S) or per point (IQ1_M).
 * 3. The group scales become small integer codes of one fp16 super-block
 *    scale; each group is matched again at its stored scale, trying the
 *    nearest code and its two neighbours, and keeps the one with the least
 *    error.
 * 4. The indices, signs, codes and shifts are packed in the GGUF layout (see
 *    the dequantizers in quant_lowbit.c for each bit's place).
 *
 * Elements are weighted by sigma^2 + x^2 (sigma^2: the block's mean square):
 * large weights matter more, none is ignored. */
#include <math.h>
#include <string.h>

#include "quant_iq_search.h"
#include "quant_lowbit.h"

#define MAX_GROUP 32
#define MAX_POINTS 8 /* points of one group: 32 / 4 */

typedef enum sign_mode {
    SIGNS_NONE, /* signed grid (IQ1) */
    SIGNS_FREE, /* one stored bit per element */
    SIGNS_EVEN, /* 7 bits per 8 elements, an even count of minus signs */
} sign_mode;

typedef enum shift_mode { SHIFT_NONE, SHIFT_PER_GROUP, SHIFT_PER_POINT } shift_mode;

typedef enum scale_kind {
    SCALE_QUARTER_HALF, /* d (0.5 + s) / 4: IQ2 */
    SCALE_HALF_HALF,    /* d (0.5 + s) / 2: IQ3_XXS */
    SCALE_ODD,          /* d (1 + 2 s): IQ3_S, IQ1 */
} scale_kind;

typedef struct iq_format {
    iq_grid_id grid;
    int group;          /* elements per stored scale */
    sign_mode signs;
    shift_mode shift;
    scale_kind scale;
    int max_code;       /* scale codes 0..max_code */
    /* trial scales map the group's largest target to factor * the top level,
     * factor from lo to hi in n_trials steps */
    float trial_lo, trial_hi;
    int n_trials;
} iq_format;

static const iq_format format_iq2_xxs = {IQ_GRID_IQ2XXS, 32, SIGNS_EVEN, SHIFT_NONE, SCALE_QUARTER_HALF, 15,
                                         0.7f, 1.5f, 17};
static const iq_format format_iq2_xs = {IQ_GRID_IQ2XS, 16, SIGNS_EVEN, SHIFT_NONE, SCALE_QUARTER_HALF, 15,
                                        0.7f, 1.5f, 17};
static const iq_format format_iq2_s = {IQ_GRID_IQ2S, 16, SIGNS_FREE, SHIFT_NONE, SCALE_QUARTER_HALF, 15,
                                       0.7f, 1.5f, 17};
static const iq_format format_iq3_xxs = {IQ_GRID_IQ3XXS, 32, SIGNS_EVEN, SHIFT_NONE, SCALE_HALF_HALF, 15,
                                         0.7f, 1.4f, 15};
static const iq_format format_iq3_s = {IQ_GRID_IQ3S, 32, SIGNS_FREE, SHIFT_NONE, SCALE_ODD, 15, 0.7f, 1.4f, 15};
static const iq_format format_iq1_s = {IQ_GRID_IQ1S, 32, SIGNS_NONE, SHIFT_PER_GROUP, SCALE_ODD, 7,
                                       0.8f, 2.4f, 17};
static const iq_format format_iq1_m = {IQ_GRID_IQ1S, 16, SIGNS_NONE, SHIFT_PER_POINT, SCALE_ODD, 7,
                                       0.8f, 2.4f, 17};

/* What one scale group ends up as. */
typedef struct group_fit {
    uint16_t index[MAX_POINTS];
    int8_t shift_sign[MAX_POINTS]; /* IQ1: the point's shift is shift_sign / 8 */
    int code;
    float scale;
} group_fit;

/* A whole super-block: the shared fp16 scale, each group's fit and the sign
 * bit of every element (set: stored negative). */
typedef struct superblock_fit {
    uint16_t d;
    group_fit groups[QK_K / 16];
    uint8_t sign_bits[QK_K / 8];
} superblock_fit;

static float code_multiplier(scale_kind kind, int s)
{
    switch (kind) {
    case SCALE_QUARTER_HALF: return (0.5f + (float)s) * 0.25f;
    case SCALE_HALF_HALF: return (0.5f + (float)s) * 0.5f;
    case SCALE_ODD: break;
    }
    return (float)(1 + 2 * s);
}

/* Targets and sign bits of n elements (a multiple of 8) starting at element
 * first of the super-block. */
static void make_targets(const iq_format *f, const float *x, const float *w, int n, int first, float *t,
                         uint8_t *sign_bits)
{
    for (int i = 0; i < n; i++) {
        const int e = first + i;
        if (f->signs == SIGNS_NONE) {
            t[i] = x[i];
            continue;
        }
        t[i] = fabsf(x[i]);
        if (x[i] < 0.0f)
            sign_bits[e / 8] |= (uint8_t)(1u << (e % 8));
    }
    if (f->signs != SIGNS_EVEN)
        return;
    for (int k = 0; k < n; k += 8) {
        const int byte = (first + k) / 8;
        int ones = 0;
        for (int j = 0; j < 8; j++)
            ones += (sign_bits[byte] >> j) & 1;
        if (ones % 2 == 0)
            continue;
        int least = 0;
        for (int j = 1; j < 8; j++)
            if (w[k + j] * t[k + j] * t[k + j] < w[k + least] * t[k + least] * t[k + least])
                least = j;
        sign_bits[byte] ^= (uint8_t)(1u << least);
        t[k + least] = -t[k + least];
    }
}

/* Matches the n targets, divided by scale (times inv_scale), to grid points;
 * returns sum w t p and sum w p^2 (p: the point plus its shift, grid units). */
static void match_points(const iq_format *f, const iq_grid *grid, const float *t, const float *w, int n,
                         float inv_scale, int negative_group_shift, group_fit *fit, float *out_tp, float *out_pp)
{
    float sum_tp = 0.0f, sum_pp = 0.0f, scaled[8];
    for (int k = 0; k < n / grid->width; k++) {
        const float *tk = t + k * grid->width, *wk = w + k * grid->width;
        for (int j = 0; j < grid->width; j++)
            scaled[j] = tk[j] * inv_scale;
        float error = 0.0f, shift = 0.0f;
        int index;
        if (f->shift == SHIFT_NONE) {
            index = iq_grid_nearest(grid, scaled, wk, 0.0f, &error);
        } else if (f->shift == SHIFT_PER_GROUP) {
            shift = negative_group_shift ? -IQ1_DELTA : IQ1_DELTA;
            index = iq_grid_nearest(grid, scaled, wk, shift, &error);
        } else {
            float error_minus;
            index = iq_grid_nearest(grid, scaled, wk, IQ1_DELTA, &error);
            const int index_minus = iq_grid_nearest(grid, scaled, wk, -IQ1_DELTA, &error_minus);
            shift = IQ1_DELTA;
            if (error_minus < error) {
                index = index_minus;
                shift = -IQ1_DELTA;
            }
        }
        fit->index[k] = (uint16_t)index;
        fit->shift_sign[k] = (int8_t)(shift < 0.0f ? -1 : shift > 0.0f ? 1 : 0);
        const float *coord = grid->coords + index * grid->width;
        for (int j = 0; j < grid->width; j++) {
            const float p = coord[j] + shift;
            sum_tp += wk[j] * tk[j] * p;
            sum_pp += wk[j] * p * p;
        }
    }
    *out_tp = sum_tp;
    *out_pp = sum_pp;
}

/* The best real-valued scale of one group and its points (step 2). */
static void search_group(const iq_format *f, const iq_grid *grid, const float *t, const float *w, int n,
                         group_fit *out)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(t[i]));
    memset(out, 0, sizeof *out);
    if (!(amax > 0.0f) || !isfinite(amax))
        return; /* scale 0: the points do not matter */
    const float top = grid->levels[grid->n_levels - 1];
    float best_merit = -1.0f;
    const int n_shifts = f->shift == SHIFT_PER_GROUP ? 2 : 1;
    for (int negative = 0; negative < n_shifts; negative++) {
        /* the trial range, then the largest target put on each positive
         * level in turn: groups of nearly equal magnitudes are often best
         * served by a point of low levels, which scales near the top never
         * reach (the grids are sparse) */
        for (int k = 0; k < f->n_trials + grid->n_levels; k++) {
            float inv_scale;
            if (k < f->n_trials) {
                const float step = (f->trial_hi - f->trial_lo) / (float)(f->n_trials - 1);
                inv_scale = (f->trial_lo + step * (float)k) * top / amax;
            }
            else if (grid->levels[k - f->n_trials] > 0.0f)
                inv_scale = grid->levels[k - f->n_trials] / amax;
            else
                continue;
            group_fit trial;
            float sum_tp, sum_pp;
            match_points(f, grid, t, w, n, inv_scale, negative, &trial, &sum_tp, &sum_pp);
            if (!(sum_pp > 0.0f) || !(sum_tp > 0.0f))
                continue;
            const float merit = sum_tp * sum_tp / sum_pp;
            if (merit > best_merit) {
                best_merit = merit;
                *out = trial;
                out->scale = sum_tp / sum_pp;
            }
        }
    }
}

/* Weighted squared error of the group at scale (x units) with its points. */
static float group_error(const iq_grid *grid, const float *t, const float *w, int n, float scale, const group_fit *fit)
{
    float error = 0.0f;
    for (int k = 0; k < n / grid->width; k++) {
        const float *coord = grid->coords + fit->index[k] * grid->width;
        const float shift = (float)fit->shift_sign[k] * IQ1_DELTA;
        for (int j = 0; j < grid->width; j++) {
            const float diff = t[k * grid->width + j] - scale * (coord[j] + shift);
            error += w[k * grid->width + j] * diff * diff;
        }
    }
    return error;
}

/* Steps 1-3 for one super-block. */
static void fit_superblock(const iq_format *f, const iq_grid *grid, const float *x, superblock_fit *out)
{
    float w[QK_K], t[QK_K];
    float sum_x2 = 0.0f;
    for (int i = 0; i < QK_K; i++)
        sum_x2 += x[i] * x[i];
    const float sigma2 = sum_x2 / QK_K;
    for (int i = 0; i < QK_K; i++)
        w[i] = sigma2 + x[i] * x[i];
    memset(out, 0, sizeof *out);
    const int n_groups = QK_K / f->group;
    float max_scale = 0.0f;
    for (int g = 0; g < n_groups; g++) {
        const int first = g * f->group;
        make_targets(f, x + first, w + first, f->group, first, t + first, out->sign_bits);
        search_group(f, grid, t + first, w + first, f->group, &out->groups[g]);
        max_scale = fmaxf(max_scale, out->groups[g].scale);
    }
    const float d = max_scale / code_multiplier(f->scale, f->max_code);
    if (!(d > 0.0f) || !isfinite(d))
        return; /* d = 0: the block decodes to zeros */
    out->d = f32_to_fp16(d);
    const float stored_d = fp16_to_f32(out->d);
    if (!(stored_d > 0.0f))
        return;
    for (int g = 0; g < n_groups; g++) {
        const int first = g * f->group;
        group_fit *fit = &out->groups[g];
        /* the nearest code, then its neighbours, at their stored scales */
        int nearest = 0;
        for (int s = 1; s <= f->max_code; s++)
            if (fabsf(stored_d * code_multiplier(f->scale, s) - fit->scale) <
                fabsf(stored_d * code_multiplier(f->scale, nearest) - fit->scale))
                nearest = s;
        float best_error = -1.0f;
        group_fit best = *fit;
        for (int s = nearest - 1; s <= nearest + 1; s++) {
            if (s < 0 || s > f->max_code)
                continue;
            const float scale = stored_d * code_multiplier(f->scale, s);
            const int n_shifts = f->shift == SHIFT_PER_GROUP ? 2 : 1;
            for (int negative = 0; negative < n_shifts; negative++) {
                group_fit trial;
                float sum_tp, sum_pp;
                match_points(f, grid, t + first, w + first, f->group, 1.0f / scale, negative, &trial, &sum_tp,
                             &sum_pp);
                const float error = group_error(grid, t + first, w + first, f->group, scale, &trial);
                if (best_error < 0.0f || error < best_error) {
                    best_error = error;
                    best = trial;
                    best.code = s;
                    best.scale = scale;
                }
            }
        }
        *fit = best;
    }
}

/* The 7 stored sign bits of elements 8k..8k+7 (the eighth is implied). */
static unsigned signs7(const superblock_fit *fit, int k)
{
    return fit->sign_bits[k] & 0x7f;
}

static void quantize_iq2_xxs(const float *x, block_iq2_xxs *blocks, int64_t n_blocks, const iq_grid *grid)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        superblock_fit fit;
        fit_superblock(&format_iq2_xxs, grid, x, &fit);
        memset(&blocks[b], 0, sizeof blocks[b]);
        blocks[b].d = fit.d;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const group_fit *g = &fit.groups[ib];
            uint32_t indices = 0, aux = (uint32_t)g->code << 28;
            for (int l = 0; l < 4; l++) {
                indices |= (uint32_t)(g->index[l] & 0xff) << (8 * l);
                aux |= signs7(&fit, 4 * ib + l) << (7 * l);
            }
            memcpy(blocks[b].qs + 4 * ib, &indices, sizeof indices);
            memcpy(blocks[b].qs + 4 * ib + 2, &aux, sizeof aux);
        }
    }
}

static void quantize_iq2_xs(const float *x, block_iq2_xs *blocks, int64_t n_blocks, const iq_grid *grid)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        superblock_fit fit;
        fit_superblock(&format_iq2_xs, grid, x, &fit);
        memset(&blocks[b], 0, sizeof blocks[b]);
        blocks[b].d = fit.d;
        for (int half = 0; half < QK_K / 16; half++) {
            const group_fit *g = &fit.groups[half];
            for (int l = 0; l < 2; l++) {
                const int k = 2 * half + l;
                blocks[b].qs[k] = (uint16_t)((g->index[l] & 511) | (signs7(&fit, k) << 9));
            }
            blocks[b].scales[half / 2] |= (uint8_t)(g->code << (4 * (half % 2)));
        }
    }
}

static void quantize_iq2_s(const float *x, block_iq2_s *blocks, int64_t n_blocks, const iq_grid *grid)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        superblock_fit fit;
        fit_superblock(&format_iq2_s, grid, x, &fit);
        block_iq2_s *blk = &blocks[b];
        memset(blk, 0, sizeof *blk);
        blk->d = fit.d;
        for (int half = 0; half < QK_K / 16; half++) {
            const group_fit *g = &fit.groups[half];
            for (int l = 0; l < 2; l++) {
                const int k = 2 * half + l;
                blk->qs[k] = (uint8_t)(g->index[l] & 0xff);
                blk->qh[k / 4] |= (uint8_t)(((g->index[l] >> 8) & 3) << (2 * (k % 4)));
                blk->qs[QK_K / 8 + k] = fit.sign_bits[k];
            }
            blk->scales[half / 2] |= (uint8_t)(g->code << (4 * (half % 2)));
        }
    }
}

static void quantize_iq3_xxs(const float *x, block_iq3_xxs *blocks, int64_t n_blocks, const iq_grid *grid)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        superblock_fit fit;
        fit_superblock(&format_iq3_xxs, grid, x, &fit);
        memset(&blocks[b], 0, sizeof blocks[b]);
        blocks[b].d = fit.d;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const group_fit *g = &fit.groups[ib];
            uint32_t aux = (uint32_t)g->code << 28;
            for (int m = 0; m < 8; m++)
                blocks[b].qs[8 * ib + m] = (uint8_t)g->index[m];
            for (int l = 0; l < 4; l++)
                aux |= signs7(&fit, 4 * ib + l) << (7 * l);
            memcpy(blocks[b].qs + QK_K / 4 + 4 * ib, &aux, sizeof aux);
        }
    }
}

static void quantize_iq3_s(const float *x, block_iq3_s *blocks, int64_t n_blocks, const iq_grid *grid)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        superblock_fit fit;
        fit_superblock(&format_iq3_s, grid, x, &fit);
        block_iq3_s *blk = &blocks[b];
        memset(blk, 0, sizeof *blk);
        blk->d = fit.d;
        memcpy(blk->signs, fit.sign_bits, sizeof blk->signs);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const group_fit *g = &fit.groups[ib];
            for (int m = 0; m < 8; m++) {
                blk->qs[8 * ib + m] = (uint8_t)(g->index[m] & 0xff);
                blk->qh[ib] |= (uint8_t)(((g->index[m] >> 8) & 1) << m);
            }
            blk->scales[ib / 2] |= (uint8_t)(g->code << (4 * (ib % 2)));
        }
    }
}

static void quantize_iq1_s(const float *x, block_iq1_s *blocks, int64_t n_blocks, const iq_grid *grid)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        superblock_fit fit;
        fit_superblock(&format_iq1_s, grid, x, &fit);
        memset(&blocks[b], 0, sizeof blocks[b]);
        blocks[b].d = fit.d;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const group_fit *g = &fit.groups[ib];
            uint16_t qh = (uint16_t)((g->code << 12) | (g->shift_sign[0] < 0 ? 0x8000 : 0));
            for (int l = 0; l < 4; l++) {
                blocks[b].qs[4 * ib + l] = (uint8_t)(g->index[l] & 0xff);
                qh |= (uint16_t)(((g->index[l] >> 8) & 7) << (3 * l));
            }
            blocks[b].qh[ib] = qh;
        }
    }
}

static void quantize_iq1_m(const float *x, block_iq1_m *blocks, int64_t n_blocks, const iq_grid *grid)
{
    for (int64_t b = 0; b < n_blocks; b++, x += QK_K) {
        superblock_fit fit;
        fit_superblock(&format_iq1_m, grid, x, &fit);
        block_iq1_m *blk = &blocks[b];
        memset(blk, 0, sizeof *blk);
        uint16_t words[4] = {0, 0, 0, 0};
        for (int m = 0; m < QK_K / 16; m++) {
            const group_fit *g = &fit.groups[m];
            words[m / 4] |= (uint16_t)(g->code << (3 * (m % 4)));
            for (int l = 0; l < 2; l++) {
                const int k = 2 * m + l;
                blk->qs[k] = (uint8_t)(g->index[l] & 0xff);
                const int nibble = ((g->index[l] >> 8) & 7) | (g->shift_sign[l] < 0 ? 8 : 0);
                blk->qh[k / 2] |= (uint8_t)(nibble << (4 * (k % 2)));
            }
        }
        for (int k = 0; k < 4; k++)
            words[k] |= (uint16_t)(((fit.d >> (4 * k)) & 0x0f) << 12);
        memcpy(blk->scales, words, sizeof words);
    }
}

strata_status quantize_blocks_iq_grid(strata_dtype dtype, const float *x, void *dst, int64_t n_blocks,
                                      strata_error *err)
{
    static const struct { strata_dtype dtype; iq_grid_id grid; } grid_of[] = {
        {DTYPE_IQ2_XXS, IQ_GRID_IQ2XXS}, {DTYPE_IQ2_XS, IQ_GRID_IQ2XS}, {DTYPE_IQ2_S, IQ_GRID_IQ2S},
        {DTYPE_IQ3_XXS, IQ_GRID_IQ3XXS}, {DTYPE_IQ3_S, IQ_GRID_IQ3S},  {DTYPE_IQ1_S, IQ_GRID_IQ1S},
        {DTYPE_IQ1_M, IQ_GRID_IQ1S},
    };
    const iq_grid *grid = NULL;
    for (size_t i = 0; i < sizeof grid_of / sizeof grid_of[0]; i++)
        if (grid_of[i].dtype == dtype && !(grid = iq_grid_get(grid_of[i].grid, err)))
            return STRATA_OUT_OF_MEMORY;
    if (!grid)
        return strata_fail(err, STRATA_UNSUPPORTED, "quantize: %s is not an i-quant grid format", dtype_name(dtype));
    switch (dtype) {
    case DTYPE_IQ2_XXS: quantize_iq2_xxs(x, dst, n_blocks, grid); break;
    case DTYPE_IQ2_XS: quantize_iq2_xs(x, dst, n_blocks, grid); break;
    case DTYPE_IQ2_S: quantize_iq2_s(x, dst, n_blocks, grid); break;
    case DTYPE_IQ3_XXS: quantize_iq3_xxs(x, dst, n_blocks, grid); break;
    case DTYPE_IQ3_S: quantize_iq3_s(x, dst, n_blocks, grid); break;
    case DTYPE_IQ1_S: quantize_iq1_s(x, dst, n_blocks, grid); break;
    case DTYPE_IQ1_M: quantize_iq1_m(x, dst, n_blocks, grid); break;
    default: break;
    }
    return STRATA_OK;
}
