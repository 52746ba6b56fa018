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
#include "../../base/quant_lowbit.h"
#include "cpu_tile.h"
#include "cpu_unpack_avx2.h"

#define AVX2_FN __attribute__((target("avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) static inline
/* Loops over tokens, groups and sub-blocks have constant trip counts once
 * inlined; unrolled, their sums live in registers instead of stack arrays. */
#define UNROLL _Pragma("GCC unroll 16")
/* An empty asm that claims to change v: the sums over sub-blocks then stay
 * one chain of adds per token. Without it GCC reassociates the integer adds
 * into a tree, keeps all 32 products of a four-token group alive and
 * spills them to the stack (a store and a load per product). */
#define CHAIN(v) __asm__("" : "+x"(v))

/* Calls kernel(..., COUNT) with COUNT the constant 1 .. 8 (or 1 .. 16) equal
 * to tokens, so each instance is compiled with its own trip counts. */
#define FOR_TOKEN_COUNT_8(tokens, kernel, ...)                                                                         \
    switch (tokens) {                                                                                                  \
    case 1: kernel(__VA_ARGS__, 1); break;                                                                             \
    case 2: kernel(__VA_ARGS__, 2); break;                                                                             \
    case 3: kernel(__VA_ARGS__, 3); break;                                                                             \
    case 4: kernel(__VA_ARGS__, 4); break;                                                                             \
    case 5: kernel(__VA_ARGS__, 5); break;                                                                             \
    case 6: kernel(__VA_ARGS__, 6); break;                                                                             \
    case 7: kernel(__VA_ARGS__, 7); break;                                                                             \
    default: kernel(__VA_ARGS__, 8); break;                                                                            \
    }
#define FOR_TOKEN_COUNT_16(tokens, kernel, ...)                                                                        \
    switch (tokens) {                                                                                                  \
    case 9: kernel(__VA_ARGS__, 9); break;                                                                             \
    case 10: kernel(__VA_ARGS__, 10); break;                                                                           \
    case 11: kernel(__VA_ARGS__, 11); break;                                                                           \
    case 12: kernel(__VA_ARGS__, 12); break;                                                                           \
    case 13: kernel(__VA_ARGS__, 13); break;                                                                           \
    case 14: kernel(__VA_ARGS__, 14); break;                                                                           \
    case 15: kernel(__VA_ARGS__, 15); break;                                                                           \
    case 16: kernel(__VA_ARGS__, 16); break;                                                                           \
    default: FOR_TOKEN_COUNT_8(tokens, kernel, __VA_ARGS__) break;                                                     \
    }

_Static_assert(CPU_TILE_TOKENS == 16, "FOR_TOKEN_COUNT_16 covers 1 .. 16 tokens");

/* The token-tile skeleton every format shares: the tile's weight rows
 * rows_per_call at a time (1, or 8 for the row-octet kernels; rows left
 * over are not run), their tokens `step` at a time (8 or 16), each group
 * run by row_kernel(format, group, row, dst, COUNT): group is the tile
 * moved to the group's first token, COUNT a constant picked by
 * FOR_TOKEN_COUNT_<step>. A macro rather than a function taking the row
 * kernel: a function pointer cannot carry COUNT into the kernel as a
 * constant, and the kernels need it to keep their token sums in
 * registers. */
#define TILE_ROWS(tile, rows_per_call, step, row_kernel, format)                                                       \
    for (int64_t r = 0; r + (rows_per_call) <= (tile)->rows; r += (rows_per_call)) {                                   \
        const char *row = (tile)->weight + (size_t)r * (tile)->weight_stride;                                          \
        for (int t = 0; t < (tile)->tokens; t += (step)) {                                                             \
            /* a step of the whole tile runs once, on the tile itself (a                                               \
             * copy measured 3 % more instructions for the K-quants) */                                                \
            const cpu_tile *group = (tile);                                                                            \
            cpu_tile part;                                                                                             \
            if ((step) < CPU_TILE_TOKENS) {                                                                            \
                part = *(tile);                                                                                        \
                part.act = (tile)->act + (size_t)t * (tile)->act_stride;                                               \
                part.act_scales = (tile)->act_scales + t;                                                              \
                part.act_sums = (tile)->act_sums ? (tile)->act_sums + t : NULL;                                        \
                group = &part;                                                                                         \
            }                                                                                                          \
            float *dst = (tile)->dst + t * (tile)->dst_stride + r;                                                     \
            FOR_TOKEN_COUNT_##step((tile)->tokens - t, row_kernel, format, group, row, dst)                            \
        }                                                                                                              \
    }

/* A public kernel: the skeleton for one format. */
#define TILE_KERNEL(name, step, row_kernel, format)                                                                    \
    AVX2_FN void name(const cpu_tile *tile)                                                                            \
    {                                                                                                                  \
        TILE_ROWS(tile, 1, step, row_kernel, format)                                                                   \
    }

/* A public kernel whose rows go eight at a time through octet_kernel, the
 * last rows % 8 one at a time through row_kernel. */
