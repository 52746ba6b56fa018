/* AVX2 dot products of the low-bit formats (the scalar twins and the
 * integer scheme are in cpu_dot_scalar_iq.c).
 *
 * The grid formats load their 8-byte (IQ2, IQ1) or 4-byte (IQ3) grid points
 * straight into a register, 32 weights at a time, one load per point; IQ3_S
 * also has a version that puts its 9-bit indices together in a register and
 * gathers, for the machines where gathers are fast.
 * Timings quoted below: the 2-core AMD EPYC development VM (Zen 5), 2026-12-04, a
 * throwaway one-thread harness (512 rows of 4096 against one Q8 row, thread
 * CPU time, best of 15; the project's -O3). IQ3_S went from 40 to 32 ns per
 * 256 weights with the gather and its signs expanded in registers (36 with
 * the same signs and one load per point); a gather was slower for IQ3_XXS
 * (25 -> 31) and for IQ2_XS's 8-byte points (21 -> 32), so those keep one
 * load per point. Stored signs are applied
 * to the activation bytes instead of the weights (q -> -q where the sign bit
 * is set, by _mm256_sign_epi8 with 8 sign bytes per stored sign byte from a
 * table; the activations are never -128, so that is exact), which leaves
 * unsigned weight magnitudes for _mm256_maddubs_epi16 (pair sums at most
 * 2 * 62 * 127, far from int16 saturation). Signed weights (IQ1's 8 grid +-
 * 1, the IQ4 and MXFP4 levels) use the same trick the other way round:
 * |w| times q with w's sign moved onto q. Sub-block scales are applied to the
 * int16 pair sums by _mm256_madd_epi16 into int32, and each super-block's
 * integer total is scaled once, in the same order as the scalar version, so
 * the two agree exactly for the 256-element formats. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <string.h>

#include "../../base/quant_lowbit.h"
#include "cpu_kernels.h"
#include "cpu_prefetch.h"

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

AVX2_FN static inline int32_t hsum_epi32(__m256i v)
{
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2)));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(x);
}

AVX2_FN static inline float hsum_ps(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* Sign bytes of 8 elements from a byte of sign bits: byte j is -1 (0xff)
 * where bit j is set, else +1, for _mm256_sign_epi8. even_sign_bytes[i] for
 * a 7-bit field i whose eighth sign makes the count of minus signs even
 * (IQ2_XXS, IQ2_XS, IQ3_XXS: the expansion quant_iq2_signs holds), built by
 * the preprocessor from that definition. Stored sign bytes (IQ2_S, IQ3_S)
 * are expanded in registers instead (sign_bytes32). */
#define SIGN_BYTE(b, j) ((((b) >> (j)) & 1 ? 0xffull : 0x01ull) << (8 * (j)))
#define SIGN_BYTES(b)                                                                                               \
    (SIGN_BYTE(b, 0) | SIGN_BYTE(b, 1) | SIGN_BYTE(b, 2) | SIGN_BYTE(b, 3) | SIGN_BYTE(b, 4) | SIGN_BYTE(b, 5) |    \
     SIGN_BYTE(b, 6) | SIGN_BYTE(b, 7))
#define PARITY7(i) ((((i) >> 0) ^ ((i) >> 1) ^ ((i) >> 2) ^ ((i) >> 3) ^ ((i) >> 4) ^ ((i) >> 5) ^ ((i) >> 6)) & 1)
#define EVEN_SIGN_BYTES(i) SIGN_BYTES((i) | (PARITY7(i) << 7))
#define ROW4(F, i) F(i), F(i + 1), F(i + 2), F(i + 3)
#define ROW16(F, i) ROW4(F, i), ROW4(F, i + 4), ROW4(F, i + 8), ROW4(F, i + 12)
#define ROW64(F, i) ROW16(F, i), ROW16(F, i + 16), ROW16(F, i + 32), ROW16(F, i + 48)

static const uint64_t even_sign_bytes[128] = {ROW64(EVEN_SIGN_BYTES, 0), ROW64(EVEN_SIGN_BYTES, 64)};

/* The activations of 32 elements with the signs of four sign-byte entries
 * (elements 0..7 take s0, ...). */
