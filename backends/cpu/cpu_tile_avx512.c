/* AVX-512 (F, BW, VL, VNNI) tiled matmul kernels: the 32-element formats
 * (Q8_0, Q4_0, Q5_0, IQ4_NL) against Q8_0 activations, the K-quants (Q2_K ..
 * Q6_K) against Q8_K. Compiled for those
 * extensions alone (target attribute) and chosen by the table in
 * cpu_kernels.c only when cpuid reports them; STRATA_CPU_AVX2 turns them
 * off for comparing and testing.
 *
 * Tokens in lanes. The AVX2 tiles (cpu_tile_avx2.c) give each token a
 * register of partial sums and fold four tokens into one before scaling,
 * about half their instructions. Here each int32 lane of a register
 * belongs to one token (16 per register; a call takes up to 64 tokens,
 * four groups of registers over each unpacked row) and sums a whole
 * block for it, so nothing is folded: for dword j of a weight block (four
 * signed quants, broadcast from memory to every lane) one vpdpbusd
 * multiplies it with dword j of the 16 tokens' activation blocks and adds.
 * That needs the activations transposed (dword j of tokens 0..15 in one
 * register) and unsigned (+ 128, taken out again through the weight block's
 * sum of quants); both are done once per call for a chunk of blocks that
 * every row of the tile then runs over, so a call wants many rows
 * (cpu_matmul.c gives these tiles 64).
 *
 * The rows' blocks are unpacked by the AVX2 code (cpu_unpack_avx2.h). The
 * scalar twins are cpu_tile_scalar.c's, as for the AVX2 tiles. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "cpu_tile.h"
#include "cpu_unpack_avx2.h"

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) static inline
#define UNROLL _Pragma("GCC unroll 16")

/* Up to 64 tokens a call (CPU_TILE_TOKENS_WIDE): groups of 16, one token
 * per int32 lane of a register. */
enum { LANE_GROUPS = CPU_TILE_TOKENS_WIDE / 16 };
/* 16 blocks x 8 registers x 4 token groups = 32 KiB of transposed
 * activations (Q4_0 by 64 tokens, one Zen 4 core: 8 blocks 109 GMAC/s,
 * 16 127, 32 128, 64 123) */
enum { CHUNK_BLOCKS = 16 };
enum { ROWS_PER_PASS = 64 };  /* rows whose accumulators stay on the stack */
enum { ROWS_TOGETHER = 2 };  /* rows run side by side (4 measured no faster) */

/* Writes rows r0 .. r0 + rows - 1 of the tile from their accumulators for
 * `tokens` tokens from first_token on (lane t: token first_token + t). */
AVX512_FN INLINE void store_lanes(const cpu_tile *tile, const __m512 *acc, int64_t r0, int64_t rows, int first_token,
                                  int tokens)
{
    for (int64_t r = 0; r < rows; r++) {
        float totals[16];
        _mm512_storeu_ps(totals, acc[r]);
        for (int t = 0; t < tokens; t++)
            tile->dst[(first_token + t) * tile->dst_stride + r0 + r] = totals[t];
    }
}

/* 32 bytes of each of up to 16 tokens (src[t], t < tokens; the others read
 * as 0), xor `flip` (0x80 makes signed quants unsigned: + 128), transposed:
 * out[j] lane t = dword j of token t. */
AVX512_FN INLINE void transpose_16_tokens(const int8_t *const src[16], int tokens, char flip, __m512i out[8])
{
    const __m512i flip_bytes = _mm512_set1_epi8(flip);
    __m512i z[8], a[8], c[8];
    UNROLL
    for (int t = 0; t < 8; t++) {
        /* token t in the low 256 bits, token t + 8 in the high */
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        if (t < tokens)
            lo = _mm256_loadu_si256((const __m256i *)src[t]);
        if (t + 8 < tokens)
            hi = _mm256_loadu_si256((const __m256i *)src[t + 8]);
        z[t] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), flip_bytes);
    }
    /* an 8 x 8 dword transpose in each 256-bit half: pairs of dwords, pairs
     * of qwords, then 128-bit lanes across registers */
    UNROLL
    for (int i = 0; i < 4; i++) {
        a[2 * i] = _mm512_unpacklo_epi32(z[2 * i], z[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(z[2 * i], z[2 * i + 1]);
    }
    UNROLL
    for (int i = 0; i < 2; i++) {
        c[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);         /* dwords 0 and 4 */
        c[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);     /* 1 and 5 */
        c[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]); /* 2 and 6 */
        c[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]); /* 3 and 7 */
    }
    const __m512i low_lanes = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    const __m512i high_lanes = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    UNROLL
    for (int j = 0; j < 4; j++) {
        out[j] = _mm512_permutex2var_epi64(c[j], low_lanes, c[4 + j]);
        out[4 + j] = _mm512_permutex2var_epi64(c[j], high_lanes, c[4 + j]);
    }
}

