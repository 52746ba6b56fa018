/* The op workspace: device memory the backend holds for its ops besides the
 * buffers it is asked for. That is the arena (activation quants, dequantized
 * GEMM tiles, attention partials), cuBLAS's workspace (allocated at open, so
 * cuBLAS never allocates while a graph is captured) and the kernels' error
 * flags. The measurements (cuda_measure.c) allocate and free their own
 * buffers within one call; they are not ops and do not count.
 *
 * Here: the arena's growth under an optional limit (set_workspace_limit),
 * the peak, and the pure estimate of backend_registration.workspace_bytes,
 * which builds the descriptors of the worst ops a query allows and asks them
 * the same cuda_op_scratch_bytes that run_op asks at run time. */
#include <limits.h>
#include <stdlib.h>

#include "cuda_internal.h"

#define MIB ((size_t)1 << 20)

static double mib(uint64_t bytes)
{
    return (double)bytes / 1048576.0;
}

void cuda_workspace_count(cuda_context *ctx, int64_t bytes)
{
    ctx->workspace_held = (uint64_t)((int64_t)ctx->workspace_held + bytes);
    if (ctx->workspace_held > ctx->workspace_peak)
        ctx->workspace_peak = ctx->workspace_held;
}

void cuda_set_workspace_limit(void *opaque, uint64_t limit_bytes)
{
    cuda_context *ctx = opaque;
    ctx->workspace_limit = limit_bytes;
}

uint64_t cuda_workspace_peak_bytes(void *opaque)
{
    const cuda_context *ctx = opaque;
    return ctx->workspace_peak;
}

/* The arena size to grow to for a need of bytes: twice the old size or the
 * need, whichever is more, in whole MiB (few regrowths while a model warms
 * up); under a limit, no more than the limit leaves beside the rest of the
 * workspace. 0 with a message when the need itself passes the limit. */
static size_t arena_growth(const cuda_context *ctx, size_t bytes, strata_error *err)
{
    size_t grown = ctx->arena_bytes * 2 > bytes ? ctx->arena_bytes * 2 : bytes;
    grown = (grown + MIB - 1) / MIB * MIB;
    if (ctx->workspace_limit == 0)
        return grown;
    const uint64_t others = ctx->workspace_held - ctx->arena_bytes; /* cuBLAS's workspace, the flags */
    const uint64_t left = ctx->workspace_limit > others ? ctx->workspace_limit - others : 0;
    if (bytes > left) {
        strata_fail(err, STRATA_OUT_OF_MEMORY,
                    "cuda%d: the op workspace needs %.1f MiB but its limit is %.1f MiB: an op asked for %.1f MiB of "
                    "scratch and %.1f MiB were left beside the %.1f MiB held for cuBLAS and the kernels' error flags",
                    ctx->device, mib(others + bytes), mib(ctx->workspace_limit), mib(bytes), mib(left), mib(others));
        return 0;
    }
    if (grown > left) /* the doubling stops at the limit, the need fits */
        grown = (size_t)left / CUDA_ALIGNMENT * CUDA_ALIGNMENT;
    return grown > bytes ? grown : bytes;
}

strata_status cuda_arena_reserve(cuda_context *ctx, size_t bytes, strata_error *err)
{
    bytes = cuda_align(bytes);
    if (bytes <= ctx->arena_bytes)
        return STRATA_OK;
    /* decided before anything is touched: a need past the limit leaves the
     * arena, the graphs and the stream as they are */
    size_t grown = arena_growth(ctx, bytes, err);
    if (grown == 0)
        return STRATA_OUT_OF_MEMORY;
    /* recorded ops reach the arena through ctx at launch; launched ones and
     * captured graphs hold the old address: finish them, then drop the graphs */
    CUDA_CHECK(err, cudaStreamSynchronize(ctx->stream), "waiting for the device");
    cuda_graphs_release(ctx);
    CUDA_CHECK(err, cudaFree(ctx->arena), "freeing the op arena");
    cuda_workspace_count(ctx, -(int64_t)ctx->arena_bytes);
    ctx->arena = NULL;
    ctx->arena_bytes = 0;
    cudaError_t code = cudaMalloc(&ctx->arena, grown);
    if (code == cudaErrorMemoryAllocation && grown > bytes) { /* the doubling was too much: the exact size */
        (void)cudaGetLastError();
        grown = bytes;
        code = cudaMalloc(&ctx->arena, grown);
    }
    if (code != cudaSuccess) {
        ctx->arena = NULL;
        strata_status status = cuda_fail(err, code, "allocating the op arena");
        if (err)
            strata_error_prefix(err, "cuda device %d: %.1f MiB of op scratch", ctx->device, mib(bytes));
        return status;
    }
    ctx->arena_bytes = grown;
    cuda_workspace_count(ctx, (int64_t)grown);
    return STRATA_OK;
}

