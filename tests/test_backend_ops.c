/* Op conformance: every op x dtype x shape of the table below runs on every
 * registered backend that has a device, and is compared with an independent
 * double-precision reference (tests/common/op_reference.c) by normalized mean
 * squared error against a bound written in the table. The CPU backend runs
 * twice: with its best SIMD kernels and forced onto the scalar path.
 *
 * Matmul errors are measured against sum_i (w_i x_i)^2 per output rather than
 * the result squared (ref_nmse_scaled): with one or two outputs a result that
 * cancels to near zero would make plain nmse meaningless; for many outputs the
 * two measures agree in expectation.
 *
 * Why the bounds differ:
 * - Float paths (f32/f16/bf16 weights, norms, rope, attention, ...) only
 *   round in f32 arithmetic: nmse ~1e-13 or better, bound 1e-10.
 * - Matmuls of quantized weights round the activations to 8 bits per block
 *   (Q8_0/Q8_1/Q8_K, as every fast backend does): each activation gets an
 *   error of about amax/127/sqrt(12), an nmse of ~2e-5 for Q8_0 blocks and
 *   ~4e-5 for 256-wide Q8_K blocks of gaussian data. With a single block and
 *   one output that estimate rests on a few blocks and spreads widely (the
 *   seeds here reach 3.8e-4, and another backend rounds differently), so
 *   small shapes get 1e-3; the long-row case averages thousands of blocks
 *   and gets 1e-4.
 *   A layout bug gives nmse of order 1, far above either.
 * - Conversions and lookups (get_rows, copy, kv_store) must be exact up to
 *   the target format's rounding, which the reference applies too: 1e-12.
 * - argmax must match exactly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cpu/cpu_attention.h"
#include "backends/cpu/cpu_kernels.h"
#include "backends/cpu/cpu_threadpool.h"
#include "op_reference.h"
#include "quant.h"

#define NMSE_FLOAT 1e-10
#define NMSE_Q8_ACTIVATIONS 1e-3
#define NMSE_Q8_ACTIVATIONS_LONG 1e-4
#define NMSE_EXACT 1e-12

/* --- random numbers (xorshift64*, fixed seeds: failures reproduce) --------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static double rng_uniform(void) /* in (0, 1) */
{
    return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static float rng_gauss(void)
{
    return (float)(sqrt(-2.0 * log(rng_uniform())) * cos(2.0 * M_PI * rng_uniform()));
}

static void fill_gauss(float *x, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = rng_gauss() * scale;
}

/* --- the case table ---------------------------------------------------------- */

typedef struct op_case {
    op_kind op;
    strata_dtype dtype; /* weight (matmul, get_rows), cache (kv_store, attention), dst (copy) */
    strata_dtype src_dtype; /* copy only */
    /* shape: matmul [n_in, n_out, n_tok]; get_rows [n_embd, n_vocab, n_rows];
     * row ops [n, rows]; rope [head_dim, n_heads, n_tok]; kv_store [row_size,
     * n_tok, n_ctx]; attention [head_dim, n_heads, n_tok, n_kv_heads] */
    int64_t ne[4];
    /* moe: topk and moe_weights [n_expert, n_tok, k] (moe_weights flag:
     * normalize); matmul_id [n_in, n_out, n_tok, n_expert] (flag: an input
     * per slot); moe_sum [n, k, n_tok] (flag: sigmoid of the weights) */
    int n_rot;          /* rope */
    int n_past;         /* attention: the first query's position */
    bool flag;          /* rms_norm: weight; add/mul: broadcast row; rope: neox; copy: strided */
    bool freq_factors;  /* rope */
    float attn_factor;  /* rope: LongRoPE's scale of the rotated dims */
    bool reshape;       /* copy: dst is [n0 * n1] */
    int window;         /* attention */
    float softcap;      /* attention */
    int position_step;  /* attention: query t at n_past + t * step (0: step 1) */
    int kv_pad;         /* attention: rows scanned past the last position, as a bucketed step scans */
    int n_used;         /* matmul_id: experts per token (k) */
    double max_nmse;
} op_case;

typedef struct weight_type {
    strata_dtype dtype;
    double matmul_nmse;
} weight_type;

static const weight_type weight_types[] = {
    {DTYPE_F32, NMSE_FLOAT},           {DTYPE_F16, NMSE_FLOAT},           {DTYPE_BF16, NMSE_FLOAT},
    {DTYPE_Q4_0, NMSE_Q8_ACTIVATIONS}, {DTYPE_Q4_1, NMSE_Q8_ACTIVATIONS}, {DTYPE_Q5_0, NMSE_Q8_ACTIVATIONS},
    {DTYPE_Q5_1, NMSE_Q8_ACTIVATIONS}, {DTYPE_Q8_0, NMSE_Q8_ACTIVATIONS}, {DTYPE_Q2_K, NMSE_Q8_ACTIVATIONS},
    {DTYPE_Q3_K, NMSE_Q8_ACTIVATIONS}, {DTYPE_Q4_K, NMSE_Q8_ACTIVATIONS}, {DTYPE_Q5_K, NMSE_Q8_ACTIVATIONS},
    {DTYPE_Q6_K, NMSE_Q8_ACTIVATIONS},
    {DTYPE_IQ2_XXS, NMSE_Q8_ACTIVATIONS}, {DTYPE_IQ2_XS, NMSE_Q8_ACTIVATIONS}, {DTYPE_IQ2_S, NMSE_Q8_ACTIVATIONS},
    {DTYPE_IQ3_XXS, NMSE_Q8_ACTIVATIONS}, {DTYPE_IQ3_S, NMSE_Q8_ACTIVATIONS},  {DTYPE_IQ1_S, NMSE_Q8_ACTIVATIONS},
    {DTYPE_IQ1_M, NMSE_Q8_ACTIVATIONS},   {DTYPE_IQ4_NL, NMSE_Q8_ACTIVATIONS}, {DTYPE_IQ4_XS, NMSE_Q8_ACTIVATIONS},
    {DTYPE_MXFP4, NMSE_Q8_ACTIVATIONS},   {DTYPE_TQ1_0, NMSE_Q8_ACTIVATIONS},  {DTYPE_TQ2_0, NMSE_Q8_ACTIVATIONS},
};

/* Hand-written cases for the ops without a weight. */
static const op_case fixed_cases[] = {
    {.op = OP_RMS_NORM, .ne = {64, 3}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_RMS_NORM, .ne = {4096, 2}, .flag = false, .max_nmse = NMSE_FLOAT},
    {.op = OP_RMS_NORM, .ne = {7, 33}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_ADD, .ne = {67, 5}, .max_nmse = NMSE_FLOAT},
    {.op = OP_ADD, .ne = {67, 5}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_ADD, .ne = {70000, 2}, .max_nmse = NMSE_FLOAT},
    {.op = OP_MUL, .ne = {33, 7}, .max_nmse = NMSE_FLOAT},
    {.op = OP_MUL, .ne = {33, 7}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_SCALE, .ne = {100, 3}, .max_nmse = NMSE_FLOAT},
    {.op = OP_SWIGLU, .ne = {96, 7}, .max_nmse = NMSE_FLOAT},
    {.op = OP_SWIGLU, .ne = {70001, 1}, .max_nmse = NMSE_FLOAT},
    {.op = OP_GEGLU, .ne = {96, 7}, .max_nmse = NMSE_FLOAT},
    {.op = OP_SOFTMAX, .ne = {1, 3}, .max_nmse = NMSE_FLOAT},
    {.op = OP_SOFTMAX, .ne = {257, 9}, .max_nmse = NMSE_FLOAT},
    {.op = OP_ARGMAX, .ne = {1, 1}, .max_nmse = 0},
    {.op = OP_ARGMAX, .ne = {1000, 5}, .max_nmse = 0},
    {.op = OP_ROPE, .ne = {64, 4, 7}, .n_rot = 64, .flag = false, .max_nmse = NMSE_FLOAT},
    {.op = OP_ROPE, .ne = {64, 4, 7}, .n_rot = 64, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_ROPE, .ne = {80, 3, 2}, .n_rot = 32, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_ROPE, .ne = {80, 3, 33}, .n_rot = 40, .flag = false, .max_nmse = NMSE_FLOAT},
    {.op = OP_ROPE, .ne = {128, 8, 5}, .n_rot = 128, .flag = true, .freq_factors = true, .max_nmse = NMSE_FLOAT},
    /* phi3: half the head rotated, LongRoPE factors and attention factor */
    {.op = OP_ROPE, .ne = {96, 5, 9}, .n_rot = 48, .flag = true, .freq_factors = true, .attn_factor = 1.19f,
     .max_nmse = NMSE_FLOAT},
    {.op = OP_KV_STORE, .dtype = DTYPE_F32, .ne = {96, 3, 16}, .max_nmse = NMSE_EXACT},
    {.op = OP_KV_STORE, .dtype = DTYPE_F16, .ne = {96, 7, 16}, .max_nmse = NMSE_EXACT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {64, 4, 1, 4}, .n_past = 0, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {64, 4, 1, 2}, .n_past = 37, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {64, 8, 7, 2}, .n_past = 20, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {32, 6, 33, 3}, .n_past = 0, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {48, 4, 5, 1}, .n_past = 30, .window = 8, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {64, 2, 3, 1}, .n_past = 10, .softcap = 5.0f, .max_nmse = NMSE_FLOAT},
    /* prompt processing: many queries per kv head (CUDA's tiled kernel), query counts that leave a partial tile */
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {128, 8, 70, 2}, .n_past = 9, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {128, 8, 70, 2}, .n_past = 9, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {256, 4, 41, 2}, .n_past = 9, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {80, 4, 70, 1}, .n_past = 9, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {96, 6, 30, 2}, .n_past = 2, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {64, 2, 19, 1}, .n_past = 0, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {64, 4, 70, 2}, .n_past = 9, .window = 16, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {64, 4, 70, 2}, .n_past = 9, .softcap = 3.0f,
     .max_nmse = NMSE_FLOAT},
    /* scattered positions and a short window: rows between them that no query sees hold NaN */
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {64, 4, 24, 2}, .n_past = 5, .window = 2, .position_step = 3,
     .max_nmse = NMSE_FLOAT},
    /* n_kv past the last position (NaN rows), as a graph step with a bucketed n_kv scans */
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {128, 8, 20, 2}, .n_past = 9, .kv_pad = 40, .max_nmse = NMSE_FLOAT},
    /* rows of 84 bytes (no 16-byte loads) and a head_dim that is not a multiple of 4 */
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {42, 4, 30, 2}, .n_past = 3, .max_nmse = NMSE_FLOAT},
    /* long contexts with few blocks: split-KV (several splits per query, then combined) */
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {128, 8, 6, 2}, .n_past = 300, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {64, 4, 1, 2}, .n_past = 200, .max_nmse = NMSE_FLOAT},
    /* 32 query heads on one kv head: a tile of queries holds part of a token's heads */
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {256, 32, 3, 1}, .n_past = 4, .max_nmse = NMSE_FLOAT},
    /* long prompts: hundreds of queries over hundreds of keys, so a work item
     * of the CPU's tiled path walks several key blocks (16..512 keys, by
     * head_dim) and the last query tile and key block are partial */
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {64, 8, 333, 2}, .n_past = 0, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {64, 4, 310, 4}, .n_past = 17, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {80, 6, 301, 3}, .n_past = 40, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {8, 8, 611, 4}, .n_past = 0, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {42, 4, 307, 2}, .n_past = 29, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {256, 16, 131, 2}, .n_past = 203, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {128, 12, 305, 3}, .n_past = 11, .window = 97,
     .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {96, 4, 317, 1}, .n_past = 6, .softcap = 20.0f,
     .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {64, 8, 302, 2}, .n_past = 30, .window = 45, .softcap = 4.0f,
     .kv_pad = 37, .max_nmse = NMSE_FLOAT},
    /* scattered positions over a long range: most rows of each key block are hidden (NaN) */
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {64, 4, 303, 2}, .n_past = 3, .window = 4, .position_step = 5,
     .max_nmse = NMSE_FLOAT},
    {.op = OP_COPY, .src_dtype = DTYPE_F32, .dtype = DTYPE_F16, .ne = {67, 3}, .max_nmse = NMSE_EXACT},
    {.op = OP_COPY, .src_dtype = DTYPE_F16, .dtype = DTYPE_F32, .ne = {67, 3}, .max_nmse = NMSE_EXACT},
    {.op = OP_COPY, .src_dtype = DTYPE_F32, .dtype = DTYPE_BF16, .ne = {33, 4}, .max_nmse = NMSE_EXACT},
    {.op = OP_COPY, .src_dtype = DTYPE_BF16, .dtype = DTYPE_F32, .ne = {33, 4}, .max_nmse = NMSE_EXACT},
    {.op = OP_COPY, .src_dtype = DTYPE_F32, .dtype = DTYPE_F32, .ne = {16, 9}, .flag = true, .max_nmse = NMSE_EXACT},
    {.op = OP_COPY, .src_dtype = DTYPE_F16, .dtype = DTYPE_BF16, .ne = {5, 31}, .flag = true, .max_nmse = NMSE_EXACT},
    {.op = OP_COPY, .src_dtype = DTYPE_F32, .dtype = DTYPE_F16, .ne = {6, 7}, .reshape = true, .max_nmse = NMSE_EXACT},
    /* tensors over 64 KiB, so the run with STRATA_VULKAN_MAX_BIND_KIB=64 cuts
     * every op family into several bindings (rows, tokens, cache ranges,
     * slabs; a broadcast row longer than one binding; dst columns cut with
     * the weight's rows) */
    {.op = OP_RMS_NORM, .ne = {4096, 9}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_SOFTMAX, .ne = {5000, 7}, .max_nmse = NMSE_FLOAT},
    {.op = OP_ARGMAX, .ne = {15000, 5}, .max_nmse = 0},
    {.op = OP_MUL, .ne = {1000, 40}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_ADD, .ne = {20000, 3}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_GEGLU, .ne = {9000, 3}, .max_nmse = NMSE_FLOAT},
    {.op = OP_ROPE, .ne = {128, 32, 7}, .n_rot = 128, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_KV_STORE, .dtype = DTYPE_F32, .ne = {256, 5, 80}, .max_nmse = NMSE_EXACT},
    {.op = OP_KV_STORE, .dtype = DTYPE_F16, .ne = {510, 9, 70}, .max_nmse = NMSE_EXACT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F16, .ne = {64, 8, 1, 2}, .n_past = 700, .max_nmse = NMSE_FLOAT},
    {.op = OP_ATTENTION, .dtype = DTYPE_F32, .ne = {64, 8, 3, 2}, .n_past = 300, .window = 200, .max_nmse = NMSE_FLOAT},
    {.op = OP_COPY, .src_dtype = DTYPE_F32, .dtype = DTYPE_F16, .ne = {300, 100}, .max_nmse = NMSE_EXACT},
    {.op = OP_COPY, .src_dtype = DTYPE_F32, .dtype = DTYPE_F32, .ne = {200, 150}, .flag = true, .max_nmse = NMSE_EXACT},
    {.op = OP_COPY, .src_dtype = DTYPE_F16, .dtype = DTYPE_F32, .ne = {150, 301}, .reshape = true, .max_nmse = NMSE_EXACT},
    {.op = OP_MATMUL, .dtype = DTYPE_F16, .ne = {64, 20000, 2}, .max_nmse = NMSE_FLOAT},
    {.op = OP_MATMUL, .dtype = DTYPE_Q4_0, .ne = {4096, 20, 12}, .max_nmse = NMSE_Q8_ACTIVATIONS_LONG},
    /* low-bit weights over 64 KiB: MXFP4 rows of 127 blocks are 2159 bytes,
     * so every other row, and the first row of some bindings, starts at an
     * odd byte; IQ1_S (50-byte blocks) and TQ1_0 (54) rows are cut into
     * bindings while their lookup tables stay whole */
    {.op = OP_MATMUL, .dtype = DTYPE_MXFP4, .ne = {4064, 67, 3}, .max_nmse = NMSE_Q8_ACTIVATIONS_LONG},
    {.op = OP_MATMUL, .dtype = DTYPE_MXFP4, .ne = {4064, 45, 12}, .max_nmse = NMSE_Q8_ACTIVATIONS_LONG},
    {.op = OP_GET_ROWS, .dtype = DTYPE_MXFP4, .ne = {4064, 61, 9}, .max_nmse = NMSE_EXACT},
    {.op = OP_MATMUL, .dtype = DTYPE_IQ1_S, .ne = {4608, 90, 5}, .max_nmse = NMSE_Q8_ACTIVATIONS_LONG},
    {.op = OP_MATMUL, .dtype = DTYPE_TQ1_0, .ne = {4608, 70, 2}, .max_nmse = NMSE_Q8_ACTIVATIONS_LONG},
    {.op = OP_TOPK, .ne = {1, 3, 1}, .max_nmse = 0},
    {.op = OP_TOPK, .ne = {8, 5, 2}, .max_nmse = 0},
    {.op = OP_TOPK, .ne = {60, 7, 4}, .max_nmse = 0},
    {.op = OP_TOPK, .ne = {128, 33, 8}, .max_nmse = 0},
    {.op = OP_TOPK, .ne = {7, 2, 7}, .max_nmse = 0},
    {.op = OP_MOE_WEIGHTS, .ne = {8, 5, 2}, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_WEIGHTS, .ne = {8, 5, 2}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_WEIGHTS, .ne = {129, 3, 6}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_SUM, .ne = {67, 2, 5}, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_SUM, .ne = {2048, 8, 1}, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_SUM, .ne = {33, 1, 3}, .max_nmse = NMSE_FLOAT},
    /* the sigmoid-gated sum: Qwen2-MoE's shared expert (k = 1), and k = 3 */
    {.op = OP_MOE_SUM, .ne = {33, 1, 3}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_SUM, .ne = {2048, 1, 7}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_SUM, .ne = {67, 3, 5}, .flag = true, .max_nmse = NMSE_FLOAT},
    /* mixture of experts over 64 KiB: router columns in several bindings, a
     * token's expert outputs cut by elements and by slots (added to dst),
     * experts one per binding, an expert's rows in several bindings, and
     * MXFP4 experts of an odd byte size (every other one at an odd byte) */
    {.op = OP_TOPK, .ne = {128, 200, 8}, .max_nmse = 0},
    {.op = OP_MOE_WEIGHTS, .ne = {128, 200, 8}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_SUM, .ne = {9000, 2, 3}, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_SUM, .ne = {20000, 3, 1}, .max_nmse = NMSE_FLOAT},
    {.op = OP_MOE_SUM, .ne = {20000, 3, 1}, .flag = true, .max_nmse = NMSE_FLOAT},
    {.op = OP_MATMUL_ID, .dtype = DTYPE_Q4_0, .ne = {4096, 20, 3, 4}, .n_used = 2,
     .max_nmse = NMSE_Q8_ACTIVATIONS_LONG},
    {.op = OP_MATMUL_ID, .dtype = DTYPE_F16, .ne = {2048, 40, 5, 3}, .n_used = 2, .flag = true,
     .max_nmse = NMSE_FLOAT},
    {.op = OP_MATMUL_ID, .dtype = DTYPE_MXFP4, .ne = {4064, 9, 2, 3}, .n_used = 2,
     .max_nmse = NMSE_Q8_ACTIVATIONS_LONG},
};

