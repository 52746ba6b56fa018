/* Recording of the attention family: rope, kv_store, attention. Each is cut
 * so that every binding fits the device's binding limit (vulkan_split.h):
 * rope in groups of tokens; kv_store in groups of tokens times ranges of
 * cache rows; attention in passes over groups of query tokens and ranges of
 * cache rows merged with an online softmax, each pass split further over
 * the rows (split-KV, plus a combine dispatch) when few (token, head) pairs
 * would leave the GPU idle. */
#include <math.h>
#include <stdlib.h>

#include "vulkan_internal.h"
#include "vulkan_push.h"
#include "vulkan_split.h"

#define ROPE_MAX_PAIRS 4096

strata_status vk_run_rope(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *x = op->src[0], *positions = op->src[1];
    const strata_tensor *factors = op->src[2] ? op->src[2] : op->src[0];
    int64_t total = tensor_element_count(x);
    int32_t n_rot = op->params.rope.n_rot;
    if (total == 0)
        return STRATA_OK;
    if (n_rot / 2 > ROPE_MAX_PAIRS)
        return strata_fail(err, STRATA_UNSUPPORTED, "n_rot %d is above %d", n_rot, 2 * ROPE_MAX_PAIRS);
    /* the inverse frequencies, in double on the host as the CPU does */
    float inv_freq[ROPE_MAX_PAIRS];
    for (int32_t i = 0; i < n_rot / 2; i++)
        inv_freq[i] = (float)((double)op->params.rope.freq_scale *
                              pow((double)op->params.rope.freq_base, -2.0 * i / n_rot));
    uint32_t head_dim = (uint32_t)x->ne[0], n_heads = (uint32_t)x->ne[1], n_tok = (uint32_t)x->ne[2];
    uint64_t token_bytes = 4ull * head_dim * n_heads;
    VkDeviceSize alignment = vk_binding_alignment(ctx);
    uint32_t tokens = vk_min_u32(vk_rows_per_binding(token_bytes, ctx->bind_limit, alignment),
                                 vk_rows_per_binding(4, ctx->bind_limit, alignment));
    if (tokens == 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "one token of %s (%llu bytes) does not fit one binding",
                           x->name ? x->name : "src0", (unsigned long long)token_bytes);
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = vk_pipeline_get(ctx, "rope", VK_ELEMENTWISE_LOCAL_SIZE, 5, &pipeline, err)))
        return status;
    for (uint32_t begin = 0; begin < n_tok; begin += tokens) {
        uint32_t count = vk_min_u32(tokens, n_tok - begin);
        vk_rope_push push = {.head_dim = head_dim, .n_heads = n_heads, .n_tok = count, .n_rot = (uint32_t)n_rot,
                             .neox = op->params.rope.neox, .has_factors = op->src[2] != NULL,
                             .attn_factor = op->params.rope.attn_factor != 0.0f ? op->params.rope.attn_factor : 1.0f};
        vk_binding bindings[5];
        if ((status = vk_bind_range(ctx, x, token_bytes * begin, token_bytes * count, 4, false, &bindings[0],
                                    &push.x_offset, err)) ||
            (status = vk_bind_range(ctx, positions, 4ull * begin, 4ull * count, 4, false, &bindings[1],
                                    &push.pos_offset, err)) ||
            (status = vk_bind_range(ctx, factors, 0, 4ull * (uint32_t)(n_rot / 2), 4, false, &bindings[3],
                                    &push.factor_offset, err)) ||
            (status = vk_bind_range(ctx, op->dst, token_bytes * begin, token_bytes * count, 4, true, &bindings[4],
                                    &push.d_offset, err)) ||
            (status = vk_params_write(ctx, inv_freq, (size_t)(n_rot / 2) * sizeof(float), &bindings[2], err)))
            return status;
        uint32_t gx, gy;
        vk_groups_2d(((uint64_t)token_bytes / 4 * count + pipeline->local_size - 1) / pipeline->local_size, &gx,
                     &gy);
        if ((status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err)))
            return status;
    }
    return STRATA_OK;
}