AVX2_FN static inline __m256i apply_signs(__m256i q, uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3)
{
    return _mm256_sign_epi8(q, _mm256_set_epi64x((long long)s3, (long long)s2, (long long)s1, (long long)s0));
}

/* Sign bytes of 32 elements from 32 stored sign bits (element j takes bit j
 * of bits): -1 where the bit is set, else +1, computed in registers. Each
 * 128-bit lane picks its two sign bytes by a byte shuffle, then every byte
 * tests its own bit. */
AVX2_FN static inline __m256i sign_bytes32(uint32_t bits)
{
    const __m256i pick = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), pick);
    return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(1));
}

/* Eight 4-byte grid points (IQ3) by one gather: idx holds 8 indices. */
AVX2_FN static inline __m256i gather_grid32(const uint32_t *grid, __m256i idx)
{
    return _mm256_i32gather_epi32((const int *)grid, idx, 4);
}

/* int32 lanes of sum (|w| q') pairs times scale, w unsigned magnitudes and
 * q' the activations with the weights' signs applied. */
AVX2_FN static inline __m256i scaled_pairs(__m256i w, __m256i q_signed, __m256i scale16)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, q_signed), scale16);
}

/* Signed weights w (never -128) times q: |w| with w's sign moved onto q. */
AVX2_FN static inline __m256i signed_pairs(__m256i w, __m256i q)
{
    return _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(q, w));
}

/* Sub-block scales 2 s + 1 from 4-bit s packed two per byte (the lower
 * sub-block in the low nibble): the 8 bytes of packed give 16 scales, as
 * bytes in order in both 128-bit lanes (for scales16_of); the 4 bytes of
 * packed4 give 8 (for scale16_of). Read once per 256-element block: the
 * two broadcasts per 32 elements this replaced had cost IQ2_XS and IQ2_S
 * about a quarter of their time (21 -> 16 and 24 -> 17 ns per 256 weights
 * in the harness named at the top of this file). */
AVX2_FN static inline __m256i nibbles_to_scales(__m128i bytes)
{
    const __m128i mask = _mm_set1_epi8(0x0f);
    const __m128i s = _mm_unpacklo_epi8(_mm_and_si128(bytes, mask), _mm_and_si128(_mm_srli_epi16(bytes, 4), mask));
    return _mm256_broadcastsi128_si256(_mm_add_epi8(_mm_add_epi8(s, s), _mm_set1_epi8(1)));
}

AVX2_FN static inline __m256i nibble_scales(const uint8_t packed[8])
{
    return nibbles_to_scales(_mm_loadl_epi64((const __m128i *)packed));
}

AVX2_FN static inline __m256i nibble_scales4(const uint8_t packed4[4])
{
    uint32_t bytes;
    memcpy(&bytes, packed4, sizeof bytes);
    return nibbles_to_scales(_mm_cvtsi32_si128((int)bytes));
}

/* Scale ib of nibble_scales4 in every int16 lane. */
AVX2_FN static inline __m256i scale16_of(__m256i scales, int ib)
{
    return _mm256_shuffle_epi8(scales, _mm256_add_epi8(_mm256_set1_epi16((short)0x8000), _mm256_set1_epi16((short)ib)));
}

/* The scales of sub-blocks 2 ib and 2 ib + 1 of nibble_scales (16 elements
 * each) in the low and high int16 lanes: a byte shuffle that zero-extends
 * (index bytes with the top bit set give 0). */
AVX2_FN static inline __m256i scales16_of(__m256i scales, int ib)
{
    const __m256i pick = _mm256_set_epi64x((long long)0x8001800180018001ULL, (long long)0x8001800180018001ULL,
                                           (long long)0x8000800080008000ULL, (long long)0x8000800080008000ULL);
    return _mm256_shuffle_epi8(scales, _mm256_add_epi8(pick, _mm256_set1_epi8((char)(2 * ib))));
}

