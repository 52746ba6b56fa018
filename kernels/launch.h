/* C launchers of the CUDA kernels (the .cu files of kernels/), one group per op family,
 * named after the op they serve (OP_RMS_NORM <-> rms_norm.cu <->
 * kernel_rms_norm). The host code in backends/cuda/ calls only these.
 *
 * Every launcher enqueues its kernels on `stream` and returns at once with
 * the launch status (cudaGetLastError after the launch): configuration
 * errors show here, faults during execution at the next synchronization.
 * Pointers are device pointers; shapes are innermost first, as in
 * backends/backend.h. Arithmetic is F32 unless a launcher says otherwise.
 *
 * Written and compiled without a GPU at hand; the op-conformance suite
 * (tests/test_backend_ops.c) is what establishes that they are right. */
#ifndef STRATA_KERNELS_LAUNCH_H
#define STRATA_KERNELS_LAUNCH_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bits the kernels set (atomicOr) in a device int when an index they were
 * given is out of range; the element is skipped. The host reads and clears
 * the flags at sync. */
#define KERNEL_ERROR_ROW_ID 1u       /* get_rows: a row id outside the table */
#define KERNEL_ERROR_KV_POSITION 2u  /* kv_store: a position outside the cache */
#define KERNEL_ERROR_EXPERT_ID 4u    /* moe_weights, matmul_id: an expert id outside the experts */

/* Element types, numbered as base/dtype.h numbers them. */
#define KERNEL_F32 0
#define KERNEL_F16 1
#define KERNEL_BF16 30

/* --- elementwise.cu: ADD, MUL, SCALE, SWIGLU, GEGLU -------------------------------- */

typedef enum kernel_elementwise_op {
    KERNEL_ADD,    /* dst = a + b */
    KERNEL_MUL,    /* dst = a * b */
    KERNEL_SCALE,  /* dst = a * value */
    KERNEL_SWIGLU, /* dst = silu(a) * b */
    KERNEL_GEGLU,  /* dst = gelu_tanh(a) * b */
} kernel_elementwise_op;

/* n elements; b repeats every b_period elements (b_period == n: same shape,
 * b_period == row length: one row broadcast). dst may be a. */
cudaError_t kernel_elementwise(kernel_elementwise_op op, float *dst, const float *a, const float *b, int64_t n,
                               int64_t b_period, float value, cudaStream_t stream);

/* --- rms_norm.cu, softmax.cu, argmax.cu: one block per row -------------------------- */

/* dst[n, rows] = x / sqrt(mean(x^2) + eps) (* weight[n] when weight is not
 * NULL); dst may be x. */
cudaError_t kernel_rms_norm(float *dst, const float *x, const float *weight, int64_t n, int64_t rows, float eps,
                            cudaStream_t stream);

/* Softmax along each row of n; dst may be x. */
cudaError_t kernel_softmax(float *dst, const float *x, int64_t n, int64_t rows, cudaStream_t stream);

/* dst[r] = index of the largest value of row r (the lowest index on ties). */
cudaError_t kernel_argmax(int32_t *dst, const float *x, int64_t n, int64_t rows, cudaStream_t stream);

/* --- rope.cu ------------------------------------------------------------------------ */

/* Rotary embedding of x[head_dim, n_heads, n_tok] at positions[n_tok] into
 * dst (may be x). Angles are computed in double, as the CPU backend does.
 * factors (n_rot / 2 floats) may be NULL. The rotated dims are scaled by
 * attn_factor (0 or 1: not). n_rot <= KERNEL_ROPE_MAX_ROT. */
#define KERNEL_ROPE_MAX_ROT 1024
cudaError_t kernel_rope(float *dst, const float *x, const int32_t *positions, const float *factors,
                        int64_t head_dim, int64_t n_heads, int64_t n_tok, int n_rot, bool neox, float freq_base,
                        float freq_scale, float attn_factor, cudaStream_t stream);

/* --- copy.cu: COPY and KV_STORE ------------------------------------------------------- */