/* Builds the full list: the fixed cases plus matmul and get_rows for every
 * weight type at several shapes, odd sizes included. */
static op_case *build_cases(int *count)
{
    static const int64_t n_tok_list[] = {1, 2, 7, 33};
    static const int64_t n_out_list[] = {1, 3, 67};
    static const int64_t tile_token_list[] = {1, 2, 3, 5, 8, 9, 17, 64};
    int64_t n_fixed = (int64_t)(sizeof fixed_cases / sizeof fixed_cases[0]);
    int64_t n_weight = (int64_t)(sizeof weight_types / sizeof weight_types[0]);
    int64_t n_tile = (int64_t)(sizeof tile_token_list / sizeof tile_token_list[0]);
    int64_t capacity = n_fixed + n_weight * (3 * 4 * 3 + 4 + n_tile + 4);
    op_case *cases = calloc((size_t)capacity, sizeof *cases);
    if (!cases)
        return NULL;
    int n = 0;
    for (int64_t i = 0; i < n_fixed; i++)
        cases[n++] = fixed_cases[i];
    for (int64_t w = 0; w < n_weight; w++) {
        strata_dtype dtype = weight_types[w].dtype;
        int64_t block = dtype_get_traits((int)dtype)->block_elements;
        /* inputs: one block, a few blocks, and an odd size for plain types */
        int64_t n_in_list[3] = {block == 1 ? 33 : block, block == 1 ? 96 : 3 * block, block == 1 ? 7 : 2 * block};
        for (int a = 0; a < 3; a++)
            for (int o = 0; o < 3; o++)
                for (int t = 0; t < 4; t++)
                    cases[n++] = (op_case){.op = OP_MATMUL, .dtype = dtype,
                                           .ne = {n_in_list[a], n_out_list[o], n_tok_list[t]},
                                           .max_nmse = weight_types[w].matmul_nmse};
        /* a longer row, as in real models, with several tokens */
        int64_t long_in = block == 1 ? 2048 : (block == 256 ? 2048 : 4096);
        double long_nmse = weight_types[w].matmul_nmse < NMSE_Q8_ACTIVATIONS_LONG ? weight_types[w].matmul_nmse
                                                                                 : NMSE_Q8_ACTIVATIONS_LONG;
        cases[n++] = (op_case){.op = OP_MATMUL, .dtype = dtype, .ne = {long_in, 67, 5}, .max_nmse = long_nmse};
        /* formats with tiled kernels (batch > 1): token counts around and
         * past the tile width, a row count that no split divides evenly */
        const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(dtype);
        if (kernel && kernel->tile_scalar)
            for (size_t t = 0; t < sizeof tile_token_list / sizeof tile_token_list[0]; t++)
                cases[n++] = (op_case){.op = OP_MATMUL, .dtype = dtype, .ne = {4 * block, 37, tile_token_list[t]},
                                       .max_nmse = weight_types[w].matmul_nmse};
        /* experts: decode (a pair per expert), a batch that makes an expert
         * take several tokens (the tiled path), odd expert counts and k */
        double id_nmse = weight_types[w].matmul_nmse;
        cases[n++] = (op_case){.op = OP_MATMUL_ID, .dtype = dtype, .ne = {block == 1 ? 33 : block, 37, 1, 5},
                               .n_used = 2, .max_nmse = id_nmse};
        cases[n++] = (op_case){.op = OP_MATMUL_ID, .dtype = dtype, .ne = {block == 1 ? 96 : 2 * block, 67, 9, 7},
                               .n_used = 3, .flag = true, .max_nmse = id_nmse};
        cases[n++] = (op_case){.op = OP_MATMUL_ID, .dtype = dtype, .ne = {block == 1 ? 64 : block, 19, 33, 4},
                               .n_used = 2, .max_nmse = id_nmse};
        cases[n++] = (op_case){.op = OP_MATMUL_ID, .dtype = dtype, .ne = {block == 1 ? 7 : block, 3, 2, 1},
                               .n_used = 1, .flag = true, .max_nmse = id_nmse};
        cases[n++] = (op_case){.op = OP_GET_ROWS, .dtype = dtype, .ne = {block == 1 ? 33 : block, 10, 1},
                               .max_nmse = NMSE_EXACT};
        cases[n++] = (op_case){.op = OP_GET_ROWS, .dtype = dtype, .ne = {2 * (block == 1 ? 48 : block), 50, 7},
                               .max_nmse = NMSE_EXACT};
        cases[n++] = (op_case){.op = OP_GET_ROWS, .dtype = dtype, .ne = {block == 1 ? 4096 : 4096, 40, 33},
                               .max_nmse = NMSE_EXACT};
    }
    *count = n;
    return cases;
}

/* --- device tensors ------------------------------------------------------------ */

typedef struct test_tensor {
    strata_tensor t;
    backend_buffer *buffer;
} test_tensor;

static const backend_device *device;

/* A contiguous device tensor holding data (bytes in the dtype's layout), or
 * uninitialized when data is NULL. extra_bytes pads the buffer (for views). */
static strata_status tensor_new(test_tensor *tt, strata_dtype dtype, int64_t ne0, int64_t ne1, int64_t ne2,
                                int64_t ne3, const void *data, strata_error *err)
{
    memset(tt, 0, sizeof *tt);
    if (!tensor_init_contiguous(&tt->t, dtype, ne0, ne1, ne2, ne3))
        return strata_fail(err, STRATA_INVALID_INPUT, "bad test tensor shape");
    size_t bytes = tensor_byte_size(&tt->t);
    strata_status status = device->ops->buffer_alloc(device->ctx, bytes ? bytes : 1, &tt->buffer, err);
    if (status != STRATA_OK)
        return status;
    tt->t.buffer = tt->buffer;
    tt->t.host_data = device->ops->buffer_host_ptr ? device->ops->buffer_host_ptr(device->ctx, tt->buffer) : NULL;
    if (data && bytes)
        status = device->ops->upload(device->ctx, tt->buffer, 0, data, bytes, err);
    return status;
}

static void tensor_release(test_tensor *tt)
{
    if (tt->buffer)
        device->ops->buffer_free(device->ctx, tt->buffer);
    tt->buffer = NULL;
}

static strata_status tensor_read(const test_tensor *tt, void *out, size_t bytes, strata_error *err)
{
    strata_status status = device->ops->sync(device->ctx, err);
    if (status == STRATA_OK)
        status = device->ops->download(device->ctx, tt->buffer, 0, out, bytes, err);
    return status;
}

static strata_status run(backend_op *op, strata_error *err)
{
    if (!device->ops->supports(device->ctx, op))
        return strata_fail(err, STRATA_UNSUPPORTED, "supports() says no");
    strata_status status = device->ops->run_op(device->ctx, op, err);
    if (status == STRATA_OK)
        status = device->ops->sync(device->ctx, err);
    return status;
}

/* Random weights of dtype: gaussian floats quantized with the reference
 * quantizer; *dequantized receives what those bytes decode to. */
