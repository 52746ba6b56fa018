/* Recording: the one command buffer every op and transfer goes into, its
 * submit, barriers from range tracking, descriptor sets from pools reset per
 * submit, pipelines created on first use, and tensor bindings that respect
 * minStorageBufferOffsetAlignment and the binding limit. */
#include <stdlib.h>
#include <string.h>

#include "vulkan_internal.h"
#include "vulkan_shaders.h"

strata_status vk_recording_create(vk_context *ctx, strata_error *err)
{
    VkResult result;
    VkCommandPoolCreateInfo pool_info = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = ctx->queue_family,
    };
    if ((result = vkCreateCommandPool(ctx->device, &pool_info, NULL, &ctx->command_pool)) != VK_SUCCESS)
        return vk_fail(err, result, "vkCreateCommandPool");
    VkCommandBufferAllocateInfo cmd_info = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = ctx->command_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    if ((result = vkAllocateCommandBuffers(ctx->device, &cmd_info, &ctx->cmd)) != VK_SUCCESS)
        return vk_fail(err, result, "vkAllocateCommandBuffers");
    VkFenceCreateInfo fence_info = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((result = vkCreateFence(ctx->device, &fence_info, NULL, &ctx->fence)) != VK_SUCCESS)
        return vk_fail(err, result, "vkCreateFence");
    /* one set layout (and pipeline layout) per binding count: all storage buffers */
    VkDescriptorSetLayoutBinding bindings[VK_MAX_BINDINGS];
    for (int i = 0; i < VK_MAX_BINDINGS; i++)
        bindings[i] = (VkDescriptorSetLayoutBinding){
            .binding = (uint32_t)i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkPushConstantRange push = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = VK_PUSH_CONSTANT_BYTES};
    for (int n = 1; n <= VK_MAX_BINDINGS; n++) {
        VkDescriptorSetLayoutCreateInfo set_info = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
            .bindingCount = (uint32_t)n,
            .pBindings = bindings,
        };
        if ((result = vkCreateDescriptorSetLayout(ctx->device, &set_info, NULL, &ctx->set_layouts[n])) != VK_SUCCESS)
            return vk_fail(err, result, "vkCreateDescriptorSetLayout");
        VkPipelineLayoutCreateInfo layout_info = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
            .setLayoutCount = 1,
            .pSetLayouts = &ctx->set_layouts[n],
            .pushConstantRangeCount = 1,
            .pPushConstantRanges = &push,
        };
        if ((result = vkCreatePipelineLayout(ctx->device, &layout_info, NULL, &ctx->pipeline_layouts[n])) !=
            VK_SUCCESS)
            return vk_fail(err, result, "vkCreatePipelineLayout");
    }
    strata_status status = vk_buffer_create(ctx, VK_STAGING_BYTES, true, &ctx->staging, err);
    if (status == STRATA_OK)
        status = vk_buffer_create(ctx, VK_PARAMS_BYTES, false, &ctx->params, err);
    return status;
}

void vk_recording_destroy(vk_context *ctx)
{
    for (int i = 0; i < ctx->n_pipelines; i++)
        vkDestroyPipeline(ctx->device, ctx->pipelines[i].pipeline, NULL);
    for (int i = 0; i < ctx->n_descriptor_pools; i++)
        vkDestroyDescriptorPool(ctx->device, ctx->descriptor_pools[i], NULL);
    free(ctx->descriptor_pools);
    for (int n = 1; n <= VK_MAX_BINDINGS; n++) {
        if (ctx->pipeline_layouts[n])
            vkDestroyPipelineLayout(ctx->device, ctx->pipeline_layouts[n], NULL);
        if (ctx->set_layouts[n])
            vkDestroyDescriptorSetLayout(ctx->device, ctx->set_layouts[n], NULL);
    }
    vk_buffer_destroy(ctx, ctx->staging);
    vk_buffer_destroy(ctx, ctx->params);
    vk_buffer_destroy(ctx, ctx->scratch);
    vk_buffer_destroy(ctx, ctx->lowbit_tables);
    free(ctx->downloads);
    if (ctx->fence)
        vkDestroyFence(ctx->device, ctx->fence, NULL);
    if (ctx->command_pool)
        vkDestroyCommandPool(ctx->device, ctx->command_pool, NULL);
}

