/* AVX2 + FMA + F16C matrix-vector kernels for decode (one token): Q4_0 and
 * Q8_0 weights against a Q8_0 activation row. Same call as the tiles
 * (cpu_tile.h) with tokens == 1; the table in cpu_kernels.c runs them in
 * place of the AVX2 dot products.
 *
 * The dot products (cpu_dot_avx2.c) spend most of each 32-element block on
 * its two half-float scales (two scalar conversions, a multiply and a
 * broadcast per block) and on the sign trick that lets maddubs multiply two
 * signed operands. Here a row runs eight blocks at a time:
 * - each block's integer sums (a register of 8 int32) are reduced together
 *   with those of the other seven by a transpose (unpacks and adds), leaving
 *   one register that holds the eight blocks' sums, one per lane;
 * - the eight weight scales come from the blocks' bytes in one register by
 *   word blends of loads that put each scale where it belongs (no gathers,
 *   no scalar conversions); the activation's scales were converted once per
 *   call; one multiply and one FMA then serve eight blocks;
 * - Q4_0's quants are unsigned (0..15), so maddubs takes them directly; the
 *   offset of 8 comes out once per eight blocks through the activation's
 *   sums, computed once per call.
 * The activation is arranged once per call (a call has up to 64 rows) to
 * the order the weights unpack into; rows too long for the stack buffer
 * run by column chunks, their partial sums added in dst.
 *
 * Every kernel has a scalar twin: the scalar dot product of its format
 * (cpu_dot_scalar.c); the two may differ only by float summation order. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <string.h>

#include "../../base/quant.h"
#include "cpu_prefetch.h"
#include "cpu_tile.h"

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) static inline
#define UNROLL _Pragma("GCC unroll 8")

/* Blocks per step, and the most steps arranged at once (a column chunk:
 * 16384 elements, 20 KiB of arranged Q4_0 activation on the stack). */
enum { OCT = 8, CHUNK_OCTS = 64 };

/* One register of eight int32 lanes, lane k the sum of the 8 lanes of
 * p[k]: a transpose by unpacks, each level adding what it pairs. */
AVX2_FN INLINE __m256i reduce_8x8(const __m256i p[8])
{
    __m256i q[4];
    UNROLL
    for (int k = 0; k < 4; k++) /* lane-wise: [p2k.0+p2k.2, p2k+1.0+.2, p2k.1+.3, p2k+1.1+.3] per half */
        q[k] = _mm256_add_epi32(_mm256_unpacklo_epi32(p[2 * k], p[2 * k + 1]),
                                _mm256_unpackhi_epi32(p[2 * k], p[2 * k + 1]));
    __m256i r0 = _mm256_add_epi32(_mm256_unpacklo_epi64(q[0], q[1]), _mm256_unpackhi_epi64(q[0], q[1]));
    __m256i r1 = _mm256_add_epi32(_mm256_unpacklo_epi64(q[2], q[3]), _mm256_unpackhi_epi64(q[2], q[3]));
    /* r0: p0..p3 half sums in each 128-bit half, r1: p4..p7 */
    return _mm256_add_epi32(_mm256_permute2x128_si256(r0, r1, 0x20), _mm256_permute2x128_si256(r0, r1, 0x31));
}

/* The same for four registers whose two 128-bit halves belong to different
 * blocks: lane k (k < 4) the low half's sum of p[k], lane 4 + k its high
 * half's. */
AVX2_FN INLINE __m256i reduce_4x2x4(const __m256i p[4])
{
    __m256i q01 = _mm256_add_epi32(_mm256_unpacklo_epi32(p[0], p[1]), _mm256_unpackhi_epi32(p[0], p[1]));
    __m256i q23 = _mm256_add_epi32(_mm256_unpacklo_epi32(p[2], p[3]), _mm256_unpackhi_epi32(p[2], p[3]));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(q01, q23), _mm256_unpackhi_epi64(q01, q23));
}

AVX2_FN INLINE float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* dst[r] = the sum of blocks [first, blocks) of each of the tile's rows
 * (blocks of block_bytes, against the Q8_0 activation), the last blocks
 * the steps of eight leave: the kernels then add their chunks' sums. */
AVX2_FN static void start_with_tails(const cpu_tile *tile, size_t block_bytes, int64_t first, int64_t blocks,
                                     float (*block_dot)(const void *w, const block_q8_0 *y))
{
    const block_q8_0 *y = (const block_q8_0 *)tile->act;
    for (int64_t r = 0; r < tile->rows; r++) {
        const char *w = tile->weight + (size_t)r * tile->weight_stride;
        float sum = 0.0f;
        for (int64_t k = first; k < blocks; k++)
            sum += block_dot(w + (size_t)k * block_bytes, &y[k]);
        tile->dst[r] = sum;
    }
}

/* The half scales of eight blocks `stride` bytes apart whose scale is their
 * first word, as eight floats. A 128-bit load at byte k * (stride - 2) has
 * block k's scale in word k; seven word blends keep each one's. */
