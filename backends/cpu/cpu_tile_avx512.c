/* AVX-512 (F, BW, VL, VNNI) tiled matmul kernels for the 32-element formats
 * (Q8_0, Q4_0, Q5_0, IQ4_NL) against Q8_0 activations. Compiled for those
 * extensions alone (target attribute) and chosen by the table in
 * cpu_kernels.c only when cpuid reports them; STRATA_CPU_AVX2 turns them
 * off for comparing and testing.
 *
 * What AVX-512 changes against cpu_tile_avx2.c (see cpu_tile.h for the
 * tiling):
 * - one vpdpbusd (unsigned x signed bytes, four products summed into each
 *   int32 lane) replaces the sign trick, maddubs and madd. It wants the
 *   weights unsigned, so every format is made unsigned with an offset taken
 *   out through the activation's block sums, as Q4_0 already was: Q8_0 and
 *   IQ4_NL quants get 128 added (one xor per block);
 * - a register holds two weight rows (the low 256 bits row a, the high row
 *   b), each activation block is broadcast to both halves, so one
 *   instruction serves two rows and the folds, conversions and scalings of
 *   four tokens run once for both rows.
 * Each block is still unpacked by the AVX2 code (cpu_unpack_avx2.h). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>

#include "cpu_tile.h"
#include "cpu_tile_simd.h"
#include "cpu_unpack_avx2.h"

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) static inline
#define UNROLL _Pragma("GCC unroll 16")

/* Tokens one row-pair call handles: the accumulators of 8 tokens (2 groups
 * of 4) and the 4 token sums being folded leave most of the 32 registers
 * free; see BENCHMARKS.md for 16. */
#define TOKENS_PER_CALL 8

/* The offset each format's unsigned quants carry here (weights d (q -
 * offset)), as a shift: Q4_0 8, Q5_0 16, Q8_0 and IQ4_NL 128. */
static inline int offset_shift_512(format_32 format)
{
    return format == FORMAT_Q4_0 ? 3 : format == FORMAT_Q5_0 ? 4 : 7;
}

/* Up to four tokens' int32 sums (count 1..4), each 8 lanes of row a then 8
 * of row b, folded into one register: in each 128-bit lane, element i holds
 * part of token i's total, lanes 0 and 1 for row a, 2 and 3 for row b.
 * Missing tokens are 0. */
AVX512_FN INLINE __m512i fold_4_rows_2(const __m512i *sums, int count)
{
    const __m512i zero = _mm512_setzero_si512();
    __m512i s1 = count > 1 ? sums[1] : zero, s2 = count > 2 ? sums[2] : zero, s3 = count > 3 ? sums[3] : zero;
    /* per 128-bit lane: (s0 e0+e2, s1 e0+e2, s0 e1+e3, s1 e1+e3) */
    __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(sums[0], s1), _mm512_unpackhi_epi32(sums[0], s1));
    __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s2, s3), _mm512_unpackhi_epi32(s2, s3));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
}

/* Writes the count (1..4) token totals of rows a and b from a folded
 * accumulator; dst_b NULL: row a alone. */
AVX512_FN INLINE void store_4_rows_2(__m512 acc, int count, float *dst_a, float *dst_b, int64_t dst_stride)
{
    float totals_a[4], totals_b[4];
    __m256 row_a = _mm512_castps512_ps256(acc);
    __m256 row_b = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
    _mm_storeu_ps(totals_a, _mm_add_ps(_mm256_castps256_ps128(row_a), _mm256_extractf128_ps(row_a, 1)));
    _mm_storeu_ps(totals_b, _mm_add_ps(_mm256_castps256_ps128(row_b), _mm256_extractf128_ps(row_b, 1)));
    UNROLL
    for (int i = 0; i < count; i++)
        dst_a[i * dst_stride] = totals_a[i];
    if (dst_b) {
        UNROLL
        for (int i = 0; i < count; i++)
            dst_b[i * dst_stride] = totals_b[i];
    }
}

/* Rows a and b (b may be a again, with dst_b NULL) against count tokens of
 * the tile. */
