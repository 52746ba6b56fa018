/* AVX2 versions of the activation quantizers of cpu_quantize.c, chosen by
 * cpu_quantize_activation where the CPU has AVX2. They give the same bytes
 * as the scalar ones for finite input (test_backend_ops compares them): the
 * same amax, the same scale and its reciprocal computed in scalar code, the
 * same products, and vcvtps2dq rounds half to even as lrintf does under the
 * default rounding mode. In a prompt's matmuls the scalar code, with its
 * libm calls per element, took about 5 % of the time (perf, llama3-8b
 * Q4_K_M pp64). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>

#include "../../base/quant.h"
#include "cpu_kernels.h"

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

AVX2_FN static inline float abs_max(const float *x, int n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8)
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 values times inv, rounded to int8; the sums of their two halves of
 * 16 in half_sums. */
AVX2_FN static inline void round_32(const float *x, float inv, int8_t *qs, int half_sums[2])
{
    const __m256 scale = _mm256_set1_ps(inv);
    __m256i q[4];
    for (int i = 0; i < 4; i++)
        q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), scale));
    /* int32 -> int16 (elements 0..15, then 16..31, each with its 128-bit
     * lanes interleaved) -> int8; the permute puts the bytes back in order */
    __m256i first = _mm256_packs_epi32(q[0], q[1]), second = _mm256_packs_epi32(q[2], q[3]);
    __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(first, second),
                                                _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, bytes);
    const __m256i ones = _mm256_set1_epi16(1);
    /* per 128-bit lane: two partial sums of the first half, two of the second */
    __m256i partial = _mm256_hadd_epi32(_mm256_madd_epi16(first, ones), _mm256_madd_epi16(second, ones));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(partial), _mm256_extracti128_si256(partial, 1));
    s = _mm_hadd_epi32(s, s);
    half_sums[0] = _mm_cvtsi128_si32(s);
    half_sums[1] = _mm_extract_epi32(s, 1);
}

/* One block of 32: quants into qs, the sums of its halves in half_sums;
 * returns the block's scale (cpu_quantize.c's quantize_32). */
AVX2_FN static inline float quantize_32(const float *x, int8_t *qs, int half_sums[2])
{
    float d = abs_max(x, 32) / 127.0f;
    round_32(x, cpu_act_scale_inverse(&d), qs, half_sums);
    return d;
}

AVX2_FN void cpu_quantize_q8_0_avx2(const float *x, void *dst, int64_t n)
{
    block_q8_0 *blocks = dst;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        int half_sums[2];
        blocks[b].d = f32_to_fp16(quantize_32(x + b * QK8_0, blocks[b].qs, half_sums));
    }
}

AVX2_FN void cpu_quantize_q8_1_avx2(const float *x, void *dst, int64_t n)
{
    block_q8_1 *blocks = dst;
    for (int64_t b = 0; b < n / QK8_1; b++) {
        int half_sums[2];
        uint16_t d16 = f32_to_fp16(quantize_32(x + b * QK8_1, blocks[b].qs, half_sums));
        /* the dot products use the rounded d, so s must be computed from it too */
        blocks[b].d = d16;
        blocks[b].s = f32_to_fp16(fp16_to_f32(d16) * (float)(half_sums[0] + half_sums[1]));
    }
}

AVX2_FN void cpu_quantize_q8_k_avx2(const float *x, void *dst, int64_t n)
{
    block_q8_K *blocks = dst;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const float *xb = x + b * QK_K;
        block_q8_K *out = &blocks[b];
        float d = abs_max(xb, QK_K) / 127.0f;
        float inv = cpu_act_scale_inverse(&d);
        for (int i = 0; i < QK_K; i += 32) {
            int half_sums[2];
            round_32(xb + i, inv, out->qs + i, half_sums);
            out->bsums[i / 16] = (int16_t)half_sums[0];
            out->bsums[i / 16 + 1] = (int16_t)half_sums[1];
        }
        out->d = d;
    }
}

#endif
