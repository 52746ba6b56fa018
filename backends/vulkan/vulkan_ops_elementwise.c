/* Recording of the element-wise and row-wise ops: add, mul, scale, swiglu,
 * geglu (shaders/elementwise.comp), rms_norm, softmax, argmax. Inputs were
 * checked (F32, contiguous, shapes). In-place ops bind the same range twice.
 * Tensors larger than one binding are cut into pieces of elements or of
 * whole rows (vulkan_split.h), one dispatch each. */
#include "vulkan_internal.h"
#include "vulkan_push.h"
#include "vulkan_split.h"

static strata_status record_elementwise(vk_context *ctx, const backend_op *op, const char *shader, strata_error *err)
{
    const strata_tensor *a = op->src[0], *b = op->src[1] ? op->src[1] : op->src[0];
    uint32_t n = (uint32_t)tensor_element_count(a), period = (uint32_t)tensor_element_count(b);
    if (n == 0)
        return STRATA_OK;
    uint32_t fit = vk_rows_per_binding(sizeof(float), ctx->bind_limit, vk_binding_alignment(ctx));
    const vk_pipeline *pipeline;
    strata_status status = vk_pipeline_get(ctx, shader, VK_ELEMENTWISE_LOCAL_SIZE, 3, &pipeline, err);
    for (uint32_t begin = 0; status == STRATA_OK && begin < n;) {
        vk_elementwise_piece piece = vk_elementwise_next(n, period, fit, begin);
        vk_elementwise_push push = {.n = piece.count, .b_period = piece.b_period, .value = op->params.scale.value};
        uint32_t b_count = piece.b_period < piece.count ? piece.b_period : piece.count;
        vk_binding bindings[3];
        if ((status = vk_bind_range(ctx, a, 4ull * begin, 4ull * piece.count, 4, false, &bindings[0], &push.a_offset,
                                    err)) ||
            (status = vk_bind_range(ctx, b, 4ull * piece.b_begin, 4ull * b_count, 4, false, &bindings[1],
                                    &push.b_offset, err)) ||
            (status = vk_bind_range(ctx, op->dst, 4ull * begin, 4ull * piece.count, 4, true, &bindings[2],
                                    &push.d_offset, err)))
            break;
        uint32_t gx, gy;
        vk_groups_2d(((uint64_t)piece.count + pipeline->local_size - 1) / pipeline->local_size, &gx, &gy);
        status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
        begin += piece.count;
    }
    return status;
}

/* How many rows of row_bytes (and dst rows of dst_row_bytes) one dispatch
 * takes; an error naming the op's tensor when not even one fits. */
static strata_status rows_per_dispatch(const vk_context *ctx, const strata_tensor *x, uint64_t row_bytes,
                                       uint64_t dst_row_bytes, uint32_t *out, strata_error *err)
{
    VkDeviceSize alignment = vk_binding_alignment(ctx);
    *out = vk_min_u32(vk_rows_per_binding(row_bytes, ctx->bind_limit, alignment),
                      vk_rows_per_binding(dst_row_bytes, ctx->bind_limit, alignment));
    if (*out == 0)
        return strata_fail(err, STRATA_UNSUPPORTED, "one row of %s (%llu bytes) is more than the device binds at once "
                           "(%llu KiB)", x->name ? x->name : "src0", (unsigned long long)row_bytes,
                           (unsigned long long)(ctx->bind_limit >> 10));
    return STRATA_OK;
}

strata_status vk_run_add(vk_context *ctx, const backend_op *op, strata_error *err)
{
    return record_elementwise(ctx, op, "add", err);
}

strata_status vk_run_mul(vk_context *ctx, const backend_op *op, strata_error *err)
{
    return record_elementwise(ctx, op, "mul", err);
}

strata_status vk_run_scale(vk_context *ctx, const backend_op *op, strata_error *err)
{
    return record_elementwise(ctx, op, "scale", err);
}