strata_status vk_record_begin(vk_context *ctx, strata_error *err)
{
    if (ctx->recording)
        return STRATA_OK;
    VkCommandBufferBeginInfo info = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VkResult result = vkBeginCommandBuffer(ctx->cmd, &info);
    if (result != VK_SUCCESS)
        return vk_fail(err, result, "vkBeginCommandBuffer");
    ctx->recording = true;
    ctx->n_written = ctx->n_read = 0;
    return STRATA_OK;
}

strata_status vk_submit_and_wait(vk_context *ctx, strata_error *err)
{
    if (!ctx->recording)
        return STRATA_OK;
    ctx->recording = false;
    if (ctx->n_downloads > 0) { /* make the copies into staging visible to the host */
        VkMemoryBarrier barrier = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                                   .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                                   .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
        vkCmdPipelineBarrier(ctx->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &barrier, 0,
                             NULL, 0, NULL);
    }
    VkResult result = vkEndCommandBuffer(ctx->cmd);
    if (result != VK_SUCCESS)
        return vk_fail(err, result, "vkEndCommandBuffer");
    VkSubmitInfo submit = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &ctx->cmd,
    };
    if ((result = vkQueueSubmit(ctx->queue, 1, &submit, ctx->fence)) != VK_SUCCESS)
        return vk_fail(err, result, "vkQueueSubmit");
    result = vkWaitForFences(ctx->device, 1, &ctx->fence, VK_TRUE, UINT64_MAX);
    vkResetFences(ctx->device, 1, &ctx->fence);
    vkResetCommandBuffer(ctx->cmd, 0);
    for (int i = 0; i < ctx->n_descriptor_pools; i++)
        vkResetDescriptorPool(ctx->device, ctx->descriptor_pools[i], 0);
    ctx->current_descriptor_pool = 0;
    ctx->params_used = 0;
    if (result != VK_SUCCESS) {
        ctx->n_downloads = 0;
        ctx->staging_used = 0;
        return vk_fail(err, result, "vkWaitForFences");
    }
    for (int i = 0; i < ctx->n_downloads; i++)
        memcpy(ctx->downloads[i].host, (const char *)ctx->staging->mapped + ctx->downloads[i].staging_offset,
               ctx->downloads[i].bytes);
    ctx->n_downloads = 0;
    ctx->staging_used = 0;
    return STRATA_OK;
}

/* --- barriers from range tracking ---------------------------------------------- */

static bool overlaps(const vk_hazard_range *ranges, int n, VkBuffer buffer, VkDeviceSize begin, VkDeviceSize end)
{
    for (int i = 0; i < n; i++)
        if (ranges[i].buffer == buffer && begin < ranges[i].end && ranges[i].begin < end)
            return true;
    return false;
}

static void full_barrier(vk_context *ctx)
{
    VkMemoryBarrier barrier = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                         VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    vkCmdPipelineBarrier(ctx->cmd, stages, stages, 0, 1, &barrier, 0, NULL, 0, NULL);
    ctx->n_written = ctx->n_read = 0;
}

void vk_hazard_check(vk_context *ctx, const backend_buffer *buffer, VkDeviceSize begin, VkDeviceSize end, bool write)
{
    bool after_write = overlaps(ctx->written, ctx->n_written, buffer->buffer, begin, end);
    bool write_after_read = write && overlaps(ctx->read, ctx->n_read, buffer->buffer, begin, end);
    if (after_write || write_after_read)
        full_barrier(ctx);
}

void vk_hazard_note(vk_context *ctx, const backend_buffer *buffer, VkDeviceSize begin, VkDeviceSize end, bool write)
{
    if (write)
        vk_shadow_invalidate(ctx, buffer, begin, end);
    vk_hazard_range *ranges = write ? ctx->written : ctx->read;
    int *n = write ? &ctx->n_written : &ctx->n_read;
    if (*n == VK_MAX_HAZARD_RANGES) /* too much to track: settle everything */
        full_barrier(ctx);
    ranges[(*n)++] = (vk_hazard_range){buffer->buffer, begin, end};
}

/* --- pipelines ----------------------------------------------------------------- */

static const vk_shader_blob *find_blob(const char *name)
{
    for (size_t i = 0; i < vk_shader_blob_count; i++)
        if (strcmp(vk_shader_blobs[i].name, name) == 0)
            return &vk_shader_blobs[i];
    return NULL;
}

bool vk_shader_present(const char *name)
{
    return find_blob(name) != NULL;
}

