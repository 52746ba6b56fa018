/* AVX2 + FMA + F16C dot products. Each function is compiled for those
 * extensions alone (target attribute), so the library needs no global -mavx2
 * and the table in cpu_kernels.c picks them only when the CPU has them.
 *
 * Integer products use _mm256_maddubs_epi16 (unsigned x signed bytes, pairs
 * summed to int16). Signed x signed is made unsigned x signed with the sign
 * trick |x| * (y * sign(x)); x = -128 still works (|x| reads as 128
 * unsigned) but y = -128 would not (its negation overflows), and y is always
 * our own activation, quantized to -127..127. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <string.h>

#include "../../base/quant.h"
#include "cpu_kernels.h"
#include "cpu_prefetch.h"
#include "cpu_unpack_avx2.h"

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

/* One half float to f32 with the F16C instruction (no call). */
AVX2_FN static inline float half_to_f32(uint16_t h)
{
    return _cvtsh_ss(h);
}

AVX2_FN static inline float hsum_ps(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

AVX2_FN static inline __m256i sum_pairs_i16(__m256i v)
{
    return _mm256_madd_epi16(v, _mm256_set1_epi16(1));
}

/* 8 int32 lanes of sums of products of 32 signed bytes */
AVX2_FN static inline __m256i dot_i8_32(__m256i x, __m256i y)
{
    __m256i ax = _mm256_sign_epi8(x, x);
    __m256i sy = _mm256_sign_epi8(y, x);
    return sum_pairs_i16(_mm256_maddubs_epi16(ax, sy));
}

AVX2_FN float cpu_dot_f32_avx2(int64_t n, const void *w, const void *a)
{
    const float *wf = w, *af = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i), _mm256_loadu_ps(af + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i + 8), _mm256_loadu_ps(af + i + 8), acc1);
    }
    float sum = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        sum += wf[i] * af[i];
    return sum;
}

AVX2_FN float cpu_dot_f16_avx2(int64_t n, const void *w, const void *a)
{
    const uint16_t *wh = w;
    const float *af = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wh + i)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wh + i + 8)));
        acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(af + i), acc0);
        acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(af + i + 8), acc1);
    }
    float sum = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        sum += fp16_to_f32(wh[i]) * af[i];
    return sum;
}

AVX2_FN float cpu_dot_bf16_avx2(int64_t n, const void *w, const void *a)
{
    const uint16_t *wh = w;
    const float *af = a;
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(wh + i)));
        __m256 wf = _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
        acc = _mm256_fmadd_ps(wf, _mm256_loadu_ps(af + i), acc);
    }
    float sum = hsum_ps(acc);
    for (; i < n; i++)
        sum += bf16_to_f32(wh[i]) * af[i];
    return sum;
}

AVX2_FN float cpu_dot_q8_0_avx2(int64_t n, const void *w, const void *a)
{
    const block_q8_0 *wb = w;
    const block_q8_0 *ab = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK8_0; b++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)wb[b].qs);
        __m256i y = _mm256_loadu_si256((const __m256i *)ab[b].qs);
        __m256 d = _mm256_set1_ps(half_to_f32(wb[b].d) * half_to_f32(ab[b].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_32(x, y)), acc);
    }
    return hsum_ps(acc);
}

AVX2_FN float cpu_dot_q4_0_avx2(int64_t n, const void *w, const void *a)
{
    const block_q4_0 *wb = w;
    const block_q8_0 *ab = a;
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK4_0; b++) {
        __m128i packed = _mm_loadu_si128((const __m128i *)wb[b].qs);
        /* bytes 0..15: low nibbles (elements 0..15), 16..31: high nibbles */
        __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
        __m256i x = _mm256_sub_epi8(_mm256_and_si256(both, low_mask), eight);
        __m256i y = _mm256_loadu_si256((const __m256i *)ab[b].qs);
        __m256 d = _mm256_set1_ps(half_to_f32(wb[b].d) * half_to_f32(ab[b].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_32(x, y)), acc);
    }
    return hsum_ps(acc);
}

/* fifth_bits and nibbles_32 (Q5_0/Q5_1 high bits, Q4_1/Q5_1 nibbles): cpu_unpack_avx2.h. */

