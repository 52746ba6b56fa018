/* Recording of the mixture-of-experts ops: the router's top-k
 * (shaders/topk.comp), the chosen experts' weights (moe_weights.comp), the
 * expert matmul (moe_group.comp, then matmul.comp or matmul_tiled.comp
 * built with MATMUL_ID) and
 * the weighted sum (moe_sum.comp). Inputs were checked (contract, shaders,
 * plans). Work is cut into bindings by vulkan_moe_plan.h.
 *
 * Expert ids usually come from topk on the device, so they are not checked
 * on the host (that would need a submit per layer); when the host uploaded
 * them (a shadow of the upload is kept) they are, and an id out of range or
 * repeated is an error, as on the CPU. On the device an id out of range
 * reads no weight and no probability: its pair is left out of the expert
 * table, and moe_weights gives it 0. */
#include <stdio.h>

#include "vulkan_internal.h"
#include "vulkan_moe_plan.h"
#include "vulkan_push.h"

/* The ids [k, n_tok] as the host uploaded them, checked like the CPU's:
 * each in [0, n_expert), distinct within a column. STRATA_OK when there is
 * no host copy (ids the device computed). */
static strata_status check_uploaded_ids(const vk_context *ctx, const strata_tensor *ids, int64_t n_expert,
                                        strata_error *err)
{
    int64_t k = ids->ne[0], n_tok = ids->ne[1];
    const int32_t *values = vk_shadow_find(ctx, ids->buffer, ids->offset, tensor_byte_size(ids));
    if (!values)
        return STRATA_OK;
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t j = 0; j < k; j++) {
            int32_t id = values[t * k + j];
            if (id < 0 || id >= n_expert)
                return strata_fail(err, STRATA_INVALID_INPUT,
                                   "expert id %d (slot %lld of token %lld) is outside [0, %lld)", id, (long long)j,
                                   (long long)t, (long long)n_expert);
            for (int64_t i = 0; i < j; i++)
                if (values[t * k + i] == id)
                    return strata_fail(err, STRATA_INVALID_INPUT, "expert id %d appears twice for token %lld", id,
                                       (long long)t);
        }
    return STRATA_OK;
}

/* Columns per dispatch when a column takes each of these byte counts in
 * its own binding; an error when not even one fits. */
static strata_status columns_per_dispatch(const vk_context *ctx, const uint64_t *column_bytes, int n, uint32_t *out,
                                          strata_error *err)
{
    VkDeviceSize alignment = vk_binding_alignment(ctx);
    *out = UINT32_MAX;
    for (int i = 0; i < n; i++)
        *out = vk_min_u32(*out, vk_rows_per_binding(column_bytes[i], ctx->bind_limit, alignment));
    if (*out == 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "one column (%llu bytes) is more than the device binds at once "
                           "(%llu KiB)", (unsigned long long)column_bytes[0], (unsigned long long)(ctx->bind_limit >> 10));
    return STRATA_OK;
}

strata_status vk_run_topk(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *x = op->src[0], *dst = op->dst;
    uint32_t n = (uint32_t)x->ne[0], n_tok = (uint32_t)x->ne[1], k = (uint32_t)dst->ne[0];
    uint64_t column_bytes[2] = {4ull * n, 4ull * k};
    uint32_t columns;
    const vk_pipeline *pipeline;
    strata_status status = columns_per_dispatch(ctx, column_bytes, 2, &columns, err);
    if (status == STRATA_OK)
        status = vk_pipeline_get(ctx, "topk", VK_MOE_LOCAL_SIZE, 2, &pipeline, err);
    for (uint32_t begin = 0; status == STRATA_OK && begin < n_tok; begin += columns) {
        uint32_t count = vk_min_u32(columns, n_tok - begin);
        vk_topk_push push = {.n = n, .k = k, .columns = count};
        vk_binding bindings[2];
        if ((status = vk_bind_range(ctx, x, 4ull * n * begin, 4ull * n * count, 4, false, &bindings[0],
                                    &push.x_offset, err)) ||
            (status = vk_bind_range(ctx, dst, 4ull * k * begin, 4ull * k * count, 4, true, &bindings[1],
                                    &push.d_offset, err)))
            break;
        uint32_t gx, gy;
        vk_groups_2d(count, &gx, &gy);
        status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
    }
    return status;
}

