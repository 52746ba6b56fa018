/* The op table that supports() and run_op() both read, the descriptor an op
 * becomes (cuda_op), and the launch of every op but matmul (cuda_matmul.c).
 *
 * run_op checks the op, reserves its scratch in the arena, and then either
 * records it (inside begin_step/end_step) or launches it at once. Outside a
 * step, the ids of get_rows and the positions of kv_store are read back and
 * checked first, so a bad index fails run_op itself as on the CPU; inside a
 * step the kernels skip bad indices and sync() reports them. The expert ids
 * of moe_weights and matmul_id are checked the same way (range, and
 * distinct within a token), the kernels skipping ids out of range. */
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

static const cuda_op_check_fn op_checks[OP_COUNT_] = {
    [OP_GET_ROWS] = cuda_check_get_rows, [OP_RMS_NORM] = cuda_check_rms_norm, [OP_MATMUL] = cuda_check_matmul,
    [OP_ADD] = cuda_check_binary,        [OP_MUL] = cuda_check_binary,        [OP_SCALE] = cuda_check_unary,
    [OP_ROPE] = cuda_check_rope,         [OP_KV_STORE] = cuda_check_kv_store, [OP_ATTENTION] = cuda_check_attention,
    [OP_SWIGLU] = cuda_check_gated,      [OP_GEGLU] = cuda_check_gated,       [OP_SOFTMAX] = cuda_check_unary,
    [OP_ARGMAX] = cuda_check_argmax,     [OP_COPY] = cuda_check_copy,          [OP_TOPK] = cuda_check_moe,
    [OP_MOE_WEIGHTS] = cuda_check_moe,   [OP_MATMUL_ID] = cuda_check_matmul_id, [OP_MOE_SUM] = cuda_check_moe,
};

bool cuda_supports(void *opaque, const backend_op *op)
{
    (void)opaque;
    if (!op || (int)op->kind < 0 || op->kind >= OP_COUNT_ || !op_checks[op->kind])
        return false;
    return op_checks[op->kind](op, NULL, 0);
}

/* --- descriptors ------------------------------------------------------------------------------------------- */

static void describe_tensor(const strata_tensor *t, cuda_tensor *out)
{
    if (!t)
        return; /* stays zero: not present */
    out->dtype = (int32_t)t->dtype;
    out->present = 1;
    for (int d = 0; d < STRATA_MAX_DIMS; d++) {
        out->ne[d] = t->ne[d];
        out->nb[d] = (int64_t)t->nb[d];
    }
    out->data = (char *)t->buffer->data + t->offset;
}

static bool has_buffers(const backend_op *op)
{
    if (!op->dst->buffer)
        return false;
    for (int i = 0; i < BACKEND_OP_MAX_SRC; i++)
        if (op->src[i] && !op->src[i]->buffer)
            return false;
    return true;
}

static void attention_args(const cuda_op *op, kernel_attention_args *args)
{
    const cuda_tensor *q = &op->src[0], *k = &op->src[1], *v = &op->src[2];
    const int64_t element_bytes = k->dtype == DTYPE_F16 ? 2 : 4;
    memset(args, 0, sizeof *args);
    args->q = (const float *)q->data;
    args->k = k->data;
    args->v = v->data;
    args->cache_dtype = k->dtype == DTYPE_F16 ? KERNEL_F16 : KERNEL_F32;
    args->k_head_stride = k->nb[1] / element_bytes;
    args->k_row_stride = k->nb[2] / element_bytes;
    args->v_head_stride = v->nb[1] / element_bytes;
    args->v_row_stride = v->nb[2] / element_bytes;
    args->positions = (const int32_t *)op->src[3].data;
    args->dst = (float *)op->dst.data;
    args->head_dim = q->ne[0];
    args->n_heads = q->ne[1];
    args->n_kv_heads = k->ne[1];
    args->n_tok = q->ne[2];
    args->n_kv = op->n_kv;
    args->scale = op->attention_scale;
    args->softcap = op->softcap;
    args->sliding_window = op->sliding_window;
    args->n_splits = op->n_splits;
    args->variant = op->attention_variant == CUDA_ATTENTION_TILED ? KERNEL_ATTENTION_TILED : KERNEL_ATTENTION_ROWS;
}

