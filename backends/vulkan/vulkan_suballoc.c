/* Device memory: every VkDeviceMemory the backend allocates goes through
 * here, so that maxMemoryAllocationCount is respected and free_bytes counts
 * what is really held. Small buffers (staging, params, scratch, the KV cache
 * of a small model, test tensors) are bound at aligned offsets of shared
 * blocks, one list of blocks per memory type; the bookkeeping of each block
 * is vulkan_suballoc.h. A block is freed as soon as its last buffer goes. */
#include <stdlib.h>

#include "vulkan_internal.h"
#include "vulkan_suballoc.h"

struct vk_block {
    VkDeviceMemory memory;
    uint32_t memory_type;
    void *mapped; /* whole block, when host-visible */
    vk_range_list ranges;
    vk_block *next;
};

/* maxMemoryAllocationSize, asked once per context. */
static uint64_t max_allocation_bytes(vk_context *ctx)
{
    if (ctx->suballoc.max_allocation_bytes == 0) {
        VkPhysicalDeviceMaintenance3Properties maintenance3 = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
        VkPhysicalDeviceProperties2 props = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                             .pNext = &maintenance3};
        vkGetPhysicalDeviceProperties2(ctx->physical, &props);
        ctx->suballoc.max_allocation_bytes = maintenance3.maxMemoryAllocationSize;
    }
    return ctx->suballoc.max_allocation_bytes;
}

strata_status vk_memory_allocate(vk_context *ctx, uint32_t memory_type, VkDeviceSize bytes, VkDeviceMemory *out,
                                 strata_error *err)
{
    *out = VK_NULL_HANDLE;
    uint32_t limit = ctx->properties.limits.maxMemoryAllocationCount;
    if (ctx->suballoc.memory_objects >= limit)
        return strata_fail(err, STRATA_OUT_OF_MEMORY,
                           "vulkan: the device allows %u memory allocations and all are in use", limit);
    VkMemoryAllocateInfo alloc = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = bytes,
        .memoryTypeIndex = memory_type,
    };
    VkResult result = vkAllocateMemory(ctx->device, &alloc, NULL, out);
    if (result != VK_SUCCESS) {
        *out = VK_NULL_HANDLE;
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "vulkan: cannot allocate %.1f MiB of memory type %u (%s)",
                           bytes / 1048576.0, memory_type, vk_result_name(result));
    }
    ctx->suballoc.memory_objects++;
    ctx->allocated_bytes += bytes;
    return STRATA_OK;
}

void vk_memory_free(vk_context *ctx, VkDeviceMemory memory, VkDeviceSize bytes)
{
    if (!memory)
        return;
    vkFreeMemory(ctx->device, memory, NULL);
    ctx->suballoc.memory_objects--;
    ctx->allocated_bytes -= bytes < ctx->allocated_bytes ? bytes : ctx->allocated_bytes;
}

/* A new empty block of memory_type (mapped when host_visible), put first. */
static strata_status block_create(vk_context *ctx, uint32_t memory_type, uint64_t block_bytes, bool host_visible,
                                  vk_block **out, strata_error *err)
{
    *out = NULL;
    strata_status status = STRATA_OK;
    vk_block *block = calloc(1, sizeof *block);
    if (!block)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "vulkan: out of host memory for a memory block");
    if ((status = vk_memory_allocate(ctx, memory_type, block_bytes, &block->memory, err)) != STRATA_OK)
        goto fail;
    VkResult result;
    if (host_visible &&
        (result = vkMapMemory(ctx->device, block->memory, 0, VK_WHOLE_SIZE, 0, &block->mapped)) != VK_SUCCESS) {
        status = vk_fail(err, result, "vkMapMemory");
        goto fail;
    }
    block->memory_type = memory_type;
    vk_ranges_init(&block->ranges, block_bytes);
    block->next = ctx->suballoc.blocks;
    ctx->suballoc.blocks = block;
    *out = block;
    return STRATA_OK;
fail:
    vk_memory_free(ctx, block->memory, block_bytes);
    free(block);
    return status;
}

static void block_destroy(vk_context *ctx, vk_block *block)
{
    for (vk_block **link = &ctx->suballoc.blocks; *link; link = &(*link)->next)
        if (*link == block) {
            *link = block->next;
            break;
        }
    if (block->mapped)
        vkUnmapMemory(ctx->device, block->memory);
    vk_memory_free(ctx, block->memory, block->ranges.size);
    free(block);
}

strata_status vk_suballoc_bind(vk_context *ctx, backend_buffer *buffer, const VkMemoryRequirements *needs,
                               uint32_t memory_type, bool host_visible, bool *bound, strata_error *err)
{
    *bound = false;
    uint32_t heap = ctx->memory_properties.memoryTypes[memory_type].heapIndex;
    uint64_t block_bytes =
        vk_suballoc_block_bytes(max_allocation_bytes(ctx), ctx->memory_properties.memoryHeaps[heap].size);
    if (!vk_suballoc_shares(needs->size, block_bytes))
        return STRATA_OK;
    vk_block *block = NULL;
    uint64_t offset = 0;
    for (vk_block *b = ctx->suballoc.blocks; b && !block; b = b->next)
        if (b->memory_type == memory_type && vk_ranges_take(&b->ranges, needs->size, needs->alignment, &offset))
            block = b;
    if (!block) {
        /* no room: a new block, unless the memory (or the allocation count)
         * runs out, in which case the caller tries an allocation of just the
         * buffer's size */
        strata_error ignored = {0};
        if (block_create(ctx, memory_type, block_bytes, host_visible, &block, &ignored) != STRATA_OK)
            return STRATA_OK;
        if (!vk_ranges_take(&block->ranges, needs->size, needs->alignment, &offset)) {
            block_destroy(ctx, block);
            return STRATA_OK;
        }
    }
    VkResult result = vkBindBufferMemory(ctx->device, buffer->buffer, block->memory, offset);
    if (result != VK_SUCCESS) {
        vk_ranges_give(&block->ranges, offset, needs->size);
        if (vk_ranges_empty(&block->ranges))
            block_destroy(ctx, block);
        return vk_fail(err, result, "vkBindBufferMemory");
    }
    buffer->block = block;
    buffer->block_offset = offset;
    buffer->memory_bytes = needs->size;
    buffer->mapped = block->mapped ? (char *)block->mapped + offset : NULL;
    *bound = true;
    return STRATA_OK;
}

void vk_suballoc_release(vk_context *ctx, backend_buffer *buffer)
{
    vk_block *block = buffer->block;
    if (!block)
        return;
    vk_ranges_give(&block->ranges, buffer->block_offset, buffer->memory_bytes);
    if (vk_ranges_empty(&block->ranges))
        block_destroy(ctx, block);
    buffer->block = NULL;
    buffer->mapped = NULL;
}

void vk_suballoc_destroy(vk_context *ctx)
{
    while (ctx->suballoc.blocks)
        block_destroy(ctx, ctx->suballoc.blocks);
}
