/* Recording of the attention family: rope, kv_store, attention (one pass, or
 * split-KV plus a combine pass for decode over long caches). */
#include <math.h>
#include <stdlib.h>

#include "vulkan_internal.h"
#include "vulkan_push.h"

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
    vk_rope_push push = {.head_dim = (uint32_t)x->ne[0], .n_heads = (uint32_t)x->ne[1], .n_tok = (uint32_t)x->ne[2],
                         .n_rot = (uint32_t)n_rot, .neox = op->params.rope.neox, .has_factors = op->src[2] != NULL};
    vk_binding bindings[5];
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = vk_bind_tensor(ctx, x, tensor_byte_size(x), 4, false, &bindings[0], &push.x_offset, err)) ||
        (status = vk_bind_tensor(ctx, positions, tensor_byte_size(positions), 4, false, &bindings[1],
                                 &push.pos_offset, err)) ||
        (status = vk_bind_tensor(ctx, factors, tensor_byte_size(factors), 4, false, &bindings[3],
                                 &push.factor_offset, err)) ||
        (status = vk_bind_tensor(ctx, op->dst, tensor_byte_size(op->dst), 4, true, &bindings[4], &push.d_offset,
                                 err)) ||
        (status = vk_pipeline_get(ctx, "rope", VK_ELEMENTWISE_LOCAL_SIZE, 5, &pipeline, err)) ||
        (status = vk_params_write(ctx, inv_freq, (size_t)(n_rot / 2) * sizeof(float), &bindings[2], err)))
        return status;
    uint32_t gx, gy;
    vk_groups_2d(((uint64_t)total + pipeline->local_size - 1) / pipeline->local_size, &gx, &gy);
    return vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
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
    vk_kv_store_push push = {.row_size = (uint32_t)rows->ne[0], .n_tok = (uint32_t)rows->ne[1],
                             .n_ctx = (uint32_t)cache->ne[1]};
    vk_binding bindings[3];
    const vk_pipeline *pipeline;
    if ((status = vk_bind_tensor(ctx, rows, tensor_byte_size(rows), 4, false, &bindings[0], &push.src_offset, err)) ||
        (status = vk_bind_tensor(ctx, positions, tensor_byte_size(positions), 4, false, &bindings[1],
                                 &push.pos_offset, err)) ||
        (status = vk_bind_tensor(ctx, cache, tensor_byte_size(cache), half ? 2 : 4, true, &bindings[2],
                                 &push.cache_offset, err)) ||
        (status = vk_pipeline_get(ctx, half ? "kv_store_f16" : "kv_store_f32", VK_ELEMENTWISE_LOCAL_SIZE, 3,
                                  &pipeline, err)))
        return status;
    uint32_t gx, gy;
    vk_groups_2d(((uint64_t)total + pipeline->local_size - 1) / pipeline->local_size, &gx, &gy);
    return vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
}

/* The bytes of a cache the attention may read: rows [0, n_kv). */
static size_t cache_span(const strata_tensor *cache, int64_t n_kv)
{
    if (n_kv <= 0)
        return cache->nb[1];
    return (size_t)(n_kv - 1) * cache->nb[2] + (size_t)cache->ne[1] * cache->nb[1];
}

strata_status vk_run_attention(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *q = op->src[0], *k = op->src[1], *v = op->src[2], *positions = op->src[3];
    int64_t n_pairs = q->ne[1] * q->ne[2], n_kv = op->params.attention.n_kv;
    if (n_pairs == 0)
        return STRATA_OK;
    size_t element_bytes = k->dtype == DTYPE_F16 ? 2 : 4;
    int32_t window = op->params.attention.sliding_window;
    uint32_t visible = (uint32_t)(window > 0 && window < n_kv ? window : n_kv);
    vk_attention_push push = {
        .head_dim = (uint32_t)q->ne[0],
        .n_heads = (uint32_t)q->ne[1],
        .n_tok = (uint32_t)q->ne[2],
        .group = (uint32_t)(q->ne[1] / k->ne[1]),
        .n_kv = (uint32_t)n_kv,
        .window = window,
        .scale = op->params.attention.scale,
        .softcap = op->params.attention.softcap,
        .k_row_stride = (uint32_t)(k->nb[2] / element_bytes),
        .k_head_stride = (uint32_t)(k->nb[1] / element_bytes),
        .v_row_stride = (uint32_t)(v->nb[2] / element_bytes),
        .v_head_stride = (uint32_t)(v->nb[1] / element_bytes),
    };
    push.n_splits = vk_attention_splits((uint32_t)n_pairs, visible, &push.rows_per_split);
    size_t part_bytes = (size_t)n_pairs * push.n_splits * (push.head_dim + 2) * sizeof(float);
    vk_binding bindings[6];
    const vk_pipeline *pipeline, *combine = NULL;
    strata_status status;
    /* the scratch may be replaced (after a submit) before anything is bound */
    if (push.n_splits > 1 && (status = vk_scratch_reserve(ctx, part_bytes, err)))
        return status;
    if ((status = vk_bind_tensor(ctx, q, tensor_byte_size(q), 4, false, &bindings[0], &push.q_offset, err)) ||
        (status = vk_bind_tensor(ctx, k, cache_span(k, n_kv), element_bytes, false, &bindings[1], &push.k_offset,
                                 err)) ||
        (status = vk_bind_tensor(ctx, v, cache_span(v, n_kv), element_bytes, false, &bindings[2], &push.v_offset,
                                 err)) ||
        (status = vk_bind_tensor(ctx, positions, tensor_byte_size(positions), 4, false, &bindings[3],
                                 &push.pos_offset, err)) ||
        (status = vk_bind_tensor(ctx, op->dst, tensor_byte_size(op->dst), 4, true, &bindings[4], &push.d_offset,
                                 err)) ||
        (status = vk_pipeline_get(ctx, k->dtype == DTYPE_F16 ? "attention_f16" : "attention_f32",
                                  VK_ATTENTION_LOCAL_SIZE, 6, &pipeline, err)))
        return status;
    if (push.n_splits > 1) {
        bindings[5] = (vk_binding){.buffer = ctx->scratch, .offset = 0, .range = (part_bytes + 3) / 4 * 4,
                                   .written = true};
        if ((status = vk_pipeline_get(ctx, "attention_combine", VK_ATTENTION_LOCAL_SIZE, 2, &combine, err)))
            return status;
    } else {
        bindings[5] = bindings[4];
    }
    uint32_t gx, gy;
    vk_groups_2d((uint64_t)n_pairs, &gx, &gy);
    if ((status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, push.n_splits, err)) || !combine)
        return status;
    vk_attention_combine_push combine_push = {.head_dim = push.head_dim, .n_pairs = (uint32_t)n_pairs,
                                              .n_splits = push.n_splits, .part_offset = 0,
                                              .d_offset = push.d_offset};
    vk_binding combine_bindings[2] = {bindings[5], bindings[4]};
    combine_bindings[0].written = false;
    return vk_dispatch(ctx, combine, combine_bindings, &combine_push, sizeof combine_push, gx, gy, 1, err);
}
