/* Vulkan buffers: one VkBuffer per backend buffer, device-local for tensors
 * and host-visible + coherent for staging. Small ones are bound in a shared
 * memory block (vulkan_suballoc.c); large ones (the weights) keep their own
 * allocation. */
#include <stdlib.h>

#include "vulkan_internal.h"

/* A memory type allowed by type_bits with all of required (and, when it can
 * be had, all of preferred); -1 when none. */
static int find_memory_type(const VkPhysicalDeviceMemoryProperties *props, uint32_t type_bits,
                            VkMemoryPropertyFlags required, VkMemoryPropertyFlags preferred)
{
    int fallback = -1;
    for (uint32_t i = 0; i < props->memoryTypeCount; i++) {
        if (!(type_bits & (1u << i)))
            continue;
        VkMemoryPropertyFlags flags = props->memoryTypes[i].propertyFlags;
        if ((flags & required) != required)
            continue;
        if ((flags & preferred) == preferred)
            return (int)i;
        if (fallback < 0)
            fallback = (int)i;
    }
    return fallback;
}

strata_status vk_buffer_create(vk_context *ctx, VkDeviceSize bytes, bool host_visible, backend_buffer **out,
                               strata_error *err)
{
    *out = NULL;
    strata_status status = STRATA_OK;
    backend_buffer *buffer = calloc(1, sizeof *buffer);
    if (!buffer)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "vulkan: out of host memory for a buffer");
    buffer->bytes = bytes;
    buffer->capacity = (bytes + 3) / 4 * 4;
    if (buffer->capacity == 0)
        buffer->capacity = 4;
    VkBufferCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = buffer->capacity,
        .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                 VK_BUFFER_USAGE_TRANSFER_DST_BIT,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult result = vkCreateBuffer(ctx->device, &info, NULL, &buffer->buffer);
    if (result != VK_SUCCESS) {
        status = vk_fail(err, result, "vkCreateBuffer");
        goto fail;
    }
    VkMemoryRequirements needs;
    vkGetBufferMemoryRequirements(ctx->device, buffer->buffer, &needs);
    VkMemoryPropertyFlags required = host_visible
                                         ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
                                         : 0;
    VkMemoryPropertyFlags preferred = host_visible ? VK_MEMORY_PROPERTY_HOST_CACHED_BIT
                                                   : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    int type = find_memory_type(&ctx->memory_properties, needs.memoryTypeBits, required | preferred, 0);
    if (type < 0)
        type = find_memory_type(&ctx->memory_properties, needs.memoryTypeBits, required, preferred);
    if (type < 0) {
        status = strata_fail(err, STRATA_UNSUPPORTED, "vulkan: no memory type for a %s buffer",
                             host_visible ? "host-visible" : "device");
        goto fail;
    }
    bool bound = false;
    if ((status = vk_suballoc_bind(ctx, buffer, &needs, (uint32_t)type, host_visible, &bound, err)) != STRATA_OK)
        goto fail;
    if (!bound) {
        if ((status = vk_memory_allocate(ctx, (uint32_t)type, needs.size, &buffer->memory, err)) != STRATA_OK)
            goto fail;
        buffer->memory_bytes = needs.size;
        if ((result = vkBindBufferMemory(ctx->device, buffer->buffer, buffer->memory, 0)) != VK_SUCCESS) {
            status = vk_fail(err, result, "vkBindBufferMemory");
            goto fail;
        }
        if (host_visible &&
            (result = vkMapMemory(ctx->device, buffer->memory, 0, VK_WHOLE_SIZE, 0, &buffer->mapped)) != VK_SUCCESS) {
            status = vk_fail(err, result, "vkMapMemory");
            goto fail;
        }
    }
    *out = buffer;
    return STRATA_OK;
fail:
    if (buffer->buffer)
        vkDestroyBuffer(ctx->device, buffer->buffer, NULL);
    vk_memory_free(ctx, buffer->memory, buffer->memory_bytes);
    free(buffer);
    return status;
}

void vk_buffer_destroy(vk_context *ctx, backend_buffer *buffer)
{
    if (!buffer)
        return;
    vkDestroyBuffer(ctx->device, buffer->buffer, NULL);
    if (buffer->block) {
        vk_suballoc_release(ctx, buffer);
    } else {
        if (buffer->mapped)
            vkUnmapMemory(ctx->device, buffer->memory);
        vk_memory_free(ctx, buffer->memory, buffer->memory_bytes);
    }
    free(buffer);
}
