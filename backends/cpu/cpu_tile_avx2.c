/* AVX2 + FMA + F16C tiled matmul kernels (see cpu_tile.h for the tiling).
 * Compiled for those extensions alone (target attribute), like the dot
 * products in cpu_dot_avx2.c, and chosen by the table in cpu_kernels.c only
 * when the CPU has them.
 *
 * Each kernel is one skeleton per block family, specialized by inlining with
 * constant arguments: the weight format (how a block is unpacked) and the
 * number of tokens (1 .. CPU_TILE_TOKENS, so the token sums are registers,
 * not arrays). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <string.h>

#include "../../base/quant.h"
#include "cpu_tile.h"

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) static inline

AVX2_FN INLINE float hsum(__m256 v)
{
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* Calls body(COUNT) with COUNT the constant 1 .. 8 equal to tokens, so each
 * instance is compiled with its own trip count. */
#define FOR_TOKEN_COUNT(tokens, call)                                                                                  \
    switch (tokens) {                                                                                                  \
    case 1: call(1); break;                                                                                            \
    case 2: call(2); break;                                                                                            \
    case 3: call(3); break;                                                                                            \
    case 4: call(4); break;                                                                                            \
    case 5: call(5); break;                                                                                            \
    case 6: call(6); break;                                                                                            \
    case 7: call(7); break;                                                                                            \
    default: call(8); break;                                                                                           \
    }

_Static_assert(CPU_TILE_TOKENS == 8, "FOR_TOKEN_COUNT covers 1 .. 8 tokens");

/* --- 32-element blocks against Q8_0 activations ---------------------------- *
 * A block is one register of 32 signed quants. Per token: the sign trick
 * (|x| unsigned times y with x's sign, as in cpu_dot_avx2.c), pairs summed to
 * int32, scaled by d_w d_a and accumulated in f32. */

typedef enum format_32 { FORMAT_Q8_0, FORMAT_Q4_0 } format_32;

AVX2_FN INLINE __m256i quants_32(format_32 format, const char *row, int64_t b, float *d)
{
    if (format == FORMAT_Q8_0) {
        const block_q8_0 *blk = (const block_q8_0 *)row + b;
        *d = _cvtsh_ss(blk->d);
        return _mm256_loadu_si256((const __m256i *)blk->qs);
    }
    const block_q4_0 *blk = (const block_q4_0 *)row + b;
    *d = _cvtsh_ss(blk->d);
    __m128i packed = _mm_loadu_si128((const __m128i *)blk->qs);
    /* bytes 0..15: low nibbles (elements 0..15), 16..31: high nibbles */
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
}

AVX2_FN INLINE void row_32(format_32 format, const cpu_tile *tile, const char *row, int count, float *dst)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const block_q8_0 *act[CPU_TILE_TOKENS];
    const float *act_d[CPU_TILE_TOKENS];
    __m256 acc[CPU_TILE_TOKENS];
    for (int i = 0; i < count; i++) {
        act[i] = (const block_q8_0 *)(tile->act + (size_t)i * tile->act_stride);
        act_d[i] = tile->act_scales + i * tile->act_scales_stride;
        acc[i] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < tile->n / 32; b++) {
        float d;
        __m256i x = quants_32(format, row, b, &d);
        __m256i ax = _mm256_sign_epi8(x, x);
        __m256 dw = _mm256_set1_ps(d);
        for (int i = 0; i < count; i++) {
            __m256i sy = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)act[i][b].qs), x);
            __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), ones);
            __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(&act_d[i][b]));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[i]);
        }
    }
    for (int i = 0; i < count; i++)
        dst[i * tile->dst_stride] = hsum(acc[i]);
}

AVX2_FN INLINE void tile_32(format_32 format, const cpu_tile *tile)
{
    for (int64_t r = 0; r < tile->rows; r++) {
        const char *row = tile->weight + (size_t)r * tile->weight_stride;
#define ROW_32(COUNT) row_32(format, tile, row, COUNT, tile->dst + r)
        FOR_TOKEN_COUNT(tile->tokens, ROW_32)
#undef ROW_32
    }
}