/* The Q8_0 activation blocks b of the 16 tokens from `first` on (of which
 * `tokens` exist), + 128, transposed. */
AVX512_FN INLINE void transpose_act_block(const cpu_tile *tile, int64_t b, int first, int tokens, __m512i out[8])
{
    const int8_t *src[16];
    UNROLL
    for (int t = 0; t < 16; t++) /* past the tile: pointers not read */
        src[t] = ((const block_q8_0 *)(tile->act + (size_t)(first + t) * tile->act_stride) + b)->qs;
    transpose_16_tokens(src, tokens, (char)0x80, out);
}

/* Which of the up to 64 tokens each group of 16 lanes holds: its count and
 * the mask of its lanes. Returns the number of groups. */
AVX512_FN INLINE int token_groups(int tokens, int group_tokens[LANE_GROUPS], __mmask16 token_masks[LANE_GROUPS])
{
    for (int h = 0; h < LANE_GROUPS; h++) {
        int left = tokens - 16 * h;
        group_tokens[h] = left < 0 ? 0 : left > 16 ? 16 : left;
        token_masks[h] = (__mmask16)((1u << group_tokens[h]) - 1);
    }
    return (tokens + 15) / 16;
}

/* One weight row's blocks of a chunk, unpacked: 32 signed quants each (the
 * weights' own values: q - offset for the unsigned formats), read back as
 * broadcast dwords; - 128 times each block's sum of quants (the activations
 * carry + 128); each block's scale. */
typedef struct row_chunk {
    int8_t quants[CHUNK_BLOCKS][32];
    int32_t offset_sums[CHUNK_BLOCKS];
    float scales[CHUNK_BLOCKS];
} row_chunk;

/* - 128 sum(quants) of eight consecutive blocks of a row_chunk at once: the
 * sums of (q + 128) by 8 bytes (vpsadbw), added up to one per block. */
AVX512_FN INLINE void offset_sums_8(const int8_t (*quants)[32], int32_t out[8])
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i sad[4];
    UNROLL
    for (int i = 0; i < 4; i++) /* blocks 2i and 2i + 1: 4 sums each */
        sad[i] = _mm512_sad_epu8(_mm512_xor_si512(_mm512_loadu_si512(quants[2 * i]), flip), _mm512_setzero_si512());
    /* per 128-bit lane: (its sum in sad[0], its sum in sad[1]) */
    __m512i s01 = _mm512_add_epi64(_mm512_unpacklo_epi64(sad[0], sad[1]), _mm512_unpackhi_epi64(sad[0], sad[1]));
    __m512i s23 = _mm512_add_epi64(_mm512_unpacklo_epi64(sad[2], sad[3]), _mm512_unpackhi_epi64(sad[2], sad[3]));
    /* lanes 0 + 1 (a register's first block) and 2 + 3 (its second): blocks
     * 0 2 1 3 4 6 5 7 */
    __m512i sums = _mm512_add_epi64(_mm512_shuffle_i64x2(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_i64x2(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
    sums = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 1, 3, 4, 6, 5, 7), sums);
    /* - 128 (sum - 32 * 128) */
    __m256i sums_32 = _mm512_cvtepi64_epi32(sums);
    sums_32 = _mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(32 * 128), sums_32), 7);
    _mm256_storeu_si256((__m256i *)out, sums_32);
}

