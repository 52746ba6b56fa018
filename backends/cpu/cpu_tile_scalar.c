/* Scalar twins of the tiled matmul kernels (see cpu_tile.h): each weight
 * block is unpacked once per row into small integers and scales, then summed
 * against every token of the tile. The unpacking is the same decomposition
 * the AVX2 kernels use, written plainly, so the two can be compared on the
 * same bytes; both are checked against the dequantizing reference by the op
 * conformance suite. */
#include <string.h>

#include "../../base/quant.h"
#include "../../base/quant_lowbit.h"
#include "cpu_tile.h"

/* --- the token-tile skeleton both block families share --------------------- */

/* Unpacks block b of a weight row into the family's unpacked struct. */
typedef void (*unpack_fn)(const char *row, int64_t b, void *unpacked);
/* One unpacked block against block b of token t of the tile. */
typedef float (*block_dot_fn)(const void *unpacked, const cpu_tile *tile, int64_t b, int t);

/* Each weight row of the tile: each block unpacked once into `unpacked`,
 * then summed against every token; the tokens' sums written at the end.
 * Inlined with constant function arguments, so each family's instance calls
 * its unpacker and block product directly. */
static inline void tile_rows(const cpu_tile *tile, int64_t block_elems, void *unpacked, unpack_fn unpack,
                             block_dot_fn block_dot)
{
    for (int64_t r = 0; r < tile->rows; r++) {
        const char *row = tile->weight + (size_t)r * tile->weight_stride;
        float acc[CPU_TILE_TOKENS] = {0};
        for (int64_t b = 0; b < tile->n / block_elems; b++) {
            unpack(row, b, unpacked);
            for (int t = 0; t < tile->tokens; t++)
                acc[t] += block_dot(unpacked, tile, b, t);
        }
        for (int t = 0; t < tile->tokens; t++)
            tile->dst[t * tile->dst_stride + r] = acc[t];
    }
}

/* --- 32-element blocks against Q8_0 activations ---------------------------- */

/* One block: 32 quants and the block's scale; the weights are d (q -
 * offset), offset 0 for signed quants (Q4_0 and Q5_0 give unsigned ones, as
 * their AVX2 kernels multiply them, and the offset comes out through the
 * activation's block sums). */
typedef struct unpacked_32 {
    int8_t q[32];
    float d;
    int offset;
} unpacked_32;

static void unpack_q8_0(const char *row, int64_t b, void *unpacked)
{
    unpacked_32 *u = unpacked;
    const block_q8_0 *blk = (const block_q8_0 *)row + b;
    memcpy(u->q, blk->qs, 32);
    u->d = fp16_to_f32(blk->d);
    u->offset = 0;
}

static void unpack_q4_0(const char *row, int64_t b, void *unpacked)
{
    unpacked_32 *u = unpacked;
    const block_q4_0 *blk = (const block_q4_0 *)row + b;
    for (int j = 0; j < 16; j++) {
        u->q[j] = (int8_t)(blk->qs[j] & 0x0F);
        u->q[j + 16] = (int8_t)(blk->qs[j] >> 4);
    }
    u->d = fp16_to_f32(blk->d);
    u->offset = 8;
}

