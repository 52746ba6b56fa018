/* The low-bit block formats (base/quant_lowbit.h) unpacked into the units of
 * kernels/quant_unpack.h, which includes this header in its middle: the
 * i-quants IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL,
 * IQ4_XS, then MXFP4 and the ternary TQ1_0 and TQ2_0.
 *
 * Every value of these formats is a scale times a small integer, so each
 * fits the unit of quant_unpack.h (scale[e / 16] * (q[e] - bias) +
 * offset[e / 16]) with signed bytes for the integers:
 *
 *   IQ2_*, IQ3_*   +-grid coordinate (1 .. 62); scale per 32 or per 16
 *   IQ1_S, IQ1_M   grid coordinate g in {-1, 0, 1} plus the shift
 *                  +-1/8 as 8 g + s + 1 with bias 1, scale / 8 (below)
 *   IQ4_*, MXFP4   the level of the 4-bit code (-127 .. 113; MXFP4's
 *                  doubled e2m1 values -12 .. 12)
 *   TQ1_0, TQ2_0   the code 0, 1, 2 with bias 1
 *
 * The scales are formed with the float operations of the reference
 * dequantizer (base/quant_lowbit.c), in its order, and every product below
 * rounds the same exact real number once, so on the host the values are
 * bit-identical to it (tests/test_cuda_unpack.c checks every unit). For
 * IQ1: the reference rounds dl * (g + delta) with g + delta exact; here
 * dl / 8 is exact (a power of two, far above the subnormals) and
 * (dl / 8) * (8 g + 8 delta) is the same real number.
 *
 * The tables are those of base/quant_iq_grids.c, expanded from the
 * generated/unpack_tables.h that cmake/unpack_tables.cmake writes from it:
 * plain host arrays for C and the CUDA emulator, and __device__ arrays for
 * the GPU. Global memory rather than __constant__: the 32 lanes of a warp
 * look up 32 different grid points, which the constant cache serves one
 * address at a time, while the L1 cache serves them together. */
#ifndef STRATA_KERNELS_QUANT_UNPACK_LOWBIT_H
#define STRATA_KERNELS_QUANT_UNPACK_LOWBIT_H

#include <string.h>

#include "unpack_tables.h"

static UNPACK_TABLE_DEFINE_IQ2XXS_GRID(unpack_table_iq2xxs_grid);
static UNPACK_TABLE_DEFINE_IQ2XS_GRID(unpack_table_iq2xs_grid);
static UNPACK_TABLE_DEFINE_IQ2S_GRID(unpack_table_iq2s_grid);
static UNPACK_TABLE_DEFINE_IQ3XXS_GRID(unpack_table_iq3xxs_grid);
static UNPACK_TABLE_DEFINE_IQ3S_GRID(unpack_table_iq3s_grid);
static UNPACK_TABLE_DEFINE_IQ1S_GRID(unpack_table_iq1s_grid);
static UNPACK_TABLE_DEFINE_IQ2_SIGNS(unpack_table_iq2_signs);
/* the 16-byte level tables are read as four words (unpack_levels4) */
#ifdef __cplusplus
#define UNPACK_ALIGN16 alignas(16)
#else
#define UNPACK_ALIGN16 _Alignas(16)
#endif
UNPACK_ALIGN16 static UNPACK_TABLE_DEFINE_IQ4NL_VALUES(unpack_table_iq4nl_values);
UNPACK_ALIGN16 static UNPACK_TABLE_DEFINE_MXFP4_VALUES(unpack_table_mxfp4_values);

#ifdef __CUDACC__
static __device__ UNPACK_TABLE_DEFINE_IQ2XXS_GRID(unpack_table_iq2xxs_grid_device);
static __device__ UNPACK_TABLE_DEFINE_IQ2XS_GRID(unpack_table_iq2xs_grid_device);
static __device__ UNPACK_TABLE_DEFINE_IQ2S_GRID(unpack_table_iq2s_grid_device);
static __device__ UNPACK_TABLE_DEFINE_IQ3XXS_GRID(unpack_table_iq3xxs_grid_device);
static __device__ UNPACK_TABLE_DEFINE_IQ3S_GRID(unpack_table_iq3s_grid_device);
static __device__ UNPACK_TABLE_DEFINE_IQ1S_GRID(unpack_table_iq1s_grid_device);
static __device__ UNPACK_TABLE_DEFINE_IQ2_SIGNS(unpack_table_iq2_signs_device);
UNPACK_ALIGN16 static __device__ UNPACK_TABLE_DEFINE_IQ4NL_VALUES(unpack_table_iq4nl_values_device);
UNPACK_ALIGN16 static __device__ UNPACK_TABLE_DEFINE_MXFP4_VALUES(unpack_table_mxfp4_values_device);
#endif