AVX512_FN INLINE void unpack_row_chunk(format_32 format, const char *row, int64_t c0, int64_t chunk, row_chunk *u)
{
    int offset = offset_32(format);
    for (int64_t c = 0; c < chunk; c++) {
        __m256i q = quants_32(format, row, c0 + c, &u->scales[c]);
        if (offset)
            q = _mm256_sub_epi8(q, _mm256_set1_epi8((char)offset));
        _mm256_storeu_si256((__m256i *)u->quants[c], q);
    }
    int64_t c = 0;
    for (; c + 8 <= chunk; c += 8)
        offset_sums_8(u->quants + c, u->offset_sums + c);
    for (; c < chunk; c++) {
        int32_t sum = 0;
        for (int i = 0; i < 32; i++)
            sum += u->quants[c][i];
        u->offset_sums[c] = -128 * sum;
    }
}

/* `count` rows (1 .. ROWS_TOGETHER) over a chunk: their dot products share
 * each activation register and are independent chains of vpdpbusd, which
 * hides its latency. */
AVX512_FN INLINE void rows_over_chunk(const __m512i (*act)[8], const row_chunk *u, int64_t chunk, const float *act_d,
                                      int64_t act_d_stride, __mmask16 token_mask, __m512 *acc, int count)
{
    for (int64_t c = 0; c < chunk; c++) {
        __m512i s[ROWS_TOGETHER];
        UNROLL
        for (int i = 0; i < count; i++)
            s[i] = _mm512_set1_epi32(u[i].offset_sums[c]); /* sum (y + 128) x = sum y x + 128 sum x */
        UNROLL
        for (int j = 0; j < 8; j++) {
            __m512i y = _mm512_load_si512(&act[c][j]);
            UNROLL
            for (int i = 0; i < count; i++) {
                int32_t word;
                memcpy(&word, u[i].quants[c] + 4 * j, sizeof word);
                s[i] = _mm512_dpbusd_epi32(s[i], y, _mm512_set1_epi32(word));
            }
        }
        __m512 da = _mm512_maskz_loadu_ps(token_mask, act_d + c * act_d_stride);
        UNROLL
        for (int i = 0; i < count; i++)
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[i]), _mm512_mul_ps(_mm512_set1_ps(u[i].scales[c]), da), acc[i]);
    }
}

/* The rows (1 .. ROWS_TOGETHER) of u over a chunk for one group of 16
 * tokens. Not inlined: GCC 12 keeps the sums of rows_over_chunk in memory
 * when it is inlined into a loop over the groups (half the speed). */
AVX512_FN __attribute__((noinline)) static void rows_32_group(const __m512i (*act)[8], const row_chunk *u,
                                                              int64_t chunk, const float *act_d, int64_t act_d_stride,
                                                              __mmask16 token_mask, __m512 *acc, int count)
{
    if (count == ROWS_TOGETHER)
        rows_over_chunk(act, u, chunk, act_d, act_d_stride, token_mask, acc, ROWS_TOGETHER);
    else
        for (int i = 0; i < count; i++)
            rows_over_chunk(act, u + i, chunk, act_d, act_d_stride, token_mask, acc + i, 1);
}

AVX512_FN INLINE void tile_32_lanes(format_32 format, const cpu_tile *tile)
{
    __m512i act[LANE_GROUPS][CHUNK_BLOCKS][8];
    __m512 acc[LANE_GROUPS][ROWS_PER_PASS];
    row_chunk u[ROWS_TOGETHER];
    int group_tokens[LANE_GROUPS];
    __mmask16 token_masks[LANE_GROUPS];
    int groups = token_groups(tile->tokens, group_tokens, token_masks);
    int64_t blocks = tile->n / 32;
    for (int64_t r0 = 0; r0 < tile->rows; r0 += ROWS_PER_PASS) {
        int64_t rows = tile->rows - r0 < ROWS_PER_PASS ? tile->rows - r0 : ROWS_PER_PASS;
        for (int h = 0; h < groups; h++)
            for (int64_t r = 0; r < rows; r++)
                acc[h][r] = _mm512_setzero_ps();
        for (int64_t c0 = 0; c0 < blocks; c0 += CHUNK_BLOCKS) {
            int64_t chunk = blocks - c0 < CHUNK_BLOCKS ? blocks - c0 : CHUNK_BLOCKS;
            const float *act_d = tile->act_scales + c0 * tile->act_scales_stride;
            for (int h = 0; h < groups; h++)
                for (int64_t c = 0; c < chunk; c++)
                    transpose_act_block(tile, c0 + c, 16 * h, group_tokens[h], act[h][c]);
            for (int64_t r = 0; r < rows; r += ROWS_TOGETHER) {
                int count = rows - r < ROWS_TOGETHER ? (int)(rows - r) : ROWS_TOGETHER;
                for (int i = 0; i < count; i++)
                    unpack_row_chunk(format, tile->weight + (size_t)(r0 + r + i) * tile->weight_stride, c0, chunk,
                                     &u[i]);
                for (int h = 0; h < groups; h++)
                    rows_32_group((const __m512i(*)[8])act[h], u, chunk, act_d + 16 * h, tile->act_scales_stride,
                                  token_masks[h], acc[h] + r, count);
            }
        }
        for (int h = 0; h < groups; h++)
            store_lanes(tile, acc[h], r0, rows, 16 * h, group_tokens[h]);
    }
}