/* The descriptor of a checked op. Inside a step, attention scans a bucketed
 * number of rows so that consecutive decode steps share one graph; its
 * kernel (rows or tiled) follows the shapes or STRATA_CUDA_ATTENTION, and
 * its split-KV parts that kernel's blocks. */
static void describe_op(const cuda_context *ctx, const backend_op *op, cuda_op *out)
{
    memset(out, 0, sizeof *out);
    out->kind = (int32_t)op->kind;
    describe_tensor(op->dst, &out->dst);
    for (int i = 0; i < BACKEND_OP_MAX_SRC; i++) {
        describe_tensor(op->src[i], &out->src[i]);
        if (op->src[i])
            out->n_src = i + 1;
    }
    switch (op->kind) {
    case OP_RMS_NORM: out->eps = op->params.rms_norm.eps; break;
    case OP_SCALE: out->value = op->params.scale.value; break;
    case OP_MOE_WEIGHTS: out->moe_normalize = op->params.moe_weights.normalize; break;
    case OP_MOE_SUM: out->moe_sigmoid = op->params.moe_sum.sigmoid; break;
    case OP_ROPE:
        out->n_rot = op->params.rope.n_rot;
        out->neox = op->params.rope.neox;
        out->freq_base = op->params.rope.freq_base;
        out->freq_scale = op->params.rope.freq_scale;
        out->rope_attn_factor = op->params.rope.attn_factor;
        break;
    case OP_ATTENTION: {
        int64_t n_kv = op->params.attention.n_kv;
        out->n_kv = ctx->in_step ? cuda_attention_kv_bucket(n_kv, op->src[1]->ne[2]) : n_kv;
        out->attention_scale = op->params.attention.scale;
        out->softcap = op->params.attention.softcap;
        out->sliding_window = op->params.attention.sliding_window;
        cuda_attention_plan(out, ctx->attention_mode, ctx->sm_count);
        break;
    }
    default: break;
    }
}

void cuda_attention_plan(cuda_op *op, cuda_attention_mode mode, int sm_count)
{
    const cuda_tensor *q = &op->src[0], *k = &op->src[1];
    op->attention_variant = (int32_t)cuda_attention_choose(mode, q->ne[2], q->ne[1], k->ne[1]);
    kernel_attention_args args;
    attention_args(op, &args);
    op->n_splits = cuda_attention_splits(kernel_attention_blocks(&args), op->n_kv, sm_count);
}

size_t cuda_op_scratch_bytes(const cuda_op *op, int64_t gemm_tile_elements)
{
    if (op->kind == OP_MATMUL)
        return cuda_matmul_scratch_bytes(op, gemm_tile_elements);
    if (op->kind == OP_MATMUL_ID)
        return cuda_matmul_id_scratch_bytes(op);
    if (op->kind == OP_ATTENTION) {
        kernel_attention_args args;
        attention_args(op, &args);
        return cuda_align((size_t)kernel_attention_scratch_floats(&args) * sizeof(float));
    }
    return 0;
}

/* --- launches ---------------------------------------------------------------------------------------------- */

