/* Dequantization of the K-quants (256-element super-blocks), bit-exact with
 * the GGUF (ggml) layouts. The quantizers are in quant_k_quantize.c.
 *
 * Products are formed in the order the reference uses (scale * sub-scale
 * first, then times the quant, then minus the min) so the floats come out
 * identical to it, not merely close. */
#include <stdint.h>

#include "quant.h"
#include "quant_k.h"

/* Q2_K: 16 sub-blocks of 16. scales[i] holds sub-block i's scale in its low
 * nibble and its min in its high nibble. Each 128-element half uses 32 bytes
 * of qs; bits 2s..2s+1 of byte l hold element 32s + l of that half. */
void dequantize_blocks_q2_K(const block_q2_K *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const block_q2_K *blk = &blocks[b];
        const float d = fp16_to_f32(blk->d);
        const float dmin = fp16_to_f32(blk->dmin);
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = blk->qs + 32 * half;
            for (int s = 0; s < 4; s++) {
                for (int part = 0; part < 2; part++) {
                    const int sub = 8 * half + 2 * s + part;
                    const float dl = d * (float)(blk->scales[sub] & 0x0f);
                    const float ml = dmin * (float)(blk->scales[sub] >> 4);
                    for (int l = 0; l < 16; l++)
                        dst[16 * sub + l] = dl * (float)((q[16 * part + l] >> (2 * s)) & 3) - ml;
                }
            }
        }
        dst += QK_K;
    }
}

/* The 6-bit scale (0..63, before the -32 offset) of Q3_K sub-block i: the low
 * nibble is in bytes 0..7 (sub-blocks 8..15 in the high nibbles), the top two
 * bits are in bytes 8..11, two bits per sub-block. */
static int q3_K_scale(const uint8_t scales[12], int i)
{
    int low = i < 8 ? (scales[i] & 0x0f) : (scales[i - 8] >> 4);
    int high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
    return low | (high << 4);
}

/* Q3_K: 16 sub-blocks of 16 with signed 6-bit scales. The low two bits of
 * each quant are laid out as in Q2_K; bit k of hmask[l] is the high bit of
 * element 32k + l, and a clear high bit means "subtract 4". */
void dequantize_blocks_q3_K(const block_q3_K *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const block_q3_K *blk = &blocks[b];
        const float d = fp16_to_f32(blk->d);
        for (int half = 0; half < 2; half++) {
            const uint8_t *q = blk->qs + 32 * half;
            for (int s = 0; s < 4; s++) {
                const int bit = 4 * half + s;
                for (int part = 0; part < 2; part++) {
                    const int sub = 8 * half + 2 * s + part;
                    const float dl = d * (float)(q3_K_scale(blk->scales, sub) - 32);
                    for (int l = 0; l < 16; l++) {
                        const int idx = 16 * part + l;
                        int value = (q[idx] >> (2 * s)) & 3;
                        if (!((blk->hmask[idx] >> bit) & 1))
                            value -= 4;
                        dst[16 * sub + l] = dl * (float)value;
                    }
                }
            }
        }
        dst += QK_K;
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block. Bytes
 * 0..3 hold scales 0..3, bytes 4..7 mins 0..3 (low six bits each); scales and
 * mins 4..7 take their low four bits from the nibbles of bytes 8..11 and their
 * top two bits from the spare top bits of bytes 0..3 and 4..7. */
static void k_scale_min(const uint8_t scales[K_SCALE_SIZE], int j, int *out_scale, int *out_min)
{
    if (j < 4) {
        *out_scale = scales[j] & 63;
        *out_min = scales[j + 4] & 63;
    } else {
        *out_scale = (scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4);
        *out_min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* Q4_K: 8 sub-blocks of 32. Each 64 elements use 32 bytes of qs: the low
 * nibbles are the first 32 elements, the high nibbles the next 32. */
void dequantize_blocks_q4_K(const block_q4_K *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const block_q4_K *blk = &blocks[b];
        const float d = fp16_to_f32(blk->d);
        const float dmin = fp16_to_f32(blk->dmin);
        for (int sub = 0; sub < 8; sub++) {
            int sc, m;
            k_scale_min(blk->scales, sub, &sc, &m);
            const float dl = d * (float)sc;
            const float ml = dmin * (float)m;
            const uint8_t *q = blk->qs + 32 * (sub / 2);
            const int shift = 4 * (sub % 2);
            for (int l = 0; l < 32; l++)
                dst[32 * sub + l] = dl * (float)((q[l] >> shift) & 0x0f) - ml;
        }
        dst += QK_K;
    }
}

/* Q5_K: Q4_K plus a fifth bit: bit `sub` of qh[l] belongs to element l of
 * sub-block sub. */
void dequantize_blocks_q5_K(const block_q5_K *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const block_q5_K *blk = &blocks[b];
        const float d = fp16_to_f32(blk->d);
        const float dmin = fp16_to_f32(blk->dmin);
        for (int sub = 0; sub < 8; sub++) {
            int sc, m;
            k_scale_min(blk->scales, sub, &sc, &m);
            const float dl = d * (float)sc;
            const float ml = dmin * (float)m;
            const uint8_t *q = blk->qs + 32 * (sub / 2);
            const int shift = 4 * (sub % 2);
            for (int l = 0; l < 32; l++) {
                int value = ((q[l] >> shift) & 0x0f) | (((blk->qh[l] >> sub) & 1) << 4);
                dst[32 * sub + l] = dl * (float)value - ml;
            }
        }
        dst += QK_K;
    }
}

/* Q6_K: 16 sub-blocks of 16 with signed 8-bit scales. Each 128 elements use
 * 64 bytes of ql and 32 of qh: element 32k + l (k = 0..3, l = 0..31) has its
 * low nibble in ql[l + 32 (k % 2)] (low nibble for k < 2, high for k >= 2) and
 * its top two bits in bits 2k..2k+1 of qh[l]. */
void dequantize_blocks_q6_K(const block_q6_K *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        const block_q6_K *blk = &blocks[b];
        const float d = fp16_to_f32(blk->d);
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = blk->ql + 64 * half;
            const uint8_t *qh = blk->qh + 32 * half;
            const int8_t *sc = blk->scales + 8 * half;
            float *y = dst + 128 * half;
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < 32; l++) {
                    int low = (ql[l + 32 * (k % 2)] >> (4 * (k / 2))) & 0x0f;
                    int high = (qh[l] >> (2 * k)) & 3;
                    int value = (low | (high << 4)) - 32;
                    y[32 * k + l] = d * (float)sc[2 * k + l / 16] * (float)value;
                }
            }
        }
        dst += QK_K;
    }
}

/* Q8_K: one f32 scale, 256 signed bytes; bsums are not needed to decode. */
void dequantize_blocks_q8_K(const block_q8_K *blocks, float *dst, int64_t n_blocks)
{
    for (int64_t b = 0; b < n_blocks; b++) {
        for (int l = 0; l < QK_K; l++)
            dst[l] = blocks[b].d * (float)blocks[b].qs[l];
        dst += QK_K;
    }
}