AVX2_FN void cpu_tile_q8_0_avx2(const cpu_tile *tile)
{
    tile_32(FORMAT_Q8_0, tile);
}

AVX2_FN void cpu_tile_q4_0_avx2(const cpu_tile *tile)
{
    tile_32(FORMAT_Q4_0, tile);
}

/* --- K-quant super-blocks against Q8_K activations ------------------------- *
 * A super-block is unpacked into 8 registers of 32 unsigned quants (Q8_K
 * element order) and 8 of int16 scales, one per pair lane (the first 8 lanes
 * of a 32-element sub-block cover its first 16 elements), kept in an L1
 * buffer. Then, as in cpu_tile_scalar.c:
 *   sum w a = a.d (d sum scale q y - m sum_g corr_g bsum_g)
 * q y by _mm256_maddubs_epi16 (int16 pair sums, q < 64 so no saturation),
 * times the scales by _mm256_madd_epi16 into int32; the offset or min term
 * through the activation's group sums, one madd per token and block. */

typedef enum format_k { FORMAT_Q4_K, FORMAT_Q6_K } format_k;

typedef struct k_vectors {
    __m256i q[8];
    __m256i scale[8];
    __m256i corr; /* 16 int16, one per group of 16 */
    float d, m;
} k_vectors;

/* Q4_K's 8 6-bit scales and 8 6-bit mins, as bytes: scales[j], mins[j]. The
 * 12 packed bytes are three words: scales 0-3 and mins 0-3 in the low 6 bits
 * of words 0 and 1; scales and mins 4-7 in the nibbles of word 2, with their
 * top 2 bits in the top 2 bits of words 0 and 1. */
static inline void q4_k_scales_mins(const uint8_t packed[K_SCALE_SIZE], uint8_t scales[8], uint8_t mins[8])
{
    uint32_t w[3];
    memcpy(w, packed, sizeof w);
    uint32_t s[2] = {w[0] & 0x3F3F3F3Fu, (w[2] & 0x0F0F0F0Fu) | ((w[0] >> 2) & 0x30303030u)};
    uint32_t m[2] = {w[1] & 0x3F3F3F3Fu, ((w[2] >> 4) & 0x0F0F0F0Fu) | ((w[1] >> 2) & 0x30303030u)};
    memcpy(scales, s, 8);
    memcpy(mins, m, 8);
}

AVX2_FN INLINE void unpack_q4_k(const block_q4_K *blk, k_vectors *u)
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    for (int chunk = 0; chunk < 4; chunk++) {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * chunk));
        u->q[2 * chunk] = _mm256_and_si256(packed, low_mask);
        u->q[2 * chunk + 1] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
    }
    uint8_t scales[8], mins[8];
    q4_k_scales_mins(blk->scales, scales, mins);
    for (int j = 0; j < 8; j++)
        u->scale[j] = _mm256_set1_epi16(scales[j]);
    uint64_t mins_word;
    memcpy(&mins_word, mins, 8);
    __m128i mins16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mins_word));
    /* each min covers two groups of 16: m0 m0 m1 m1 ... m7 m7 */
    u->corr = _mm256_set_m128i(_mm_unpackhi_epi16(mins16, mins16), _mm_unpacklo_epi16(mins16, mins16));
    u->d = _cvtsh_ss(blk->d);
    u->m = _cvtsh_ss(blk->dmin);
}

/* Q6_K: each 128-element half reads 64 bytes of ql and 32 of qh; quarter k
 * takes nibble k / 2 of ql[32 (k % 2) + l] and bit pair k of qh[l]. The
 * stored quant is q - 32, the 32 taken out as m = 32 d with corr = scale. */
