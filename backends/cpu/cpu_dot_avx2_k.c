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

#include "../../base/quant.h"
#include "cpu_kernels.h"
#include "cpu_prefetch.h"

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

/* The first 8 int16 lanes take scale lo, the last 8 scale hi. */
AVX2_FN static inline __m256i two_scales(int lo, int hi)
{
    return _mm256_set_m128i(_mm_set1_epi16((int16_t)hi), _mm_set1_epi16((int16_t)lo));
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
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
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

/* The 16 6-bit scales of Q3_K (see cpu_dot_scalar_k.c), offset removed. */
static inline void q3_k_scales(const uint8_t packed[12], int scales[16])
{
    for (int i = 0; i < 16; i++) {
        int low = i < 8 ? packed[i] & 0x0F : packed[i - 8] >> 4;
        int high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        scales[i] = (low | (high << 4)) - 32;
    }
}

/* Q3_K: quant = low2 + 4 hbit - 4, taken as u = low2 + 4 hbit (0..7) and
 * (u - 4) y = u y - 4 y in int16 pair sums. Each 128-element half reads 32
 * bytes of qs; quarter k takes bit pair k of them and bit (4 half + k) of
 * hmask; its 32 elements are two groups of 16 with their own scales. */
AVX2_FN float cpu_dot_q3_k_avx2(int64_t n, const void *w, const void *a)
{
    const block_q3_K *wb = w;
    const block_q8_K *ab = a;
    const __m256i two_bits = _mm256_set1_epi8(3);
    const __m256i four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        int scales[16];
        q3_k_scales(wb[b].scales, scales);
        __m256i hmask = _mm256_loadu_si256((const __m256i *)wb[b].hmask);
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            __m256i qs = _mm256_loadu_si256((const __m256i *)(wb[b].qs + 32 * half));
            for (int k = 0; k < 4; k++) {
                __m256i low = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), two_bits);
                __m256i u = _mm256_or_si256(low, bit_to_bytes(hmask, 4 * half + k, 4));
                __m256i y = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 128 * half + 32 * k));
                __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, y), _mm256_maddubs_epi16(four, y));
                int group = 8 * half + 2 * k;
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, two_scales(scales[group], scales[group + 1])));
            }
        }
        float d = ab[b].d * half_to_f32_k(wb[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps_k(acc);
}

/* Q2_K: quant = 2 bits (0..3), same element order as Q3_K; scale = low
 * nibble and min = high nibble of scales[g]; sum w a = d sum_g scale_g
 * sum(q y) - dmin sum_g min_g bsums_g, all times the activation's d. */
AVX2_FN float cpu_dot_q2_k_avx2(int64_t n, const void *w, const void *a)
{
    const block_q2_K *wb = w;
    const block_q8_K *ab = a;
    const __m256i two_bits = _mm256_set1_epi8(3);
    const __m128i low_mask = _mm_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float mins_total = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        __m128i packed = _mm_loadu_si128((const __m128i *)wb[b].scales);
        __m256i mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low_mask));
        __m256i bsums = _mm256_loadu_si256((const __m256i *)ab[b].bsums);
        __m256i min_prod = _mm256_madd_epi16(mins16, bsums);
        __m128i min_sum4 = _mm_add_epi32(_mm256_castsi256_si128(min_prod), _mm256_extracti128_si256(min_prod, 1));
        min_sum4 = _mm_add_epi32(min_sum4, _mm_shuffle_epi32(min_sum4, 0x4E));
        min_sum4 = _mm_add_epi32(min_sum4, _mm_shuffle_epi32(min_sum4, 0xB1));
        int32_t min_sum = _mm_cvtsi128_si32(min_sum4);
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            __m256i qs = _mm256_loadu_si256((const __m256i *)(wb[b].qs + 32 * half));
            for (int k = 0; k < 4; k++) {
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), two_bits);
                __m256i y = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 128 * half + 32 * k));
                int group = 8 * half + 2 * k;
                __m256i scale = two_scales(wb[b].scales[group] & 0x0F, wb[b].scales[group + 1] & 0x0F);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), scale));
            }
        }
        float d = ab[b].d * half_to_f32_k(wb[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        mins_total += ab[b].d * half_to_f32_k(wb[b].dmin) * (float)min_sum;
    }
    return hsum_ps_k(acc) - mins_total;
}

#endif