/* Q5_0: nibbles plus a fifth bit (bit j of qh for element j), offset 16. */
static void unpack_q5_0(const char *row, int64_t b, void *unpacked)
{
    unpacked_32 *u = unpacked;
    const block_q5_0 *blk = (const block_q5_0 *)row + b;
    uint32_t qh;
    memcpy(&qh, blk->qh, sizeof qh);
    for (int j = 0; j < 16; j++) {
        u->q[j] = (int8_t)((blk->qs[j] & 0x0F) | (int)((qh >> j) & 1u) << 4);
        u->q[j + 16] = (int8_t)((blk->qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4);
    }
    u->d = fp16_to_f32(blk->d);
    u->offset = 16;
}

/* IQ4_NL: each nibble picks one of 16 levels. */
static void unpack_iq4_nl(const char *row, int64_t b, void *unpacked)
{
    unpacked_32 *u = unpacked;
    const block_iq4_nl *blk = (const block_iq4_nl *)row + b;
    for (int j = 0; j < 16; j++) {
        u->q[j] = quant_iq4nl_values[blk->qs[j] & 0x0F];
        u->q[j + 16] = quant_iq4nl_values[blk->qs[j] >> 4];
    }
    u->d = fp16_to_f32(blk->d);
    u->offset = 0;
}

static float block_dot_32(const void *unpacked, const cpu_tile *tile, int64_t b, int t)
{
    const unpacked_32 *u = unpacked;
    const block_q8_0 *a = (const block_q8_0 *)(tile->act + (size_t)t * tile->act_stride) + b;
    int32_t sum = -u->offset * tile->act_sums[b * tile->act_scales_stride + t];
    for (int i = 0; i < 32; i++)
        sum += u->q[i] * a->qs[i];
    return u->d * tile->act_scales[b * tile->act_scales_stride + t] * (float)sum;
}

/* One family: its unpacked block and block product. Not inlined into the
 * public kernels: instances specialized by unpacker came out at 1.6 times the
 * instructions for the K-quants (callgrind). */
static void tile_32(const cpu_tile *tile, unpack_fn unpack)
{
    unpacked_32 unpacked;
    tile_rows(tile, 32, &unpacked, unpack, block_dot_32);
}

/* A public kernel: one family's skeleton with the format's unpacker. */
#define TILE_KERNEL(name, family, unpack)                                                                              \
    void name(const cpu_tile *tile)                                                                                    \
    {                                                                                                                  \
        family(tile, unpack);                                                                                          \
    }

TILE_KERNEL(cpu_tile_q8_0_scalar, tile_32, unpack_q8_0)
TILE_KERNEL(cpu_tile_q4_0_scalar, tile_32, unpack_q4_0)
TILE_KERNEL(cpu_tile_q5_0_scalar, tile_32, unpack_q5_0)
TILE_KERNEL(cpu_tile_iq4_nl_scalar, tile_32, unpack_iq4_nl)

/* --- K-quant super-blocks against Q8_K activations ------------------------- */

/* One super-block of one weight row, ready for integer sums:
 * sum w a = a.d (d sum_g scale_g sum_{i in g} q_i y_i - m sum_g corr_g bsum_g)
 * over the 16 groups of 16 elements, q unsigned and offsets or mins taken
 * out through the activation's group sums (bsum). */
typedef struct k_unpacked {
    uint8_t q[QK_K];
    int16_t scale[QK_K / 16];
    int16_t corr[QK_K / 16];
    float d, m;
} k_unpacked;

/* Scale and min j (0..7) of Q4_K/Q5_K: 6 bits each, packed in 12 bytes. */
static void k_scale_min(int j, const uint8_t packed[K_SCALE_SIZE], int *scale, int *min)
{
    if (j < 4) {
        *scale = packed[j] & 63;
        *min = packed[j + 4] & 63;
    } else {
        *scale = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
        *min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
    }
}

/* Q4_K: w = d scale_j q - dmin min_j over 8 sub-blocks of 32 (q 0..15);
 * each 64-element chunk reads 32 bytes, low nibbles first. */
static void unpack_q4_k(const char *row, int64_t b, void *unpacked)
{
    k_unpacked *u = unpacked;
    const block_q4_K *blk = (const block_q4_K *)row + b;
    for (int chunk = 0; chunk < 4; chunk++)
        for (int l = 0; l < 32; l++) {
            u->q[chunk * 64 + l] = blk->qs[chunk * 32 + l] & 0x0F;
            u->q[chunk * 64 + 32 + l] = blk->qs[chunk * 32 + l] >> 4;
        }
    for (int j = 0; j < 8; j++) {
        int scale, min;
        k_scale_min(j, blk->scales, &scale, &min);
        u->scale[2 * j] = u->scale[2 * j + 1] = (int16_t)scale;
        u->corr[2 * j] = u->corr[2 * j + 1] = (int16_t)min;
    }
    u->d = fp16_to_f32(blk->d);
    u->m = fp16_to_f32(blk->dmin);
}

/* Q6_K: w = d scale_g (q - 32), q 0..63 from 4 low bits in ql and 2 high
 * bits in qh; the 32 comes out as 32 d scale_g bsum_g. */
static void unpack_q6_k(const char *row, int64_t b, void *unpacked)
{
    k_unpacked *u = unpacked;
    const block_q6_K *blk = (const block_q6_K *)row + b;
    for (int half = 0; half < 2; half++) {
        const uint8_t *ql = blk->ql + half * 64;
        const uint8_t *qh = blk->qh + half * 32;
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int low = (ql[32 * (k % 2) + l] >> (4 * (k / 2))) & 0x0F;
                int high = (qh[l] >> (2 * k)) & 3;
                u->q[half * 128 + k * 32 + l] = (uint8_t)(low | (high << 4));
            }
    }
    for (int g = 0; g < QK_K / 16; g++)
        u->scale[g] = u->corr[g] = blk->scales[g];
    u->d = fp16_to_f32(blk->d);
    u->m = 32.0f * u->d;
}