/* The table the calling code reads: the device copy in device code (nvcc's
 * host pass compiles these functions too, and must not name a __device__
 * array there), the host one everywhere else. */
#ifdef __CUDA_ARCH__
#define UNPACK_TABLE(name) unpack_table_##name##_device
#else
#define UNPACK_TABLE(name) unpack_table_##name
#endif

/* --- helpers ------------------------------------------------------------------------- */

/* Four magnitudes (bytes of 1 .. 127) with bit b of signs negating byte b:
 * x ^ 0xff + 1 is -x in a byte, and no byte carries into the next because
 * no magnitude is 0 (the IQ2 and IQ3 grids have none). */
UNPACK_FN int32_t unpack_signed4(uint32_t magnitudes, uint32_t signs)
{
    const uint32_t ones = unpack_spread4(signs & 0xfu);
    return (int32_t)((magnitudes ^ (ones * 0xffu)) + ones);
}

/* The 8 coordinates of a grid point with 8 sign bits into q[0], q[1]. */
UNPACK_FN void unpack_signed8(uint64_t point, uint32_t signs, int32_t *q)
{
    q[0] = unpack_signed4((uint32_t)point, signs);
    q[1] = unpack_signed4((uint32_t)(point >> 32), signs >> 4);
}

/* IQ2 scale nibble s: d (0.5 + s) / 4, as the reference forms it. */
UNPACK_FN float unpack_iq2_scale(float d, uint32_t s)
{
    return d * (0.5f + (float)s) * 0.25f;
}

/* An IQ1 point (coordinates -1, 0, 1 as bytes 0xff, 0, 1) and its shift
 * into q[0], q[1] as 8 g + s + 1: 8 g is the byte shifted left by 3 (0,
 * 8 or 0xf8, low bits clear), and + 2 for a positive shift sets a clear bit. */
UNPACK_FN void unpack_iq1_point(uint64_t point, bool negative_shift, int32_t *q)
{
    const uint32_t shift = negative_shift ? 0u : 0x02020202u;
    q[0] = (int32_t)((((uint32_t)point << 3) & 0xf8f8f8f8u) | shift);
    q[1] = (int32_t)((((uint32_t)(point >> 32) << 3) & 0xf8f8f8f8u) | shift);
}

/* Four 4-bit codes (bits 0..3 of each byte of codes) to their levels, one
 * byte each, from a 16-level table held as four words. On the device two
 * byte permutes pick the levels of codes 0..7 and 8..15 (a selector nibble's
 * low 3 bits index the 8 bytes of two words), and bit 3 of each code
 * chooses between them: about 10 instructions for four levels where byte
 * loads from the table would take four loads and their shifts. */
UNPACK_FN int32_t unpack_levels4(const uint32_t *table, uint32_t codes)
{
#ifdef UNPACK_DEVICE
    const uint32_t selector =
        (codes & 0x7u) | ((codes >> 4) & 0x70u) | ((codes >> 8) & 0x700u) | ((codes >> 12) & 0x7000u);
    const uint32_t low = __byte_perm(table[0], table[1], selector), high = __byte_perm(table[2], table[3], selector);
    const uint32_t upper = ((codes >> 3) & 0x01010101u) * 0xffu;
    return (int32_t)((high & upper) | (low & ~upper));
#else
    uint32_t word = 0;
    for (int b = 0; b < 4; b++) {
        const uint32_t code = (codes >> (8 * b)) & 0xfu;
        word |= ((table[code / 4] >> (8 * (code % 4))) & 0xffu) << (8 * b);
    }
    return (int32_t)word;
#endif
}

/* The 32 codes of an IQ4_NL/MXFP4-style nibble array (element j in the low
 * nibble of byte j, j + 16 in the high one) as levels of table (16 bytes at
 * a multiple of 16: one 16-byte load on the device). */
UNPACK_FN void unpack_nibble_levels(const int8_t *table, const uint32_t *words, quant_unit *u)
{
    uint32_t table_words[4];
    unpack_words_a16((const uint8_t *)table, 4, table_words);
    for (int k = 0; k < 4; k++) {
        u->q[k] = unpack_levels4(table_words, words[k] & 0x0f0f0f0fu);
        u->q[k + 4] = unpack_levels4(table_words, (words[k] >> 4) & 0x0f0f0f0fu);
    }
}