static strata_status random_weights(strata_dtype dtype, int64_t n_in, int64_t rows, void **bytes_out,
                                    float **dequantized, strata_error *err)
{
    size_t row_bytes;
    dtype_row_bytes(dtype, n_in, &row_bytes);
    float *values = malloc((size_t)(n_in * rows) * sizeof(float) + 1);
    char *bytes = malloc(row_bytes * (size_t)rows + 1);
    float *decoded = malloc((size_t)(n_in * rows) * sizeof(float) + 1);
    strata_status status = STRATA_OK;
    if (!values || !bytes || !decoded) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    fill_gauss(values, n_in * rows, 0.5f);
    for (int64_t r = 0; r < rows; r++) {
        if ((status = quant_quantize_row(dtype, values + r * n_in, bytes + (size_t)r * row_bytes, n_in, err)) ||
            (status = quant_dequantize_row(dtype, bytes + (size_t)r * row_bytes, decoded + r * n_in, n_in, err)))
            goto fail;
    }
    free(values);
    *bytes_out = bytes;
    *dequantized = decoded;
    return STRATA_OK;
fail:
    free(values);
    free(bytes);
    free(decoded);
    return status;
}

/* --- one runner per op family ---------------------------------------------------
 * Each fills got (what the device computed, as floats) and ref (the double
 * reference) with *n values; the caller compares and frees them. */

typedef struct case_output {
    float *got;
    double *ref;
    double *scale2; /* matmul only: per-output error scale (ref_nmse_scaled) */
    int64_t n;
} case_output;

static strata_status output_alloc(case_output *out, int64_t n, strata_error *err)
{
    out->n = n;
    out->got = calloc((size_t)n + 1, sizeof *out->got);
    out->ref = calloc((size_t)n + 1, sizeof *out->ref);
    if (!out->got || !out->ref)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    return STRATA_OK;
}

static strata_status run_matmul_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t n_in = c->ne[0], n_out = c->ne[1], n_tok = c->ne[2];
    void *weight_bytes = NULL;
    float *weights = NULL, *x = malloc((size_t)(n_in * n_tok) * sizeof(float));
    test_tensor w = {0}, xt = {0}, dst = {0};
    strata_status status = x ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status || (status = random_weights(c->dtype, n_in, n_out, &weight_bytes, &weights, err)))
        goto fail;
    fill_gauss(x, n_in * n_tok, 1.0f);
    if ((status = tensor_new(&w, c->dtype, n_in, n_out, 1, 1, weight_bytes, err)) ||
        (status = tensor_new(&xt, DTYPE_F32, n_in, n_tok, 1, 1, x, err)) ||
        (status = tensor_new(&dst, DTYPE_F32, n_out, n_tok, 1, 1, NULL, err)) ||
        (status = output_alloc(out, n_out * n_tok, err)))
        goto fail;
    if (!(out->scale2 = calloc((size_t)out->n, sizeof *out->scale2))) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    backend_op op = {.kind = OP_MATMUL, .dst = &dst.t, .src = {&w.t, &xt.t}};
    if ((status = run(&op, err)) || (status = tensor_read(&dst, out->got, (size_t)out->n * sizeof(float), err)))
        goto fail;
    ref_matmul(weights, x, n_in, n_out, n_tok, out->ref, out->scale2);
fail:
    tensor_release(&w);
    tensor_release(&xt);
    tensor_release(&dst);
    free(weight_bytes);
    free(weights);
    free(x);
    return status;
}

static strata_status run_get_rows_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t n_embd = c->ne[0], n_vocab = c->ne[1], n_rows = c->ne[2];
    void *table_bytes = NULL;
    float *table = NULL;
    int32_t *ids = malloc((size_t)n_rows * sizeof *ids);
    test_tensor tt = {0}, it = {0}, dst = {0};
    strata_status status = ids ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status || (status = random_weights(c->dtype, n_embd, n_vocab, &table_bytes, &table, err)))
        goto fail;
    for (int64_t r = 0; r < n_rows; r++) /* the first and last rows, then random ones (repeats allowed) */
        ids[r] = r == 0 ? 0 : r == 1 ? (int32_t)(n_vocab - 1) : (int32_t)(rng_next() % (uint64_t)n_vocab);
    if ((status = tensor_new(&tt, c->dtype, n_embd, n_vocab, 1, 1, table_bytes, err)) ||
        (status = tensor_new(&it, DTYPE_I32, n_rows, 1, 1, 1, ids, err)) ||
        (status = tensor_new(&dst, DTYPE_F32, n_embd, n_rows, 1, 1, NULL, err)) ||
        (status = output_alloc(out, n_embd * n_rows, err)))
        goto fail;
    backend_op op = {.kind = OP_GET_ROWS, .dst = &dst.t, .src = {&tt.t, &it.t}};
    if ((status = run(&op, err)) || (status = tensor_read(&dst, out->got, (size_t)out->n * sizeof(float), err)))
        goto fail;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t i = 0; i < n_embd; i++)
            out->ref[r * n_embd + i] = table[ids[r] * n_embd + i];
fail:
    tensor_release(&tt);
    tensor_release(&it);
    tensor_release(&dst);
    free(table_bytes);
    free(table);
    free(ids);
    return status;
}

/* RMS_NORM, ADD, MUL, SCALE, SWIGLU, GEGLU, SOFTMAX: F32 in, F32 out, run in
 * place (dst == src0) every other case to cover the aliasing the forward pass
 * relies on. */
static strata_status run_float_case(const op_case *c, int case_index, case_output *out, strata_error *err)
{
    int64_t n = c->ne[0], rows = c->ne[1], count = n * rows;
    bool broadcast = (c->op == OP_ADD || c->op == OP_MUL) && c->flag;
    bool has_b = c->op == OP_ADD || c->op == OP_MUL || c->op == OP_SWIGLU || c->op == OP_GEGLU ||
                 (c->op == OP_RMS_NORM && c->flag);
    int64_t b_count = broadcast || c->op == OP_RMS_NORM ? n : count;
    bool in_place = case_index % 2 == 1;
    float *a = malloc((size_t)count * sizeof(float)), *b = malloc((size_t)b_count * sizeof(float));
    test_tensor at = {0}, bt = {0}, dst = {0};
    strata_status status = a && b ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status)
        goto fail;
    fill_gauss(a, count, c->op == OP_SOFTMAX ? 4.0f : 1.0f);
    fill_gauss(b, b_count, 1.0f);
    backend_op op = {.kind = c->op};
    if ((status = tensor_new(&at, DTYPE_F32, n, rows, 1, 1, a, err)) ||
        (has_b && (status = tensor_new(&bt, DTYPE_F32, b_count == count ? n : n, b_count == count ? rows : 1, 1, 1, b, err))) ||
        (!in_place && (status = tensor_new(&dst, DTYPE_F32, n, rows, 1, 1, NULL, err))) ||
        (status = output_alloc(out, count, err)))
        goto fail;
    op.dst = in_place ? &at.t : &dst.t;
    op.src[0] = &at.t;
    op.src[1] = has_b ? &bt.t : NULL;
    op.params.rms_norm.eps = 1e-5f;
    if (c->op == OP_SCALE)
        op.params.scale.value = 0.37f;
    if ((status = run(&op, err)) ||
        (status = tensor_read(in_place ? &at : &dst, out->got, (size_t)count * sizeof(float), err)))
        goto fail;
    switch (c->op) {
    case OP_RMS_NORM: ref_rms_norm(a, has_b ? b : NULL, n, rows, 1e-5f, out->ref); break;
    case OP_SOFTMAX: ref_softmax(a, n, rows, out->ref); break;
    default:
        for (int64_t i = 0; i < count; i++) {
            double x = a[i], y = b[broadcast ? i % n : i];
            out->ref[i] = c->op == OP_ADD ? x + y
                        : c->op == OP_MUL ? x * y
                        : c->op == OP_SCALE ? x * (double)0.37f
                        : c->op == OP_SWIGLU ? ref_silu(x) * y
                        : ref_gelu_tanh(x) * y;
        }
    }
fail:
    tensor_release(&at);
    tensor_release(&bt);
    tensor_release(&dst);
    free(a);
    free(b);
    return status;
}

static strata_status run_argmax_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t n = c->ne[0], rows = c->ne[1];
    float *x = malloc((size_t)(n * rows) * sizeof(float));
    int32_t *got = malloc((size_t)rows * sizeof(int32_t));
    test_tensor xt = {0}, dst = {0};
    strata_status status = x && got ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status)
        goto fail;
    fill_gauss(x, n * rows, 1.0f);
    for (int64_t r = 0; r < rows; r++) { /* a tie for the maximum: the lower index must win */
        int64_t first = (int64_t)(rng_next() % (uint64_t)n), second = (int64_t)(rng_next() % (uint64_t)n);
        x[r * n + first] = 10.0f;
        x[r * n + second] = 10.0f;
    }
    if ((status = tensor_new(&xt, DTYPE_F32, n, rows, 1, 1, x, err)) ||
        (status = tensor_new(&dst, DTYPE_I32, rows, 1, 1, 1, NULL, err)) || (status = output_alloc(out, rows, err)))
        goto fail;
    backend_op op = {.kind = OP_ARGMAX, .dst = &dst.t, .src = {&xt.t}};
    if ((status = run(&op, err)) || (status = tensor_read(&dst, got, (size_t)rows * sizeof(int32_t), err)))
        goto fail;
    for (int64_t r = 0; r < rows; r++) {
        int64_t best = 0;
        for (int64_t i = 0; i < n; i++)
            if (x[r * n + i] > x[r * n + best])
                best = i;
        out->got[r] = (float)got[r];
        out->ref[r] = (double)best;
    }
fail:
    tensor_release(&xt);
    tensor_release(&dst);
    free(x);
    free(got);
    return status;
}

static strata_status run_rope_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t head_dim = c->ne[0], n_heads = c->ne[1], n_tok = c->ne[2], count = head_dim * n_heads * n_tok;
    float *x = malloc((size_t)count * sizeof(float)), factors[256];
    int32_t *positions = malloc((size_t)n_tok * sizeof(int32_t));
    test_tensor xt = {0}, pt = {0}, ft = {0};
    strata_status status = x && positions ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status)
        goto fail;
    fill_gauss(x, count, 1.0f);
    for (int64_t t = 0; t < n_tok; t++)
        positions[t] = (int32_t)(t == 0 ? 0 : 3 * t + (int64_t)(rng_next() % 500));
    for (int i = 0; i < c->n_rot / 2; i++)
        factors[i] = 1.0f + (float)i * 0.25f;
    /* rope runs in place, as the forward pass issues it */
    if ((status = tensor_new(&xt, DTYPE_F32, head_dim, n_heads, n_tok, 1, x, err)) ||
        (status = tensor_new(&pt, DTYPE_I32, n_tok, 1, 1, 1, positions, err)) ||
        (c->freq_factors && (status = tensor_new(&ft, DTYPE_F32, c->n_rot / 2, 1, 1, 1, factors, err))) ||
        (status = output_alloc(out, count, err)))
        goto fail;
    backend_op op = {.kind = OP_ROPE, .dst = &xt.t, .src = {&xt.t, &pt.t, c->freq_factors ? &ft.t : NULL}};
    op.params.rope.n_rot = c->n_rot;
    op.params.rope.neox = c->flag;
    op.params.rope.freq_base = 10000.0f;
    op.params.rope.freq_scale = c->freq_factors ? 1.0f : 0.5f;
    op.params.rope.attn_factor = c->attn_factor;
    if ((status = run(&op, err)) || (status = tensor_read(&xt, out->got, (size_t)count * sizeof(float), err)))
        goto fail;
    ref_rope(x, positions, c->freq_factors ? factors : NULL, head_dim, n_heads, n_tok, c->n_rot, c->flag, 10000.0f,
             op.params.rope.freq_scale, c->attn_factor, out->ref);
fail:
    tensor_release(&xt);
    tensor_release(&pt);
    tensor_release(&ft);
    free(x);
    free(positions);
    return status;
}

/* Cache bytes of n f32 values in dtype (F16 or F32), and the floats they hold. */
static void to_cache(strata_dtype dtype, const float *x, void *bytes, float *decoded, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (dtype == DTYPE_F16) {
            uint16_t h = f32_to_fp16(x[i]);
            ((uint16_t *)bytes)[i] = h;
            decoded[i] = fp16_to_f32(h);
        } else {
            ((float *)bytes)[i] = x[i];
            decoded[i] = x[i];
        }
    }
}