#define OCTET_TILE_KERNEL(name, step, octet_kernel, row_kernel, format)                                                \
    AVX2_FN void name(const cpu_tile *tile)                                                                            \
    {                                                                                                                  \
        TILE_ROWS(tile, 8, step, octet_kernel, format)                                                                 \
        const int64_t octet_rows = tile->rows / 8 * 8;                                                                 \
        if (tile->rows > octet_rows) {                                                                                 \
            cpu_tile rest = *tile;                                                                                     \
            rest.weight = tile->weight + (size_t)octet_rows * tile->weight_stride;                                     \
            rest.rows = tile->rows - octet_rows;                                                                       \
            rest.dst = tile->dst + octet_rows;                                                                         \
            TILE_ROWS(&rest, 1, step, row_kernel, format)                                                              \
        }                                                                                                              \
    }

/* --- 32-element blocks against Q8_0 activations ---------------------------- *
 * A block is one register of 32 signed quants. Per token: the sign trick
 * (|x| unsigned times y with x's sign, as in cpu_dot_avx2.c), pairs summed to
 * 8 int32 lanes. Four tokens' lanes are then folded into one register (lane
 * i and 4 + i hold parts of token i) so the conversion to f32 and the scaling
 * by d_w d_a run once per four tokens; the activation scales of a block are
 * contiguous over tokens for that (cpu_tile.h). */

/* The folds below pair registers by unpacks and adds: the 32-bit units of
 * a and b interleaved and the two interleavings added, then those of two
 * such results by 64-bit units. Not hadd, which decodes into several uops
 * on AMD's cores. */
AVX2_FN INLINE __m256i interleave_add_32(__m256i a, __m256i b)
{
    return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}

/* The 8 int32 lanes of up to four tokens (count 1..4) folded into one
 * register: lanes i and 4 + i sum to token i's total; missing tokens are 0. */
AVX2_FN INLINE __m256i fold_4(const __m256i *sums, int count)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i s01 = interleave_add_32(sums[0], count > 1 ? sums[1] : zero);
    __m256i s23 = count > 2 ? interleave_add_32(sums[2], count > 3 ? sums[3] : zero) : zero;
    return _mm256_add_epi32(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23));
}

/* The same for up to four tokens' 16 int16 pair sums, folded in int16
 * (each int16 of the result adds four of the inputs', which must stay
 * within int16): int16 lanes 2i, 2i + 1 and 8 + 2i, 9 + 2i hold parts of
 * token i, which one madd with ones turns into fold_4's layout. */
AVX2_FN INLINE __m256i fold_4_i16(const __m256i *pairs, int count)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i p01 = _mm256_add_epi16(_mm256_unpacklo_epi32(pairs[0], count > 1 ? pairs[1] : zero),
                                   _mm256_unpackhi_epi32(pairs[0], count > 1 ? pairs[1] : zero));
    __m256i p23 = zero;
    if (count > 2)
        p23 = _mm256_add_epi16(_mm256_unpacklo_epi32(pairs[2], count > 3 ? pairs[3] : zero),
                               _mm256_unpackhi_epi32(pairs[2], count > 3 ? pairs[3] : zero));
    return _mm256_add_epi16(_mm256_unpacklo_epi64(p01, p23), _mm256_unpackhi_epi64(p01, p23));
}

/* Writes the count (1..4) token totals of a folded accumulator. */
AVX2_FN INLINE void store_4(__m256 acc, int count, float *dst, int64_t dst_stride)
{
    float totals[4];
    _mm_storeu_ps(totals, _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1)));
    UNROLL
    for (int i = 0; i < count; i++)
        dst[i * dst_stride] = totals[i];
}

AVX2_FN INLINE void row_32(format_32 format, const cpu_tile *tile, const char *row, float *dst, int count)
{
    enum { GROUPS = 2 };
    const __m256i ones = _mm256_set1_epi16(1);
    const block_q8_0 *act[CPU_TILE_TOKENS];
    __m256 acc[GROUPS];
    UNROLL
    for (int i = 0; i < count; i++)
        act[i] = (const block_q8_0 *)(tile->act + (size_t)i * tile->act_stride);
    UNROLL
    for (int g = 0; g < GROUPS; g++)
        acc[g] = _mm256_setzero_ps();
    for (int64_t b = 0; b < tile->n / 32; b++) {
        float d;
        __m256i x = quants_32(format, row, b, &d);
        __m256i ax = offset_32(format) ? x : _mm256_sign_epi8(x, x);
        __m256 dw = _mm256_set1_ps(d);
        const float *act_d = tile->act_scales + b * tile->act_scales_stride;
        const int32_t *act_sums = offset_32(format) ? tile->act_sums + b * tile->act_scales_stride : NULL;
        UNROLL
        for (int g = 0; 4 * g < count; g++) {
            int in_group = count - 4 * g < 4 ? count - 4 * g : 4;
            __m256i folded;
            if (offset_32(format)) {
                /* unsigned quants meet y as it is: int16 pair sums below 2 * 31 * 127, so four of them
                 * still fit and the tokens fold in int16, one madd for the four instead of one each */
                __m256i pairs[4];
                UNROLL
                for (int i = 0; i < in_group; i++)
                    pairs[i] = _mm256_maddubs_epi16(ax, _mm256_loadu_si256((const __m256i *)act[4 * g + i][b].qs));
                folded = _mm256_madd_epi16(fold_4_i16(pairs, in_group), ones);
            } else {
                /* signed ones by the sign trick, whose pair sums (up to 2 * 128 * 127) fill int16 */
                __m256i sums[4];
                UNROLL
                for (int i = 0; i < in_group; i++) {
                    __m256i y = _mm256_loadu_si256((const __m256i *)act[4 * g + i][b].qs);
                    sums[i] = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(y, x)), ones);
                }
                folded = fold_4(sums, in_group);
            }
            if (offset_32(format)) {
                /* - offset sum(y) per token, in the low half only (the halves are added at the end) */
                __m128i block_sums = _mm_loadu_si128((const __m128i *)(act_sums + 4 * g));
                __m128i offsets = _mm_slli_epi32(block_sums, offset_32(format) == 8 ? 3 : 4);
                folded = _mm256_sub_epi32(folded, _mm256_zextsi128_si256(offsets));
            }
            __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ps((const __m128 *)(act_d + 4 * g)));
            acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(folded), scale, acc[g]);
        }
    }
    UNROLL
    for (int g = 0; 4 * g < count; g++)
        store_4(acc[g], count - 4 * g < 4 ? count - 4 * g : 4, dst + 4 * g * tile->dst_stride, tile->dst_stride);
}

