/* Dequantization of the low-bit formats (see quant_lowbit.h), bit-exact with
 * the GGUF definitions. Products are formed in the reference's order (block
 * scale times sub-scale, then times the grid value, then the sign), so the
 * floats are identical to it, not merely close. */
#include <stdint.h>
#include <string.h>

#include "quant_lowbit.h"

_Static_assert(sizeof(block_iq2_xxs) == 66, "block_iq2_xxs must be 66 bytes");
_Static_assert(sizeof(block_iq2_xs) == 74, "block_iq2_xs must be 74 bytes");
_Static_assert(sizeof(block_iq2_s) == 82, "block_iq2_s must be 82 bytes");
_Static_assert(sizeof(block_iq3_xxs) == 98, "block_iq3_xxs must be 98 bytes");
_Static_assert(sizeof(block_iq3_s) == 110, "block_iq3_s must be 110 bytes");
_Static_assert(sizeof(block_iq1_s) == 50, "block_iq1_s must be 50 bytes");
_Static_assert(sizeof(block_iq1_m) == 56, "block_iq1_m must be 56 bytes");
_Static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl must be 18 bytes");
_Static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs must be 136 bytes");
_Static_assert(sizeof(block_mxfp4) == 17, "block_mxfp4 must be 17 bytes");
_Static_assert(sizeof(block_tq1_0) == 54, "block_tq1_0 must be 54 bytes");
_Static_assert(sizeof(block_tq2_0) == 66, "block_tq2_0 must be 66 bytes");

uint16_t quant_iq1_m_scale(const block_iq1_m *block)
{
    uint16_t sc[4];
    memcpy(sc, block->scales, sizeof sc);
    return (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
}

/* Coordinate j of an 8-byte grid point (IQ1 grids: as a signed byte). */
static float grid8_u(uint64_t point, int j)
{
    return (float)(uint8_t)(point >> (8 * j));
}

static float grid8_s(uint64_t point, int j)
{
    return (float)(int8_t)(uint8_t)(point >> (8 * j));
}

/* y[j] = scale * grid value, negated where bit j of signs is set. */
static void put_signed8(float *y, float scale, uint64_t point, unsigned signs)
{
    for (int j = 0; j < 8; j++) {
        const float v = scale * grid8_u(point, j);
        y[j] = (signs >> j) & 1 ? -v : v;
    }
}

static void put_signed4(float *y, float scale, uint32_t point, unsigned signs)
{
    for (int j = 0; j < 4; j++) {
        const float v = scale * (float)(uint8_t)(point >> (8 * j));
        y[j] = (signs >> j) & 1 ? -v : v;
    }
}

/* IQ2_XXS: per 32 elements, word 0 holds four 8-bit grid indices (one per 8
 * elements, lowest byte first), word 1 four 7-bit sign fields at bits 0, 7,
 * 14, 21 and the scale s at bits 28..31: scale = d (0.5 + s) / 4. */
void dequantize_blocks_iq2_xxs(const block_iq2_xxs *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const float d = fp16_to_f32(blocks[b].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            uint32_t idx, aux;
            memcpy(&idx, blocks[b].qs + 4 * ib, sizeof idx);
            memcpy(&aux, blocks[b].qs + 4 * ib + 2, sizeof aux);
            const float db = d * (0.5f + (float)(aux >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++, y += 8)
                put_signed8(y, db, quant_iq2xxs_grid[(idx >> (8 * l)) & 0xff],
                            quant_iq2_signs[(aux >> (7 * l)) & 0x7f]);
        }
    }
}

/* IQ2_XS: qs[k] = 9-bit index | 7 sign bits << 9 for elements 8k..8k+7;
 * scales[ib] holds the scales of elements 32 ib..+15 (low nibble) and
 * +16..+31 (high nibble), each meaning d (0.5 + s) / 4. */
void dequantize_blocks_iq2_xs(const block_iq2_xs *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const float d = fp16_to_f32(blocks[b].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const float db[2] = {d * (0.5f + (float)(blocks[b].scales[ib] & 0x0f)) * 0.25f,
                                 d * (0.5f + (float)(blocks[b].scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++, y += 8) {
                const uint16_t q = blocks[b].qs[4 * ib + l];
                put_signed8(y, db[l / 2], quant_iq2xs_grid[q & 511], quant_iq2_signs[q >> 9]);
            }
        }
    }
}

/* IQ2_S: index of elements 8k..8k+7 = qs[k] | bits 2(k%4)..+1 of qh[k/4]
 * << 8; their signs are byte 32 + k of qs, one bit per element; scales as
 * IQ2_XS. */
void dequantize_blocks_iq2_s(const block_iq2_s *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const block_iq2_s *blk = &blocks[b];
        const float d = fp16_to_f32(blk->d);
        const uint8_t *signs = blk->qs + QK_K / 8;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const float db[2] = {d * (0.5f + (float)(blk->scales[ib] & 0x0f)) * 0.25f,
                                 d * (0.5f + (float)(blk->scales[ib] >> 4)) * 0.25f};
            for (int l = 0; l < 4; l++, y += 8) {
                const int k = 4 * ib + l;
                const int index = blk->qs[k] | (((blk->qh[ib] >> (2 * l)) & 3) << 8);
                put_signed8(y, db[l / 2], quant_iq2s_grid[index], signs[k]);
            }
        }
    }
}

