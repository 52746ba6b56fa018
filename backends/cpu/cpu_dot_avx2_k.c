/* AVX2 + FMA + F16C dot products of the K-quant formats that cpu_dot_avx2.c
 * does not cover (Q5_K, Q3_K, Q2_K) against Q8_K activations. Same scheme as
 * Q4_K there: rebuild 32 unsigned weight quants per register, multiply them
 * with the activation bytes by _mm256_maddubs_epi16 (int16 pair sums, far from
 * saturating for quants below 64), weight the pair sums with the group scales
 * by _mm256_madd_epi16 into int32, and convert once per super-block. Offsets
 * and mins are taken out through the activation's group sums (bsums) or a
 * second maddubs, never by making the quants signed. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>

#include "../../runtime/quant.h"
#include "cpu_kernels.h"

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

AVX2_FN static inline float half_to_f32_k(uint16_t h)
{
    return _cvtsh_ss(h);
}

AVX2_FN static inline float hsum_ps_k(__m256 v)
{
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* Scale and min j (0..7) of Q4_K/Q5_K: 6 bits each, packed in 12 bytes. */
static inline void k_scale_min(int j, const uint8_t packed[K_SCALE_SIZE], int *scale, int *min)
{
    if (j < 4) {
        *scale = packed[j] & 63;
        *min = packed[j + 4] & 63;
    } else {
        *scale = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
        *min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
    }
}

/* Bytes of v whose bit `bit` is set become `value`, the others 0. */
AVX2_FN static inline __m256i bit_to_bytes(__m256i v, int bit, uint8_t value)
{
    const __m256i mask = _mm256_set1_epi8((char)(1u << bit));
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask);
    return _mm256_and_si256(set, _mm256_set1_epi8((char)value));
}

/* Q5_K: the Q4_K nibbles plus a fifth bit, bit (e / 32) of qh[e % 32]. */
AVX2_FN float cpu_dot_q5_k_avx2(int64_t n, const void *w, const void *a)
{
    const block_q5_K *wb = w;
    const block_q8_K *ab = a;
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float mins_total = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int scales[8], mins[8];
        int32_t min_sum = 0;
        for (int j = 0; j < 8; j++) {
            k_scale_min(j, wb[b].scales, &scales[j], &mins[j]);
            min_sum += mins[j] * (ab[b].bsums[2 * j] + ab[b].bsums[2 * j + 1]);
        }
        __m256i qh = _mm256_loadu_si256((const __m256i *)wb[b].qh);
        __m256i sumi = _mm256_setzero_si256();
        for (int chunk = 0; chunk < 4; chunk++) {
            __m256i packed = _mm256_loadu_si256((const __m256i *)(wb[b].qs + 32 * chunk));
            __m256i q_low = _mm256_or_si256(_mm256_and_si256(packed, low_mask), bit_to_bytes(qh, 2 * chunk, 16));
            __m256i q_high = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask),
                                             bit_to_bytes(qh, 2 * chunk + 1, 16));
            __m256i y_low = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 64 * chunk));
            __m256i y_high = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 64 * chunk + 32));
            /* pair sums <= 2*31*127 in int16, times the 6-bit scale in int32 */
            __m256i p_low = _mm256_madd_epi16(_mm256_maddubs_epi16(q_low, y_low),
                                              _mm256_set1_epi16((int16_t)scales[2 * chunk]));
            __m256i p_high = _mm256_madd_epi16(_mm256_maddubs_epi16(q_high, y_high),
                                               _mm256_set1_epi16((int16_t)scales[2 * chunk + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_low, p_high));
        }
        float d = ab[b].d * half_to_f32_k(wb[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        mins_total += ab[b].d * half_to_f32_k(wb[b].dmin) * (float)min_sum;
    }
    return hsum_ps_k(acc) - mins_total;
}

#endif