/* --- the estimate ------------------------------------------------------------------------------------------ */

/* A contiguous descriptor of shape ne (innermost first), no data. */
static void describe(cuda_tensor *t, strata_dtype dtype, int64_t ne0, int64_t ne1, int64_t ne2, size_t row_bytes)
{
    t->dtype = (int32_t)dtype;
    t->present = 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = ne2;
    t->ne[3] = 1;
    t->nb[0] = (int64_t)dtype_get_traits(dtype)->block_bytes;
    t->nb[1] = (int64_t)row_bytes;
    t->nb[2] = t->nb[1] * ne1;
    t->nb[3] = t->nb[2] * ne2;
}

/* One weight dtype per matmul path: F32 (cuBLAS as is), F16 (hi + lo
 * activations), BF16 (widened to F32 tiles) and the block formats (8-bit
 * activations at decode, F16 tiles for prompts; their scratch does not
 * depend on which block format, Q8_0 stands for them all). */
static const strata_dtype weight_dtypes[] = {DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_Q8_0};

/* Whether the model has a weight taking the path of dtype (an unknown mask:
 * every path counts). */
static bool path_present(uint64_t mask, strata_dtype dtype)
{
    const uint64_t float_paths = (1ull << DTYPE_F32) | (1ull << DTYPE_F16) | (1ull << DTYPE_BF16);
    if (mask == 0)
        return true;
    if (dtype == DTYPE_Q8_0)
        return (mask & ~float_paths) != 0;
    return (mask & (1ull << dtype)) != 0;
}

/* The most arena a matmul needs with a weight of at most n_in x n_out and at
 * most max_tokens tokens. Scratch grows with n_in and n_out
 * (cuda_gemm_tile_capacity), not necessarily with the tokens across paths:
 * every token count is asked. */
static size_t matmul_worst(const backend_workspace_query *query, int64_t max_tokens, int64_t tile_elements)
{
    const int64_t n_in = query->max_matmul_cols, n_out = query->max_matmul_rows;
    if (n_in <= 0 || n_out <= 0)
        return 0;
    size_t worst = 0;
    for (size_t d = 0; d < sizeof weight_dtypes / sizeof weight_dtypes[0]; d++) {
        if (!path_present(query->weight_dtype_mask, weight_dtypes[d]))
            continue;
        cuda_op op = {.kind = OP_MATMUL, .n_src = 2};
        /* the row bytes are the largest weight's (its own dtype): kept for the
         * record, no scratch depends on them */
        size_t row_bytes = 0;
        if (query->max_matmul_row_bytes > 0)
            row_bytes = (size_t)query->max_matmul_row_bytes;
        else if (!dtype_row_bytes(weight_dtypes[d], n_in, &row_bytes))
            row_bytes = (size_t)n_in * 4;
        describe(&op.src[0], weight_dtypes[d], n_in, n_out, 1, row_bytes);
        for (int64_t n_tok = 1; n_tok <= max_tokens; n_tok++) {
            describe(&op.src[1], DTYPE_F32, n_in, n_tok, 1, (size_t)n_in * sizeof(float));
            describe(&op.dst, DTYPE_F32, n_out, n_tok, 1, (size_t)n_out * sizeof(float));
            size_t bytes = cuda_op_scratch_bytes(&op, tile_elements);
            worst = bytes > worst ? bytes : worst;
        }
    }
    return worst;
}

/* The most arena attention needs over a cache of n_ctx rows, for up to
 * max_tokens queries, with either kernel (STRATA_CUDA_ATTENTION may force
 * one), on a device of query->multiprocessors SMs, or of as many as can be
 * when that is unknown: split-KV then splits as far as it ever does. The
 * split parts grow with the rows scanned, so n_kv = n_ctx is the worst; the
 * token counts are all asked (splits shrink as tokens fill the GPU). */