strata_status vk_run_moe_weights(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *probs = op->src[0], *ids = op->src[1], *dst = op->dst;
    uint32_t n_expert = (uint32_t)probs->ne[0], n_tok = (uint32_t)probs->ne[1], k = (uint32_t)ids->ne[0];
    uint64_t column_bytes[2] = {4ull * n_expert, 4ull * k};
    uint32_t columns;
    const vk_pipeline *pipeline;
    strata_status status = check_uploaded_ids(ctx, ids, n_expert, err);
    if (status == STRATA_OK)
        status = columns_per_dispatch(ctx, column_bytes, 2, &columns, err);
    if (status == STRATA_OK)
        status = vk_pipeline_get(ctx, "moe_weights", VK_MOE_LOCAL_SIZE, 3, &pipeline, err);
    for (uint32_t begin = 0; status == STRATA_OK && begin < n_tok; begin += columns) {
        uint32_t count = vk_min_u32(columns, n_tok - begin);
        vk_moe_weights_push push = {.n_expert = n_expert, .k = k, .columns = count,
                                    .normalize = op->params.moe_weights.normalize ? 1u : 0u};
        vk_binding bindings[3];
        if ((status = vk_bind_range(ctx, probs, 4ull * n_expert * begin, 4ull * n_expert * count, 4, false,
                                    &bindings[0], &push.p_offset, err)) ||
            (status = vk_bind_range(ctx, ids, 4ull * k * begin, 4ull * k * count, 4, false, &bindings[1],
                                    &push.ids_offset, err)) ||
            (status = vk_bind_range(ctx, dst, 4ull * k * begin, 4ull * k * count, 4, true, &bindings[2],
                                    &push.d_offset, err)))
            break;
        uint32_t gx, gy;
        vk_groups_2d(vk_div_ceil(count, pipeline->local_size), &gx, &gy);
        status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
    }
    return status;
}

strata_status vk_run_moe_sum(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *y = op->src[0], *weights = op->src[1], *dst = op->dst;
    uint32_t n = (uint32_t)y->ne[0], k = (uint32_t)y->ne[1], n_tok = (uint32_t)y->ne[2];
    vk_moe_sum_plan plan;
    if (!vk_moe_sum_plan_make(n, k, ctx->bind_limit, vk_binding_alignment(ctx), &plan))
        return strata_fail(err, STRATA_UNSUPPORTED, "the binding limit (%llu bytes) cannot hold one element",
                           (unsigned long long)ctx->bind_limit);
    const vk_pipeline *pipeline;
    strata_status status = vk_pipeline_get(ctx, "moe_sum", VK_ELEMENTWISE_LOCAL_SIZE, 3, &pipeline, err);
    for (uint32_t t0 = 0; status == STRATA_OK && t0 < n_tok; t0 += plan.tokens) {
        uint32_t tc = vk_min_u32(plan.tokens, n_tok - t0);
        for (uint32_t j0 = 0; status == STRATA_OK && j0 < k; j0 += plan.slots) {
            uint32_t sc = vk_min_u32(plan.slots, k - j0);
            for (uint32_t i0 = 0; status == STRATA_OK && i0 < n; i0 += plan.elements) {
                uint32_t ic = vk_min_u32(plan.elements, n - i0);
                vk_moe_sum_push push = {.n = ic, .slots = sc, .tokens = tc, .y_stride = n, .k = k, .d_stride = n,
                                        .accumulate = j0 > 0, .sigmoid = op->params.moe_sum.sigmoid};
                uint64_t first_column = (uint64_t)t0 * k + j0, last_column = (uint64_t)(tc - 1) * k + (sc - 1);
                vk_binding bindings[3];
                if ((status = vk_bind_range(ctx, y, 4ull * (first_column * n + i0), 4ull * (last_column * n + ic),
                                            4, false, &bindings[0], &push.y_offset, err)) ||
                    (status = vk_bind_range(ctx, weights, 4ull * first_column, 4ull * (last_column + 1), 4, false,
                                            &bindings[1], &push.w_offset, err)) ||
                    (status = vk_bind_range(ctx, dst, 4ull * ((uint64_t)t0 * n + i0),
                                            4ull * ((uint64_t)(tc - 1) * n + ic), 4, true, &bindings[2],
                                            &push.d_offset, err)))
                    break;
                uint32_t gx, gy;
                vk_groups_2d(vk_div_ceil(ic * tc, pipeline->local_size), &gx, &gy);
                status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
            }
        }
    }
    return status;
}

