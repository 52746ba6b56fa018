/* Tiled matmul kernels for prompt processing (batch > 1).
 *
 * A dot product per (weight row, token) unpacks every weight block once per
 * token: for the K-quants the 6-bit scales, the nibbles and the half-float
 * scales cost about as much as the multiply-adds themselves. A tile kernel
 * takes one weight row at a time, unpacks each of its blocks once and runs it
 * against every token of the tile (up to CPU_TILE_TOKENS), whose sums stay in
 * registers. Several rows per call only save the call; each row is unpacked
 * and summed on its own, so rows need no edge handling. Tokens are the edge:
 * a tile of fewer tokens takes a narrower instance of the same code.
 *
 * Why one row and several tokens rather than a square tile: with AVX2's 16
 * registers an unpacked K-quant block (8 vectors of quants, 8 of scales) does
 * not fit next to the sums of several rows, so it goes to a small buffer in
 * L1 and the tokens reuse it from there, four at a time, the sums of four
 * tokens folded into one register before they are scaled. Unpacking a
 * K-quant block costs about 100 instructions, so 16 tokens per tile rather
 * than 8 cut the instructions of a Q4_K matmul by a fifth (callgrind). For
 * the 32-element formats a block is one register and unpacking is cheap:
 * those kernels take the tile's tokens 8 at a time, which left fewer
 * instructions than 16 (fewer accumulators to keep in registers).
 *
 * On AVX2, Q4_0, Q8_0 and Q4_K take rows eight at a time instead (the
 * row-octet kernels of cpu_tile_avx2.c): a block of eight rows transposed
 * once so each 32-bit lane holds one row, every token's activations
 * broadcast against it, the eight rows' sums in one register with no folds.
 * The rows a tile has past a multiple of eight run one at a time as above.
 *
 * Every kernel has a scalar twin in cpu_tile_scalar.c that unpacks the same
 * way in plain C; the two may differ only by float summation order. */
#ifndef STRATA_CPU_TILE_H
#define STRATA_CPU_TILE_H

#include <stddef.h>
#include <stdint.h>

/* Tokens one tile call handles at most (chosen by instruction counts, see
 * above). */
#define CPU_TILE_TOKENS 16

/* The AVX-512 tiles take up to four times as many (four registers of 16
 * token lanes against each unpacked row): a K-quant tile's row unpacking
 * was half its time at 16 (cpu_kernel_tile_tokens says which kernels). */
#define CPU_TILE_TOKENS_WIDE 64

/* The AVX2 tiles of the 32-element formats take their tokens 8 at a time
 * (see above) and are given 8 per call: the 8 tokens' activation rows
 * (35 KiB at 4096 wide) then serve the call's 16 rows from L1 instead of
 * 16 tokens' coming from L2 for every row (one Zen 3 core: Q4_0 38 -> 41
 * GMAC/s, Q8_0 40 -> 42; the K-quant tiles lost at 8). */
#define CPU_TILE_TOKENS_NARROW 8

typedef struct cpu_tile {
    int64_t n;                 /* elements per row, a multiple of the weight's block */
    const char *weight;        /* first weight row of the tile */
    size_t weight_stride;      /* bytes between weight rows */
    int64_t rows;
    const char *act;           /* first activation row, in the kernel table's format */
    size_t act_stride;         /* bytes between activation rows */
    /* each activation block's scale as f32 (Q8_0: converted from half;
     * Q8_K: a copy), block-major so the tokens of a block are contiguous:
     * act_scales[block * act_scales_stride + t], readable (finite) up to
     * t = 4 * ceil(tokens / 4) - 1 */
    const float *act_scales;
    /* Q8_0 activations only: each block's sum of quants, laid out as
     * act_scales (Q4_0 and Q5_0 multiply unsigned quants and take the
     * offset out through it) */
    const int32_t *act_sums;
    int64_t act_scales_stride;
    int tokens;                /* 1 .. CPU_TILE_TOKENS (CPU_TILE_TOKENS_WIDE where cpu_kernel_tile_tokens allows) */
    float *dst;                /* dst[t * dst_stride + r] = row r . token t */
    int64_t dst_stride;
} cpu_tile;

typedef void (*cpu_tile_fn)(const cpu_tile *tile);

/* Scalar twins (cpu_tile_scalar.c). */
void cpu_tile_q8_0_scalar(const cpu_tile *tile);
void cpu_tile_q4_0_scalar(const cpu_tile *tile);
void cpu_tile_q5_0_scalar(const cpu_tile *tile);
void cpu_tile_iq4_nl_scalar(const cpu_tile *tile);
void cpu_tile_q4_k_scalar(const cpu_tile *tile);
void cpu_tile_q6_k_scalar(const cpu_tile *tile);
void cpu_tile_q5_k_scalar(const cpu_tile *tile);
void cpu_tile_q3_k_scalar(const cpu_tile *tile);
void cpu_tile_q2_k_scalar(const cpu_tile *tile);

/* AVX2 + FMA + F16C (cpu_tile_avx2.c), x86 builds only. */
void cpu_tile_q8_0_avx2(const cpu_tile *tile);
void cpu_tile_q4_0_avx2(const cpu_tile *tile);
void cpu_tile_q5_0_avx2(const cpu_tile *tile);
void cpu_tile_iq4_nl_avx2(const cpu_tile *tile);
void cpu_tile_q4_k_avx2(const cpu_tile *tile);
void cpu_tile_q6_k_avx2(const cpu_tile *tile);
void cpu_tile_q5_k_avx2(const cpu_tile *tile);
void cpu_tile_q3_k_avx2(const cpu_tile *tile);
void cpu_tile_q2_k_avx2(const cpu_tile *tile);

/* AVX-512 F/BW/VL/VNNI (cpu_tile_avx512.c), x86 builds only; each measured
 * faster than its AVX2 twin (BENCHMARKS.md). */
void cpu_tile_q8_0_avx512(const cpu_tile *tile);
void cpu_tile_q4_0_avx512(const cpu_tile *tile);
void cpu_tile_q5_0_avx512(const cpu_tile *tile);
void cpu_tile_iq4_nl_avx512(const cpu_tile *tile);
void cpu_tile_q4_k_avx512(const cpu_tile *tile);
void cpu_tile_q6_k_avx512(const cpu_tile *tile);
void cpu_tile_q5_k_avx512(const cpu_tile *tile);
void cpu_tile_q3_k_avx512(const cpu_tile *tile);
void cpu_tile_q2_k_avx512(const cpu_tile *tile);

/* AVX-512 F/BW/VL/VNNI matrix-vector kernels for decode
 * (cpu_gemv_avx512.c), x86 builds only: a tile of exactly one token (only
 * n, weight, weight_stride, rows, act and dst are read); the scalar twin is
 * the format's scalar dot product. */
void cpu_gemv_q4_0_avx512(const cpu_tile *tile);
void cpu_gemv_q4_k_avx512(const cpu_tile *tile);

/* AVX2 + FMA + F16C matrix-vector kernels (cpu_gemv_avx2.c), the same
 * call; x86 builds only. */
void cpu_gemv_q4_0_avx2(const cpu_tile *tile);
void cpu_gemv_q8_0_avx2(const cpu_tile *tile);

#endif