strata_status vk_pipeline_get(vk_context *ctx, const char *shader_name, uint32_t local_size, int n_bindings,
                              const vk_pipeline **out, strata_error *err)
{
    *out = NULL;
    for (int i = 0; i < ctx->n_pipelines; i++) {
        const vk_pipeline *p = &ctx->pipelines[i];
        if (p->local_size == local_size && p->n_bindings == n_bindings && strcmp(p->shader_name, shader_name) == 0) {
            *out = p;
            return STRATA_OK;
        }
    }
    const vk_shader_blob *blob = find_blob(shader_name);
    if (!blob)
        return strata_fail(err, STRATA_UNSUPPORTED, "vulkan: shader %s is not built into this strata", shader_name);
    if (ctx->n_pipelines == VK_MAX_PIPELINES || n_bindings < 1 || n_bindings > VK_MAX_BINDINGS)
        return strata_fail(err, STRATA_UNSUPPORTED, "vulkan: too many pipelines or bindings for %s", shader_name);
    if (local_size > ctx->properties.limits.maxComputeWorkGroupInvocations)
        local_size = ctx->properties.limits.maxComputeWorkGroupInvocations;
    VkShaderModuleCreateInfo module_info = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = blob->size_bytes,
        .pCode = blob->code,
    };
    VkShaderModule module;
    VkResult result = vkCreateShaderModule(ctx->device, &module_info, NULL, &module);
    if (result != VK_SUCCESS)
        return vk_fail(err, result, "vkCreateShaderModule");
    VkSpecializationMapEntry entry = {.constantID = 0, .offset = 0, .size = sizeof(uint32_t)};
    VkSpecializationInfo spec = {.mapEntryCount = 1, .pMapEntries = &entry, .dataSize = sizeof local_size,
                                 .pData = &local_size};
    VkComputePipelineCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = module,
                  .pName = "main",
                  .pSpecializationInfo = &spec},
        .layout = ctx->pipeline_layouts[n_bindings],
    };
    vk_pipeline *p = &ctx->pipelines[ctx->n_pipelines];
    result = vkCreateComputePipelines(ctx->device, VK_NULL_HANDLE, 1, &info, NULL, &p->pipeline);
    vkDestroyShaderModule(ctx->device, module, NULL);
    if (result != VK_SUCCESS)
        return vk_fail(err, result, "vkCreateComputePipelines");
    p->shader_name = blob->name;
    p->local_size = local_size;
    p->n_bindings = n_bindings;
    ctx->n_pipelines++;
    *out = p;
    return STRATA_OK;
}

/* --- descriptor sets and dispatch ------------------------------------------------- */

static strata_status add_descriptor_pool(vk_context *ctx, strata_error *err)
{
    VkDescriptorPool *pools = realloc(ctx->descriptor_pools, (size_t)(ctx->n_descriptor_pools + 1) * sizeof *pools);
    if (!pools)
        return strata_fail(err, STRATA_OUT_OF_MEMORY, "vulkan: out of host memory for descriptor pools");
    ctx->descriptor_pools = pools;
    VkDescriptorPoolSize size = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                 .descriptorCount = VK_DESCRIPTOR_SETS_PER_POOL * VK_MAX_BINDINGS};
    VkDescriptorPoolCreateInfo info = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
        .maxSets = VK_DESCRIPTOR_SETS_PER_POOL,
        .poolSizeCount = 1,
        .pPoolSizes = &size,
    };
    VkResult result = vkCreateDescriptorPool(ctx->device, &info, NULL, &pools[ctx->n_descriptor_pools]);
    if (result != VK_SUCCESS)
        return vk_fail(err, result, "vkCreateDescriptorPool");
    ctx->n_descriptor_pools++;
    return STRATA_OK;
}

static strata_status allocate_set(vk_context *ctx, int n_bindings, VkDescriptorSet *out, strata_error *err)
{
    for (;;) {
        if (ctx->current_descriptor_pool == ctx->n_descriptor_pools) {
            strata_status status = add_descriptor_pool(ctx, err);
            if (status != STRATA_OK)
                return status;
        }
        VkDescriptorSetAllocateInfo info = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
            .descriptorPool = ctx->descriptor_pools[ctx->current_descriptor_pool],
            .descriptorSetCount = 1,
            .pSetLayouts = &ctx->set_layouts[n_bindings],
        };
        VkResult result = vkAllocateDescriptorSets(ctx->device, &info, out);
        if (result == VK_SUCCESS)
            return STRATA_OK;
        if (result != VK_ERROR_OUT_OF_POOL_MEMORY && result != VK_ERROR_FRAGMENTED_POOL)
            return vk_fail(err, result, "vkAllocateDescriptorSets");
        ctx->current_descriptor_pool++; /* this one is full: the next, or a new one */
    }
}