/* Records the expert matmul of tokens [tok_begin, tok_begin + tok_count):
 * the expert table of the pass, then per range of output rows, per group
 * of experts that one binding holds, one dispatch. */
static strata_status record_matmul_id_pass(vk_context *ctx, const backend_op *op, const vk_matmul_id_plan *plan,
                                           const vk_pipeline *group, vk_binding *bindings, uint32_t tok_begin,
                                           uint32_t tok_count, strata_error *err)
{
    const strata_tensor *experts = op->src[0], *x = op->src[1], *ids = op->src[2], *dst = op->dst;
    uint32_t n_in = (uint32_t)experts->ne[0], n_out = (uint32_t)experts->ne[1], n_expert = (uint32_t)experts->ne[2];
    uint32_t k = (uint32_t)ids->ne[0], k_x = (uint32_t)x->ne[1], n_pairs = k * tok_count;
    uint64_t row_bytes = experts->nb[1], expert_bytes = experts->nb[2];
    VkDeviceSize alignment = vk_binding_alignment(ctx);

    /* the expert table: binding 1 of moe_group, binding 3 of the matmul */
    uint64_t table_bytes = vk_moe_table_bytes(n_expert, tok_count);
    vk_moe_group_push group_push = {.n_expert = n_expert, .n_pairs = n_pairs, .stride = tok_count};
    vk_binding group_bindings[2];
    strata_status status = vk_scratch_reserve(ctx, table_bytes, err);
    if (status != STRATA_OK ||
        (status = vk_bind_range(ctx, ids, 4ull * k * tok_begin, 4ull * n_pairs, 4, false, &group_bindings[0],
                                &group_push.ids_offset, err)))
        return status;
    group_bindings[1] = (vk_binding){.buffer = ctx->scratch, .offset = 0, .range = table_bytes, .written = true};
    uint32_t gx, gy;
    vk_groups_2d(vk_div_ceil(n_expert, group->local_size), &gx, &gy);
    if ((status = vk_dispatch(ctx, group, group_bindings, &group_push, sizeof group_push, gx, gy, 1, err)))
        return status;
    bindings[3] = group_bindings[1];
    bindings[3].written = false;

    vk_matmul_id_params params = {
        .matmul = {.n_in = n_in, .n_tok = tok_count, .weight_row_bytes = (uint32_t)row_bytes, .input_stride = n_in,
                   .output_stride = n_out},
        .expert_bytes = (uint32_t)expert_bytes, .n_expert = n_expert, .list_stride = tok_count, .n_used = k,
        .input_per_slot = k_x == k && k > 1,
    };
    /* an expert has at most tok_count pairs: past the vector kernel's tokens, tiles pay */
    vk_matmul_kernel kernel = vk_matmul_choose(tok_count, ctx->features.cooperative_matrix);
    char shader[64];
    snprintf(shader, sizeof shader, "%s_%s", kernel == VK_MATMUL_TILED ? "matmul_id_tiled" : "matmul_id",
             dtype_name(experts->dtype));
    const vk_pipeline *matmul;
    if ((status = vk_pipeline_get(ctx, shader,
                                  kernel == VK_MATMUL_TILED ? VK_MATMUL_TILED_LOCAL_SIZE : VK_MATMUL_VECTOR_LOCAL_SIZE,
                                  vk_lowbit_has_tables(experts->dtype) ? 5 : 4, &matmul, err)) ||
        (status = vk_bind_range(ctx, x, 4ull * n_in * k_x * tok_begin, 4ull * n_in * k_x * tok_count, 4, false,
                                &bindings[1], &params.matmul.input_offset, err)))
        return status;
    size_t row_alignment = vk_weight_row_alignment(experts->dtype);
    for (uint32_t row_begin = 0; row_begin < n_out; row_begin += plan->rows_per_dispatch) {
        uint32_t row_count = vk_min_u32(plan->rows_per_dispatch, n_out - row_begin);
        params.matmul.row_count = row_count;
        uint64_t dst_begin = 4ull * ((uint64_t)n_out * k * tok_begin + row_begin);
        uint64_t dst_span = 4ull * ((uint64_t)n_out * (n_pairs - 1) + row_count);
        if ((status = vk_bind_range(ctx, dst, dst_begin, dst_span, 4, true, &bindings[2],
                                    &params.matmul.output_offset, err)))
            return status;
        uint32_t per_dispatch = vk_matmul_id_experts_per_dispatch(expert_bytes, row_count, row_bytes, tok_count,
                                                                  ctx->bind_limit, alignment);
        if (per_dispatch == 0)
            return strata_fail(err, STRATA_UNSUPPORTED, "rows of experts %s do not fit one binding",
                               experts->name ? experts->name : "src0");
        for (uint32_t e = 0; e < n_expert; e += per_dispatch) {
            params.expert_begin = e;
            params.expert_count = vk_min_u32(per_dispatch, n_expert - e);
            uint64_t weight_begin = (uint64_t)e * expert_bytes + (uint64_t)row_begin * row_bytes;
            uint64_t weight_span = (uint64_t)(params.expert_count - 1) * expert_bytes + row_count * row_bytes;
            if ((experts->offset + weight_begin) % row_alignment != 0)
                return strata_fail(err, STRATA_INVALID_INPUT, "experts %s: row %u of expert %u starts at odd byte %zu",
                                   experts->name ? experts->name : "src0", row_begin, e,
                                   (size_t)(experts->offset + weight_begin));
            if ((status = vk_bind_range(ctx, experts, weight_begin, weight_span, 1, false, &bindings[0],
                                        &params.matmul.weight_offset_bytes, err)))
                return status;
            uint32_t groups[3];
            if (!vk_matmul_id_groups(&params, kernel, groups))
                return strata_fail(err, STRATA_UNSUPPORTED, "%u rows of %u experts need more workgroups than Vulkan "
                                   "allows", row_count, params.expert_count);
            if ((status = vk_dispatch(ctx, matmul, bindings, &params, sizeof params, groups[0], groups[1], groups[2],
                                      err)))
                return status;
        }
    }
    return STRATA_OK;
}

