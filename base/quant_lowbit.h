/* The low-bit block formats: the i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS,
 * IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS), MXFP4 and the ternary TQ1_0/TQ2_0,
 * bit-exact with their GGUF (ggml) definitions.
 *
 * The structs are the on-disk layouts (little-endian; the static asserts in
 * quant_lowbit.c pin their sizes). Half floats are uint16_t bit patterns.
 *
 * How the grid formats encode values: a 256-element super-block is cut into
 * eight groups of 32, each with a scale; every 8 (IQ2, IQ1) or 4 (IQ3)
 * elements are one index into a table of grid points (quant_iq*_grid below),
 * whose coordinates are small non-negative magnitudes (IQ1: -1, 0, 1) and
 * whose signs come from a separate field. Where signs are stored as 7 bits
 * per 8 elements (IQ2_XXS, IQ2_XS, IQ3_XXS), the eighth sign is implied: the
 * number of minus signs of each 8 is even (quant_iq2_signs expands 7 bits to
 * 8). The exact bit positions are written beside each dequantizer in
 * quant_lowbit.c. */
#ifndef STRATA_QUANT_LOWBIT_H
#define STRATA_QUANT_LOWBIT_H

#include <stdint.h>
#include <string.h>

#include "quant.h"

#define QK4_NL 32
#define QK_MXFP4 32
#define IQ1_DELTA 0.125f /* IQ1_S/IQ1_M: each point is shifted by +-delta */

/* 2.06 bits per weight: d, then per 32 elements two uint32: four 8-bit grid
 * indices, then four 7-bit sign fields (bits 0..27) and a 4-bit scale (28..31). */
typedef struct block_iq2_xxs { uint16_t d; uint16_t qs[QK_K / 8]; } block_iq2_xxs;

/* 2.31 bpw: per 8 elements a uint16 of a 9-bit grid index and 7 sign bits;
 * per 16 elements a 4-bit scale. */
typedef struct block_iq2_xs {
    uint16_t d;
    uint16_t qs[QK_K / 8];
    uint8_t scales[QK_K / 32];
} block_iq2_xs;

/* 2.56 bpw: qs holds 32 low bytes of 10-bit grid indices, then 32 bytes of
 * plain sign bits (one per element); qh the top 2 bits of the indices (four
 * per byte); a 4-bit scale per 16 elements. */
typedef struct block_iq2_s {
    uint16_t d;
    uint8_t qs[QK_K / 4];
    uint8_t qh[QK_K / 32];
    uint8_t scales[QK_K / 32];
} block_iq2_s;

/* 3.06 bpw: 64 8-bit indices into a grid of 4-element points, then per 32
 * elements a uint32 of four 7-bit sign fields and a 4-bit scale. */
typedef struct block_iq3_xxs { uint16_t d; uint8_t qs[3 * QK_K / 8]; } block_iq3_xxs;

/* 3.44 bpw: 9-bit indices (low bytes in qs, ninth bits in qh), a sign bit per
 * element, a 4-bit scale per 32 elements. */
typedef struct block_iq3_s {
    uint16_t d;
    uint8_t qs[QK_K / 4];
    uint8_t qh[QK_K / 32];
    uint8_t signs[QK_K / 8];
    uint8_t scales[QK_K / 64];
} block_iq3_s;

/* 1.56 bpw: 11-bit indices into a grid of {-1, 0, 1}^8 points (low bytes in
 * qs; per 32 elements a uint16 qh with the 3 high bits of its four indices,
 * a 3-bit scale and the sign of the shift). */
typedef struct block_iq1_s {
    uint16_t d;
    uint8_t qs[QK_K / 8];
    uint16_t qh[QK_K / 32];
} block_iq1_s;

/* 1.75 bpw: like IQ1_S but a 3-bit scale per 16 elements and a shift sign
 * per 8; the fp16 super-block scale is spread over the top nibbles of the
 * four uint16 words of scales. */
typedef struct block_iq1_m {
    uint8_t qs[QK_K / 8];
    uint8_t qh[QK_K / 16];
    uint8_t scales[QK_K / 32];
} block_iq1_m;

/* 4.5 bpw: 32 elements, 4-bit indices into the 16 non-uniform levels
 * quant_iq4nl_values (element j in the low nibble of qs[j], j + 16 high). */
typedef struct block_iq4_nl { uint16_t d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;

/* 4.25 bpw: IQ4_NL levels in 256-element blocks with a 6-bit scale (offset
 * 32) per 32: low 4 bits in scales_l (two per byte), high 2 bits in scales_h. */
typedef struct block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
} block_iq4_xs;

/* 4.25 bpw: OCP microscaling FP4: a power-of-two scale e (e8m0) and 32 e2m1
 * values, nibbles as IQ4_NL. */
typedef struct block_mxfp4 { uint8_t e; uint8_t qs[QK_MXFP4 / 2]; } block_mxfp4;