static int64_t element_count(const cuda_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

static int kernel_float_dtype(int32_t dtype)
{
    return dtype == DTYPE_F16 ? KERNEL_F16 : dtype == DTYPE_BF16 ? KERNEL_BF16 : KERNEL_F32;
}

static void layout_of(const cuda_tensor *t, kernel_layout *out)
{
    out->dtype = kernel_float_dtype(t->dtype);
    for (int d = 0; d < STRATA_MAX_DIMS; d++) {
        out->ne[d] = t->ne[d];
        out->nb[d] = t->nb[d];
    }
}

static cudaError_t launch_copy(const cuda_op *op, cudaStream_t stream)
{
    const cuda_tensor *src = &op->src[0], *dst = &op->dst;
    kernel_layout src_layout, dst_layout;
    layout_of(src, &src_layout);
    layout_of(dst, &dst_layout);
    bool flat = false;
    for (int d = 0; d < STRATA_MAX_DIMS; d++)
        flat = flat || src->ne[d] != dst->ne[d];
    return kernel_copy(dst->data, &dst_layout, src->data, &src_layout, flat, stream);
}

strata_status cuda_launch_op(cuda_context *ctx, const cuda_op *op, strata_error *err)
{
    const cuda_tensor *dst = &op->dst, *a = &op->src[0], *b = &op->src[1];
    cudaStream_t stream = ctx->stream;
    cudaError_t code = cudaSuccess;
    switch ((op_kind)op->kind) {
    case OP_GET_ROWS:
        code = kernel_get_rows((float *)dst->data, a->data, a->dtype, a->nb[1], a->ne[0], a->ne[1],
                               (const int32_t *)b->data, b->ne[0], ctx->error_flags, stream);
        break;
    case OP_RMS_NORM:
        code = kernel_rms_norm((float *)dst->data, (const float *)a->data, b->present ? (const float *)b->data : NULL,
                               a->ne[0], a->ne[1] * a->ne[2] * a->ne[3], op->eps, stream);
        break;
    case OP_MATMUL:
        return cuda_launch_matmul(ctx, op, err);
    case OP_ADD:
    case OP_MUL:
    case OP_SWIGLU:
    case OP_GEGLU: {
        kernel_elementwise_op which = op->kind == OP_ADD   ? KERNEL_ADD
                                      : op->kind == OP_MUL ? KERNEL_MUL
                                      : op->kind == OP_SWIGLU ? KERNEL_SWIGLU
                                                              : KERNEL_GEGLU;
        code = kernel_elementwise(which, (float *)dst->data, (const float *)a->data, (const float *)b->data,
                                  element_count(a), element_count(b), 0.0f, stream);
        break;
    }
    case OP_SCALE:
        code = kernel_elementwise(KERNEL_SCALE, (float *)dst->data, (const float *)a->data, NULL, element_count(a), 1,
                                  op->value, stream);
        break;
    case OP_ROPE:
        code = kernel_rope((float *)dst->data, (const float *)a->data, (const int32_t *)b->data,
                           op->src[2].present ? (const float *)op->src[2].data : NULL, a->ne[0], a->ne[1], a->ne[2],
                           op->n_rot, op->neox != 0, op->freq_base, op->freq_scale, op->rope_attn_factor, stream);
        break;
    case OP_KV_STORE:
        code = kernel_kv_store(dst->data, kernel_float_dtype(dst->dtype), dst->nb[1], dst->ne[1],
                               (const float *)a->data, (const int32_t *)b->data, a->ne[0], a->ne[1], ctx->error_flags,
                               stream);
        break;
    case OP_ATTENTION: {
        kernel_attention_args args;
        attention_args(op, &args);
        code = kernel_attention(&args, (float *)ctx->arena, stream);
        break;
    }
    case OP_SOFTMAX:
        code = kernel_softmax((float *)dst->data, (const float *)a->data, a->ne[0], a->ne[1] * a->ne[2] * a->ne[3],
                              stream);
        break;
    case OP_ARGMAX:
        code = kernel_argmax((int32_t *)dst->data, (const float *)a->data, a->ne[0], a->ne[1] * a->ne[2] * a->ne[3],
                             stream);
        break;
    case OP_COPY:
        code = launch_copy(op, stream);
        break;
    case OP_TOPK:
        code = kernel_topk((int32_t *)dst->data, (const float *)a->data, a->ne[0], dst->ne[0], a->ne[1], stream);
        break;
    case OP_MOE_WEIGHTS:
        code = kernel_moe_weights((float *)dst->data, (const float *)a->data, (const int32_t *)b->data, a->ne[0],
                                  b->ne[0], b->ne[1], op->moe_normalize != 0, ctx->error_flags, stream);
        break;
    case OP_MATMUL_ID:
        return cuda_launch_matmul_id(ctx, op, err);
    case OP_MOE_SUM: /* y [n, k, n_tok], weights [k, n_tok] */
        code = kernel_moe_sum((float *)dst->data, (const float *)a->data, (const float *)b->data, a->ne[0], a->ne[1],
                              a->ne[2], op->moe_sigmoid != 0, stream);
        break;
    default:
        return strata_fail(err, STRATA_UNSUPPORTED, "cuda: op %d has no kernel", op->kind);
    }
    if (code != cudaSuccess) {
        char what[64];
        snprintf(what, sizeof what, "launching %s", op_kind_name((op_kind)op->kind));
        return cuda_fail(err, code, what);
    }
    return STRATA_OK;
}

/* --- run_op ---------------------------------------------------------------------------------------------- */

/* Outside a step: reads the ids or positions back and checks them, so a bad
 * one fails this call and nothing is written (the CPU backend's behaviour). */
static strata_status check_indices(cuda_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *indices = op->src[1];
    int64_t n = indices->ne[0];
    int64_t limit = op->kind == OP_GET_ROWS ? op->src[0]->ne[1] : op->dst->ne[1];
    if (n > CUDA_INDEX_CHECK_MAX)
        return STRATA_OK; /* too many to read back cheaply: the kernel's flag reports them at sync */
    strata_status status =
        cuda_read_indices(ctx, (const int32_t *)((char *)indices->buffer->data + indices->offset), n, err);
    if (status != STRATA_OK)
        return status;
    for (int64_t i = 0; i < n; i++) {
        int32_t index = ctx->index_check[i];
        if (index >= 0 && index < limit)
            continue;
        if (op->kind == OP_GET_ROWS)
            return strata_fail(err, STRATA_INVALID_INPUT, "cuda get_rows: row id %d (entry %lld) is outside [0, %lld)",
                               index, (long long)i, (long long)limit);
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "cuda kv_store: position %d of token %lld is outside the cache (%lld rows)", index,
                           (long long)i, (long long)limit);
    }
    return STRATA_OK;
}