strata_status vk_run_matmul_id(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *experts = op->src[0], *ids = op->src[2];
    uint32_t n_tok = (uint32_t)ids->ne[1];
    vk_matmul_id_dims dims = vk_matmul_id_dims_of(op, ctx->bind_limit, vk_binding_alignment(ctx));
    vk_matmul_id_plan plan;
    strata_status status = check_uploaded_ids(ctx, ids, experts->ne[2], err);
    if (status != STRATA_OK)
        return status;
    if (!vk_matmul_id_plan_make(&dims, &plan))
        return strata_fail(err, STRATA_UNSUPPORTED, "the experts' rows or one token do not fit one binding");
    vk_binding bindings[5];
    const vk_pipeline *group;
    if ((status = vk_pipeline_get(ctx, "moe_group", VK_MOE_LOCAL_SIZE, 2, &group, err)) ||
        (vk_lowbit_has_tables(experts->dtype) &&
         (status = vk_lowbit_tables_bind(ctx, experts->dtype, &bindings[4], err))))
        return status;
    for (uint32_t tok_begin = 0; tok_begin < n_tok; tok_begin += plan.tokens_per_pass)
        if ((status = record_matmul_id_pass(ctx, op, &plan, group, bindings, tok_begin,
                                            vk_min_u32(plan.tokens_per_pass, n_tok - tok_begin), err)))
            return status;
    return STRATA_OK;
}