strata_status vk_dispatch(vk_context *ctx, const vk_pipeline *pipeline, const vk_binding *bindings,
                          const void *push, size_t push_bytes, uint32_t groups_x, uint32_t groups_y,
                          uint32_t groups_z, strata_error *err)
{
    if (groups_x == 0 || groups_y == 0 || groups_z == 0)
        return STRATA_OK;
    const uint32_t *max_groups = ctx->properties.limits.maxComputeWorkGroupCount;
    if (groups_x > max_groups[0] || groups_y > max_groups[1] || groups_z > max_groups[2])
        return strata_fail(err, STRATA_UNSUPPORTED, "vulkan %s: %u x %u x %u workgroups exceed the device's limit",
                           pipeline->shader_name, groups_x, groups_y, groups_z);
    if (push_bytes > VK_PUSH_CONSTANT_BYTES)
        return strata_fail(err, STRATA_INVALID_INPUT, "vulkan %s: %zu bytes of push constants", pipeline->shader_name,
                           push_bytes);
    strata_status status = vk_record_begin(ctx, err);
    VkDescriptorSet set;
    if (status != STRATA_OK || (status = allocate_set(ctx, pipeline->n_bindings, &set, err)) != STRATA_OK)
        return status;
    VkDescriptorBufferInfo infos[VK_MAX_BINDINGS];
    VkWriteDescriptorSet writes[VK_MAX_BINDINGS];
    for (int i = 0; i < pipeline->n_bindings; i++) {
        infos[i] = (VkDescriptorBufferInfo){bindings[i].buffer->buffer, bindings[i].offset, bindings[i].range};
        writes[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = set,
            .dstBinding = (uint32_t)i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &infos[i],
        };
    }
    vkUpdateDescriptorSets(ctx->device, (uint32_t)pipeline->n_bindings, writes, 0, NULL);
    for (int i = 0; i < pipeline->n_bindings; i++)
        vk_hazard_check(ctx, bindings[i].buffer, bindings[i].offset, bindings[i].offset + bindings[i].range,
                        bindings[i].written);
    vkCmdBindPipeline(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline->pipeline);
    vkCmdBindDescriptorSets(ctx->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ctx->pipeline_layouts[pipeline->n_bindings], 0,
                            1, &set, 0, NULL);
    if (push_bytes)
        vkCmdPushConstants(ctx->cmd, ctx->pipeline_layouts[pipeline->n_bindings], VK_SHADER_STAGE_COMPUTE_BIT, 0,
                           (uint32_t)push_bytes, push);
    vkCmdDispatch(ctx->cmd, groups_x, groups_y, groups_z);
    for (int i = 0; i < pipeline->n_bindings; i++)
        vk_hazard_note(ctx, bindings[i].buffer, bindings[i].offset, bindings[i].offset + bindings[i].range,
                       bindings[i].written);
    return STRATA_OK;
}

strata_status vk_bind_range(const vk_context *ctx, const strata_tensor *tensor, uint64_t begin_bytes,
                            uint64_t span_bytes, size_t element_bytes, bool written, vk_binding *out,
                            uint32_t *element_offset, strata_error *err)
{
    const backend_buffer *buffer = tensor->buffer;
    const char *name = tensor->name ? tensor->name : "(unnamed)";
    if (!buffer)
        return strata_fail(err, STRATA_INVALID_INPUT, "vulkan: tensor %s has no Vulkan buffer", name);
    VkDeviceSize alignment = vk_binding_alignment(ctx);
    VkDeviceSize first = (VkDeviceSize)tensor->offset + begin_bytes;
    VkDeviceSize base = first / alignment * alignment;
    VkDeviceSize rest = first - base;
    if (rest % element_bytes != 0)
        return strata_fail(err, STRATA_INVALID_INPUT, "vulkan: tensor %s byte %llu is not a multiple of %zu bytes",
                           name, (unsigned long long)first, element_bytes);
    VkDeviceSize range = (rest + span_bytes + 3) / 4 * 4;
    if (range == 0)
        range = 4;
    if (base + range > buffer->capacity)
        return strata_fail(err, STRATA_INVALID_INPUT,
                           "vulkan: tensor %s (%llu bytes at byte %llu of it) is outside its buffer", name,
                           (unsigned long long)span_bytes, (unsigned long long)begin_bytes);
    if (range > ctx->bind_limit)
        return strata_fail(err, STRATA_UNSUPPORTED,
                           "vulkan: %llu bytes of tensor %s are more than the device binds at once (%llu KiB)",
                           (unsigned long long)span_bytes, name, (unsigned long long)(ctx->bind_limit >> 10));
    *out = (vk_binding){.buffer = buffer, .offset = base, .range = range, .written = written};
    *element_offset = (uint32_t)(rest / element_bytes);
    return STRATA_OK;
}

