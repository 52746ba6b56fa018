/* AVX-512 (F, BW, VL, VNNI) matrix-vector kernels for decode (one token):
 * Q4_0 weights against a Q8_0 activation row, Q4_K against Q8_K. Same call
 * as the tiles (cpu_tile.h) with tokens == 1. Chosen by the table in
 * cpu_kernels.c when cpuid reports the extensions; STRATA_CPU_AVX2 keeps
 * the AVX2 dot products. Q8_0 and Q6_K versions were written the same way
 * and dropped: read from memory by one thread they were slower than the
 * AVX2 dot products (BENCHMARKS.md).
 *
 * What differs from the AVX2 dot products (cpu_dot_avx2.c):
 * - 512-bit registers and vpdpbusd (unsigned x signed bytes, four products
 *   summed into an int32 lane and added, one instruction for AVX2's
 *   maddubs + madd + add). The weight quants are unsigned (0..15); Q4_0's
 *   offset of 8 comes out through the accumulator, started at minus 8 times
 *   the activation's sums, Q4_K's mins through the activation's group sums.
 * - Four weight rows run side by side against the same activation
 *   registers, so what depends on the activation alone (its loads and
 *   rearrangement) is done once for four rows, and four independent
 *   accumulators keep the FMA latency out of the way. Four rows are four
 *   short memory streams, which the hardware prefetcher follows badly (a
 *   Q4_K matrix read from memory ran at 8 GB/s, against 20 for one row at a
 *   time): each step prefetches its share of the next four rows' bytes.
 * - Q4_0 takes four blocks per step, quants and half-float scales picked
 *   from two loads by word permutes (no gathers), the scales applied in
 *   float, one block's per group of lanes. Rows up to 8192 wide run one at
 *   a time against the activation arranged once per call (one memory
 *   stream); longer ones four at a time.
 *
 * Every kernel has a scalar twin: the scalar dot product of its format
 * (cpu_dot_scalar*.c); the two may differ only by float summation order. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))

#include <immintrin.h>
#include <string.h>

#include "../../base/quant.h"
#include "cpu_tile.h"

#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) static inline
#define UNROLL _Pragma("GCC unroll 16")

enum { ROWS_TOGETHER = 4 };

/* Step `step` of `steps` over rows whose bytes are [group, group + bytes):
 * prefetches the same share of the next group's bytes, which follow in
 * memory. Rows side by side are several short streams that the hardware
 * prefetcher restarts on every group; this keeps one linear stream ahead. */
AVX512_FN INLINE void prefetch_next_group(const char *group, size_t bytes, int64_t step, int64_t steps)
{
    const char *next = group + bytes;
    size_t begin = bytes * (size_t)step / (size_t)steps, end = bytes * (size_t)(step + 1) / (size_t)steps;
    for (size_t at = begin & ~(size_t)63; at < end; at += 64)
        _mm_prefetch(next + at, _MM_HINT_T0);
}

AVX512_FN INLINE float hsum512(__m512 v)
{
    return _mm512_reduce_add_ps(v);
}

/* 32 bytes at lo in the low half, 32 at hi in the high half. */
AVX512_FN INLINE __m512i load_2x256(const void *lo, const void *hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)lo)),
                              _mm256_loadu_si256((const __m256i *)hi), 1);
}

/* 16 bytes from each of four addresses, in that order. */
AVX512_FN INLINE __m512i load_4x128(const void *a, const void *b, const void *c, const void *d)
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)a));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)b), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)c), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)d), 3);
}

/* --- Q4_0 ------------------------------------------------------------------ */

/* One Q4_0 block against one Q8_0 block, 128/256-bit, for the tail. */
AVX512_FN INLINE float q4_0_block(const block_q4_0 *w, const block_q8_0 *y)
{
    __m128i packed = _mm_loadu_si128((const __m128i *)w->qs);
    __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
    __m256i yq = _mm256_loadu_si256((const __m256i *)y->qs);
    __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, yq);
    p = _mm256_sub_epi32(p, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), yq));
    __m256 f = _mm256_cvtepi32_ps(p);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(f), _mm256_extractf128_ps(f, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s) * _cvtsh_ss(w->d) * _cvtsh_ss(y->d);
}

/* Four consecutive 18-byte Q4_0 blocks from `blk` (72 bytes, word
 * aligned): their 16 packed bytes in one 128-bit lane each, and their half
 * scales as 16 floats, lanes 4k .. 4k + 3 block k. Two loads (64 bytes and
 * the 8 after them, nothing past the blocks) and two word permutes:
 * block k's scale is word 9k, its quants words 9k + 1 .. 9k + 8. */