/* Outside a step: the expert ids of moe_weights (src1) or matmul_id (src2),
 * read back and checked as the CPU checks them: each in [0, n_expert),
 * distinct within a token. */
static strata_status check_expert_ids(cuda_context *ctx, const backend_op *op, strata_error *err)
{
    const bool matmul_id = op->kind == OP_MATMUL_ID;
    const strata_tensor *ids = op->src[matmul_id ? 2 : 1];
    const int64_t n_expert = matmul_id ? op->src[0]->ne[2] : op->src[0]->ne[0];
    const int64_t k = ids->ne[0], n = k * ids->ne[1];
    const char *name = op_kind_name(op->kind);
    if (n > CUDA_INDEX_CHECK_MAX)
        return STRATA_OK; /* too many to read back cheaply: the kernels' flag reports those out of range at sync */
    strata_status status = cuda_read_indices(ctx, (const int32_t *)((char *)ids->buffer->data + ids->offset), n, err);
    if (status != STRATA_OK)
        return status;
    for (int64_t i = 0; i < n; i++) {
        const int32_t id = ctx->index_check[i];
        if (id < 0 || id >= n_expert)
            return strata_fail(err, STRATA_INVALID_INPUT,
                               "cuda %s: expert id %d (slot %lld of token %lld) is outside [0, %lld)", name, id,
                               (long long)(i % k), (long long)(i / k), (long long)n_expert);
        for (int64_t other = i - i % k; other < i; other++)
            if (ctx->index_check[other] == id)
                return strata_fail(err, STRATA_INVALID_INPUT, "cuda %s: expert id %d appears twice for token %lld",
                                   name, id, (long long)(i / k));
    }
    return STRATA_OK;
}

strata_status cuda_run_op(void *opaque, const backend_op *op, strata_error *err)
{
    cuda_context *ctx = opaque;
    if (!op || (int)op->kind < 0 || op->kind >= OP_COUNT_ || !op_checks[op->kind])
        return strata_fail(err, STRATA_UNSUPPORTED, "cuda: unknown op");
    char why[512];
    why[0] = '\0';
    if (!op_checks[op->kind](op, why, sizeof why))
        return strata_fail(err, STRATA_INVALID_INPUT, "cuda %s: %s", op_kind_name(op->kind), why);
    if (!has_buffers(op))
        return strata_fail(err, STRATA_INVALID_INPUT, "cuda %s: a tensor is not in a cuda buffer",
                           op_kind_name(op->kind));
    CUDA_CHECK(err, cudaSetDevice(ctx->device), "selecting the device");
    cuda_op described;
    describe_op(ctx, op, &described);
    strata_status status = cuda_arena_reserve(ctx, cuda_op_scratch_bytes(&described, ctx->gemm_tile_elements), err);
    if (status != STRATA_OK)
        return status;
    if (ctx->in_step)
        return cuda_record(ctx, &described, err);
    if ((op->kind == OP_GET_ROWS || op->kind == OP_KV_STORE) && (status = check_indices(ctx, op, err)) != STRATA_OK)
        return status;
    if ((op->kind == OP_MOE_WEIGHTS || op->kind == OP_MATMUL_ID) && (status = check_expert_ids(ctx, op, err)))
        return status;
    return cuda_launch_op(ctx, &described, err);
}