/* A strided view: element (i0..i3) at byte sum(i_d * nb[d]). */
typedef struct kernel_layout {
    int dtype; /* KERNEL_F32, KERNEL_F16 or KERNEL_BF16 */
    int64_t ne[4];
    int64_t nb[4];
} kernel_layout;

/* Converts every element of src into dst (both F32/F16/BF16, rounding to
 * nearest even). flat: both are contiguous with the same element count but
 * different shapes, copied in storage order; otherwise the shapes match and
 * any strides are allowed. */
cudaError_t kernel_copy(void *dst, const kernel_layout *dst_layout, const void *src, const kernel_layout *src_layout,
                        bool flat, cudaStream_t stream);

/* Stores rows[row_size, n_tok] (F32) into cache rows positions[t] (cache
 * F16 or F32, row_stride bytes apart, n_ctx rows). Positions outside
 * [0, n_ctx) are skipped and flagged with KERNEL_ERROR_KV_POSITION. */
cudaError_t kernel_kv_store(void *cache, int cache_dtype, int64_t row_stride, int64_t n_ctx, const float *rows,
                            const int32_t *positions, int64_t row_size, int64_t n_tok, unsigned int *error_flags,
                            cudaStream_t stream);

/* --- get_rows.cu and dequantize.cu ----------------------------------------------------- */

/* dst[n_embd, n_rows] = rows ids[] of table[n_embd, n_vocab] (any weight
 * dtype, rows row_bytes apart), dequantized exactly as base/quant.c
 * does. Ids outside [0, n_vocab) are skipped and flagged with
 * KERNEL_ERROR_ROW_ID. */
cudaError_t kernel_get_rows(float *dst, const void *table, int dtype, int64_t row_bytes, int64_t n_embd,
                            int64_t n_vocab, const int32_t *ids, int64_t n_rows, unsigned int *error_flags,
                            cudaStream_t stream);

/* Dequantizes rows [n_in, rows] of a weight (any block format, or BF16/F16)
 * into a dense matrix, F16 (dst_f32 false) or F32 (dst_f32 true). */
cudaError_t kernel_dequantize_rows(void *dst, bool dst_f32, const void *weight, int dtype, int64_t row_bytes,
                                   int64_t n_in, int64_t rows, cudaStream_t stream);

/* Activations x[n_in, n_tok] to f16 for the tensor-core GEMM: each column t
 * is divided by column_scale[t], a power of two the kernel picks (1 unless
 * the column's magnitudes exceed 32768, so large activations do not overflow
 * f16), then hi = f16(x / scale) and, when lo is not NULL,
 * lo = f16(x / scale - hi), so that hi + lo carries about 22 bits of x.
 * column_scale: n_tok floats of device memory, written here. */
cudaError_t kernel_activations_to_f16(uint16_t *hi, uint16_t *lo, float *column_scale, const float *x, int64_t n_in,
                                      int64_t n_tok, cudaStream_t stream);

/* dst[:, t] *= column_scale[t] for a GEMM result dst[n_out, n_tok] (F32):
 * undoes kernel_activations_to_f16's scaling; columns of scale 1 untouched. */
cudaError_t kernel_scale_columns(float *dst, const float *column_scale, int64_t n_out, int64_t n_tok,
                                 cudaStream_t stream);

/* --- matvec.cu: decode matmuls ------------------------------------------------------------ */

#define KERNEL_MATVEC_MAX_TOKENS 8

/* Activations of n_tok tokens quantized to 8 bits per 32-element unit:
 * xq[n_tok][n_in / 32][8] int32 (the int8 quants, four per word) and
 * xs[n_tok][n_in / 32][4] floats (scale d, d * sum of quants 0..15,
 * d * sum of quants 16..31, and a fourth whose bits hold the two integer
 * sums as int16: 0..15 low, 16..31 high). n_in is a multiple of 32. */
