/* AVX-512 (F, BW, VL, VNNI) tiled matmul kernels for the 32-element formats
 * (Q8_0, Q4_0, Q5_0, IQ4_NL) against Q8_0 activations. Compiled for those
 * extensions alone (target attribute) and chosen by the table in
 * cpu_kernels.c only when cpuid reports them; STRATA_CPU_AVX2 turns them
 * off for comparing and testing.
 *
 * Tokens in lanes. The AVX2 tiles (cpu_tile_avx2.c) give each token a
 * register of partial sums and fold four tokens into one before scaling,
 * about half their instructions. Here each int32 lane of a register
 * belongs to one token (16 per register, the whole tile) and sums a whole
 * block for it, so nothing is folded: for dword j of a weight block (four
 * signed quants, broadcast from memory to every lane) one vpdpbusd
 * multiplies it with dword j of the 16 tokens' activation blocks and adds.
 * That needs the activations transposed (dword j of tokens 0..15 in one
 * register) and unsigned (+ 128, taken out again through the weight block's
 * sum of quants); both are done once per call for a chunk of blocks that
 * every row of the tile then runs over, so a call wants many rows
 * (cpu_matmul.c gives a tiled matmul at least 16).
 *
 * The rows' blocks are unpacked by the AVX2 code (cpu_unpack_avx2.h). The
 * scalar twins are cpu_tile_scalar.c's, as for the AVX2 tiles. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <string.h>

#include "cpu_tile.h"
#include "cpu_unpack_avx2.h"

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) static inline
#define UNROLL _Pragma("GCC unroll 16")

enum { CHUNK_BLOCKS = 64 };   /* 64 blocks x 8 registers = 32 KiB, held in L1 */
enum { ROWS_PER_PASS = 64 };  /* rows whose accumulators stay on the stack */
enum { ROWS_TOGETHER = 2 };  /* rows run side by side (4 measured no faster) */

/* The activation blocks b of up to 16 tokens (tokens past `tokens` read as
 * 0), + 128, transposed: out[j] lane t = dword j of token t. */
AVX512_FN INLINE void transpose_act_block(const cpu_tile *tile, int64_t b, int tokens, __m512i out[8])
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i z[8], a[8], c[8];
    UNROLL
    for (int t = 0; t < 8; t++) {
        /* token t in the low 256 bits, token t + 8 in the high */
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        if (t < tokens)
            lo = _mm256_loadu_si256((const __m256i *)((const block_q8_0 *)(tile->act + (size_t)t * tile->act_stride) + b)->qs);
        if (t + 8 < tokens)
            hi = _mm256_loadu_si256(
                (const __m256i *)((const block_q8_0 *)(tile->act + (size_t)(t + 8) * tile->act_stride) + b)->qs);
        z[t] = _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), flip);
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
        c[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);     /* dwords 0 and 4 */
        c[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]); /* 1 and 5 */
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

AVX512_FN INLINE void tile_32_lanes(format_32 format, const cpu_tile *tile)
{
    __m512i act[CHUNK_BLOCKS][8];
    __m512 acc[ROWS_PER_PASS];
    row_chunk u[ROWS_TOGETHER];
    int tokens = tile->tokens;
    __mmask16 token_mask = (__mmask16)((1u << tokens) - 1);
    int64_t blocks = tile->n / 32;
    for (int64_t r0 = 0; r0 < tile->rows; r0 += ROWS_PER_PASS) {
        int64_t rows = tile->rows - r0 < ROWS_PER_PASS ? tile->rows - r0 : ROWS_PER_PASS;
        for (int64_t r = 0; r < rows; r++)
            acc[r] = _mm512_setzero_ps();
        for (int64_t c0 = 0; c0 < blocks; c0 += CHUNK_BLOCKS) {
            int64_t chunk = blocks - c0 < CHUNK_BLOCKS ? blocks - c0 : CHUNK_BLOCKS;
            const float *act_d = tile->act_scales + c0 * tile->act_scales_stride;
            for (int64_t c = 0; c < chunk; c++)
                transpose_act_block(tile, c0 + c, tokens, act[c]);
            for (int64_t r = 0; r < rows; r += ROWS_TOGETHER) {
                int count = rows - r < ROWS_TOGETHER ? (int)(rows - r) : ROWS_TOGETHER;
                for (int i = 0; i < count; i++)
                    unpack_row_chunk(format, tile->weight + (size_t)(r0 + r + i) * tile->weight_stride, c0, chunk,
                                     &u[i]);
                if (count == ROWS_TOGETHER)
                    rows_over_chunk((const __m512i(*)[8])act, u, chunk, act_d, tile->act_scales_stride, token_mask,
                                    acc + r, ROWS_TOGETHER);
                else
                    for (int i = 0; i < count; i++)
                        rows_over_chunk((const __m512i(*)[8])act, u + i, chunk, act_d, tile->act_scales_stride,
                                        token_mask, acc + r + i, 1);
            }
        }
        for (int64_t r = 0; r < rows; r++) {
            float totals[16];
            _mm512_storeu_ps(totals, acc[r]);
            for (int t = 0; t < tokens; t++)
                tile->dst[t * tile->dst_stride + r0 + r] = totals[t];
        }
    }
}

_Static_assert(CPU_TILE_TOKENS <= 16, "tile_32_lanes keeps one token per int32 lane of a 512-bit register");

AVX512_FN void cpu_tile_q8_0_avx512(const cpu_tile *tile)
{
    tile_32_lanes(FORMAT_Q8_0, tile);
}

AVX512_FN void cpu_tile_q4_0_avx512(const cpu_tile *tile)
{
    tile_32_lanes(FORMAT_Q4_0, tile);
}

AVX512_FN void cpu_tile_q5_0_avx512(const cpu_tile *tile)
{
    tile_32_lanes(FORMAT_Q5_0, tile);
}

AVX512_FN void cpu_tile_iq4_nl_avx512(const cpu_tile *tile)
{
    tile_32_lanes(FORMAT_IQ4_NL, tile);
}

#endif