AVX2_FN float cpu_dot_iq2_xxs_avx2(int64_t n, const void *w, const void *a)
{
    const block_iq2_xxs *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        __m256i total = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            uint32_t idx, aux;
            memcpy(&idx, wb[b].qs + 4 * ib, sizeof idx);
            memcpy(&aux, wb[b].qs + 4 * ib + 2, sizeof aux);
            const __m256i grid = _mm256_set_epi64x(
                (long long)quant_iq2xxs_grid[idx >> 24], (long long)quant_iq2xxs_grid[(idx >> 16) & 0xff],
                (long long)quant_iq2xxs_grid[(idx >> 8) & 0xff], (long long)quant_iq2xxs_grid[idx & 0xff]);
            const __m256i q = apply_signs(_mm256_loadu_si256((const __m256i *)(ab[b].qs + 32 * ib)),
                                          even_sign_bytes[aux & 0x7f], even_sign_bytes[(aux >> 7) & 0x7f],
                                          even_sign_bytes[(aux >> 14) & 0x7f], even_sign_bytes[(aux >> 21) & 0x7f]);
            total = _mm256_add_epi32(total, scaled_pairs(grid, q, _mm256_set1_epi16((int16_t)(2 * (aux >> 28) + 1))));
        }
        sum += _cvtsh_ss(wb[b].d) * ab[b].d * (float)hsum_epi32(total) * 0.125f;
    }
    return sum;
}

AVX2_FN float cpu_dot_iq2_xs_avx2(int64_t n, const void *w, const void *a)
{
    const block_iq2_xs *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        const __m256i scales = nibble_scales(wb[b].scales);
        __m256i total = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint16_t *codes = wb[b].qs + 4 * ib;
            const __m256i grid = _mm256_set_epi64x(
                (long long)quant_iq2xs_grid[codes[3] & 511], (long long)quant_iq2xs_grid[codes[2] & 511],
                (long long)quant_iq2xs_grid[codes[1] & 511], (long long)quant_iq2xs_grid[codes[0] & 511]);
            const __m256i q = apply_signs(_mm256_loadu_si256((const __m256i *)(ab[b].qs + 32 * ib)),
                                          even_sign_bytes[codes[0] >> 9], even_sign_bytes[codes[1] >> 9],
                                          even_sign_bytes[codes[2] >> 9], even_sign_bytes[codes[3] >> 9]);
            total = _mm256_add_epi32(total, scaled_pairs(grid, q, scales16_of(scales, ib)));
        }
        sum += _cvtsh_ss(wb[b].d) * ab[b].d * (float)hsum_epi32(total) * 0.125f;
    }
    return sum;
}

AVX2_FN float cpu_dot_iq2_s_avx2(int64_t n, const void *w, const void *a)
{
    const block_iq2_s *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        const block_iq2_s *blk = &wb[b];
        const __m256i scales = nibble_scales(blk->scales);
        __m256i total = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint8_t *low = blk->qs + 4 * ib;
            const int high = blk->qh[ib];
            const __m256i grid = _mm256_set_epi64x((long long)quant_iq2s_grid[low[3] | ((high << 2) & 0x300)],
                                                   (long long)quant_iq2s_grid[low[2] | ((high << 4) & 0x300)],
                                                   (long long)quant_iq2s_grid[low[1] | ((high << 6) & 0x300)],
                                                   (long long)quant_iq2s_grid[low[0] | ((high << 8) & 0x300)]);
            uint32_t signs;
            memcpy(&signs, blk->qs + QK_K / 8 + 4 * ib, sizeof signs);
            const __m256i q = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(ab[b].qs + 32 * ib)),
                                               sign_bytes32(signs));
            total = _mm256_add_epi32(total, scaled_pairs(grid, q, scales16_of(scales, ib)));
        }
        sum += _cvtsh_ss(blk->d) * ab[b].d * (float)hsum_epi32(total) * 0.125f;
    }
    return sum;
}

AVX2_FN float cpu_dot_iq3_xxs_avx2(int64_t n, const void *w, const void *a)
{
    const block_iq3_xxs *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        const uint8_t *qs = wb[b].qs;
        __m256i total = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            uint32_t aux;
            memcpy(&aux, qs + QK_K / 4 + 4 * ib, sizeof aux);
            const uint8_t *idx = qs + 8 * ib;
            const __m256i grid = _mm256_set_epi32(
                (int)quant_iq3xxs_grid[idx[7]], (int)quant_iq3xxs_grid[idx[6]], (int)quant_iq3xxs_grid[idx[5]],
                (int)quant_iq3xxs_grid[idx[4]], (int)quant_iq3xxs_grid[idx[3]], (int)quant_iq3xxs_grid[idx[2]],
                (int)quant_iq3xxs_grid[idx[1]], (int)quant_iq3xxs_grid[idx[0]]);
            const __m256i q = apply_signs(_mm256_loadu_si256((const __m256i *)(ab[b].qs + 32 * ib)),
                                          even_sign_bytes[aux & 0x7f], even_sign_bytes[(aux >> 7) & 0x7f],
                                          even_sign_bytes[(aux >> 14) & 0x7f], even_sign_bytes[(aux >> 21) & 0x7f]);
            total = _mm256_add_epi32(total, scaled_pairs(grid, q, _mm256_set1_epi16((int16_t)(2 * (aux >> 28) + 1))));
        }
        sum += _cvtsh_ss(wb[b].d) * ab[b].d * (float)hsum_epi32(total) * 0.25f;
    }
    return sum;
}