/* Q5_K: Q4_K plus a fifth bit: bit e / 32 of qh[e % 32] adds 16. */
static void unpack_q5_k(const char *row, int64_t b, void *unpacked)
{
    k_unpacked *u = unpacked;
    const block_q5_K *blk = (const block_q5_K *)row + b;
    for (int chunk = 0; chunk < 4; chunk++)
        for (int l = 0; l < 32; l++) {
            u->q[chunk * 64 + l] = blk->qs[chunk * 32 + l] & 0x0F;
            u->q[chunk * 64 + 32 + l] = blk->qs[chunk * 32 + l] >> 4;
        }
    for (int e = 0; e < QK_K; e++)
        if (blk->qh[e % 32] & (1u << (e / 32)))
            u->q[e] = (uint8_t)(u->q[e] + 16);
    for (int j = 0; j < 8; j++) {
        int scale, min;
        k_scale_min(j, blk->scales, &scale, &min);
        u->scale[2 * j] = u->scale[2 * j + 1] = (int16_t)scale;
        u->corr[2 * j] = u->corr[2 * j + 1] = (int16_t)min;
    }
    u->d = fp16_to_f32(blk->d);
    u->m = fp16_to_f32(blk->dmin);
}

/* Q2_K and Q3_K's low 2 bits: each 128-element half reads 32 bytes of qs;
 * quarter k takes bit pair k of them. */
static void unpack_2bit(const uint8_t qs[QK_K / 4], uint8_t q[QK_K])
{
    for (int half = 0; half < 2; half++)
        for (int quarter = 0; quarter < 4; quarter++)
            for (int l = 0; l < 32; l++)
                q[half * 128 + quarter * 32 + l] = (qs[half * 32 + l] >> (2 * quarter)) & 3;
}

/* Q3_K: w = d scale_g (low2 + 4 hbit - 4); the - 4 comes out as m = 4 d
 * with corr = scale. Scales: 6 bits with an offset of 32, low 4 bits in
 * bytes 0..7 (low nibbles of all eight, then the high nibbles), high 2 bits
 * in bytes 8..11. */
static void unpack_q3_k(const char *row, int64_t b, void *unpacked)
{
    k_unpacked *u = unpacked;
    const block_q3_K *blk = (const block_q3_K *)row + b;
    unpack_2bit(blk->qs, u->q);
    for (int e = 0; e < QK_K; e++)
        if (blk->hmask[e % 32] & (1u << (e / 32)))
            u->q[e] = (uint8_t)(u->q[e] + 4);
    for (int i = 0; i < 16; i++) {
        int low = i < 8 ? blk->scales[i] & 0x0F : blk->scales[i - 8] >> 4;
        int high = (blk->scales[8 + i % 4] >> (2 * (i / 4))) & 3;
        u->scale[i] = u->corr[i] = (int16_t)((low | (high << 4)) - 32);
    }
    u->d = fp16_to_f32(blk->d);
    u->m = 4.0f * u->d;
}

/* Q2_K: w = d scale_g q - dmin min_g, scale and min the nibbles of scales[g]. */
static void unpack_q2_k(const char *row, int64_t b, void *unpacked)
{
    k_unpacked *u = unpacked;
    const block_q2_K *blk = (const block_q2_K *)row + b;
    unpack_2bit(blk->qs, u->q);
    for (int g = 0; g < QK_K / 16; g++) {
        u->scale[g] = blk->scales[g] & 0x0F;
        u->corr[g] = blk->scales[g] >> 4;
    }
    u->d = fp16_to_f32(blk->d);
    u->m = fp16_to_f32(blk->dmin);
}

static float block_dot_k(const void *unpacked, const cpu_tile *tile, int64_t b, int t)
{
    const k_unpacked *u = unpacked;
    const block_q8_K *a = (const block_q8_K *)(tile->act + (size_t)t * tile->act_stride) + b;
    int32_t scaled = 0, corr = 0;
    for (int g = 0; g < QK_K / 16; g++) {
        int32_t sum = 0;
        for (int i = 0; i < 16; i++)
            sum += u->q[16 * g + i] * a->qs[16 * g + i];
        scaled += u->scale[g] * sum;
        corr += u->corr[g] * a->bsums[g];
    }
    float act_d = tile->act_scales[b * tile->act_scales_stride + t]; /* a->d, as the AVX2 kernel reads it */
    return act_d * (u->d * (float)scaled - u->m * (float)corr);
}

static void tile_k(const cpu_tile *tile, unpack_fn unpack)
{
    k_unpacked unpacked;
    tile_rows(tile, QK_K, &unpacked, unpack, block_dot_k);
}

TILE_KERNEL(cpu_tile_q4_k_scalar, tile_k, unpack_q4_k)
TILE_KERNEL(cpu_tile_q6_k_scalar, tile_k, unpack_q6_k)
TILE_KERNEL(cpu_tile_q5_k_scalar, tile_k, unpack_q5_k)
TILE_KERNEL(cpu_tile_q3_k_scalar, tile_k, unpack_q3_k)
TILE_KERNEL(cpu_tile_q2_k_scalar, tile_k, unpack_q2_k)
