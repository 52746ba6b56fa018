/* Recording of the ops that read weights in any block format: matmul
 * (matrix-vector for decode, tiled GEMM for prefill) and get_rows. The
 * shaders, their push constants and dispatch geometry are described in
 * vulkan_shader_params.h. A weight tensor larger than one binding
 * (maxStorageBufferRange) is bound as several row ranges, one dispatch each. */
#include <stdio.h>

#include "vulkan_internal.h"
#include "vulkan_shader_params.h"

bool vk_weight_dtype_supported(strata_dtype dtype)
{
    const dtype_traits *traits = dtype_get_traits((int)dtype);
    if (!traits)
        return false;
    char name[64];
    snprintf(name, sizeof name, "matmul_%s", dtype_name(dtype));
    if (!vk_shader_present(name))
        return false;
    snprintf(name, sizeof name, "matmul_tiled_%s", dtype_name(dtype));
    if (!vk_shader_present(name))
        return false;
    snprintf(name, sizeof name, "get_rows_%s", dtype_name(dtype));
    return vk_shader_present(name);
}

/* Binds rows [row_begin, row_begin + row_count) of weight (rows of
 * row_bytes): *offset_bytes receives where the first row starts inside the
 * binding. */
static strata_status bind_weight_rows(const vk_context *ctx, const strata_tensor *weight, size_t row_bytes,
                                      uint32_t row_begin, uint32_t row_count, vk_binding *out,
                                      uint32_t *offset_bytes, strata_error *err)
{
    strata_tensor rows = *weight;
    rows.offset = weight->offset + (size_t)row_begin * row_bytes;
    if (rows.offset % 2 != 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "weight %s starts at odd byte offset %zu",
                           weight->name ? weight->name : "src0", weight->offset);
    return vk_bind_tensor(ctx, &rows, (size_t)row_count * row_bytes, 1, false, out, offset_bytes, err);
}

strata_status vk_run_matmul(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *weight = op->src[0], *x = op->src[1], *dst = op->dst;
    uint32_t n_out = (uint32_t)weight->ne[1], n_tok = (uint32_t)tensor_row_count(x);
    if (n_out == 0 || n_tok == 0)
        return STRATA_OK;
    size_t row_bytes = weight->nb[1];
    uint32_t rows_per_binding = vk_rows_per_binding(row_bytes, ctx->properties.limits.maxStorageBufferRange,
                                                    vk_binding_alignment(ctx));
    if (rows_per_binding == 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "one row of weight %s (%zu bytes) does not fit one binding",
                           weight->name ? weight->name : "src0", row_bytes);
    vk_matmul_kernel kernel = vk_matmul_choose(n_tok, ctx->features.cooperative_matrix);
    char shader[64];
    snprintf(shader, sizeof shader, "%s_%s", kernel == VK_MATMUL_TILED ? "matmul_tiled" : "matmul",
             dtype_name(weight->dtype));
    uint32_t local_size = kernel == VK_MATMUL_TILED ? VK_MATMUL_TILED_LOCAL_SIZE : VK_MATMUL_VECTOR_LOCAL_SIZE;
    vk_matmul_params params = {.n_in = (uint32_t)weight->ne[0], .n_tok = n_tok,
                               .weight_row_bytes = (uint32_t)row_bytes, .input_stride = (uint32_t)x->ne[0],
                               .output_stride = n_out};
    vk_binding bindings[3];
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = vk_bind_tensor(ctx, x, tensor_byte_size(x), 4, false, &bindings[1], &params.input_offset, err)) ||
        (status = vk_bind_tensor(ctx, dst, tensor_byte_size(dst), 4, true, &bindings[2], &params.output_offset,
                                 err)) ||
        (status = vk_pipeline_get(ctx, shader, local_size, 3, &pipeline, err)))
        return status;
    for (uint32_t row_begin = 0; row_begin < n_out; row_begin += rows_per_binding) {
        params.row_begin = row_begin;
        params.row_count = n_out - row_begin < rows_per_binding ? n_out - row_begin : rows_per_binding;
        if ((status = bind_weight_rows(ctx, weight, row_bytes, row_begin, params.row_count, &bindings[0],
                                       &params.weight_offset_bytes, err)))
            return status;
        uint32_t groups[3];
        if (!vk_matmul_groups(&params, kernel, groups))
            return strata_fail(err, STRATA_UNSUPPORTED, "%u rows x %u tokens need more workgroups than Vulkan allows",
                               params.row_count, n_tok);
        if ((status = vk_dispatch(ctx, pipeline, bindings, &params, sizeof params, groups[0], groups[1], groups[2],
                                  err)))
            return status;
    }
    return STRATA_OK;
}

strata_status vk_run_get_rows(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *table = op->src[0], *ids = op->src[1], *dst = op->dst;
    uint32_t n_vocab = (uint32_t)table->ne[1], n_rows = (uint32_t)ids->ne[0];
    if (n_vocab == 0 || n_rows == 0 || table->ne[0] == 0)
        return STRATA_OK;
    size_t row_bytes = table->nb[1];
    uint32_t rows_per_binding = vk_rows_per_binding(row_bytes, ctx->properties.limits.maxStorageBufferRange,
                                                    vk_binding_alignment(ctx));
    if (rows_per_binding == 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "one row of table %s (%zu bytes) does not fit one binding",
                           table->name ? table->name : "src0", row_bytes);
    char shader[64];
    snprintf(shader, sizeof shader, "get_rows_%s", dtype_name(table->dtype));
    vk_get_rows_params params = {.n_embd = (uint32_t)table->ne[0], .n_rows = n_rows,
                                 .weight_row_bytes = (uint32_t)row_bytes, .output_stride = (uint32_t)table->ne[0]};
    vk_binding bindings[3];
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = vk_bind_tensor(ctx, ids, tensor_byte_size(ids), 4, false, &bindings[1], &params.ids_offset, err)) ||
        (status = vk_bind_tensor(ctx, dst, tensor_byte_size(dst), 4, true, &bindings[2], &params.output_offset,
                                 err)) ||
        (status = vk_pipeline_get(ctx, shader, VK_GET_ROWS_LOCAL_SIZE, 3, &pipeline, err)))
        return status;
    for (uint32_t row_begin = 0; row_begin < n_vocab; row_begin += rows_per_binding) {
        params.row_begin = row_begin;
        params.row_count = n_vocab - row_begin < rows_per_binding ? n_vocab - row_begin : rows_per_binding;
        if ((status = bind_weight_rows(ctx, table, row_bytes, row_begin, params.row_count, &bindings[0],
                                       &params.weight_offset_bytes, err)))
            return status;
        uint32_t groups[3];
        if (!vk_get_rows_groups(&params, pipeline->local_size, groups))
            return strata_fail(err, STRATA_UNSUPPORTED, "%u rows of %u elements need more workgroups than Vulkan allows",
                               n_rows, params.n_embd);
        if ((status = vk_dispatch(ctx, pipeline, bindings, &params, sizeof params, groups[0], groups[1], groups[2],
                                  err)))
            return status;
    }
    return STRATA_OK;
}
