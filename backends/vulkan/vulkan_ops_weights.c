/* Recording of the ops that read weights in any block format: matmul
 * (matrix-vector for decode, tiled GEMM for prefill) and get_rows. The
 * shaders, their push constants and dispatch geometry are described in
 * vulkan_shader_params.h. A weight tensor larger than one binding (the
 * device's binding limit) is bound as several row ranges, and activations
 * and outputs larger than one binding in groups of tokens (vulkan_split.h),
 * one dispatch each. */
#include <stdio.h>

#include "vulkan_internal.h"
#include "vulkan_shader_params.h"
#include "vulkan_split.h"

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

/* The byte alignment a row of dtype must start at: the shaders read
 * weights two bytes at a time (shaders/dequant.glsl), except MXFP4's, whose
 * 17-byte blocks put every other row at an odd byte and which reads bytes. */
size_t vk_weight_row_alignment(strata_dtype dtype)
{
    return dtype == DTYPE_MXFP4 ? 1 : 2;
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
    if (rows.offset % vk_weight_row_alignment(weight->dtype) != 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "weight %s: row %u starts at odd byte offset %zu",
                           weight->name ? weight->name : "src0", row_begin, rows.offset);
    return vk_bind_tensor(ctx, &rows, (size_t)row_count * row_bytes, 1, false, out, offset_bytes, err);
}

strata_status vk_run_matmul(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *weight = op->src[0], *x = op->src[1], *dst = op->dst;
    uint32_t n_out = (uint32_t)weight->ne[1], n_tok = (uint32_t)tensor_row_count(x), n_in = (uint32_t)x->ne[0];
    if (n_out == 0 || n_tok == 0)
        return STRATA_OK;
    size_t row_bytes = weight->nb[1];
    VkDeviceSize alignment = vk_binding_alignment(ctx);
    uint32_t rows_per_binding = vk_rows_per_binding(row_bytes, ctx->bind_limit, alignment);
    if (rows_per_binding == 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "one row of weight %s (%zu bytes) does not fit one binding",
                           weight->name ? weight->name : "src0", row_bytes);
    /* tokens per dispatch: x's columns fit a binding, and so do whole dst
     * columns where one fits (else one token at a time, its dst column cut
     * with the weight's rows) */
    uint32_t tokens = vk_min_u32(vk_rows_per_binding(4ull * n_in, ctx->bind_limit, alignment),
                                 vk_rows_per_binding(4ull * n_out, ctx->bind_limit, alignment));
    if (tokens == 0)
        tokens = vk_rows_per_binding(4ull * n_in, ctx->bind_limit, alignment) ? 1 : 0;
    if (tokens == 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "one column of %s (%u floats) does not fit one binding",
                           x->name ? x->name : "src1", n_in);
    vk_matmul_kernel kernel = vk_matmul_choose(vk_min_u32(tokens, n_tok), ctx->features.cooperative_matrix);
    char shader[64];
    snprintf(shader, sizeof shader, "%s_%s", kernel == VK_MATMUL_TILED ? "matmul_tiled" : "matmul",
             dtype_name(weight->dtype));
    uint32_t local_size = kernel == VK_MATMUL_TILED ? VK_MATMUL_TILED_LOCAL_SIZE : VK_MATMUL_VECTOR_LOCAL_SIZE;
    /* the low-bit formats read their lookup tables from binding 3 */
    vk_binding bindings[4];
    int n_bindings = vk_lowbit_has_tables(weight->dtype) ? 4 : 3;
    const vk_pipeline *pipeline;
    strata_status status = vk_pipeline_get(ctx, shader, local_size, n_bindings, &pipeline, err);
    if (status == STRATA_OK && n_bindings == 4)
        status = vk_lowbit_tables_bind(ctx, weight->dtype, &bindings[3], err);
    for (uint32_t tok_begin = 0; status == STRATA_OK && tok_begin < n_tok; tok_begin += tokens) {
        uint32_t tok_count = vk_min_u32(tokens, n_tok - tok_begin);
        /* dst rows per dispatch: the whole span of the group's columns fits */
        uint64_t other_columns = 4ull * n_out * (tok_count - 1);
        uint32_t dst_rows = other_columns < ctx->bind_limit
                                ? vk_strided_rows_per_binding(4, 4, ctx->bind_limit - other_columns, alignment)
                                : 0;
        uint32_t rows_per_dispatch = vk_min_u32(rows_per_binding, dst_rows);
        if (rows_per_dispatch == 0)
            return strata_fail(err, STRATA_UNSUPPORTED, "the output of matmul %s does not fit one binding",
                               weight->name ? weight->name : "src0");
        vk_matmul_params params = {.n_in = n_in, .n_tok = tok_count, .weight_row_bytes = (uint32_t)row_bytes,
                                   .input_stride = n_in, .output_stride = n_out};
        if ((status = vk_bind_range(ctx, x, 4ull * n_in * tok_begin, 4ull * n_in * tok_count, 4, false,
                                    &bindings[1], &params.input_offset, err)))
            return status;
        for (uint32_t row_begin = 0; row_begin < n_out; row_begin += rows_per_dispatch) {
            params.row_count = vk_min_u32(rows_per_dispatch, n_out - row_begin);
            uint64_t dst_begin = 4ull * ((uint64_t)n_out * tok_begin + row_begin);
            uint64_t dst_span = other_columns + 4ull * params.row_count;
            if ((status = bind_weight_rows(ctx, weight, row_bytes, row_begin, params.row_count, &bindings[0],
                                           &params.weight_offset_bytes, err)) ||
                (status = vk_bind_range(ctx, dst, dst_begin, dst_span, 4, true, &bindings[2], &params.output_offset,
                                        err)))
                return status;
            uint32_t groups[3];
            if (!vk_matmul_groups(&params, kernel, groups))
                return strata_fail(err, STRATA_UNSUPPORTED,
                                   "%u rows x %u tokens need more workgroups than Vulkan allows", params.row_count,
                                   tok_count);
            if ((status = vk_dispatch(ctx, pipeline, bindings, &params, sizeof params, groups[0], groups[1],
                                      groups[2], err)))
                return status;
        }
    }
    return status;
}