static size_t attention_worst(const backend_workspace_query *query, int64_t max_tokens)
{
    const int64_t n_heads = query->n_heads, n_kv_heads = query->n_kv_heads, head_dim = query->head_dim;
    if (n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 || query->n_ctx <= 0)
        return 0;
    const int sm_count = query->multiprocessors > 0 ? query->multiprocessors : INT_MAX / 2;
    const cuda_attention_mode modes[] = {CUDA_ATTENTION_FORCE_ROWS, CUDA_ATTENTION_FORCE_TILED};
    size_t worst = 0;
    cuda_op op = {.kind = OP_ATTENTION, .n_src = 4, .n_kv = query->n_ctx};
    const size_t cache_row = (size_t)(head_dim * 2); /* F16 cache; strides do not change the scratch */
    describe(&op.src[1], DTYPE_F16, head_dim, n_kv_heads, query->n_ctx, cache_row);
    op.src[2] = op.src[1];
    for (int64_t n_tok = 1; n_tok <= max_tokens; n_tok++) {
        describe(&op.src[0], DTYPE_F32, head_dim, n_heads, n_tok, (size_t)head_dim * sizeof(float));
        describe(&op.src[3], DTYPE_I32, n_tok, 1, 1, (size_t)n_tok * sizeof(int32_t));
        op.dst = op.src[0];
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
            cuda_attention_plan(&op, modes[m], sm_count);
            size_t bytes = cuda_op_scratch_bytes(&op, 0);
            worst = bytes > worst ? bytes : worst;
        }
    }
    return worst;
}

/* The most arena OP_MATMUL_ID needs: its scratch (cuda_matmul_id.c) grows
 * with the pairs (k x tokens), their width and n_in, and is the same for
 * every float dtype and for every block format; the number of experts does
 * not enter it. */
static size_t matmul_id_worst(const backend_workspace_query *query, int64_t max_tokens)
{
    const int64_t n_in = query->max_expert_cols, n_out = query->max_expert_rows;
    if (n_in <= 0 || n_out <= 0)
        return 0;
    const int64_t k = query->max_experts_used > 0 ? query->max_experts_used : 1;
    const strata_dtype dtypes[] = {DTYPE_F32, DTYPE_Q8_0};
    size_t worst = 0;
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
        const bool present = dtypes[d] == DTYPE_F32 ? path_present(query->weight_dtype_mask, DTYPE_F32) ||
                                                          path_present(query->weight_dtype_mask, DTYPE_F16) ||
                                                          path_present(query->weight_dtype_mask, DTYPE_BF16)
                                                    : path_present(query->weight_dtype_mask, DTYPE_Q8_0);
        if (!present)
            continue;
        cuda_op op = {.kind = OP_MATMUL_ID, .n_src = 3};
        size_t row_bytes = 0;
        if (!dtype_row_bytes(dtypes[d], n_in, &row_bytes))
            row_bytes = (size_t)n_in * 4; /* n_in not a whole number of blocks: no scratch depends on it */
        describe(&op.src[0], dtypes[d], n_in, n_out, 1, row_bytes);
        describe(&op.src[1], DTYPE_F32, n_in, k, max_tokens, (size_t)n_in * sizeof(float));
        describe(&op.src[2], DTYPE_I32, k, max_tokens, 1, (size_t)k * sizeof(int32_t));
        describe(&op.dst, DTYPE_F32, n_out, k, max_tokens, (size_t)n_out * sizeof(float));
        size_t bytes = cuda_op_scratch_bytes(&op, 0);
        worst = bytes > worst ? bytes : worst;
    }
    return worst;
}

uint64_t cuda_workspace_bytes(const backend_workspace_query *query)
{
    int64_t tile_elements;
    if (!cuda_gemm_tile_parse(getenv("STRATA_CUDA_GEMM_TILE_MIB"), &tile_elements))
        tile_elements = CUDA_GEMM_TILE_ELEMENTS_DEFAULT; /* a device does not open with a bad value anyway */
    const int64_t max_tokens = query->max_tokens > 0 ? query->max_tokens : 1;
    size_t matmul = matmul_worst(query, max_tokens, tile_elements);
    size_t attention = attention_worst(query, max_tokens);
    size_t matmul_id = matmul_id_worst(query, max_tokens);
    /* the arena holds one op's scratch at a time: the largest need, not the sum */
    size_t arena = matmul > attention ? matmul : attention;
    arena = matmul_id > arena ? matmul_id : arena;
    return (uint64_t)CUDA_CUBLAS_WORKSPACE_BYTES + CUDA_ERROR_FLAGS_BYTES + arena;
}
