/* AVX2 + FMA + F16C attention kernels (layouts in cpu_attention.h). Compiled
 * for those extensions alone (target attribute); cpu_attention_kernels_for
 * hands them out only when the CPU has them.
 *
 * Each kernel is written once for up to four query rows and instantiated
 * for 1..4 by a switch on a constant, so the accumulators of the rows stay
 * in registers and every K or V vector loaded is used by all of them. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <math.h>

#include "cpu_attention.h"

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) static inline

AVX2_INLINE float hsum8(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

AVX2_INLINE float hmax8(__m256 v)
{
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* exp of eight floats in [-87, 88]: x = n ln2 + r with |r| <= ln2/2, exp(r)
 * by the degree-7 polynomial of Cephes' expf (about 1 ulp), times 2^n. n is
 * rounded by adding 1.5 * 2^23 (the float's low mantissa bits then hold n
 * as an integer), which also gives 2^n's exponent bits by one shift. */
AVX2_INLINE __m256 exp8_in_range(__m256 x)
{
    const __m256 shifter = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23 */
    __m256 shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), shifter);
    __m256 n = _mm256_sub_ps(shifted, shifter);
    /* ln2 in two parts, so n * ln2_hi is exact */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* low bits of shifted: n (two's complement, |n| < 2^22); << 23 puts it in
     * the exponent field, + 127 << 23 biases it */
    __m256i exponent = _mm256_add_epi32(_mm256_slli_epi32(_mm256_castps_si256(shifted), 23),
                                        _mm256_set1_epi32(127 << 23));
    return _mm256_mul_ps(y, _mm256_castsi256_ps(exponent));
}

/* exp of eight floats that are <= 0 (softmax weights): below -87 (-inf
 * included) exactly 0, so hidden columns drop out by selection. */
AVX2_INLINE __m256 exp8_nonpositive(__m256 x)
{
    const __m256 low = _mm256_set1_ps(-87.0f);
    __m256 underflow = _mm256_cmp_ps(x, low, _CMP_LT_OQ);
    return _mm256_andnot_ps(underflow, exp8_in_range(_mm256_max_ps(x, low)));
}

/* exp of eight floats >= 0, saturating near FLT_MAX above 88. */
AVX2_INLINE __m256 exp8_nonnegative(__m256 x)
{
    return exp8_in_range(_mm256_min_ps(x, _mm256_set1_ps(88.0f)));
}

AVX2_INLINE void scores_rows(const float *q, const int n_rows, int64_t head_dim, const float *kt, int64_t block,
                             int64_t c0, int64_t c1, float *s)
{
    int64_t c = c0;
    for (; c + 16 <= c1; c += 16) {
        __m256 acc[CPU_ATTENTION_ROWS][2];
        for (int r = 0; r < n_rows; r++)
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int64_t d = 0; d < head_dim; d++) {
            __m256 k0 = _mm256_loadu_ps(kt + d * block + c), k1 = _mm256_loadu_ps(kt + d * block + c + 8);
            for (int r = 0; r < n_rows; r++) {
                __m256 qd = _mm256_broadcast_ss(q + r * head_dim + d);
                acc[r][0] = _mm256_fmadd_ps(qd, k0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(qd, k1, acc[r][1]);
            }
        }
        for (int r = 0; r < n_rows; r++) {
            _mm256_storeu_ps(s + r * block + c, acc[r][0]);
            _mm256_storeu_ps(s + r * block + c + 8, acc[r][1]);
        }
    }
    if (c < c1) { /* one vector of eight columns left */
        __m256 acc[CPU_ATTENTION_ROWS];
        for (int r = 0; r < n_rows; r++)
            acc[r] = _mm256_setzero_ps();
        for (int64_t d = 0; d < head_dim; d++) {
            __m256 k0 = _mm256_loadu_ps(kt + d * block + c);
            for (int r = 0; r < n_rows; r++)
                acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(q + r * head_dim + d), k0, acc[r]);
        }
        for (int r = 0; r < n_rows; r++)
            _mm256_storeu_ps(s + r * block + c, acc[r]);
    }
}

