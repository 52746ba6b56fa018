/* Recording of OP_COPY: F32/F16/BF16 conversions with any element strides
 * (shaders/copy.comp). A reshape of contiguous tensors is copied as one flat
 * run of elements. */
#include "vulkan_internal.h"
#include "vulkan_push.h"

static uint32_t type_code(strata_dtype dtype)
{
    return dtype == DTYPE_F32 ? 0u : dtype == DTYPE_F16 ? 1u : 2u;
}

static size_t element_bytes(strata_dtype dtype)
{
    return dtype == DTYPE_F32 ? 4 : 2;
}

/* Bytes from the first to one past the last element of t. */
static size_t strided_span(const strata_tensor *t)
{
    size_t last = 0;
    for (int d = 0; d < STRATA_MAX_DIMS; d++)
        last += (size_t)(t->ne[d] - 1) * t->nb[d];
    return last + element_bytes(t->dtype);
}

strata_status vk_run_copy(vk_context *ctx, const backend_op *op, strata_error *err)
{
    const strata_tensor *src = op->src[0], *dst = op->dst;
    int64_t n = tensor_element_count(src);
    if (n == 0)
        return STRATA_OK;
    size_t src_size = element_bytes(src->dtype), dst_size = element_bytes(dst->dtype);
    vk_copy_push push = {.src_type = type_code(src->dtype), .dst_type = type_code(dst->dtype)};
    bool same_shape = true;
    for (int d = 0; d < STRATA_MAX_DIMS; d++)
        same_shape = same_shape && src->ne[d] == dst->ne[d];
    for (int d = 0; d < STRATA_MAX_DIMS; d++) {
        if (same_shape) {
            push.ne[d] = (uint32_t)src->ne[d];
            push.src_nb[d] = (uint32_t)(src->nb[d] / src_size);
            push.dst_nb[d] = (uint32_t)(dst->nb[d] / dst_size);
        } else { /* contiguous reshape: [n, 1, 1, 1] */
            push.ne[d] = d == 0 ? (uint32_t)n : 1u;
            push.src_nb[d] = d == 0 ? 1u : (uint32_t)n;
            push.dst_nb[d] = d == 0 ? 1u : (uint32_t)n;
        }
    }
    vk_binding bindings[2];
    const vk_pipeline *pipeline;
    strata_status status;
    if ((status = vk_bind_tensor(ctx, src, same_shape ? strided_span(src) : tensor_byte_size(src), src_size, false,
                                 &bindings[0], &push.src_offset, err)) ||
        (status = vk_bind_tensor(ctx, dst, same_shape ? strided_span(dst) : tensor_byte_size(dst), dst_size, true,
                                 &bindings[1], &push.dst_offset, err)) ||
        (status = vk_pipeline_get(ctx, "copy", VK_ELEMENTWISE_LOCAL_SIZE, 2, &pipeline, err)))
        return status;
    uint32_t gx, gy;
    vk_groups_2d(((uint64_t)n + pipeline->local_size - 1) / pipeline->local_size, &gx, &gy);
    return vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
}