/* The eight 4-byte grid points of IQ3_S's 32 weights ib of a block, whose
 * point m takes bit m of qh[ib] as its ninth index bit: one load per point,
 * or one gather. The gather is faster where gathers are (Zen 5: 32 against
 * 36 ns per 256 weights) and much slower on first-generation Zen, which runs
 * it in microcode (95 against 61 ns); the kernel table gives it to AVX-512
 * machines only. */
AVX2_FN static inline __attribute__((always_inline)) __m256i iq3_s_points(const block_iq3_s *blk, int ib,
                                                                          bool gather)
{
    const unsigned qh = blk->qh[ib];
    const uint8_t *idx = blk->qs + 8 * ib;
    if (gather) {
        const __m256i high_shift = _mm256_set_epi32(1, 2, 3, 4, 5, 6, 7, 8);
        const __m256i low = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)idx));
        const __m256i high =
            _mm256_and_si256(_mm256_sllv_epi32(_mm256_set1_epi32((int)qh), high_shift), _mm256_set1_epi32(0x100));
        return gather_grid32(quant_iq3s_grid, _mm256_or_si256(low, high));
    }
    return _mm256_set_epi32(
        (int)quant_iq3s_grid[idx[7] | ((qh << 1) & 0x100)], (int)quant_iq3s_grid[idx[6] | ((qh << 2) & 0x100)],
        (int)quant_iq3s_grid[idx[5] | ((qh << 3) & 0x100)], (int)quant_iq3s_grid[idx[4] | ((qh << 4) & 0x100)],
        (int)quant_iq3s_grid[idx[3] | ((qh << 5) & 0x100)], (int)quant_iq3s_grid[idx[2] | ((qh << 6) & 0x100)],
        (int)quant_iq3s_grid[idx[1] | ((qh << 7) & 0x100)], (int)quant_iq3s_grid[idx[0] | ((qh << 8) & 0x100)]);
}

/* The one body of both IQ3_S kernels; gather is a constant at each call. */
AVX2_FN static inline __attribute__((always_inline)) float iq3_s_dot(int64_t n, const void *w, const void *a,
                                                                     bool gather)
{
    const block_iq3_s *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        const block_iq3_s *blk = &wb[b];
        const __m256i scales = nibble_scales4(blk->scales);
        __m256i total = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const __m256i grid = iq3_s_points(blk, ib, gather);
            uint32_t signs;
            memcpy(&signs, blk->signs + 4 * ib, sizeof signs);
            const __m256i q = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(ab[b].qs + 32 * ib)),
                                               sign_bytes32(signs));
            total = _mm256_add_epi32(total, scaled_pairs(grid, q, scale16_of(scales, ib)));
        }
        sum += _cvtsh_ss(blk->d) * ab[b].d * (float)hsum_epi32(total);
    }
    return sum;
}

AVX2_FN float cpu_dot_iq3_s_avx2(int64_t n, const void *w, const void *a)
{
    return iq3_s_dot(n, w, a, false);
}

AVX2_FN float cpu_dot_iq3_s_avx2_gather(int64_t n, const void *w, const void *a)
{
    return iq3_s_dot(n, w, a, true);
}

/* 8 grid + shift for four IQ1 points (bytes -1, 0, 1) and their shifts
 * (+1 or -1 per point, all 8 bytes of each 64-bit lane). */
