/* AVX2 block unpacking shared by the dot products (cpu_dot_avx2*.c) and the
 * tiled kernels (cpu_tile_avx2.c), so each format's bit layout is decoded in
 * one place. Private to backends/cpu; x86 GCC/clang builds only. The helpers
 * carry the AVX2 target attribute themselves, so they inline into any caller
 * compiled for AVX2 or a superset of it. */
#ifndef STRATA_CPU_UNPACK_AVX2_H
#define STRATA_CPU_UNPACK_AVX2_H

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <stdint.h>

#define CPU_UNPACK_AVX2_FN __attribute__((target("avx2,fma,f16c"), always_inline)) static inline

/* Q6_K: the 128 quants of one half of a super-block as 4 registers of 32
 * bytes 0..63 in Q8_K element order (the stored value is q - 32). ql points
 * at the half's 64 bytes of low nibbles, qh at its 32 bytes of high bit
 * pairs; quarter k takes nibble k / 2 of ql[32 (k % 2) + l] and bit pair k
 * of qh[l]. */
CPU_UNPACK_AVX2_FN void cpu_unpack_q6_k_half_avx2(const uint8_t *ql, const uint8_t *qh, __m256i q[4])
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    const __m256i two_bits = _mm256_set1_epi8(3);
    __m256i ql0 = _mm256_loadu_si256((const __m256i *)ql);
    __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i high = _mm256_loadu_si256((const __m256i *)qh);
    __m256i low[4] = {_mm256_and_si256(ql0, low_mask), _mm256_and_si256(ql1, low_mask),
                      _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low_mask),
                      _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low_mask)};
    __m256i top[4] = {_mm256_and_si256(high, two_bits), _mm256_and_si256(_mm256_srli_epi16(high, 2), two_bits),
                      _mm256_and_si256(_mm256_srli_epi16(high, 4), two_bits),
                      _mm256_and_si256(_mm256_srli_epi16(high, 6), two_bits)};
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_or_si256(low[k], _mm256_slli_epi16(top[k], 4));
}

#endif
#endif