AVX2_FN INLINE __m256 oct_scales(const char *blk, size_t stride)
{
    const size_t step = stride - 2;
    __m128i s = _mm_loadu_si128((const __m128i *)blk);
    s = _mm_blend_epi16(s, _mm_loadu_si128((const __m128i *)(blk + 1 * step)), 0x02);
    s = _mm_blend_epi16(s, _mm_loadu_si128((const __m128i *)(blk + 2 * step)), 0x04);
    s = _mm_blend_epi16(s, _mm_loadu_si128((const __m128i *)(blk + 3 * step)), 0x08);
    s = _mm_blend_epi16(s, _mm_loadu_si128((const __m128i *)(blk + 4 * step)), 0x10);
    s = _mm_blend_epi16(s, _mm_loadu_si128((const __m128i *)(blk + 5 * step)), 0x20);
    s = _mm_blend_epi16(s, _mm_loadu_si128((const __m128i *)(blk + 6 * step)), 0x40);
    s = _mm_blend_epi16(s, _mm_loadu_si128((const __m128i *)(blk + 7 * step)), 0x80);
    return _mm256_cvtph_ps(s);
}

/* Eight Q4_0 blocks' scales with half the loads: 32-byte loads at bytes 0,
 * 32, 64, 96 hold scale 2j in word 2j of their low half and scale 2j + 1
 * in word 2j + 1 of their high half (block k's scale is word 9k). */
AVX2_FN INLINE __m256 q4_0_oct_scales(const block_q4_0 *blk)
{
    const char *p = (const char *)blk;
    __m256i s = _mm256_loadu_si256((const __m256i *)p);
    s = _mm256_blend_epi16(s, _mm256_loadu_si256((const __m256i *)(p + 32)), 0x0C);
    s = _mm256_blend_epi16(s, _mm256_loadu_si256((const __m256i *)(p + 64)), 0x30);
    s = _mm256_blend_epi16(s, _mm256_loadu_si256((const __m256i *)(p + 96)), 0xC0);
    return _mm256_cvtph_ps(_mm_blend_epi16(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1), 0xAA));
}

/* --- the activation, arranged once per call -------------------------------- */

/* Eight Q8_0 activation blocks as the Q4_0 kernel takes them. Register j
 * pairs blocks j (low half) and j + 4 (high half): low[j] their elements
 * 0..15, high[j] 16..31, as q4_0 unpacks a pair of weight blocks. */
typedef struct act_oct {
    __m256i low[4], high[4];
    __m256 scales;      /* the eight blocks' scales */
    __m256i eight_sums; /* 8 times each block's sum of quants */
} act_oct;

AVX2_FN INLINE void arrange_oct(const block_q8_0 *y, act_oct *out)
{
    __m256i sums[4];
    UNROLL
    for (int j = 0; j < 4; j++) {
        out->low[j] = _mm256_loadu2_m128i((const __m128i *)y[j + 4].qs, (const __m128i *)y[j].qs);
        out->high[j] = _mm256_loadu2_m128i((const __m128i *)(y[j + 4].qs + 16), (const __m128i *)(y[j].qs + 16));
        __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), out->low[j]),
                                         _mm256_maddubs_epi16(_mm256_set1_epi8(8), out->high[j]));
        sums[j] = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    }
    /* lanes j and 4 + j: blocks j and j + 4, so the sums are in block order */
    out->eight_sums = reduce_4x2x4(sums);
    out->scales = oct_scales((const char *)y, sizeof(block_q8_0));
}

/* --- Q4_0 ------------------------------------------------------------------ */

/* One block against one activation block, for a row's last blocks. */
AVX2_FN static float q4_0_block(const void *block, const block_q8_0 *y)
{
    const block_q4_0 *w = block;
    __m128i packed = _mm_loadu_si128((const __m128i *)w->qs);
    __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
    __m256i yq = _mm256_loadu_si256((const __m256i *)y->qs);
    __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, yq), _mm256_maddubs_epi16(_mm256_set1_epi8(8), yq));
    __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
    return hsum_ps(f) * _cvtsh_ss(w->d) * _cvtsh_ss(y->d);
}

/* acc + eight Q4_0 blocks times the arranged activation, one block a lane. */
AVX2_FN INLINE __m256 q4_0_oct(const block_q4_0 *w, const act_oct *a, __m256 acc)
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    cpu_prefetch_ahead(w, OCT * sizeof *w);
    __m256i sums[4];
    UNROLL
    for (int j = 0; j < 4; j++) {
        __m256i packed = _mm256_loadu2_m128i((const __m128i *)w[j + 4].qs, (const __m128i *)w[j].qs);
        __m256i q_low = _mm256_and_si256(packed, low_mask);
        __m256i q_high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
        /* unsigned 0..15 times -127..127, pairs summed: the two sums stay
         * within int16 (4 products of at most 1905) */
        __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(q_low, a->low[j]),
                                         _mm256_maddubs_epi16(q_high, a->high[j]));
        sums[j] = _mm256_madd_epi16(pairs, ones);
    }
    __m256i block_sums = _mm256_sub_epi32(reduce_4x2x4(sums), a->eight_sums);
    __m256 scales = _mm256_mul_ps(q4_0_oct_scales(w), a->scales);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_sums), scales, acc);
}