/* --- Q4_0 and Q8_0 by row octets -------------------------------------------- *
 * The kernel above folds each token's 32 products of a block out of the
 * lanes of one row (a dozen shuffles per block and group of tokens). Here a
 * block of eight rows is transposed once instead: register k holds quants
 * 4k .. 4k + 3 of row j in its 32-bit lane j, so the multiply-adds against
 * each token's quants 4k .. 4k + 3, broadcast to every lane (a load, no
 * shuffle), sum each row in its own lane and the block's eight row totals
 * come out in one register, in row order, ready to be scaled by the eight
 * rows' scales and stored. Per token and block: eight broadcasts, eight
 * multiply-adds, seven adds, one madd and the scaling; the transposition
 * (16 shuffles per block of eight rows) is shared by all the tokens. One
 * Zen 3 core, 4096 x 512 by 64 tokens, best of four alternated runs: the
 * row_32 kernel 44 GMAC/s, this one 66. Q8_0's signed quants need the sign
 * trick and a madd per register, so it gains less: 43 -> 47 GMAC/s (best
 * of 30, five alternated runs; 11 % fewer instructions by callgrind).
 *
 * The public kernels below take eight tokens at a time (a block here is
 * one register, so more tokens would not save unpacking, only add
 * accumulators to the 16 registers). */

/* The 4 x 4 transposition of 32-bit units within each 128-bit lane: v[i]'s
 * unit k goes to v[k]'s unit i. */
AVX2_FN INLINE void transpose_4x4_dwords(__m256i v[4])
{
    __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
    __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
    v[0] = _mm256_unpacklo_epi64(t0, t2);
    v[1] = _mm256_unpackhi_epi64(t0, t2);
    v[2] = _mm256_unpacklo_epi64(t1, t3);
    v[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* Block b of the eight rows from row, stride bytes apart: q[k] as above
 * (Q4_0: unsigned quants 0..15; Q8_0: signed), their scales in *d (row j in
 * lane j). Rows j and j + 4 share a register before the transposition, one
 * per 128-bit lane, so the in-lane transposition alone leaves every lane of
 * q[k] at the same k. */
AVX2_FN INLINE void octet_block_32(format_32 format, const char *row, size_t stride, int64_t b, __m256i q[8],
                                   __m256 *d)
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    uint16_t halves[8];
    UNROLL
    for (int j = 0; j < 4; j++) {
        const char *lower = row + (size_t)j * stride, *upper = row + (size_t)(j + 4) * stride;
        if (format == FORMAT_Q4_0) {
            const block_q4_0 *low_row = (const block_q4_0 *)lower + b, *high_row = (const block_q4_0 *)upper + b;
            __m256i packed = _mm256_loadu2_m128i((const __m128i *)high_row->qs, (const __m128i *)low_row->qs);
            q[j] = _mm256_and_si256(packed, low_mask);                             /* quants 0..15 */
            q[4 + j] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask); /* quants 16..31 */
            halves[j] = low_row->d;
            halves[j + 4] = high_row->d;
        } else {
            const block_q8_0 *low_row = (const block_q8_0 *)lower + b, *high_row = (const block_q8_0 *)upper + b;
            q[j] = _mm256_loadu2_m128i((const __m128i *)high_row->qs, (const __m128i *)low_row->qs);
            q[4 + j] = _mm256_loadu2_m128i((const __m128i *)(high_row->qs + 16), (const __m128i *)(low_row->qs + 16));
            halves[j] = low_row->d;
            halves[j + 4] = high_row->d;
        }
    }
    transpose_4x4_dwords(q);
    transpose_4x4_dwords(q + 4);
    *d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)halves));
}

