/* Recording of OP_COPY: F32/F16/BF16 conversions with any element strides
 * (shaders/copy.comp). A reshape of contiguous tensors is copied as one flat
 * run of elements. Views larger than one binding are copied in slabs
 * (vk_copy_split_choose), one dispatch each. */
#include "vulkan_internal.h"
#include "vulkan_push.h"
#include "vulkan_split.h"

static uint32_t type_code(strata_dtype dtype)
{
    return dtype == DTYPE_F32 ? 0u : dtype == DTYPE_F16 ? 1u : 2u;
}

static size_t element_bytes(strata_dtype dtype)
{
    return dtype == DTYPE_F32 ? 4 : 2;
}

/* One dispatch: a slab of the copy, ne elements starting at index first of
 * each dim. */
static strata_status record_slab(vk_context *ctx, const vk_pipeline *pipeline, const strata_tensor *src,
                                 const strata_tensor *dst, const vk_copy_push *whole, const uint64_t src_nb[4],
                                 const uint64_t dst_nb[4], const int64_t first[4], const int64_t ne[4],
                                 strata_error *err)
{
    size_t src_size = element_bytes(src->dtype), dst_size = element_bytes(dst->dtype);
    vk_copy_push push = *whole;
    uint64_t src_begin = 0, dst_begin = 0;
    for (int d = 0; d < 4; d++) {
        push.ne[d] = (uint32_t)ne[d];
        src_begin += (uint64_t)first[d] * src_nb[d];
        dst_begin += (uint64_t)first[d] * dst_nb[d];
    }
    vk_binding bindings[2];
    strata_status status;
    if ((status = vk_bind_range(ctx, src, src_begin, vk_strided_span(ne, src_nb, src_size), src_size, false,
                                &bindings[0], &push.src_offset, err)) ||
        (status = vk_bind_range(ctx, dst, dst_begin, vk_strided_span(ne, dst_nb, dst_size), dst_size, true,
                                &bindings[1], &push.dst_offset, err)))
        return status;
    uint64_t n = (uint64_t)ne[0] * ne[1] * ne[2] * ne[3];
    uint32_t gx, gy;
    vk_groups_2d((n + pipeline->local_size - 1) / pipeline->local_size, &gx, &gy);
    return vk_dispatch(ctx, pipeline, bindings, &push, sizeof push, gx, gy, 1, err);
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
    /* shape and byte strides of the walk: the tensors' own, or a contiguous reshape as [n, 1, 1, 1] */
    int64_t ne[4];
    uint64_t src_nb[4], dst_nb[4];
    for (int d = 0; d < STRATA_MAX_DIMS; d++) {
        ne[d] = same_shape ? src->ne[d] : d == 0 ? n : 1;
        src_nb[d] = same_shape ? src->nb[d] : d == 0 ? src_size : (uint64_t)n * src_size;
        dst_nb[d] = same_shape ? dst->nb[d] : d == 0 ? dst_size : (uint64_t)n * dst_size;
        push.src_nb[d] = (uint32_t)(src_nb[d] / src_size);
        push.dst_nb[d] = (uint32_t)(dst_nb[d] / dst_size);
    }
    vk_copy_split split;
    if (!vk_copy_split_choose(ne, src_nb, src_size, dst_nb, dst_size, ctx->bind_limit, vk_binding_alignment(ctx),
                              &split))
        return strata_fail(err, STRATA_UNSUPPORTED, "not even one element fits the device's binding limit");
    const vk_pipeline *pipeline;
    strata_status status = vk_pipeline_get(ctx, "copy", VK_ELEMENTWISE_LOCAL_SIZE, 2, &pipeline, err);
    if (status != STRATA_OK)
        return status;
    /* slabs: dims below split.dim whole, split.chunk indices of it, one index of each dim above */
    int64_t outer = 1;
    for (int d = split.dim + 1; d < 4; d++)
        outer *= ne[d];
    for (int64_t o = 0; o < outer; o++) {
        int64_t first[4] = {0, 0, 0, 0}, slab[4];
        int64_t rest = o;
        for (int d = split.dim + 1; d < 4; d++) {
            first[d] = rest % ne[d];
            rest /= ne[d];
        }
        for (int d = 0; d < 4; d++)
            slab[d] = d < split.dim ? ne[d] : 1;
        for (int64_t begin = 0; begin < ne[split.dim]; begin += split.chunk) {
            first[split.dim] = begin;
            slab[split.dim] = ne[split.dim] - begin < split.chunk ? ne[split.dim] - begin : split.chunk;
            if ((status = record_slab(ctx, pipeline, src, dst, &push, src_nb, dst_nb, first, slab, err)))
                return status;
        }
    }
    return STRATA_OK;
}