UNPACK_FN void unpack_one_scale(float scale, int32_t bias, quant_unit *u)
{
    u->bias = bias;
    u->scale[0] = u->scale[1] = scale;
    u->offset[0] = u->offset[1] = 0.0f;
}

/* --- the grid i-quants (eight units of 32 per 256-element block) ----------------------- */

/* IQ2_XXS (66 bytes): d, then per unit two words: four 8-bit grid indices;
 * four 7-bit sign fields (bits 0, 7, 14, 21) and the scale (28..31). */
UNPACK_FN void unpack_iq2_xxs(const uint8_t *block, int unit, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    const uint32_t indices = unpack_u32_a2(block + 2 + 8 * unit), aux = unpack_u32_a2(block + 6 + 8 * unit);
    for (int l = 0; l < 4; l++)
        unpack_signed8(UNPACK_TABLE(iq2xxs_grid)[(indices >> (8 * l)) & 0xffu],
                       UNPACK_TABLE(iq2_signs)[(aux >> (7 * l)) & 0x7fu], &u->q[2 * l]);
    unpack_one_scale(unpack_iq2_scale(d, aux >> 28), 0, u);
}

/* IQ2_XS (74 bytes): d, qs[32] (uint16: 9-bit index, 7 sign bits), scales[8]
 * at 66 (a nibble per 16 elements). */
UNPACK_FN void unpack_iq2_xs(const uint8_t *block, int unit, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    const uint32_t words[2] = {unpack_u32_a2(block + 2 + 8 * unit), unpack_u32_a2(block + 6 + 8 * unit)};
    for (int l = 0; l < 4; l++) {
        const uint32_t q = (words[l / 2] >> (16 * (l % 2))) & 0xffffu;
        unpack_signed8(UNPACK_TABLE(iq2xs_grid)[q & 511u], UNPACK_TABLE(iq2_signs)[q >> 9], &u->q[2 * l]);
    }
    const uint32_t scales = block[66 + unit];
    u->bias = 0;
    u->scale[0] = unpack_iq2_scale(d, scales & 0x0fu);
    u->scale[1] = unpack_iq2_scale(d, scales >> 4);
    u->offset[0] = u->offset[1] = 0.0f;
}

/* IQ2_S (82 bytes): d, qs[32] low index bytes at 2, 32 sign bytes at 34,
 * qh[8] at 66 (2 high index bits per 8 elements), scales[8] at 74. */
UNPACK_FN void unpack_iq2_s(const uint8_t *block, int unit, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    const uint32_t indices = unpack_u32_a2(block + 2 + 4 * unit), signs = unpack_u32_a2(block + 34 + 4 * unit);
    const uint32_t high = block[66 + unit];
    for (int l = 0; l < 4; l++) {
        const uint32_t index = unpack_word_byte(indices, l) | (((high >> (2 * l)) & 3u) << 8);
        unpack_signed8(UNPACK_TABLE(iq2s_grid)[index], unpack_word_byte(signs, l), &u->q[2 * l]);
    }
    const uint32_t scales = block[74 + unit];
    u->bias = 0;
    u->scale[0] = unpack_iq2_scale(d, scales & 0x0fu);
    u->scale[1] = unpack_iq2_scale(d, scales >> 4);
    u->offset[0] = u->offset[1] = 0.0f;
}

/* IQ3_XXS (98 bytes): d, 64 8-bit indices of 4-element points at 2, then
 * per unit a word at 66: four 7-bit sign fields (one per 8 elements) and the
 * scale, d (0.5 + s) / 2. */
UNPACK_FN void unpack_iq3_xxs(const uint8_t *block, int unit, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    const uint32_t indices[2] = {unpack_u32_a2(block + 2 + 8 * unit), unpack_u32_a2(block + 6 + 8 * unit)};
    const uint32_t aux = unpack_u32_a2(block + 66 + 4 * unit);
    for (int l = 0; l < 4; l++) {
        const uint32_t signs = UNPACK_TABLE(iq2_signs)[(aux >> (7 * l)) & 0x7fu];
        const uint32_t first = unpack_word_byte(indices[l / 2], 2 * (l % 2));
        const uint32_t second = unpack_word_byte(indices[l / 2], 2 * (l % 2) + 1);
        u->q[2 * l] = unpack_signed4(UNPACK_TABLE(iq3xxs_grid)[first], signs);
        u->q[2 * l + 1] = unpack_signed4(UNPACK_TABLE(iq3xxs_grid)[second], signs >> 4);
    }
    unpack_one_scale(d * (0.5f + (float)(aux >> 28)) * 0.5f, 0, u);
}

