/* AVX2 + FMA + F16C matrix-vector kernels for decode (one token): Q4_0 and
 * Q8_0 weights against a Q8_0 activation row, Q4_K against a Q8_K row. Same call as the tiles
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
#include "cpu_kernels.h"
#include "cpu_tile.h"
#include "cpu_unpack_avx2.h"

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

/* --- Q4_K ------------------------------------------------------------------ *
 * Each super-block as in the dot product (cpu_dot_avx2.c): the quants by
 * nibbles, each sub-block's int16 pair sums scaled by its 6-bit scale in one
 * madd, the mins against the activation's sums. What differs: the int32
 * sums are not scaled one super-block at a time (two half conversions, two
 * multiplies and two broadcasts each) but eight at a time, reduced into one
 * register whose lane k is super-block k's and scaled by the eight d (and
 * dmin) in one multiply each; and the activation's sums per sub-block are
 * arranged once per call, so the mins take one 128-bit madd. */

/* Eight Q8_K activation super-blocks' scales and sums of sub-blocks (each
 * two groups of 16, at most 32 * 127: int16). */
typedef struct act_k_oct {
    __m128i sub_block_sums[8];
    __m256 scales;
} act_k_oct;

AVX2_FN INLINE void arrange_k_oct(const block_q8_K *y, act_k_oct *out)
{
    float scales[8];
    UNROLL
    for (int k = 0; k < OCT; k++) {
        const __m128i *group_sums = (const __m128i *)y[k].bsums;
        out->sub_block_sums[k] = _mm_hadd_epi16(_mm_loadu_si128(group_sums), _mm_loadu_si128(group_sums + 1));
        scales[k] = y[k].d;
    }
    out->scales = _mm256_loadu_ps(scales);
}

/* int16 lane j of both 128-bit halves of v in all 16 lanes. */
AVX2_FN INLINE __m256i broadcast_word(__m256i v, int j)
{
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(((2 * j + 1) << 8) | (2 * j))));
}

/* One super-block: *sums gets sum_j scale_j sum q y over 8 int32 lanes,
 * *mins sum_j min_j (sums of y of sub-block j) over 4. */
AVX2_FN INLINE void q4_k_super_block(const block_q4_K *w, const int8_t *y, __m128i sub_block_sums, __m256i *sums,
                                     __m128i *mins)
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    __m256i scales_mins = _mm256_cvtepu8_epi16(scales_mins_6bit_bytes(w->scales)); /* scales 0-7, mins 0-7 */
    __m256i scales = _mm256_permute4x64_epi64(scales_mins, 0x44);                 /* scales 0-7 in both halves */
    __m256i sum = _mm256_setzero_si256();
    UNROLL
    for (int c = 0; c < 4; c++) { /* chunk c: sub-blocks 2c (low nibbles) and 2c + 1 (high) */
        __m256i packed = _mm256_loadu_si256((const __m256i *)(w->qs + 32 * c));
        __m256i q_low = _mm256_and_si256(packed, low_mask);
        __m256i q_high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
        __m256i low = _mm256_madd_epi16(_mm256_maddubs_epi16(q_low, _mm256_loadu_si256((const __m256i *)(y + 64 * c))),
                                        broadcast_word(scales, 2 * c));
        __m256i high = _mm256_madd_epi16(
            _mm256_maddubs_epi16(q_high, _mm256_loadu_si256((const __m256i *)(y + 64 * c + 32))),
            broadcast_word(scales, 2 * c + 1));
        sum = _mm256_add_epi32(sum, _mm256_add_epi32(low, high));
        /* an empty asm that claims to change sum keeps the adds one chain: without it GCC
         * reassociates them into a tree over both super-blocks of a pair and spills products */
        __asm__("" : "+x"(sum));
    }
    *sums = sum;
    *mins = _mm_madd_epi16(_mm256_extracti128_si256(scales_mins, 1), sub_block_sums);
}

/* acc + eight Q4_K super-blocks times the activation, one super-block a
 * lane. Super-blocks run by pairs, each pair's sums reduced by one level
 * at once (as reduce_8x8's first level and reduce_4x2x4's input), so no
 * more than a pair's registers are live: with all eight kept for one
 * reduction at the end, a fifth of the instructions were spills. */