AVX2_FN INLINE void unpack_q6_k(const block_q6_K *blk, k_vectors *u)
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    const __m256i two_bits = _mm256_set1_epi8(3);
    for (int half = 0; half < 2; half++) {
        __m256i ql0 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * half));
        __m256i ql1 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * half + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * half));
        __m256i low[4] = {_mm256_and_si256(ql0, low_mask), _mm256_and_si256(ql1, low_mask),
                          _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low_mask),
                          _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low_mask)};
        __m256i high[4] = {_mm256_and_si256(qh, two_bits), _mm256_and_si256(_mm256_srli_epi16(qh, 2), two_bits),
                           _mm256_and_si256(_mm256_srli_epi16(qh, 4), two_bits),
                           _mm256_and_si256(_mm256_srli_epi16(qh, 6), two_bits)};
        for (int k = 0; k < 4; k++)
            u->q[4 * half + k] = _mm256_or_si256(low[k], _mm256_slli_epi16(high[k], 4));
    }
    /* 16 int16 scales; sub-block j takes scale 2j in its first 8 lanes and
     * 2j + 1 in the last 8: dword j (that pair) to every dword, then the
     * low 128 bits keep its first int16 and the high 128 its second */
    __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
    const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2,
                                          3, 2, 3, 2, 3, 2, 3);
    for (int j = 0; j < 8; j++) {
        __m256i pair = _mm256_permutevar8x32_epi32(scales16, _mm256_set1_epi32(j));
        u->scale[j] = _mm256_shuffle_epi8(pair, pick);
    }
    u->corr = scales16;
    u->d = _cvtsh_ss(blk->d);
    u->m = 32.0f * u->d;
}

AVX2_FN INLINE void unpack_k(format_k format, const char *row, int64_t b, k_vectors *u)
{
    if (format == FORMAT_Q4_K)
        unpack_q4_k((const block_q4_K *)row + b, u);
    else
        unpack_q6_k((const block_q6_K *)row + b, u);
}

/* count (1..4) tokens against one unpacked super-block */
AVX2_FN INLINE void k_tokens(const k_vectors *u, const block_q8_K *const *act, int count, __m256 *acc)
{
    __m256i sums[4];
    for (int i = 0; i < count; i++)
        sums[i] = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++) {
        __m256i q = u->q[k], scale = u->scale[k];
        for (int i = 0; i < count; i++) {
            __m256i y = _mm256_loadu_si256((const __m256i *)(act[i]->qs + 32 * k));
            sums[i] = _mm256_add_epi32(sums[i], _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), scale));
        }
    }
    for (int i = 0; i < count; i++) {
        __m256i corr = _mm256_madd_epi16(u->corr, _mm256_loadu_si256((const __m256i *)act[i]->bsums));
        acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[i]), _mm256_set1_ps(u->d * act[i]->d), acc[i]);
        acc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(corr), _mm256_set1_ps(u->m * act[i]->d), acc[i]);
    }
}

AVX2_FN INLINE void row_k(format_k format, const cpu_tile *tile, const char *row, int count, float *dst)
{
    k_vectors u;
    const block_q8_K *base[CPU_TILE_TOKENS], *act[CPU_TILE_TOKENS];
    __m256 acc[CPU_TILE_TOKENS];
    for (int i = 0; i < count; i++) {
        base[i] = (const block_q8_K *)(tile->act + (size_t)i * tile->act_stride);
        acc[i] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < tile->n / QK_K; b++) {
        unpack_k(format, row, b, &u);
        for (int i = 0; i < count; i++)
            act[i] = base[i] + b;
        int t = 0;
        for (; t + 4 <= count; t += 4)
            k_tokens(&u, act + t, 4, acc + t);
        if (count - t > 0)
            k_tokens(&u, act + t, count - t, acc + t);
    }
    for (int i = 0; i < count; i++)
        dst[i * tile->dst_stride] = hsum(acc[i]);
}

AVX2_FN INLINE void tile_k(format_k format, const cpu_tile *tile)
{
    for (int64_t r = 0; r < tile->rows; r++) {
        const char *row = tile->weight + (size_t)r * tile->weight_stride;
#define ROW_K(COUNT) row_k(format, tile, row, COUNT, tile->dst + r)
        FOR_TOKEN_COUNT(tile->tokens, ROW_K)
#undef ROW_K
    }
}

AVX2_FN void cpu_tile_q4_k_avx2(const cpu_tile *tile)
{
    tile_k(FORMAT_Q4_K, tile);
}

AVX2_FN void cpu_tile_q6_k_avx2(const cpu_tile *tile)
{
    tile_k(FORMAT_Q6_K, tile);
}

#endif
