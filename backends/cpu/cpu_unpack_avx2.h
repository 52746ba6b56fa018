/* AVX2 block unpacking shared by the dot products (cpu_dot_avx2*.c) and the
 * tiled kernels (cpu_tile_avx2.c, cpu_tile_avx512.c), so each format's bit layout is decoded in
 * one place. Private to backends/cpu; x86 GCC/clang builds only. The helpers
 * carry the AVX2 target attribute themselves, so they inline into any caller
 * compiled for AVX2 or a superset of it. */
#ifndef STRATA_CPU_UNPACK_AVX2_H
#define STRATA_CPU_UNPACK_AVX2_H

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "../../base/quant.h"
#include "../../base/quant_lowbit.h"

#define CPU_UNPACK_AVX2_FN __attribute__((target("avx2,fma,f16c"), always_inline)) static inline

/* --- K-quant scales of groups of 16 (Q6_K, Q3_K, Q2_K) --------------------- */

/* From 16 int16 scales, one per group of 16 elements: the multiplier of
 * sub-block j's (32 elements') int16 pair sums, scale 2j in lanes 0-7 and
 * 2j + 1 in lanes 8-15. The 128-bit half of the scales that holds both is
 * put in both lanes (the same permute for four sub-blocks, which the
 * compiler shares), then one byte shuffle picks word 2j % 8 in the low lane
 * and the next in the high. A permutevar per sub-block instead made the
 * Q6_K dot product a fifth slower on Zen 3. */
CPU_UNPACK_AVX2_FN __m256i group_pair_scales(__m256i scales16, int j)
{
    const int k = j % 4;
    const char lo = (char)(4 * k), hi = (char)(4 * k + 2);
    __m256i half = j < 4 ? _mm256_permute4x64_epi64(scales16, 0x44) : _mm256_permute4x64_epi64(scales16, 0xEE);
    const __m256i pick = _mm256_setr_epi8(lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo, lo + 1, lo,
                                          lo + 1, lo, lo + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1, hi, hi + 1,
                                          hi, hi + 1, hi, hi + 1, hi, hi + 1);
    return _mm256_shuffle_epi8(half, pick);
}

/* --- Q4_K / Q5_K scales ---------------------------------------------------- */

/* The 12 packed bytes of Q4_K's (and Q5_K's) 6-bit scales and mins as 16
 * bytes: scales 0..7, then mins 0..7. They are three words: scales and mins
 * 0-3 in the low 6 bits of words 0 and 1; 4-7 in the nibbles of word 2
 * (scales low, mins high), their top 2 bits in the top 2 bits of words 0
 * and 1. Reads 16 bytes at packed: the 12 and the first 4 of the quants
 * that follow them in the block. */
CPU_UNPACK_AVX2_FN __m128i scales_mins_6bit_bytes(const uint8_t *packed)
{
    __m128i words = _mm_loadu_si128((const __m128i *)packed);
    __m128i low = _mm_and_si128(words, _mm_set1_epi8(0x3F));
    /* word 2 shifted by 0 (scales 4-7) and 4 (mins 4-7), with the top bits of words 0 and 1 */
    __m128i nibbles = _mm_srlv_epi32(_mm_shuffle_epi32(words, 0xAA), _mm_setr_epi32(0, 4, 0, 0));
    __m128i high = _mm_or_si128(_mm_and_si128(nibbles, _mm_set1_epi8(0x0F)),
                                _mm_and_si128(_mm_srli_epi32(words, 2), _mm_set1_epi8(0x30)));
    return _mm_unpacklo_epi32(low, high);
}

/* --- 32-element blocks (Q8_0, Q4_0, Q5_0, IQ4_NL): one register each ----- */

typedef enum format_32 { FORMAT_Q8_0, FORMAT_Q4_0, FORMAT_Q5_0, FORMAT_IQ4_NL } format_32;

/* 16 packed bytes of nibbles as 32 bytes: low nibbles (elements 0..15), then
 * high nibbles (16..31). */
CPU_UNPACK_AVX2_FN __m256i nibbles_32(const uint8_t qs[16])
{
    __m128i packed = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/* Q5_0's qh as 32 bytes: byte i is 16 when bit i is set, else 0. Each
 * 128-bit lane spreads the two qh bytes it covers, then tests bit i % 8. */
CPU_UNPACK_AVX2_FN __m256i fifth_bits(const uint8_t qh_bytes[4])
{
    uint32_t qh;
    memcpy(&qh, qh_bytes, sizeof qh);
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit), _mm256_set1_epi8(16));
}