cudaError_t kernel_quantize_q8(int32_t *xq, float *xs, const float *x, int64_t n_in, int64_t n_tok,
                               cudaStream_t stream);

/* dst[n_out, n_tok] = W x for a block-format weight (rows row_bytes apart)
 * and activations from kernel_quantize_q8: dp4a dot products, F32 sums.
 * n_tok <= KERNEL_MATVEC_MAX_TOKENS. */
cudaError_t kernel_matvec_q8(float *dst, const void *weight, int dtype, int64_t row_bytes, const int32_t *xq,
                             const float *xs, int64_t n_in, int64_t n_out, int n_tok, cudaStream_t stream);

/* dst[n_out, n_tok] = W x for an F32, F16 or BF16 weight and F32
 * activations x[n_in, n_tok]; F32 products and sums.
 * n_tok <= KERNEL_MATVEC_MAX_TOKENS. */
cudaError_t kernel_matvec_float(float *dst, const void *weight, int dtype, int64_t row_bytes, const float *x,
                                int64_t n_in, int64_t n_out, int n_tok, cudaStream_t stream);

/* --- moe.cu: TOPK, MOE_WEIGHTS, MOE_SUM and the grouping of OP_MATMUL_ID ---------------- */

/* Most experts the grouping kernel takes (its per-expert counts live in
 * shared memory). */
#define KERNEL_MOE_MAX_EXPERTS 1024

/* ids[k, n_tok] = the k largest values of each column of x[n_expert, n_tok],
 * largest first, the lower index first among equals (the CPU's insertion
 * order, so NaNs place as they do there). One thread per column. */
cudaError_t kernel_topk(int32_t *ids, const float *x, int64_t n_expert, int64_t k, int64_t n_tok,
                        cudaStream_t stream);

/* dst[j, t] = probs[ids[j, t], t] for probs[n_expert, n_tok] and ids[k,
 * n_tok]; each column then divided by its sum when normalize. An id outside
 * [0, n_expert) gives 0 and sets KERNEL_ERROR_EXPERT_ID. */
cudaError_t kernel_moe_weights(float *dst, const float *probs, const int32_t *ids, int64_t n_expert, int64_t k,
                               int64_t n_tok, bool normalize, unsigned int *error_flags, cudaStream_t stream);

/* dst[:, t] = sum over j = 0, 1, ... of weights[j, t] y[:, j, t], for
 * y[n, k, n_tok]; sigmoid(weights[j, t]) in its place when sigmoid. */
cudaError_t kernel_moe_sum(float *dst, const float *y, const float *weights, int64_t n, int64_t k, int64_t n_tok,
                           bool sigmoid, cudaStream_t stream);

/* One piece of OP_MATMUL_ID's work: up to `width` consecutive entries of the
 * expert-sorted pair list, all of one expert. n_pairs 0: nothing to do. */
typedef struct kernel_expert_chunk {
    int32_t expert, first, n_pairs, unused;
} kernel_expert_chunk;

/* Groups the n_pairs = k * n_tok (slot, token) pairs of ids[k, n_tok] by
 * expert, on the device, so the host never reads the ids (CUDA graphs):
 * sorted[n_pairs] gets the pair indices (t * k + j) expert by expert, in
 * pair order within an expert, then -1 for the pairs left out; chunks[n_pairs]
 * gets each expert's run cut into pieces of at most `width` pairs, then
 * empty pieces. Ids outside [0, n_expert) are left out and set
 * KERNEL_ERROR_EXPERT_ID. n_expert <= KERNEL_MOE_MAX_EXPERTS. One block. */
cudaError_t kernel_moe_group(int32_t *sorted, kernel_expert_chunk *chunks, const int32_t *ids, int64_t n_pairs,
                             int64_t n_expert, int width, unsigned int *error_flags, cudaStream_t stream);

/* x_sorted[:, p] = the input column of pair sorted[p] (x[n_in, k_x, n_tok],
 * k_x k or 1) for p < n_pairs, zeros for a pair of -1 and for the columns
 * from n_pairs to n_columns (padding the last chunk's loads reach). */