/* --- K-quant super-blocks against Q8_K activations, tokens in lanes ------ *
 * The same scheme by groups of 16 (4 dwords), the unit of the K-quants'
 * scales: per group g, s_g = sum (y + 128) q by four vpdpbusd (eight for
 * Q4_K and Q5_K, whose two groups of a sub-block share a scale); then per
 * token sum_g scale_g s_g (vpmulld), started from the row's
 * - 128 sum_g scale_g sum q_g; and, for the offsets or mins,
 * sum_g corr_g bsum_g by vpdpwssd on the tokens' group sums transposed as
 * int16 pairs. Each super-block is unpacked by the AVX2 tiles' code
 * (cpu_unpack_k_avx2), so every K-quant format shares this kernel.
 *
 * A call takes up to 64 tokens (CPU_TILE_TOKENS_WIDE), four groups of 16
 * lanes, so each row's unpacking (about half the time of a 16-token call:
 * its share measured by skipping the sums) serves four times the tokens,
 * and cpu_matmul.c gives such a call 64 rows to spread the transposition
 * over. One Zen 4 core, 64 tokens by 1024 rows of 4096: Q4_K 68-78 ->
 * 123 GMAC/s, Q6_K 69-70 -> 105 (BENCHMARKS.md). The call goes one
 * super-block at a time over all its rows: per token group 64 + 8
 * registers (4.5 KiB) of transposed activations, 18 KiB for 64 tokens, in
 * L1. */

/* What a row's super-block needs beyond its k_vectors, as int32 for the
 * broadcasts: each group's scale, and the activations' + 128 taken out
 * again for the whole super-block at once, sum_g scale_g (- 128 sum q_g):
 * one number per row, not per token, so it starts the sum instead of
 * starting every group's. */
typedef struct k_lanes {
    k_vectors u;
    int32_t scales[16];
    int32_t offset_total;
} k_lanes;

/* Q4_K and Q5_K scale sub-blocks of 32, two groups of 16 sharing a scale:
 * their eight dwords are summed before the one scale multiply. */
AVX512_FN INLINE bool scales_by_32(format_k format)
{
    return format == FORMAT_Q4_K || format == FORMAT_Q5_K;
}

AVX512_FN INLINE void unpack_k_lanes(format_k format, const char *row, int64_t b, k_lanes *k)
{
    cpu_unpack_k_avx2(format, row, b, &k->u);
    /* group sums of the unsigned quants: vpsadbw gives 8-byte sums, two per
     * group; sub-blocks 2i and 2i + 1 (groups 4i .. 4i + 3) per register */
    __m512i sad[4];
    UNROLL
    for (int i = 0; i < 4; i++)
        sad[i] = _mm512_sad_epu8(_mm512_loadu_si512(&k->u.q[2 * i]), _mm512_setzero_si512());
    /* per 128-bit lane L: (group L of sad[0], of sad[1]) and of sad[2], sad[3] */
    __m512i s01 = _mm512_add_epi64(_mm512_unpacklo_epi64(sad[0], sad[1]), _mm512_unpackhi_epi64(sad[0], sad[1]));
    __m512i s23 = _mm512_add_epi64(_mm512_unpacklo_epi64(sad[2], sad[3]), _mm512_unpackhi_epi64(sad[2], sad[3]));
    /* groups 0 4 1 5 2 6 3 7, then 8 12 9 13 10 14 11 15 */
    __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(s01)), _mm512_cvtepi64_epi32(s23), 1);
    __m512i sums = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15), both);
    /* each group's scale: int16 lanes 0 and 8 of its sub-block's register,
     * picked from two registers' worth at a time */
    const __m512i pick = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                          32 + 24, 32 + 16, 32 + 8, 32, 24, 16, 8, 0);
    __m512i low =
        _mm512_permutex2var_epi16(_mm512_loadu_si512(&k->u.scale[0]), pick, _mm512_loadu_si512(&k->u.scale[2]));
    __m512i high =
        _mm512_permutex2var_epi16(_mm512_loadu_si512(&k->u.scale[4]), pick, _mm512_loadu_si512(&k->u.scale[6]));
    __m512i scales = _mm512_cvtepi16_epi32(
        _mm256_inserti128_si256(_mm512_castsi512_si256(low), _mm512_castsi512_si128(high), 1));
    _mm512_storeu_si512(k->scales, scales);
    k->offset_total = -128 * _mm512_reduce_add_epi32(_mm512_mullo_epi32(scales, sums));
}