/* Eight Q4_0 or Q8_0 rows from row against count (1..8) tokens. Q4_0: each
 * int16 of a token's sum adds eight pair sums of quants 0..15 by
 * activations -127..127, at most 8 * 2 * 15 * 127 = 30480, within int16.
 * Q8_0: the sign trick (|x| unsigned times y with x's sign) per register,
 * whose pair sums (up to 2 * 128 * 127) fill int16, so a madd each. */
AVX2_FN INLINE void octet_32(format_32 format, const cpu_tile *tile, const char *row, float *dst, int count)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const block_q8_0 *act[8];
    __m256 acc[8];
    UNROLL
    for (int i = 0; i < count; i++) {
        act[i] = (const block_q8_0 *)(tile->act + (size_t)i * tile->act_stride);
        acc[i] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < tile->n / 32; b++) {
        __m256i q[8], magnitude[8];
        __m256 d;
        octet_block_32(format, row, tile->weight_stride, b, q, &d);
        UNROLL
        for (int k = 0; k < 8; k++)
            magnitude[k] = format == FORMAT_Q8_0 ? _mm256_sign_epi8(q[k], q[k]) : q[k];
        const float *act_d = tile->act_scales + b * tile->act_scales_stride;
        const int32_t *act_sums = format == FORMAT_Q4_0 ? tile->act_sums + b * tile->act_scales_stride : NULL;
        UNROLL
        for (int i = 0; i < count; i++) {
            const int8_t *y = act[i][b].qs;
            __m256i totals = _mm256_setzero_si256(), sum = _mm256_setzero_si256();
            UNROLL
            for (int k = 0; k < 8; k++) {
                int32_t four;
                memcpy(&four, y + 4 * k, sizeof four);
                __m256i y4 = _mm256_set1_epi32(four);
                if (format == FORMAT_Q4_0)
                    sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(q[k], y4));
                else
                    totals = _mm256_add_epi32(totals, _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude[k],
                                                                                         _mm256_sign_epi8(y4, q[k])),
                                                                        ones));
            }
            if (format == FORMAT_Q4_0) /* - 8 sum(y): the quants' offset */
                totals = _mm256_sub_epi32(_mm256_madd_epi16(sum, ones),
                                          _mm256_slli_epi32(_mm256_set1_epi32(act_sums[i]), 3));
            __m256 scale = _mm256_mul_ps(d, _mm256_set1_ps(act_d[i]));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(totals), scale, acc[i]);
        }
    }
    UNROLL
    for (int i = 0; i < count; i++)
        _mm256_storeu_ps(dst + i * tile->dst_stride, acc[i]);
}

OCTET_TILE_KERNEL(cpu_tile_q8_0_avx2, 8, octet_32, row_32, FORMAT_Q8_0)
OCTET_TILE_KERNEL(cpu_tile_q4_0_avx2, 8, octet_32, row_32, FORMAT_Q4_0)
TILE_KERNEL(cpu_tile_q5_0_avx2, 8, row_32, FORMAT_Q5_0)
TILE_KERNEL(cpu_tile_iq4_nl_avx2, 8, row_32, FORMAT_IQ4_NL)

/* --- K-quant super-blocks against Q8_K activations ------------------------- *
 * A super-block is unpacked into 8 registers of 32 unsigned quants (Q8_K
 * element order) and 8 of int16 scales, one per pair lane (the first 8 lanes
 * of a 32-element sub-block cover its first 16 elements), kept in an L1
 * buffer. Then, as in cpu_tile_scalar.c:
 *   sum w a = a.d (d sum scale q y - m sum_g corr_g bsum_g)
 * q y by _mm256_maddubs_epi16 (int16 pair sums, q < 64 so no saturation),
 * times the scales by _mm256_madd_epi16 into int32; the offset or min term
 * through the activation's group sums, one madd per token and block. */

/* Bytes of v whose bit `bit` is set become `value`, the others 0. */
AVX2_FN INLINE __m256i bit_to_bytes(__m256i v, int bit, uint8_t value)
{
    const __m256i mask = _mm256_set1_epi8((char)(1u << bit));
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, mask), mask);
    return _mm256_and_si256(set, _mm256_set1_epi8((char)value));
}

/* From 16 int16 scales, one per group of 16: sub-block j takes scale 2j in
 * its first 8 lanes and 2j + 1 in the last 8 (cpu_unpack_avx2.h). */
AVX2_FN INLINE void group_scales(__m256i scales16, k_vectors *u)
{
    UNROLL
    for (int j = 0; j < 8; j++)
        u->scale[j] = group_pair_scales(scales16, j);
}

/* Q4_K/Q5_K: scale j for the 32 elements of sub-block j, min j for the two
 * groups of 16 in it (m0 m0 m1 m1 ... m7 m7). */
AVX2_FN INLINE void scales_mins_6bit(const uint8_t packed[K_SCALE_SIZE], k_vectors *u)
{
    __m256i scales_mins = _mm256_cvtepu8_epi16(scales_mins_6bit_bytes(packed)); /* scales 0-7, mins 0-7 */
    __m256i scales = _mm256_permute4x64_epi64(scales_mins, 0x44);             /* scales 0-7 in both halves */
    UNROLL
    for (int j = 0; j < 8; j++)
        u->scale[j] = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short)(((2 * j + 1) << 8) | (2 * j))));
    __m128i mins = _mm256_extracti128_si256(scales_mins, 1);
    u->corr = _mm256_set_m128i(_mm_unpackhi_epi16(mins, mins), _mm_unpacklo_epi16(mins, mins));
}