static strata_status run_kv_store_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t row_size = c->ne[0], n_tok = c->ne[1], n_ctx = c->ne[2], cache_count = row_size * n_ctx;
    size_t es = c->dtype == DTYPE_F16 ? 2 : 4;
    float *rows = malloc((size_t)(row_size * n_tok) * sizeof(float));
    float *old = malloc((size_t)cache_count * sizeof(float)), *old_decoded = malloc((size_t)cache_count * sizeof(float));
    void *cache_bytes = malloc((size_t)cache_count * es), *row_bytes = malloc((size_t)row_size * es);
    float *row_decoded = malloc((size_t)row_size * sizeof(float));
    int32_t *positions = malloc((size_t)n_tok * sizeof(int32_t));
    test_tensor rt = {0}, pt = {0}, cache = {0};
    strata_status status = rows && old && old_decoded && cache_bytes && row_bytes && row_decoded && positions
                               ? STRATA_OK
                               : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status)
        goto fail;
    fill_gauss(rows, row_size * n_tok, 1.0f);
    fill_gauss(old, cache_count, 1.0f);
    to_cache(c->dtype, old, cache_bytes, old_decoded, cache_count);
    for (int64_t t = 0; t < n_tok; t++) /* scattered, increasing positions, the last row included */
        positions[t] = (int32_t)(n_ctx - 1 - 2 * (n_tok - 1 - t));
    if ((status = tensor_new(&rt, DTYPE_F32, row_size, n_tok, 1, 1, rows, err)) ||
        (status = tensor_new(&pt, DTYPE_I32, n_tok, 1, 1, 1, positions, err)) ||
        (status = tensor_new(&cache, c->dtype, row_size, n_ctx, 1, 1, cache_bytes, err)) ||
        (status = output_alloc(out, cache_count, err)))
        goto fail;
    backend_op op = {.kind = OP_KV_STORE, .dst = &cache.t, .src = {&rt.t, &pt.t}};
    if ((status = run(&op, err)) || (status = tensor_read(&cache, cache_bytes, (size_t)cache_count * es, err)))
        goto fail;
    for (int64_t i = 0; i < cache_count; i++) {
        out->got[i] = c->dtype == DTYPE_F16 ? fp16_to_f32(((uint16_t *)cache_bytes)[i]) : ((float *)cache_bytes)[i];
        out->ref[i] = old_decoded[i];
    }
    for (int64_t t = 0; t < n_tok; t++) {
        to_cache(c->dtype, rows + t * row_size, row_bytes, row_decoded, row_size);
        for (int64_t i = 0; i < row_size; i++)
            out->ref[positions[t] * row_size + i] = row_decoded[i];
    }
fail:
    tensor_release(&rt);
    tensor_release(&pt);
    tensor_release(&cache);
    free(rows);
    free(old);
    free(old_decoded);
    free(cache_bytes);
    free(row_bytes);
    free(row_decoded);
    free(positions);
    return status;
}

/* Whether any of the n_tok queries at positions sees cache row `row`. */
static bool attention_row_seen(int64_t row, const int32_t *positions, int64_t n_tok, int64_t n_kv, int window)
{
    for (int64_t t = 0; t < n_tok && row < n_kv; t++)
        if (row <= positions[t] && (window <= 0 || row > positions[t] - window))
            return true;
    return false;
}

/* Rows no query sees (past n_kv, before every window, between scattered
 * positions) hold NaN: a backend must not read them, or drop them by
 * selection, never by a multiplication with 0. */
static strata_status run_attention_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t head_dim = c->ne[0], n_heads = c->ne[1], n_tok = c->ne[2], n_kv_heads = c->ne[3];
    int64_t step = c->position_step > 0 ? c->position_step : 1;
    int64_t n_kv = c->n_past + (n_tok - 1) * step + 1 + c->kv_pad, n_ctx = n_kv + 5;
    int64_t q_count = head_dim * n_heads * n_tok, cache_count = head_dim * n_kv_heads * n_ctx;
    size_t es = c->dtype == DTYPE_F16 ? 2 : 4;
    float *q = malloc((size_t)q_count * sizeof(float));
    float *k = malloc((size_t)cache_count * sizeof(float)), *v = malloc((size_t)cache_count * sizeof(float));
    float *k_dec = malloc((size_t)cache_count * sizeof(float)), *v_dec = malloc((size_t)cache_count * sizeof(float));
    void *k_bytes = malloc((size_t)cache_count * es), *v_bytes = malloc((size_t)cache_count * es);
    int32_t *positions = malloc((size_t)n_tok * sizeof(int32_t));
    test_tensor qt = {0}, kt = {0}, vt = {0}, pt = {0}, dst = {0};
    strata_status status = q && k && v && k_dec && v_dec && k_bytes && v_bytes && positions
                               ? STRATA_OK
                               : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status)
        goto fail;
    fill_gauss(q, q_count, 1.0f);
    fill_gauss(k, cache_count, 1.0f);
    fill_gauss(v, cache_count, 1.0f);
    for (int64_t t = 0; t < n_tok; t++)
        positions[t] = (int32_t)(c->n_past + t * step);
    for (int64_t row = 0; row < n_ctx; row++)
        if (!attention_row_seen(row, positions, n_tok, n_kv, c->window))
            for (int64_t i = row * head_dim * n_kv_heads; i < (row + 1) * head_dim * n_kv_heads; i++)
                k[i] = v[i] = NAN;
    to_cache(c->dtype, k, k_bytes, k_dec, cache_count);
    to_cache(c->dtype, v, v_bytes, v_dec, cache_count);
    for (int64_t i = 0; i < cache_count; i++) /* the reference weighs every row, unseen ones by 0 */
        if (isnan(k_dec[i]))
            k_dec[i] = v_dec[i] = 0.0f;
    if ((status = tensor_new(&qt, DTYPE_F32, head_dim, n_heads, n_tok, 1, q, err)) ||
        (status = tensor_new(&kt, c->dtype, head_dim, n_kv_heads, n_ctx, 1, k_bytes, err)) ||
        (status = tensor_new(&vt, c->dtype, head_dim, n_kv_heads, n_ctx, 1, v_bytes, err)) ||
        (status = tensor_new(&pt, DTYPE_I32, n_tok, 1, 1, 1, positions, err)) ||
        (status = tensor_new(&dst, DTYPE_F32, head_dim, n_heads, n_tok, 1, NULL, err)) ||
        (status = output_alloc(out, q_count, err)))
        goto fail;
    backend_op op = {.kind = OP_ATTENTION, .dst = &dst.t, .src = {&qt.t, &kt.t, &vt.t, &pt.t}};
    op.params.attention.n_kv = n_kv;
    op.params.attention.scale = 1.0f / sqrtf((float)head_dim);
    op.params.attention.sliding_window = c->window;
    op.params.attention.softcap = c->softcap;
    if ((status = run(&op, err)) || (status = tensor_read(&dst, out->got, (size_t)q_count * sizeof(float), err)))
        goto fail;
    ref_attention(q, k_dec, v_dec, positions, head_dim, n_heads, n_kv_heads, n_tok, n_kv,
                  (double)op.params.attention.scale, c->window, c->softcap, out->ref);
fail:
    tensor_release(&qt);
    tensor_release(&kt);
    tensor_release(&vt);
    tensor_release(&pt);
    tensor_release(&dst);
    free(q);
    free(k);
    free(v);
    free(k_dec);
    free(v_dec);
    free(k_bytes);
    free(v_bytes);
    free(positions);
    return status;
}

static size_t element_bytes(strata_dtype dtype)
{
    return dtype == DTYPE_F32 ? 4 : 2;
}

static float decode(strata_dtype dtype, const void *p)
{
    uint16_t h;
    float f;
    if (dtype == DTYPE_F32) {
        memcpy(&f, p, 4);
        return f;
    }
    memcpy(&h, p, 2);
    return dtype == DTYPE_F16 ? fp16_to_f32(h) : bf16_to_f32(h);
}

static void encode(strata_dtype dtype, void *p, float f)
{
    uint16_t h;
    if (dtype == DTYPE_F32) {
        memcpy(p, &f, 4);
        return;
    }
    h = dtype == DTYPE_F16 ? f32_to_fp16(f) : f32_to_bf16(f);
    memcpy(p, &h, 2);
}

/* COPY [n0, n1]; when strided, the source is read transposed (nb[0] is a
 * whole row of the stored matrix) and written into every other row of dst. */
static strata_status run_copy_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t n0 = c->ne[0], n1 = c->ne[1], count = n0 * n1;
    size_t se = element_bytes(c->src_dtype), de = element_bytes(c->dtype);
    int64_t dst_rows = c->flag ? 2 * n1 : n1;
    char *src_bytes = malloc((size_t)count * se), *dst_bytes = calloc((size_t)(n0 * dst_rows), de);
    test_tensor st = {0}, dt = {0};
    strata_status status = src_bytes && dst_bytes ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status || (status = output_alloc(out, count, err)))
        goto fail;
    for (int64_t i = 0; i < count; i++)
        encode(c->src_dtype, src_bytes + (size_t)i * se, rng_gauss() * 3.0f);
    /* stored as [n1, n0] when strided, so that element (i0, i1) sits at i0 * n1 + i1 */
    if ((status = tensor_new(&st, c->src_dtype, c->flag ? n1 : n0, c->flag ? n0 : n1, 1, 1, src_bytes, err)) ||
        (status = tensor_new(&dt, c->dtype, n0, dst_rows, 1, 1, dst_bytes, err)))
        goto fail;
    strata_tensor src_view = st.t, dst_view = dt.t;
    if (c->reshape && !tensor_init_contiguous(&dst_view, c->dtype, n0 * n1, 1, 1, 1)) {
        status = strata_fail(err, STRATA_INVALID_INPUT, "bad reshape");
        goto fail;
    }
    dst_view.buffer = dt.t.buffer;
    dst_view.host_data = dt.t.host_data;
    src_view.ne[0] = n0;
    src_view.ne[1] = n1;
    if (c->flag) {
        src_view.nb[0] = (size_t)n1 * se;
        src_view.nb[1] = se;
        dst_view.ne[1] = n1;
        dst_view.nb[1] = 2 * (size_t)n0 * de;
        dst_view.nb[2] = dst_view.nb[3] = dst_view.nb[1] * (size_t)n1;
    }
    backend_op op = {.kind = OP_COPY, .dst = &dst_view, .src = {&src_view}};
    if ((status = run(&op, err)) || (status = tensor_read(&dt, dst_bytes, (size_t)(n0 * dst_rows) * de, err)))
        goto fail;
    for (int64_t i1 = 0; i1 < n1; i1++)
        for (int64_t i0 = 0; i0 < n0; i0++) {
            size_t src_index = c->flag ? (size_t)(i0 * n1 + i1) : (size_t)(i1 * n0 + i0);
            size_t dst_index = c->flag ? (size_t)(2 * i1 * n0 + i0) : (size_t)(i1 * n0 + i0);
            char rounded[4];
            encode(c->dtype, rounded, decode(c->src_dtype, src_bytes + src_index * se));
            out->ref[i1 * n0 + i0] = decode(c->dtype, rounded);
            out->got[i1 * n0 + i0] = decode(c->dtype, dst_bytes + dst_index * de);
        }
fail:
    tensor_release(&st);
    tensor_release(&dt);
    free(src_bytes);
    free(dst_bytes);
    return status;
}

/* TOPK: exact indices, with a tie for the top in every column when k > 1
 * (the lower index must come first). */
static strata_status run_topk_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t n = c->ne[0], n_tok = c->ne[1], k = c->ne[2];
    float *x = malloc((size_t)(n * n_tok) * sizeof(float));
    int32_t *got = malloc((size_t)(k * n_tok) * sizeof(int32_t)), *want = malloc((size_t)(k * n_tok) * sizeof(int32_t));
    test_tensor xt = {0}, dst = {0};
    strata_status status = x && got && want ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status)
        goto fail;
    fill_gauss(x, n * n_tok, 1.0f);
    for (int64_t t = 0; t < n_tok && n > 1; t++) {
        x[t * n + (int64_t)(rng_next() % (uint64_t)n)] = 10.0f;
        x[t * n + (int64_t)(rng_next() % (uint64_t)n)] = 10.0f;
    }
    if ((status = tensor_new(&xt, DTYPE_F32, n, n_tok, 1, 1, x, err)) ||
        (status = tensor_new(&dst, DTYPE_I32, k, n_tok, 1, 1, NULL, err)) || (status = output_alloc(out, k * n_tok, err)))
        goto fail;
    backend_op op = {.kind = OP_TOPK, .dst = &dst.t, .src = {&xt.t}};
    if ((status = run(&op, err)) || (status = tensor_read(&dst, got, (size_t)(k * n_tok) * sizeof(int32_t), err)))
        goto fail;
    ref_topk(x, n, n_tok, k, want);
    for (int64_t i = 0; i < k * n_tok; i++) {
        out->got[i] = (float)got[i];
        out->ref[i] = (double)want[i];
    }
fail:
    tensor_release(&xt);
    tensor_release(&dst);
    free(x);
    free(got);
    free(want);
    return status;
}

/* k distinct expert ids per token, drawn at random (a partial shuffle). */
static void random_ids(int32_t *ids, int64_t k, int64_t n_tok, int64_t n_expert)
{
    int32_t order[512];
    for (int64_t t = 0; t < n_tok; t++) {
        for (int64_t e = 0; e < n_expert; e++)
            order[e] = (int32_t)e;
        for (int64_t j = 0; j < k; j++) {
            int64_t pick = j + (int64_t)(rng_next() % (uint64_t)(n_expert - j));
            int32_t swap = order[j];
            order[j] = order[pick];
            order[pick] = swap;
            ids[t * k + j] = order[j];
        }
    }
}