AVX2_FN static void scores_avx2(const float *q, int n_rows, int64_t head_dim, const float *kt, int64_t block,
                                int64_t c0, int64_t c1, float *s)
{
    switch (n_rows) {
    case 1: scores_rows(q, 1, head_dim, kt, block, c0, c1, s); break;
    case 2: scores_rows(q, 2, head_dim, kt, block, c0, c1, s); break;
    case 3: scores_rows(q, 3, head_dim, kt, block, c0, c1, s); break;
    default: scores_rows(q, 4, head_dim, kt, block, c0, c1, s); break;
    }
}

/* cap * tanh(x / cap) with tanh(y) = sign(y) (1 - 2 / (exp(2|y|) + 1)): its
 * absolute error is about one f32 ulp of 1, which moves a score by cap * 6e-8. */
AVX2_FN static void softcap_avx2(float *x, int64_t n, float cap)
{
    const __m256 sign_bit = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    const __m256 cap8 = _mm256_set1_ps(cap), two_over_cap = _mm256_set1_ps(2.0f / cap);
    for (int64_t i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 sign = _mm256_and_ps(v, sign_bit);
        __m256 e = exp8_nonnegative(_mm256_mul_ps(_mm256_andnot_ps(sign_bit, v), two_over_cap));
        __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(cap8, _mm256_or_ps(t, sign)));
    }
}

AVX2_FN static float softmax_step_avx2(float *x, int64_t n, float *max, float *sum)
{
    __m256 m8 = _mm256_set1_ps(*max);
    for (int64_t i = 0; i + 8 <= n; i += 8)
        m8 = _mm256_max_ps(m8, _mm256_loadu_ps(x + i));
    float m = hmax8(m8);
    float alpha = expf(*max - m); /* exp(-inf) = 0 on the first visible block */
    __m256 mv = _mm256_set1_ps(m), total = _mm256_setzero_ps();
    for (int64_t i = 0; i + 8 <= n; i += 8) {
        __m256 p = exp8_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, p);
        total = _mm256_add_ps(total, p);
    }
    *sum = *sum * alpha + hsum8(total);
    *max = m;
    return alpha;
}

AVX2_INLINE void accumulate_rows(float *out, const float *alpha, const int n_rows, int64_t head_dim, const float *s,
                                 int64_t block, const float *v, int64_t c0, int64_t c1)
{
    int64_t d = 0;
    for (; d + 16 <= head_dim; d += 16) {
        __m256 acc[CPU_ATTENTION_ROWS][2];
        for (int r = 0; r < n_rows; r++) {
            __m256 a = _mm256_broadcast_ss(alpha + r);
            acc[r][0] = _mm256_mul_ps(a, _mm256_loadu_ps(out + r * head_dim + d));
            acc[r][1] = _mm256_mul_ps(a, _mm256_loadu_ps(out + r * head_dim + d + 8));
        }
        for (int64_t c = c0; c < c1; c++) {
            __m256 v0 = _mm256_loadu_ps(v + c * head_dim + d), v1 = _mm256_loadu_ps(v + c * head_dim + d + 8);
            for (int r = 0; r < n_rows; r++) {
                __m256 p = _mm256_broadcast_ss(s + r * block + c);
                acc[r][0] = _mm256_fmadd_ps(p, v0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(p, v1, acc[r][1]);
            }
        }
        for (int r = 0; r < n_rows; r++) {
            _mm256_storeu_ps(out + r * head_dim + d, acc[r][0]);
            _mm256_storeu_ps(out + r * head_dim + d + 8, acc[r][1]);
        }
    }
    for (; d + 8 <= head_dim; d += 8) {
        /* two sets of accumulators (even and odd columns, c1 - c0 is even):
         * with one vector per row a single chain would wait on each fma */
        __m256 even[CPU_ATTENTION_ROWS], odd[CPU_ATTENTION_ROWS];
        for (int r = 0; r < n_rows; r++) {
            even[r] = _mm256_mul_ps(_mm256_broadcast_ss(alpha + r), _mm256_loadu_ps(out + r * head_dim + d));
            odd[r] = _mm256_setzero_ps();
        }
        for (int64_t c = c0; c < c1; c += 2) {
            __m256 v0 = _mm256_loadu_ps(v + c * head_dim + d), v1 = _mm256_loadu_ps(v + (c + 1) * head_dim + d);
            for (int r = 0; r < n_rows; r++) {
                even[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(s + r * block + c), v0, even[r]);
                odd[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(s + r * block + c + 1), v1, odd[r]);
            }
        }
        for (int r = 0; r < n_rows; r++)
            _mm256_storeu_ps(out + r * head_dim + d, _mm256_add_ps(even[r], odd[r]));
    }
    for (; d < head_dim; d++) /* head_dim not a multiple of 8 */
        for (int r = 0; r < n_rows; r++) {
            float o = out[r * head_dim + d] * alpha[r];
            for (int64_t c = c0; c < c1; c++)
                o += s[r * block + c] * v[c * head_dim + d];
            out[r * head_dim + d] = o;
        }
}

AVX2_FN static void accumulate_avx2(float *out, const float *alpha, int n_rows, int64_t head_dim, const float *s,
                                    int64_t block, const float *v, int64_t c0, int64_t c1)
{
    switch (n_rows) {
    case 1: accumulate_rows(out, alpha, 1, head_dim, s, block, v, c0, c1); break;
    case 2: accumulate_rows(out, alpha, 2, head_dim, s, block, v, c0, c1); break;
    case 3: accumulate_rows(out, alpha, 3, head_dim, s, block, v, c0, c1); break;
    default: accumulate_rows(out, alpha, 4, head_dim, s, block, v, c0, c1); break;
    }
}

AVX2_FN static void f16_to_f32_avx2(const uint16_t *src, float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = _cvtsh_ss(src[i]);
}

/* Eight dimensions of row i at rows + i * row_stride, from dimension d. */
AVX2_INLINE __m256 k_row8(const char *rows, size_t row_stride, bool f16, int i, int64_t d)
{
    const char *row = rows + (size_t)i * row_stride;
    if (f16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + d)));
    return _mm256_loadu_ps((const float *)row + d);
}