strata_status vk_run_get_rows(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *table = op->src[0], *ids = op->src[1], *dst = op->dst;
    uint32_t n_vocab = (uint32_t)table->ne[1], n_rows = (uint32_t)ids->ne[0], n_embd = (uint32_t)table->ne[0];
    if (n_vocab == 0 || n_rows == 0 || n_embd == 0)
        return STRATA_OK;
    size_t row_bytes = table->nb[1];
    VkDeviceSize alignment = vk_binding_alignment(ctx);
    uint32_t rows_per_binding = vk_rows_per_binding(row_bytes, ctx->bind_limit, alignment);
    /* ids per dispatch: their dst rows (and the ids) fit a binding */
    uint32_t ids_per_dispatch = vk_min_u32(vk_rows_per_binding(4ull * n_embd, ctx->bind_limit, alignment),
                                           vk_rows_per_binding(4, ctx->bind_limit, alignment));
    if (rows_per_binding == 0 || ids_per_dispatch == 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "one row of table %s (%zu bytes) does not fit one binding",
                           table->name ? table->name : "src0", row_bytes);
    char shader[64];
    snprintf(shader, sizeof shader, "get_rows_%s", dtype_name(table->dtype));
    vk_binding bindings[4];
    int n_bindings = vk_lowbit_has_tables(table->dtype) ? 4 : 3;
    const vk_pipeline *pipeline;
    strata_status status = vk_pipeline_get(ctx, shader, VK_GET_ROWS_LOCAL_SIZE, n_bindings, &pipeline, err);
    if (status == STRATA_OK && n_bindings == 4)
        status = vk_lowbit_tables_bind(ctx, table->dtype, &bindings[3], err);
    for (uint32_t id_begin = 0; status == STRATA_OK && id_begin < n_rows; id_begin += ids_per_dispatch) {
        uint32_t id_count = vk_min_u32(ids_per_dispatch, n_rows - id_begin);
        vk_get_rows_params params = {.n_embd = n_embd, .n_rows = id_count, .weight_row_bytes = (uint32_t)row_bytes,
                                     .output_stride = n_embd};
        if ((status = vk_bind_range(ctx, ids, 4ull * id_begin, 4ull * id_count, 4, false, &bindings[1],
                                    &params.ids_offset, err)) ||
            (status = vk_bind_range(ctx, dst, 4ull * n_embd * id_begin, 4ull * n_embd * id_count, 4, true,
                                    &bindings[2], &params.output_offset, err)))
            return status;
        for (uint32_t row_begin = 0; row_begin < n_vocab; row_begin += rows_per_binding) {
            params.row_begin = row_begin;
            params.row_count = vk_min_u32(rows_per_binding, n_vocab - row_begin);
            if ((status = bind_weight_rows(ctx, table, row_bytes, row_begin, params.row_count, &bindings[0],
                                           &params.weight_offset_bytes, err)))
                return status;
            uint32_t groups[3];
            if (!vk_get_rows_groups(&params, pipeline->local_size, groups))
                return strata_fail(err, STRATA_UNSUPPORTED,
                                   "%u rows of %u elements need more workgroups than Vulkan allows", id_count,
                                   n_embd);
            if ((status = vk_dispatch(ctx, pipeline, bindings, &params, sizeof params, groups[0], groups[1],
                                      groups[2], err)))
                return status;
        }
    }
    return status;
}