/* MOE_WEIGHTS: softmax-like positive probabilities at random ids. */
static strata_status run_moe_weights_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t n = c->ne[0], n_tok = c->ne[1], k = c->ne[2];
    float *p = malloc((size_t)(n * n_tok) * sizeof(float));
    int32_t *ids = malloc((size_t)(k * n_tok) * sizeof(int32_t));
    test_tensor pt = {0}, it = {0}, dst = {0};
    strata_status status = p && ids ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status)
        goto fail;
    for (int64_t i = 0; i < n * n_tok; i++)
        p[i] = (float)rng_uniform();
    random_ids(ids, k, n_tok, n);
    if ((status = tensor_new(&pt, DTYPE_F32, n, n_tok, 1, 1, p, err)) ||
        (status = tensor_new(&it, DTYPE_I32, k, n_tok, 1, 1, ids, err)) ||
        (status = tensor_new(&dst, DTYPE_F32, k, n_tok, 1, 1, NULL, err)) || (status = output_alloc(out, k * n_tok, err)))
        goto fail;
    backend_op op = {.kind = OP_MOE_WEIGHTS, .dst = &dst.t, .src = {&pt.t, &it.t}};
    op.params.moe_weights.normalize = c->flag;
    if ((status = run(&op, err)) || (status = tensor_read(&dst, out->got, (size_t)out->n * sizeof(float), err)))
        goto fail;
    for (int64_t t = 0; t < n_tok; t++) {
        double sum = 0.0;
        for (int64_t j = 0; j < k; j++)
            sum += p[t * n + ids[t * k + j]];
        for (int64_t j = 0; j < k; j++)
            out->ref[t * k + j] = p[t * n + ids[t * k + j]] / (c->flag ? sum : 1.0);
    }
fail:
    tensor_release(&pt);
    tensor_release(&it);
    tensor_release(&dst);
    free(p);
    free(ids);
    return status;
}

/* MATMUL_ID: n_expert random matrices of the case's dtype, k random experts per token. */
static strata_status run_matmul_id_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t n_in = c->ne[0], n_out = c->ne[1], n_tok = c->ne[2], n_expert = c->ne[3], k = c->n_used;
    int64_t k_x = c->flag ? k : 1;
    void *weight_bytes = NULL;
    float *weights = NULL, *x = malloc((size_t)(n_in * k_x * n_tok) * sizeof(float));
    int32_t *ids = malloc((size_t)(k * n_tok) * sizeof(int32_t));
    test_tensor w = {0}, xt = {0}, it = {0}, dst = {0};
    strata_status status = x && ids ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status || (status = random_weights(c->dtype, n_in, n_out * n_expert, &weight_bytes, &weights, err)))
        goto fail;
    fill_gauss(x, n_in * k_x * n_tok, 1.0f);
    random_ids(ids, k, n_tok, n_expert);
    if ((status = tensor_new(&w, c->dtype, n_in, n_out, n_expert, 1, weight_bytes, err)) ||
        (status = tensor_new(&xt, DTYPE_F32, n_in, k_x, n_tok, 1, x, err)) ||
        (status = tensor_new(&it, DTYPE_I32, k, n_tok, 1, 1, ids, err)) ||
        (status = tensor_new(&dst, DTYPE_F32, n_out, k, n_tok, 1, NULL, err)) ||
        (status = output_alloc(out, n_out * k * n_tok, err)))
        goto fail;
    if (!(out->scale2 = calloc((size_t)out->n, sizeof *out->scale2))) {
        status = strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    backend_op op = {.kind = OP_MATMUL_ID, .dst = &dst.t, .src = {&w.t, &xt.t, &it.t}};
    if ((status = run(&op, err)) || (status = tensor_read(&dst, out->got, (size_t)out->n * sizeof(float), err)))
        goto fail;
    for (int64_t t = 0; t < n_tok; t++)
        ref_matmul_id(weights, x + t * k_x * n_in, c->flag ? n_in : 0, ids + t * k, k, n_in, n_out,
                      out->ref + t * k * n_out, out->scale2 + t * k * n_out);
fail:
    tensor_release(&w);
    tensor_release(&xt);
    tensor_release(&it);
    tensor_release(&dst);
    free(weight_bytes);
    free(weights);
    free(x);
    free(ids);
    return status;
}

/* MOE_SUM: dst[:, t] = sum_j w[j, t] y[:, j, t]; with the flag, sigmoid(w)
 * in place of w (weights then of either sign, up to about +-8). */
static strata_status run_moe_sum_case(const op_case *c, case_output *out, strata_error *err)
{
    int64_t n = c->ne[0], k = c->ne[1], n_tok = c->ne[2];
    float *y = malloc((size_t)(n * k * n_tok) * sizeof(float)), *wt = malloc((size_t)(k * n_tok) * sizeof(float));
    test_tensor yt = {0}, w = {0}, dst = {0};
    strata_status status = y && wt ? STRATA_OK : strata_fail(err, STRATA_OUT_OF_MEMORY, "out of memory");
    if (status)
        goto fail;
    fill_gauss(y, n * k * n_tok, 1.0f);
    for (int64_t i = 0; i < k * n_tok; i++)
        wt[i] = c->flag ? 8.0f * (2.0f * (float)rng_uniform() - 1.0f) : (float)rng_uniform();
    if ((status = tensor_new(&yt, DTYPE_F32, n, k, n_tok, 1, y, err)) ||
        (status = tensor_new(&w, DTYPE_F32, k, n_tok, 1, 1, wt, err)) ||
        (status = tensor_new(&dst, DTYPE_F32, n, n_tok, 1, 1, NULL, err)) || (status = output_alloc(out, n * n_tok, err)))
        goto fail;
    backend_op op = {.kind = OP_MOE_SUM, .dst = &dst.t, .src = {&yt.t, &w.t}};
    op.params.moe_sum.sigmoid = c->flag;
    if ((status = run(&op, err)) || (status = tensor_read(&dst, out->got, (size_t)out->n * sizeof(float), err)))
        goto fail;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n; i++) {
            double sum = 0.0;
            for (int64_t j = 0; j < k; j++) {
                double weight = c->flag ? 1.0 / (1.0 + exp(-(double)wt[t * k + j])) : (double)wt[t * k + j];
                sum += weight * y[(t * k + j) * n + i];
            }
            out->ref[t * n + i] = sum;
        }
fail:
    tensor_release(&yt);
    tensor_release(&w);
    tensor_release(&dst);
    free(y);
    free(wt);
    return status;
}

static strata_status run_case(const op_case *c, int case_index, case_output *out, strata_error *err)
{
    switch (c->op) {
    case OP_MATMUL: return run_matmul_case(c, out, err);
    case OP_GET_ROWS: return run_get_rows_case(c, out, err);
    case OP_ARGMAX: return run_argmax_case(c, out, err);
    case OP_ROPE: return run_rope_case(c, out, err);
    case OP_KV_STORE: return run_kv_store_case(c, out, err);
    case OP_ATTENTION: return run_attention_case(c, out, err);
    case OP_COPY: return run_copy_case(c, out, err);
    case OP_TOPK: return run_topk_case(c, out, err);
    case OP_MOE_WEIGHTS: return run_moe_weights_case(c, out, err);
    case OP_MATMUL_ID: return run_matmul_id_case(c, out, err);
    case OP_MOE_SUM: return run_moe_sum_case(c, out, err);
    default: return run_float_case(c, case_index, out, err);
    }
}

static void describe(const op_case *c, char *text, size_t size)
{
    strata_dtype dtype = c->op == OP_MATMUL || c->op == OP_MATMUL_ID || c->op == OP_GET_ROWS || c->op == OP_KV_STORE ||
                                 c->op == OP_ATTENTION || c->op == OP_COPY
                             ? c->dtype
                             : DTYPE_F32;
    snprintf(text, size, "%-9s %s%s%-5s [%lld, %lld, %lld, %lld]%s%s", op_kind_name(c->op),
             c->op == OP_COPY ? dtype_name(c->src_dtype) : "", c->op == OP_COPY ? "->" : "", dtype_name(dtype),
             (long long)c->ne[0], (long long)c->ne[1], (long long)c->ne[2], (long long)c->ne[3],
             c->flag ? " flag" : c->reshape ? " reshape" : "", c->window ? " window" : c->softcap > 0 ? " softcap" : "");
    /* appended only when set, so the older cases keep their text (their seed) */
    size_t used = strlen(text);
    if (c->position_step > 1 && used < size)
        used += (size_t)snprintf(text + used, size - used, " step %d", c->position_step);
    if (c->kv_pad > 0 && used < size)
        used += (size_t)snprintf(text + used, size - used, " kv_pad %d", c->kv_pad);
    if (c->n_used > 0 && used < size)
        snprintf(text + used, size - used, " k %d", c->n_used);
}

/* Runs every case on the open device; returns the number of failures. */
/* Whether the device's backend says, in its registration, that it does not
 * compute the weight dtype of a matmul or get_rows case. */
static bool registration_refuses(const op_case *c)
{
    const backend_registration *registration = backend_find(device->ops->name);
    if (c->op != OP_MATMUL && c->op != OP_GET_ROWS && c->op != OP_MATMUL_ID)
        return false;
    return registration && registration->weight_dtype_supported && !registration->weight_dtype_supported(c->dtype);
}

/* Whether the device's backend says, in its registration, that it does not
 * run the case's op kind (op_kind_supported): supports() must then refuse
 * it too, and the suite counts it as refused. Every backend runs every
 * kind today; the check keeps the two answers in step. */
static bool registration_refuses_kind(const op_case *c)
{
    const backend_registration *registration = backend_find(device->ops->name);
    return registration && registration->op_kind_supported && !registration->op_kind_supported(c->op);
}

static int run_suite(const char *label, const op_case *cases, int n_cases)
{
    int failures = 0, refused = 0, missing = 0;
    double worst_ratio = 0.0;
    char worst[160] = "none", refused_types[160] = "";
    for (int i = 0; i < n_cases; i++) {
        const op_case *c = &cases[i];
        /* seeded from the case's content, so adding a case leaves the others' data alone */
        char text[160];
        describe(c, text, sizeof text);
        rng_state = 0xCBF29CE484222325ULL;
        for (const char *p = text; *p; p++)
            rng_state = (rng_state ^ (unsigned char)*p) * 0x100000001B3ULL;
        case_output out = {0};
        strata_error err = {0};
        strata_status status = run_case(c, i, &out, &err);
        if (registration_refuses_kind(c)) {
            if (status != STRATA_UNSUPPORTED) {
                printf("FAIL %s %s: the registration refuses %s but the op %s\n", label, text, op_kind_name(c->op),
                       status == STRATA_OK ? "ran" : err.message);
                failures++;
            }
            missing++;
        } else if (registration_refuses(c)) {
            /* the planner keeps these weights off the device: supports()
             * must refuse them too */
            if (status != STRATA_UNSUPPORTED) {
                printf("FAIL %s %s: the registration refuses %s weights but the op %s\n", label, text,
                       dtype_name(c->dtype), status == STRATA_OK ? "ran" : err.message);
                failures++;
            } else if (!strstr(refused_types, dtype_name(c->dtype)) &&
                       strlen(refused_types) + 12 < sizeof refused_types) {
                strcat(refused_types, " ");
                strcat(refused_types, dtype_name(c->dtype));
            }
            refused++;
        } else if (status != STRATA_OK) {
            printf("FAIL %s %s: %s (%s)\n", label, text, strata_status_name(status), err.message);
            failures++;
        } else {
            double nmse = out.scale2 ? ref_nmse_scaled(out.got, out.ref, out.scale2, out.n)
                                     : ref_nmse(out.got, out.ref, out.n);
            if (!(nmse <= c->max_nmse)) {
                printf("FAIL %s %s: nmse %.3g > threshold %.3g\n", label, text, nmse, c->max_nmse);
                failures++;
            } else if (c->max_nmse > 0 && nmse / c->max_nmse > worst_ratio) {
                worst_ratio = nmse / c->max_nmse;
                snprintf(worst, sizeof worst, "%s", text);
            }
        }
        free(out.got);
        free(out.ref);
        free(out.scale2);
    }
    printf("%s: %d cases, %d failed; closest to its bound: %s at %.2g of it\n", label, n_cases - refused - missing, failures,
           worst, worst_ratio);
    if (refused)
        printf("%s: %d cases refused, as its registration says, for the weight formats%s\n", label, refused,
               refused_types);
    if (missing)
        printf("%s: %d cases refused, as its registration says, for their op kinds\n", label, missing);
    return failures;
}

/* Ops the contract does not cover are refused by supports() and by run_op
 * with STRATA_INVALID_INPUT, never a crash. */