AVX2_FN INLINE __m256 q4_k_oct(const block_q4_K *w, const block_q8_K *y, const act_k_oct *a, __m256 acc)
{
    __m256i pair_sums[4], pair_mins[4];
    UNROLL
    for (int k = 0; k < 4; k++) {
        __m256i first, second;
        __m128i first_mins, second_mins;
        q4_k_super_block(&w[2 * k], y[2 * k].qs, a->sub_block_sums[2 * k], &first, &first_mins);
        q4_k_super_block(&w[2 * k + 1], y[2 * k + 1].qs, a->sub_block_sums[2 * k + 1], &second, &second_mins);
        pair_sums[k] = _mm256_add_epi32(_mm256_unpacklo_epi32(first, second), _mm256_unpackhi_epi32(first, second));
        pair_mins[k] = _mm256_set_m128i(second_mins, first_mins);
    }
    /* reduce_8x8's last levels: lane k super-block k */
    __m256i r0 = _mm256_add_epi32(_mm256_unpacklo_epi64(pair_sums[0], pair_sums[1]),
                                  _mm256_unpackhi_epi64(pair_sums[0], pair_sums[1]));
    __m256i r1 = _mm256_add_epi32(_mm256_unpacklo_epi64(pair_sums[2], pair_sums[3]),
                                  _mm256_unpackhi_epi64(pair_sums[2], pair_sums[3]));
    __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(r0, r1, 0x20), _mm256_permute2x128_si256(r0, r1, 0x31));
    /* reduce_4x2x4 leaves super-blocks 0, 2, 4, 6, 1, 3, 5, 7: one permute to their order */
    __m256i mins = _mm256_permutevar8x32_epi32(reduce_4x2x4(pair_mins), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    /* d and dmin are the first two words of a block */
    __m256 d = _mm256_mul_ps(oct_scales((const char *)w, sizeof(block_q4_K)), a->scales);
    __m256 dmin = _mm256_mul_ps(oct_scales((const char *)w + 2, sizeof(block_q4_K)), a->scales);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), d, acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), dmin, acc);
}

AVX2_FN void cpu_gemv_q4_k_avx2(const cpu_tile *tile)
{
    const int64_t blocks = tile->n / QK_K, octs = blocks / OCT;
    const block_q8_K *y = (const block_q8_K *)tile->act;
    enum { K_CHUNK_OCTS = CHUNK_OCTS / 8 }; /* a chunk of as many elements as the Q4_0 kernel's */
    act_k_oct act[K_CHUNK_OCTS];
    /* the last blocks % 8 by the dot product, then the chunks add theirs */
    for (int64_t r = 0; r < tile->rows; r++) {
        const block_q4_K *w = (const block_q4_K *)(tile->weight + (size_t)r * tile->weight_stride);
        tile->dst[r] = blocks > octs * OCT ? cpu_dot_q4_k_avx2((blocks - octs * OCT) * QK_K, &w[octs * OCT],
                                                               &y[octs * OCT])
                                           : 0.0f;
    }
    for (int64_t chunk = 0; chunk < octs; chunk += K_CHUNK_OCTS) {
        const int64_t chunk_octs = octs - chunk < K_CHUNK_OCTS ? octs - chunk : K_CHUNK_OCTS;
        const block_q8_K *yc = &y[OCT * chunk];
        for (int64_t o = 0; o < chunk_octs; o++)
            arrange_k_oct(&yc[OCT * o], &act[o]);
        for (int64_t r = 0; r < tile->rows; r++) {
            const block_q4_K *w = (const block_q4_K *)(tile->weight + (size_t)r * tile->weight_stride) + OCT * chunk;
            __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
            int64_t o = 0;
            for (; o + 2 <= chunk_octs; o += 2) {
                acc0 = q4_k_oct(&w[OCT * o], &yc[OCT * o], &act[o], acc0);
                acc1 = q4_k_oct(&w[OCT * (o + 1)], &yc[OCT * (o + 1)], &act[o + 1], acc1);
            }
            if (o < chunk_octs)
                acc0 = q4_k_oct(&w[OCT * o], &yc[OCT * o], &act[o], acc0);
            tile->dst[r] += hsum_ps(_mm256_add_ps(acc0, acc1));
        }
    }
}

#endif