AVX512_FN INLINE __m512i q4_0_quad(const void *blk, __m512 *scales)
{
    static const int16_t quant_index[32] = {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
                                            19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 34, 35};
    static const int16_t scale_index[32] = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27};
    const __m512i quant_words = _mm512_loadu_si512(quant_index), scale_words = _mm512_loadu_si512(scale_index);
    __m512i first = _mm512_loadu_si512(blk);
    __m512i last = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)((const char *)blk + 64)));
    *scales = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(first, scale_words, last)));
    return _mm512_permutex2var_epi16(first, quant_words, last);
}

/* The scales of four consecutive 34-byte Q8_0 blocks as q4_0_quad gives
 * its own: word 17k of their 136 bytes. */
AVX512_FN INLINE __m512 q8_0_quad_scales(const void *blk)
{
    static const int16_t scale_index[32] = {0, 0, 0, 0, 17, 17, 17, 17, 34, 34, 34, 34, 51, 51, 51, 51};
    const __m512i scale_words = _mm512_loadu_si512(scale_index);
    __m512i first = _mm512_loadu_si512(blk);
    __m512i last = _mm512_loadu_si512((const char *)blk + 64); /* bytes 64 .. 127 of the 136 */
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(first, scale_words, last)));
}

/* Four Q8_0 activation blocks as the Q4_0 kernels take them: quants in the
 * layout of q4_0_quad's low and high nibbles (elements 0..15 and 16..31 of
 * a block per 128-bit lane), - 8 times their sums per dword (Q4_0's
 * offset: (q - 8) y = q y - 8 y), and their scales. */
typedef struct act_quad {
    __m512i low, high, offset;
    __m512 scales;
} act_quad;

AVX512_FN INLINE void arrange_quad(const block_q8_0 *yb, act_quad *out)
{
    const __m512i eights = _mm512_set1_epi8(8);
    out->low = load_4x128(yb[0].qs, yb[1].qs, yb[2].qs, yb[3].qs);
    out->high = load_4x128(yb[0].qs + 16, yb[1].qs + 16, yb[2].qs + 16, yb[3].qs + 16);
    __m512i eight_sums =
        _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), eights, out->low), eights, out->high);
    out->offset = _mm512_sub_epi32(_mm512_setzero_si512(), eight_sums);
    out->scales = q8_0_quad_scales(yb);
}

/* acc + four Q4_0 blocks from w times the arranged activation blocks a,
 * per lane. */
AVX512_FN INLINE __m512 q4_0_quad_fmadd(const block_q4_0 *w, const act_quad *a, __m512 acc)
{
    const __m512i low_mask = _mm512_set1_epi8(0x0F);
    __m512 w_scales;
    __m512i packed = q4_0_quad(w, &w_scales);
    __m512i q_low = _mm512_and_si512(packed, low_mask);
    __m512i q_high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_mask);
    __m512i p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(a->offset, q_low, a->low), q_high, a->high);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(w_scales, a->scales), acc);
}

/* Four rows side by side, for rows too long to arrange the activation of
 * (cpu_gemv_q4_0_avx512): each four activation blocks are arranged once
 * for all rows. */