/* IQ3_S (110 bytes): d, qs[64] low index bytes at 2, qh[8] at 66 (the
 * ninth bits), signs[32] at 74 (a bit per element), scales[4] at 106 (a
 * nibble per unit: d (1 + 2 s)). */
UNPACK_FN void unpack_iq3_s(const uint8_t *block, int unit, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    const uint32_t indices[2] = {unpack_u32_a2(block + 2 + 8 * unit), unpack_u32_a2(block + 6 + 8 * unit)};
    const uint32_t high = block[66 + unit], signs = unpack_u32_a2(block + 74 + 4 * unit);
    for (int l = 0; l < 8; l++) {
        const uint32_t index = unpack_word_byte(indices[l / 4], l % 4) | (((high >> l) & 1u) << 8);
        u->q[l] = unpack_signed4(UNPACK_TABLE(iq3s_grid)[index], signs >> (4 * l));
    }
    const int s = (block[106 + unit / 2] >> (4 * (unit % 2))) & 0x0f;
    unpack_one_scale(d * (float)(1 + 2 * s), 0, u);
}

/* IQ1_S (50 bytes): d, qs[32] low index bytes at 2, then per unit a uint16
 * at 34: three high index bits per 8 elements (bits 0..11), the scale s
 * (12..14: d (2 s + 1)) and the shift's sign (15). */
UNPACK_FN void unpack_iq1_s(const uint8_t *block, int unit, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    const uint32_t indices = unpack_u32_a2(block + 2 + 4 * unit), qh = unpack_u16(block + 34 + 2 * unit);
    for (int l = 0; l < 4; l++) {
        const uint32_t index = unpack_word_byte(indices, l) | (((qh >> (3 * l)) & 7u) << 8);
        unpack_iq1_point(UNPACK_TABLE(iq1s_grid)[index], (qh & 0x8000u) != 0, &u->q[2 * l]);
    }
    unpack_one_scale(d * (float)(2 * ((qh >> 12) & 7u) + 1) * 0.125f, 1, u);
}

/* IQ1_M (56 bytes): qs[32] low index bytes, qh[16] at 32 (a nibble per 8
 * elements: three high index bits, then the shift's sign), four uint16 of
 * scales at 48 (3 bits per 16 elements; their top nibbles are the fp16 d). */
UNPACK_FN void unpack_iq1_m(const uint8_t *block, int unit, quant_unit *u)
{
    const uint32_t sc[4] = {unpack_u16(block + 48), unpack_u16(block + 50), unpack_u16(block + 52),
                            unpack_u16(block + 54)};
    const float d = unpack_half(
        (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0u) | ((sc[2] >> 4) & 0x0f00u) | (sc[3] & 0xf000u)));
    const uint32_t indices = unpack_u32_a2(block + 4 * unit), qh = unpack_u16(block + 32 + 2 * unit);
    for (int l = 0; l < 4; l++) {
        const uint32_t nibble = (qh >> (4 * l)) & 0xfu;
        const uint32_t index = unpack_word_byte(indices, l) | ((nibble & 7u) << 8);
        unpack_iq1_point(UNPACK_TABLE(iq1s_grid)[index], (nibble & 8u) != 0, &u->q[2 * l]);
    }
    u->bias = 1;
    for (int h = 0; h < 2; h++) {
        /* 16-element group m = 2 unit + h: bits 3 (m % 4) of word m / 4 */
        const uint32_t s = (sc[unit / 2] >> (3 * (2 * (unit % 2) + h))) & 7u;
        u->scale[h] = d * (float)(2 * s + 1) * 0.125f;
        u->offset[h] = 0.0f;
    }
}

/* --- the 4-bit level formats ------------------------------------------------------------ */

/* IQ4_NL (18 bytes, 32 elements): d, 16 bytes of codes. */
UNPACK_FN void unpack_iq4_nl(const uint8_t *block, quant_unit *u)
{
    uint32_t words[4];
    for (int k = 0; k < 4; k++)
        words[k] = unpack_u32_a2(block + 2 + 4 * k);
    unpack_nibble_levels(UNPACK_TABLE(iq4nl_values), words, u);
    unpack_one_scale(unpack_half(unpack_u16(block)), 0, u);
}