/* w = d q + m: sum w a = d da sum(q qa) + m s, q unsigned (0..15). */
AVX2_FN float cpu_dot_q4_1_avx2(int64_t n, const void *w, const void *a)
{
    const block_q4_1 *wb = w;
    const block_q8_1 *ab = a;
    __m256 acc = _mm256_setzero_ps();
    float offsets = 0.0f;
    for (int64_t b = 0; b < n / QK4_1; b++) {
        __m256i y = _mm256_loadu_si256((const __m256i *)ab[b].qs);
        __m256i sumi = sum_pairs_i16(_mm256_maddubs_epi16(nibbles_32(wb[b].qs), y));
        __m256 d = _mm256_set1_ps(half_to_f32(wb[b].d) * half_to_f32(ab[b].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
        offsets += half_to_f32(wb[b].m) * half_to_f32(ab[b].s);
    }
    return hsum_ps(acc) + offsets;
}

/* Q5_1: as Q4_1 with the fifth bit (q unsigned, 0..31). */
AVX2_FN float cpu_dot_q5_1_avx2(int64_t n, const void *w, const void *a)
{
    const block_q5_1 *wb = w;
    const block_q8_1 *ab = a;
    __m256 acc = _mm256_setzero_ps();
    float offsets = 0.0f;
    for (int64_t b = 0; b < n / QK5_1; b++) {
        __m256i q = _mm256_or_si256(nibbles_32(wb[b].qs), fifth_bits(wb[b].qh));
        __m256i y = _mm256_loadu_si256((const __m256i *)ab[b].qs);
        __m256i sumi = sum_pairs_i16(_mm256_maddubs_epi16(q, y));
        __m256 d = _mm256_set1_ps(half_to_f32(wb[b].d) * half_to_f32(ab[b].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
        offsets += half_to_f32(wb[b].m) * half_to_f32(ab[b].s);
    }
    return hsum_ps(acc) + offsets;
}

/* Q5_0: 5-bit quants with an offset of 16 (signed, -16..15). */
AVX2_FN float cpu_dot_q5_0_avx2(int64_t n, const void *w, const void *a)
{
    const block_q5_0 *wb = w;
    const block_q8_0 *ab = a;
    const __m256i sixteen = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK5_0; b++) {
        __m256i q = _mm256_or_si256(nibbles_32(wb[b].qs), fifth_bits(wb[b].qh));
        __m256i x = _mm256_sub_epi8(q, sixteen);
        __m256i y = _mm256_loadu_si256((const __m256i *)ab[b].qs);
        __m256 d = _mm256_set1_ps(half_to_f32(wb[b].d) * half_to_f32(ab[b].d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_32(x, y)), acc);
    }
    return hsum_ps(acc);
}

/* int16 lane j of both 128-bit halves of v, in all 16 lanes (v holds the
 * same 8 int16 in both halves). */
#define LANE16(v, j) _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(((2 * (j) + 1) << 8) | (2 * (j)))))

/* Q4_K: w = d scale_j q - dmin min_j over 8 sub-blocks of 32 (q 0..15).
 * The 12 packed scale bytes are unpacked by vector operations
 * (cpu_unpack_avx2.h) into 8 scales and 8 mins as int16; the mins meet the
 * activation's group sums in one madd. */
AVX2_FN float cpu_dot_q4_k_avx2(int64_t n, const void *w, const void *a)
{
    const block_q4_K *wb = w;
    const block_q8_K *ab = a;
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        __m256i scales_mins = _mm256_cvtepu8_epi16(scales_mins_6bit_bytes(wb[b].scales));
        __m256i scales = _mm256_permute4x64_epi64(scales_mins, 0x44); /* scales 0-7 in both halves */
        __m128i mins = _mm256_extracti128_si256(scales_mins, 1);
        /* each min covers two groups of 16: m0 m0 m1 m1 ... m7 m7 */
        __m256i mins16 = _mm256_set_m128i(_mm_unpackhi_epi16(mins, mins), _mm_unpacklo_epi16(mins, mins));
        __m256i min_sums = _mm256_madd_epi16(mins16, _mm256_loadu_si256((const __m256i *)ab[b].bsums));
        const int8_t *y = ab[b].qs;
        __m256i sumi = _mm256_setzero_si256();
#define Q4_K_CHUNK(c)                                                                                                  \
    do {                                                                                                               \
        __m256i packed = _mm256_loadu_si256((const __m256i *)(wb[b].qs + 32 * (c)));                                   \
        __m256i q_low = _mm256_and_si256(packed, low_mask);                                                            \
        __m256i q_high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);                                     \
        __m256i p_low = _mm256_madd_epi16(_mm256_maddubs_epi16(q_low, _mm256_loadu_si256((const __m256i *)(y + 64 * (c)))), \
                                          LANE16(scales, 2 * (c)));                                                    \
        __m256i p_high = _mm256_madd_epi16(                                                                            \
            _mm256_maddubs_epi16(q_high, _mm256_loadu_si256((const __m256i *)(y + 64 * (c) + 32))),                    \
            LANE16(scales, 2 * (c) + 1));                                                                              \
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_low, p_high));                                                \
    } while (0)
        Q4_K_CHUNK(0);
        Q4_K_CHUNK(1);
        Q4_K_CHUNK(2);
        Q4_K_CHUNK(3);
#undef Q4_K_CHUNK
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ab[b].d * half_to_f32(wb[b].d)), _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fnmadd_ps(_mm256_set1_ps(ab[b].d * half_to_f32(wb[b].dmin)), _mm256_cvtepi32_ps(min_sums), acc);
    }
    return hsum_ps(acc);
}

/* Q6_K: w = d scale_g (q - 32), q 0..63 from 4 low bits in ql and 2 high
 * bits in qh, one int8 scale per group of 16. The 32 is taken out through
 * the activation's group sums: 32 sum_g scale_g bsum_g, one madd. The quants
 * are unpacked by halves (cpu_unpack_avx2.h). */
AVX2_FN float cpu_dot_q6_k_avx2(int64_t n, const void *w, const void *a)
{
    const block_q6_K *wb = w;
    const block_q8_K *ab = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        __m256i scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb[b].scales));
        __m256i offset_sums = _mm256_madd_epi16(scales, _mm256_loadu_si256((const __m256i *)ab[b].bsums));
        __m256i sumi = _mm256_setzero_si256();
        _Pragma("GCC unroll 2")
        for (int half = 0; half < 2; half++) {
            __m256i quants[4]; /* 0..63 */
            cpu_unpack_q6_k_half_avx2(wb[b].ql + 64 * half, wb[b].qh + 32 * half, quants);
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                __m256i q = quants[k];
                __m256i y = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 128 * half + 32 * k));
                __m256i scale = group_pair_scales(scales, 4 * half + k); /* sub-block 4 half + k's */
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), scale));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(offset_sums, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ab[b].d * half_to_f32(wb[b].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps(acc);
}

#endif