cudaError_t kernel_moe_gather(float *x_sorted, const float *x, const int32_t *sorted, int64_t n_in, int64_t k,
                              int64_t k_x, int64_t n_pairs, int64_t n_columns, cudaStream_t stream);

/* The expert matmul over grouped pairs (matvec.cu): for every chunk c with
 * pairs, the rows of expert chunks[c].expert (weights expert_bytes apart
 * from `weight`) times the sorted columns first .. first + n_pairs - 1, the
 * result of sorted column p written to dst[:, sorted[p]] (dst[n_out,
 * n_pairs]). width (1, 2, 4 or 8) columns are computed per chunk: the
 * activations must hold width - 1 columns past the last pair. The q8 form
 * takes activations from kernel_quantize_q8 over the sorted columns, the
 * float form the F32 columns themselves (F32/F16/BF16 weights). */
cudaError_t kernel_matmul_id_q8(float *dst, const void *weight, int dtype, int64_t row_bytes, int64_t expert_bytes,
                                const int32_t *xq, const float *xs, int64_t n_in, int64_t n_out,
                                const kernel_expert_chunk *chunks, int64_t n_chunks, const int32_t *sorted, int width,
                                cudaStream_t stream);
cudaError_t kernel_matmul_id_float(float *dst, const void *weight, int dtype, int64_t row_bytes,
                                   int64_t expert_bytes, const float *x_sorted, int64_t n_in, int64_t n_out,
                                   const kernel_expert_chunk *chunks, int64_t n_chunks, const int32_t *sorted,
                                   int width, cudaStream_t stream);

/* --- attention.cu ---------------------------------------------------------------------------- */

#define KERNEL_ATTENTION_MAX_HEAD_DIM 256

/* Which attention kernel runs (the host picks: backends/cuda/cuda_choose.h). */
typedef enum kernel_attention_variant {
    KERNEL_ATTENTION_ROWS,  /* a block per (query head, token); warps walk the rows: decode */
    KERNEL_ATTENTION_TILED, /* a block per (kv head, tile of queries); K/V tiles shared: prefill */
} kernel_attention_variant;

typedef struct kernel_attention_args {
    const float *q;           /* [head_dim, n_heads, n_tok] */
    const void *k, *v;        /* caches, F16 or F32 */
    int cache_dtype;
    int64_t k_head_stride, k_row_stride; /* in elements */
    int64_t v_head_stride, v_row_stride;
    const int32_t *positions; /* [n_tok] */
    float *dst;               /* [head_dim, n_heads, n_tok] */
    int64_t head_dim, n_heads, n_kv_heads, n_tok;
    int64_t n_kv;             /* rows scanned: j < n_kv (and j <= position) */
    float scale, softcap;
    int32_t sliding_window;
    int n_splits;             /* the rows split into this many parts (split-KV) */
    kernel_attention_variant variant;
} kernel_attention_args;

/* Floats of scratch kernel_attention needs for n_splits > 1. */
int64_t kernel_attention_scratch_floats(const kernel_attention_args *args);

/* Blocks of one split of args->variant (n_splits is not read): the parallel
 * work split-KV has to multiply until the GPU is full. 0 for bad shapes. */
int64_t kernel_attention_blocks(const kernel_attention_args *args);

/* Causal attention with online softmax in F32 (flash-attention style: the
 * scores are never stored), by either variant, same results up to F32
 * rounding. With n_splits > 1 each split writes a partial (max, sum,
 * weighted values) to scratch and a second kernel combines them. */
cudaError_t kernel_attention(const kernel_attention_args *args, float *scratch, cudaStream_t stream);

/* --- probe ------------------------------------------------------------------------------------ */

/* Launches an empty kernel: tells whether this binary has code for the
 * current device (cudaErrorNoKernelImageForDevice otherwise). Synchronous. */
cudaError_t kernel_probe(void);

#ifdef __cplusplus
}
#endif

#endif