/* IQ4_XS (136 bytes): d, scales_h (uint16, 2 bits per unit), scales_l[4] at 4
 * (a nibble per unit), 16 bytes of codes per unit at 8; the unit's scale is
 * d (ls - 32) with ls its six bits. */
UNPACK_FN void unpack_iq4_xs(const uint8_t *block, int unit, quant_unit *u)
{
    const float d = unpack_half(unpack_u16(block));
    const uint32_t scales_h = unpack_u16(block + 2);
    const int ls = (int)(((block[4 + unit / 2] >> (4 * (unit % 2))) & 0x0fu) | (((scales_h >> (2 * unit)) & 3u) << 4));
    uint32_t words[4];
    for (int k = 0; k < 4; k++)
        words[k] = unpack_u32_a2(block + 8 + 16 * unit + 4 * k);
    unpack_nibble_levels(UNPACK_TABLE(iq4nl_values), words, u);
    unpack_one_scale(d * (float)(ls - 32), 0, u);
}

/* MXFP4 (17 bytes, 32 elements): the exponent byte e, 16 bytes of e2m1
 * codes. An odd size: blocks lie at any address, so bytes are loaded one by
 * one. The scale is 2^(e - 128) (the levels are doubled), built from its
 * bits as base/quant_lowbit.h does: exact, a subnormal below e = 2. */
UNPACK_FN void unpack_mxfp4(const uint8_t *block, quant_unit *u)
{
    const uint32_t e = block[0];
    const uint32_t bits = e < 2 ? 0x00200000u << e : (e - 1) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    uint32_t words[4];
    for (int k = 0; k < 4; k++) {
        const uint8_t *p = block + 1 + 4 * k;
        words[k] = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    }
    unpack_nibble_levels(UNPACK_TABLE(mxfp4_values), words, u);
    unpack_one_scale(scale, 0, u);
}

/* --- the ternary formats --------------------------------------------------------------- */

/* Trit n (0 .. 4) of a TQ1_0 byte, which holds its trits as a fraction of
 * 3^5 scaled to 256: times 3^n brings trit n to the top (mod 256), and
 * (x * 3) >> 8 reads it off. */
UNPACK_FN uint32_t unpack_tq1_trit(uint32_t packed, int n)
{
    const uint32_t pow3 = n == 0 ? 1u : n == 1 ? 3u : n == 2 ? 9u : n == 3 ? 27u : 81u;
    return (((packed * pow3) & 0xffu) * 3u) >> 8;
}

/* TQ1_0 (54 bytes): qs[48], qh[4] at 48, d at 52. Element 32 n + m (n < 5)
 * is trit n of qs[m]; 160 + 16 n + m trit n of qs[32 + m]; 240 + 4 n + m
 * trit n of qh[m]. So units 0..4 are trit `unit` of qs[0..31], units 5 and
 * 6 two trits each of qs[32..47], unit 7 trit 4 of qs[32..47] then qh. */
UNPACK_FN void unpack_tq1_0(const uint8_t *block, int unit, quant_unit *u)
{
    for (int k = 0; k < 8; k++) {
        uint32_t word = 0;
        for (int b = 0; b < 4; b++) {
            const int e = 4 * k + b;
            int byte, n;
            if (unit < 5) {
                byte = e;
                n = unit;
            } else if (unit < 7 || e < 16) {
                byte = 32 + e % 16;
                n = unit < 7 ? 2 * (unit - 5) + e / 16 : 4;
            } else {
                byte = 48 + (e - 16) % 4;
                n = (e - 16) / 4;
            }
            word |= unpack_tq1_trit(block[byte], n) << (8 * b);
        }
        u->q[k] = (int32_t)word;
    }
    unpack_one_scale(unpack_half(unpack_u16(block + 52)), 1, u);
}

/* TQ2_0 (66 bytes): qs[64], d at 64. Element 128 h + 32 l + m is bits 2 l of
 * qs[32 h + m]: unit 4 h + l. */
UNPACK_FN void unpack_tq2_0(const uint8_t *block, int unit, quant_unit *u)
{
    const int h = unit / 4, l = unit % 4;
    for (int k = 0; k < 8; k++)
        u->q[k] = (int32_t)((unpack_u32_a2(block + 32 * h + 4 * k) >> (2 * l)) & 0x03030303u);
    unpack_one_scale(unpack_half(unpack_u16(block + 64)), 1, u);
}

#endif