strata_status vk_bind_tensor(const vk_context *ctx, const strata_tensor *tensor, size_t span_bytes,
                             size_t element_bytes, bool written, vk_binding *out, uint32_t *element_offset,
                             strata_error *err)
{
    return vk_bind_range(ctx, tensor, 0, span_bytes, element_bytes, written, out, element_offset, err);
}

strata_status vk_params_write(vk_context *ctx, const void *data, size_t bytes, vk_binding *out, strata_error *err)
{
    VkDeviceSize alignment = ctx->properties.limits.minStorageBufferOffsetAlignment;
    if (alignment < 4)
        alignment = 4;
    VkDeviceSize size = (bytes + 3) / 4 * 4;
    if (size == 0 || size > VK_PARAMS_BYTES)
        return strata_fail(err, STRATA_INVALID_INPUT, "vulkan: %zu bytes of op parameters", bytes);
    VkDeviceSize offset = (ctx->params_used + alignment - 1) / alignment * alignment;
    strata_status status;
    if (offset + size > VK_PARAMS_BYTES) {
        if ((status = vk_submit_and_wait(ctx, err)) != STRATA_OK)
            return status;
        offset = 0;
    }
    if ((status = vk_record_begin(ctx, err)) != STRATA_OK)
        return status;
    vk_hazard_check(ctx, ctx->params, offset, offset + size, true);
    vkCmdUpdateBuffer(ctx->cmd, ctx->params->buffer, offset, size, data);
    vk_hazard_note(ctx, ctx->params, offset, offset + size, true);
    ctx->params_used = offset + size;
    *out = (vk_binding){.buffer = ctx->params, .offset = offset, .range = size, .written = false};
    return STRATA_OK;
}

strata_status vk_scratch_reserve(vk_context *ctx, VkDeviceSize bytes, strata_error *err)
{
    if (ctx->scratch && ctx->scratch->capacity >= bytes)
        return STRATA_OK;
    VkDeviceSize grown = vk_scratch_grown_size(bytes);
    if (ctx->workspace_limit) {
        if (bytes > ctx->workspace_limit)
            return strata_fail(err, STRATA_OUT_OF_MEMORY,
                               "vulkan%d: the op workspace needs %.1f MiB but its limit is %.1f MiB (%.1f MiB held); "
                               "nothing was allocated",
                               ctx->device_index, (double)bytes / 1048576.0,
                               (double)ctx->workspace_limit / 1048576.0,
                               ctx->scratch ? (double)ctx->scratch->capacity / 1048576.0 : 0.0);
        if (grown > ctx->workspace_limit)
            grown = ctx->workspace_limit;
    }
    strata_status status = vk_submit_and_wait(ctx, err); /* recorded work may use the old one */
    if (status != STRATA_OK)
        return status;
    vk_buffer_destroy(ctx, ctx->scratch);
    ctx->scratch = NULL;
    if ((status = vk_buffer_create(ctx, grown, false, &ctx->scratch, err)) != STRATA_OK)
        return status;
    if (ctx->scratch->capacity > ctx->workspace_peak)
        ctx->workspace_peak = ctx->scratch->capacity;
    return STRATA_OK;
}

void vk_groups_2d(uint64_t groups, uint32_t *x, uint32_t *y)
{
    if (groups <= 65535) {
        *x = (uint32_t)groups;
        *y = 1;
        return;
    }
    *x = 65535;
    *y = (uint32_t)((groups + 65534) / 65535);
}
