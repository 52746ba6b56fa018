/* Private to backends/cpu: the tiled attention of OP_ATTENTION.
 *
 * Work is split into items of (kv head, tile of query tokens). An item holds
 * every query head of its kv head for its tokens (GQA: the group shares each
 * K/V read) and walks the visible cache rows in blocks: each block's K and V
 * rows are converted to f32 once (K transposed, so the scores of eight keys
 * are one vector), then every query row of the item is scored against it
 * and folded in with an online softmax (running max, running sum, output
 * rescaled when the max grows). Query rows go through the kernels four at a
 * time, so a K or V vector loaded once feeds four rows.
 *
 * The kernels below exist twice: portable C, and AVX2+FMA+F16C, chosen at
 * open time like the matmul dot products (STRATA_CPU_SCALAR forces C). */
#ifndef STRATA_CPU_ATTENTION_H
#define STRATA_CPU_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu_kernels.h"

/* Query rows handed to the kernels at once. */
#define CPU_ATTENTION_ROWS 4
/* Key columns of a block are padded to a multiple of this (one vector). */
#define CPU_ATTENTION_KEY_STEP 8

/* How the work of one op is cut. */
typedef struct cpu_attention_tiling {
    int64_t tokens_per_tile; /* query tokens of one work item */
    int64_t rows_per_tile;   /* tokens_per_tile * query heads per kv head */
    int64_t keys_per_block;  /* cache rows converted at once; a multiple of CPU_ATTENTION_KEY_STEP */
    int64_t n_tiles;         /* ceil(n_tok / tokens_per_tile) */
} cpu_attention_tiling;

/* Pure: the tiling of an op with these shapes on n_threads threads. About 128
 * query rows per item, fewer tokens when that leaves too few items to share;
 * blocks of K plus V in f32 of about 64 KiB (they stay in L2 while every row
 * of the item passes over them). */
cpu_attention_tiling cpu_attention_tiling_choose(int64_t head_dim, int64_t group, int64_t n_tok,
                                                 int64_t n_kv_heads, int n_threads);

/* Bytes of per-thread scratch an item of this tiling needs. */
size_t cpu_attention_scratch_bytes(const cpu_attention_tiling *tiling, int64_t head_dim);

/* The inner loops. Layouts, for a block of `block` key columns:
 * - q: n_rows rows of head_dim floats, row r at q + r * head_dim, already
 *   multiplied by the op's scale;
 * - kt: K transposed, dimension d of column c at kt[d * block + c];
 * - v: V as rows, column c at v + c * head_dim;
 * - s: n_rows rows of scores or weights, row r at s + r * block, column c
 *   at [c];
 * - out: n_rows rows of head_dim running (unnormalized) outputs.
 * Column ranges [c0, c1) are multiples of CPU_ATTENTION_KEY_STEP, within
 * the block; n_rows is 1..CPU_ATTENTION_ROWS. */
typedef struct cpu_attention_kernels {
    /* s[r][c] = sum_d q[r][d] * kt[d][c] */
    void (*scores)(const float *q, int n_rows, int64_t head_dim, const float *kt, int64_t block, int64_t c0,
                   int64_t c1, float *s);
    /* x[i] = cap * tanh(x[i] / cap), n a multiple of CPU_ATTENTION_KEY_STEP */
    void (*softcap)(float *x, int64_t n, float cap);
    /* One online-softmax step of one row over x[0, n) (n a multiple of
     * CPU_ATTENTION_KEY_STEP; hidden columns hold -inf; at least one does
     * not): the new max m = max(*max, max x) replaces *max, x[i] becomes
     * exp(x[i] - m) (exactly 0 where x[i] was -inf), *sum becomes
     * *sum * alpha + sum_i x[i], and alpha = exp(old max - m) is returned
     * (0 when the old max was -inf). */
    float (*softmax_step)(float *x, int64_t n, float *max, float *sum);
    /* out[r][d] = out[r][d] * alpha[r] + sum_{c in [c0, c1)} s[r][c] * v[c][d] */
    void (*accumulate)(float *out, const float *alpha, int n_rows, int64_t head_dim, const float *s, int64_t block,
                       const float *v, int64_t c0, int64_t c1);
    /* dst[i] = src[i] for n half floats */
    void (*f16_to_f32)(const uint16_t *src, float *dst, int64_t n);
    /* Eight consecutive K rows (row i at rows + i * row_stride, head_dim
     * elements, F16 when f16 else F32) into eight columns of kt: dimension
     * d of row i goes to kt[d * block + i]. */
    void (*k_columns8)(const char *rows, size_t row_stride, bool f16, int64_t head_dim, float *kt, int64_t block);
} cpu_attention_kernels;

/* One op, as the work items see it. */
typedef struct cpu_attention_job {
    const cpu_attention_kernels *kernels;
    cpu_attention_tiling tiling;
    const float *q;            /* [head_dim, n_heads, n_tok] */
    float *out;                /* [head_dim, n_heads, n_tok] */
    const char *k, *v;         /* caches [head_dim, n_kv_heads, n_ctx] */
    strata_dtype k_dtype, v_dtype;
    size_t k_head_stride, k_row_stride, v_head_stride, v_row_stride; /* bytes: nb[1], nb[2] */
    const int32_t *positions;  /* [n_tok] */
    int64_t head_dim, n_heads, n_kv_heads, group, n_tok, n_kv;
    float scale, softcap;
    int64_t window;            /* 0: none */
} cpu_attention_job;

/* Number of work items of a job: n_kv_heads * tiling.n_tiles. */
static inline int64_t cpu_attention_item_count(const cpu_attention_job *job)
{
    return job->n_kv_heads * job->tiling.n_tiles;
}

/* Computes work item `item` (in [0, cpu_attention_item_count)) into job->out,
 * with cpu_attention_scratch_bytes of 64-byte aligned scratch. Items write
 * disjoint outputs, so any number may run at once. */
void cpu_attention_run_item(const cpu_attention_job *job, int64_t item, void *scratch);

/* The kernels for isa (the portable ones when AVX2 was not built in). */
const cpu_attention_kernels *cpu_attention_kernels_for(cpu_isa isa);

extern const cpu_attention_kernels cpu_attention_kernels_scalar;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
extern const cpu_attention_kernels cpu_attention_kernels_avx2;
#endif

#endif
