/* OP_MATMUL_ID: dst[:, j, t] = W_e^T x[:, j', t] for e = ids[j, t], with the
 * matrix-vector kernels of OP_MATMUL (kernels/matvec.cu) in their routed
 * form, so every weight dtype OP_MATMUL reads works here too:
 *
 * 1. kernel_moe_group sorts the k * n_tok (slot, token) pairs by expert and
 *    cuts each expert's run into chunks of `width` pairs (cuda_choose.h:
 *    n_tok rounded up to 1, 2, 4 or 8), all on the device: the host never
 *    reads the ids, so the op can be captured in a CUDA graph;
 * 2. kernel_moe_gather copies the pairs' input columns into that order
 *    (plus width - 1 zero columns that the last chunk's loads reach);
 * 3. block formats: kernel_quantize_q8 turns them into 8-bit activations, as
 *    OP_MATMUL's decode path does;
 * 4. the routed kernel runs a block per (4 rows, chunk): it reads only the
 *    chunk's expert, each weight row once for the chunk's pairs, and writes
 *    every result to its pair's column of dst.
 *
 * An expert's weights are thus read once per chunk of up to 8 of its pairs;
 * unchosen experts are never read. An id outside the experts is left out of
 * every chunk (its dst column is not written) and flagged for sync(). The
 * grid covers the most chunks any routing can make (cuda_matmul_id_max_chunks);
 * the chunks past the real ones are empty and their blocks return at once.
 *
 * Larger batches would be faster through a GEMM per expert, which needs the
 * counts on the host (or a grouped GEMM kernel); that is not done yet. */
#include "cuda_internal.h"

/* The arena slices of one op, in order. */
typedef struct matmul_id_layout {
    int64_t n_in, n_out, k, k_x, n_tok, n_expert, n_pairs, n_columns, n_chunks;
    int width;
    bool block_format;
    size_t sorted, chunks, x_sorted, xq, xs, total; /* byte offsets into the arena; total: its size */
} matmul_id_layout;

static void layout_of_op(const cuda_op *op, matmul_id_layout *l)
{
    const cuda_tensor *w = &op->src[0], *x = &op->src[1], *ids = &op->src[2];
    l->n_in = w->ne[0];
    l->n_out = w->ne[1];
    l->n_expert = w->ne[2];
    l->k = ids->ne[0];
    l->n_tok = ids->ne[1];
    l->k_x = x->ne[1];
    l->n_pairs = l->k * l->n_tok;
    l->width = cuda_matmul_id_width(l->n_tok);
    l->n_columns = l->n_pairs + l->width - 1;
    l->n_chunks = cuda_matmul_id_max_chunks(l->n_pairs, l->n_expert, l->width);
    l->block_format = cuda_weight_dtype_is_block((strata_dtype)w->dtype);
    const size_t columns = (size_t)l->n_columns, n_in = (size_t)l->n_in;
    l->sorted = 0;
    l->chunks = l->sorted + cuda_align((size_t)l->n_pairs * sizeof(int32_t));
    /* the group kernel fills every entry up to n_pairs */
    l->x_sorted = l->chunks + cuda_align((size_t)l->n_pairs * sizeof(kernel_expert_chunk));
    l->xq = l->x_sorted + cuda_align(columns * n_in * sizeof(float));
    l->xs = l->xq;
    l->total = l->xq;
    if (l->block_format) { /* kernel_quantize_q8: a byte an element, 16 bytes a 32-element unit */
        l->xs = l->xq + cuda_align(columns * n_in);
        l->total = l->xs + cuda_align(columns * n_in / 32 * 16);
    }
}

size_t cuda_matmul_id_scratch_bytes(const cuda_op *op)
{
    matmul_id_layout l;
    layout_of_op(op, &l);
    return l.total;
}

strata_status cuda_launch_matmul_id(cuda_context *ctx, const cuda_op *op, strata_error *err)
{
    matmul_id_layout l;
    layout_of_op(op, &l);
    if (l.n_pairs == 0 || l.n_out == 0)
        return STRATA_OK;
    const cuda_tensor *w = &op->src[0];
    char *arena = ctx->arena;
    int32_t *sorted = (int32_t *)(arena + l.sorted);
    kernel_expert_chunk *chunks = (kernel_expert_chunk *)(arena + l.chunks);
    float *x_sorted = (float *)(arena + l.x_sorted);
    CUDA_CHECK(err,
               kernel_moe_group(sorted, chunks, (const int32_t *)op->src[2].data, l.n_pairs, l.n_expert, l.width,
                                ctx->error_flags, ctx->stream),
               "launching the expert grouping");
    CUDA_CHECK(err,
               kernel_moe_gather(x_sorted, (const float *)op->src[1].data, sorted, l.n_in, l.k, l.k_x, l.n_pairs,
                                 l.n_columns, ctx->stream),
               "launching the expert input gather");
    float *dst = (float *)op->dst.data;
    if (!l.block_format) {
        CUDA_CHECK(err,
                   kernel_matmul_id_float(dst, w->data, w->dtype, w->nb[1], w->nb[2], x_sorted, l.n_in, l.n_out,
                                          chunks, l.n_chunks, sorted, l.width, ctx->stream),
                   "launching the expert matrix-vector kernel");
        return STRATA_OK;
    }
    int32_t *xq = (int32_t *)(arena + l.xq);
    float *xs = (float *)(arena + l.xs);
    CUDA_CHECK(err, kernel_quantize_q8(xq, xs, x_sorted, l.n_in, l.n_columns, ctx->stream),
               "launching the activation quantization");
    CUDA_CHECK(err,
               kernel_matmul_id_q8(dst, w->data, w->dtype, w->nb[1], w->nb[2], xq, xs, l.n_in, l.n_out, chunks,
                                   l.n_chunks, sorted, l.width, ctx->stream),
               "launching the expert matrix-vector kernel");
    return STRATA_OK;
}
