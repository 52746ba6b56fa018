/* Host <-> device transfers through the staging ring. An upload only
 * records a copy (its bytes are copied into staging at once, so the caller's
 * memory is free when upload returns). A download records its copy and then
 * submits and waits, so its bytes are on the host when it returns: a step
 * that ends with a download (the logits) is still one submit, and callers
 * that read right after download work too. A transfer larger than the free
 * part of the ring submits what is recorded and starts the ring over.
 *
 * Small uploads are also remembered on the host (the "shadow") until a
 * device command writes over them, so that ops whose contract forbids some
 * values (kv_store positions) can check them without a round trip. */
#include <stdlib.h>
#include <string.h>

#include "vulkan_internal.h"

#define STAGING_ALIGNMENT 16

static void shadow_remember(vk_context *ctx, const backend_buffer *buffer, size_t offset, const void *src,
                            size_t bytes);

static strata_status check_range(const backend_buffer *buffer, size_t offset, size_t bytes, const char *what,
                                 strata_error *err)
{
    if (!buffer || offset > buffer->bytes || bytes > buffer->bytes - offset)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "vulkan: %s of %zu bytes at offset %zu is outside the buffer (%llu bytes)", what, bytes,
                           offset, buffer ? (unsigned long long)buffer->bytes : 0ull);
    return STRATA_OK;
}

/* Room for up to bytes in the ring: *offset and *granted (> 0). */
static strata_status staging_take(vk_context *ctx, size_t bytes, VkDeviceSize *offset, size_t *granted,
                                  strata_error *err)
{
    VkDeviceSize start = (ctx->staging_used + STAGING_ALIGNMENT - 1) / STAGING_ALIGNMENT * STAGING_ALIGNMENT;
    if (start >= ctx->staging->capacity) {
        strata_status status = vk_submit_and_wait(ctx, err);
        if (status != STRATA_OK)
            return status;
        start = 0;
    }
    VkDeviceSize room = ctx->staging->capacity - start;
    *granted = bytes < room ? bytes : (size_t)room;
    *offset = start;
    ctx->staging_used = start + *granted;
    return vk_record_begin(ctx, err);
}

strata_status vk_upload(void *opaque, backend_buffer *dst, size_t offset, const void *src, size_t bytes,
                        strata_error *err)
{
    vk_context *ctx = opaque;
    strata_status status = check_range(dst, offset, bytes, "upload", err);
    for (size_t done = 0; status == STRATA_OK && done < bytes;) {
        VkDeviceSize staging_offset;
        size_t chunk;
        if ((status = staging_take(ctx, bytes - done, &staging_offset, &chunk, err)) != STRATA_OK)
            break;
        memcpy((char *)ctx->staging->mapped + staging_offset, (const char *)src + done, chunk);
        VkDeviceSize dst_begin = offset + done;
        vk_hazard_check(ctx, dst, dst_begin, dst_begin + chunk, true);
        VkBufferCopy region = {.srcOffset = staging_offset, .dstOffset = dst_begin, .size = chunk};
        vkCmdCopyBuffer(ctx->cmd, ctx->staging->buffer, dst->buffer, 1, &region);
        vk_hazard_note(ctx, dst, dst_begin, dst_begin + chunk, true);
        done += chunk;
    }
    if (status == STRATA_OK)
        shadow_remember(ctx, dst, offset, src, bytes);
    return status;
}

static strata_status note_download(vk_context *ctx, void *host, VkDeviceSize staging_offset, size_t bytes,
                                   strata_error *err)
{
    if (ctx->n_downloads == ctx->downloads_capacity) {
        int capacity = ctx->downloads_capacity ? 2 * ctx->downloads_capacity : 16;
        void *grown = realloc(ctx->downloads, (size_t)capacity * sizeof *ctx->downloads);
        if (!grown)
            return strata_fail(err, STRATA_OUT_OF_MEMORY, "vulkan: out of host memory for a download");
        ctx->downloads = grown;
        ctx->downloads_capacity = capacity;
    }
    ctx->downloads[ctx->n_downloads++] = (struct vk_pending_download){host, staging_offset, bytes};
    return STRATA_OK;
}

strata_status vk_download(void *opaque, backend_buffer *src, size_t offset, void *dst, size_t bytes,
                          strata_error *err)
{
    vk_context *ctx = opaque;
    strata_status status = check_range(src, offset, bytes, "download", err);
    for (size_t done = 0; status == STRATA_OK && done < bytes;) {
        VkDeviceSize staging_offset;
        size_t chunk;
        if ((status = staging_take(ctx, bytes - done, &staging_offset, &chunk, err)) != STRATA_OK)
            break;
        VkDeviceSize src_begin = offset + done;
        vk_hazard_check(ctx, src, src_begin, src_begin + chunk, false);
        VkBufferCopy region = {.srcOffset = src_begin, .dstOffset = staging_offset, .size = chunk};
        vkCmdCopyBuffer(ctx->cmd, src->buffer, ctx->staging->buffer, 1, &region);
        vk_hazard_note(ctx, src, src_begin, src_begin + chunk, false);
        if ((status = note_download(ctx, (char *)dst + done, staging_offset, chunk, err)) != STRATA_OK)
            break;
        done += chunk;
    }
    if (status == STRATA_OK)
        status = vk_submit_and_wait(ctx, err);
    return status;
}

/* --- the host shadow of small uploads ------------------------------------------ */

void vk_shadow_invalidate(vk_context *ctx, const backend_buffer *buffer, VkDeviceSize begin, VkDeviceSize end)
{
    for (int i = 0; i < VK_SHADOW_ENTRIES; i++) {
        vk_shadow *s = &ctx->shadows[i];
        if (s->buffer == buffer && begin < s->offset + s->bytes && s->offset < end)
            s->buffer = NULL;
    }
}

static void shadow_remember(vk_context *ctx, const backend_buffer *buffer, size_t offset, const void *src,
                            size_t bytes)
{
    if (bytes == 0 || bytes > VK_SHADOW_BYTES)
        return;
    vk_shadow *s = &ctx->shadows[ctx->next_shadow];
    ctx->next_shadow = (ctx->next_shadow + 1) % VK_SHADOW_ENTRIES;
    memcpy(s->data, src, bytes);
    s->buffer = buffer;
    s->offset = offset;
    s->bytes = bytes;
}

const void *vk_shadow_find(const vk_context *ctx, const backend_buffer *buffer, size_t offset, size_t bytes)
{
    for (int i = 0; i < VK_SHADOW_ENTRIES; i++) {
        const vk_shadow *s = &ctx->shadows[i];
        if (s->buffer == buffer && offset >= s->offset && offset + bytes <= s->offset + s->bytes)
            return s->data + (offset - s->offset);
    }
    return NULL;
}