static int check_refusals(const char *label)
{
    int failures = 0;
    test_tensor w = {0}, x = {0}, dst = {0}, pos = {0};
    strata_error err = {0};
    int32_t bad_position[1] = {100};
    if (tensor_new(&w, DTYPE_F32, 64, 8, 1, 1, NULL, &err) || tensor_new(&x, DTYPE_F32, 32, 2, 1, 1, NULL, &err) ||
        tensor_new(&dst, DTYPE_F32, 8, 2, 1, 1, NULL, &err) ||
        tensor_new(&pos, DTYPE_I32, 1, 1, 1, 1, bad_position, &err)) {
        printf("FAIL %s refusals: setup: %s\n", label, err.message);
        failures++;
        goto done;
    }
    /* matmul with n_in 64 vs 32 */
    backend_op mismatched = {.kind = OP_MATMUL, .dst = &dst.t, .src = {&w.t, &x.t}};
    if (device->ops->supports(device->ctx, &mismatched) ||
        device->ops->run_op(device->ctx, &mismatched, &err) != STRATA_INVALID_INPUT || !err.message[0]) {
        printf("FAIL %s refusals: a matmul with mismatched inputs was accepted\n", label);
        failures++;
    }
    /* an integer weight */
    strata_tensor int_weight = w.t;
    int_weight.dtype = DTYPE_I32;
    backend_op int_matmul = {.kind = OP_MATMUL, .dst = &dst.t, .src = {&int_weight, &x.t}};
    if (device->ops->supports(device->ctx, &int_matmul)) {
        printf("FAIL %s refusals: supports() accepts an i32 matmul weight\n", label);
        failures++;
    }
    /* a missing source */
    backend_op missing = {.kind = OP_ADD, .dst = &dst.t, .src = {&dst.t, NULL}};
    if (device->ops->supports(device->ctx, &missing) || device->ops->run_op(device->ctx, &missing, &err) == STRATA_OK) {
        printf("FAIL %s refusals: add without src1 was accepted\n", label);
        failures++;
    }
    /* kv_store at a position past the cache: [8, 2] cache, position 100 */
    strata_tensor row = x.t;
    row.ne[0] = 8;
    row.ne[1] = 1;
    row.nb[1] = 8 * sizeof(float);
    row.nb[2] = row.nb[3] = row.nb[1];
    backend_op store = {.kind = OP_KV_STORE, .dst = &dst.t, .src = {&row, &pos.t}};
    err.message[0] = '\0';
    if (device->ops->run_op(device->ctx, &store, &err) == STRATA_OK || !err.message[0]) {
        printf("FAIL %s refusals: kv_store past the end of the cache was accepted\n", label);
        failures++;
    }
    /* an expert id past the experts: [64, 4, 2] experts, id 5 (CPU: at run
     * time; a backend without the op refuses it) */
    strata_tensor experts = w.t, expert_in = x.t, expert_out = dst.t, ids = pos.t;
    experts.ne[0] = 32, experts.ne[1] = 4, experts.ne[2] = 2;
    experts.nb[1] = 32 * sizeof(float), experts.nb[2] = 128 * sizeof(float), experts.nb[3] = 256 * sizeof(float);
    expert_in.ne[1] = 1, expert_in.nb[2] = expert_in.nb[3] = 32 * sizeof(float);
    expert_out.ne[0] = 4, expert_out.ne[1] = 1, expert_out.nb[1] = expert_out.nb[2] = expert_out.nb[3] = 4 * sizeof(float);
    int32_t bad_id[1] = {5};
    strata_status upload = device->ops->upload(device->ctx, pos.buffer, 0, bad_id, sizeof bad_id, &err);
    backend_op routed = {.kind = OP_MATMUL_ID, .dst = &expert_out, .src = {&experts, &expert_in, &ids}};
    err.message[0] = '\0';
    if (upload != STRATA_OK || device->ops->run_op(device->ctx, &routed, &err) == STRATA_OK || !err.message[0]) {
        printf("FAIL %s refusals: matmul_id with an expert id past the experts was accepted\n", label);
        failures++;
    }
done:
    tensor_release(&w);
    tensor_release(&x);
    tensor_release(&dst);
    tensor_release(&pos);
    return failures;
}

/* --- CPU internals: kernel choice and thread pool --------------------------- */

static int check_kernel_choice(void)
{
    int failures = 0;
    struct {
        strata_dtype dtype;
        cpu_isa isa;
        cpu_kernel_choice want;
    } expect[] = {
        {DTYPE_Q4_K, CPU_ISA_AVX2, CPU_KERNEL_AVX2},     {DTYPE_Q4_K, CPU_ISA_SCALAR, CPU_KERNEL_SCALAR},
        {DTYPE_Q8_0, CPU_ISA_AVX2, CPU_KERNEL_AVX2},     {DTYPE_Q6_K, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_F16, CPU_ISA_AVX2, CPU_KERNEL_AVX2},      {DTYPE_Q4_0, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_Q5_K, CPU_ISA_AVX2, CPU_KERNEL_AVX2},     {DTYPE_Q2_K, CPU_ISA_AVX2, CPU_KERNEL_AVX2}  ,
        {DTYPE_I32, CPU_ISA_AVX2, CPU_KERNEL_NONE},      {DTYPE_Q8_K, CPU_ISA_SCALAR, CPU_KERNEL_NONE},
        {DTYPE_Q3_K, CPU_ISA_AVX2, CPU_KERNEL_AVX2},     {DTYPE_Q4_1, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_Q5_0, CPU_ISA_AVX2, CPU_KERNEL_AVX2},     {DTYPE_Q5_1, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_Q8_1, CPU_ISA_AVX2, CPU_KERNEL_NONE},
        {DTYPE_IQ2_XXS, CPU_ISA_AVX2, CPU_KERNEL_AVX2},  {DTYPE_IQ2_XS, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_IQ2_S, CPU_ISA_AVX2, CPU_KERNEL_AVX2},    {DTYPE_IQ3_XXS, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_IQ3_S, CPU_ISA_AVX2, CPU_KERNEL_AVX2},    {DTYPE_IQ1_S, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_IQ1_M, CPU_ISA_AVX2, CPU_KERNEL_AVX2},    {DTYPE_IQ4_NL, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_IQ4_XS, CPU_ISA_AVX2, CPU_KERNEL_AVX2},   {DTYPE_MXFP4, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_TQ2_0, CPU_ISA_AVX2, CPU_KERNEL_AVX2},    {DTYPE_TQ1_0, CPU_ISA_AVX2, CPU_KERNEL_AVX2},
        {DTYPE_IQ2_XS, CPU_ISA_SCALAR, CPU_KERNEL_SCALAR},
        /* AVX-512 where a dtype has an AVX-512 tile, else its AVX2 kernels */
        {DTYPE_Q8_0, CPU_ISA_AVX512, CPU_KERNEL_AVX512}, {DTYPE_Q4_0, CPU_ISA_AVX512, CPU_KERNEL_AVX512},
        {DTYPE_Q5_0, CPU_ISA_AVX512, CPU_KERNEL_AVX512}, {DTYPE_IQ4_NL, CPU_ISA_AVX512, CPU_KERNEL_AVX512},
        {DTYPE_Q4_K, CPU_ISA_AVX512, CPU_KERNEL_AVX512}, {DTYPE_Q6_K, CPU_ISA_AVX512, CPU_KERNEL_AVX512},
        {DTYPE_Q2_K, CPU_ISA_AVX512, CPU_KERNEL_AVX512}, {DTYPE_Q4_K, CPU_ISA_SCALAR, CPU_KERNEL_SCALAR},
        {DTYPE_Q4_1, CPU_ISA_AVX512, CPU_KERNEL_AVX2},   {DTYPE_IQ2_XS, CPU_ISA_AVX512, CPU_KERNEL_AVX2},
        {DTYPE_F16, CPU_ISA_AVX512, CPU_KERNEL_AVX2},    {DTYPE_I32, CPU_ISA_AVX512, CPU_KERNEL_NONE},
        /* ... or an AVX-512 machine's own dot product (IQ3_S's gather) */
        {DTYPE_IQ3_S, CPU_ISA_AVX512, CPU_KERNEL_AVX512},
    };
#if !(defined(__x86_64__) || defined(__i386__))
    /* no AVX2 or AVX-512 kernels exist off x86: those expectations fall back */
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        if (expect[i].want == CPU_KERNEL_AVX2 || expect[i].want == CPU_KERNEL_AVX512)
            expect[i].want = CPU_KERNEL_SCALAR;
#endif
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        cpu_kernel_choice got = cpu_kernel_choose(expect[i].dtype, expect[i].isa);
        if (got != expect[i].want || (got != CPU_KERNEL_NONE && !cpu_kernel_dot(expect[i].dtype, got))) {
            printf("FAIL kernel choice for %s on isa %d: got %d, want %d\n", dtype_name(expect[i].dtype),
                   (int)expect[i].isa, (int)got, (int)expect[i].want);
            failures++;
        }
    }
    /* an AVX-512 choice names a tile of its own and the AVX2 dot product */
    if (cpu_kernel_tile(DTYPE_Q8_0, CPU_KERNEL_AVX512) == cpu_kernel_tile(DTYPE_Q8_0, CPU_KERNEL_AVX2) ||
        cpu_kernel_dot(DTYPE_Q8_0, CPU_KERNEL_AVX512) != cpu_kernel_dot(DTYPE_Q8_0, CPU_KERNEL_AVX2)) {
#if defined(__x86_64__) || defined(__i386__)
        printf("FAIL kernel choice: the AVX-512 choice for q8_0 does not name its tile and the AVX2 dot\n");
        failures++;
#endif
    }
#if defined(__x86_64__) || defined(__i386__)
    if (cpu_kernel_dot(DTYPE_IQ3_S, CPU_KERNEL_AVX512) != cpu_dot_iq3_s_avx2_gather ||
        cpu_kernel_dot(DTYPE_IQ3_S, CPU_KERNEL_AVX2) != cpu_dot_iq3_s_avx2) {
        printf("FAIL kernel choice: iq3_s's gather is not the AVX-512 choice alone\n");
        failures++;
    }
#endif
    /* decode takes a matrix-vector kernel only where the chosen instruction
     * set has one for the format */
    if (cpu_kernel_gemv(DTYPE_Q4_K, CPU_KERNEL_AVX2) || cpu_kernel_gemv(DTYPE_Q4_K, CPU_KERNEL_SCALAR) ||
        cpu_kernel_gemv(DTYPE_Q8_0, CPU_KERNEL_AVX512) || cpu_kernel_gemv(DTYPE_Q4_0, CPU_KERNEL_SCALAR)) {
        printf("FAIL kernel choice: a matrix-vector kernel where none should be\n");
        failures++;
    }
#if defined(__x86_64__) || defined(__i386__)
    if (!cpu_kernel_gemv(DTYPE_Q4_K, CPU_KERNEL_AVX512) || !cpu_kernel_gemv(DTYPE_Q4_0, CPU_KERNEL_AVX512)) {
        printf("FAIL kernel choice: no AVX-512 matrix-vector kernel for q4_k or q4_0\n");
        failures++;
    }
    if (cpu_kernel_gemv(DTYPE_Q4_0, CPU_KERNEL_AVX2) != cpu_gemv_q4_0_avx2 ||
        cpu_kernel_gemv(DTYPE_Q8_0, CPU_KERNEL_AVX2) != cpu_gemv_q8_0_avx2) {
        printf("FAIL kernel choice: q4_0 and q8_0 do not take their AVX2 matrix-vector kernels\n");
        failures++;
    }
#endif
    /* the environment caps the instruction set: STRATA_CPU_AVX2 below
     * AVX-512 only, STRATA_CPU_SCALAR always, "0" not at all */
    cpu_isa hardware = cpu_hardware_isa();
    struct {
        const char *name, *value;
        cpu_isa want;
    } caps[] = {
        {"STRATA_CPU_AVX2", "1", hardware < CPU_ISA_AVX2 ? hardware : CPU_ISA_AVX2},
        {"STRATA_CPU_AVX2", "0", hardware},
        {"STRATA_CPU_SCALAR", "1", CPU_ISA_SCALAR},
    };
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        setenv(caps[i].name, caps[i].value, 1);
        cpu_isa got = cpu_detect_isa();
        unsetenv(caps[i].name);
        if (got != caps[i].want) {
            printf("FAIL isa with %s=%s: got %d, want %d\n", caps[i].name, caps[i].value, (int)got, (int)caps[i].want);
            failures++;
        }
    }
    if (cpu_detect_isa() != hardware) {
        printf("FAIL isa with no variable set: got %d, the hardware's is %d\n", (int)cpu_detect_isa(), (int)hardware);
        failures++;
    }
    /* every weight type of the suite has a kernel */
    for (size_t i = 0; i < sizeof weight_types / sizeof weight_types[0]; i++)
        if (cpu_kernel_choose(weight_types[i].dtype, CPU_ISA_SCALAR) != CPU_KERNEL_SCALAR) {
            printf("FAIL kernel choice: no scalar kernel for %s\n", dtype_name(weight_types[i].dtype));
            failures++;
        }
    return failures;
}

/* Every AVX2 dot product against its scalar twin on the same bytes: they may
 * differ only by float summation order, so the bound is a small fraction of
 * sum |w_i a_i| (the conformance nmse bounds are far looser, sized for the
 * activation rounding both share). Three kinds of rows: gaussian; activations
 * all of one magnitude (every quant +-127, the widest int16 pair sums); and
 * weights of one magnitude with random signs (the largest weight quants). */