AVX2_FN INLINE void unpack_q4_k(const block_q4_K *blk, k_vectors *u)
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    UNROLL
    for (int chunk = 0; chunk < 4; chunk++) {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * chunk));
        u->q[2 * chunk] = _mm256_and_si256(packed, low_mask);
        u->q[2 * chunk + 1] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
    }
    scales_mins_6bit(blk->scales, u);
    u->d = _cvtsh_ss(blk->d);
    u->m = _cvtsh_ss(blk->dmin);
}

/* Q6_K: quants 0..63 by halves (cpu_unpack_avx2.h); the stored quant is
 * q - 32, the 32 taken out as m = 32 d with corr = scale. */
AVX2_FN INLINE void unpack_q6_k(const block_q6_K *blk, k_vectors *u)
{
    UNROLL
    for (int half = 0; half < 2; half++)
        cpu_unpack_q6_k_half_avx2(blk->ql + 64 * half, blk->qh + 32 * half, u->q + 4 * half);
    __m256i scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
    group_scales(scales16, u);
    u->corr = scales16;
    u->d = _cvtsh_ss(blk->d);
    u->m = 32.0f * u->d;
}

/* Q5_K: Q4_K's nibbles, scales and mins, plus a fifth bit: bit e / 32 of
 * qh[e % 32] adds 16 to element e (sub-block j takes bit j). */
AVX2_FN INLINE void unpack_q5_k(const block_q5_K *blk, k_vectors *u)
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    __m256i qh = _mm256_loadu_si256((const __m256i *)blk->qh);
    UNROLL
    for (int chunk = 0; chunk < 4; chunk++) {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * chunk));
        u->q[2 * chunk] = _mm256_or_si256(_mm256_and_si256(packed, low_mask), bit_to_bytes(qh, 2 * chunk, 16));
        u->q[2 * chunk + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask),
                                              bit_to_bytes(qh, 2 * chunk + 1, 16));
    }
    scales_mins_6bit(blk->scales, u);
    u->d = _cvtsh_ss(blk->d);
    u->m = _cvtsh_ss(blk->dmin);
}

/* Q3_K: quant = low2 + 4 hbit - 4, taken as u = low2 + 4 hbit (0..7) with
 * the 4 out through m = 4 d, corr = scale. Each 128-element half reads 32
 * bytes of qs; quarter k takes bit pair k of them and bit 4 half + k of
 * hmask. The 16 scales are 6-bit with an offset of 32 (see
 * cpu_dot_scalar_k.c): low nibbles in bytes 0..7 (all low nibbles first,
 * then the high ones), the top 2 bits four to a byte in bytes 8..11. */
AVX2_FN INLINE void unpack_q3_k(const block_q3_K *blk, k_vectors *u)
{
    const __m256i two_bits = _mm256_set1_epi8(3);
    __m256i hmask = _mm256_loadu_si256((const __m256i *)blk->hmask);
    UNROLL
    for (int half = 0; half < 2; half++) {
        __m256i qs = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * half));
        UNROLL
        for (int k = 0; k < 4; k++) {
            __m256i low = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), two_bits);
            u->q[4 * half + k] = _mm256_or_si256(low, bit_to_bytes(hmask, 4 * half + k, 4));
        }
    }
    uint32_t w[3];
    memcpy(w, blk->scales, sizeof w);
    /* scale i: nibble i % 8 of bytes 0..7 (low for i < 8), top bits from
     * bits 2 (i / 4) of byte 8 + i % 4 */
    uint32_t packed[4] = {
        (w[0] & 0x0F0F0F0Fu) | ((w[2] << 4) & 0x30303030u),
        (w[1] & 0x0F0F0F0Fu) | ((w[2] << 2) & 0x30303030u),
        ((w[0] >> 4) & 0x0F0F0F0Fu) | (w[2] & 0x30303030u),
        ((w[1] >> 4) & 0x0F0F0F0Fu) | ((w[2] >> 2) & 0x30303030u),
    };
    __m256i scales16 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)packed)),
                                        _mm256_set1_epi16(32));
    group_scales(scales16, u);
    u->corr = scales16;
    u->d = _cvtsh_ss(blk->d);
    u->m = 4.0f * u->d;
}

/* Q2_K: quant = 2 bits (0..3) in Q3_K's element order; scale = low nibble
 * and min = high nibble of scales[g]. */
AVX2_FN INLINE void unpack_q2_k(const block_q2_K *blk, k_vectors *u)
{
    const __m256i two_bits = _mm256_set1_epi8(3);
    UNROLL
    for (int half = 0; half < 2; half++) {
        __m256i qs = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * half));
        UNROLL
        for (int k = 0; k < 4; k++)
            u->q[4 * half + k] = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), two_bits);
    }
    __m128i packed = _mm_loadu_si128((const __m128i *)blk->scales);
    const __m128i low_mask = _mm_set1_epi8(0x0F);
    group_scales(_mm256_cvtepu8_epi16(_mm_and_si128(packed, low_mask)), u);
    u->corr = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low_mask));
    u->d = _cvtsh_ss(blk->d);
    u->m = _cvtsh_ss(blk->dmin);
}