AVX2_FN static inline __m256i iq1_weights(__m256i grid, __m256i shifts)
{
    __m256i w8 = _mm256_add_epi8(grid, grid);
    w8 = _mm256_add_epi8(w8, w8);
    w8 = _mm256_add_epi8(w8, w8);
    return _mm256_add_epi8(w8, shifts);
}

static inline long long iq1_shift_bytes(int negative)
{
    return negative ? -1LL : (long long)0x0101010101010101ull;
}

AVX2_FN float cpu_dot_iq1_s_avx2(int64_t n, const void *w, const void *a)
{
    const block_iq1_s *wb = w;
    const block_q8_K *ab = a;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        __m256i total = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint16_t qh = wb[b].qh[ib];
            const uint8_t *low = wb[b].qs + 4 * ib;
            const __m256i grid = _mm256_set_epi64x((long long)quant_iq1s_grid[low[3] | ((qh >> 1) & 0x700)],
                                                   (long long)quant_iq1s_grid[low[2] | ((qh << 2) & 0x700)],
                                                   (long long)quant_iq1s_grid[low[1] | ((qh << 5) & 0x700)],
                                                   (long long)quant_iq1s_grid[low[0] | ((qh << 8) & 0x700)]);
            const __m256i weights = iq1_weights(grid, _mm256_set1_epi64x(iq1_shift_bytes(qh & 0x8000)));
            const __m256i q = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 32 * ib));
            total = _mm256_add_epi32(total, _mm256_madd_epi16(signed_pairs(weights, q),
                                                              _mm256_set1_epi16((int16_t)(2 * ((qh >> 12) & 7) + 1))));
        }
        sum += _cvtsh_ss(wb[b].d) * ab[b].d * (float)hsum_epi32(total) * 0.125f;
    }
    return sum;
}

AVX2_FN float cpu_dot_iq1_m_avx2(int64_t n, const void *w, const void *a)
{
    const block_iq1_m *wb = w;
    const block_q8_K *ab = a;
    const __m256i shift_mask = _mm256_set_epi64x(0x8000, 0x0800, 0x80, 0x08);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        const block_iq1_m *blk = &wb[b];
        uint16_t sc[4];
        memcpy(sc, blk->scales, sizeof sc);
        /* the 16 scales 2 s + 1, s three bits each at bit 3 k of word k / 4 */
        uint8_t scale_bytes[16];
        for (int k = 0; k < 16; k++)
            scale_bytes[k] = (uint8_t)(2 * ((sc[k / 4] >> (3 * (k % 4))) & 7) + 1);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)scale_bytes));
        __m256i total = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const uint8_t *low = blk->qs + 4 * ib;
            const int h0 = blk->qh[2 * ib], h1 = blk->qh[2 * ib + 1];
            const __m256i grid = _mm256_set_epi64x((long long)quant_iq1s_grid[low[3] | ((h1 << 4) & 0x700)],
                                                   (long long)quant_iq1s_grid[low[2] | ((h1 << 8) & 0x700)],
                                                   (long long)quant_iq1s_grid[low[1] | ((h0 << 4) & 0x700)],
                                                   (long long)quant_iq1s_grid[low[0] | ((h0 << 8) & 0x700)]);
            /* point k's shift is -1 where bit 3 of its nibble of h0 | h1 << 8 is set */
            const __m256i shift_bits = _mm256_and_si256(_mm256_set1_epi64x(h0 | h1 << 8), shift_mask);
            const __m256i shifts = _mm256_or_si256(_mm256_cmpeq_epi64(shift_bits, shift_mask), _mm256_set1_epi8(1));
            const __m256i q = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 32 * ib));
            total = _mm256_add_epi32(total, _mm256_madd_epi16(signed_pairs(iq1_weights(grid, shifts), q),
                                                              scales16_of(scales, ib)));
        }
        sum += _cvtsh_ss(quant_iq1_m_scale(blk)) * ab[b].d * (float)hsum_epi32(total) * 0.125f;
    }
    return sum;
}

/* The 32 levels of a nibble block (element j low nibble of qs[j], j + 16
 * high) looked up in a 16-entry table. */
AVX2_FN static inline __m256i nibble_levels(const uint8_t *qs, __m256i table)
{
    const __m128i packed = _mm_loadu_si128((const __m128i *)qs);
    const __m128i low_mask = _mm_set1_epi8(0x0f);
    const __m256i nibbles = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low_mask),
                                             _mm_and_si128(packed, low_mask));
    return _mm256_shuffle_epi8(table, nibbles);
}