/* Every position must name a cache row (backend.h); they are read from the
 * host shadow of their upload, or downloaded (a submit) when there is none. */
static strata_status check_positions(vk_context *ctx, const strata_tensor *positions, int64_t n_ctx,
                                     strata_error *err)
{
    size_t bytes = tensor_byte_size(positions);
    const int32_t *values = vk_shadow_find(ctx, positions->buffer, positions->offset, bytes);
    int32_t *downloaded = NULL;
    if (!values) {
        downloaded = malloc(bytes ? bytes : 1);
        if (!downloaded)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "out of host memory checking positions");
        strata_status status = vk_download(ctx, positions->buffer, positions->offset, downloaded, bytes, err);
        if (status != STRATA_OK) {
            free(downloaded);
            return status;
        }
        values = downloaded;
    }
    strata_status status = STRATA_OK;
    for (int64_t t = 0; t < positions->ne[0]; t++)
        if (values[t] < 0 || values[t] >= n_ctx) {
            status = strata_fail(err, STRATA_INVALID_INPUT, "position %d of token %lld is outside the cache (%lld rows)",
                                 values[t], (long long)t, (long long)n_ctx);
            break;
        }
    free(downloaded);
    return status;
}

strata_status vk_run_kv_store(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *rows = op->src[0], *positions = op->src[1], *cache = op->dst;
    int64_t total = tensor_element_count(rows);
    if (total == 0)
        return STRATA_OK;
    strata_status status = check_positions(ctx, positions, cache->ne[1], err);
    if (status != STRATA_OK)
        return status;
    bool half = cache->dtype == DTYPE_F16;
    size_t cache_element = half ? 2 : 4;
    uint32_t row_size = (uint32_t)rows->ne[0], n_tok = (uint32_t)rows->ne[1], n_ctx = (uint32_t)cache->ne[1];
    VkDeviceSize alignment = vk_binding_alignment(ctx);
    /* groups of tokens (their rows and positions fit a binding) times ranges
     * of cache rows; every range is visited, whatever the positions, so the
     * recorded work depends on shapes only */
    uint32_t tokens = vk_min_u32(vk_rows_per_binding(4ull * row_size, ctx->bind_limit, alignment),
                                 vk_rows_per_binding(4, ctx->bind_limit, alignment));
    uint32_t cache_rows = vk_rows_per_binding((uint64_t)cache->nb[1], ctx->bind_limit, alignment);
    if (tokens == 0 || cache_rows == 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "one row of %s (%u values) does not fit one binding",
                           cache->name ? cache->name : "the cache", row_size);
    const vk_pipeline *pipeline;
    if ((status = vk_pipeline_get(ctx, half ? "kv_store_f16" : "kv_store_f32", VK_ELEMENTWISE_LOCAL_SIZE, 3,
                                  &pipeline, err)))
        return status;
    for (uint32_t tok_begin = 0; tok_begin < n_tok; tok_begin += tokens) {
        uint32_t tok_count = vk_min_u32(tokens, n_tok - tok_begin);
        vk_kv_store_push push = {.row_size = row_size, .n_tok = tok_count, .n_ctx = n_ctx};
        vk_binding bindings[3];
        if ((status = vk_bind_range(ctx, rows, 4ull * row_size * tok_begin, 4ull * row_size * tok_count, 4, false,
                                    &bindings[0], &push.src_offset, err)) ||
            (status = vk_bind_range(ctx, positions, 4ull * tok_begin, 4ull * tok_count, 4, false, &bindings[1],
                                    &push.pos_offset, err)))
            return status;
        uint32_t gx, gy;
        vk_groups_2d(((uint64_t)row_size * tok_count + pipeline->local_size - 1) / pipeline->local_size, &gx, &gy);
        for (uint32_t row_begin = 0; row_begin < n_ctx; row_begin += cache_rows) {
            push.row_begin = row_begin;
            push.row_count = vk_min_u32(cache_rows, n_ctx - row_begin);
            if ((status = vk_bind_range(ctx, cache, (uint64_t)cache->nb[1] * row_begin,
                                        (uint64_t)cache->nb[1] * push.row_count, cache_element, true, &bindings[2],
                                        &push.cache_offset, err)) ||
                (status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err)))
                return status;
        }
    }
    return STRATA_OK;
}