AVX512_FN INLINE void q4_0_rows(const cpu_tile *tile, int64_t r0, const int rows)
{
    const int64_t blocks = tile->n / QK4_0;
    const block_q8_0 *y = (const block_q8_0 *)tile->act;
    const block_q4_0 *w[ROWS_TOGETHER];
    for (int r = 0; r < rows; r++)
        w[r] = (const block_q4_0 *)(tile->weight + (size_t)(r0 + r) * tile->weight_stride);
    __m512 acc[ROWS_TOGETHER];
    for (int r = 0; r < rows; r++)
        acc[r] = _mm512_setzero_ps();
    int64_t b = 0;
    const char *group = tile->weight + (size_t)r0 * tile->weight_stride;
    for (; b + 16 <= blocks; b += 16) {
        prefetch_next_group(group, (size_t)rows * tile->weight_stride, b / 16, blocks / 16);
        UNROLL
        for (int quad = 0; quad < 4; quad++) {
            act_quad a;
            arrange_quad(&y[b + 4 * quad], &a);
            for (int r = 0; r < rows; r++)
                acc[r] = q4_0_quad_fmadd(&w[r][b + 4 * quad], &a, acc[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        float sum = hsum512(acc[r]);
        for (int64_t k = b; k < blocks; k++)
            sum += q4_0_block(&w[r][k], &y[k]);
        tile->dst[r0 + r] = sum;
    }
}

/* Rows of up to this many groups of four blocks (n <= 8192) run one at a
 * time against the arranged activation (16 KiB); longer ones four at a
 * time. One thread reading from memory: at n = 4096 one row at a time
 * 22.9 GB/s, four 16.9; at n = 14336 10.4 and 13.3 (the arranged
 * activation, 28 KiB, no longer stays in L1 beside the weights' stream). */
enum { ARRANGED_QUADS = 64 };

/* One Q4_0 row against the arranged activation: one memory stream, which
 * the hardware prefetcher follows; four accumulators for the FMA latency. */
AVX512_FN INLINE float q4_0_row(const block_q4_0 *w, const block_q8_0 *y, const act_quad *act, int64_t blocks)
{
    const int64_t quads = blocks / 4;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t q = 0;
    for (; q + 4 <= quads; q += 4) {
        UNROLL
        for (int k = 0; k < 4; k++)
            acc[k] = q4_0_quad_fmadd(&w[4 * (q + k)], &act[q + k], acc[k]);
    }
    for (; q < quads; q++)
        acc[0] = q4_0_quad_fmadd(&w[4 * q], &act[q], acc[0]);
    float sum = hsum512(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
    for (int64_t k = 4 * quads; k < blocks; k++)
        sum += q4_0_block(&w[k], &y[k]);
    return sum;
}

AVX512_FN void cpu_gemv_q4_0_avx512(const cpu_tile *tile)
{
    const int64_t blocks = tile->n / QK4_0, quads = blocks / 4;
    if (quads <= ARRANGED_QUADS) {
        act_quad act[ARRANGED_QUADS];
        const block_q8_0 *y = (const block_q8_0 *)tile->act;
        for (int64_t q = 0; q < quads; q++)
            arrange_quad(&y[4 * q], &act[q]);
        for (int64_t r = 0; r < tile->rows; r++)
            tile->dst[r] = q4_0_row((const block_q4_0 *)(tile->weight + (size_t)r * tile->weight_stride), y, act,
                                    blocks);
        return;
    }
    int64_t r = 0;
    for (; r + ROWS_TOGETHER <= tile->rows; r += ROWS_TOGETHER)
        q4_0_rows(tile, r, ROWS_TOGETHER);
    for (; r < tile->rows; r++)
        q4_0_rows(tile, r, 1);
}

/* --- Q4_K ------------------------------------------------------------------ */

/* Q4_K: qs[32 c + i] holds element 64 c + i in its low nibble and 64 c + 32
 * + i in its high one. A register of 64 packed bytes (c, c + 1) gives the
 * low nibbles of sub-blocks 2c and 2c + 2 and the high nibbles of 2c + 1
 * and 2c + 3; the activation is arranged to match once per super-block:
 * act[k] = elements of sub-blocks (k even: k, k + 2 ... see below). Each
 * vpdpbusd then leaves one sub-block's sums in lanes 0..7 and another's in
 * 8..15, multiplied by their 6-bit scales as int32. The mins meet the
 * activation's group sums (pairs added once per super-block) in one madd. */
AVX512_FN INLINE void q4_k_rows(const cpu_tile *tile, int64_t r0, const int rows)
{
    const int64_t blocks = tile->n / QK_K;
    const block_q8_K *y = (const block_q8_K *)tile->act;
    const block_q4_K *w[ROWS_TOGETHER];
    for (int r = 0; r < rows; r++)
        w[r] = (const block_q4_K *)(tile->weight + (size_t)(r0 + r) * tile->weight_stride);
    const __m512i low_mask = _mm512_set1_epi8(0x0F);
    /* which sub-block's scale each dword of the four products takes */
    const __m512i pick[4] = {
        _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2),
        _mm512_setr_epi32(1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3),
        _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 6, 6, 6, 6, 6, 6, 6, 6),
        _mm512_setr_epi32(5, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7, 7, 7),
    };
    const __m128i shift_high = _mm_setr_epi32(0, 4, 0, 0);
    __m512 acc[ROWS_TOGETHER];
    __m128 acc_min[ROWS_TOGETHER];
    for (int r = 0; r < rows; r++) {
        acc[r] = _mm512_setzero_ps();
        acc_min[r] = _mm_setzero_ps();
    }
    const char *group = tile->weight + (size_t)r0 * tile->weight_stride;
    for (int64_t b = 0; b < blocks; b++) {
        prefetch_next_group(group, (size_t)rows * tile->weight_stride, b, blocks);
        const int8_t *yq = y[b].qs;
        const __m512i act[4] = {
            load_2x256(yq + 0, yq + 64),    /* sub-blocks 0 | 2 */
            load_2x256(yq + 32, yq + 96),   /* 1 | 3 */
            load_2x256(yq + 128, yq + 192), /* 4 | 6 */
            load_2x256(yq + 160, yq + 224), /* 5 | 7 */
        };
        /* bsums pairs: the activation's sum over each sub-block of 32, int16 */
        __m256i bsums = _mm256_loadu_si256((const __m256i *)y[b].bsums);
        __m128i group_sums = _mm256_castsi256_si128(
            _mm256_permute4x64_epi64(_mm256_hadd_epi16(bsums, bsums), 0x08));
        __m128 act_d = _mm_set1_ps(y[b].d);
        for (int r = 0; r < rows; r++) {
            const block_q4_K *wb = &w[r][b];
            /* d and dmin times the activation's d */
            uint32_t d_pair;
            memcpy(&d_pair, &wb->d, sizeof d_pair);
            __m128 d = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)d_pair)), act_d);
            /* words 0..2 of the packed scales -> bytes scales 0..7, mins 0..7 */
            __m128i packed = _mm_loadu_si128((const __m128i *)wb->scales); /* 12 bytes + 4 of qs */
            __m128i low = _mm_and_si128(packed, _mm_set1_epi8(0x3F));
            __m128i high = _mm_or_si128(
                _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(packed, 0xAA), shift_high), _mm_set1_epi8(0x0F)),
                _mm_and_si128(_mm_srli_epi32(packed, 2), _mm_set1_epi8(0x30)));
            __m128i unpacked = _mm_unpacklo_epi32(low, high); /* scales 0-3, 4-7, mins 0-3, 4-7 */
            __m512i scales = _mm512_cvtepu8_epi32(unpacked);   /* lanes 0..7 scales, 8..15 mins */
            __m128i mins = _mm_cvtepu8_epi16(_mm_srli_si128(unpacked, 8));
            __m128i min_sums = _mm_madd_epi16(mins, group_sums);
            acc_min[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(min_sums), _mm_shuffle_ps(d, d, 0x55), acc_min[r]);

            __m512i packed0 = _mm512_loadu_si512((const void *)wb->qs);
            __m512i packed1 = _mm512_loadu_si512((const void *)(wb->qs + 64));
            __m512i q0 = _mm512_and_si512(packed0, low_mask);
            __m512i q1 = _mm512_and_si512(_mm512_srli_epi16(packed0, 4), low_mask);
            __m512i q2 = _mm512_and_si512(packed1, low_mask);
            __m512i q3 = _mm512_and_si512(_mm512_srli_epi16(packed1, 4), low_mask);
            const __m512i zero = _mm512_setzero_si512();
            __m512i p0 = _mm512_mullo_epi32(_mm512_dpbusd_epi32(zero, q0, act[0]), _mm512_permutexvar_epi32(pick[0], scales));
            __m512i p1 = _mm512_mullo_epi32(_mm512_dpbusd_epi32(zero, q1, act[1]), _mm512_permutexvar_epi32(pick[1], scales));
            __m512i p2 = _mm512_mullo_epi32(_mm512_dpbusd_epi32(zero, q2, act[2]), _mm512_permutexvar_epi32(pick[2], scales));
            __m512i p3 = _mm512_mullo_epi32(_mm512_dpbusd_epi32(zero, q3, act[3]), _mm512_permutexvar_epi32(pick[3], scales));
            __m512i sumi = _mm512_add_epi32(_mm512_add_epi32(p0, p1), _mm512_add_epi32(p2, p3));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_broadcastss_ps(d), acc[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        __m128 m = acc_min[r];
        m = _mm_add_ps(m, _mm_movehl_ps(m, m));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        tile->dst[r0 + r] = hsum512(acc[r]) - _mm_cvtss_f32(m);
    }
}

AVX512_FN void cpu_gemv_q4_k_avx512(const cpu_tile *tile)
{
    int64_t r = 0;
    for (; r + ROWS_TOGETHER <= tile->rows; r += ROWS_TOGETHER)
        q4_k_rows(tile, r, ROWS_TOGETHER);
    for (; r < tile->rows; r++)
        q4_k_rows(tile, r, 1);
}

#endif