AVX512_FN INLINE void rows_2_32(format_32 format, const cpu_tile *tile, const char *row_a, const char *row_b,
                                float *dst_a, float *dst_b, int count)
{
    enum { GROUPS = TOKENS_PER_CALL / 4 };
    const block_q8_0 *act[TOKENS_PER_CALL];
    __m512 acc[GROUPS];
    UNROLL
    for (int i = 0; i < count; i++)
        act[i] = (const block_q8_0 *)(tile->act + (size_t)i * tile->act_stride);
    UNROLL
    for (int g = 0; g < GROUPS; g++)
        acc[g] = _mm512_setzero_ps();
    for (int64_t b = 0; b < tile->n / 32; b++) {
        float d_a, d_b;
        __m256i x_a = quants_32(format, row_a, b, &d_a);
        __m256i x_b = quants_32(format, row_b, b, &d_b);
        __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(x_a), x_b, 1);
        if (offset_32(format) == 0) /* signed quants: + 128 */
            x = _mm512_xor_si512(x, _mm512_set1_epi8((char)0x80));
        __m512 dw = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(d_a), _mm512_set1_ps(d_b));
        const float *act_d = tile->act_scales + b * tile->act_scales_stride;
        const int32_t *act_sums = tile->act_sums + b * tile->act_scales_stride;
        UNROLL
        for (int g = 0; 4 * g < count; g++) {
            int in_group = count - 4 * g < 4 ? count - 4 * g : 4;
            __m512i sums[4];
            UNROLL
            for (int i = 0; i < in_group; i++) {
                __m512i y = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)act[4 * g + i][b].qs));
                sums[i] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), x, y);
            }
            __m512i folded = fold_4_rows_2(sums, in_group);
            /* - offset sum(y) per token, once per row (lanes 0 and 2; the
             * lanes of a row are added at the end) */
            __m128i block_sums = _mm_loadu_si128((const __m128i *)(act_sums + 4 * g));
            __m512i offsets = _mm512_broadcast_i32x4(_mm_slli_epi32(block_sums, offset_shift_512(format)));
            folded = _mm512_mask_sub_epi32(folded, 0x0F0F, folded, offsets);
            __m512 scale = _mm512_mul_ps(dw, _mm512_broadcast_f32x4(_mm_loadu_ps(act_d + 4 * g)));
            acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(folded), scale, acc[g]);
        }
    }
    UNROLL
    for (int g = 0; 4 * g < count; g++)
        store_4_rows_2(acc[g], count - 4 * g < 4 ? count - 4 * g : 4, dst_a + 4 * g * tile->dst_stride,
                       dst_b ? dst_b + 4 * g * tile->dst_stride : NULL, tile->dst_stride);
}

/* The rows two at a time (an odd last row paired with itself, its twin's
 * sums dropped), the tokens TOKENS_PER_CALL at a time. */
AVX512_FN INLINE void tile_32_512(format_32 format, const cpu_tile *tile)
{
    for (int64_t r = 0; r < tile->rows; r += 2) {
        const char *row_a = tile->weight + (size_t)r * tile->weight_stride;
        const char *row_b = r + 1 < tile->rows ? row_a + tile->weight_stride : row_a;
        for (int t = 0; t < tile->tokens; t += TOKENS_PER_CALL) {
            cpu_tile part = *tile;
            part.act = tile->act + (size_t)t * tile->act_stride;
            part.act_scales = tile->act_scales + t;
            part.act_sums = tile->act_sums + t;
            float *dst_a = tile->dst + t * tile->dst_stride + r;
            float *dst_b = r + 1 < tile->rows ? dst_a + 1 : NULL;
            FOR_TOKEN_COUNT_8(tile->tokens - t, rows_2_32, format, &part, row_a, row_b, dst_a, dst_b)
        }
    }
}

_Static_assert(TOKENS_PER_CALL == 8, "tile_32_512 dispatches with FOR_TOKEN_COUNT_8");

AVX512_FN void cpu_tile_q8_0_avx512(const cpu_tile *tile)
{
    tile_32_512(FORMAT_Q8_0, tile);
}

AVX512_FN void cpu_tile_q4_0_avx512(const cpu_tile *tile)
{
    tile_32_512(FORMAT_Q4_0, tile);
}

AVX512_FN void cpu_tile_q5_0_avx512(const cpu_tile *tile)
{
    tile_32_512(FORMAT_Q5_0, tile);
}

AVX512_FN void cpu_tile_iq4_nl_avx512(const cpu_tile *tile)
{
    tile_32_512(FORMAT_IQ4_NL, tile);
}

#endif