/* Records one pass: the tok_count query tokens whose q, positions and dst
 * are bound in bindings 0, 3 and 4 (offsets in push), over the cache rows of
 * row pass row_pass; then the combine dispatch when the pass splits. */
static strata_status record_pass(vk_context *ctx, const backend_op *op, const vk_attention_dims *dims,
                                 const vk_attention_plan *plan, vk_attention_push push, vk_binding bindings[6],
                                 uint32_t row_pass, uint32_t tok_count, const vk_pipeline *pipeline,
                                 const vk_pipeline *combine, strata_error *err)
{
    const strata_tensor *k = op->src[1], *v = op->src[2];
    size_t element_bytes = k->dtype == DTYPE_F16 ? 2 : 4;
    uint32_t row_begin = row_pass * plan->rows_per_pass;
    uint32_t row_count = vk_min_u32(plan->rows_per_pass, (dims->n_kv ? dims->n_kv : 1) - row_begin);
    vk_attention_pass pass = vk_attention_pass_make(dims, plan, tok_count, row_count);
    push.n_tok = tok_count;
    push.kv_begin = row_begin;
    push.kv_end = row_begin + row_count;
    push.n_splits = pass.n_splits;
    push.rows_per_split = pass.rows_per_split;
    push.state_offset = 0;
    push.part_offset = pass.state_floats;
    push.flags = (row_pass > 0 ? VK_ATTENTION_MERGE : 0u) | (plan->n_row_passes > 1 ? VK_ATTENTION_KEEP_STATE : 0u);
    strata_status status;
    if ((status = vk_bind_range(ctx, k, dims->k_row_stride * row_begin,
                                dims->k_row_stride * (row_count - 1) + dims->k_row_bytes, element_bytes, false,
                                &bindings[1], &push.k_offset, err)) ||
        (status = vk_bind_range(ctx, v, dims->v_row_stride * row_begin,
                                dims->v_row_stride * (row_count - 1) + dims->v_row_bytes, element_bytes, false,
                                &bindings[2], &push.v_offset, err)))
        return status;
    uint64_t workspace_bytes = 4ull * ((uint64_t)pass.state_floats + pass.partial_floats);
    if (workspace_bytes)
        bindings[5] = (vk_binding){.buffer = ctx->scratch, .offset = 0, .range = (workspace_bytes + 3) / 4 * 4,
                                   .written = true};
    else
        bindings[5] = bindings[4]; /* not read: no state, no partials */
    uint32_t n_pairs = tok_count * push.n_heads, gx, gy;
    vk_groups_2d(n_pairs, &gx, &gy);
    if ((status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, pass.n_splits, err)) ||
        pass.n_splits == 1)
        return status;
    vk_attention_combine_push combine_push = {.head_dim = push.head_dim, .n_pairs = n_pairs,
                                              .n_splits = pass.n_splits, .part_offset = push.part_offset,
                                              .d_offset = push.d_offset, .state_offset = push.state_offset,
                                              .flags = push.flags};
    vk_binding combine_bindings[2] = {bindings[5], bindings[4]};
    return vk_dispatch(ctx, combine, combine_bindings, &combine_push, sizeof combine_push, gx, gy, 1, err);
}