AVX2_FN static inline __m256i table16(const int8_t values[16])
{
    const __m128i t = _mm_loadu_si128((const __m128i *)values);
    return _mm256_set_m128i(t, t);
}

/* IQ4_NL and MXFP4 against Q8_0: one float scale per 32-element block. */
AVX2_FN static float nibble_table_dot_q8_0(int64_t n_blocks, const uint8_t *blocks, size_t block_bytes,
                                           const int8_t values[16], int is_mxfp4, const block_q8_0 *ab)
{
    const __m256i table = table16(values);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_blocks; b++) {
        const uint8_t *blk = blocks + (size_t)b * block_bytes;
        float d;
        if (is_mxfp4) {
            d = quant_e8m0_to_f32_half(blk[0]);
        } else {
            uint16_t d16;
            memcpy(&d16, blk, sizeof d16);
            d = _cvtsh_ss(d16);
        }
        const __m256i levels = nibble_levels(blk + (is_mxfp4 ? 1 : 2), table);
        const __m256i q = _mm256_loadu_si256((const __m256i *)ab[b].qs);
        const __m256i sums = _mm256_madd_epi16(signed_pairs(levels, q), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * _cvtsh_ss(ab[b].d)), _mm256_cvtepi32_ps(sums), acc);
    }
    return hsum_ps(acc);
}

AVX2_FN float cpu_dot_iq4_nl_avx2(int64_t n, const void *w, const void *a)
{
    return nibble_table_dot_q8_0(n / QK4_NL, w, sizeof(block_iq4_nl), quant_iq4nl_values, 0, a);
}

AVX2_FN float cpu_dot_mxfp4_avx2(int64_t n, const void *w, const void *a)
{
    return nibble_table_dot_q8_0(n / QK_MXFP4, w, sizeof(block_mxfp4), quant_mxfp4_values, 1, a);
}

AVX2_FN float cpu_dot_iq4_xs_avx2(int64_t n, const void *w, const void *a)
{
    const block_iq4_xs *wb = w;
    const block_q8_K *ab = a;
    const __m256i table = table16(quant_iq4nl_values);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        const block_iq4_xs *blk = &wb[b];
        __m256i total = _mm256_setzero_si256();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = quant_iq4_xs_scale(blk, ib);
            const __m256i q = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 32 * ib));
            total = _mm256_add_epi32(total, _mm256_madd_epi16(signed_pairs(nibble_levels(blk->qs + 16 * ib, table), q),
                                                              _mm256_set1_epi16((int16_t)(ls - 32))));
        }
        sum += _cvtsh_ss(blk->d) * ab[b].d * (float)hsum_epi32(total);
    }
    return sum;
}

/* TQ1_0: the trit in position k of a byte x is ((x * 3^k mod 256) * 3) >> 8
 * (the scalar twin's tq1_trit). AVX2 has no byte multiply, so both steps run
 * on 16-bit lanes: x * c for the low byte of each lane (its high byte is
 * then wrong, and masked off) and for the high byte alone (the low byte
 * cleared first); then (y * 3) >> 8 for each byte y as mulhi(y << 8, 3).
 * mult holds c per 16-bit lane. */
AVX2_FN static inline __m256i tq1_trits(__m256i x, __m256i mult)
{
    const __m256i high_bytes = _mm256_set1_epi16((short)0xff00);
    const __m256i three = _mm256_set1_epi16(3);
    const __m256i low = _mm256_mullo_epi16(x, mult);
    const __m256i high = _mm256_mullo_epi16(_mm256_and_si256(x, high_bytes), mult);
    const __m256i y = _mm256_or_si256(_mm256_andnot_si256(high_bytes, low), high);
    const __m256i t_low = _mm256_mulhi_epu16(_mm256_slli_epi16(y, 8), three);
    const __m256i t_high = _mm256_slli_epi16(_mm256_mulhi_epu16(_mm256_and_si256(y, high_bytes), three), 8);
    return _mm256_or_si256(t_low, t_high);
}

/* int32 lanes of sum t q over 32 trits t (0..2) and activations q. */
AVX2_FN static inline __m256i trit_pairs(__m256i t, __m256i q)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(t, q), _mm256_set1_epi16(1));
}