/* Blocks [0, octs * 8) of one row against the arranged activation; two
 * accumulators for the FMA latency. */
AVX2_FN INLINE float q4_0_row(const block_q4_0 *w, const act_oct *act, int64_t octs)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t o = 0;
    for (; o + 2 <= octs; o += 2) {
        acc0 = q4_0_oct(&w[OCT * o], &act[o], acc0);
        acc1 = q4_0_oct(&w[OCT * (o + 1)], &act[o + 1], acc1);
    }
    if (o < octs)
        acc0 = q4_0_oct(&w[OCT * o], &act[o], acc0);
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

AVX2_FN void cpu_gemv_q4_0_avx2(const cpu_tile *tile)
{
    const int64_t blocks = tile->n / QK4_0, octs = blocks / OCT;
    const block_q8_0 *y = (const block_q8_0 *)tile->act;
    act_oct act[CHUNK_OCTS];
    start_with_tails(tile, sizeof(block_q4_0), octs * OCT, blocks, q4_0_block);
    for (int64_t chunk = 0; chunk < octs; chunk += CHUNK_OCTS) {
        const int64_t chunk_octs = octs - chunk < CHUNK_OCTS ? octs - chunk : CHUNK_OCTS;
        for (int64_t o = 0; o < chunk_octs; o++)
            arrange_oct(&y[OCT * (chunk + o)], &act[o]);
        for (int64_t r = 0; r < tile->rows; r++) {
            const block_q4_0 *w = (const block_q4_0 *)(tile->weight + (size_t)r * tile->weight_stride);
            tile->dst[r] += q4_0_row(&w[OCT * chunk], act, chunk_octs);
        }
    }
}

/* --- Q8_0 ------------------------------------------------------------------ */

/* One block against one activation block, for a row's last blocks. */
AVX2_FN static float q8_0_block(const void *block, const block_q8_0 *y)
{
    const block_q8_0 *w = block;
    __m256i x = _mm256_loadu_si256((const __m256i *)w->qs), yq = _mm256_loadu_si256((const __m256i *)y->qs);
    __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(yq, x));
    __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
    return hsum_ps(f) * _cvtsh_ss(w->d) * _cvtsh_ss(y->d);
}

/* acc + eight Q8_0 blocks times eight activation blocks, one block a lane.
 * Signed times signed through the sign trick (cpu_dot_avx2.c). */
AVX2_FN INLINE __m256 q8_0_oct(const block_q8_0 *w, const block_q8_0 *y, __m256 act_scales, __m256 acc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    cpu_prefetch_ahead(w, OCT * sizeof *w);
    __m256i sums[8];
    UNROLL
    for (int k = 0; k < OCT; k++) {
        __m256i x = _mm256_loadu_si256((const __m256i *)w[k].qs);
        __m256i yq = _mm256_loadu_si256((const __m256i *)y[k].qs);
        sums[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(yq, x)), ones);
    }
    __m256 scales = _mm256_mul_ps(oct_scales((const char *)w, sizeof(block_q8_0)), act_scales);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce_8x8(sums)), scales, acc);
}

AVX2_FN void cpu_gemv_q8_0_avx2(const cpu_tile *tile)
{
    const int64_t blocks = tile->n / QK8_0, octs = blocks / OCT;
    const block_q8_0 *y = (const block_q8_0 *)tile->act;
    __m256 act_scales[CHUNK_OCTS];
    start_with_tails(tile, sizeof(block_q8_0), octs * OCT, blocks, q8_0_block);
    for (int64_t chunk = 0; chunk < octs; chunk += CHUNK_OCTS) {
        const int64_t chunk_octs = octs - chunk < CHUNK_OCTS ? octs - chunk : CHUNK_OCTS;
        const block_q8_0 *yc = &y[OCT * chunk];
        for (int64_t o = 0; o < chunk_octs; o++)
            act_scales[o] = oct_scales((const char *)&yc[OCT * o], sizeof(block_q8_0));
        for (int64_t r = 0; r < tile->rows; r++) {
            const block_q8_0 *w = (const block_q8_0 *)(tile->weight + (size_t)r * tile->weight_stride) + OCT * chunk;
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            int64_t o = 0;
            for (; o + 2 <= chunk_octs; o += 2) {
                acc0 = q8_0_oct(&w[OCT * o], &yc[OCT * o], act_scales[o], acc0);
                acc1 = q8_0_oct(&w[OCT * (o + 1)], &yc[OCT * (o + 1)], act_scales[o + 1], acc1);
            }
            if (o < chunk_octs)
                acc0 = q8_0_oct(&w[OCT * o], &yc[OCT * o], act_scales[o], acc0);
            tile->dst[r] += hsum_ps(_mm256_add_ps(acc0, acc1));
        }
    }
}

#endif