strata_status vk_run_attention(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2], *positions = op->src[3];
    int64_t n_pairs = q->ne[1] * q->ne[2], n_kv = op->params.attention.n_kv;
    if (n_pairs == 0)
        return STRATA_OK;
    size_t element_bytes = k->dtype == DTYPE_F16 ? 2 : 4;
    int32_t window = op->params.attention.sliding_window;
    const vk_pipeline *pipeline, *combine;
    strata_status status;
    if ((status = vk_pipeline_get(ctx, k->dtype == DTYPE_F16 ? "attention_f16" : "attention_f32",
                                  VK_ATTENTION_LOCAL_SIZE, 6, &pipeline, err)) ||
        (status = vk_pipeline_get(ctx, "attention_combine", VK_ATTENTION_LOCAL_SIZE, 2, &combine, err)))
        return status;
    vk_attention_dims dims = {
        .head_dim = (uint32_t)q->ne[0],
        .n_heads = (uint32_t)q->ne[1],
        .n_tok = (uint32_t)q->ne[2],
        .n_kv = (uint32_t)n_kv,
        .visible = (uint32_t)(window > 0 && window < n_kv ? window : n_kv),
        .k_row_stride = k->nb[2],
        .k_row_bytes = (uint64_t)k->ne[1] * k->nb[1],
        .v_row_stride = v->nb[2],
        .v_row_bytes = (uint64_t)v->ne[1] * v->nb[1],
        .max_range = ctx->bind_limit,
        .alignment = vk_binding_alignment(ctx),
        .max_rows_per_pass = ctx->loop_budget ? vk_attention_rows_within_loop_budget(
                                                    (uint32_t)q->ne[0], pipeline->local_size, ctx->loop_budget)
                                              : 0,
    };
    vk_attention_plan plan;
    if (!vk_attention_plan_make(&dims, &plan))
        return strata_fail(err, STRATA_UNSUPPORTED,
                           "one cache row or one token's queries do not fit the device's binding limit (%llu KiB)",
                           (unsigned long long)(ctx->bind_limit >> 10));
    /* the workspace may be replaced (after a submit) before anything is bound */
    if (plan.workspace_bytes && (status = vk_scratch_reserve(ctx, plan.workspace_bytes, err)))
        return status;
    vk_attention_push push = {
        .head_dim = dims.head_dim,
        .n_heads = dims.n_heads,
        .group = (uint32_t)(q->ne[1] / k->ne[1]),
        .n_kv = dims.n_kv,
        .window = window,
        .scale = op->params.attention.scale,
        .softcap = op->params.attention.softcap,
        .k_row_stride = (uint32_t)(k->nb[2] / element_bytes),
        .k_head_stride = (uint32_t)(k->nb[1] / element_bytes),
        .v_row_stride = (uint32_t)(v->nb[2] / element_bytes),
        .v_head_stride = (uint32_t)(v->nb[1] / element_bytes),
    };
    uint64_t token_bytes = 4ull * dims.head_dim * dims.n_heads;
    for (uint32_t t = 0; t < plan.n_token_passes; t++) {
        uint32_t tok_begin = t * plan.tokens_per_pass;
        uint32_t tok_count = vk_min_u32(plan.tokens_per_pass, dims.n_tok - tok_begin);
        vk_binding bindings[6];
        if ((status = vk_bind_range(ctx, q, token_bytes * tok_begin, token_bytes * tok_count, 4, false,
                                    &bindings[0], &push.q_offset, err)) ||
            (status = vk_bind_range(ctx, positions, 4ull * tok_begin, 4ull * tok_count, 4, false, &bindings[3],
                                    &push.pos_offset, err)) ||
            (status = vk_bind_range(ctx, op->dst, token_bytes * tok_begin, token_bytes * tok_count, 4, true,
                                    &bindings[4], &push.d_offset, err)))
            return status;
        for (uint32_t r = 0; r < plan.n_row_passes; r++)
            if ((status = record_pass(ctx, op, &dims, &plan, push, bindings, r, tok_count, pipeline, combine, err)))
                return status;
    }
    return STRATA_OK;
}
