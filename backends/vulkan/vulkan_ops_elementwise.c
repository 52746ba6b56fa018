/* Recording of the element-wise and row-wise ops: add, mul, scale, swiglu,
 * geglu (shaders/elementwise.comp), rms_norm, softmax, argmax. Inputs were
 * checked (F32, contiguous, shapes). In-place ops bind the same range twice. */
#include "vulkan_internal.h"
#include "vulkan_push.h"

static strata_status record_elementwise(vk_context *ctx, const backend_op *op, const char *shader, strata_error *err)
{
    const strata_tensor *a = op->src[0], *b = op->src[1] ? op->src[1] : op->src[0];
    int64_t n = tensor_element_count(a);
    if (n == 0)
        return STRATA_OK;
    vk_elementwise_push push = {.n = (uint32_t)n, .b_period = (uint32_t)tensor_element_count(b),
                                .value = op->params.scale.value};
    vk_binding bindings[3];
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = vk_bind_tensor(ctx, a, tensor_byte_size(a), 4, false, &bindings[0], &push.a_offset, err)) ||
        (status = vk_bind_tensor(ctx, b, tensor_byte_size(b), 4, false, &bindings[1], &push.b_offset, err)) ||
        (status = vk_bind_tensor(ctx, op->dst, tensor_byte_size(op->dst), 4, true, &bindings[2], &push.d_offset, err)) ||
        (status = vk_pipeline_get(ctx, shader, VK_ELEMENTWISE_LOCAL_SIZE, 3, &pipeline, err)))
        return status;
    uint32_t gx, gy;
    vk_groups_2d(((uint64_t)n + pipeline->local_size - 1) / pipeline->local_size, &gx, &gy);
    return vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
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
    int64_t rows = tensor_row_count(x);
    if (rows == 0 || x->ne[0] == 0)
        return STRATA_OK;
    vk_rms_norm_push push = {.n = (uint32_t)x->ne[0], .rows = (uint32_t)rows, .has_weight = op->src[1] != NULL,
                             .eps = op->params.rms_norm.eps};
    vk_binding bindings[3];
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = vk_bind_tensor(ctx, x, tensor_byte_size(x), 4, false, &bindings[0], &push.x_offset, err)) ||
        (status = vk_bind_tensor(ctx, weight, tensor_byte_size(weight), 4, false, &bindings[1], &push.w_offset,
                                 err)) ||
        (status = vk_bind_tensor(ctx, op->dst, tensor_byte_size(op->dst), 4, true, &bindings[2], &push.d_offset, err)) ||
        (status = vk_pipeline_get(ctx, "rms_norm", VK_ROW_LOCAL_SIZE, 3, &pipeline, err)))
        return status;
    uint32_t gx, gy;
    vk_groups_2d((uint64_t)rows, &gx, &gy);
    return vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
}

/* softmax and argmax: one workgroup per row, src0 then dst. */
static strata_status record_rows(vk_context *ctx, const backend_op *op, const char *shader, strata_error *err)
{
    const strata_tensor *x = op->src[0];
    int64_t rows = tensor_row_count(x);
    if (rows == 0 || x->ne[0] == 0)
        return STRATA_OK;
    vk_row_push push = {.n = (uint32_t)x->ne[0], .rows = (uint32_t)rows};
    vk_binding bindings[2];
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = vk_bind_tensor(ctx, x, tensor_byte_size(x), 4, false, &bindings[0], &push.x_offset, err)) ||
        (status = vk_bind_tensor(ctx, op->dst, tensor_byte_size(op->dst), 4, true, &bindings[1], &push.d_offset, err)) ||
        (status = vk_pipeline_get(ctx, shader, VK_ROW_LOCAL_SIZE, 2, &pipeline, err)))
        return status;
    uint32_t gx, gy;
    vk_groups_2d((uint64_t)rows, &gx, &gy);
    return vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
}

strata_status vk_run_softmax(vk_context *ctx, const backend_op *op, strata_error *err)
{
    return record_rows(ctx, op, "softmax", err);
}

strata_status vk_run_argmax(vk_context *ctx, const backend_op *op, strata_error *err)
{
    return record_rows(ctx, op, "argmax", err);
}