/* `count` rows (1 .. ROWS_TOGETHER) against one super-block of the chunk. */
AVX512_FN INLINE void rows_k_block(format_k format, const __m512i *act, const __m512i *bsums, const k_lanes *k,
                                   __m512 da, __m512 *acc, int count)
{
    /* groups of 16 quants (4 dwords) that share a scale */
    const int span = scales_by_32(format) ? 2 : 1;
    __m512i scaled[ROWS_TOGETHER], corr[ROWS_TOGETHER];
    UNROLL
    for (int i = 0; i < count; i++) {
        scaled[i] = _mm512_set1_epi32(k[i].offset_total);
        corr[i] = _mm512_setzero_si512();
    }
    UNROLL
    for (int g = 0; g < 16; g += span) {
        __m512i s[ROWS_TOGETHER];
        UNROLL
        for (int i = 0; i < count; i++)
            s[i] = _mm512_setzero_si512();
        UNROLL
        for (int j = 0; j < 4 * span; j++) {
            __m512i y = _mm512_load_si512(&act[4 * g + j]);
            UNROLL
            for (int i = 0; i < count; i++) {
                int32_t word;
                memcpy(&word, (const uint8_t *)k[i].u.q + 16 * g + 4 * j, sizeof word);
                s[i] = _mm512_dpbusd_epi32(s[i], y, _mm512_set1_epi32(word));
            }
        }
        UNROLL
        for (int i = 0; i < count; i++)
            scaled[i] = _mm512_add_epi32(scaled[i], _mm512_mullo_epi32(s[i], _mm512_set1_epi32(k[i].scales[g])));
    }
    UNROLL
    for (int p = 0; p < 8; p++) {
        __m512i b = _mm512_load_si512(&bsums[p]);
        UNROLL
        for (int i = 0; i < count; i++) {
            int32_t pair;
            memcpy(&pair, (const int16_t *)&k[i].u.corr + 2 * p, sizeof pair);
            corr[i] = _mm512_dpwssd_epi32(corr[i], b, _mm512_set1_epi32(pair));
        }
    }
    UNROLL
    for (int i = 0; i < count; i++) {
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(scaled[i]), _mm512_mul_ps(_mm512_set1_ps(k[i].u.d), da), acc[i]);
        acc[i] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(corr[i]), _mm512_mul_ps(_mm512_set1_ps(k[i].u.m), da), acc[i]);
    }
}

/* `count` rows (1 .. ROWS_TOGETHER) against one super-block for one group of
 * 16 tokens. Not inlined: with two copies of rows_k_block inlined into
 * tile_k_lanes GCC 12 keeps their sums in memory (half the speed); a call
 * per super-block is cheap next to its 300 instructions. */
AVX512_FN __attribute__((noinline)) static void rows_k_group(format_k format, const __m512i *act,
                                                             const __m512i *bsums, const k_lanes *k, __m512 da,
                                                             __m512 *acc, int count)
{
    if (count == ROWS_TOGETHER)
        rows_k_block(format, act, bsums, k, da, acc, ROWS_TOGETHER);
    else
        for (int i = 0; i < count; i++)
            rows_k_block(format, act, bsums, k + i, da, acc + i, 1);
}

/* Transposes super-block b of the 16 tokens from `first` on (of which
 * `tokens` exist) into act (+ 128) and bsums. */