/* The offset of a format whose quants_32 are unsigned (weights d (q -
 * offset)); 0 where they are signed. */
CPU_UNPACK_AVX2_FN int offset_32(format_32 format)
{
    return format == FORMAT_Q4_0 ? 8 : format == FORMAT_Q5_0 ? 16 : 0;
}

/* Block b of a row: its 32 quants (unsigned where offset_32 says so), and
 * its scale in *d. */
CPU_UNPACK_AVX2_FN __m256i quants_32(format_32 format, const char *row, int64_t b, float *d)
{
    switch (format) {
    case FORMAT_Q8_0: {
        const block_q8_0 *blk = (const block_q8_0 *)row + b;
        *d = _cvtsh_ss(blk->d);
        return _mm256_loadu_si256((const __m256i *)blk->qs);
    }
    case FORMAT_Q4_0: { /* unsigned, offset 8 */
        const block_q4_0 *blk = (const block_q4_0 *)row + b;
        *d = _cvtsh_ss(blk->d);
        return nibbles_32(blk->qs);
    }
    case FORMAT_Q5_0: { /* unsigned, offset 16 */
        const block_q5_0 *blk = (const block_q5_0 *)row + b;
        *d = _cvtsh_ss(blk->d);
        return _mm256_or_si256(nibbles_32(blk->qs), fifth_bits(blk->qh));
    }
    case FORMAT_IQ4_NL: break;
    }
    const block_iq4_nl *blk = (const block_iq4_nl *)row + b;
    *d = _cvtsh_ss(blk->d);
    /* the 16 levels in both 128-bit lanes, looked up by nibble */
    const __m256i levels = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)quant_iq4nl_values));
    return _mm256_shuffle_epi8(levels, nibbles_32(blk->qs));
}

/* --- K-quant super-blocks ------------------------------------------------- */

/* Q6_K: the 128 quants of one half of a super-block as 4 registers of 32
 * bytes 0..63 in Q8_K element order (the stored value is q - 32). ql points
 * at the half's 64 bytes of low nibbles, qh at its 32 bytes of high bit
 * pairs; quarter k takes nibble k / 2 of ql[32 (k % 2) + l] and bit pair k
 * of qh[l]. */
CPU_UNPACK_AVX2_FN void cpu_unpack_q6_k_half_avx2(const uint8_t *ql, const uint8_t *qh, __m256i q[4])
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    const __m256i top_bits = _mm256_set1_epi8(0x30);
    __m256i ql0 = _mm256_loadu_si256((const __m256i *)ql);
    __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i high = _mm256_loadu_si256((const __m256i *)qh);
    __m256i low[4] = {_mm256_and_si256(ql0, low_mask), _mm256_and_si256(ql1, low_mask),
                      _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low_mask),
                      _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low_mask)};
    /* bit pair k moved straight to bits 4-5 (a shift by 4 - 2k, then one mask) */
    __m256i top[4] = {_mm256_and_si256(_mm256_slli_epi16(high, 4), top_bits),
                      _mm256_and_si256(_mm256_slli_epi16(high, 2), top_bits), _mm256_and_si256(high, top_bits),
                      _mm256_and_si256(_mm256_srli_epi16(high, 2), top_bits)};
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_or_si256(low[k], top[k]);
}

/* A K-quant super-block unpacked for integer sums against Q8_K activations
 * (see cpu_tile_avx2.c): q[k] the 32 unsigned quants of sub-block k in Q8_K
 * element order; scale[k] their int16 scales, lanes 0-7 the first group of
 * 16, lanes 8-15 the second; corr the 16 groups' offset or min factors;
 * sum w a = a.d (d sum scale q y - m sum_g corr_g bsum_g). */
typedef enum format_k { FORMAT_Q2_K, FORMAT_Q3_K, FORMAT_Q4_K, FORMAT_Q5_K, FORMAT_Q6_K } format_k;

typedef struct k_vectors {
    __m256i q[8];
    __m256i scale[8];
    __m256i corr; /* 16 int16, one per group of 16 */
    float d, m;
} k_vectors;

/* Block b of a K-quant row into *u (cpu_tile_avx2.c; AVX2 code, not
 * inlined, so u stays in memory). */
void cpu_unpack_k_avx2(format_k format, const char *row, int64_t b, k_vectors *u);

#endif
#endif