/* 8 x 8 blocks transposed in registers (unpack, shuffle, lane permute):
 * eight row loads become eight column stores. */
AVX2_FN static void k_columns8_avx2(const char *rows, size_t row_stride, bool f16, int64_t head_dim, float *kt,
                                    int64_t block)
{
    int64_t d = 0;
    for (; d + 8 <= head_dim; d += 8) {
        __m256 r0 = k_row8(rows, row_stride, f16, 0, d), r1 = k_row8(rows, row_stride, f16, 1, d);
        __m256 r2 = k_row8(rows, row_stride, f16, 2, d), r3 = k_row8(rows, row_stride, f16, 3, d);
        __m256 r4 = k_row8(rows, row_stride, f16, 4, d), r5 = k_row8(rows, row_stride, f16, 5, d);
        __m256 r6 = k_row8(rows, row_stride, f16, 6, d), r7 = k_row8(rows, row_stride, f16, 7, d);
        /* pairs of rows interleaved: t0 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5] */
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
        /* four rows per dimension: u0 = dims 0 and 4 of rows 0..3 */
        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        /* low lanes give dimensions 0..3, high lanes 4..7 */
        float *col = kt + d * block;
        _mm256_storeu_ps(col + 0 * block, _mm256_permute2f128_ps(u0, u4, 0x20));
        _mm256_storeu_ps(col + 1 * block, _mm256_permute2f128_ps(u1, u5, 0x20));
        _mm256_storeu_ps(col + 2 * block, _mm256_permute2f128_ps(u2, u6, 0x20));
        _mm256_storeu_ps(col + 3 * block, _mm256_permute2f128_ps(u3, u7, 0x20));
        _mm256_storeu_ps(col + 4 * block, _mm256_permute2f128_ps(u0, u4, 0x31));
        _mm256_storeu_ps(col + 5 * block, _mm256_permute2f128_ps(u1, u5, 0x31));
        _mm256_storeu_ps(col + 6 * block, _mm256_permute2f128_ps(u2, u6, 0x31));
        _mm256_storeu_ps(col + 7 * block, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; d < head_dim; d++) /* head_dim not a multiple of 8 */
        for (int i = 0; i < 8; i++) {
            const char *row = rows + (size_t)i * row_stride;
            kt[d * block + i] = f16 ? _cvtsh_ss(((const uint16_t *)row)[d]) : ((const float *)row)[d];
        }
}

const cpu_attention_kernels cpu_attention_kernels_avx2 = {
    .scores = scores_avx2,
    .softcap = softcap_avx2,
    .softmax_step = softmax_step_avx2,
    .accumulate = accumulate_avx2,
    .f16_to_f32 = f16_to_f32_avx2,
    .k_columns8 = k_columns8_avx2,
};

#endif