/* 1.69 bpw ternary: five trits per byte (qs) and four per byte (qh), stored
 * as the fraction q / 3^k scaled to a byte, then one fp16 scale. */
typedef struct block_tq1_0 {
    uint8_t qs[(QK_K - 4 * QK_K / 64) / 5];
    uint8_t qh[QK_K / 64];
    uint16_t d;
} block_tq1_0;

/* 2.06 bpw ternary: 2-bit codes 0, 1, 2 for -1, 0, +1, then one fp16 scale. */
typedef struct block_tq2_0 { uint8_t qs[QK_K / 4]; uint16_t d; } block_tq2_0;

/* ---- tables (quant_iq_grids.c, generated) -------------------------------- */
extern const uint64_t quant_iq2xxs_grid[256];
extern const uint64_t quant_iq2xs_grid[512];
extern const uint64_t quant_iq2s_grid[1024];
extern const uint32_t quant_iq3xxs_grid[256];
extern const uint32_t quant_iq3s_grid[512];
extern const uint64_t quant_iq1s_grid[2048];
extern const uint8_t quant_iq2_signs[128];
extern const int8_t quant_iq4nl_values[16];
extern const int8_t quant_mxfp4_values[16];

/* The MXFP4 scale of exponent byte e, halved (the values table is doubled):
 * 2^(e - 128), exact (a subnormal float for e < 2). Inline: the dot
 * products call it once per 32 weights. */
static inline float quant_e8m0_to_f32_half(uint8_t e)
{
    /* exponent field e - 1 for e >= 2; below that a subnormal with one
     * mantissa bit (2^-128 = 2^21 ulps of 2^-149, 2^-127 = 2^22) */
    const uint32_t bits = e < 2 ? (uint32_t)0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* The 6-bit scale (0..63, 32 meaning 0) of elements 32 ib .. 32 ib + 31 of
 * an IQ4_XS block: nibble ib % 2 of scales_l[ib / 2], and bits 2 ib, 2 ib + 1
 * of scales_h as its top two bits. */
static inline int quant_iq4_xs_scale(const block_iq4_xs *block, int ib)
{
    return ((block->scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((block->scales_h >> (2 * ib)) & 3) << 4);
}

/* The fp16 super-block scale of an IQ1_M block (from its scales' nibbles). */
uint16_t quant_iq1_m_scale(const block_iq1_m *block);

/* ---- row functions (quant_lowbit.c; quantizers in quant_*_quantize.c) ------
 * Each takes a whole number of blocks; only the grid quantizers can fail. */
void dequantize_blocks_iq2_xxs(const block_iq2_xxs *src, float *dst, int64_t n_blocks);
void dequantize_blocks_iq2_xs(const block_iq2_xs *src, float *dst, int64_t n_blocks);
void dequantize_blocks_iq2_s(const block_iq2_s *src, float *dst, int64_t n_blocks);
void dequantize_blocks_iq3_xxs(const block_iq3_xxs *src, float *dst, int64_t n_blocks);
void dequantize_blocks_iq3_s(const block_iq3_s *src, float *dst, int64_t n_blocks);
void dequantize_blocks_iq1_s(const block_iq1_s *src, float *dst, int64_t n_blocks);
void dequantize_blocks_iq1_m(const block_iq1_m *src, float *dst, int64_t n_blocks);
void dequantize_blocks_iq4_nl(const block_iq4_nl *src, float *dst, int64_t n_blocks);
void dequantize_blocks_iq4_xs(const block_iq4_xs *src, float *dst, int64_t n_blocks);
void dequantize_blocks_mxfp4(const block_mxfp4 *src, float *dst, int64_t n_blocks);
void dequantize_blocks_tq1_0(const block_tq1_0 *src, float *dst, int64_t n_blocks);
void dequantize_blocks_tq2_0(const block_tq2_0 *src, float *dst, int64_t n_blocks);

void quantize_blocks_iq4_nl(const float *src, block_iq4_nl *dst, int64_t n_blocks);
void quantize_blocks_iq4_xs(const float *src, block_iq4_xs *dst, int64_t n_blocks);
void quantize_blocks_mxfp4(const float *src, block_mxfp4 *dst, int64_t n_blocks);
void quantize_blocks_tq1_0(const float *src, block_tq1_0 *dst, int64_t n_blocks);
void quantize_blocks_tq2_0(const float *src, block_tq2_0 *dst, int64_t n_blocks);

/* Quantizes n_blocks of a grid i-quant (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S,
 * IQ3_XXS, IQ3_S) into dst (quant_iq_quantize.c). Fails only when the grid's
 * search index cannot be allocated (STRATA_OUT_OF_MEMORY) or dtype is not one
 * of these (STRATA_UNSUPPORTED). */
strata_status quantize_blocks_iq_grid(strata_dtype dtype, const float *src, void *dst, int64_t n_blocks,
                                      strata_error *err);

#endif