strata_status vk_run_swiglu(vk_context *ctx, const backend_op *op, strata_error *err)
{
    return record_elementwise(ctx, op, "swiglu", err);
}

strata_status vk_run_geglu(vk_context *ctx, const backend_op *op, strata_error *err)
{
    return record_elementwise(ctx, op, "geglu", err);
}

strata_status vk_run_rms_norm(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *x = op->src[0], *weight = op->src[1] ? op->src[1] : op->src[0];
    uint32_t rows = (uint32_t)tensor_row_count(x), n = (uint32_t)x->ne[0];
    if (rows == 0 || n == 0)
        return STRATA_OK;
    uint32_t per_dispatch;
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = rows_per_dispatch(ctx, x, 4ull * n, 4ull * n, &per_dispatch, err)) ||
        (status = vk_pipeline_get(ctx, "rms_norm", VK_ROW_LOCAL_SIZE, 3, &pipeline, err)))
        return status;
    for (uint32_t begin = 0; begin < rows; begin += per_dispatch) {
        uint32_t count = vk_min_u32(per_dispatch, rows - begin);
        vk_rms_norm_push push = {.n = n, .rows = count, .has_weight = op->src[1] != NULL,
                                 .eps = op->params.rms_norm.eps};
        vk_binding bindings[3];
        if ((status = vk_bind_range(ctx, x, 4ull * n * begin, 4ull * n * count, 4, false, &bindings[0],
                                    &push.x_offset, err)) ||
            (status = vk_bind_range(ctx, weight, 0, 4ull * n, 4, false, &bindings[1], &push.w_offset, err)) ||
            (status = vk_bind_range(ctx, op->dst, 4ull * n * begin, 4ull * n * count, 4, true, &bindings[2],
                                    &push.d_offset, err)))
            return status;
        uint32_t gx, gy;
        vk_groups_2d(count, &gx, &gy);
        if ((status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err)))
            return status;
    }
    return STRATA_OK;
}

/* softmax and argmax: one workgroup per row, src0 then dst; dst holds a row
 * of floats per row (softmax), or one I32 when one_per_row (argmax). */
static strata_status record_rows(vk_context *ctx, const backend_op *op, const char *shader, bool one_per_row,
                                 strata_error *err)
{
    const strata_tensor *x = op->src[0];
    uint32_t rows = (uint32_t)tensor_row_count(x), n = (uint32_t)x->ne[0];
    if (rows == 0 || n == 0)
        return STRATA_OK;
    uint64_t dst_row_bytes = one_per_row ? 4 : 4ull * n;
    uint32_t per_dispatch;
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = rows_per_dispatch(ctx, x, 4ull * n, dst_row_bytes, &per_dispatch, err)) ||
        (status = vk_pipeline_get(ctx, shader, VK_ROW_LOCAL_SIZE, 2, &pipeline, err)))
        return status;
    for (uint32_t begin = 0; begin < rows; begin += per_dispatch) {
        uint32_t count = vk_min_u32(per_dispatch, rows - begin);
        vk_row_push push = {.n = n, .rows = count};
        vk_binding bindings[2];
        if ((status = vk_bind_range(ctx, x, 4ull * n * begin, 4ull * n * count, 4, false, &bindings[0],
                                    &push.x_offset, err)) ||
            (status = vk_bind_range(ctx, op->dst, dst_row_bytes * begin, dst_row_bytes * count, 4, true,
                                    &bindings[1], &push.d_offset, err)))
            return status;
        uint32_t gx, gy;
        vk_groups_2d(count, &gx, &gy);
        if ((status = vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err)))
            return status;
    }
    return STRATA_OK;
}

strata_status vk_run_softmax(vk_context *ctx, const backend_op *op, strata_error *err)
{
    return record_rows(ctx, op, "softmax", false, err);
}

strata_status vk_run_argmax(vk_context *ctx, const backend_op *op, strata_error *err)
{
    return record_rows(ctx, op, "argmax", true, err);
}
