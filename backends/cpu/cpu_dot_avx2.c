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

/* The 32 bits of a Q5_0/Q5_1 qh as 32 bytes: byte i is 16 when bit i is set,
 * 0 otherwise. Each 128-bit lane gathers the two qh bytes it covers (byte
 * i / 8) into every position, then tests bit i % 8. */
AVX2_FN static inline __m256i fifth_bits(const uint8_t qh_bytes[4])
{
    uint32_t qh;
    memcpy(&qh, qh_bytes, sizeof qh);
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL,
                                             0x0000000000000000LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

/* Q4_1/Q5_1 quants, low nibbles as bytes 0..15 and high nibbles as 16..31. */
AVX2_FN static inline __m256i nibbles_32(const uint8_t qs[16])
{
    __m128i packed = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

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

/* Scale and min j (0..7) of Q4_K: 6 bits each, packed in 12 bytes. */
static inline void q4_k_scale_min(int j, const uint8_t packed[K_SCALE_SIZE], int *scale, int *min)
{
    if (j < 4) {
        *scale = packed[j] & 63;
        *min = packed[j + 4] & 63;
    } else {
        *scale = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
        *min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
    }
}

AVX2_FN float cpu_dot_q4_k_avx2(int64_t n, const void *w, const void *a)
{
    const block_q4_K *wb = w;
    const block_q8_K *ab = a;
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float mins_total = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int scales[8], mins[8];
        int32_t min_sum = 0;
        for (int j = 0; j < 8; j++) {
            q4_k_scale_min(j, wb[b].scales, &scales[j], &mins[j]);
            min_sum += mins[j] * (ab[b].bsums[2 * j] + ab[b].bsums[2 * j + 1]);
        }
        __m256i sumi = _mm256_setzero_si256();
        for (int chunk = 0; chunk < 4; chunk++) {
            __m256i packed = _mm256_loadu_si256((const __m256i *)(wb[b].qs + 32 * chunk));
            __m256i q_low = _mm256_and_si256(packed, low_mask);
            __m256i q_high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
            __m256i y_low = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 64 * chunk));
            __m256i y_high = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 64 * chunk + 32));
            /* int16 pair sums (<= 2*15*127) times the 6-bit scale, summed in int32 by one madd */
            __m256i p_low = _mm256_madd_epi16(_mm256_maddubs_epi16(q_low, y_low),
                                              _mm256_set1_epi16((int16_t)scales[2 * chunk]));
            __m256i p_high = _mm256_madd_epi16(_mm256_maddubs_epi16(q_high, y_high),
                                               _mm256_set1_epi16((int16_t)scales[2 * chunk + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_low, p_high));
        }
        float d = ab[b].d * half_to_f32(wb[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        mins_total += ab[b].d * half_to_f32(wb[b].dmin) * (float)min_sum;
    }
    return hsum_ps(acc) - mins_total;
}

AVX2_FN float cpu_dot_q6_k_avx2(int64_t n, const void *w, const void *a)
{
    const block_q6_K *wb = w;
    const block_q8_K *ab = a;
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    const __m256i two_bits = _mm256_set1_epi8(3);
    const __m256i offset = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; b++) {
        __m256i sumi = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = wb[b].ql + 64 * half;
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(wb[b].qh + 32 * half));
            for (int k = 0; k < 4; k++) {
                __m256i ql_src = (k % 2) ? ql1 : ql0;
                __m256i low = k < 2 ? _mm256_and_si256(ql_src, low_mask)
                                    : _mm256_and_si256(_mm256_srli_epi16(ql_src, 4), low_mask);
                __m256i high;
                switch (k) {
                case 0: high = _mm256_and_si256(qh, two_bits); break;
                case 1: high = _mm256_and_si256(_mm256_srli_epi16(qh, 2), two_bits); break;
                case 2: high = _mm256_and_si256(_mm256_srli_epi16(qh, 4), two_bits); break;
                default: high = _mm256_and_si256(_mm256_srli_epi16(qh, 6), two_bits); break;
                }
                __m256i q = _mm256_or_si256(low, _mm256_slli_epi16(high, 4)); /* 0..63 */
                __m256i y = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 128 * half + 32 * k));
                /* (q - 32) y = q y - 32 y, both as int16 pair sums */
                __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), _mm256_maddubs_epi16(offset, y));
                /* the first 16 bytes (8 int16 lanes) take one scale, the rest the next */
                int group = 8 * half + 2 * k;
                __m256i scale = _mm256_set_m128i(_mm_set1_epi16(wb[b].scales[group + 1]),
                                                 _mm_set1_epi16(wb[b].scales[group]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale));
            }
        }
        float d = ab[b].d * half_to_f32(wb[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps(acc);
}

#endif
