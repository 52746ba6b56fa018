/* The Vulkan device as a backend: identity, buffers, sync, and the op table
 * that supports() and run_op() both read. Ops are recorded, not run: they
 * execute at the next submit (sync, a download that needs it, or a full
 * staging ring), in the order they were issued. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vulkan_backend.h"
#include "vulkan_internal.h"

typedef struct vk_op_entry {
    vk_op_check_fn check;
    vk_op_run_fn run;
} vk_op_entry;

/* Op support, written once: supports() runs check, run_op runs check then run. */
static const vk_op_entry op_table[OP_COUNT_] = {
    [OP_GET_ROWS] = {vk_check_get_rows, vk_run_get_rows},
    [OP_RMS_NORM] = {vk_check_rms_norm, vk_run_rms_norm},
    [OP_MATMUL] = {vk_check_matmul, vk_run_matmul},
    [OP_ADD] = {vk_check_binary, vk_run_add},
    [OP_MUL] = {vk_check_binary, vk_run_mul},
    [OP_SCALE] = {vk_check_unary, vk_run_scale},
    [OP_ROPE] = {vk_check_rope, vk_run_rope},
    [OP_KV_STORE] = {vk_check_kv_store, vk_run_kv_store},
    [OP_ATTENTION] = {vk_check_attention, vk_run_attention},
    [OP_SWIGLU] = {vk_check_gated, vk_run_swiglu},
    [OP_GEGLU] = {vk_check_gated, vk_run_geglu},
    [OP_SOFTMAX] = {vk_check_unary, vk_run_softmax},
    [OP_ARGMAX] = {vk_check_argmax, vk_run_argmax},
    [OP_COPY] = {vk_check_copy, vk_run_copy},
    [OP_TOPK] = {vk_check_topk, vk_run_topk},
    [OP_MOE_WEIGHTS] = {vk_check_moe_weights, vk_run_moe_weights},
    [OP_MATMUL_ID] = {vk_check_matmul_id, vk_run_matmul_id},
    [OP_MOE_SUM] = {vk_check_moe_sum, vk_run_moe_sum},
};

static void vk_get_info(void *opaque, device_info *out)
{
    vk_context *ctx = opaque;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%.127s", ctx->properties.deviceName);
    out->kind = DEVICE_KIND_VULKAN;
    out->total_bytes = vk_device_local_bytes(ctx);
    out->free_bytes = out->total_bytes > ctx->allocated_bytes ? out->total_bytes - ctx->allocated_bytes : 0;
    size_t alignment = (size_t)ctx->properties.limits.minStorageBufferOffsetAlignment;
    out->alignment = alignment > 64 ? alignment : 64;
    VkPhysicalDeviceIDProperties id = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties maintenance3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = &id};
    VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                         .pNext = &maintenance3};
    vkGetPhysicalDeviceProperties2(ctx->physical, &props);
    out->max_allocation_bytes = maintenance3.maxMemoryAllocationSize;
    /* the same card through CUDA reports the same UUID */
    out->has_uuid = true;
    memcpy(out->uuid, id.deviceUUID, sizeof out->uuid);
    out->software = ctx->properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    out->host_visible = false; /* tensors are reached through upload/download */
    char features[160];
    vk_features_describe(&ctx->features, features, sizeof features);
    snprintf(out->features, sizeof out->features, "vulkan %u.%u, bind %u KiB%s, %.120s",
             VK_API_VERSION_MAJOR(ctx->properties.apiVersion), VK_API_VERSION_MINOR(ctx->properties.apiVersion),
             (unsigned)(ctx->bind_limit >> 10), ctx->strict_bindings ? " strict" : "", features);
}

static strata_status vk_buffer_alloc(void *opaque, size_t bytes, backend_buffer **out, strata_error *err)
{
    return vk_buffer_create(opaque, bytes, false, out, err);
}

static void vk_buffer_free(void *opaque, backend_buffer *buffer)
{
    vk_context *ctx = opaque;
    if (!buffer)
        return;
    if (ctx->recording) { /* recorded commands may still use it */
        strata_error ignored = {0};
        vk_submit_and_wait(ctx, &ignored);
    }
    vk_buffer_destroy(ctx, buffer);
}

static void *vk_buffer_host_ptr(void *opaque, backend_buffer *buffer)
{
    (void)opaque;
    (void)buffer;
    return NULL;
}

static strata_status vk_sync(void *opaque, strata_error *err)
{
    return vk_submit_and_wait(opaque, err);
}

static bool vk_supports(void *opaque, const backend_op *op)
{
    if (!op || (int)op->kind < 0 || op->kind >= OP_COUNT_ || !op_table[op->kind].check)
        return false;
    return op_table[op->kind].check(opaque, op, NULL, 0);
}

static strata_status vk_run_op(void *opaque, const backend_op *op, strata_error *err)
{
    vk_context *ctx = opaque;
    if (!op || (int)op->kind < 0 || op->kind >= OP_COUNT_ || !op_table[op->kind].check)
        return strata_fail(err, STRATA_UNSUPPORTED, "vulkan: unknown op");
    char why[512];
    why[0] = '\0';
    if (!op_table[op->kind].check(ctx, op, why, sizeof why))
        return strata_fail(err, STRATA_INVALID_INPUT, "vulkan %s: %s", op_kind_name(op->kind), why);
    strata_status status = op_table[op->kind].run(ctx, op, err);
    if (status != STRATA_OK && err)
        strata_error_prefix(err, "vulkan %s", op_kind_name(op->kind));
    return status;
}

static void vk_destroy(void *opaque)
{
    vk_context_destroy(opaque);
}

static void vk_set_workspace_limit(void *opaque, uint64_t limit_bytes)
{
    vk_context *ctx = opaque;
    ctx->workspace_limit = limit_bytes;
}

static uint64_t vk_workspace_peak_bytes(void *opaque)
{
    const vk_context *ctx = opaque;
    return ctx->workspace_peak;
}

static const backend_ops vulkan_ops = {
    .name = "vulkan",
    .destroy = vk_destroy,
    .get_info = vk_get_info,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_wrap_host = NULL,
    .buffer_free = vk_buffer_free,
    .buffer_host_ptr = vk_buffer_host_ptr,
    .upload = vk_upload,
    .download = vk_download,
    .sync = vk_sync,
    .supports = vk_supports,
    .run_op = vk_run_op,
    .begin_step = NULL,
    .end_step = NULL,
    .set_workspace_limit = vk_set_workspace_limit,
    .workspace_peak_bytes = vk_workspace_peak_bytes,
};

strata_status vk_open(int device_index, const backend_options *options, backend_device *out, strata_error *err)
{
    (void)options;
    memset(out, 0, sizeof *out);
    vk_context *ctx;
    strata_status status = vk_context_create(device_index, &ctx, err);
    if (status != STRATA_OK)
        return status;
    out->ops = &vulkan_ops;
    out->ctx = ctx;
    out->index = device_index;
    return STRATA_OK;
}