/* TQ1_0, as TQ2_0 below: sum (t - 1) q = sum t q - sum q. Elements 0..159
 * are the five trits of qs[0..31] (trit k of qs[m] is element 32 k + m),
 * 160..239 the five of qs[32..47] (160 + 16 k + m), 240..255 the four of
 * qh[0..3] (240 + 4 k + m): the 16-byte part runs two trit positions per
 * register (one per 128-bit lane), the last position and qh in one. */
AVX2_FN float cpu_dot_tq1_0_avx2(int64_t n, const void *w, const void *a)
{
    const block_tq1_0 *wb = w;
    const block_q8_K *ab = a;
    const __m256i pow3_01 = _mm256_set_m128i(_mm_set1_epi16(3), _mm_set1_epi16(1));
    const __m256i pow3_23 = _mm256_set_m128i(_mm_set1_epi16(27), _mm_set1_epi16(9));
    /* low lane: qs[32..47] at trit 4; high lane: qh[0..3] repeated, trits 0..3 */
    const __m256i pow3_4h = _mm256_set_epi16(27, 27, 9, 9, 3, 3, 1, 1, 81, 81, 81, 81, 81, 81, 81, 81);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        const block_tq1_0 *blk = &wb[b];
        const int8_t *q = ab[b].qs;
        const __m256i x32 = _mm256_loadu_si256((const __m256i *)blk->qs);
        __m256i total = trit_pairs(tq1_trits(x32, _mm256_set1_epi16(1)), _mm256_loadu_si256((const __m256i *)q));
        static const short pow3[5] = {1, 3, 9, 27, 81};
        for (int k = 1; k < 5; k++)
            total = _mm256_add_epi32(total, trit_pairs(tq1_trits(x32, _mm256_set1_epi16(pow3[k])),
                                                       _mm256_loadu_si256((const __m256i *)(q + 32 * k))));
        const __m256i x16 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(blk->qs + 32)));
        total = _mm256_add_epi32(total, trit_pairs(tq1_trits(x16, pow3_01), _mm256_loadu_si256((const __m256i *)(q + 160))));
        total = _mm256_add_epi32(total, trit_pairs(tq1_trits(x16, pow3_23), _mm256_loadu_si256((const __m256i *)(q + 192))));
        uint32_t qh;
        memcpy(&qh, blk->qh, sizeof qh);
        const __m256i x_last = _mm256_set_m128i(_mm_set1_epi32((int)qh), _mm256_castsi256_si128(x16));
        total = _mm256_add_epi32(total, trit_pairs(tq1_trits(x_last, pow3_4h), _mm256_loadu_si256((const __m256i *)(q + 224))));
        int32_t q_sum = 0;
        for (int g = 0; g < QK_K / 16; g++)
            q_sum += ab[b].bsums[g];
        sum += _cvtsh_ss(blk->d) * ab[b].d * (float)(hsum_epi32(total) - q_sum);
    }
    return sum;
}

/* TQ2_0: codes 0..2 are unsigned already; sum (c - 1) q = sum c q - sum q,
 * the last from the activation's group sums. */
AVX2_FN float cpu_dot_tq2_0_avx2(int64_t n, const void *w, const void *a)
{
    const block_tq2_0 *wb = w;
    const block_q8_K *ab = a;
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    float sum = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        cpu_prefetch_ahead(&wb[b], sizeof wb[b]);
        __m256i total = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i packed = _mm256_loadu_si256((const __m256i *)(wb[b].qs + 32 * h));
            for (int l = 0; l < 4; l++) {
                const __m256i codes = _mm256_and_si256(_mm256_srli_epi16(packed, 2 * l), mask);
                const __m256i q = _mm256_loadu_si256((const __m256i *)(ab[b].qs + 128 * h + 32 * l));
                total = _mm256_add_epi32(total, _mm256_madd_epi16(_mm256_maddubs_epi16(codes, q), ones));
            }
        }
        int32_t q_sum = 0;
        for (int g = 0; g < QK_K / 16; g++)
            q_sum += ab[b].bsums[g];
        sum += _cvtsh_ss(wb[b].d) * ab[b].d * (float)(hsum_epi32(total) - q_sum);
    }
    return sum;
}

#endif