/* Not inlined on purpose: u must live in memory (an L1 buffer read once per
 * group of tokens); inlined, the compiler keeps its 17 vectors in registers
 * and spills the token sums instead, far more often. */
__attribute__((noinline)) AVX2_FN void cpu_unpack_k_avx2(format_k format, const char *row, int64_t b, k_vectors *u)
{
    switch (format) {
    case FORMAT_Q2_K: unpack_q2_k((const block_q2_K *)row + b, u); break;
    case FORMAT_Q3_K: unpack_q3_k((const block_q3_K *)row + b, u); break;
    case FORMAT_Q4_K: unpack_q4_k((const block_q4_K *)row + b, u); break;
    case FORMAT_Q5_K: unpack_q5_k((const block_q5_K *)row + b, u); break;
    case FORMAT_Q6_K: unpack_q6_k((const block_q6_K *)row + b, u); break;
    }
}

/* count (1..4) tokens against one unpacked super-block, their sums folded
 * into one accumulator (lanes i and 4 + i: token i); act_d: the tokens'
 * activation scales for this block, readable four at a time */
AVX2_FN INLINE void k_tokens(const k_vectors *u, const block_q8_K *const *act, const float *act_d, int count,
                             __m256 *acc)
{
    /* Tokens by pairs: their int16 pair sums (below 2 * 63 * 127, so two
     * add within int16) interleaved by dwords and added, then one madd by
     * the scales for both: three multiplies for two tokens instead of four.
     * sums[p]: dwords 0, 2 (and 4, 6) token 2p, dwords 1, 3 token 2p + 1. */
    const int pairs = (count + 1) / 2;
    __m256i sums[2], corr[4];
    UNROLL
    for (int p = 0; p < pairs; p++)
        sums[p] = _mm256_setzero_si256();
    UNROLL
    for (int k = 0; k < 8; k++) {
        __m256i q = u->q[k], scale = u->scale[k];
        UNROLL
        for (int p = 0; p < pairs; p++) {
            __m256i first = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)(act[2 * p]->qs + 32 * k)));
            __m256i second = 2 * p + 1 < count
                                 ? _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)(act[2 * p + 1]->qs + 32 * k)))
                                 : _mm256_setzero_si256();
            __m256i both = _mm256_add_epi16(_mm256_unpacklo_epi32(first, second), _mm256_unpackhi_epi32(first, second));
            sums[p] = _mm256_add_epi32(sums[p], _mm256_madd_epi16(both, scale));
            CHAIN(sums[p]);
        }
    }
    UNROLL
    for (int i = 0; i < count; i++)
        corr[i] = _mm256_madd_epi16(u->corr, _mm256_loadu_si256((const __m256i *)act[i]->bsums));
    /* lanes i and 4 + i: token i, as fold_4 leaves them */
    __m256i sums23 = pairs > 1 ? sums[1] : _mm256_setzero_si256();
    __m256i folded = _mm256_add_epi32(_mm256_unpacklo_epi64(sums[0], sums23), _mm256_unpackhi_epi64(sums[0], sums23));
    __m256 da = _mm256_broadcast_ps((const __m128 *)act_d);
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(folded), _mm256_mul_ps(_mm256_set1_ps(u->d), da), *acc);
    *acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(fold_4(corr, count)), _mm256_mul_ps(_mm256_set1_ps(u->m), da), *acc);
}

AVX2_FN INLINE void row_k(format_k format, const cpu_tile *tile, const char *row, float *dst, int count)
{
    enum { GROUPS = CPU_TILE_TOKENS / 4 };
    k_vectors u;
    const block_q8_K *base[CPU_TILE_TOKENS], *act[CPU_TILE_TOKENS];
    __m256 acc[GROUPS];
    UNROLL
    for (int i = 0; i < count; i++)
        base[i] = (const block_q8_K *)(tile->act + (size_t)i * tile->act_stride);
    UNROLL
    for (int g = 0; g < GROUPS; g++)
        acc[g] = _mm256_setzero_ps();
    for (int64_t b = 0; b < tile->n / QK_K; b++) {
        cpu_unpack_k_avx2(format, row, b, &u);
        UNROLL
        for (int i = 0; i < count; i++)
            act[i] = base[i] + b;
        const float *act_d = tile->act_scales + b * tile->act_scales_stride;
        UNROLL
        for (int g = 0; 4 * g < count; g++)
            k_tokens(&u, act + 4 * g, act_d + 4 * g, count - 4 * g < 4 ? count - 4 * g : 4, &acc[g]);
    }
    UNROLL
    for (int g = 0; 4 * g < count; g++)
        store_4(acc[g], count - 4 * g < 4 ? count - 4 * g : 4, dst + 4 * g * tile->dst_stride, tile->dst_stride);
}