/* IQ3_XXS: qs[0..63] are 8-bit indices of 4-element points; bytes 64.. hold
 * per 32 elements a uint32 of four 7-bit sign fields (one per 8 elements)
 * and the scale s at bits 28..31: scale = d (0.5 + s) / 2. */
void dequantize_blocks_iq3_xxs(const block_iq3_xxs *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const uint8_t *qs = blocks[b].qs;
        const float d = fp16_to_f32(blocks[b].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            uint32_t aux;
            memcpy(&aux, qs + QK_K / 4 + 4 * ib, sizeof aux);
            const float db = d * (0.5f + (float)(aux >> 28)) * 0.5f;
            for (int l = 0; l < 4; l++, y += 8) {
                const unsigned signs = quant_iq2_signs[(aux >> (7 * l)) & 0x7f];
                put_signed4(y, db, quant_iq3xxs_grid[qs[8 * ib + 2 * l]], signs);
                put_signed4(y + 4, db, quant_iq3xxs_grid[qs[8 * ib + 2 * l + 1]], signs >> 4);
            }
        }
    }
}

/* IQ3_S: index k (elements 4k..4k+3) = qs[k] | bit k%8 of qh[k/8] << 8;
 * signs: bit j of signs[i] for element 8i + j; the scale of elements
 * 32 ib.. is d (1 + 2 s), s the low (even ib) or high (odd ib) nibble of
 * scales[ib / 2]. */
void dequantize_blocks_iq3_s(const block_iq3_s *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const block_iq3_s *blk = &blocks[b];
        const float d = fp16_to_f32(blk->d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int s = (blk->scales[ib / 2] >> (4 * (ib % 2))) & 0x0f;
            const float db = d * (float)(1 + 2 * s);
            for (int l = 0; l < 8; l++, y += 4) {
                const int k = 8 * ib + l;
                const int index = blk->qs[k] | (((blk->qh[ib] >> l) & 1) << 8);
                put_signed4(y, db, quant_iq3s_grid[index], blk->signs[k / 2] >> (4 * (k % 2)));
            }
        }
    }
}

/* IQ1_S: per 32 elements, qh[ib] bits 3l..3l+2 are the high bits of index l
 * (low byte qs[4 ib + l]), bits 12..14 the scale s (d (2 s + 1)), bit 15
 * the sign of the shift delta; y = scale (grid + delta). */
void dequantize_blocks_iq1_s(const block_iq1_s *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const float d = fp16_to_f32(blocks[b].d);
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint16_t qh = blocks[b].qh[ib];
            const float dl = d * (float)(2 * ((qh >> 12) & 7) + 1);
            const float delta = qh & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
            for (int l = 0; l < 4; l++, y += 8) {
                const uint64_t point = quant_iq1s_grid[blocks[b].qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)];
                for (int j = 0; j < 8; j++)
                    y[j] = dl * (grid8_s(point, j) + delta);
            }
        }
    }
}

/* IQ1_M: index k = qs[k] | (3 bits of qh[k/2]: low nibble for even k, high
 * for odd) << 8; bit 3 of that nibble is the shift's sign. The 3-bit scales
 * of elements 16 m.. sit at bits 3 (m % 4) of uint16 word m / 4 of scales;
 * the words' top nibbles form the fp16 d. */