static int check_dot_agreement(void)
{
    enum { N = 4096 };
    static float w_values[N], x_values[N], w_decoded[N];
    static uint8_t w_bytes[N * 4], act_bytes[N * 4];
    int failures = 0, checked = 0;
    if (cpu_hardware_isa() < CPU_ISA_AVX2) {
        printf("dot agreement: skipped (no AVX2 here)\n");
        return 0;
    }
    for (size_t t = 0; t < sizeof weight_types / sizeof weight_types[0]; t++) {
        strata_dtype dtype = weight_types[t].dtype;
        const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(dtype);
        if (!kernel || !kernel->avx2 || kernel->act == CPU_ACT_F32)
            continue;
        for (int pattern = 0; pattern < 3; pattern++)
            for (int seed = 1; seed <= 4; seed++) {
                rng_state = 0x9E3779B97F4A7C15ULL * (uint64_t)(16 * t + 4 * pattern + seed);
                for (int64_t i = 0; i < N; i++) {
                    float sign_w = rng_uniform() < 0.5 ? -1.0f : 1.0f, sign_x = rng_uniform() < 0.5 ? -1.0f : 1.0f;
                    w_values[i] = pattern == 2 ? 0.7f * sign_w : 0.5f * rng_gauss();
                    x_values[i] = pattern == 1 ? 1.3f * sign_x : rng_gauss();
                }
                strata_error err = {0};
                if (quant_quantize_row(dtype, w_values, w_bytes, N, &err) != STRATA_OK ||
                    quant_dequantize_row(dtype, w_bytes, w_decoded, N, &err) != STRATA_OK) {
                    printf("FAIL dot agreement %s: %s\n", dtype_name(dtype), err.message);
                    failures++;
                    continue;
                }
                cpu_quantize_activation(kernel->act, x_values, act_bytes, N, CPU_ISA_SCALAR);
                double magnitude = 0.0;
                for (int64_t i = 0; i < N; i++)
                    magnitude += fabs((double)w_decoded[i] * x_values[i]);
                float scalar = kernel->scalar(N, w_bytes, act_bytes);
                /* the AVX2 dot product, and the AVX-512 machines' own where
                 * there is one (it uses AVX2 instructions only) */
                cpu_dot_fn dots[2] = {kernel->avx2, kernel->dot_avx512};
                for (int d = 0; d < 2 && dots[d]; d++) {
                    float got = dots[d](N, w_bytes, act_bytes);
                    checked++;
                    if (!(fabs((double)got - scalar) <= 1e-5 * magnitude + 1e-6)) {
                        printf("FAIL dot agreement %s (%s) pattern %d seed %d: %.9g, scalar %.9g (sum |w a| %.6g)\n",
                               dtype_name(dtype), d ? "dot_avx512" : "avx2", pattern, seed, got, scalar, magnitude);
                        failures++;
                    }
                }
            }
    }
    if (failures == 0)
        printf("dot agreement: ok (%d rows)\n", checked);
    return failures;
}

/* Every tiled kernel against the dot product of its format on the same
 * bytes: the scalar tile always, the AVX2 and AVX-512 tiles where the CPU
 * has them (whatever the environment asks of the backend), for
 * every token count a tile takes (1 .. CPU_TILE_TOKENS, or CPU_TILE_TOKENS_WIDE
 * for the kernels cpu_kernel_tile_tokens gives that many) and a few rows, on
 * the three kinds of rows of check_dot_agreement. Each output may differ
 * from the scalar dot product only by float summation order. */
static int check_tile_agreement(void)
{
    /* rows of 73 blocks of 32 (N_32: four of the AVX-512 tiles' chunks of
     * 16 and a part, not a multiple of 8) or 5 super-blocks of 256 (N_K: two of
     * the AVX-512 tiles' chunks of 2 and a part) */
    /* 11 rows: the AVX2 Q4_0, Q8_0 and Q4_K tiles take rows by eights (then the rest) */
    enum { N = 2336, N_32 = 2336, N_K = 1280, ROWS = 11, TOKENS = CPU_TILE_TOKENS_WIDE };
    static float w_values[N], x_values[TOKENS][N], w_decoded[ROWS][N], act_scales[N / 32][TOKENS];
    static int32_t act_sums[N / 32][TOKENS];
    static uint8_t w_bytes[ROWS][N * 4], act_bytes[TOKENS][N * 4];
    float got[TOKENS * ROWS];
    static const char *const variant_names[] = {"scalar", "avx2", "avx512"};
    cpu_isa hardware = cpu_hardware_isa();
    int failures = 0, checked = 0;
    for (size_t k = 0; k < sizeof weight_types / sizeof weight_types[0]; k++) {
        strata_dtype dtype = weight_types[k].dtype;
        const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(dtype);
        if (!kernel || !kernel->tile_scalar)
            continue;
        const int64_t n = kernel->act == CPU_ACT_Q8_K ? N_K : N_32;
        for (int pattern = 0; pattern < 3; pattern++) {
            rng_state = 0x9E3779B97F4A7C15ULL * (uint64_t)(4 * k + pattern + 1);
            strata_error err = {0};
            for (int r = 0; r < ROWS; r++) {
                for (int64_t i = 0; i < n; i++)
                    w_values[i] = pattern == 2 ? (rng_uniform() < 0.5 ? -0.7f : 0.7f) : 0.5f * rng_gauss();
                if (quant_quantize_row(dtype, w_values, w_bytes[r], n, &err) != STRATA_OK ||
                    quant_dequantize_row(dtype, w_bytes[r], w_decoded[r], n, &err) != STRATA_OK) {
                    printf("FAIL tile agreement %s: %s\n", dtype_name(dtype), err.message);
                    return failures + 1;
                }
            }
            for (int t = 0; t < TOKENS; t++) {
                for (int64_t i = 0; i < n; i++)
                    x_values[t][i] = pattern == 1 ? (rng_uniform() < 0.5 ? -1.3f : 1.3f) : rng_gauss();
                cpu_quantize_activation(kernel->act, x_values[t], act_bytes[t], n, CPU_ISA_SCALAR);
                if (kernel->act == CPU_ACT_Q8_0)
                    for (int b = 0; b < n / 32; b++) {
                        const block_q8_0 *block = (const block_q8_0 *)act_bytes[t] + b;
                        act_scales[b][t] = fp16_to_f32(block->d);
                        act_sums[b][t] = 0;
                        for (int i = 0; i < 32; i++)
                            act_sums[b][t] += block->qs[i];
                    }
                else
                    for (int b = 0; b < n / 256; b++)
                        act_scales[b][t] = ((const block_q8_K *)act_bytes[t])[b].d;
            }
            for (int variant = 0; variant < 3; variant++) {
                cpu_tile_fn tile_fn = variant == 0   ? kernel->tile_scalar
                                      : variant == 1 ? kernel->tile_avx2
                                                     : kernel->tile_avx512;
                if (!tile_fn || (variant == 1 && hardware < CPU_ISA_AVX2) || (variant == 2 && hardware < CPU_ISA_AVX512))
                    continue;
                static const cpu_kernel_choice variant_choices[] = {CPU_KERNEL_SCALAR, CPU_KERNEL_AVX2,
                                                                    CPU_KERNEL_AVX512};
                /* every tile takes up to CPU_TILE_TOKENS, whatever the matmul gives it */
                int max_tokens = cpu_kernel_tile_tokens(dtype, variant_choices[variant]);
                if (max_tokens < CPU_TILE_TOKENS)
                    max_tokens = CPU_TILE_TOKENS;
                for (int tokens = 1; tokens <= max_tokens; tokens++) {
                    for (int i = 0; i < TOKENS * ROWS; i++)
                        got[i] = NAN;
                    cpu_tile tile = {.n = n, .weight = (const char *)w_bytes, .weight_stride = sizeof w_bytes[0],
                                     .rows = ROWS, .act = (const char *)act_bytes,
                                     .act_stride = sizeof act_bytes[0], .act_scales = &act_scales[0][0],
                                     .act_sums = &act_sums[0][0],
                                     .act_scales_stride = TOKENS, .tokens = tokens, .dst = got, .dst_stride = ROWS};
                    tile_fn(&tile);
                    for (int t = 0; t < TOKENS; t++)
                        for (int r = 0; r < ROWS; r++) {
                            float value = got[t * ROWS + r];
                            if (t >= tokens) { /* past the tile: untouched */
                                if (!isnan(value)) {
                                    printf("FAIL tile agreement %s: %d tokens wrote token %d\n", dtype_name(dtype),
                                           tokens, t);
                                    failures++;
                                }
                                continue;
                            }
                            float dot = kernel->scalar(n, w_bytes[r], act_bytes[t]);
                            double magnitude = 0.0;
                            for (int64_t i = 0; i < n; i++)
                                magnitude += fabs((double)w_decoded[r][i] * x_values[t][i]);
                            checked++;
                            if (!(fabs((double)value - dot) <= 1e-5 * magnitude + 1e-6)) {
                                printf("FAIL tile agreement %s (%s) pattern %d, %d tokens, row %d token %d: tile %.9g, "
                                       "dot %.9g\n",
                                       dtype_name(dtype), variant_names[variant], pattern, tokens, r, t, value, dot);
                                failures++;
                            }
                        }
                }
            }
        }
    }
    if (failures == 0)
        printf("tile agreement: ok (%d outputs)\n", checked);
    return failures;
}

/* The AVX2 activation quantizers against the scalar ones, byte for byte
 * (they promise the same bytes for finite input), where the CPU has AVX2:
 * gaussian rows at several magnitudes, a block of zeros, subnormals, huge
 * values and halves exactly between two quants (block maximum 127, so
 * x * (1 / d) is x: ties round to even). The subnormal rows are also held
 * to their known result, all zeros. */
static int check_quantize_agreement(void)
{
    enum { N = 3 * 256 };
    static const cpu_act_format formats[] = {CPU_ACT_Q8_0, CPU_ACT_Q8_1, CPU_ACT_Q8_K};
    static const char *const format_names[] = {"q8_0", "q8_1", "q8_k"};
    static float x[N];
    static uint8_t want[N * 2], got[N * 2];
    if (cpu_hardware_isa() < CPU_ISA_AVX2) {
        printf("quantize agreement: skipped (no AVX2 on this CPU)\n");
        return 0;
    }
    int failures = 0, checked = 0;
    for (int pattern = 0; pattern < 5; pattern++) {
        rng_state = 0xA0761D6478BD642FULL * (uint64_t)(pattern + 1);
        for (int i = 0; i < N; i++) {
            switch (pattern) {
            case 0: x[i] = rng_gauss() * (float)pow(10.0, (double)(i / 64 % 5) - 2.0); break;
            case 1: x[i] = i < 256 ? 0.0f : rng_gauss(); break;
            case 2: x[i] = rng_gauss() * 1e-40f; break; /* subnormal */
            case 3: x[i] = rng_gauss() * 1e30f; break;
            default: /* every 32 and 256 values hold 127, the rest k + 0.5 */
                x[i] = i % 32 == 0 ? 127.0f : (float)((int)(rng_uniform() * 253.0) - 126) + 0.5f;
                if (rng_uniform() < 0.5)
                    x[i] = -x[i];
                break;
            }
        }
        for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
            size_t bytes = cpu_act_row_bytes(formats[f], N);
            memset(want, 0xA5, sizeof want);
            memset(got, 0x5A, sizeof got);
            cpu_quantize_activation(formats[f], x, want, N, CPU_ISA_SCALAR);
            cpu_quantize_activation(formats[f], x, got, N, CPU_ISA_AVX2);
            checked++;
            /* blocks whose scale's reciprocal overflows become zeros: every
             * byte (scale, sums and quants) of the scalar output is 0 */
            if (pattern == 2)
                for (size_t i = 0; i < bytes; i++)
                    if (want[i] != 0) {
                        printf("FAIL quantize %s of values near 1e-40: byte %zu is %u, not 0\n", format_names[f], i,
                               want[i]);
                        failures++;
                        break;
                    }
            if (memcmp(want, got, bytes) != 0) {
                size_t at = 0;
                while (want[at] == got[at])
                    at++;
                printf("FAIL quantize agreement %s pattern %d: byte %zu of %zu is %u, scalar %u\n", format_names[f],
                       pattern, at, bytes, got[at], want[at]);
                failures++;
            }
        }
    }
    printf("quantize agreement: %s (%d rows)\n", failures ? "FAILED" : "ok", checked);
    return failures;
}

/* Every matrix-vector kernel (decode) against the scalar dot product of its
 * format, each where the CPU has its instruction set (whatever the
 * environment asks of the backend): 9 rows (two groups of four run side by
 * side and one alone), on the three kinds of rows of check_dot_agreement,
 * at lengths that leave the 32-element formats a tail past their groups of
 * 4, 8 and 16 blocks (73 blocks) and none (128), one past what the AVX-512
 * Q4_0 kernel runs a row at a time (289 blocks: four rows at a time, and a
 * tail), and one past what the AVX2 kernels arrange at once (545 blocks:
 * two column chunks, the second short, and a tail). */