/* --- Q4_K by row octets ----------------------------------------------------- *
 * The row-octet layout of the Q4_0 kernel, per 32-element sub-block: the
 * sub-block's quants of eight rows transposed once (register k: quants
 * 4k .. 4k + 3 of row j in lane j) and run against every token of the tile,
 * no folds, eight row sums in row order. Each row has its own 6-bit scale
 * and min per sub-block, so a token's int16 sums of a sub-block are scaled
 * by one madd with a register that holds row j's scale in lane j, into an
 * int32 sum per token over the super-block; the mins meet the token's
 * group sums the same way at the super-block's end, and d and dmin per row
 * scale both. One Zen 3 core, 4096 x 512 by 64 tokens, best of 20: row_k
 * 60 GMAC/s, this kernel 83.
 *
 * Q6_K was tried the same way and lost (callgrind 26.6M instructions
 * against row_k's 22.9M on that harness): its quants reach 63, so only two
 * pair sums fit an int16 and a sub-block takes four madds, and its
 * unpacking (low nibbles, high bit pairs) costs twice Q4_K's. */

/* The scales and mins of one super-block of eight rows, rows in lanes:
 * scale[j] holds sub-block j's scale of row r in both int16 of dword r (a
 * madd multiplier for pair sums in the octet layout); min_pairs[p] holds
 * the mins of sub-blocks 2p and 2p + 1 of row r in dword r (a madd
 * multiplier for a token's sums of those two sub-blocks). */
typedef struct q4_k_octet_scales {
    __m256i scale[8], min_pairs[4];
    __m256 d, dmin; /* per row */
} q4_k_octet_scales;

/* The 8 bytes v[r] holds for rows r = 0..7 at byte offset `at` (0 or 8)
 * of four 128-bit registers (each two sub-blocks' values, rows in bytes):
 * out[p] bytes 0-7 are sub-block 2p's values of rows 0..7, bytes 8-15
 * sub-block 2p + 1's. An 8 x 8 byte transposition by three rounds of
 * unpacks. */
AVX2_FN INLINE void transpose_8x8_bytes(const __m128i v[8], int at, __m128i out[4])
{
    __m128i pairs[4], quads[4];
    UNROLL
    for (int p = 0; p < 4; p++) /* word j: value j of rows 2p, 2p + 1 */
        pairs[p] = at ? _mm_unpackhi_epi8(v[2 * p], v[2 * p + 1]) : _mm_unpacklo_epi8(v[2 * p], v[2 * p + 1]);
    UNROLL
    for (int h = 0; h < 2; h++) { /* dword j % 4: value j of rows 4h .. 4h + 3, j < 4 in quads[h] */
        quads[h] = _mm_unpacklo_epi16(pairs[2 * h], pairs[2 * h + 1]);
        quads[2 + h] = _mm_unpackhi_epi16(pairs[2 * h], pairs[2 * h + 1]);
    }
    out[0] = _mm_unpacklo_epi32(quads[0], quads[1]);
    out[1] = _mm_unpackhi_epi32(quads[0], quads[1]);
    out[2] = _mm_unpacklo_epi32(quads[2], quads[3]);
    out[3] = _mm_unpackhi_epi32(quads[2], quads[3]);
}

/* Eight bytes (half `half` of v) each widened to the two int16 of a dword. */
AVX2_FN INLINE __m256i bytes_to_dword_pairs(__m128i v, int half)
{
    return _mm256_cvtepu8_epi16(half ? _mm_unpackhi_epi8(v, v) : _mm_unpacklo_epi8(v, v));
}

AVX2_FN INLINE void q4_k_octet_scales_of(const char *row, size_t stride, int64_t b, q4_k_octet_scales *s)
{
    __m128i per_row[8], by_sub_block[4];
    uint16_t d[8], dmin[8];
    UNROLL
    for (int r = 0; r < 8; r++) {
        const block_q4_K *blk = (const block_q4_K *)(row + (size_t)r * stride) + b;
        per_row[r] = scales_mins_6bit_bytes(blk->scales); /* scales 0-7, mins 0-7 */
        d[r] = blk->d;
        dmin[r] = blk->dmin;
    }
    transpose_8x8_bytes(per_row, 0, by_sub_block);
    UNROLL
    for (int j = 0; j < 8; j++)
        s->scale[j] = bytes_to_dword_pairs(by_sub_block[j / 2], j % 2);
    transpose_8x8_bytes(per_row, 8, by_sub_block);
    UNROLL
    for (int p = 0; p < 4; p++) /* bytes 0-7 and 8-15 interleaved: row r's two mins side by side */
        s->min_pairs[p] = _mm256_cvtepu8_epi16(
            _mm_unpacklo_epi8(by_sub_block[p], _mm_unpackhi_epi64(by_sub_block[p], by_sub_block[p])));
    s->d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)d));
    s->dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)dmin));
}

/* Sub-blocks 2c and 2c + 1 of super-block b of eight Q4_K rows (they share
 * the 32 bytes of chunk c: low nibbles and high), each laid out as
 * octet_block_32 lays out a block: q[0..7] and q[8..15]. */