void dequantize_blocks_iq1_m(const block_iq1_m *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const block_iq1_m *blk = &blocks[b];
        uint16_t sc[4];
        memcpy(sc, blk->scales, sizeof sc);
        const float d = fp16_to_f32(quant_iq1_m_scale(blk));
        for (int m = 0; m < QK_K / 16; m++) {
            const float dl = d * (float)(2 * ((sc[m / 4] >> (3 * (m % 4))) & 7) + 1);
            for (int l = 0; l < 2; l++, y += 8) {
                const int k = 2 * m + l;
                const int nibble = (blk->qh[k / 2] >> (4 * (k % 2))) & 0x0f;
                const float delta = nibble & 8 ? -IQ1_DELTA : IQ1_DELTA;
                const uint64_t point = quant_iq1s_grid[blk->qs[k] | ((nibble & 7) << 8)];
                for (int j = 0; j < 8; j++)
                    y[j] = dl * (grid8_s(point, j) + delta);
            }
        }
    }
}

void dequantize_blocks_iq4_nl(const block_iq4_nl *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, y += QK4_NL) {
        const float d = fp16_to_f32(blocks[b].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j] = d * (float)quant_iq4nl_values[blocks[b].qs[j] & 0x0f];
            y[j + QK4_NL / 2] = d * (float)quant_iq4nl_values[blocks[b].qs[j] >> 4];
        }
    }
}

/* IQ4_XS: the scale of elements 32 ib.. is d (ls - 32) with ls = nibble
 * ib % 2 of scales_l[ib / 2] | bits 2 ib..+1 of scales_h << 4; its 16 bytes
 * of qs hold elements j (low nibble) and j + 16 (high). */
void dequantize_blocks_iq4_xs(const block_iq4_xs *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const block_iq4_xs *blk = &blocks[b];
        const float d = fp16_to_f32(blk->d);
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32) {
            const int ls = quant_iq4_xs_scale(blk, ib);
            const float dl = d * (float)(ls - 32);
            const uint8_t *qs = blk->qs + 16 * ib;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)quant_iq4nl_values[qs[j] & 0x0f];
                y[j + 16] = dl * (float)quant_iq4nl_values[qs[j] >> 4];
            }
        }
    }
}

void dequantize_blocks_mxfp4(const block_mxfp4 *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, y += QK_MXFP4) {
        const float d = quant_e8m0_to_f32_half(blocks[b].e);
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            y[j] = d * (float)quant_mxfp4_values[blocks[b].qs[j] & 0x0f];
            y[j + QK_MXFP4 / 2] = d * (float)quant_mxfp4_values[blocks[b].qs[j] >> 4];
        }
    }
}

/* The trit (0, 1, 2) in position n of a byte holding q / 3^k scaled to 256:
 * multiplying by 3^n brings trit n to the top (mod 256), and (x * 3) >> 8
 * reads it off. */
static int tq1_trit(uint8_t packed, int n)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    const uint8_t shifted = (uint8_t)(packed * pow3[n]);
    return (shifted * 3) >> 8;
}

/* TQ1_0: element 32 n + m (n < 5) is trit n of qs[m]; element 160 + 16 n + m
 * trit n of qs[32 + m]; element 240 + 4 n + m trit n of qh[m] (n < 4). */
void dequantize_blocks_tq1_0(const block_tq1_0 *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, y += QK_K) {
        const block_tq1_0 *blk = &blocks[b];
        const float d = fp16_to_f32(blk->d);
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 32; m++)
                y[32 * n + m] = (float)(tq1_trit(blk->qs[m], n) - 1) * d;
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 16; m++)
                y[160 + 16 * n + m] = (float)(tq1_trit(blk->qs[32 + m], n) - 1) * d;
        for (int n = 0; n < 4; n++)
            for (int m = 0; m < 4; m++)
                y[240 + 4 * n + m] = (float)(tq1_trit(blk->qh[m], n) - 1) * d;
    }
}

/* TQ2_0: element 128 h + 32 l + m is bits 2l..2l+1 of qs[32 h + m], minus 1. */
void dequantize_blocks_tq2_0(const block_tq2_0 *blocks, float *y, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++, y += QK_K) {
        const float d = fp16_to_f32(blocks[b].d);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 32; m++)
                    y[128 * h + 32 * l + m] = (float)(((blocks[b].qs[32 * h + m] >> (2 * l)) & 3) - 1) * d;
    }
}