static int check_gemv_agreement(void)
{
    enum { N_MAX = 17440, ROWS = 9 };
    static const int64_t lengths_32[] = {2336, 4096, 9248, 17440}, lengths_k[] = {1536, 4096};
    static float w_values[N_MAX], x_values[N_MAX], w_decoded[ROWS][N_MAX];
    static uint8_t w_bytes[ROWS][N_MAX * 2], act_bytes[N_MAX * 2];
    float got[ROWS + 1];
    int failures = 0, checked = 0;
    if (cpu_hardware_isa() < CPU_ISA_AVX2) {
        printf("gemv agreement: skipped (no AVX2 here)\n");
        return 0;
    }
    for (size_t k = 0; k < 2 * sizeof weight_types / sizeof weight_types[0]; k++) {
        /* each format twice: its AVX2 kernel, then its AVX-512 one */
        const bool avx512 = k % 2 == 1;
        strata_dtype dtype = weight_types[k / 2].dtype;
        const cpu_matmul_kernel *kernel = cpu_matmul_kernel_find(dtype);
        cpu_tile_fn gemv = !kernel ? NULL : avx512 ? kernel->gemv_avx512 : kernel->gemv_avx2;
        if (!gemv || (avx512 && cpu_hardware_isa() < CPU_ISA_AVX512))
            continue;
        const bool blocks_of_32 = kernel->act != CPU_ACT_Q8_K;
        const int n_lengths = blocks_of_32 ? (int)(sizeof lengths_32 / sizeof lengths_32[0])
                                           : (int)(sizeof lengths_k / sizeof lengths_k[0]);
        for (int len = 0; len < n_lengths; len++)
            for (int pattern = 0; pattern < 3; pattern++) {
                const int64_t n = blocks_of_32 ? lengths_32[len] : lengths_k[len];
                rng_state = 0xD1B54A32D192ED03ULL * (uint64_t)(8 * k + 3 * len + pattern + 1);
                strata_error err = {0};
                size_t row_bytes = 0;
                dtype_row_bytes(dtype, n, &row_bytes);
                for (int r = 0; r < ROWS; r++) {
                    for (int64_t i = 0; i < n; i++)
                        w_values[i] = pattern == 2 ? (rng_uniform() < 0.5 ? -0.7f : 0.7f) : 0.5f * rng_gauss();
                    if (quant_quantize_row(dtype, w_values, w_bytes[r], n, &err) != STRATA_OK ||
                        quant_dequantize_row(dtype, w_bytes[r], w_decoded[r], n, &err) != STRATA_OK) {
                        printf("FAIL gemv agreement %s: %s\n", dtype_name(dtype), err.message);
                        return failures + 1;
                    }
                }
                for (int64_t i = 0; i < n; i++)
                    x_values[i] = pattern == 1 ? (rng_uniform() < 0.5 ? -1.3f : 1.3f) : rng_gauss();
                cpu_quantize_activation(kernel->act, x_values, act_bytes, n, CPU_ISA_SCALAR);
                for (int r = 0; r <= ROWS; r++)
                    got[r] = NAN;
                /* rows packed at the format's own row size, as in a weight tensor */
                static uint8_t packed[ROWS * N_MAX * 2];
                for (int r = 0; r < ROWS; r++)
                    memcpy(packed + (size_t)r * row_bytes, w_bytes[r], row_bytes);
                cpu_tile tile = {.n = n, .weight = (const char *)packed, .weight_stride = row_bytes, .rows = ROWS,
                                 .act = (const char *)act_bytes, .act_stride = 0, .tokens = 1, .dst = got,
                                 .dst_stride = ROWS};
                gemv(&tile);
                if (!isnan(got[ROWS])) {
                    printf("FAIL gemv agreement %s %s: wrote past its rows\n", dtype_name(dtype),
                           avx512 ? "avx512" : "avx2");
                    failures++;
                }
                for (int r = 0; r < ROWS; r++) {
                    float dot = kernel->scalar(n, w_bytes[r], act_bytes);
                    double magnitude = 0.0;
                    for (int64_t i = 0; i < n; i++)
                        magnitude += fabs((double)w_decoded[r][i] * x_values[i]);
                    checked++;
                    if (!(fabs((double)got[r] - dot) <= 1e-5 * magnitude + 1e-6)) {
                        printf("FAIL gemv agreement %s %s n %lld pattern %d row %d: gemv %.9g, dot %.9g\n",
                               dtype_name(dtype), avx512 ? "avx512" : "avx2", (long long)n, pattern, r, got[r],
                               dot);
                        failures++;
                    }
                }
            }
    }
    if (failures == 0)
        printf("gemv agreement: ok (%d rows)\n", checked);
    return failures;
}

typedef struct pool_probe {
    int *hits; /* one counter per index */
    int max_thread;
    int bad_thread;
    int64_t n, min_chunk;
    int bad_chunk; /* a chunk other than the last not a multiple of min_chunk */
} pool_probe;

static void probe_range(void *arg, int64_t begin, int64_t end, int thread_index)
{
    pool_probe *probe = arg;
    if (thread_index < 0 || thread_index >= probe->max_thread)
        __atomic_store_n(&probe->bad_thread, 1, __ATOMIC_RELAXED);
    if (end != probe->n && (end - begin) % probe->min_chunk != 0)
        __atomic_store_n(&probe->bad_chunk, 1, __ATOMIC_RELAXED);
    for (int64_t i = begin; i < end; i++)
        __atomic_fetch_add(&probe->hits[i], 1, __ATOMIC_RELAXED);
}

static int check_thread_pool(void)
{
    int failures = 0;
    enum { N = 10007 };
    static int hits[N];
    for (int threads = 1; threads <= 4; threads += 3) {
        cpu_threadpool *pool = NULL;
        strata_error err = {0};
        if (cpu_threadpool_create(threads, &pool, &err) != STRATA_OK) {
            printf("FAIL thread pool of %d: %s\n", threads, err.message);
            return failures + 1;
        }
        pool_probe probe = {.hits = hits, .max_thread = threads};
        static const int64_t sizes[] = {0, 1, 5, 100, N};
        for (int round = 0; round < 200; round++) {
            int64_t n = sizes[round % 5];
            memset(hits, 0, sizeof hits);
            probe.n = n;
            probe.min_chunk = 1 + round % 3;
            cpu_parallel_for(pool, n, probe.min_chunk, probe_range, &probe);
            for (int64_t i = 0; i < N; i++)
                if (hits[i] != (i < n ? 1 : 0)) {
                    printf("FAIL thread pool of %d: index %lld of %lld ran %d times\n", threads, (long long)i,
                           (long long)n, hits[i]);
                    failures++;
                    break;
                }
        }
        if (probe.bad_thread) {
            printf("FAIL thread pool of %d: thread index out of range\n", threads);
            failures++;
        }
        if (probe.bad_chunk) {
            printf("FAIL thread pool of %d: a chunk before the last is not a multiple of the minimum\n", threads);
            failures++;
        }
        if (cpu_threadpool_size(pool) != threads) {
            printf("FAIL thread pool size %d, want %d\n", cpu_threadpool_size(pool), threads);
            failures++;
        }
        cpu_threadpool_destroy(pool);
    }
    if (failures == 0)
        printf("thread pool: ok\n");
    return failures;
}

/* The CPU's attention tiling: whatever the shape and thread count, tiles
 * cover every token, blocks are whole vectors of keys, and the scratch of an
 * item holds at least its queries, outputs and one block of K and V. */
static int check_attention_tiling(void)
{
    int failures = 0;
    static const int64_t head_dims[] = {8, 42, 64, 80, 128, 256, 512};
    static const int64_t groups[] = {1, 2, 4, 8, 32, 128};
    static const int64_t n_toks[] = {1, 3, 64, 333, 512};
    static const int64_t kv_heads[] = {1, 2, 8};
    static const int threads[] = {1, 2, 3, 16};
    for (size_t a = 0; a < sizeof head_dims / sizeof head_dims[0]; a++)
        for (size_t b = 0; b < sizeof groups / sizeof groups[0]; b++)
            for (size_t c = 0; c < sizeof n_toks / sizeof n_toks[0]; c++)
                for (size_t d = 0; d < sizeof kv_heads / sizeof kv_heads[0]; d++)
                    for (size_t e = 0; e < sizeof threads / sizeof threads[0]; e++) {
                        int64_t hd = head_dims[a], group = groups[b], n_tok = n_toks[c];
                        cpu_attention_tiling t = cpu_attention_tiling_choose(hd, group, n_tok, kv_heads[d], threads[e]);
                        size_t bytes = cpu_attention_scratch_bytes(&t, hd);
                        size_t least = (size_t)(2 * t.rows_per_tile * hd + 2 * t.keys_per_block * hd) * sizeof(float);
                        bool ok = t.tokens_per_tile >= 1 && t.tokens_per_tile <= n_tok &&
                                  t.rows_per_tile == t.tokens_per_tile * group &&
                                  t.n_tiles == (n_tok + t.tokens_per_tile - 1) / t.tokens_per_tile &&
                                  t.keys_per_block >= CPU_ATTENTION_KEY_STEP &&
                                  t.keys_per_block % CPU_ATTENTION_KEY_STEP == 0 && bytes >= least;
                        if (!ok) {
                            printf("FAIL attention tiling hd %lld group %lld n_tok %lld kv heads %lld threads %d: "
                                   "%lld tokens, %lld rows, %lld keys, %lld tiles, %zu bytes\n",
                                   (long long)hd, (long long)group, (long long)n_tok, (long long)kv_heads[d],
                                   threads[e], (long long)t.tokens_per_tile, (long long)t.rows_per_tile,
                                   (long long)t.keys_per_block, (long long)t.n_tiles, bytes);
                            failures++;
                        }
                    }
    if (failures == 0)
        printf("attention tiling: ok\n");
    return failures;
}

/* Opens one device with n_threads (0: all cores), runs the suite and the
 * refusals on it, closes it. */
static int test_device(const char *backend, const char *label, int n_threads, const op_case *cases, int n_cases)
{
    backend_device dev;
    strata_error err = {0};
    backend_options options = {.n_threads = n_threads};
    if (backend_open(backend, 0, &options, &dev, &err) != STRATA_OK) {
        printf("FAIL %s: cannot open: %s\n", label, err.message);
        return 1;
    }
    device_info info;
    dev.ops->get_info(dev.ctx, &info);
    printf("%s: %s\n", label, info.name);
    device = &dev;
    int failures = run_suite(label, cases, n_cases) + check_refusals(label);
    device = NULL;
    backend_close(&dev);
    return failures;
}

static int test_attention_threads(const op_case *cases, int n_cases)
{
    op_case *attention = calloc((size_t)n_cases + 1, sizeof *attention);
    if (!attention) {
        printf("FAIL: out of memory\n");
        return 1;
    }
    int n = 0;
    for (int i = 0; i < n_cases; i++)
        if (cases[i].op == OP_ATTENTION)
            attention[n++] = cases[i];
    int failures = 0;
    static const int thread_counts[] = {1, 3, 8};
    for (size_t i = 0; i < sizeof thread_counts / sizeof thread_counts[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "cpu-%d-threads", thread_counts[i]);
        failures += test_device("cpu", label, thread_counts[i], attention, n);
    }
    setenv("STRATA_CPU_SCALAR", "1", 1);
    failures += test_device("cpu", "cpu-scalar-3-threads", 3, attention, n);
    unsetenv("STRATA_CPU_SCALAR");
    free(attention);
    return failures;
}

/* test_backend_ops [BACKEND]: every backend with a device (and the CPU's
 * internals), or only BACKEND's suite (ctest runs the Vulkan suite again
 * that way with a small binding limit). */
int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    if (only && !backend_find(only)) {
        printf("FAIL: no backend called %s is built in\n", only);
        return 1;
    }
    int failures = only ? 0 : check_kernel_choice() + check_dot_agreement() + check_tile_agreement() + check_gemv_agreement() +
                                   check_quantize_agreement() +
                                   check_thread_pool() + check_attention_tiling();
    int n_cases = 0;
    op_case *cases = build_cases(&n_cases);
    if (!cases) {
        printf("FAIL: out of memory\n");
        return 1;
    }
    int n_backends = 0, tested = 0;
    const backend_registration *const *registry = backend_registry(&n_backends);
    for (int b = 0; b < n_backends; b++) {
        if (only && strcmp(registry[b]->name, only) != 0)
            continue;
        strata_error err = {0};
        if (registry[b]->device_count(&err) <= 0) {
            printf("skipping backend %s: no device (%s)\n", registry[b]->name,
                   err.message[0] ? err.message : "none found");
            continue;
        }
        failures += test_device(registry[b]->name, registry[b]->name, 0, cases, n_cases);
        tested++;
        if (strcmp(registry[b]->name, "cpu") == 0 && !only) {
            /* the same suite on the scalar kernels (the choice is made at open) */
            setenv("STRATA_CPU_SCALAR", "1", 1);
            failures += test_device("cpu", "cpu-scalar", 0, cases, n_cases);
            unsetenv("STRATA_CPU_SCALAR");
            /* and on the AVX2 kernels where AVX-512 would be chosen */
            if (cpu_hardware_isa() > CPU_ISA_AVX2) {
                setenv("STRATA_CPU_AVX2", "1", 1);
                failures += test_device("cpu", "cpu-avx2", 0, cases, n_cases);
                unsetenv("STRATA_CPU_AVX2");
            }
            /* attention again with other thread counts: they change how the
             * tiled path cuts queries into work items */
            failures += test_attention_threads(cases, n_cases);
        }
    }
    free(cases);
    if (tested == 0) {
        printf("no backend has a device\n");
        return 77;
    }
    printf(failures ? "%d failures\n" : "all passed\n", failures);
    return failures ? 1 : 0;
}