AVX2_FN INLINE void q4_k_octet_sub_blocks(const char *row, size_t stride, int64_t b, int c, __m256i q[16])
{
    const __m256i low_mask = _mm256_set1_epi8(0x0F);
    UNROLL
    for (int half = 0; half < 2; half++) {
        UNROLL
        for (int j = 0; j < 4; j++) {
            const block_q4_K *lower = (const block_q4_K *)(row + (size_t)j * stride) + b;
            const block_q4_K *upper = (const block_q4_K *)(row + (size_t)(j + 4) * stride) + b;
            __m256i packed = _mm256_loadu2_m128i((const __m128i *)(upper->qs + 32 * c + 16 * half),
                                                 (const __m128i *)(lower->qs + 32 * c + 16 * half));
            q[4 * half + j] = _mm256_and_si256(packed, low_mask);
            q[8 + 4 * half + j] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_mask);
        }
    }
    UNROLL
    for (int k = 0; k < 4; k++)
        transpose_4x4_dwords(q + 4 * k);
}

/* A token's int16 pair sums of one sub-block in the octet layout against
 * its 32 activations y: each int16 adds eight pair sums of quants 0..15 by
 * -127..127, at most 8 * 2 * 15 * 127 = 30480. octet_32's Q4_0 branch runs
 * the same loop written inline: called there instead, it cost 2.5 % more
 * instructions (callgrind, 23.9M -> 24.5M) and measured slower. */
AVX2_FN INLINE __m256i octet_pair_sums(const __m256i q[8], const int8_t *y)
{
    __m256i sum = _mm256_setzero_si256();
    UNROLL
    for (int k = 0; k < 8; k++) {
        int32_t four;
        memcpy(&four, y + 4 * k, sizeof four);
        sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(q[k], _mm256_set1_epi32(four)));
    }
    return sum;
}

/* Eight Q4_K rows from row against count (1..16) tokens. */
AVX2_FN INLINE void octet_q4_k(format_k format, const cpu_tile *tile, const char *row, float *dst, int count)
{
    (void)format;
    const block_q8_K *act[CPU_TILE_TOKENS];
    __m256 acc[CPU_TILE_TOKENS];
    UNROLL
    for (int i = 0; i < count; i++) {
        act[i] = (const block_q8_K *)(tile->act + (size_t)i * tile->act_stride);
        acc[i] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < tile->n / QK_K; b++) {
        q4_k_octet_scales s;
        q4_k_octet_scales_of(row, tile->weight_stride, b, &s);
        __m256i sums[CPU_TILE_TOKENS];
        UNROLL
        for (int i = 0; i < count; i++)
            sums[i] = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i q[16];
            q4_k_octet_sub_blocks(row, tile->weight_stride, b, c, q);
            UNROLL
            for (int h = 0; h < 2; h++) {
                const int j = 2 * c + h;
                UNROLL
                for (int i = 0; i < count; i++)
                    sums[i] = _mm256_add_epi32(
                        sums[i], _mm256_madd_epi16(octet_pair_sums(q + 8 * h, act[i][b].qs + 32 * j), s.scale[j]));
            }
        }
        const float *act_d = tile->act_scales + b * tile->act_scales_stride;
        UNROLL
        for (int i = 0; i < count; i++) {
            /* the mins against the token's sums of its sub-blocks (each two groups of 16; at most
             * 32 * 127, so int16), two sub-blocks a dword */
            const __m128i *group_sums = (const __m128i *)act[i][b].bsums;
            int16_t sub_block_sums[8];
            _mm_storeu_si128((__m128i *)sub_block_sums,
                             _mm_hadd_epi16(_mm_loadu_si128(group_sums), _mm_loadu_si128(group_sums + 1)));
            __m256i mins = _mm256_setzero_si256();
            UNROLL
            for (int p = 0; p < 4; p++) {
                int32_t two;
                memcpy(&two, sub_block_sums + 2 * p, sizeof two);
                mins = _mm256_add_epi32(mins, _mm256_madd_epi16(s.min_pairs[p], _mm256_set1_epi32(two)));
            }
            __m256 a_d = _mm256_set1_ps(act_d[i]);
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[i]), _mm256_mul_ps(s.d, a_d), acc[i]);
            acc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_mul_ps(s.dmin, a_d), acc[i]);
        }
    }
    UNROLL
    for (int i = 0; i < count; i++)
        _mm256_storeu_ps(dst + i * tile->dst_stride, acc[i]);
}

/* The public kernels: the skeleton with the format a constant, all the
 * tile's tokens in one group (see cpu_tile.h for why 16). */
OCTET_TILE_KERNEL(cpu_tile_q4_k_avx2, 16, octet_q4_k, row_k, FORMAT_Q4_K)
TILE_KERNEL(cpu_tile_q6_k_avx2, 16, row_k, FORMAT_Q6_K)
TILE_KERNEL(cpu_tile_q5_k_avx2, 16, row_k, FORMAT_Q5_K)
TILE_KERNEL(cpu_tile_q3_k_avx2, 16, row_k, FORMAT_Q3_K)
TILE_KERNEL(cpu_tile_q2_k_avx2, 16, row_k, FORMAT_Q2_K)

#endif