AVX512_FN INLINE void transpose_k_block(const cpu_tile *tile, int64_t b, int first, int tokens, __m512i act[64],
                                        __m512i bsums[8])
{
    const block_q8_K *blk[16];
    const int8_t *src[16];
    for (int t = 0; t < 16; t++) /* past the tile: pointers not read */
        blk[t] = (const block_q8_K *)(tile->act + (size_t)(first + t) * tile->act_stride) + b;
    for (int sub = 0; sub < 8; sub++) {
        for (int t = 0; t < 16; t++)
            src[t] = blk[t]->qs + 32 * sub;
        transpose_16_tokens(src, tokens, (char)0x80, act + 8 * sub);
    }
    for (int t = 0; t < 16; t++)
        src[t] = (const int8_t *)blk[t]->bsums;
    transpose_16_tokens(src, tokens, 0, bsums);
}

AVX512_FN INLINE void tile_k_lanes(format_k format, const cpu_tile *tile)
{
    __m512i act[LANE_GROUPS][64], bsums[LANE_GROUPS][8];
    __m512 acc[LANE_GROUPS][ROWS_PER_PASS];
    k_lanes k[ROWS_TOGETHER];
    int group_tokens[LANE_GROUPS];
    __mmask16 token_masks[LANE_GROUPS];
    int groups = token_groups(tile->tokens, group_tokens, token_masks);
    int64_t blocks = tile->n / QK_K;
    for (int64_t r0 = 0; r0 < tile->rows; r0 += ROWS_PER_PASS) {
        int64_t rows = tile->rows - r0 < ROWS_PER_PASS ? tile->rows - r0 : ROWS_PER_PASS;
        for (int h = 0; h < groups; h++)
            for (int64_t r = 0; r < rows; r++)
                acc[h][r] = _mm512_setzero_ps();
        for (int64_t b = 0; b < blocks; b++) {
            for (int h = 0; h < groups; h++)
                transpose_k_block(tile, b, 16 * h, group_tokens[h], act[h], bsums[h]);
            const float *act_d = tile->act_scales + b * tile->act_scales_stride;
            for (int64_t r = 0; r < rows; r += ROWS_TOGETHER) {
                int count = rows - r < ROWS_TOGETHER ? (int)(rows - r) : ROWS_TOGETHER;
                const char *row = tile->weight + (size_t)(r0 + r) * tile->weight_stride;
                for (int i = 0; i < count; i++)
                    unpack_k_lanes(format, row + (size_t)i * tile->weight_stride, b, &k[i]);
                /* the unpacked rows against each group of 16 tokens */
                for (int h = 0; h < groups; h++)
                    rows_k_group(format, act[h], bsums[h], k, _mm512_maskz_loadu_ps(token_masks[h], act_d + 16 * h),
                                 acc[h] + r, count);
            }
        }
        for (int h = 0; h < groups; h++)
            store_lanes(tile, acc[h], r0, rows, 16 * h, group_tokens[h]);
    }
}

/* The public kernels: a family's skeleton with the format a constant. */
#define TILE_KERNEL(name, skeleton, format)                                                                            \
    AVX512_FN void name(const cpu_tile *tile)                                                                          \
    {                                                                                                                  \
        skeleton(format, tile);                                                                                        \
    }

TILE_KERNEL(cpu_tile_q8_0_avx512, tile_32_lanes, FORMAT_Q8_0)
TILE_KERNEL(cpu_tile_q4_0_avx512, tile_32_lanes, FORMAT_Q4_0)
TILE_KERNEL(cpu_tile_q5_0_avx512, tile_32_lanes, FORMAT_Q5_0)
TILE_KERNEL(cpu_tile_iq4_nl_avx512, tile_32_lanes, FORMAT_IQ4_NL)
TILE_KERNEL(cpu_tile_q4_k_avx512, tile_k_lanes, FORMAT_Q4_K)
TILE_KERNEL(cpu_tile_q6_k_avx512, tile_k_lanes, FORMAT_Q6_K)
TILE_KERNEL(cpu_tile_q5_k_avx512, tile_k_lanes, FORMAT_Q5_K)
TILE_KERNEL(cpu_tile_q3_k_avx512, tile_k_lanes, FORMAT_Q3_K)
TILE_KERNEL(cpu_tile_q2_k_avx512, tile_k_lanes, FORMAT_Q2_K)

#endif
